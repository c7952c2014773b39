/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "job-spec.h"
#include "macro.h"
#include "test-main.h"

static JobSpec *parse_ok(const char *text) {
        json_object *o = json_tokener_parse(text);
        JobSpec *s = NULL;
        char *error = NULL;
        int r;

        ck_assert_ptr_nonnull(o);
        r = job_spec_from_json(o, &s, &error);
        ck_assert_msg(r == 0, "rejected: %s: %s", text, strna(error));
        json_object_put(o);
        free(error);
        return s;
}

/* Asserts rejection with a message containing what. */
static void parse_bad(const char *text, const char *what) {
        json_object *o = json_tokener_parse(text);
        JobSpec *s = NULL;
        char *error = NULL;

        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(job_spec_from_json(o, &s, &error), -EINVAL);
        ck_assert_ptr_null(s);
        ck_assert_ptr_nonnull(error);
        ck_assert_msg(strstr(error, what), "'%s' lacks '%s'", error, what);
        free(error);
        json_object_put(o);
}

static const char *env_get(JobSpec *s, const char *key) {
        size_t l = strlen(key);
        for (char **e = s->env; e && *e; e++)
                if (strneq(*e, key, l) && (*e)[l] == '=')
                        return *e + l + 1;
        return NULL;
}

START_TEST(test_minimal) {
        JobSpec *s = parse_ok("{\"image\":{\"path\":\"/i.sqfs\",\"meta\":{\"cmd\":[\"/bin/true\"]}}}");
        ck_assert_str_eq(s->image_path, "/i.sqfs");
        ck_assert_str_eq(s->argv[0], "/bin/true");
        ck_assert_ptr_null(s->argv[1]);
        ck_assert_str_eq(s->workdir, "/");
        ck_assert(!s->network);
        ck_assert_uint_eq(s->uid, JOB_NOBODY_ID);
        ck_assert_uint_eq(s->gid, JOB_NOBODY_ID);
        ck_assert_uint_eq(s->memory, 0);
        ck_assert_uint_eq(s->timeout_usec, 0);
        ck_assert_ptr_nonnull(env_get(s, "PATH"));
        job_spec_free(s);
}
END_TEST

START_TEST(test_full) {
        JobSpec *s = parse_ok(
                "{\"id\":\"j1\",\"image\":{\"path\":\"/i.sqfs\",\"meta\":{"
                "\"env\":[\"A=image\",\"B=image\",\"PATH=/opt/bin\",\"E=x=y\"],"
                "\"entrypoint\":[\"/entry\",\"-v\"],\"cmd\":[\"run\"],\"workdir\":\"/app\","
                "\"user\":\"someone\",\"labels\":{\"a\":\"b\"},\"future\":1}},"
                "\"env\":{\"B\":\"service\",\"C\":\"\"},\"network\":true,"
                "\"resources\":{\"memory\":1048576,\"cpus\":1.5,\"timeout\":2.5,\"pids\":64,"
                "\"outputMax\":4096,\"outputFiles\":2},"
                "\"uid\":1000,\"gid\":100}");
        ck_assert_str_eq(s->id, "j1");
        ck_assert_str_eq(s->argv[0], "/entry");
        ck_assert_str_eq(s->argv[1], "-v");
        ck_assert_str_eq(s->argv[2], "run");
        ck_assert_ptr_null(s->argv[3]);
        ck_assert_str_eq(env_get(s, "A"), "image");
        ck_assert_str_eq(env_get(s, "B"), "service");
        ck_assert_str_eq(env_get(s, "C"), "");
        ck_assert_str_eq(env_get(s, "E"), "x=y");
        ck_assert_str_eq(env_get(s, "PATH"), "/opt/bin");   /* the image's PATH is kept */
        ck_assert_str_eq(s->workdir, "/app");
        ck_assert(s->network);
        ck_assert_uint_eq(s->memory, 1048576);
        ck_assert(s->cpus == 1.5);
        ck_assert_uint_eq(s->timeout_usec, 2500000);
        ck_assert_uint_eq(s->pids, 64);
        ck_assert_uint_eq(s->output_max, 4096);
        ck_assert_uint_eq(s->output_files, 2);
        ck_assert_uint_eq(s->uid, 1000);
        ck_assert_uint_eq(s->gid, 100);
        job_spec_free(s);
}
END_TEST

