/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "gw-error.h"
#include "macro.h"

static const struct {
        GwErrorCode code;
        unsigned status;
        const char *http_code;
        const char *bus_name;
} expected[] = {
        { GW_ERROR_BAD_REQUEST,            400, "BadRequest",           "org.gatewayd.Gateway1.Error.BadRequest" },
        { GW_ERROR_INVALID_ARGUMENT,       400, "InvalidArgument",      "org.gatewayd.Gateway1.Error.InvalidArgument" },
        { GW_ERROR_ACCESS_DENIED,          403, "AccessDenied",         "org.gatewayd.Gateway1.Error.AccessDenied" },
        { GW_ERROR_NOT_FOUND,              404, "NotFound",             "org.gatewayd.Gateway1.Error.NotFound" },
        { GW_ERROR_NO_SUCH_SERVICE,        404, "NotFound",             "org.gatewayd.Gateway1.Error.NoSuchService" },
        { GW_ERROR_NO_SUCH_IMAGE,          404, "NotFound",             "org.gatewayd.Gateway1.Error.NoSuchImage" },
        { GW_ERROR_NO_SUCH_JOB,            404, "NotFound",             "org.gatewayd.Gateway1.Error.NoSuchJob" },
        { GW_ERROR_METHOD_NOT_ALLOWED,     405, "MethodNotAllowed",     "org.gatewayd.Gateway1.Error.MethodNotAllowed" },
        { GW_ERROR_ALREADY_EXISTS,         409, "AlreadyExists",        "org.gatewayd.Gateway1.Error.AlreadyExists" },
        { GW_ERROR_CONFLICT,               409, "Conflict",             "org.gatewayd.Gateway1.Error.Conflict" },
        { GW_ERROR_PAYLOAD_TOO_LARGE,      413, "PayloadTooLarge",      "org.gatewayd.Gateway1.Error.PayloadTooLarge" },
        { GW_ERROR_UNSUPPORTED_MEDIA_TYPE, 415, "UnsupportedMediaType", "org.gatewayd.Gateway1.Error.UnsupportedMediaType" },
        { GW_ERROR_LIMIT_EXCEEDED,         429, "LimitExceeded",        "org.gatewayd.Gateway1.Error.LimitExceeded" },
        { GW_ERROR_INTERNAL,               500, "Internal",             "org.gatewayd.Gateway1.Error.Internal" },
        { GW_ERROR_UNAVAILABLE,            503, "Unavailable",          "org.gatewayd.Gateway1.Error.Unavailable" },
        { GW_ERROR_INSUFFICIENT_STORAGE,   507, "InsufficientStorage",  "org.gatewayd.Gateway1.Error.InsufficientStorage" },
        { GW_ERROR_UNAUTHENTICATED,        401, "Unauthenticated",      "org.gatewayd.Gateway1.Error.Unauthenticated" },
        { GW_ERROR_NO_SUCH_PLATFORM,       404, "NotFound",             "org.gatewayd.Gateway1.Error.NoSuchPlatform" },
        { GW_ERROR_NO_SUCH_NODE,           404, "NotFound",             "org.gatewayd.Gateway1.Error.NoSuchNode" },
};

START_TEST(test_table) {
        /* Every code is listed above, so a new code without a mapping fails here. */
        ck_assert_uint_eq(ELEMENTSOF(expected), _GW_ERROR_MAX - 1);
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                GwErrorCode c = expected[i].code;
                ck_assert_uint_eq(gw_error_http_status(c), expected[i].status);
                ck_assert_str_eq(gw_error_http_code(c), expected[i].http_code);
                ck_assert_str_eq(gw_error_bus_name(c), expected[i].bus_name);
                /* Stable pointer, same text on the second call (it is cached). */
                ck_assert_ptr_eq(gw_error_bus_name(c), gw_error_bus_name(c));
        }
}
END_TEST

