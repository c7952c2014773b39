/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <time.h>

#include "fs-util.h"
#include "image-meta.h"
#include "json-util.h"
#include "macro.h"

static json_object *json_copy_or_empty(json_object *o, json_type t) {
        if (o)
                return json_object_get(o);
        return t == json_type_object ? json_object_new_object() : json_object_new_array();
}

static json_object *json_string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

json_object *image_meta_to_json(const ImageMeta *m) {
        json_object *o = json_object_new_object(), *layers = json_object_new_array();
        const ImageConfig *c = m->config;

        if (!o || !layers) {
                json_object_put(o);
                json_object_put(layers);
                return NULL;
        }
        for (size_t i = 0; i < m->manifest->n_layers; i++)
                json_object_array_add(layers, json_object_new_string(m->manifest->layers[i].digest));

        json_object_object_add(o, "id", json_object_new_string(m->id));
        json_object_object_add(o, "reference", json_object_new_string(m->reference));
        json_object_object_add(o, "digest", json_object_new_string(m->digest));
        json_object_object_add(o, "indexDigest", json_string_or_null(m->index_digest));
        json_object_object_add(o, "configDigest", json_object_new_string(m->manifest->config_digest));
        json_object_object_add(o, "squashfs", json_object_new_string(m->squashfs));
        json_object_object_add(o, "format", json_object_new_string("squashfs"));
        json_object_object_add(o, "compressor", json_object_new_string(m->compressor));
        json_object_object_add(o, "size", json_object_new_int64((int64_t) m->size));
        json_object_object_add(o, "os", json_string_or_null(c->platform.os));
        json_object_object_add(o, "architecture", json_string_or_null(c->platform.architecture));
        json_object_object_add(o, "variant", json_string_or_null(c->platform.variant));
        json_object_object_add(o, "env", json_copy_or_empty(c->env, json_type_array));
        json_object_object_add(o, "entrypoint", json_copy_or_empty(c->entrypoint, json_type_array));
        json_object_object_add(o, "cmd", json_copy_or_empty(c->cmd, json_type_array));
        json_object_object_add(o, "workdir", json_object_new_string(c->working_dir ?: "/"));
        json_object_object_add(o, "user", json_object_new_string(c->user ?: ""));
        json_object_object_add(o, "labels", json_copy_or_empty(c->labels, json_type_object));
        json_object_object_add(o, "layers", layers);
        json_object_object_add(o, "pulledAt", json_object_new_int64((int64_t) time(NULL)));
        return o;
}

int image_meta_write(const char *image_dir, const ImageMeta *m) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *name = NULL, *text = NULL;
        const char *s;

        o = image_meta_to_json(m);
        if (!o)
                return -ENOMEM;
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (asprintf(&text, "%s\n", s) < 0 || asprintf(&name, "%s.meta.json", m->id) < 0) {
                text = name = NULL;
                return -ENOMEM;
        }
        return write_file_atomic(image_dir, name, text, strlen(text));
}
