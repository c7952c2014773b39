/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <stdio.h>

#include "line-splitter.h"
#include "macro.h"
#include "json-util.h"
#include "markers.h"
#include "utf8.h"

/* Collects what the parser reports, fed through the real line splitter as the runner does. */
typedef struct Capture {
        char interim[16][256];
        size_t n_interim;
        char warnings[16][512];
        size_t n_warnings;
        MarkerParser *parser;
        LineSplitter splitter;
} Capture;

static int on_interim(const char *json, size_t len, size_t index, void *userdata) {
        Capture *c = userdata;
        ck_assert_uint_eq(index, c->n_interim);
        ck_assert_uint_eq(strlen(json), len);
        if (c->n_interim < 16)
                snprintf(c->interim[c->n_interim], 256, "%s", json);
        c->n_interim++;
        return 0;
}

static void on_warning(const char *message, void *userdata) {
        Capture *c = userdata;
        if (c->n_warnings < 16)
                snprintf(c->warnings[c->n_warnings], 512, "%s", message);
        c->n_warnings++;
}

static int on_line(const char *data, size_t len, bool continued, void *userdata) {
        Capture *c = userdata;
        ck_assert(data[len] == 0);
        return marker_parser_feed(c->parser, data, len, continued);
}

static const MarkerLimits default_limits = {
        .result_max = 16 * 1024 * 1024, .interim_max = 1024 * 1024, .interim_count_max = 10000,
};

static Capture *run_limits(const char *output, size_t n, const MarkerLimits *limits, size_t max_line) {
        Capture *c = calloc(1, sizeof(*c));
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(marker_parser_new(limits, on_interim, on_warning, c, &c->parser), 0);
        line_splitter_init(&c->splitter, max_line, on_line, c);
        /* byte by byte as well as whole: splitting must not matter */
        ck_assert_int_eq(line_splitter_feed(&c->splitter, output, n), 0);
        ck_assert_int_eq(line_splitter_flush(&c->splitter), 0);
        ck_assert_int_eq(marker_parser_finish(c->parser), 0);
        return c;
}

static Capture *run(const char *output) {
        return run_limits(output, strlen(output), &default_limits, default_limits.result_max + 64);
}

static void capture_free(Capture *c) {
        line_splitter_done(&c->splitter);
        marker_parser_free(c->parser);
        free(c);
}

static const char *result(Capture *c) {
        return marker_parser_result(c->parser, NULL);
}

START_TEST(test_single_line) {
        Capture *c = run("hello\nPlanQK:Job:Result: {\"a\": 1}\nbye\n");
        ck_assert(marker_parser_has_result(c->parser));
        ck_assert_str_eq(result(c), "{\"a\": 1}");
        ck_assert_uint_eq(c->n_warnings, 0);
        capture_free(c);
}
END_TEST

START_TEST(test_single_line_crlf_and_no_space) {
        Capture *c = run("PlanQK:Job:Result:[1,2]\r\n");
        ck_assert_str_eq(result(c), "[1,2]");
        capture_free(c);
}
END_TEST

START_TEST(test_last_line_without_newline) {
        Capture *c = run("x\nPlanQK:Job:Result: 42");
        ck_assert_str_eq(result(c), "42");
        capture_free(c);
}
END_TEST

START_TEST(test_scalar_results) {
        Capture *c = run("PlanQK:Job:Result: null\n");
        ck_assert(marker_parser_has_result(c->parser));
        ck_assert_str_eq(result(c), "null");
        capture_free(c);
        c = run("PlanQK:Job:Result: \"s\"\n");
        ck_assert_str_eq(result(c), "\"s\"");
        capture_free(c);
}
END_TEST

START_TEST(test_not_at_line_start) {
        Capture *c = run(" PlanQK:Job:Result: 1\nsay PlanQK:Job:Result: 2\n");
        ck_assert(!marker_parser_has_result(c->parser));
        ck_assert_uint_eq(c->n_warnings, 0);
        capture_free(c);
}
END_TEST

START_TEST(test_multiline) {
        Capture *c = run("start\nPlanQK:Job:MultilineResult\n{\n  \"a\": [1,\n 2]\n}\nPlanQK:Job:MultilineResult\nend\n");
        ck_assert_str_eq(result(c), "{\n  \"a\": [1,\n 2]\n}");
        ck_assert_uint_eq(c->n_warnings, 0);
        capture_free(c);
}
END_TEST