/* sd-bus has no public validity check for error names; they follow interface name rules. */
START_TEST(test_bus_names_are_valid) {
        for (GwErrorCode c = GW_ERROR_BAD_REQUEST; c < _GW_ERROR_MAX; c++) {
                const char *n = gw_error_bus_name(c);
                ck_assert_uint_lt(strlen(n), 255);
                ck_assert(strneq(n, "org.gatewayd.Gateway1.Error.", strlen("org.gatewayd.Gateway1.Error.")));
                for (const char *p = n; *p; p++)
                        ck_assert_msg((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                                      *p == '.' || *p == '_', "bad char in %s", n);
        }
}
END_TEST

START_TEST(test_docs_agree) {
        /* The D-Bus API document's error table must match the code: name → HTTP status. */
        const char *srcdir = getenv("GATEWAYD_SOURCE_DIR");
        char path[4096], line[1024];
        unsigned n_rows = 0;
        FILE *f;

        if (!srcdir)
                return;
        snprintf(path, sizeof(path), "%s/docs/dbus-api.md", srcdir);
        f = fopen(path, "re");
        ck_assert_msg(f, "cannot open %s", path);
        while (fgets(line, sizeof(line), f)) {
                char name[256];
                unsigned status;
                bool found = false;

                if (sscanf(line, "| `org.gatewayd.Gateway1.Error.%255[A-Za-z]` | %u |", name, &status) != 2)
                        continue;
                n_rows++;
                for (GwErrorCode c = GW_ERROR_BAD_REQUEST; c < _GW_ERROR_MAX; c++) {
                        char full[300];
                        snprintf(full, sizeof(full), "org.gatewayd.Gateway1.Error.%s", name);
                        if (streq(gw_error_bus_name(c), full)) {
                                ck_assert_msg(gw_error_http_status(c) == status, "%s: doc says %u, code says %u",
                                              full, status, gw_error_http_status(c));
                                found = true;
                        }
                }
                ck_assert_msg(found, "docs/dbus-api.md lists %s, which the code does not know", name);
        }
        fclose(f);
        ck_assert_uint_gt(n_rows, 5);
}
END_TEST

START_TEST(test_set) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        ck_assert(!gw_error_is_set(&e));
        ck_assert(!gw_error_is_set(NULL));
        ck_assert_int_eq(gw_error_set(&e, GW_ERROR_INVALID_ARGUMENT, "name: %s", "bad"), -EINVAL);
        ck_assert(gw_error_is_set(&e));
        ck_assert_int_eq(e.code, GW_ERROR_INVALID_ARGUMENT);
        ck_assert_str_eq(e.message, "name: bad");

        /* The first error wins: the innermost failure is the one that explains it. */
        ck_assert_int_eq(gw_error_set(&e, GW_ERROR_INTERNAL, "later"), -EIO);
        ck_assert_int_eq(e.code, GW_ERROR_INVALID_ARGUMENT);
        ck_assert_str_eq(e.message, "name: bad");

        gw_error_free(&e);
        ck_assert(!gw_error_is_set(&e));
        ck_assert_ptr_null(e.message);
        gw_error_free(NULL);

        /* A NULL error only computes the return value. */
        ck_assert_int_eq(gw_error_set(NULL, GW_ERROR_ALREADY_EXISTS, "x"), -EEXIST);
        ck_assert_int_eq(gw_error_set(NULL, GW_ERROR_NO_SUCH_SERVICE, "x"), -ENOENT);
        ck_assert_int_eq(gw_error_set(NULL, GW_ERROR_ACCESS_DENIED, "x"), -EACCES);
        for (GwErrorCode c = GW_ERROR_BAD_REQUEST; c < _GW_ERROR_MAX; c++)
                ck_assert_int_lt(gw_error_set(NULL, c, "x"), 0);
}
END_TEST

START_TEST(test_set_errno) {
        static const struct { int error; GwErrorCode code; } map[] = {
                { ENOMEM, GW_ERROR_INTERNAL },
                { EIO, GW_ERROR_INTERNAL },
                { ENOSPC, GW_ERROR_INSUFFICIENT_STORAGE },
                { EDQUOT, GW_ERROR_INSUFFICIENT_STORAGE },
                { EACCES, GW_ERROR_ACCESS_DENIED },
                { EPERM, GW_ERROR_ACCESS_DENIED },
                { ENOENT, GW_ERROR_NOT_FOUND },
                { EEXIST, GW_ERROR_ALREADY_EXISTS },
                { EINVAL, GW_ERROR_INVALID_ARGUMENT },
                { EAGAIN, GW_ERROR_UNAVAILABLE },
                { ESHUTDOWN, GW_ERROR_UNAVAILABLE },
        };

        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                for (int sign = -1; sign <= 1; sign += 2) {
                        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
                        ck_assert_int_eq(gw_error_set_errno(&e, sign * map[i].error, "failed: %m"), -map[i].error);
                        ck_assert_int_eq(e.code, map[i].code);
                        /* %m expands to the error passed, not whatever errno happened to be. */
                        char want[256];
                        snprintf(want, sizeof(want), "failed: %s", strerror(map[i].error));
                        ck_assert_str_eq(e.message, want);
                }
}
END_TEST

START_TEST(test_to_bus) {
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error b = SD_BUS_ERROR_NULL;
                GwError e = { .code = expected[i].code, .message = (char *) "the message" };
                int r = gw_error_to_bus(&e, &b);

                ck_assert_int_lt(r, 0);
                ck_assert_str_eq(b.name, expected[i].bus_name);
                ck_assert_str_eq(b.message, "the message");
        }

        /* An unset error or one without a message still makes a named error, never success. */
        _cleanup_(sd_bus_error_free) sd_bus_error b1 = SD_BUS_ERROR_NULL, b2 = SD_BUS_ERROR_NULL;
        GwError empty = GW_ERROR_NULL, nomsg = { .code = GW_ERROR_CONFLICT };
        ck_assert_int_lt(gw_error_to_bus(&empty, &b1), 0);
        ck_assert_str_eq(b1.name, "org.gatewayd.Gateway1.Error.Internal");
        ck_assert_int_lt(gw_error_to_bus(&nomsg, &b2), 0);
        ck_assert_str_eq(b2.name, "org.gatewayd.Gateway1.Error.Conflict");
        ck_assert_ptr_nonnull(b2.message);
}
END_TEST

static Suite *gw_error_suite(void) {
        Suite *s = suite_create("gw-error");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_table);
        tcase_add_test(tc, test_bus_names_are_valid);
        tcase_add_test(tc, test_docs_agree);
        tcase_add_test(tc, test_set);
        tcase_add_test(tc, test_set_errno);
        tcase_add_test(tc, test_to_bus);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(gw_error_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
