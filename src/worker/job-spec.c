/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "spool-layout.h"
#include "job-result-endpoint.h"
#include "job-spec.h"
#include "result-files.h"
#include "macro.h"

#define JOB_JSON_MAX (1024 * 1024)
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

JobSpec *job_spec_free(JobSpec *s) {
        if (!s)
                return NULL;
        free(s->id);
        free(s->image_path);
        free(s->program_path);
        free(s->program_token);
        strv_free(s->argv);
        strv_free(s->env);
        free(s->workdir);
        free(s->netns);
        free(s->hostname);
        free(s->hosts);
        free(s->resolv);
        free(s->writable);
        free(s->writable_image);
        free(s->writable_template);
        free(s->group);
        return mfree(s);
}

_printf_(2, 3)
static int fail(char **ret_error, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        if (vasprintf(ret_error, format, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return *ret_error ? -EINVAL : -ENOMEM;
}

static bool string_ok(json_object *v) {
        /* json-c strings may hold "\u0000", which no argv or path can carry. */
        return json_object_is_type(v, json_type_string) &&
                strlen(json_object_get_string(v)) == (size_t) json_object_get_string_len(v);
}

static int strv_push(char ***l, size_t *n, const char *s) {
        char **t;

        t = realloc(*l, (*n + 2) * sizeof(char *));
        if (!t)
                return -ENOMEM;
        *l = t;
        t[*n] = strdup(s);
        if (!t[*n])
                return -ENOMEM;
        t[++*n] = NULL;
        return 0;
}

/* Appends a JSON array of strings (or null) to *l. */
static int strv_push_json(char ***l, size_t *n, json_object *a, const char *key, char **ret_error) {
        int r;

        if (!a)
                return 0;
        if (!json_object_is_type(a, json_type_array))
                return fail(ret_error, "%s: expected an array of strings", key);
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *v = json_object_array_get_idx(a, i);
                if (!string_ok(v))
                        return fail(ret_error, "%s[%zu]: expected a string", key, i);
                r = strv_push(l, n, json_object_get_string(v));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_keys(json_object *o, const char *where, const char * const *allowed, char **ret_error) {
        json_object_object_foreach(o, k, v) {
                bool found = false;
                (void) v;
                for (const char * const *a = allowed; *a; a++)
                        if (streq(k, *a))
                                found = true;
                if (!found)
                        return fail(ret_error, "%s%s: unknown key", where, k);
        }
        return 0;
}

static int get_string(json_object *o, const char *key, const char *name, char **ret, char **ret_error) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!string_ok(v))
                return fail(ret_error, "%s: expected a string", name);
        return free_and_strdup(ret, json_object_get_string(v));
}

static int get_absolute_path(json_object *o, const char *key, const char *name, char **ret, char **ret_error) {
        int r;

        r = get_string(o, key, name, ret, ret_error);
        if (r < 0)
                return r;
        if (*ret && (*ret)[0] == 0)
                *ret = mfree(*ret);     /* image configs say "" for "unset" */
        if (*ret && (*ret)[0] != '/')
                return fail(ret_error, "%s: expected an absolute path", name);
        return 0;
}

static int get_u64(json_object *o, const char *key, const char *name, uint64_t max, uint64_t *ret, char **ret_error) {
        json_object *v;
        int64_t i;

        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_int))
                return fail(ret_error, "%s: expected a non-negative integer", name);
        errno = 0;
        i = json_object_get_int64(v);
        if (i < 0 || errno != 0 || (uint64_t) i > max)
                return fail(ret_error, "%s: out of range", name);
        *ret = (uint64_t) i;
        return 0;
}

static int get_number(json_object *o, const char *key, const char *name, double max, double *ret, char **ret_error) {
        json_object *v;
        double d;

        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
                return fail(ret_error, "%s: expected a non-negative number", name);
        d = json_object_get_double(v);
        if (!isfinite(d) || d < 0 || d > max)
                return fail(ret_error, "%s: out of range", name);
        *ret = d;
        return 0;
}

