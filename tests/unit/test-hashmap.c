/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "macro.h"

/* The reference model: a plain array of present flags indexed like the keys. Every operation
 * on the map is mirrored there and the two are compared in full, so a deletion that breaks a
 * probe run (a later key no longer found) shows up at once. */

#define N_KEYS 2000

static char keys[N_KEYS][16];
static int values[N_KEYS];

static void setup_keys(void) {
        for (size_t i = 0; i < N_KEYS; i++) {
                snprintf(keys[i], sizeof(keys[i]), "key-%zu", i);
                values[i] = (int) i;
        }
}

static void assert_same(Hashmap *h, const bool *present) {
        size_t n = 0;

        for (size_t i = 0; i < N_KEYS; i++) {
                void *v = hashmap_get(h, keys[i]);
                if (present[i]) {
                        ck_assert_msg(v == &values[i], "%s missing or wrong", keys[i]);
                        n++;
                } else
                        ck_assert_msg(v == NULL, "%s present after removal", keys[i]);
        }
        ck_assert_uint_eq(hashmap_size(h), n);
}

START_TEST(test_null_and_empty) {
        _cleanup_(hashmap_freep) Hashmap *h = hashmap_new();
        size_t cursor = 0;
        void *v;

        ck_assert_ptr_null(hashmap_free(NULL));
        ck_assert_uint_eq(hashmap_size(NULL), 0);
        ck_assert_ptr_null(hashmap_get(NULL, "x"));
        ck_assert_ptr_null(hashmap_remove(NULL, "x"));
        ck_assert(!hashmap_iterate(NULL, &cursor, &v, NULL));

        ck_assert_ptr_nonnull(h);
        ck_assert_uint_eq(hashmap_size(h), 0);
        ck_assert_ptr_null(hashmap_get(h, "x"));
        ck_assert_ptr_null(hashmap_remove(h, "x"));
        ck_assert(!hashmap_iterate(h, &cursor, &v, NULL));
}
END_TEST

START_TEST(test_put_get_remove) {
        _cleanup_(hashmap_freep) Hashmap *h = hashmap_new();
        int a = 1, b = 2;

        ck_assert_int_eq(hashmap_put(h, "a", &a), 0);
        ck_assert_int_eq(hashmap_put(h, "b", &b), 0);
        ck_assert_int_eq(hashmap_put(h, "a", &b), -EEXIST);
        ck_assert_ptr_eq(hashmap_get(h, "a"), &a); /* unchanged by the refused put */
        ck_assert_ptr_eq(hashmap_get(h, "b"), &b);
        ck_assert_ptr_null(hashmap_get(h, "c"));
        ck_assert_ptr_null(hashmap_get(h, ""));
        ck_assert_int_eq(hashmap_put(h, "", &b), 0); /* the empty string is a key like any other */
        ck_assert_ptr_eq(hashmap_get(h, ""), &b);
        ck_assert_uint_eq(hashmap_size(h), 3);

        ck_assert_ptr_eq(hashmap_remove(h, "a"), &a);
        ck_assert_ptr_null(hashmap_remove(h, "a"));
        ck_assert_ptr_null(hashmap_get(h, "a"));
        ck_assert_uint_eq(hashmap_size(h), 2);
        ck_assert_int_eq(hashmap_put(h, "a", &b), 0);
        ck_assert_ptr_eq(hashmap_get(h, "a"), &b);

        /* Keys are compared by content, not by pointer. */
        char copy[] = "b";
        ck_assert_ptr_eq(hashmap_get(h, copy), &b);
}
END_TEST

START_TEST(test_many_keys_against_reference) {
        _cleanup_(hashmap_freep) Hashmap *h = hashmap_new();
        static bool present[N_KEYS];
        unsigned seed = 12345;

        setup_keys();
        memset(present, 0, sizeof(present));

        /* Grow through many resizes. */
        for (size_t i = 0; i < N_KEYS; i++) {
                ck_assert_int_eq(hashmap_put(h, keys[i], &values[i]), 0);
                present[i] = true;
        }
        assert_same(h, present);

        /* Random interleaved removes and puts at a high load factor: every removal shifts probe
         * runs, and after each batch the whole map is compared against the reference. */
        for (unsigned round = 0; round < 30; round++) {
                for (unsigned k = 0; k < 300; k++) {
                        size_t i = (size_t) rand_r(&seed) % N_KEYS;
                        if (present[i]) {
                                ck_assert_ptr_eq(hashmap_remove(h, keys[i]), &values[i]);
                                present[i] = false;
                        } else {
                                ck_assert_ptr_null(hashmap_remove(h, keys[i]));
                                ck_assert_int_eq(hashmap_put(h, keys[i], &values[i]), 0);
                                present[i] = true;
                        }
                }
                assert_same(h, present);
        }

        /* Remove everything, checking the rest after every single removal for the first few
         * hundred (the most probe-run shapes), then in bulk. */
        for (size_t i = 0; i < N_KEYS; i++) {
                if (present[i]) {
                        ck_assert_ptr_eq(hashmap_remove(h, keys[i]), &values[i]);
                        present[i] = false;
                }
                if (i < 200 || i % 500 == 0)
                        assert_same(h, present);
        }
        ck_assert_uint_eq(hashmap_size(h), 0);
}
END_TEST

