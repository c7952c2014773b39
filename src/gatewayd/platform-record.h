/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "gw-error.h"
#include "platform.h"

/* What the surfaces (HTTP, D-Bus) show of a platform and ask of it, in one place so that they
 * cannot drift apart: the record of GET /v1/platforms/{name} and GetPlatform(), and drain/resume
 * with its errors. */

/* The platform's record: name, kind, accesstype, default, runsJobs, holdsImages, unsupported
 * (why not), imageDir, the configured hosts of a remote platform, the fields of its
 * report_state() and its nodes. NULL on OOM. */
json_object *platform_to_json(Platform *p);

/* Every platform, sorted by name, NULL-terminated (the array is the caller's); NULL on OOM. */
Platform **platforms_sorted(Manager *m);

/* Where the platform's converted images are kept on the gateway host: local.imageDir, else
 * <StateDirectory>/images (as the pull decides). NULL on OOM. */
char *platform_image_dir(Platform *p);

/* Its nodes as platform_report_nodes() gives them, never NULL unless out of memory. */
json_object *platform_nodes_json(Platform *p);

/* The platform by name; NoSuchPlatform in e if there is none. */
Platform *platform_lookup(Manager *m, const char *name, GwError *e);

/* Drains (drain) or resumes the named node of the platform, and returns its record as it is
 * after that (in *ret_node, if not NULL). Errors: NoSuchPlatform, NoSuchNode, Conflict when the
 * platform has no nodes of its own to drain (a local platform runs on the gateway host; a kind
 * without an implementation has none yet). */
int platform_set_node_drain(Manager *m, const char *platform, const char *node, bool drain,
                            json_object **ret_node, GwError *e);
