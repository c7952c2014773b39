/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses JSON text from a client (an HTTP body, a D-Bus argument); every such text goes through
 * here. The whole text must be one JSON value (white space around it is fine) in valid UTF-8,
 * and no string or key may contain "\u0000": json-c keeps such a string whole, but everything
 * that reads it as a C string (names, keys, paths, references) would see it cut short, so what
 * was validated would not be what is used. Returns 0 and the value (NULL for "null"), or
 * -EBADMSG with the offset of the problem and a static description (ret_offset and ret_reason
 * may be NULL), or -ENOMEM. */
int json_parse_untrusted(const char *text, size_t size, json_object **ret, size_t *ret_offset,
                         const char **ret_reason);

/* Whether the n bytes at s are UTF-8 (no overlong forms, surrogates, nor code points past
 * U+10FFFF), as JSON strings must be: for text that reaches JSON without json_parse_untrusted(). */
/* True if s[0..len) is exactly one JSON value (strict RFC 8259 syntax, surrounding whitespace
 * allowed; UTF-8 checked; nesting deeper than 512 refused). */
bool json_text_valid(const char *s, size_t len);
bool utf8_is_valid(const char *s, size_t n);

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

/* Bytes (a log) as a JSON string: invalid UTF-8 becomes U+FFFD, so that the answer stays JSON. */
json_object *json_new_string_utf8_lossy(const char *s, size_t n);
