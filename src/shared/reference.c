/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <stdio.h>
#include <strings.h>

#include "macro.h"
#include "reference.h"

ImageReference *image_reference_free(ImageReference *r) {
        if (!r)
                return NULL;
        free(r->registry);
        free(r->repository);
        free(r->tag);
        free(r->digest);
        free(r);
        return NULL;
}

bool digest_is_valid(const char *s) {
        if (!s || !strneq(s, "sha256:", 7))
                return false;
        s += 7;
        for (size_t i = 0; i < 64; i++)
                if (!isdigit((unsigned char) s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
                        return false;
        return s[64] == 0;
}

static bool strcaseeq(const char *a, const char *b) {
        return strcasecmp(a, b) == 0;
}

bool registry_is_docker_hub(const char *registry) {
        return strcaseeq(registry, "docker.io") || strcaseeq(registry, "index.docker.io") ||
                strcaseeq(registry, "registry-1.docker.io") || strcaseeq(registry, "registry.hub.docker.com");
}

bool registry_name_equal(const char *a, const char *b) {
        if (!a || !b)
                return false;
        /* Host names are case-insensitive; the port is part of the name ("host" is not "host:443"). */
        return strcaseeq(a, b) || (registry_is_docker_hub(a) && registry_is_docker_hub(b));
}

const char *registry_api_host(const char *registry) {
        return registry_is_docker_hub(registry) ? "registry-1.docker.io" : registry;
}

/* Repository components are lowercase alphanumerics joined by one separator out of '.', '_',
 * "__" or any number of '-' (the distribution grammar). */
static bool repository_is_valid(const char *s) {
        size_t len = strlen(s);

        if (len == 0 || len > 255)
                return false;
        for (const char *c = s; *c;) {
                const char *start = c;

                while (*c && *c != '/') {
                        if (islower((unsigned char) *c) || isdigit((unsigned char) *c)) {
                                c++;
                                continue;
                        }
                        /* separator: must sit between alphanumerics */
                        if (c == start)
                                return false;
                        if (*c == '.' || *c == '_') {
                                if (c[0] == '_' && c[1] == '_')
                                        c++;
                                c++;
                        } else if (*c == '-') {
                                while (*c == '-')
                                        c++;
                        } else
                                return false;
                        if (!islower((unsigned char) *c) && !isdigit((unsigned char) *c))
                                return false;
                }
                if (c == start)
                        return false; /* empty component */
                if (*c == '/') {
                        c++;
                        if (!*c)
                                return false;
                }
        }
        return true;
}

static bool tag_is_valid(const char *s) {
        size_t len = strlen(s);

        if (len == 0 || len > 128)
                return false;
        if (!isalnum((unsigned char) s[0]) && s[0] != '_')
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char) *c) && !strchr("_.-", *c))
                        return false;
        return true;
}

static bool registry_is_valid(const char *s) {
        const char *port;

        if (!*s || strlen(s) > 255)
                return false;
        port = strrchr(s, ':');
        if (port && !strchr(port, ']')) {
                /* host:port: the port is a number */
                if (!port[1] || strspn(port + 1, "0123456789") != strlen(port + 1) || strlen(port + 1) > 5)
                        return false;
        }
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char) *c) && !strchr(".-:[]", *c))
                        return false;
        return s[0] != '-' && s[0] != '.' && s[0] != ':';
}

int image_reference_parse(const char *s, const char *default_registry, ImageReference **ret) {
        _cleanup_(image_reference_freep) ImageReference *r = NULL;
        _cleanup_free_ char *copy = NULL;
        char *at, *slash, *rest, *colon;

        if (!s || !*s || strlen(s) > 1024)
                return -EINVAL;
        for (const char *c = s; *c; c++)
                if ((unsigned char) *c <= ' ' || *c == 0x7f)
                        return -EINVAL;

        copy = strdup(s);
        r = calloc(1, sizeof(ImageReference));
        if (!copy || !r)
                return -ENOMEM;

        at = strchr(copy, '@');
        if (at) {
                *at = 0;
                if (!digest_is_valid(at + 1))
                        return -EINVAL;
                r->digest = strdup(at + 1);
                if (!r->digest)
                        return -ENOMEM;
        }

        slash = strchr(copy, '/');
        if (slash && (memchr(copy, '.', slash - copy) || memchr(copy, ':', slash - copy) ||
                      (slash - copy == 9 && strneq(copy, "localhost", 9)))) {
                *slash = 0;
                r->registry = strdup(copy);
                rest = slash + 1;
        } else {
                r->registry = strdup(default_registry ?: "docker.io");
                rest = copy;
        }
        if (!r->registry)
                return -ENOMEM;
        if (!registry_is_valid(r->registry))
                return -EINVAL;
        if (registry_is_docker_hub(r->registry) && free_and_strdup(&r->registry, "docker.io") < 0)
                return -ENOMEM;

        /* A ':' after the last '/' separates the tag (one before it belongs to a host:port). */
        colon = strrchr(rest, ':');
        if (colon && !strchr(colon, '/')) {
                *colon = 0;
                if (!tag_is_valid(colon + 1))
                        return -EINVAL;
                r->tag = strdup(colon + 1);
                if (!r->tag)
                        return -ENOMEM;
        } else if (!r->digest) {
                r->tag = strdup("latest");
                if (!r->tag)
                        return -ENOMEM;
        }

        if (!repository_is_valid(rest))
                return -EINVAL;
        if (streq(r->registry, "docker.io") && !strchr(rest, '/')) {
                if (asprintf(&r->repository, "library/%s", rest) < 0) {
                        r->repository = NULL;
                        return -ENOMEM;
                }
        } else {
                r->repository = strdup(rest);
                if (!r->repository)
                        return -ENOMEM;
        }
        if (strlen(r->repository) > 255)
                return -EINVAL;

        *ret = TAKE_PTR(r);
        return 0;
}

char *image_reference_to_string(const ImageReference *r) {
        char *s;

        if (asprintf(&s, "%s/%s%s%s%s%s", r->registry, r->repository,
                     r->tag ? ":" : "", strempty(r->tag),
                     r->digest ? "@" : "", strempty(r->digest)) < 0)
                return NULL;
        return s;
}

const char *image_reference_manifest_ref(const ImageReference *r) {
        return r->digest ?: r->tag;
}
