/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* multipart/form-data bodies as the serverless gateway's client uploads them
 * (src/gatewayd/multipart.c): parts, data across piece boundaries, and what is refused. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "multipart.h"
#include "test-main.h"

typedef struct Collect {
        char out[4096];
        size_t n;
} Collect;

static void put(Collect *c, const char *s, size_t n) {
        ck_assert_uint_lt(c->n + n, sizeof(c->out));
        memcpy(c->out + c->n, s, n);
        c->n += n;
        c->out[c->n] = 0;
}

static int on_begin(const MultipartPart *p, void *userdata) {
        Collect *c = userdata;

        put(c, "[", 1);
        put(c, p->name, strlen(p->name));
        if (p->filename) {
                put(c, "|", 1);
                put(c, p->filename, strlen(p->filename));
        }
        put(c, "]", 1);
        return 0;
}

static int on_data(const void *d, size_t n, void *userdata) {
        put(userdata, d, n);
        return 0;
}

static int on_end(void *userdata) {
        put(userdata, ";", 1);
        return 0;
}

static const MultipartCallbacks cb = { on_begin, on_data, on_end };

/* Parses body in pieces of step bytes (0: whole); returns the result, and the trace in c. */
static int parse(const char *boundary, const char *body, size_t size, size_t step, Collect *c, char **error) {
        MultipartParser *p = NULL;
        int r = 0;

        memset(c, 0, sizeof(*c));
        ck_assert_int_eq(multipart_parser_new(boundary, &cb, c, &p), 0);
        for (size_t off = 0; off < size && r >= 0;) {
                size_t n = step ? MIN(step, size - off) : size;
                r = multipart_parser_feed(p, body + off, n);
                off += n;
        }
        if (r >= 0)
                r = multipart_parser_finish(p);
        if (error)
                *error = strdup(multipart_parser_error(p));
        multipart_parser_free(p);
        return r;
}

#define REQUESTS_BODY                                                                          \
        "--3d6b6a416f9b5\r\n"                                                                  \
        "Content-Disposition: form-data; name=\"title\"\r\n\r\n"                               \
        "hello\r\n"                                                                            \
        "--3d6b6a416f9b5\r\n"                                                                  \
        "Content-Disposition: form-data; name=\"arguments\"\r\n\r\n"                           \
        "{}\r\n"                                                                               \
        "--3d6b6a416f9b5\r\n"                                                                  \
        "Content-Disposition: form-data; name=\"artifact\"; filename=\"artifact.tar\"\r\n\r\n" \
        "a\r\nb\r\n--3d6b6a416f9\r\r\n--\r\n"                                                  \
        "\r\n--3d6b6a416f9b5--\r\n"

START_TEST(test_parts) {
        static const char body[] = REQUESTS_BODY;
        static const char expect[] = "[title]hello;[arguments]{};[artifact|artifact.tar]a\r\nb\r\n--3d6b6a416f9\r\r\n--\r\n;";
        Collect c;

        for (size_t step = 0; step < 40; step++) {
                ck_assert_int_eq(parse("3d6b6a416f9b5", body, sizeof(body) - 1, step, &c, NULL), 0);
                ck_assert_str_eq(c.out, expect);
        }
        /* an empty part, header names in any case, other headers, an epilogue */
        {
                static const char b2[] = "--b\r\ncontent-DISPOSITION: form-data; name=x\r\nX-Other: 1\r\n\r\n\r\n--b--\r\nepilogue";
                ck_assert_int_eq(parse("b", b2, sizeof(b2) - 1, 0, &c, NULL), 0);
                ck_assert_str_eq(c.out, "[x];");
        }
}
END_TEST

START_TEST(test_boundary) {
        _cleanup_free_ char *b = NULL;

        ck_assert_int_eq(multipart_boundary_from_content_type("multipart/form-data; boundary=3d6b6a416f9b5", &b), 0);
        ck_assert_str_eq(b, "3d6b6a416f9b5");
        b = mfree(b);
        ck_assert_int_eq(multipart_boundary_from_content_type("Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b:c\"", &b), 0);
        ck_assert_str_eq(b, "a b:c");
        b = mfree(b);
        ck_assert_int_eq(multipart_boundary_from_content_type(NULL, &b), -EMEDIUMTYPE);
        ck_assert_int_eq(multipart_boundary_from_content_type("application/json", &b), -EMEDIUMTYPE);
        ck_assert_int_eq(multipart_boundary_from_content_type("multipart/form-datax; boundary=a", &b), -EMEDIUMTYPE);
        ck_assert_int_eq(multipart_boundary_from_content_type("multipart/form-data", &b), -EINVAL);
        ck_assert_int_eq(multipart_boundary_from_content_type("multipart/form-data; boundary=", &b), -EINVAL);
        ck_assert_int_eq(multipart_boundary_from_content_type("multipart/form-data; boundary=\"a\"b", &b), -EINVAL);
        ck_assert_int_eq(multipart_boundary_from_content_type("multipart/form-data; boundary=a; boundary=b", &b), -EINVAL);
        ck_assert_int_eq(multipart_boundary_from_content_type(
                "multipart/form-data; boundary=0123456789012345678901234567890123456789012345678901234567890123456789x", &b), -EINVAL);
        ck_assert_int_eq(multipart_boundary_from_content_type("multipart/form-data; boundary=\"a\\\"b\"", &b), -EINVAL);
        ck_assert_ptr_null(b);
}
END_TEST

