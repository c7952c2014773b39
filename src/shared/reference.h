/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* An image reference as docker understands it:
 *
 *   alpine                        → docker.io/library/alpine:latest
 *   host:5000/team/app:1.2        → registry "host:5000", repository "team/app", tag "1.2"
 *   app@sha256:<64 hex>           → pinned by digest, no tag
 *   app:1.2@sha256:<64 hex>       → tag kept for display, the digest wins
 *
 * The first path component names a registry only if it contains '.' or ':' or is "localhost";
 * otherwise the default location is used. On docker.io single-component repositories live under
 * "library/". */
typedef struct ImageReference {
        char *registry;   /* "docker.io", "127.0.0.1:5000" */
        char *repository; /* "library/alpine" */
        char *tag;        /* NULL when only a digest was given */
        char *digest;     /* "sha256:<hex>" or NULL */
} ImageReference;

int image_reference_parse(const char *s, const char *default_registry, ImageReference **ret);
ImageReference *image_reference_free(ImageReference *r);
static inline void image_reference_freep(ImageReference **r) {
        image_reference_free(*r);
}

/* "registry/repository:tag@digest" with the parts that are set. */
char *image_reference_to_string(const ImageReference *r);

/* The tag or digest to ask the registry for: the digest when there is one. */
const char *image_reference_manifest_ref(const ImageReference *r);

/* "sha256:" followed by 64 lowercase hex digits. */
bool digest_is_valid(const char *s);

/* docker.io, index.docker.io, registry-1.docker.io and registry.hub.docker.com: Docker Hub. */
bool registry_is_docker_hub(const char *registry);

/* Whether two registry names ("host" or "host:port") name the same registry: equal ignoring
 * case, or both Docker Hub. */
bool registry_name_equal(const char *a, const char *b);

/* docker.io and its aliases are served by registry-1.docker.io. */
const char *registry_api_host(const char *registry);