START_TEST(test_multiline_crlf_and_trailing_blanks) {
        Capture *c = run("PlanQK:Job:MultilineResult  \r\n[\r\n1\r\n]\r\nPlanQK:Job:MultilineResult\t\r\n");
        ck_assert_str_eq(result(c), "[\n1\n]");
        capture_free(c);
}
END_TEST

START_TEST(test_first_wins_multiline_then_single) {
        Capture *c = run("PlanQK:Job:MultilineResult\n{\"first\":true}\nPlanQK:Job:MultilineResult\n"
                         "PlanQK:Job:Result: {\"second\":true}\n");
        ck_assert_str_eq(result(c), "{\"first\":true}");
        ck_assert_uint_eq(c->n_warnings, 1);
        ck_assert_ptr_nonnull(strstr(c->warnings[0], "line 4"));
        ck_assert_ptr_nonnull(strstr(c->warnings[0], "already set on line 1"));
        capture_free(c);
}
END_TEST

START_TEST(test_first_wins_single_then_multiline) {
        Capture *c = run("PlanQK:Job:Result: 1\nPlanQK:Job:MultilineResult\n2\nPlanQK:Job:MultilineResult\n"
                         "PlanQK:Job:Result: 3\n");
        ck_assert_str_eq(result(c), "1");
        ck_assert_uint_eq(c->n_warnings, 2);
        capture_free(c);
}
END_TEST

START_TEST(test_invalid_then_valid) {
        Capture *c = run("PlanQK:Job:Result: {broken\nPlanQK:Job:Result: {\"ok\":1}\n");
        ck_assert_str_eq(result(c), "{\"ok\":1}");
        ck_assert_uint_eq(c->n_warnings, 1);
        ck_assert_ptr_nonnull(strstr(c->warnings[0], "not valid JSON"));
        ck_assert_ptr_nonnull(strstr(c->warnings[0], "line 1"));
        capture_free(c);
}
END_TEST

START_TEST(test_invalid_forms) {
        static const char * const bad[] = {
                "PlanQK:Job:Result:\n",                 /* empty */
                "PlanQK:Job:Result: {'a': 1}\n",        /* single quotes */
                "PlanQK:Job:Result: {\"a\": 1} x\n",    /* trailing garbage */
                "PlanQK:Job:Result: 1 2\n",
                "PlanQK:Job:Result: [1,]\n",            /* trailing comma */
                "PlanQK:Job:Result: nul\n",
                "PlanQK:Job:Result: \"unterminated\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Capture *c = run(bad[i]);
                ck_assert_msg(!marker_parser_has_result(c->parser), "accepted: %s", bad[i]);
                ck_assert_uint_eq(c->n_warnings, 1);
                capture_free(c);
        }
}
END_TEST

START_TEST(test_embedded_nul) {
        static const char out[] = "PlanQK:Job:Result: {}\0garbage\n";
        Capture *c = run_limits(out, sizeof(out) - 1, &default_limits, 1024);
        ck_assert(!marker_parser_has_result(c->parser));
        ck_assert_uint_eq(c->n_warnings, 1);
        capture_free(c);
}
END_TEST

START_TEST(test_multiline_invalid) {
        Capture *c = run("PlanQK:Job:MultilineResult\n{\"a\":\nPlanQK:Job:MultilineResult\nPlanQK:Job:Result: 5\n");
        ck_assert_str_eq(result(c), "5");
        ck_assert_uint_eq(c->n_warnings, 1);
        ck_assert_ptr_nonnull(strstr(c->warnings[0], "not valid JSON"));
        capture_free(c);
}
END_TEST

START_TEST(test_multiline_empty) {
        Capture *c = run("PlanQK:Job:MultilineResult\nPlanQK:Job:MultilineResult\n");
        ck_assert(!marker_parser_has_result(c->parser));
        ck_assert_uint_eq(c->n_warnings, 1);
        capture_free(c);
}
END_TEST

