/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "manifest.h"

/* <imageDir>/<id>.meta.json: what gatewayd and the runner need to know about a converted image
 * (runtime config, identity, size). Written atomically and after the squashfs, so a meta file
 * always describes a complete image. <id> is the hex of the platform manifest digest. */
typedef struct ImageMeta {
        const char *id;
        const char *reference;    /* canonical registry/repository:tag@digest */
        const char *digest;       /* platform manifest digest */
        const char *index_digest; /* index / manifest list it was picked from, or NULL */
        const char *squashfs;     /* file name in the image dir */
        const char *compressor;
        uint64_t size;            /* squashfs bytes */
        const ImageManifest *manifest;
        const ImageConfig *config;
} ImageMeta;

json_object *image_meta_to_json(const ImageMeta *m);
int image_meta_write(const char *image_dir, const ImageMeta *m);