/* Without outputMax/outputFiles: 64 MiB and 1000 result files. */
START_TEST(test_output_defaults) {
        JobSpec *s = parse_ok("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"resources\":{\"pids\":1}}");
        ck_assert_uint_eq(s->output_max, 64 * 1024 * 1024);
        ck_assert_uint_eq(s->output_files, 1000);
        job_spec_free(s);
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"resources\":{\"outputFiles\":1000001}}",
                  "resources.outputFiles: out of range");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"resources\":{\"outputMax\":-1}}",
                  "resources.outputMax: out of range");
}
END_TEST

START_TEST(test_command_overrides) {
        JobSpec *s = parse_ok("{\"image\":{\"path\":\"/i\",\"meta\":{\"entrypoint\":[\"/e\"],\"cmd\":[\"c\"],"
                              "\"workdir\":\"/w\"}},\"command\":[\"/bin/sh\",\"-c\",\"x\"],\"workdir\":\"/o\"}");
        ck_assert_str_eq(s->argv[0], "/bin/sh");
        ck_assert_str_eq(s->argv[2], "x");
        ck_assert_ptr_null(s->argv[3]);
        ck_assert_str_eq(s->workdir, "/o");
        job_spec_free(s);
}
END_TEST

START_TEST(test_root_runs_as_nobody) {
        JobSpec *s = parse_ok("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"uid\":0,\"gid\":0}");
        ck_assert_uint_eq(s->uid, JOB_NOBODY_ID);
        ck_assert_uint_eq(s->gid, JOB_NOBODY_ID);
        job_spec_free(s);
        s = parse_ok("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"uid\":5,\"gid\":0}");
        ck_assert_uint_eq(s->uid, 5);
        ck_assert_uint_eq(s->gid, JOB_NOBODY_ID);
        job_spec_free(s);
}
END_TEST

START_TEST(test_empty_workdir_means_root) {
        JobSpec *s = parse_ok("{\"image\":{\"path\":\"/i\",\"meta\":{\"cmd\":[\"x\"],\"workdir\":\"\"}}}");
        ck_assert_str_eq(s->workdir, "/");
        job_spec_free(s);
}
END_TEST

START_TEST(test_meta_path) {
        char dir[] = "/tmp/test-job-spec-XXXXXX", path[256], text[512];
        FILE *f;
        JobSpec *s;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/i.meta.json", dir);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("{\"cmd\":[\"from-file\"],\"env\":[\"F=1\"]}", f);
        fclose(f);
        snprintf(text, sizeof(text), "{\"image\":{\"path\":\"/i\",\"metaPath\":\"%s\"}}", path);
        s = parse_ok(text);
        ck_assert_str_eq(s->argv[0], "from-file");
        ck_assert_str_eq(env_get(s, "F"), "1");
        job_spec_free(s);

        f = fopen(path, "w");
        fputs("{\"cmd\":[", f);
        fclose(f);
        parse_bad(text, "image.metaPath: not valid JSON");
        unlink(path);
        parse_bad(text, "image.metaPath: cannot open");
        rmdir(dir);
}
END_TEST

START_TEST(test_bad) {
        parse_bad("[]", "expected a JSON object");
        parse_bad("{\"command\":[\"x\"]}", "image: missing");
        parse_bad("{\"image\":{}}", "image.path: missing");
        parse_bad("{\"image\":{\"path\":\"rel.sqfs\"},\"command\":[\"x\"]}", "image.path: expected an absolute path");
        parse_bad("{\"image\":{\"path\":7},\"command\":[\"x\"]}", "image.path: expected a string");
        parse_bad("{\"image\":{\"path\":\"/i\",\"meta\":{},\"metaPath\":\"/m\"}}", "not both");
        parse_bad("{\"image\":{\"path\":\"/i\",\"meta\":[]}}", "image.meta: expected an object");
        parse_bad("{\"image\":{\"path\":\"/i\",\"meta\":{\"env\":[\"NOEQUALS\"]}},\"command\":[\"x\"]}", "image.meta.env[0]");
        parse_bad("{\"image\":{\"path\":\"/i\",\"meta\":{\"env\":[\"=v\"]}},\"command\":[\"x\"]}", "image.meta.env[0]");
        parse_bad("{\"image\":{\"path\":\"/i\",\"meta\":{\"cmd\":\"string\"}}}", "image.meta.cmd: expected an array");
        parse_bad("{\"image\":{\"path\":\"/i\",\"meta\":{\"entrypoint\":[1]}}}", "image.meta.entrypoint[0]");
        parse_bad("{\"image\":{\"path\":\"/i\"}}", "command: missing");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[]}", "command: missing");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"a\\u0000b\"]}", "command[0]");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"env\":{\"A=B\":\"x\"}}", "env.A=B: invalid");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"env\":{\"A\":1}}", "env.A: expected a string");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"env\":[]}", "env: expected an object");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"workdir\":\"app\"}", "workdir: expected an absolute path");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"network\":\"yes\"}", "network: expected true or false");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"resources\":{\"memory\":-1}}", "resources.memory: out of range");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"resources\":{\"memory\":1.5}}", "resources.memory: expected a non-negative integer");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"resources\":{\"timeout\":-3}}", "resources.timeout: out of range");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"resources\":{\"cpus\":\"2\"}}", "resources.cpus: expected a non-negative number");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"resources\":{\"memroy\":1}}", "resources.memroy: unknown key");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"resources\":5}", "resources: expected an object");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"uid\":-1}", "uid: out of range");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"uid\":4294967295}", "uid: out of range");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"gid\":\"100\"}", "gid: expected a non-negative integer");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"netwrok\":true}", "netwrok: unknown key");
        parse_bad("{\"image\":{\"path\":\"/i\",\"tag\":1},\"command\":[\"x\"]}", "image.tag: unknown key");
}
END_TEST

