/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/utsname.h>

#include "json-util.h"
#include "macro.h"
#include "manifest.h"
#include "reference.h"


void platform_done(Platform *p) {
        p->os = mfree(p->os);
        p->architecture = mfree(p->architecture);
        p->variant = mfree(p->variant);
}

static bool platform_word_is_valid(const char *s, size_t n) {
        if (n == 0 || n > 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
                        return false;
        return true;
}

int platform_parse(const char *s, Platform *ret) {
        Platform p = {};
        const char *a, *v;

        if (!s)
                return -EINVAL;
        a = strchr(s, '/');
        if (!a)
                return -EINVAL;
        v = strchr(a + 1, '/');
        if (!platform_word_is_valid(s, a - s) ||
            !platform_word_is_valid(a + 1, v ? (size_t) (v - a - 1) : strlen(a + 1)) ||
            (v && (!platform_word_is_valid(v + 1, strlen(v + 1)) || strchr(v + 1, '/'))))
                return -EINVAL;

        p.os = strndup(s, a - s);
        p.architecture = v ? strndup(a + 1, v - a - 1) : strdup(a + 1);
        p.variant = v ? strdup(v + 1) : NULL;
        if (!p.os || !p.architecture || (v && !p.variant)) {
                platform_done(&p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

int platform_host(Platform *ret) {
        struct utsname u;
        const char *arch, *variant = NULL;
        _cleanup_free_ char *s = NULL;

        if (uname(&u) < 0)
                return -errno;
        if (streq(u.machine, "x86_64"))
                arch = "amd64";
        else if (streq(u.machine, "aarch64"))
                arch = "arm64", variant = "v8";
        else if (strneq(u.machine, "armv7", 5))
                arch = "arm", variant = "v7";
        else if (strneq(u.machine, "armv6", 5))
                arch = "arm", variant = "v6";
        else if (streq(u.machine, "i686") || streq(u.machine, "i386"))
                arch = "386";
        else if (streq(u.machine, "ppc64le"))
                arch = "ppc64le";
        else if (streq(u.machine, "s390x"))
                arch = "s390x";
        else if (streq(u.machine, "riscv64"))
                arch = "riscv64";
        else
                arch = u.machine;

        if (asprintf(&s, "linux/%s%s%s", arch, variant ? "/" : "", strempty(variant)) < 0)
                return -ENOMEM;
        return platform_parse(s, ret);
}

char *platform_to_string(const Platform *p) {
        char *s;
        if (asprintf(&s, "%s/%s%s%s", strna(p->os), strna(p->architecture),
                     p->variant ? "/" : "", strempty(p->variant)) < 0)
                return NULL;
        return s;
}

int manifest_kind(const char *media_type, const char *body, ManifestKind *ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;

        if (media_type && (streq(media_type, MEDIA_TYPE_OCI_MANIFEST) || streq(media_type, MEDIA_TYPE_DOCKER_MANIFEST))) {
                *ret = MANIFEST_IMAGE;
                return 0;
        }
        if (media_type && (streq(media_type, MEDIA_TYPE_OCI_INDEX) || streq(media_type, MEDIA_TYPE_DOCKER_LIST))) {
                *ret = MANIFEST_INDEX;
                return 0;
        }

        /* No (or a generic) Content-Type: the body decides. */
        o = json_tokener_parse(body);
        if (!o || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        media_type = json_get_string(o, "mediaType");
        if (media_type && !streq(media_type, MEDIA_TYPE_OCI_MANIFEST) && !streq(media_type, MEDIA_TYPE_DOCKER_MANIFEST) &&
            !streq(media_type, MEDIA_TYPE_OCI_INDEX) && !streq(media_type, MEDIA_TYPE_DOCKER_LIST))
                return -EPROTONOSUPPORT;
        if (json_get_typed(o, "manifests", json_type_array))
                *ret = MANIFEST_INDEX;
        else if (json_get_typed(o, "layers", json_type_array))
                *ret = MANIFEST_IMAGE;
        else
                return -EPROTONOSUPPORT; /* e.g. schema 1 */
        return 0;
}

static bool variant_matches(const char *arch, const char *want, const char *have) {
        if (streq(arch, "arm64")) {
                /* arm64 images often carry no variant; "v8" is the only one in practice. */
                if (!want || streq(want, "v8"))
                        want = "";
                if (!have || streq(have, "v8"))
                        have = "";
        }
        return streq(strempty(want), strempty(have));
}

int manifest_index_select(const char *body, const Platform *p, char **ret_digest) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *manifests, *fallback = NULL, *chosen = NULL;
        size_t n;

        o = json_tokener_parse(body);
        if (!o || !(manifests = json_get_typed(o, "manifests", json_type_array)))
                return -EBADMSG;

        n = json_object_array_length(manifests);
        for (size_t i = 0; i < n; i++) {
                json_object *m = json_object_array_get_idx(manifests, i), *plat;
                const char *os, *arch, *variant, *media_type;

                plat = json_get_typed(m, "platform", json_type_object);
                if (!plat)
                        continue;
                media_type = json_get_string(m, "mediaType");
                if (media_type && !streq(media_type, MEDIA_TYPE_OCI_MANIFEST) && !streq(media_type, MEDIA_TYPE_DOCKER_MANIFEST))
                        continue; /* nested indexes, attestations */
                os = json_get_string(plat, "os");
                arch = json_get_string(plat, "architecture");
                variant = json_get_string(plat, "variant");
                if (!os || !arch || !streq(os, p->os) || !streq(arch, p->architecture))
                        continue;

                if (p->variant) {
                        if (variant_matches(arch, p->variant, variant)) {
                                chosen = m;
                                break;
                        }
                } else {
                        if (variant_matches(arch, NULL, variant)) {
                                chosen = m;
                                break;
                        }
                        if (!fallback)
                                fallback = m; /* no variant asked for: any variant will do */
                }
        }
        if (!chosen)
                chosen = fallback;
        if (!chosen)
                return -ENOENT;

        const char *digest = json_get_string(chosen, "digest");
        if (!digest_is_valid(digest))
                return -EBADMSG;
        *ret_digest = strdup(digest);
        return *ret_digest ? 0 : -ENOMEM;
}

ImageManifest *image_manifest_free(ImageManifest *m) {
        if (!m)
                return NULL;
        free(m->config_digest);
        for (size_t i = 0; i < m->n_layers; i++) {
                free(m->layers[i].digest);
                free(m->layers[i].media_type);
        }
        free(m->layers);
        free(m);
        return NULL;
}

static int layer_compression_from_media_type(const char *t, LayerCompression *ret) {
        static const struct {
                const char *media_type;
                LayerCompression compression;
        } table[] = {
                { "application/vnd.oci.image.layer.v1.tar", LAYER_UNCOMPRESSED },
                { "application/vnd.oci.image.layer.v1.tar+gzip", LAYER_GZIP },
                { "application/vnd.oci.image.layer.v1.tar+zstd", LAYER_ZSTD },
                { "application/vnd.oci.image.layer.nondistributable.v1.tar", LAYER_UNCOMPRESSED },
                { "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", LAYER_GZIP },
                { "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", LAYER_ZSTD },
                { "application/vnd.docker.image.rootfs.diff.tar.gzip", LAYER_GZIP },
                { "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", LAYER_GZIP },
                { "application/vnd.docker.image.rootfs.diff.tar", LAYER_UNCOMPRESSED },
                { "application/vnd.docker.image.rootfs.diff.tar.zstd", LAYER_ZSTD },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(t, table[i].media_type)) {
                        *ret = table[i].compression;
                        return 0;
                }
        return -EPROTONOSUPPORT;
}

static int descriptor_parse(json_object *d, char **ret_digest, uint64_t *ret_size) {
        json_object *size;
        const char *digest = json_get_string(d, "digest");

        if (!digest_is_valid(digest))
                return -EBADMSG;
        size = json_get_typed(d, "size", json_type_int);
        if (!size || json_object_get_int64(size) < 0)
                return -EBADMSG;
        *ret_digest = strdup(digest);
        if (!*ret_digest)
                return -ENOMEM;
        *ret_size = (uint64_t) json_object_get_int64(size);
        return 0;
}

int image_manifest_parse(const char *body, ImageManifest **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_(image_manifest_freep) ImageManifest *m = NULL;
        json_object *config, *layers;
        size_t n;
        int r;

        o = json_tokener_parse(body);
        if (!o || !(config = json_get_typed(o, "config", json_type_object)) ||
            !(layers = json_get_typed(o, "layers", json_type_array)))
                return -EBADMSG;
        n = json_object_array_length(layers);
        if (n > MAX_LAYERS)
                return -E2BIG;

        m = calloc(1, sizeof(ImageManifest));
        if (!m)
                return -ENOMEM;
        r = descriptor_parse(config, &m->config_digest, &m->config_size);
        if (r < 0)
                return r;
        m->layers = calloc(MAX(n, 1U), sizeof(ManifestLayer));
        if (!m->layers)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *l = json_object_array_get_idx(layers, i);
                ManifestLayer *ml = &m->layers[i];
                const char *t = json_get_string(l, "mediaType");

                m->n_layers++;
                r = descriptor_parse(l, &ml->digest, &ml->size);
                if (r < 0)
                        return r;
                if (!t)
                        return -EBADMSG;
                ml->media_type = strdup(t);
                if (!ml->media_type)
                        return -ENOMEM;
                r = layer_compression_from_media_type(t, &ml->compression);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(m);
        return 0;
}

ImageConfig *image_config_free(ImageConfig *c) {
        if (!c)
                return NULL;
        json_object_put(c->env);
        json_object_put(c->entrypoint);
        json_object_put(c->cmd);
        json_object_put(c->labels);
        free(c->working_dir);
        free(c->user);
        for (size_t i = 0; i < c->n_diff_ids; i++)
                free(c->diff_ids[i]);
        free(c->diff_ids);
        platform_done(&c->platform);
        free(c);
        return NULL;
}

static json_object *json_get_ref(json_object *o, const char *key, json_type t) {
        json_object *v = json_get_typed(o, key, t);
        return v ? json_object_get(v) : NULL;
}

int image_config_parse(const char *body, ImageConfig **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_(image_config_freep) ImageConfig *c = NULL;
        json_object *cfg, *rootfs, *diff_ids;
        const char *s;
        size_t n;

        o = json_tokener_parse(body);
        if (!o || !json_object_is_type(o, json_type_object))
                return -EBADMSG;

        c = calloc(1, sizeof(ImageConfig));
        if (!c)
                return -ENOMEM;

        cfg = json_get_typed(o, "config", json_type_object);
        c->env = json_get_ref(cfg, "Env", json_type_array);
        c->entrypoint = json_get_ref(cfg, "Entrypoint", json_type_array);
        c->cmd = json_get_ref(cfg, "Cmd", json_type_array);
        c->labels = json_get_ref(cfg, "Labels", json_type_object);
        if ((s = json_get_string(cfg, "WorkingDir")) && *s && !(c->working_dir = strdup(s)))
                return -ENOMEM;
        if ((s = json_get_string(cfg, "User")) && *s && !(c->user = strdup(s)))
                return -ENOMEM;

        if ((s = json_get_string(o, "os")) && !(c->platform.os = strdup(s)))
                return -ENOMEM;
        if ((s = json_get_string(o, "architecture")) && !(c->platform.architecture = strdup(s)))
                return -ENOMEM;
        if ((s = json_get_string(o, "variant")) && !(c->platform.variant = strdup(s)))
                return -ENOMEM;

        rootfs = json_get_typed(o, "rootfs", json_type_object);
        diff_ids = json_get_typed(rootfs, "diff_ids", json_type_array);
        n = diff_ids ? json_object_array_length(diff_ids) : 0;
        if (n > MAX_LAYERS)
                return -E2BIG;
        c->diff_ids = calloc(n + 1, sizeof(char *));
        if (!c->diff_ids)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *d = json_object_get_string(json_object_array_get_idx(diff_ids, i));

                /* what each layer must unpack to: we hash with sha256, so only those can be checked */
                if (!json_object_is_type(json_object_array_get_idx(diff_ids, i), json_type_string) || !digest_is_valid(d))
                        return -EBADMSG;
                c->diff_ids[i] = strdup(d);
                if (!c->diff_ids[i])
                        return -ENOMEM;
                c->n_diff_ids++;
        }

        *ret = TAKE_PTR(c);
        return 0;
}