static int env_set(char ***env, size_t *n, const char *key, size_t key_len, const char *assignment) {
        for (size_t i = 0; i < *n; i++)
                if (strneq((*env)[i], key, key_len) && (*env)[i][key_len] == '=')
                        return free_and_strdup(&(*env)[i], assignment);
        return strv_push(env, n, assignment);
}

static int parse_meta(json_object *meta, JobSpec *s, size_t *env_n, char **ret_error) {
        json_object *v;
        size_t argv_n = 0;
        int r;

        /* Unknown keys are fine here: the meta file is the pull worker's, and may grow. */
        if (!json_object_is_type(meta, json_type_object))
                return fail(ret_error, "image.meta: expected an object");

        if (json_object_object_get_ex(meta, "env", &v) && !json_object_is_type(v, json_type_null)) {
                if (!json_object_is_type(v, json_type_array))
                        return fail(ret_error, "image.meta.env: expected an array of \"KEY=VALUE\" strings");
                for (size_t i = 0; i < json_object_array_length(v); i++) {
                        json_object *e = json_object_array_get_idx(v, i);
                        const char *eq;
                        if (!string_ok(e) || !(eq = strchr(json_object_get_string(e), '=')) ||
                            eq == json_object_get_string(e))
                                return fail(ret_error, "image.meta.env[%zu]: expected a \"KEY=VALUE\" string", i);
                        r = env_set(&s->env, env_n, json_object_get_string(e),
                                    (size_t) (eq - json_object_get_string(e)), json_object_get_string(e));
                        if (r < 0)
                                return r;
                }
        }

        r = strv_push_json(&s->argv, &argv_n, json_object_object_get_ex(meta, "entrypoint", &v) ? v : NULL,
                           "image.meta.entrypoint", ret_error);
        if (r < 0)
                return r;
        r = strv_push_json(&s->argv, &argv_n, json_object_object_get_ex(meta, "cmd", &v) ? v : NULL,
                           "image.meta.cmd", ret_error);
        if (r < 0)
                return r;
        return get_absolute_path(meta, "workdir", "image.meta.workdir", &s->workdir, ret_error);
}

static int read_json_file(int dir_fd, const char *path, const char *name, json_object **ret, char **ret_error) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct json_tokener *tok;
        struct stat st;
        size_t n = 0;

        fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return fail(ret_error, "%s: cannot open: %s", name, strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return fail(ret_error, "%s: not a regular file", name);
        if (st.st_size > JOB_JSON_MAX)
                return fail(ret_error, "%s: larger than %d bytes", name, JOB_JSON_MAX);
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return fail(ret_error, "%s: cannot read: %s", name, strerror(errno));
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = 0;

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        *ret = json_tokener_parse_ex(tok, buf, (int) n + 1);
        if (json_tokener_get_error(tok) != json_tokener_success || memchr(buf, 0, n)) {
                const char *e = json_tokener_error_desc(json_tokener_get_error(tok));
                json_object_put(*ret);
                *ret = NULL;
                json_tokener_free(tok);
                return fail(ret_error, "%s: not valid JSON: %s", name, e);
        }
        json_tokener_free(tok);
        return 0;
}

static int parse_image(json_object *image, JobSpec *s, size_t *env_n, char **ret_error) {
        static const char * const allowed[] = { "path", "meta", "metaPath", NULL };
        json_object *meta = NULL, *owned = NULL;
        _cleanup_free_ char *meta_path = NULL;
        int r;

        if (!json_object_is_type(image, json_type_object))
                return fail(ret_error, "image: expected an object");
        r = check_keys(image, "image.", allowed, ret_error);
        if (r < 0)
                return r;
        r = get_absolute_path(image, "path", "image.path", &s->image_path, ret_error);
        if (r < 0)
                return r;
        if (!s->image_path)
                return fail(ret_error, "image.path: missing");

        r = get_absolute_path(image, "metaPath", "image.metaPath", &meta_path, ret_error);
        if (r < 0)
                return r;
        json_object_object_get_ex(image, "meta", &meta);
        if (meta && meta_path)
                return fail(ret_error, "image: give either \"meta\" or \"metaPath\", not both");
        if (meta_path) {
                r = read_json_file(AT_FDCWD, meta_path, "image.metaPath", &owned, ret_error);
                if (r < 0)
                        return r;
                meta = owned;
        }
        if (meta)
                r = parse_meta(meta, s, env_n, ret_error);
        json_object_put(owned);
        return r;
}