/* A program's job (docs/programs.md): its squashfs, mounted at /program. */
START_TEST(test_program) {
        JobSpec *s = parse_ok("{\"image\":{\"path\":\"/i\"},\"command\":[\"python3\",\"/program/main.py\"],"
                              "\"workdir\":\"/program\",\"program\":{\"path\":\"/p/program.squashfs\"}}");
        ck_assert_str_eq(s->program_path, "/p/program.squashfs");
        ck_assert_str_eq(s->workdir, "/program");
        job_spec_free(s);
        s = parse_ok("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"program\":null}");
        ck_assert_ptr_null(s->program_path);
        job_spec_free(s);
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"program\":{}}", "program.path: missing");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"program\":{\"path\":\"p.sqfs\"}}",
                  "program.path: expected an absolute path");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"program\":{\"path\":\"/p\",\"x\":1}}",
                  "program.x: unknown key");
        parse_bad("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"program\":\"/p\"}", "program: expected an object");
}
END_TEST

/* A lab member (docs/labs.md): the instance's namespace, host name, hosts file, writable layer. */
START_TEST(test_lab) {
        JobSpec *s = parse_ok("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],"
                              "\"lab\":{\"netns\":\"/run/l.netns\",\"hostname\":\"web\",\"hosts\":\"/s/hosts\",\"writable\":\"/s/web\"}}");
        ck_assert_str_eq(s->netns, "/run/l.netns");
        ck_assert_str_eq(s->hostname, "web");
        ck_assert_str_eq(s->hosts, "/s/hosts");
        ck_assert_str_eq(s->writable, "/s/web");
        ck_assert_ptr_null(s->resolv);          /* no resolver: a lab without network */
        ck_assert(s->network);
        job_spec_free(s);

        /* an outbound member's name servers */
        s = parse_ok("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"lab\":{\"netns\":\"/n\",\"hostname\":\"w\","
                     "\"hosts\":\"/s/hosts\",\"resolv\":\"/s/resolv.conf\",\"writable\":\"/w\"}}");
        ck_assert_str_eq(s->resolv, "/s/resolv.conf");
        job_spec_free(s);

        s = parse_ok("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"lab\":null}");
        ck_assert_ptr_null(s->netns);
        ck_assert_ptr_null(s->hostname);
        ck_assert(!s->network);
        job_spec_free(s);

#define LAB(x) "{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"lab\":" x "}"
        parse_bad(LAB("[]"), "lab: expected an object");
        parse_bad(LAB("{}"), "lab: needs netns");
        parse_bad(LAB("{\"netns\":\"/n\",\"hostname\":\"w\",\"hosts\":\"/h\"}"), "lab: needs");
        parse_bad(LAB("{\"netns\":\"n\",\"hostname\":\"w\",\"hosts\":\"/h\",\"writable\":\"/w\"}"), "lab.netns");
        parse_bad(LAB("{\"netns\":\"/n\",\"hostname\":1,\"hosts\":\"/h\",\"writable\":\"/w\"}"), "lab.hostname");
        parse_bad(LAB("{\"netns\":\"/n\",\"hostname\":\"w\",\"hosts\":\"h\",\"writable\":\"/w\"}"), "lab.hosts");
        parse_bad(LAB("{\"netns\":\"/n\",\"hostname\":\"w\",\"hosts\":\"/h\",\"writable\":\"w\"}"), "lab.writable");
        parse_bad(LAB("{\"netns\":\"/n\",\"hostname\":\"w\",\"hosts\":\"/h\",\"resolv\":\"r\",\"writable\":\"/w\"}"), "lab.resolv");
        parse_bad(LAB("{\"netns\":\"/n\",\"hostname\":\"w\",\"hosts\":\"/h\",\"resolv\":1,\"writable\":\"/w\"}"), "lab.resolv");
        parse_bad(LAB("{\"netns\":\"/n\",\"hostname\":\"w\",\"hosts\":\"/h\",\"writable\":\"/w\",\"x\":1}"), "lab.x: unknown key");
        parse_bad(LAB("{\"netns\":\"/n\",\"hostname\":\"wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww\",\"hosts\":\"/h\",\"writable\":\"/w\"}"),
                  "lab.hostname: longer");
/* a lab object with its required keys, and x */
#define LAB_WITH(x) LAB("{\"netns\":\"/n\",\"hostname\":\"w\",\"hosts\":\"/h\",\"writable\":\"/w\"," x "}")
        /* the instance's cgroup: a plain name of ours, never a path */
        parse_bad(LAB_WITH("\"group\":\"../../x\""), "lab.group: expected");
        parse_bad(LAB_WITH("\"group\":\"gatewayd-lab-../x\""), "lab.group: expected");
        parse_bad(LAB_WITH("\"group\":\"gatewayd-lab-A\""), "lab.group: expected");
        parse_bad(LAB_WITH("\"group\":1"), "lab.group");
        parse_bad(LAB_WITH("\"group\":\"gatewayd-lab-1\",\"groupMemory\":-1"), "lab.groupMemory");
        parse_bad(LAB_WITH("\"group\":\"gatewayd-lab-1\",\"groupPids\":\"5\""), "lab.groupPids");
        /* a sized writable layer: the image file and its size go together */
        parse_bad(LAB_WITH("\"writableImage\":\"/w.img\""), "lab: writableImage, writableTemplate and writableMax");
        parse_bad(LAB_WITH("\"writableMax\":1048576"), "lab: writableImage, writableTemplate and writableMax");
        parse_bad(LAB_WITH("\"writableImage\":\"/w.img\",\"writableMax\":0"), "lab: writableImage, writableTemplate and writableMax");
        parse_bad(LAB_WITH("\"writableImage\":\"/w.img\",\"writableMax\":1048576"), "lab: writableImage, writableTemplate and writableMax");
        parse_bad(LAB_WITH("\"writableImage\":\"/w.img\",\"writableTemplate\":\"t.img\",\"writableMax\":1048576"),
                  "lab.writableTemplate");
        parse_bad(LAB_WITH("\"writableImage\":\"w.img\",\"writableTemplate\":\"/t.img\",\"writableMax\":1048576"),
                  "lab.writableImage");
        parse_bad(LAB_WITH("\"writableImage\":\"/w.img\",\"writableTemplate\":\"/t.img\",\"writableMax\":-1"),
                  "lab.writableMax");
#undef LAB_WITH
#undef LAB
        s = parse_ok("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"lab\":{\"netns\":\"/n\",\"hostname\":\"w\","
                     "\"hosts\":\"/h\",\"writable\":\"/w\",\"group\":\"gatewayd-lab-0a1b\",\"groupMemory\":1048576,"
                     "\"groupPids\":24}}");
        ck_assert_str_eq(s->group, "gatewayd-lab-0a1b");
        ck_assert_uint_eq(s->group_memory, 1048576);
        ck_assert_uint_eq(s->group_pids, 24);
        ck_assert_ptr_null(s->writable_image);  /* the layer is the directory itself */
        job_spec_free(s);

        s = parse_ok("{\"image\":{\"path\":\"/i\"},\"command\":[\"x\"],\"lab\":{\"netns\":\"/n\",\"hostname\":\"w\","
                     "\"hosts\":\"/h\",\"writable\":\"/w\",\"writableImage\":\"/w.img\",\"writableTemplate\":\"/t.img\","
                     "\"writableMax\":33554432}}");
        ck_assert_str_eq(s->writable_image, "/w.img");
        ck_assert_str_eq(s->writable_template, "/t.img");
        ck_assert_uint_eq(s->writable_max, 33554432);
        job_spec_free(s);
}
END_TEST

