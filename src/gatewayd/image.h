/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <stdbool.h>

#include "gw-error.h"

typedef struct Manager Manager;

/* Shifter's lifecycle. TRANSFER is used when the image is copied to a remote platform. */
typedef enum ImageStatus {
        IMAGE_PENDING,
        IMAGE_PULLING,
        IMAGE_CONVERSION,
        IMAGE_TRANSFER,
        IMAGE_READY,
        IMAGE_FAILURE,
        IMAGE_EXPIRED,
        _IMAGE_STATUS_MAX,
        _IMAGE_STATUS_INVALID = -1,
} ImageStatus;

const char *image_status_to_string(ImageStatus s);
ImageStatus image_status_from_string(const char *s);

typedef struct Image {
        Manager *manager;

        char *id;               /* hex sha256 of the platform manifest */
        char *digest;           /* "sha256:<id>" */
        char *reference;        /* canonical reference it was last pulled as */
        char *platform;         /* config platform name */
        char *key;              /* "<platform>\n<id>": records are per platform, as Shifter's per system */
        ImageStatus status;
        char *status_message;   /* FAILURE reason */
        uint64_t size;          /* squashfs bytes */
        char *squashfs_path;    /* <imageDir>/<id>.squashfs */
        char *meta_path;        /* <imageDir>/<id>.meta.json (env, entrypoint, cmd, workdir, user) */
        uint64_t created_usec, updated_usec, last_used_usec;
        char *object_path;

        /* Private images (pulled with credentials) are visible only to these; NULL = public. */
        uid_t *acl_uids;
        size_t n_acl_uids;
        gid_t *acl_gids;
        size_t n_acl_gids;
        bool private_image;

        struct ImagePull *pull;  /* the pull converting it right now, if any */
        uint64_t bytes_done, bytes_total;
        unsigned layers_done, layers_total;
} Image;

Image *image_free(Image *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(Image *, image_free);
json_object *image_to_json(const Image *i);
/* Progress of a pull in [0, 1]: bytes while downloading, 1 when READY. */
double image_progress(const Image *i);

/* Ensures the image for reference is READY on the platform, pulling it if needed (or joining a
 * pull already in flight). done is called exactly once, from the event loop, with the READY
 * image or with an error (the pull's failure message). */
typedef void (*ImageReadyCallback)(Manager *m, Image *image, const GwError *error, void *userdata);
int image_registry_ensure_ready(Manager *m, const char *platform, const char *reference, uid_t uid,
                                ImageReadyCallback done, void *userdata);

/* Records a use (job start) for expiry bookkeeping. */
void image_mark_used(Image *image);
