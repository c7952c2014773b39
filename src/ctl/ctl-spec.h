/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

/* A service spec is JSON (docs/dbus-api.md: the same shape as the HTTP API). gatewayctl builds
 * one from command-line options, or edits the daemon's current spec for "service update", so
 * fields it has no option for pass through untouched. The key names live here only. */

#define SPEC_KEY_NAME "name"
#define SPEC_KEY_IMAGE "image"
#define SPEC_KEY_DESCRIPTION "description"
#define SPEC_KEY_COMMAND "command"          /* array of strings; null = the image's default */
#define SPEC_KEY_ENVIRONMENT "env"          /* object {"KEY": "value"} */
#define SPEC_KEY_NETWORK "network"          /* boolean */
#define SPEC_KEY_RESOURCES "resources"      /* object of limits; null members = no limit */
#define SPEC_KEY_MEMORY "memory"            /* resources.memory, bytes */
#define SPEC_KEY_CPUS "cpus"                /* resources.cpus */
#define SPEC_KEY_TIMEOUT "timeout"          /* resources.timeout, seconds */

/* What the options of "service create/update" asked for. Unset fields leave the spec alone. */
typedef struct SpecChanges {
        char *file;           /* --file: start from this spec ("-" = stdin) */
        char *image;
        char *description;
        char **command;       /* --command ARG... or "-- ARG...": replaces the command */
        bool command_set;
        char **env_set;       /* --env KEY=VALUE */
        char **env_unset;     /* --unset-env KEY */
        uint64_t memory;      /* 0 = remove the limit */
        bool memory_set;
        double cpus;          /* 0 = remove the limit */
        bool cpus_set;
        uint64_t timeout_sec; /* 0 = remove the limit */
        bool timeout_set;
        int network;          /* -1 = unchanged */
} SpecChanges;

#define SPEC_CHANGES_INIT { .network = -1 }

void spec_changes_done(SpecChanges *c);
bool spec_changes_empty(const SpecChanges *c);

/* strv helpers for the repeated options; they take a copy of s. */
int strv_extend(char ***l, const char *s);

/* Checks "KEY=VALUE" (non-empty key, no NUL): returns 0 or -EINVAL. */
int env_assignment_is_valid(const char *s);

/* Applies the changes to a spec object. */
int spec_apply(json_object *spec, const SpecChanges *c);

/* Reads and parses --file; returns a JSON object or logs why not. */
int spec_load_file(const char *path, json_object **ret);