static int parse_resources(json_object *res, JobSpec *s, char **ret_error) {
        static const char * const allowed[] = { "memory", "cpus", "timeout", "pids", "outputMax", "outputFiles", NULL };
        double timeout = 0;
        int r;

        if (!json_object_is_type(res, json_type_object))
                return fail(ret_error, "resources: expected an object");
        r = check_keys(res, "resources.", allowed, ret_error);
        if (r < 0)
                return r;
        r = get_u64(res, "memory", "resources.memory", INT64_MAX, &s->memory, ret_error);
        if (r < 0)
                return r;
        r = get_number(res, "cpus", "resources.cpus", 4096, &s->cpus, ret_error);
        if (r < 0)
                return r;
        r = get_number(res, "timeout", "resources.timeout", 10.0 * 365 * 24 * 3600, &timeout, ret_error);
        if (r < 0)
                return r;
        s->timeout_usec = (uint64_t) (timeout * 1e6);
        r = get_u64(res, "outputMax", "resources.outputMax", INT64_MAX, &s->output_max, ret_error);
        if (r < 0)
                return r;
        r = get_u64(res, "outputFiles", "resources.outputFiles", 1000000, &s->output_files, ret_error);
        if (r < 0)
                return r;
        return get_u64(res, "pids", "resources.pids", 4194304, &s->pids, ret_error);
}

static int parse_command_and_env(json_object *o, JobSpec *s, size_t *env_n, char **ret_error) {
        json_object *v;
        int r;

        if (json_object_object_get_ex(o, "command", &v) && !json_object_is_type(v, json_type_null)) {
                size_t n = 0;
                strv_free(s->argv);
                s->argv = NULL;
                r = strv_push_json(&s->argv, &n, v, "command", ret_error);
                if (r < 0)
                        return r;
        }
        if (!s->argv || !s->argv[0] || !s->argv[0][0])
                return fail(ret_error, "command: missing: the image has no entrypoint or cmd and the service sets no command");

        if (json_object_object_get_ex(o, "env", &v) && !json_object_is_type(v, json_type_null)) {
                if (!json_object_is_type(v, json_type_object))
                        return fail(ret_error, "env: expected an object of strings");
                json_object_object_foreach(v, k, val) {
                        _cleanup_free_ char *a = NULL;
                        if (!k[0] || strchr(k, '='))
                                return fail(ret_error, "env.%s: invalid variable name", k);
                        if (!string_ok(val))
                                return fail(ret_error, "env.%s: expected a string", k);
                        if (asprintf(&a, "%s=%s", k, json_object_get_string(val)) < 0)
                                return -ENOMEM;
                        r = env_set(&s->env, env_n, k, strlen(k), a);
                        if (r < 0)
                                return r;
                }
        }
        /* Docker's default when the image sets none, so "python" in a cmd resolves as there. */
        for (size_t i = 0; i < *env_n; i++)
                if (strneq(s->env[i], "PATH=", 5))
                        return 0;
        return strv_push(&s->env, env_n, DEFAULT_PATH);
}

static int parse_ids(json_object *o, JobSpec *s, char **ret_error) {
        uint64_t uid = JOB_NOBODY_ID, gid = JOB_NOBODY_ID;
        int r;

        r = get_u64(o, "uid", "uid", UINT32_MAX - 1, &uid, ret_error);
        if (r < 0)
                return r;
        r = get_u64(o, "gid", "gid", UINT32_MAX - 1, &gid, ret_error);
        if (r < 0)
                return r;
        /* Root's jobs run as nobody: a job never holds uid 0, not even in its namespaces. */
        if (uid == 0) {
                uid = JOB_NOBODY_ID;
                gid = JOB_NOBODY_ID;
        }
        if (gid == 0)
                gid = JOB_NOBODY_ID;
        s->uid = (uid_t) uid;
        s->gid = (gid_t) gid;
        return 0;
}

