/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>

#include "macro.h"
#include "reference.h"
#include "test-main.h"

#define D "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void check_ref(const char *s, const char *def, const char *reg, const char *repo, const char *tag, const char *digest) {
        _cleanup_(image_reference_freep) ImageReference *r = NULL;

        ck_assert_int_eq(image_reference_parse(s, def, &r), 0);
        ck_assert_str_eq(r->registry, reg);
        ck_assert_str_eq(r->repository, repo);
        if (tag)
                ck_assert_str_eq(r->tag, tag);
        else
                ck_assert_ptr_null(r->tag);
        if (digest)
                ck_assert_str_eq(r->digest, digest);
        else
                ck_assert_ptr_null(r->digest);
}

START_TEST(test_docker_defaults) {
        check_ref("alpine", NULL, "docker.io", "library/alpine", "latest", NULL);
        check_ref("alpine:3.19", NULL, "docker.io", "library/alpine", "3.19", NULL);
        check_ref("user/app", NULL, "docker.io", "user/app", "latest", NULL);
        check_ref("docker.io/alpine", NULL, "docker.io", "library/alpine", "latest", NULL);
        check_ref("index.docker.io/library/alpine:edge", NULL, "docker.io", "library/alpine", "edge", NULL);
}
END_TEST

START_TEST(test_registries) {
        check_ref("127.0.0.1:5000/foo:bar", NULL, "127.0.0.1:5000", "foo", "bar", NULL);
        check_ref("localhost/a/b/c", NULL, "localhost", "a/b/c", "latest", NULL);
        check_ref("quay.io/team/app", NULL, "quay.io", "team/app", "latest", NULL);
        check_ref("host:5000/app", NULL, "host:5000", "app", "latest", NULL);
        /* the default location applies to bare names, without library/ when it is not docker.io */
        check_ref("app", "registry.example.org", "registry.example.org", "app", "latest", NULL);
        check_ref("team/app:1", "registry.example.org:443", "registry.example.org:443", "team/app", "1", NULL);
}
END_TEST

START_TEST(test_digests) {
        check_ref("app@" D, NULL, "docker.io", "library/app", NULL, D);
        check_ref("app:1.0@" D, NULL, "docker.io", "library/app", "1.0", D);
        check_ref("127.0.0.1:5000/app@" D, NULL, "127.0.0.1:5000", "app", NULL, D);
}
END_TEST

START_TEST(test_invalid) {
        static const char * const bad[] = {
                "", "UPPER", "app:", "app@", "app@sha256:abc", "app@md5:" "0123456789abcdef0123456789abcdef",
                "app:bad/tag", "/app", "app/", "a//b", "app:-x", "-app", "app name", "app\n",
                "host:5000/", "app@" D "x", "ap..p", "app:" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ImageReference *r = NULL;
                ck_assert_msg(image_reference_parse(bad[i], NULL, &r) == -EINVAL, "accepted '%s'", bad[i]);
                ck_assert_ptr_null(r);
        }
}
END_TEST

START_TEST(test_to_string) {
        _cleanup_(image_reference_freep) ImageReference *r = NULL;
        _cleanup_free_ char *s = NULL;

        ck_assert_int_eq(image_reference_parse("alpine", NULL, &r), 0);
        s = image_reference_to_string(r);
        ck_assert_str_eq(s, "docker.io/library/alpine:latest");
        ck_assert_str_eq(image_reference_manifest_ref(r), "latest");
        image_reference_free(r);
        r = NULL;
        ck_assert_int_eq(image_reference_parse("a:t@" D, NULL, &r), 0);
        ck_assert_str_eq(image_reference_manifest_ref(r), D);
        ck_assert_str_eq(registry_api_host("docker.io"), "registry-1.docker.io");
        ck_assert_str_eq(registry_api_host("127.0.0.1:5000"), "127.0.0.1:5000");
}
END_TEST

START_TEST(test_registry_name_equal) {
        ck_assert(registry_name_equal("127.0.0.1:5000", "127.0.0.1:5000"));
        ck_assert(registry_name_equal("Registry.Example.org", "registry.example.ORG"));
        ck_assert(!registry_name_equal("127.0.0.1:5000", "127.0.0.1:5001"));
        ck_assert(!registry_name_equal("registry.example.org", "registry.example.org:443"));
        ck_assert(!registry_name_equal("localhost:5000", "127.0.0.1:5000"));
        ck_assert(!registry_name_equal("registry.example.org", NULL));
        /* Docker Hub's names are one registry. */
        ck_assert(registry_name_equal("docker.io", "registry-1.docker.io"));
        ck_assert(registry_name_equal("index.docker.io", "Docker.IO"));
        ck_assert(registry_name_equal("registry.hub.docker.com", "docker.io"));
        ck_assert(!registry_name_equal("docker.io", "docker.io.evil.example"));
        ck_assert(!registry_name_equal("docker.io:443", "docker.io"));
        ck_assert(registry_is_docker_hub("REGISTRY-1.docker.io"));
        ck_assert(!registry_is_docker_hub("ghcr.io"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("reference");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_docker_defaults);
        tcase_add_test(tc, test_registries);
        tcase_add_test(tc, test_digests);
        tcase_add_test(tc, test_invalid);
        tcase_add_test(tc, test_to_string);
        tcase_add_test(tc, test_registry_name_equal);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