START_TEST(test_unterminated_block) {
        Capture *c = run("PlanQK:Job:Result: 1\nx\nPlanQK:Job:MultilineResult\n{\"a\":1}\n");
        ck_assert_str_eq(result(c), "1");
        ck_assert_uint_eq(c->n_warnings, 1);
        ck_assert_ptr_nonnull(strstr(c->warnings[0], "started on line 3"));
        ck_assert_ptr_nonnull(strstr(c->warnings[0], "no closing marker"));
        capture_free(c);
}
END_TEST

START_TEST(test_unterminated_block_swallows_markers) {
        /* inside a block every line is content, so the single-line marker is not a result */
        Capture *c = run("PlanQK:Job:MultilineResult\nPlanQK:Job:Result: 1\nPlanQK:Job:InterimResult: 2\n");
        ck_assert(!marker_parser_has_result(c->parser));
        ck_assert_uint_eq(c->n_interim, 0);
        ck_assert_uint_eq(c->n_warnings, 1);
        capture_free(c);
}
END_TEST

START_TEST(test_interim) {
        Capture *c = run("PlanQK:Job:InterimResult: {\"step\":1}\nlog\nPlanQK:Job:InterimResult:  [2] \r\n"
                         "PlanQK:Job:InterimResult: nope\nPlanQK:Job:Result: 3\nPlanQK:Job:InterimResult: 4\n");
        ck_assert_uint_eq(c->n_interim, 3);
        ck_assert_str_eq(c->interim[0], "{\"step\":1}");
        ck_assert_str_eq(c->interim[1], "[2]");
        ck_assert_str_eq(c->interim[2], "4");
        ck_assert_uint_eq(marker_parser_interim_count(c->parser), 3);
        ck_assert_str_eq(result(c), "3");
        ck_assert_uint_eq(c->n_warnings, 1);
        ck_assert_ptr_nonnull(strstr(c->warnings[0], "interim result on line 4"));
        capture_free(c);
}
END_TEST

START_TEST(test_interim_count_limit) {
        MarkerLimits l = default_limits;
        Capture *c;

        l.interim_count_max = 2;
        {
        const char *out = "PlanQK:Job:InterimResult: 1\nPlanQK:Job:InterimResult: 2\nPlanQK:Job:InterimResult: 3\n"
                          "PlanQK:Job:InterimResult: 4\n";

        c = run_limits(out, strlen(out), &l, 1024);
        ck_assert_uint_eq(c->n_interim, 2);
        ck_assert_uint_eq(c->n_warnings, 1);   /* said once, not per dropped result */
        ck_assert_ptr_nonnull(strstr(c->warnings[0], "limit of 2"));
        capture_free(c);
        }
}
END_TEST

START_TEST(test_interim_size_limit) {
        MarkerLimits l = default_limits;
        const char *out = "PlanQK:Job:InterimResult: [1,2,3,4,5]\nPlanQK:Job:InterimResult: [1]\n";
        Capture *c;

        l.interim_max = 5;
        c = run_limits(out, strlen(out), &l, 1024);
        ck_assert_uint_eq(c->n_interim, 1);
        ck_assert_str_eq(c->interim[0], "[1]");
        ck_assert_uint_eq(c->n_warnings, 1);
        ck_assert_ptr_nonnull(strstr(c->warnings[0], "larger than the limit of 5 bytes"));
        capture_free(c);
}
END_TEST

START_TEST(test_result_size_limit_single) {
        MarkerLimits l = default_limits;
        const char *out = "PlanQK:Job:Result: [1,2,3,4,5,6]\nPlanQK:Job:Result: [7]\n";
        Capture *c;

        l.result_max = 8;
        c = run_limits(out, strlen(out), &l, 1024);
        ck_assert_str_eq(result(c), "[7]");
        ck_assert_uint_eq(c->n_warnings, 1);
        ck_assert_ptr_nonnull(strstr(c->warnings[0], "larger than the limit"));
        capture_free(c);
}
END_TEST

START_TEST(test_result_size_limit_multiline) {
        MarkerLimits l = default_limits;
        const char *out = "PlanQK:Job:MultilineResult\n[1,\n2,\n3,\n4]\nPlanQK:Job:MultilineResult\n"
                          "PlanQK:Job:MultilineResult\n[5]\nPlanQK:Job:MultilineResult\n";
        Capture *c;

        l.result_max = 8;
        c = run_limits(out, strlen(out), &l, 1024);
        ck_assert_str_eq(result(c), "[5]");
        ck_assert_uint_eq(c->n_warnings, 1);
        capture_free(c);
}
END_TEST

