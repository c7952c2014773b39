/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

/* Caps on what a registry can make the worker hold (docs/worker-pull.md, "Limits"): a manifest or
 * index body, an image configuration blob, and the number of layers of one image. Docker itself
 * cannot build more than 127 layers. */
#define MANIFEST_SIZE_MAX (4U * 1024U * 1024U)
#define CONFIG_SIZE_MAX (8U * 1024U * 1024U)
#define MAX_LAYERS 1000

#define MEDIA_TYPE_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_TYPE_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MEDIA_TYPE_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MEDIA_TYPE_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

typedef struct Platform {
        char *os;
        char *architecture;
        char *variant; /* may be NULL */
} Platform;

void platform_done(Platform *p);
/* "os/arch[/variant]"; -EINVAL on anything else. */
int platform_parse(const char *s, Platform *ret);
/* The platform this binary runs on, in OCI names (x86_64 → amd64, aarch64 → arm64/v8). */
int platform_host(Platform *ret);
char *platform_to_string(const Platform *p);

typedef enum ManifestKind {
        MANIFEST_IMAGE,
        MANIFEST_INDEX,
} ManifestKind;

/* Decides from the media type (or, when the registry sent none, from the body) whether a
 * manifest is an image manifest or an index/manifest list. */
int manifest_kind(const char *media_type, const char *body, ManifestKind *ret);

/* Picks the entry of an index for the platform: os and architecture must match; a requested
 * variant must match too (arm64 treats "" and "v8" alike); without a requested variant an entry
 * without variant is preferred. -ENOENT if none fits, -EBADMSG if the index is malformed. */
int manifest_index_select(const char *body, const Platform *p, char **ret_digest);

typedef enum LayerCompression {
        LAYER_UNCOMPRESSED,
        LAYER_GZIP,
        LAYER_ZSTD,
} LayerCompression;

typedef struct ManifestLayer {
        char *digest;
        char *media_type;
        uint64_t size;
        LayerCompression compression;
} ManifestLayer;

typedef struct ImageManifest {
        char *config_digest;
        uint64_t config_size;
        ManifestLayer *layers;
        size_t n_layers;
} ImageManifest;

/* -E2BIG when it has more than MAX_LAYERS layers. */
int image_manifest_parse(const char *body, ImageManifest **ret);
ImageManifest *image_manifest_free(ImageManifest *m);
static inline void image_manifest_freep(ImageManifest **m) {
        image_manifest_free(*m);
}

/* The parts of the image configuration that a runtime needs. */
typedef struct ImageConfig {
        json_object *env, *entrypoint, *cmd, *labels; /* arrays / object, may be NULL */
        char *working_dir, *user;
        Platform platform;
        char **diff_ids;      /* rootfs.diff_ids: sha256 of each layer's uncompressed tar */
        size_t n_diff_ids;
} ImageConfig;

int image_config_parse(const char *body, ImageConfig **ret);
ImageConfig *image_config_free(ImageConfig *c);
static inline void image_config_freep(ImageConfig **c) {
        image_config_free(*c);
}
