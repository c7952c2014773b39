/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>

#include "macro.h"
#include "manifest.h"
#include "test-main.h"

#define DA "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DB "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DC "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define DD "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define DE "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"

#define ENTRY(d, os, arch, variant) \
        "{\"mediaType\":\"" MEDIA_TYPE_OCI_MANIFEST "\",\"digest\":\"" d "\",\"size\":1," \
        "\"platform\":{\"os\":\"" os "\",\"architecture\":\"" arch "\"" variant "}}"

static const char index_json[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_TYPE_OCI_INDEX "\",\"manifests\":["
        ENTRY(DA, "linux", "arm", ",\"variant\":\"v6\"") ","
        ENTRY(DB, "linux", "arm", ",\"variant\":\"v7\"") ","
        ENTRY(DC, "linux", "amd64", "") ","
        ENTRY(DD, "linux", "arm64", ",\"variant\":\"v8\"") ","
        ENTRY(DE, "windows", "amd64", "") "]}";

static void check_select(const char *platform, const char *want) {
        _cleanup_free_ char *d = NULL;
        Platform p;
        int r;

        ck_assert_int_eq(platform_parse(platform, &p), 0);
        r = manifest_index_select(index_json, &p, &d);
        platform_done(&p);
        if (!want) {
                ck_assert_msg(r == -ENOENT, "selected something for %s", platform);
                return;
        }
        ck_assert_msg(r == 0, "nothing for %s", platform);
        ck_assert_str_eq(d, want);
}

START_TEST(test_select) {
        check_select("linux/arm/v7", DB);
        check_select("linux/arm/v6", DA);
        check_select("linux/amd64", DC);
        check_select("linux/arm64", DD);    /* arm64: no variant == v8 */
        check_select("linux/arm64/v8", DD);
        check_select("windows/amd64", DE);
        check_select("linux/arm/v5", NULL); /* a variant asked for must match */
        check_select("linux/amd64/v3", NULL);
        check_select("linux/s390x", NULL);
        check_select("linux/arm", DA);      /* no variant asked: the first arm entry */
}
END_TEST

START_TEST(test_platform_parse) {
        Platform p;

        ck_assert_int_eq(platform_parse("linux/arm/v7", &p), 0);
        ck_assert_str_eq(p.os, "linux");
        ck_assert_str_eq(p.architecture, "arm");
        ck_assert_str_eq(p.variant, "v7");
        platform_done(&p);
        ck_assert_int_eq(platform_parse("linux/amd64", &p), 0);
        ck_assert_ptr_null(p.variant);
        platform_done(&p);
        ck_assert_int_eq(platform_host(&p), 0);
        ck_assert_str_eq(p.os, "linux");
        platform_done(&p);

        ck_assert_int_eq(platform_parse("linux", &p), -EINVAL);
        ck_assert_int_eq(platform_parse("linux/", &p), -EINVAL);
        ck_assert_int_eq(platform_parse("/amd64", &p), -EINVAL);
        ck_assert_int_eq(platform_parse("linux/arm/v7/x", &p), -EINVAL);
        ck_assert_int_eq(platform_parse("Linux/AMD64", &p), -EINVAL);
}
END_TEST

START_TEST(test_kind) {
        ManifestKind k;

        ck_assert_int_eq(manifest_kind(MEDIA_TYPE_DOCKER_LIST, "", &k), 0);
        ck_assert_int_eq(k, MANIFEST_INDEX);
        ck_assert_int_eq(manifest_kind(MEDIA_TYPE_DOCKER_MANIFEST, "", &k), 0);
        ck_assert_int_eq(k, MANIFEST_IMAGE);
        ck_assert_int_eq(manifest_kind("application/json", index_json, &k), 0);
        ck_assert_int_eq(k, MANIFEST_INDEX);
        ck_assert_int_eq(manifest_kind(NULL, "{\"schemaVersion\":1,\"fsLayers\":[]}", &k), -EPROTONOSUPPORT);
        ck_assert_int_eq(manifest_kind(NULL, "not json", &k), -EBADMSG);
}
END_TEST

START_TEST(test_manifest_parse) {
        _cleanup_(image_manifest_freep) ImageManifest *m = NULL;
        ImageManifest *bad = NULL;

        ck_assert_int_eq(image_manifest_parse(
                "{\"schemaVersion\":2,\"config\":{\"digest\":\"" DA "\",\"size\":10},\"layers\":["
                "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" DB "\",\"size\":5},"
                "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" DC "\",\"size\":6},"
                "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" DD "\",\"size\":7}]}", &m), 0);
        ck_assert_str_eq(m->config_digest, DA);
        ck_assert_uint_eq(m->config_size, 10);
        ck_assert_uint_eq(m->n_layers, 3);
        ck_assert_int_eq(m->layers[0].compression, LAYER_ZSTD);
        ck_assert_int_eq(m->layers[1].compression, LAYER_GZIP);
        ck_assert_int_eq(m->layers[2].compression, LAYER_UNCOMPRESSED);
        ck_assert_uint_eq(m->layers[2].size, 7);

        ck_assert_int_eq(image_manifest_parse("{\"config\":{\"digest\":\"" DA "\",\"size\":1},\"layers\":["
                "{\"mediaType\":\"application/x-unknown\",\"digest\":\"" DB "\",\"size\":5}]}", &bad), -EPROTONOSUPPORT);
        ck_assert_int_eq(image_manifest_parse("{\"config\":{\"digest\":\"sha256:short\",\"size\":1},\"layers\":[]}", &bad), -EBADMSG);
        ck_assert_int_eq(image_manifest_parse("{\"config\":{\"digest\":\"" DA "\",\"size\":-1},\"layers\":[]}", &bad), -EBADMSG);
        ck_assert_int_eq(image_manifest_parse("[]", &bad), -EBADMSG);
        ck_assert_ptr_null(bad);
}
END_TEST

START_TEST(test_config_parse) {
        _cleanup_(image_config_freep) ImageConfig *c = NULL;

        ck_assert_int_eq(image_config_parse(
                "{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\",\"config\":{\"Env\":[\"A=1\"],"
                "\"Entrypoint\":[\"/bin/sh\"],\"Cmd\":[\"-c\",\"x\"],\"WorkingDir\":\"/w\",\"User\":\"1000:1000\","
                "\"Labels\":{\"k\":\"v\"}},\"rootfs\":{\"diff_ids\":[\"" DA "\"]}}", &c), 0);
        ck_assert_str_eq(c->platform.architecture, "arm");
        ck_assert_str_eq(c->platform.variant, "v7");
        ck_assert_str_eq(c->working_dir, "/w");
        ck_assert_str_eq(c->user, "1000:1000");
        ck_assert_int_eq(json_object_array_length(c->env), 1);
        ck_assert_int_eq(json_object_array_length(c->cmd), 2);
        ck_assert_uint_eq(c->n_diff_ids, 1);
        ck_assert_str_eq(c->diff_ids[0], DA);

        /* diff_ids are what layers are checked against: only sha256 digests pass */
        ImageConfig *bad = NULL;
        ck_assert_int_eq(image_config_parse("{\"rootfs\":{\"diff_ids\":[\"sha256:short\"]}}", &bad), -EBADMSG);
        ck_assert_int_eq(image_config_parse("{\"rootfs\":{\"diff_ids\":[5]}}", &bad), -EBADMSG);
        ck_assert_int_eq(image_config_parse("{\"rootfs\":{\"diff_ids\":[\"sha512:" "abcd" "\"]}}", &bad), -EBADMSG);
        ck_assert_ptr_null(bad);
}
END_TEST

int main(void) {
        Suite *s = suite_create("manifest");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_select);
        tcase_add_test(tc, test_platform_parse);
        tcase_add_test(tc, test_kind);
        tcase_add_test(tc, test_manifest_parse);
        tcase_add_test(tc, test_config_parse);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
