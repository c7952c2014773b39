/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "reference.h"

/* A Docker Registry HTTP API v2 client on libcurl for one repository.
 *
 * Authentication is negotiated from the 401 challenge: anonymous or credentialed bearer tokens
 * (realm/service/scope) or HTTP basic. Redirects (blob storage on another host) are followed
 * here, not by libcurl, so that the Authorization header is never sent to another origin.
 * Transient failures (connection errors, 5xx, 429 with Retry-After) are retried with exponential
 * backoff; 401/403/404 fail at once with a message naming the reference and the HTTP status.
 *
 * One client may be used from several threads at once: each request has its own curl handle and
 * the token is shared under a lock. */

typedef struct RegistryClient RegistryClient;

/* How credentials are used, per registry (gatewayd's Locations.NAME.authentication). */
typedef enum RegistryAuth {
        REGISTRY_AUTH_HTTP,  /* answer the registry's challenge: bearer token (anonymous unless
                              * credentials are given), or basic with the given credentials */
        REGISTRY_AUTH_BASIC, /* basic credentials from the first request on; no token service */
        REGISTRY_AUTH_NONE,  /* never send credentials, never follow a challenge */
} RegistryAuth;

typedef struct RegistryOptions {
        char **insecure_registries; /* plain http; loopback registries are always plain http */
        const char *base_url;       /* "https://mirror:5000" instead of http(s)://REGISTRY */
        const char *ca_file;        /* CA bundle for TLS instead of the system trust store */
        RegistryAuth auth;
        const char *username;
        const char *password;
        const char *token;          /* a bearer token to send as is */
        unsigned retries;           /* extra attempts after a transient failure */
        unsigned retry_delay_ms;    /* first backoff step */
} RegistryOptions;

/* Receives the body of a successful response. reset() is called before every attempt so a retry
 * starts from a clean slate; write() returning < 0 aborts the transfer with that error. */
typedef struct RegistrySink {
        int (*reset)(void *userdata);
        int (*write)(const void *p, size_t n, void *userdata);
        /* optional: polled during transfers, also stalled ones; true aborts with -ECANCELED */
        bool (*cancelled)(void *userdata);
        void *userdata;
} RegistrySink;

/* "http", "basic", "none"; -EINVAL for anything else. */
int registry_auth_from_string(const char *s, RegistryAuth *ret);

int registry_client_new(const ImageReference *ref, const RegistryOptions *o, RegistryClient **ret);
RegistryClient *registry_client_free(RegistryClient *c);
static inline void registry_client_freep(RegistryClient **c) {
        registry_client_free(*c);
}

/* Fetches a manifest by tag or digest, sending all four manifest media types in Accept. Returns
 * the body, its media type and its digest (computed over the body; if ref is a digest the body
 * must match it). */
int registry_get_manifest(RegistryClient *c, const char *ref, char **ret_body, size_t *ret_size,
                          char **ret_media_type, char **ret_digest);

/* Streams a blob into the sink. The caller verifies the digest. */
int registry_get_blob(RegistryClient *c, const char *digest, const RegistrySink *sink);

/* "Bearer" challenge handling is exported for the unit tests: the token endpoint URL for a
 * challenge (realm?service=…&scope=…). */
char *registry_token_url(const char *realm, const char *service, const char *scope);