/* Found by tests/fuzz/fuzz-markers: the separator between a block's lines was not counted, so a
 * block whose lines filled its buffer to the last byte had its NUL written one byte past the
 * end (a heap overflow, seen by AddressSanitizer), and a block could exceed result_max by one
 * byte per line. */
START_TEST(test_multiline_block_fills_buffer) {
        char line1[101], line2[156], out[512];
        Capture *c;

        /* ["aaa…", + "\n" + "bbb…"] = 100 + 1 + 155 = 256 bytes: exactly the block's first
         * allocation. */
        memset(line1, 'a', 100);
        line1[0] = '[', line1[1] = '"', line1[98] = '"', line1[99] = ',', line1[100] = 0;
        memset(line2, 'b', 155);
        line2[0] = '"', line2[153] = '"', line2[154] = ']', line2[155] = 0;
        ck_assert_uint_eq(strlen(line1), 100);
        ck_assert_uint_eq(strlen(line2), 155);
        snprintf(out, sizeof(out), "PlanQK:Job:MultilineResult\n%s\n%s\nPlanQK:Job:MultilineResult\n", line1, line2);
        c = run(out);
        ck_assert(marker_parser_has_result(c->parser));
        ck_assert_uint_eq(strlen(result(c)), 256);
        ck_assert(strneq(result(c), line1, 100) && result(c)[100] == '\n' && streq(result(c) + 101, line2));
        capture_free(c);
}
END_TEST

START_TEST(test_result_size_limit_multiline_exact) {
        /* "[1,\n2]" is 6 bytes: over a limit of 5, within a limit of 6. */
        const char *out = "PlanQK:Job:MultilineResult\n[1,\n2]\nPlanQK:Job:MultilineResult\n";
        MarkerLimits l = default_limits;
        Capture *c;

        l.result_max = 5;
        c = run_limits(out, strlen(out), &l, 1024);
        ck_assert(!marker_parser_has_result(c->parser));
        ck_assert_uint_eq(c->n_warnings, 1);
        capture_free(c);

        l.result_max = 6;
        c = run_limits(out, strlen(out), &l, 1024);
        ck_assert_str_eq(result(c), "[1,\n2]");
        ck_assert_uint_eq(c->n_warnings, 0);
        capture_free(c);
}
END_TEST

