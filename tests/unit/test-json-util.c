/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "test-main.h"

static json_object *parse_ok(const char *text) {
        json_object *o = (json_object *) 1;
        const char *reason = NULL;
        size_t off = 99;

        ck_assert_msg(json_parse_untrusted(text, strlen(text), &o, &off, &reason) == 0, "refused '%s': %s at %zu",
                      text, reason, off);
        return o;
}

static void parse_bad(const char *text, size_t size, size_t offset, const char *reason_part) {
        json_object *o = (json_object *) 1;
        const char *reason = NULL;
        size_t off = 99;

        ck_assert_msg(json_parse_untrusted(text, size, &o, &off, &reason) == -EBADMSG, "accepted '%s'", text);
        ck_assert_ptr_null(o);
        ck_assert_uint_eq(off, offset);
        ck_assert_ptr_nonnull(reason);
        if (reason_part)
                ck_assert_msg(strstr(reason, reason_part), "'%s' for '%s'", reason, text);
}

START_TEST(test_documents) {
        json_object *o;

        o = parse_ok("{\"name\": \"x\"}");
        ck_assert_str_eq(json_get_string(o, "name"), "x");
        json_object_put(o);
        o = parse_ok(" \r\n[1, 2]\n\t ");
        ck_assert_int_eq(json_object_array_length(o), 2);
        json_object_put(o);
        /* a bare number at the end is complete */
        o = parse_ok("42");
        ck_assert_int_eq(json_object_get_int(o), 42);
        json_object_put(o);
        ck_assert_ptr_null(parse_ok("null"));
        /* escapes that merely look like "\u0000" */
        o = parse_ok("{\"a\": \"\\\\u0000\", \"b\": \"\\u0001\\u1000\\\"u0000\\\\\\\\u0000\"}");
        ck_assert_str_eq(json_get_string(o, "a"), "\\u0000");
        ck_assert_str_eq(json_get_string(o, "b"), "\x01\xe1\x80\x80\"u0000\\\\u0000");
        json_object_put(o);
}
END_TEST

START_TEST(test_nul_escape) {
        /* in a value, a key, an array, nested, after other escapes; upper-case hex too */
        static const char *bad[] = {
                "{\"name\": \"a\\u0000b\"}",
                "{\"a\\u0000b\": 1}",
                "[\"\\u0000\"]",
                "{\"x\": {\"y\": [\"ok\", \"\\t\\\\\\u0000\"]}}",
                "\"\\u0000\"",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                parse_bad(bad[i], strlen(bad[i]), strstr(bad[i], "\\u0000") - bad[i], "\\u0000");
}
END_TEST

/* Callers that want only the verdict pass NULL for where and why. */
START_TEST(test_verdict_only) {
        json_object *o = NULL;

        ck_assert_int_eq(json_parse_untrusted("{\"a\": 1} x", 10, &o, NULL, NULL), -EBADMSG);
        ck_assert_ptr_null(o);
        ck_assert_int_eq(json_parse_untrusted("[\"\\u0000\"]", 10, &o, NULL, NULL), -EBADMSG);
        ck_assert_int_eq(json_parse_untrusted("[1]", 3, &o, NULL, NULL), 0);
        ck_assert_int_eq(json_object_array_length(o), 1);
        json_object_put(o);
}
END_TEST

START_TEST(test_malformed) {
        parse_bad("{\"name\": \"x\", ", 14, 14, "end of input");
        parse_bad("{\"a\":1}}", 8, 7, "after the document");
        parse_bad("{\"a\":1} x", 9, 8, "after the document");
        parse_bad("{name: 1}", 9, 1, NULL);
        parse_bad("", 0, 0, NULL);
        parse_bad("\"\xff\"", 3, 1, NULL);
        parse_bad("\x00\x01", 2, 0, NULL);
        /* a NUL byte inside the text (not an escape) ends nothing early */
        parse_bad("{\"a\":1}\x00", 8, 7, NULL);
}
END_TEST

/* json-c's UTF-8 check takes any lead byte with the right number of continuation bytes: overlong
 * forms, surrogates and code points past U+10FFFF are no UTF-8 (and no D-Bus string). */
START_TEST(test_invalid_utf8) {
        static const char *bad[] = {
                "[\"\xc0\xa2\"]",                     /* overlong '"' */
                "{\"a\": \"x\xc1\xbf\"}",            /* overlong DEL */
                "[\"\xe0\x80\xaf\"]",                 /* overlong '/' in three bytes */
                "[\"\xed\xa0\x80\"]",                 /* a surrogate, U+D800 */
                "{\"\xf0\x80\x80\xaf\": 1}",         /* overlong in four bytes, in a key */
                "[\"\xf4\x90\x80\x80\"]",            /* U+110000 */
                "[\"\xf8\x88\x80\x80\x80\"]",       /* five bytes */
        };
        json_object *o;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                parse_bad(bad[i], strlen(bad[i]), strcspn(bad[i], "\xc0\xc1\xe0\xed\xf0\xf4\xf8"), NULL);
        /* the shortest forms of the same, and the last code point */
        o = parse_ok("[\"\xc2\xa2\xe0\xa0\x80\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"]");
        json_object_put(o);
}
END_TEST

START_TEST(test_strict_grammar) {
        /* json-c's tokener takes these; RFC 8259 does not, and neither may gatewayd, which serves
         * what it accepted back as JSON (a fuzzer's find: "0000e" read back as something else). */
        static const struct { const char *text; size_t offset; } bad[] = {
                { "[0000e]", 2 }, { "[01]", 2 }, { "[1.]", 3 }, { "[1e]", 3 }, { "[-]", 2 },
                { "[NaN]", 1 }, { "[Infinity]", 1 }, { "{'a': 1}", 1 }, { "['a']", 1 },
        };
        json_object *o;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                parse_bad(bad[i].text, strlen(bad[i].text), bad[i].offset, NULL);
        o = parse_ok("[0, -0, 1.5, -2e10, 3E+2, 4e-3, 0.25]");
        json_object_put(o);
}
END_TEST

int main(void) {
        Suite *s = suite_create("json-util");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_documents);
        tcase_add_test(tc, test_nul_escape);
        tcase_add_test(tc, test_strict_grammar);
        tcase_add_test(tc, test_malformed);
        tcase_add_test(tc, test_verdict_only);
        tcase_add_test(tc, test_invalid_utf8);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
