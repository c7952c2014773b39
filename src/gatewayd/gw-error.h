/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "macro.h"

/* One error vocabulary for both surfaces: an operation fails with a GwError, and the HTTP layer
 * turns it into a status plus {"error":{"code","message"}}, the bus layer into a named D-Bus
 * error. Keeping the mapping in one table means the two surfaces cannot drift apart. */

typedef enum GwErrorCode {
        GW_ERROR_NONE = 0,
        GW_ERROR_BAD_REQUEST,            /* 400: malformed request (e.g. JSON syntax) */
        GW_ERROR_INVALID_ARGUMENT,       /* 400: validation; message names the field */
        GW_ERROR_ACCESS_DENIED,          /* 403 */
        GW_ERROR_NOT_FOUND,              /* 404: route or generic object */
        GW_ERROR_NO_SUCH_SERVICE,        /* 404 */
        GW_ERROR_NO_SUCH_IMAGE,          /* 404 */
        GW_ERROR_NO_SUCH_JOB,            /* 404 */
        GW_ERROR_METHOD_NOT_ALLOWED,     /* 405 */
        GW_ERROR_ALREADY_EXISTS,         /* 409 */
        GW_ERROR_CONFLICT,               /* 409: state does not allow the operation */
        GW_ERROR_PAYLOAD_TOO_LARGE,      /* 413 */
        GW_ERROR_UNSUPPORTED_MEDIA_TYPE, /* 415 */
        GW_ERROR_LIMIT_EXCEEDED,         /* 429 */
        GW_ERROR_INTERNAL,               /* 500 */
        GW_ERROR_UNAVAILABLE,            /* 503 */
        GW_ERROR_INSUFFICIENT_STORAGE,   /* 507: the state file system is full */
        GW_ERROR_UNAUTHENTICATED,        /* 401: no valid credential (TCP/TLS listeners) */
        GW_ERROR_NO_SUCH_PLATFORM,       /* 404 */
        GW_ERROR_NO_SUCH_NODE,           /* 404: a platform's node */
        _GW_ERROR_MAX,
} GwErrorCode;

typedef struct GwError {
        GwErrorCode code;
        char *message;
} GwError;

#define GW_ERROR_NULL ((GwError) { .code = GW_ERROR_NONE })

/* Sets the error (unless one is set already) and returns -EINVAL-like negative errno fitting the
 * code, so "return gw_error_set(e, ...);" works in functions returning int. */
int gw_error_set(GwError *e, GwErrorCode code, const char *format, ...) _printf_(3, 4);
int gw_error_set_errno(GwError *e, int error, const char *format, ...) _printf_(3, 4);
void gw_error_free(GwError *e);
static inline bool gw_error_is_set(const GwError *e) {
        return e && e->code != GW_ERROR_NONE;
}

unsigned gw_error_http_status(GwErrorCode code);
const char *gw_error_http_code(GwErrorCode code);  /* "InvalidArgument", ... */
const char *gw_error_bus_name(GwErrorCode code);   /* "org.gatewayd.Gateway1.Error.InvalidArgument" */

/* Fills an sd_bus_error from a GwError; returns the negative errno sd-bus handlers return. */
int gw_error_to_bus(const GwError *e, sd_bus_error *ret);

#define _cleanup_gw_error_ _cleanup_(gw_error_free)