START_TEST(test_overlong_lines) {
        /* Lines longer than the splitter's limit arrive in pieces: a result that long is too
         * large, and the pieces after the first are never taken for markers. */
        MarkerLimits l = default_limits;
        char out[512];
        Capture *c;

        snprintf(out, sizeof(out), "PlanQK:Job:Result: [%s]\n%s\nPlanQK:Job:Result: {}\n",
                 "1111111111111111111111111111111111111111111111111111111111111111",
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxPlanQK:Job:Result: [2]");
        c = run_limits(out, strlen(out), &l, 32);
        ck_assert_str_eq(result(c), "{}");
        ck_assert_uint_eq(c->n_warnings, 1);
        ck_assert_ptr_nonnull(strstr(c->warnings[0], "line 1"));
        capture_free(c);
}
END_TEST

START_TEST(test_overlong_line_in_block) {
        char out[512];
        Capture *c;

        snprintf(out, sizeof(out), "PlanQK:Job:MultilineResult\n[\"%s\"]\nPlanQK:Job:MultilineResult\nPlanQK:Job:Result: 1\n",
                 "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy");
        c = run_limits(out, strlen(out), &default_limits, 40);
        ck_assert_str_eq(result(c), "1");
        ck_assert_uint_eq(c->n_warnings, 1);
        capture_free(c);
}
END_TEST

START_TEST(test_line_numbers_across_overlong) {
        char out[512];
        Capture *c;

        snprintf(out, sizeof(out), "%s\nPlanQK:Job:Result: x\n", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
        c = run_limits(out, strlen(out), &default_limits, 24);
        ck_assert_uint_eq(c->n_warnings, 1);
        ck_assert_ptr_nonnull(strstr(c->warnings[0], "line 2"));
        capture_free(c);
}
END_TEST

START_TEST(test_deep_nesting) {
        char out[4096] = "PlanQK:Job:Result: ";
        size_t n = strlen(out);
        Capture *c;

        for (int i = 0; i < 1000; i++)
                out[n++] = '[';
        for (int i = 0; i < 1000; i++)
                out[n++] = ']';
        out[n++] = '\n';
        out[n] = 0;
        c = run(out);
        ck_assert(!marker_parser_has_result(c->parser));   /* refused, not crashed */
        ck_assert_uint_eq(c->n_warnings, 1);
        capture_free(c);
}
END_TEST

#define V(s) json_text_valid(s, strlen(s))

START_TEST(test_json_text_valid) {
        ck_assert(V("{}"));
        ck_assert(V(" 1 "));
        ck_assert(V("-1.5e3"));
        ck_assert(V("true"));
        ck_assert(!json_text_valid("", 0));
        ck_assert(!V("tru"));
        ck_assert(!V("{} {}"));
        ck_assert(!V("01"));
        ck_assert(V("{\"a\\n\\u00e9\\\"\":[1,{\"b\":null}],\"c\":-0.5E+2}"));
        ck_assert(V("\"caf\xc3\xa9 \xf0\x9f\x98\x80\""));
        ck_assert(!V("\"\xc3\""));           /* truncated UTF-8 */
        ck_assert(!V("\"\xc0\xaf\""));       /* overlong */
        ck_assert(!V("\"\xed\xa0\x80\""));   /* surrogate */
        ck_assert(!V("\"\\x\""));           /* bad escape */
        ck_assert(!V("\"\\u12\""));
        ck_assert(!V("\"tab\there\""));     /* raw control character */
        ck_assert(!V("{\"a\" 1}"));
        ck_assert(!V("{1:2}"));
        ck_assert(!V("[1 2]"));
        ck_assert(!V("1."));
        ck_assert(!V(".5"));
        ck_assert(!V("+1"));
        ck_assert(!V("1e"));
}
END_TEST

static int count_pieces(const char *data, size_t len, bool continued, void *userdata) {
        size_t *counts = userdata;
        counts[continued ? 1 : 0]++;
        counts[2] += len;
        return 0;
}

START_TEST(test_splitter_pieces) {
        LineSplitter s;
        size_t counts[3] = {};

        line_splitter_init(&s, 4, count_pieces, counts);
        ck_assert_int_eq(line_splitter_feed(&s, "abcdefghij\nab", 13), 0);
        ck_assert_int_eq(line_splitter_feed(&s, "cd\n\n", 4), 0);
        ck_assert_int_eq(line_splitter_flush(&s), 0);
        /* "abcd" "efgh" (continued) "ij"; "abcd" (exactly full, then "\n"); "" */
        ck_assert_uint_eq(counts[1], 2);
        ck_assert_uint_eq(counts[0], 3);
        ck_assert_uint_eq(counts[2], 14);
        line_splitter_done(&s);
}
END_TEST

START_TEST(test_utf8_sanitize) {
        char s[] = "ok \xc3\xa9 \xff bad \xe2\x82 cut \xf0\x9f\x98\x80 \xed\xa0\x80";
        utf8_sanitize(s, strlen(s));
        ck_assert_str_eq(s, "ok \xc3\xa9 ? bad ?? cut \xf0\x9f\x98\x80 ???");
        ck_assert_uint_eq(utf8_sequence_length((const unsigned char *) "\xc3", 1), 0);
        ck_assert_uint_eq(utf8_sequence_length((const unsigned char *) "a", 1), 1);
}
END_TEST

/* Feeds in pieces of random sizes: the outcome must not depend on how reads split the output. */
static Capture *run_chunked(const char *output, size_t n, const MarkerLimits *limits, size_t max_line,
                            unsigned *seed) {
        Capture *c = calloc(1, sizeof(*c));
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(marker_parser_new(limits, on_interim, on_warning, c, &c->parser), 0);
        line_splitter_init(&c->splitter, max_line, on_line, c);
        for (size_t i = 0; i < n;) {
                size_t want = (size_t) (rand_r(seed) % 7 + 1);   /* not inside MIN(): evaluated twice */
                size_t k = MIN(n - i, want);
                ck_assert_int_eq(line_splitter_feed(&c->splitter, output + i, k), 0);
                i += k;
        }
        ck_assert_int_eq(line_splitter_flush(&c->splitter), 0);
        ck_assert_int_eq(marker_parser_finish(c->parser), 0);
        return c;
}

START_TEST(test_random_output) {
        static const char * const tokens[] = {
                "PlanQK:Job:Result: ", "PlanQK:Job:MultilineResult", "PlanQK:Job:InterimResult: ",
                "{", "}", "[", "]", "\"", "\"k\":", "1", "-0.5e3", "null", "true", ",", " ", "\n", "\n",
                "\r\n", "\\", "\\u00e9", "\xc3\xa9", "\xff", "'", "x",
        };
        MarkerLimits l = { .result_max = 40, .interim_max = 12, .interim_count_max = 3 };
        unsigned seed = 12345;

        for (int iter = 0; iter < 3000; iter++) {
                char out[512];
                size_t n = 0;
                Capture *a, *b;

                while (n < sizeof(out) - 32) {
                        const char *t = tokens[rand_r(&seed) % ELEMENTSOF(tokens)];
                        memcpy(out + n, t, strlen(t));
                        n += strlen(t);
                        if (rand_r(&seed) % 50 == 0)
                                break;
                }
                a = run_limits(out, n, &l, 64);
                b = run_chunked(out, n, &l, 64, &seed);
                ck_assert_int_eq(marker_parser_has_result(a->parser), marker_parser_has_result(b->parser));
                if (marker_parser_has_result(a->parser)) {
                        size_t len;
                        const char *r = marker_parser_result(a->parser, &len);
                        ck_assert(json_text_valid(r, len));
                        ck_assert_uint_le(len, l.result_max);
                        ck_assert_str_eq(r, result(b));
                }
                ck_assert_uint_le(a->n_interim, l.interim_count_max);
                ck_assert_uint_eq(a->n_interim, b->n_interim);
                ck_assert_uint_eq(a->n_warnings, b->n_warnings);
                for (size_t i = 0; i < MIN(a->n_interim, (size_t) 16); i++) {
                        ck_assert(json_text_valid(a->interim[i], strlen(a->interim[i])));
                        ck_assert_str_eq(a->interim[i], b->interim[i]);
                }
                capture_free(a);
                capture_free(b);
        }
}
END_TEST

static Suite *markers_suite(void) {
        Suite *s = suite_create("markers");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_single_line);
        tcase_add_test(tc, test_single_line_crlf_and_no_space);
        tcase_add_test(tc, test_last_line_without_newline);
        tcase_add_test(tc, test_scalar_results);
        tcase_add_test(tc, test_not_at_line_start);
        tcase_add_test(tc, test_multiline);
        tcase_add_test(tc, test_multiline_crlf_and_trailing_blanks);
        tcase_add_test(tc, test_first_wins_multiline_then_single);
        tcase_add_test(tc, test_first_wins_single_then_multiline);
        tcase_add_test(tc, test_invalid_then_valid);
        tcase_add_test(tc, test_invalid_forms);
        tcase_add_test(tc, test_embedded_nul);
        tcase_add_test(tc, test_multiline_invalid);
        tcase_add_test(tc, test_multiline_empty);
        tcase_add_test(tc, test_unterminated_block);
        tcase_add_test(tc, test_unterminated_block_swallows_markers);
        tcase_add_test(tc, test_interim);
        tcase_add_test(tc, test_interim_count_limit);
        tcase_add_test(tc, test_interim_size_limit);
        tcase_add_test(tc, test_result_size_limit_single);
        tcase_add_test(tc, test_result_size_limit_multiline);
        tcase_add_test(tc, test_multiline_block_fills_buffer);
        tcase_add_test(tc, test_result_size_limit_multiline_exact);
        tcase_add_test(tc, test_overlong_lines);
        tcase_add_test(tc, test_overlong_line_in_block);
        tcase_add_test(tc, test_line_numbers_across_overlong);
        tcase_add_test(tc, test_deep_nesting);
        tcase_add_test(tc, test_json_text_valid);
        tcase_add_test(tc, test_splitter_pieces);
        tcase_add_test(tc, test_utf8_sanitize);
        tcase_add_test(tc, test_random_output);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(markers_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