/* Keys whose hashes land in the last buckets make probe runs wrap around the end of the table:
 * the case the wrapped branch of the backward shift exists for. Find such keys by brute force
 * for a 16-bucket table (the first allocation), so at most 12 entries fit before it grows. */
static uint32_t fnv1a(const char *s) {
        uint32_t h = 2166136261u;
        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= 16777619u;
        }
        return h;
}

START_TEST(test_wraparound_runs) {
        static char k[12][16];
        static int v[12];
        size_t n = 0;

        /* 6 keys homing at bucket 15, 6 at bucket 14 (the table's first 16 buckets). */
        for (unsigned i = 0; n < 12 && i < 1000000; i++) {
                char buf[16];
                unsigned want = n < 6 ? 15 : 14;
                snprintf(buf, sizeof(buf), "w%u", i);
                if ((fnv1a(buf) & 15) == want)
                        strcpy(k[n++], buf);
        }
        ck_assert_uint_eq(n, 12);

        /* Every removal order of a few prefixes; each time, rebuild and compare. */
        for (size_t first = 0; first < 12; first++)
                for (size_t second = 0; second < 12; second++) {
                        _cleanup_(hashmap_freep) Hashmap *h = hashmap_new();
                        bool present[12];

                        for (size_t i = 0; i < 12; i++) {
                                ck_assert_int_eq(hashmap_put(h, k[i], &v[i]), 0);
                                present[i] = true;
                        }
                        ck_assert_ptr_eq(hashmap_remove(h, k[first]), &v[first]);
                        present[first] = false;
                        if (second != first) {
                                ck_assert_ptr_eq(hashmap_remove(h, k[second]), &v[second]);
                                present[second] = false;
                        }
                        for (size_t i = 0; i < 12; i++)
                                ck_assert_msg((hashmap_get(h, k[i]) == &v[i]) == present[i],
                                              "removing %zu then %zu broke %zu", first, second, i);
                }
}
END_TEST

START_TEST(test_iterate) {
        _cleanup_(hashmap_freep) Hashmap *h = hashmap_new();
        static unsigned seen[N_KEYS];
        size_t cursor = 0, n = 0;
        const char *key;
        void *v;
        int *x;

        setup_keys();
        memset(seen, 0, sizeof(seen));
        for (size_t i = 0; i < N_KEYS; i++)
                ck_assert_int_eq(hashmap_put(h, keys[i], &values[i]), 0);
        for (size_t i = 0; i < N_KEYS; i += 3)
                ck_assert_ptr_eq(hashmap_remove(h, keys[i]), &values[i]);

        while (hashmap_iterate(h, &cursor, &v, &key)) {
                int i = *(int *) v;
                ck_assert_ptr_eq(key, keys[i]);  /* the borrowed key itself */
                seen[i]++;
                n++;
        }
        ck_assert_uint_eq(n, hashmap_size(h));
        for (size_t i = 0; i < N_KEYS; i++)
                ck_assert_uint_eq(seen[i], i % 3 == 0 ? 0 : 1);
        /* At the end it stays at the end. */
        ck_assert(!hashmap_iterate(h, &cursor, &v, &key));

        n = 0;
        HASHMAP_FOREACH(x, h) {
                ck_assert_ptr_eq(x, &values[*x]);
                n++;
        }
        ck_assert_uint_eq(n, hashmap_size(h));
}
END_TEST

static Suite *hashmap_suite(void) {
        Suite *s = suite_create("hashmap");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_null_and_empty);
        tcase_add_test(tc, test_put_get_remove);
        tcase_add_test(tc, test_many_keys_against_reference);
        tcase_add_test(tc, test_wraparound_runs);
        tcase_add_test(tc, test_iterate);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(hashmap_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