START_TEST(test_refused) {
        static const struct { const char *body, *words; } cases[] = {
                { "", "empty" },
                { "preamble\r\n--b\r\nContent-Disposition: form-data; name=x\r\n\r\n\r\n--b--", "preamble" },
                { "--b\r\nContent-Disposition: form-data; name=x\r\n\r\nno end", "truncated" },
                { "--b\r\nContent-Disposition: form-data; name=x\r\n\r\n\r\n--bXY", "neither CRLF" },
                { "--b\nContent-Disposition: form-data; name=x\n\n\n--b--", "neither CRLF" },
                { "--b\r\nContent-Disposition: form-data; name=x\n\r\n\r\n--b--", "CRLF" },
                { "--b\r\nContent-Type: text/plain\r\n\r\n\r\n--b--", "no Content-Disposition" },
                { "--b\r\nContent-Disposition: attachment; name=x\r\n\r\n\r\n--b--", "not form-data" },
                { "--b\r\nContent-Disposition: form-data\r\n\r\n\r\n--b--", "no field name" },
                { "--b\r\nContent-Disposition: form-data; name=\"\"\r\n\r\n\r\n--b--", "no field name" },
                { "--b\r\nContent-Disposition: form-data; name=x; name=y\r\n\r\n\r\n--b--", "repeated" },
                { "--b\r\nContent-Disposition: form-data; name=x\r\nContent-Disposition: form-data; name=y\r\n\r\n\r\n--b--", "two" },
                { "--b\r\nContent-Disposition: form-data; name=x\r\n filename=y\r\n\r\n\r\n--b--", "folded" },
                { "--b\r\nContent-Disposition: form-data; name=\"x\r\n\r\n\r\n--b--", "parameter value" },
                { "--b\r\nContent-Disposition: form-data; name=x\r\nContent-Transfer-Encoding: base64\r\n\r\n\r\n--b--", "binary" },
                { "--b\r\nBad Header: x\r\nContent-Disposition: form-data; name=x\r\n\r\n\r\n--b--", "header name" },
        };
        Collect c;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                for (size_t step = 0; step < 3; step++) {
                        _cleanup_free_ char *error = NULL;
                        ck_assert_int_eq(parse("b", cases[i].body, strlen(cases[i].body), step, &c, &error), -EBADMSG);
                        ck_assert_msg(strstr(error, cases[i].words), "case %zu: '%s' lacks '%s'", i, error, cases[i].words);
                }
}
END_TEST

START_TEST(test_limits) {
        _cleanup_free_ char *body = NULL, *error = NULL;
        size_t n = 0;
        Collect c;
        FILE *f = open_memstream(&body, &n);

        /* headers past MULTIPART_HEADERS_MAX */
        fprintf(f, "--b\r\nContent-Disposition: form-data; name=x\r\n");
        for (unsigned i = 0; i < MULTIPART_HEADERS_MAX / 10; i++)
                fprintf(f, "X-Pad: %03u\r\n", i % 1000);
        fprintf(f, "\r\n\r\n--b--");
        fclose(f);
        ck_assert_int_eq(parse("b", body, n, 0, &c, &error), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(error, "too long"));
        body = mfree(body), error = mfree(error);

        /* parts past MULTIPART_PARTS_MAX */
        f = open_memstream(&body, &n);
        for (unsigned i = 0; i <= MULTIPART_PARTS_MAX; i++)
                fprintf(f, "--b\r\nContent-Disposition: form-data; name=f%u\r\n\r\nv\r\n", i);
        fprintf(f, "--b--");
        fclose(f);
        ck_assert_int_eq(parse("b", body, n, 0, &c, &error), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(error, "too many parts"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("multipart");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_parts);
        tcase_add_test(tc, test_boundary);
        tcase_add_test(tc, test_refused);
        tcase_add_test(tc, test_limits);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
