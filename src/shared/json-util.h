/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

static inline void json_object_putp(json_object **o) {
        if (*o)
                json_object_put(*o);
}

/* The string member key of o, or NULL if missing or not a string. */
static inline const char *json_get_string(json_object *o, const char *key) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static inline json_object *json_get_typed(json_object *o, const char *key, json_type t) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, t))
                return NULL;
        return v;
}

/* Compact JSON as every surface sends it (no "\/" escapes: references and paths stay legible). */
#define JSON_TEXT_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static inline const char *json_text(json_object *o) {
        return json_object_to_json_string_ext(o, JSON_TEXT_FLAGS);
}

/* A non-negative integer member, 0 if missing or not a number. */
static inline uint64_t json_get_u64(json_object *o, const char *key) {
        json_object *v;
        int64_t x;

        if (!o || !json_object_object_get_ex(o, key, &v))
                return 0;
        x = json_object_get_int64(v);
        return x > 0 ? (uint64_t) x : 0;
}

/* json_tokener_parse_verbose() with a deeper limit. Job results and interim results may nest as
 * deep as the worker's json_text_valid() accepts (512 levels); json-c's default stops at 32,
 * which turned such results into errors. The limit leaves room for the envelope of an event
 * line around a result. Returns NULL for JSON null too: *ret_error tells (json_tokener_success
 * then). */
#define JSON_RESULT_DEPTH_MAX 520

static inline json_object *json_parse_deep(const char *text, enum json_tokener_error *ret_error) {
        json_tokener *tok = json_tokener_new_ex(JSON_RESULT_DEPTH_MAX);
        enum json_tokener_error err;
        json_object *o;

        if (!tok) {
                if (ret_error)
                        *ret_error = json_tokener_error_parse_unexpected; /* (json-c has no ENOMEM code) */
                return NULL;
        }
        o = json_tokener_parse_ex(tok, text, -1);
        err = json_tokener_get_error(tok);
        if (err != json_tokener_success) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        if (ret_error)
                *ret_error = err;
        return o;
}