START_TEST(test_load) {
        char dir[] = "/tmp/test-job-spec-XXXXXX", path[256];
        int fd;
        FILE *f;
        JobSpec *s = NULL;
        char *error = NULL;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        fd = open(dir, O_RDONLY | O_DIRECTORY);
        ck_assert_int_eq(job_spec_load(fd, &s, &error), -EINVAL);
        ck_assert_ptr_nonnull(strstr(error, "job.json: cannot open"));
        free(error);

        snprintf(path, sizeof(path), "%s/job.json", dir);
        f = fopen(path, "w");
        fputs("{\"image\": {\"path\": \"/i\"}, \"command\": [\"x\"]} trailing", f);
        fclose(f);
        ck_assert_int_eq(job_spec_load(fd, &s, &error), -EINVAL);
        ck_assert_ptr_nonnull(strstr(error, "job.json: not valid JSON"));
        free(error);

        f = fopen(path, "w");
        fputs("{\"image\": {\"path\": \"/i\"}}", f);
        fclose(f);
        ck_assert_int_eq(job_spec_load(fd, &s, &error), -EINVAL);
        ck_assert_str_eq(error, "job.json: command: missing: the image has no entrypoint or cmd and the service sets no command");
        free(error);

        f = fopen(path, "w");
        fputs("{\"image\": {\"path\": \"/i\"}, \"command\": [\"x\"]}", f);
        fclose(f);
        ck_assert_int_eq(job_spec_load(fd, &s, &error), 0);
        ck_assert_str_eq(s->argv[0], "x");
        job_spec_free(s);

        unlink(path);
        close(fd);
        rmdir(dir);
}
END_TEST