/* A lab member: the instance's network namespace, host name, hosts file (and resolver file, if
 * it goes out) and writable layer. */
static int parse_lab(json_object *lab, JobSpec *s, char **ret_error) {
        static const char * const allowed[] = { "netns", "hostname", "hosts", "resolv", "writable",
                                                "writableImage", "writableTemplate", "writableMax", "group", "groupMemory",
                                                "groupPids", NULL };
        int r;

        if (!json_object_is_type(lab, json_type_object))
                return fail(ret_error, "lab: expected an object");
        r = check_keys(lab, "lab.", allowed, ret_error);
        if (r >= 0)
                r = get_absolute_path(lab, "netns", "lab.netns", &s->netns, ret_error);
        if (r >= 0)
                r = get_string(lab, "hostname", "lab.hostname", &s->hostname, ret_error);
        if (r >= 0)
                r = get_absolute_path(lab, "hosts", "lab.hosts", &s->hosts, ret_error);
        if (r >= 0)
                r = get_absolute_path(lab, "resolv", "lab.resolv", &s->resolv, ret_error);
        if (r >= 0)
                r = get_absolute_path(lab, "writable", "lab.writable", &s->writable, ret_error);
        if (r >= 0)
                r = get_absolute_path(lab, "writableImage", "lab.writableImage", &s->writable_image, ret_error);
        if (r >= 0)
                r = get_absolute_path(lab, "writableTemplate", "lab.writableTemplate", &s->writable_template, ret_error);
        if (r >= 0)
                r = get_u64(lab, "writableMax", "lab.writableMax", INT64_MAX, &s->writable_max, ret_error);
        if (r >= 0)
                r = get_string(lab, "group", "lab.group", &s->group, ret_error);
        if (r >= 0)
                r = get_u64(lab, "groupMemory", "lab.groupMemory", INT64_MAX, &s->group_memory, ret_error);
        if (r >= 0)
                r = get_u64(lab, "groupPids", "lab.groupPids", 4194304, &s->group_pids, ret_error);
        if (r < 0)
                return r;
        /* A directory name next to our own job cgroups, nothing that could climb out of them. */
        if (s->group && (!strneq(s->group, "gatewayd-lab-", 13) || strlen(s->group) > 64 ||
                         s->group[strspn(s->group, "abcdefghijklmnopqrstuvwxyz0123456789-")]))
                return fail(ret_error, "lab.group: expected \"gatewayd-lab-\" followed by [a-z0-9-]");
        if (!s->netns || !s->hostname || !s->hosts || !s->writable)
                return fail(ret_error, "lab: needs netns, hostname, hosts and writable");
        if (!s->writable_image != !s->writable_max || !s->writable_image != !s->writable_template)
                return fail(ret_error, "lab: writableImage, writableTemplate and writableMax (> 0) go together");
        if (strlen(s->hostname) > 63)
                return fail(ret_error, "lab.hostname: longer than 63 characters");
        /* Joining the instance's namespace is instead of a new one. */
        s->network = true;
        return 0;
}

/* program.token: gatewayd's token for this job's save_result; the job finds it and where to send
 * it (job-result-endpoint.h) in its environment, over whatever the image or service set. */
