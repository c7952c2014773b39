/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

/* The head of an HTTP/1.1 request as a browser sends it to gateway-proxy: request line and
 * header fields up to the empty line (RFC 9112 §2–§5), parsed strictly and bounded, because it
 * comes from anyone who can reach the proxy's port. */

#define HTTP_HEAD_MAX (16U * 1024U)
#define HTTP_HEAD_FIELDS_MAX 100U

typedef struct HttpHeadField {
        char *name;
        char *value;            /* leading and trailing whitespace removed */
} HttpHeadField;

typedef struct HttpHead {
        char *method;
        char *target;           /* origin-form: starts with "/" */
        char *version;          /* "HTTP/1.1" or "HTTP/1.0" */
        HttpHeadField *fields;
        size_t n_fields;
        size_t size;            /* bytes of the head, the empty line included */
} HttpHead;

/* > 0: a complete head of that many bytes was parsed into *ret; 0: not complete yet (read more);
 * -EBADMSG: not a valid request head; -E2BIG: longer than HTTP_HEAD_MAX or too many fields. */
int http_head_parse(const char *data, size_t size, HttpHead **ret);
HttpHead *http_head_free(HttpHead *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpHead *, http_head_free);

/* The value of the first field of that name (case-insensitive), or NULL. */
const char *http_head_get(const HttpHead *h, const char *name);
/* Whether a comma-separated field (Connection, Upgrade) lists token (case-insensitive). */
bool http_head_has_token(const HttpHead *h, const char *name, const char *token);
/* Whether it asks for a WebSocket (Upgrade: websocket, Connection: upgrade, GET). */
bool http_head_is_websocket(const HttpHead *h);
