/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "image-shifter-meta.h"
#include "macro.h"
#include "test-main.h"

/* Shifter's <id>.meta from the worker's meta.json: the keys Shifter's runtime reads, the ACL only
 * for private images, and no value that could smuggle in a line of its own. */

static json_object *meta(const char *text) {
        json_object *o = json_tokener_parse(text);
        ck_assert_ptr_nonnull(o);
        return o;
}

START_TEST(test_public_image) {
        Image i = { .id = (char *) "abc", .squashfs_path = (char *) "/var/lib/gatewayd/images/abc.squashfs" };
        _cleanup_free_ char *text = NULL, *path = NULL;
        json_object *m = meta("{\"env\":[\"PATH=/usr/bin\",\"A=b c\"],\"entrypoint\":[\"/bin/sh\",\"-c\"],"
                              "\"cmd\":[\"echo hi\"],\"workdir\":\"/srv\",\"user\":\"1000\"}");

        ck_assert_int_eq(image_shifter_meta_format(&i, m, &text), 0);
        ck_assert_str_eq(text, "FORMAT: squashfs\nENTRY: /bin/sh -c\nCMD: echo hi\nWORKDIR: /srv\n"
                               "ENV: PATH=/usr/bin\nENV: A=b c\nUSER: 1000\n");
        ck_assert_int_eq(image_shifter_meta_path(&i, &path), 0);
        ck_assert_str_eq(path, "/var/lib/gatewayd/images/abc.meta");
        json_object_put(m);
}
END_TEST

START_TEST(test_private_image_has_acl) {
        uid_t uids[] = { 1000, 1001 };
        gid_t gids[] = { 100 };
        Image i = { .id = (char *) "abc", .private_image = true, .acl_uids = uids, .n_acl_uids = 2,
                    .acl_gids = gids, .n_acl_gids = 1 };
        _cleanup_free_ char *text = NULL;
        json_object *m = meta("{\"env\":[],\"entrypoint\":[],\"cmd\":[],\"workdir\":\"\",\"user\":\"\"}");

        ck_assert_int_eq(image_shifter_meta_format(&i, m, &text), 0);
        ck_assert_str_eq(text, "FORMAT: squashfs\nUSERACL: 1000,1001\nGROUPACL: 100\n");
        json_object_put(m);
}
END_TEST

START_TEST(test_newline_in_a_value_refused) {
        Image i = { .id = (char *) "abc" };
        _cleanup_free_ char *text = NULL;
        json_object *m = meta("{\"env\":[\"A=1\\nUSERACL: 0\"]}");

        ck_assert_int_eq(image_shifter_meta_format(&i, m, &text), -EINVAL);
        ck_assert_ptr_null(text);
        json_object_put(m);
        m = meta("{\"workdir\":\"/a\\rb\"}");
        ck_assert_int_eq(image_shifter_meta_format(&i, m, &text), -EINVAL);
        json_object_put(m);
        m = meta("{\"entrypoint\":[\"x\\ny\"]}");
        ck_assert_int_eq(image_shifter_meta_format(&i, m, &text), -EINVAL);
        json_object_put(m);
}
END_TEST

START_TEST(test_no_squashfs_no_path) {
        Image i = { .id = (char *) "abc" };
        char *path = NULL;

        ck_assert_int_eq(image_shifter_meta_path(&i, &path), -EINVAL);
}
END_TEST

int main(void) {
        Suite *s = suite_create("image-shifter-meta");
        TCase *tc = tcase_create("format");

        tcase_add_test(tc, test_public_image);
        tcase_add_test(tc, test_private_image_has_acl);
        tcase_add_test(tc, test_newline_in_a_value_refused);
        tcase_add_test(tc, test_no_squashfs_no_path);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