static int parse_program_token(json_object *program, JobSpec *s, size_t *env_n, char **ret_error) {
        _cleanup_free_ char *a = NULL;
        int r;

        r = get_string(program, "token", "program.token", &s->program_token, ret_error);
        if (r < 0 || !s->program_token)
                return r;
        if (!s->program_token[0] || s->program_token[strspn(s->program_token, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                              "abcdefghijklmnopqrstuvwxyz0123456789-_.")])
                return fail(ret_error, "program.token: expected a non-empty token of [A-Za-z0-9._-]");
        if (asprintf(&a, "ENV_JOB_GATEWAY_TOKEN=%s", s->program_token) < 0)
                return -ENOMEM;
        r = env_set(&s->env, env_n, "ENV_JOB_GATEWAY_TOKEN", strlen("ENV_JOB_GATEWAY_TOKEN"), a);
        if (r >= 0)
                r = env_set(&s->env, env_n, "ENV_JOB_GATEWAY_HOST", strlen("ENV_JOB_GATEWAY_HOST"),
                            "ENV_JOB_GATEWAY_HOST=" RESULT_ENDPOINT_HOST);
        return r;
}

int job_spec_from_json(json_object *o, JobSpec **ret, char **ret_error) {
        static const char * const allowed[] = {
                "id", "image", "command", "env", "workdir", "network", "resources", "uid", "gid", "program", "lab", NULL
        };
        _cleanup_job_spec_ JobSpec *s = NULL;
        size_t env_n = 0;
        json_object *v;
        int r;

        *ret_error = NULL;
        if (!json_object_is_type(o, json_type_object))
                return fail(ret_error, "expected a JSON object");
        r = check_keys(o, "", allowed, ret_error);
        if (r < 0)
                return r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->output_max = RESULT_FILES_MAX_DEFAULT;
        s->output_files = RESULT_FILES_COUNT_DEFAULT;

        r = get_string(o, "id", "id", &s->id, ret_error);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(o, "image", &v))
                return fail(ret_error, "image: missing");
        r = parse_image(v, s, &env_n, ret_error);
        if (r < 0)
                return r;
        r = parse_command_and_env(o, s, &env_n, ret_error);
        if (r < 0)
                return r;
        r = get_absolute_path(o, "workdir", "workdir", &s->workdir, ret_error);
        if (r < 0)
                return r;
        if (!s->workdir) {
                s->workdir = strdup("/");
                if (!s->workdir)
                        return -ENOMEM;
        }
        if (json_object_object_get_ex(o, "network", &v) && !json_object_is_type(v, json_type_null)) {
                if (!json_object_is_type(v, json_type_boolean))
                        return fail(ret_error, "network: expected true or false");
                s->network = json_object_get_boolean(v);
        }
        if (json_object_object_get_ex(o, "resources", &v) && !json_object_is_type(v, json_type_null)) {
                r = parse_resources(v, s, ret_error);
                if (r < 0)
                        return r;
        }
        r = parse_ids(o, s, ret_error);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(o, "program", &v) && !json_object_is_type(v, json_type_null)) {
                static const char * const program_keys[] = { "path", "token", NULL };

                if (!json_object_is_type(v, json_type_object))
                        return fail(ret_error, "program: expected an object");
                r = check_keys(v, "program.", program_keys, ret_error);
                if (r < 0)
                        return r;
                r = get_absolute_path(v, "path", "program.path", &s->program_path, ret_error);
                if (r < 0)
                        return r;
                if (!s->program_path)
                        return fail(ret_error, "program.path: missing");
                r = parse_program_token(v, s, &env_n, ret_error);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(o, "lab", &v) && !json_object_is_type(v, json_type_null)) {
                r = parse_lab(v, s, ret_error);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(s);
        return 0;
}

int job_spec_load(int dir_fd, JobSpec **ret, char **ret_error) {
        json_object *o = NULL;
        _cleanup_free_ char *e = NULL;
        int r;

        *ret_error = NULL;
        r = read_json_file(dir_fd, SPOOL_JOB_SPEC, SPOOL_JOB_SPEC, &o, ret_error);
        if (r < 0)
                return r;
        r = job_spec_from_json(o, ret, &e);
        json_object_put(o);
        if (r == -EINVAL && e) {
                if (asprintf(ret_error, "job.json: %s", e) < 0)
                        return -ENOMEM;
        }
        return r;
}
