/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>

#include "gw-error.h"

#define BUS_ERROR_PREFIX "org.gatewayd.Gateway1.Error."

static const struct {
        unsigned status;
        const char *code;
        const char *bus_suffix;
        int errnum;
} table[_GW_ERROR_MAX] = {
        [GW_ERROR_NONE] = { 200, "OK", "OK", 0 },
        [GW_ERROR_BAD_REQUEST] = { 400, "BadRequest", "BadRequest", EBADMSG },
        [GW_ERROR_INVALID_ARGUMENT] = { 400, "InvalidArgument", "InvalidArgument", EINVAL },
        [GW_ERROR_ACCESS_DENIED] = { 403, "AccessDenied", "AccessDenied", EACCES },
        [GW_ERROR_NOT_FOUND] = { 404, "NotFound", "NotFound", ENOENT },
        [GW_ERROR_NO_SUCH_SERVICE] = { 404, "NotFound", "NoSuchService", ENOENT },
        [GW_ERROR_NO_SUCH_IMAGE] = { 404, "NotFound", "NoSuchImage", ENOENT },
        [GW_ERROR_NO_SUCH_JOB] = { 404, "NotFound", "NoSuchJob", ENOENT },
        [GW_ERROR_METHOD_NOT_ALLOWED] = { 405, "MethodNotAllowed", "MethodNotAllowed", EOPNOTSUPP },
        [GW_ERROR_ALREADY_EXISTS] = { 409, "AlreadyExists", "AlreadyExists", EEXIST },
        [GW_ERROR_CONFLICT] = { 409, "Conflict", "Conflict", EBUSY },
        [GW_ERROR_PAYLOAD_TOO_LARGE] = { 413, "PayloadTooLarge", "PayloadTooLarge", E2BIG },
        [GW_ERROR_UNSUPPORTED_MEDIA_TYPE] = { 415, "UnsupportedMediaType", "UnsupportedMediaType", EPROTO },
        [GW_ERROR_LIMIT_EXCEEDED] = { 429, "LimitExceeded", "LimitExceeded", EUSERS },
        [GW_ERROR_INTERNAL] = { 500, "Internal", "Internal", EIO },
        [GW_ERROR_UNAVAILABLE] = { 503, "Unavailable", "Unavailable", EAGAIN },
        [GW_ERROR_INSUFFICIENT_STORAGE] = { 507, "InsufficientStorage", "InsufficientStorage", ENOSPC },
        [GW_ERROR_UNAUTHENTICATED] = { 401, "Unauthenticated", "Unauthenticated", EKEYREJECTED },
        [GW_ERROR_NO_SUCH_PLATFORM] = { 404, "NotFound", "NoSuchPlatform", ENOENT },
        [GW_ERROR_NO_SUCH_NODE] = { 404, "NotFound", "NoSuchNode", ENOENT },
};

static _printf_(3, 0) int gw_error_setv(GwError *e, GwErrorCode code, const char *format, va_list ap) {
        if (e && e->code == GW_ERROR_NONE) {
                e->code = code;
                if (vasprintf(&e->message, format, ap) < 0)
                        e->message = NULL;
        }
        return -table[code].errnum;
}

int gw_error_set(GwError *e, GwErrorCode code, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = gw_error_setv(e, code, format, ap);
        va_end(ap);
        return r;
}

int gw_error_set_errno(GwError *e, int error, const char *format, ...) {
        GwErrorCode code;
        va_list ap;

        switch (abs(error)) {
        case ENOMEM:
        case EIO:
        default:
                code = GW_ERROR_INTERNAL;
                break;
        case EACCES:
        case EPERM:
                code = GW_ERROR_ACCESS_DENIED;
                break;
        case ENOENT:
                code = GW_ERROR_NOT_FOUND;
                break;
        case EEXIST:
                code = GW_ERROR_ALREADY_EXISTS;
                break;
        case EINVAL:
                code = GW_ERROR_INVALID_ARGUMENT;
                break;
        case EAGAIN:
        case ESHUTDOWN:
                code = GW_ERROR_UNAVAILABLE;
                break;
        case ENOSPC:
        case EDQUOT:
                code = GW_ERROR_INSUFFICIENT_STORAGE;
                break;
        }

        errno = abs(error);
        va_start(ap, format);
        gw_error_setv(e, code, format, ap);
        va_end(ap);
        return -abs(error);
}

void gw_error_free(GwError *e) {
        if (!e)
                return;
        e->message = mfree(e->message);
        e->code = GW_ERROR_NONE;
}

unsigned gw_error_http_status(GwErrorCode code) {
        return table[code].status;
}

const char *gw_error_http_code(GwErrorCode code) {
        return table[code].code;
}

const char *gw_error_bus_name(GwErrorCode code) {
        static char names[_GW_ERROR_MAX][64];

        if (!names[code][0])
                snprintf(names[code], sizeof(names[code]), BUS_ERROR_PREFIX "%s", table[code].bus_suffix);
        return names[code];
}

int gw_error_to_bus(const GwError *e, sd_bus_error *ret) {
        GwErrorCode code = e && e->code != GW_ERROR_NONE ? e->code : GW_ERROR_INTERNAL;

        return sd_bus_error_set(ret, gw_error_bus_name(code),
                                e && e->message ? e->message : "Internal error");
}