/* A value of a random JSON type. */
static json_object *random_value(unsigned *seed, int depth) {
        switch (rand_r(seed) % 9) {
        case 0: return NULL;
        case 1: return json_object_new_boolean(rand_r(seed) % 2);
        case 2: return json_object_new_int64((int64_t) rand_r(seed) - RAND_MAX / 2);
        case 3: return json_object_new_double((double) rand_r(seed) / 7.0 - 1000);
        case 4: return json_object_new_string("/abs/path");
        case 5: return json_object_new_string(rand_r(seed) % 2 ? "" : "K=V");
        case 6: {
                json_object *a = json_object_new_array();
                for (int i = depth > 2 ? 0 : rand_r(seed) % 3; i > 0; i--)
                        json_object_array_add(a, random_value(seed, depth + 1));
                return a;
        }
        default: {
                static const char * const keys[] = { "path", "meta", "metaPath", "env", "cmd", "entrypoint",
                                                     "workdir", "memory", "cpus", "timeout", "pids", "x" };
                json_object *o = json_object_new_object();
                for (int i = depth > 2 ? 0 : rand_r(seed) % 4; i > 0; i--)
                        json_object_object_add(o, keys[rand_r(seed) % ELEMENTSOF(keys)], random_value(seed, depth + 1));
                return o;
        }
        }
}

START_TEST(test_random_specs) {
        /* Whatever the types, the answer is a spec or -EINVAL with a message, never a crash. */
        static const char * const keys[] = {
                "id", "image", "command", "env", "workdir", "network", "resources", "uid", "gid",
        };
        unsigned seed = 4242;

        for (int iter = 0; iter < 20000; iter++) {
                json_object *o = json_tokener_parse(
                        "{\"image\":{\"path\":\"/i\",\"meta\":{\"cmd\":[\"x\"]}},\"resources\":{}}");
                JobSpec *spec = NULL;
                char *error = NULL;
                int r;

                for (int k = rand_r(&seed) % 4; k >= 0; k--)
                        json_object_object_add(o, keys[rand_r(&seed) % ELEMENTSOF(keys)], random_value(&seed, 0));
                r = job_spec_from_json(o, &spec, &error);
                ck_assert_msg(r == 0 || (r == -EINVAL && error), "r=%d for %s", r, json_object_to_json_string(o));
                if (r == 0) {
                        ck_assert_ptr_nonnull(spec->argv[0]);
                        ck_assert(spec->workdir[0] == '/');
                        ck_assert_uint_ne(spec->uid, 0);
                }
                job_spec_free(spec);
                free(error);
                json_object_put(o);
        }
}
END_TEST

int main(void) {
        Suite *s = suite_create("job-spec");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_minimal);
        tcase_add_test(tc, test_full);
        tcase_add_test(tc, test_command_overrides);
        tcase_add_test(tc, test_output_defaults);
        tcase_add_test(tc, test_root_runs_as_nobody);
        tcase_add_test(tc, test_empty_workdir_means_root);
        tcase_add_test(tc, test_meta_path);
        tcase_add_test(tc, test_program);
        tcase_add_test(tc, test_bad);
        tcase_add_test(tc, test_lab);
        tcase_add_test(tc, test_load);
        tcase_add_test(tc, test_random_specs);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
