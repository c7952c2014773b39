/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "platform.h"

#include <json-c/json.h>

#include "caller.h"
#include "gw-error.h"
#include "image.h"

/* Pulls run in gateway-worker children: first a quick resolve of the reference to the platform
 * manifest digest (the image id), then — unless that image is READY already — the full pull and
 * conversion. Requests for a reference already in flight, or for an image another reference is
 * already converting, join that pull instead of starting their own. */

typedef void (*ImagePullCallback)(Manager *m, Image *image, const GwError *error, void *userdata);

typedef struct ImagePullRequest {
        const char *reference;
        const char *platform;      /* NULL: the default platform */
        Caller caller;
        json_object *credentials;  /* {"username","password"} or {"token"}; makes the image private */
        bool private_acl;          /* private even without credentials (Shifter's allowed_uids/gids) */
        const uid_t *acl_uids;     /* further users and groups who may see a private image */
        size_t n_acl_uids;
        const gid_t *acl_gids;
        size_t n_acl_gids;
        bool force;                /* re-check the registry even within PullUpdateTimeout */
} ImagePullRequest;

/* The body of POST /v1/images/pull: {"reference", "platform", "credentials", "force", "acl"}.
 * Fills p (borrowing from body) and the ACL arrays (caller frees); on failure sets e. */
int image_pull_body_parse(json_object *body, ImagePullRequest *p, uid_t **uids, gid_t **gids, GwError *e);
/* {"username", "password"} or {"token"}, string values only. */
bool credentials_are_valid(json_object *c);

/* resolved: the image record exists (or the pull failed before it could); finished: the image is
 * READY or FAILED. Either may be NULL. Both may be called before this returns. */
int image_pull_start(Manager *m, const ImagePullRequest *req, ImagePullCallback resolved,
                     ImagePullCallback finished, void *userdata, GwError *e);

void image_pulls_free(Manager *m);

/* PlatformImageHooks.deployed: the end of a pull's TRANSFER. */
void image_pull_on_deployed(Platform *pl, const char *image_id, int r, const char *message);

typedef struct ImageReference ImageReference;

/* reference parsed as gateway-worker parses it (DefaultImageLocation for a name without a
 * registry): 400 InvalidArgument naming field if it cannot be. */
int image_reference_parse_field(Manager *m, const char *field, const char *reference, ImageReference **ret,
                                GwError *e);
/* Its registry one of Locations, else 403 AccessDenied naming field: only those are connected to. */
int image_reference_check_location(Manager *m, const char *field, const ImageReference *ref, GwError *e);
