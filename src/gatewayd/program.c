/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/random.h>

#include "job.h"
#include "json-util.h"
#include "program.h"
#include "service.h"
#include "spool-layout.h"

#define PROGRAM_TEXT_MAX 4096
#define PROGRAM_DEPENDENCIES_MAX 256

Program *program_free(Program *p) {
        if (!p)
                return NULL;
        free(p->id);
        free(p->title);
        free(p->provider);
        free(p->entrypoint);
        json_object_put(p->arguments);
        json_object_put(p->env);
        json_object_put(p->dependencies);
        free(p->description);
        free(p->version);
        free(p->image);
        free(p->dir);
        free(p->layer);
        free(p->squashfs_path);
        free(p);
        return NULL;
}

int program_layer_new(char **ret) {
        uint8_t b[32];
        char *s;

        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return -errno ?: -EIO;
        s = malloc(sizeof(b) * 2 + 1);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(s + 2 * i, 3, "%02x", b[i]);
        *ret = s;
        return 0;
}

bool program_layer_is_valid(const char *layer) {
        if (!layer || strlen(layer) != 64)
                return false;
        for (const char *p = layer; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

bool program_title_is_valid(const char *title) {
        size_t n = strlen(title);

        if (n == 0 || n > 64 || title[0] == '.' || title[0] == '-')
                return false;
        for (const char *p = title; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '.' || *p == '_' || *p == '-'))
                        return false;
        return true;
}

static int text_field(json_object *v, const char *field, char **ret, GwError *e) {
        if (!v || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: expected a string", field);
        if (json_object_get_string_len(v) > PROGRAM_TEXT_MAX)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: longer than %d bytes", field, PROGRAM_TEXT_MAX);
        if (strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: must not contain NUL characters", field);
        return free_and_strdup(ret, json_object_get_string(v)) < 0 ? gw_error_set_errno(e, -ENOMEM, "Out of memory.") : 0;
}

static int text_is_utf8(const char *s, const char *field, GwError *e) {
        if (s && !utf8_is_valid(s, strlen(s)))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: not valid UTF-8", field);
        return 0;
}

/* A path inside the artifact: relative, no "..", no NUL; the worker checks that it is a file. */
static bool entrypoint_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 1024 || s[0] == '/' || s[n - 1] == '/')
                return false;
        for (const char *p = s; *p; p = p + strcspn(p, "/") + (p[strcspn(p, "/")] == '/'))
                if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == 0))
                        return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20)
                        return false;
        return true;
}

static int env_field(json_object *v, json_object **ret, GwError *e) {
        if (!v || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "env: expected an object of strings");
        json_object_object_foreach(v, k, x) {
                if (!env_name_is_valid(k))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "env.%s: not a valid environment variable name", k);
                if (!json_object_is_type(x, json_type_string) ||
                    strlen(json_object_get_string(x)) != (size_t) json_object_get_string_len(x))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "env.%s: expected a string without NUL", k);
        }
        json_object_put(*ret);
        *ret = json_object_get(v);
        return 0;
}

static int arguments_field(json_object *v, json_object **ret, GwError *e) {
        if (!v || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "arguments: expected an object");
        json_object_put(*ret);
        *ret = json_object_get(v);
        return 0;
}

static int dependencies_field(json_object *v, json_object **ret, GwError *e) {
        size_t n;

        if (!v || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_array))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "dependencies: expected an array of strings");
        n = json_object_array_length(v);
        if (n > PROGRAM_DEPENDENCIES_MAX)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "dependencies: more than %d", PROGRAM_DEPENDENCIES_MAX);
        for (size_t i = 0; i < n; i++) {
                json_object *x = json_object_array_get_idx(v, i);
                if (!json_object_is_type(x, json_type_string) || json_object_get_string_len(x) == 0 ||
                    json_object_get_string_len(x) > 256)
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "dependencies[%zu]: expected a requirement string", i);
        }
        json_object_put(*ret);
        *ret = json_object_get(v);
        return 0;
}

/* The fields a client sets and the stored spec share this parser; which keys are allowed is the
 * caller's business. */
static int program_apply_fields(Program *p, json_object *o, GwError *e) {
        json_object *v;
        int r = 0;

        if (json_object_object_get_ex(o, "entrypoint", &v)) {
                r = text_field(v, "entrypoint", &p->entrypoint, e);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(o, "description", &v))
                r = text_field(v, "description", &p->description, e);
        if (r >= 0 && json_object_object_get_ex(o, "version", &v))
                r = text_field(v, "version", &p->version, e);
        if (r >= 0 && json_object_object_get_ex(o, "arguments", &v))
                r = arguments_field(v, &p->arguments, e);
        if (r >= 0 && json_object_object_get_ex(o, "env", &v))
                r = env_field(v, &p->env, e);
        if (r >= 0 && json_object_object_get_ex(o, "dependencies", &v))
                r = dependencies_field(v, &p->dependencies, e);
        return r;
}

int program_from_metadata(json_object *meta, Program **ret, GwError *e) {
        static const char * const allowed[] = {
                "title", "entrypoint", "arguments", "env", "dependencies", "description", "version", "image", NULL
        };
        _cleanup_(program_freep) Program *p = NULL;
        json_object *v;
        int r;

        json_object_object_foreach(meta, k, x) {
                bool ok = false;
                (void) x;
                for (const char * const *a = allowed; *a; a++)
                        ok = ok || streq(*a, k);
                if (!ok)
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: unknown field", k);
        }
        p = calloc(1, sizeof(Program));
        if (!p)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        if (!json_object_object_get_ex(meta, "title", &v) || !json_object_is_type(v, json_type_string))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "title: required");
        if (!program_title_is_valid(json_object_get_string(v)))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                    "title: '%s' is not valid (1-64 of A-Z a-z 0-9 . _ -, not starting with . or -)",
                                    json_object_get_string(v));
        p->title = strdup(json_object_get_string(v));
        if (!p->title)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        r = program_apply_fields(p, meta, e);
        if (r >= 0 && json_object_object_get_ex(meta, "image", &v))
                /* checked against ProgramImages and normalised by the registry (program-registry.h) */
                r = text_field(v, "image", &p->image, e);
        if (r < 0)
                return r;
        /* Form fields and query parameters are bytes, and what is kept is shown as JSON. (Only
         * here: a spec stored before this check still loads.) */
        r = text_is_utf8(p->entrypoint, "entrypoint", e) ?: text_is_utf8(p->description, "description", e) ?:
            text_is_utf8(p->version, "version", e) ?: text_is_utf8(p->image, "image", e);
        if (r < 0)
                return r;
        /* with an image of its own, the image's entrypoint runs unless the artifact names one */
        if (!p->entrypoint && !p->image)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "entrypoint: required (or an image)");
        if (p->entrypoint && !entrypoint_is_valid(p->entrypoint))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                    "entrypoint: '%s' must be a relative path inside the artifact", p->entrypoint);
        *ret = TAKE_PTR(p);
        return 0;
}

static json_object *json_or_empty(json_object *o, json_type t) {
        return o ? json_object_get(o) : t == json_type_array ? json_object_new_array() : json_object_new_object();
}

json_object *program_spec_to_json(const Program *p) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "entrypoint", p->entrypoint ? json_object_new_string(p->entrypoint) : NULL);
        json_object_object_add(o, "entrypointExecutable", json_object_new_boolean(p->entrypoint_executable));
        json_object_object_add(o, "arguments", json_or_empty(p->arguments, json_type_object));
        json_object_object_add(o, "env", json_or_empty(p->env, json_type_object));
        json_object_object_add(o, "dependencies", json_or_empty(p->dependencies, json_type_array));
        json_object_object_add(o, "description", p->description ? json_object_new_string(p->description) : NULL);
        json_object_object_add(o, "version", p->version ? json_object_new_string(p->version) : NULL);
        json_object_object_add(o, "size", json_object_new_int64((int64_t) p->size));
        json_object_object_add(o, "files", json_object_new_int64((int64_t) p->files));
        if (p->layer)
                json_object_object_add(o, "layer", json_object_new_string(p->layer));
        return o;
}

int program_spec_apply(Program *p, json_object *spec, GwError *e) {
        json_object *v;
        int r;

        if (!json_object_is_type(spec, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "spec: expected an object");
        r = program_apply_fields(p, spec, e);
        if (r < 0)
                return r;
        if (!p->entrypoint && !p->image)  /* the image column is read first */
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "entrypoint: missing");
        p->entrypoint_executable = json_object_object_get_ex(spec, "entrypointExecutable", &v) && json_object_get_boolean(v);
        p->size = json_get_u64(spec, "size");
        p->files = json_get_u64(spec, "files");
        if (json_object_object_get_ex(spec, "layer", &v)) {
                if (!program_layer_is_valid(json_object_get_string(v)))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "layer: expected 64 hex digits");
                if (free_and_strdup(&p->layer, json_object_get_string(v)) < 0)
                        return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        }
        return 0;
}

json_object *program_to_json(const Program *p) {
        json_object *o = program_spec_to_json(p);
        char buf[32];

        if (!o)
                return NULL;
        json_object_object_del(o, "layer");  /* where it is kept is ours */
        json_object_object_add(o, "title", json_object_new_string(p->title));
        json_object_object_add(o, "image", p->image ? json_object_new_string(p->image) : NULL);
        json_object_object_add(o, "provider", p->provider ? json_object_new_string(p->provider) : NULL);
        json_object_object_add(o, "uid", json_object_new_int64(p->uid));
        json_object_object_add(o, "createdAt", json_object_new_string(format_timestamp_iso(buf, sizeof(buf), p->created_usec)));
        return o;
}

const char *program_image(const Program *p, const char *program_image_default) {
        return p->image ?: program_image_default;
}

json_object *program_merge_arguments(const Program *p, json_object *run_arguments) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (p->arguments) {
                json_object_object_foreach(p->arguments, k, v)
                        json_object_object_add(o, k, json_object_get(v));
        }
        if (run_arguments) {
                json_object_object_foreach(run_arguments, k2, v2)
                        json_object_object_add(o, k2, json_object_get(v2));
        }
        return o;
}

int program_run_arguments(const Program *p, json_object *arguments, json_object *env, json_object **ret, GwError *e) {
        json_object *merged;

        if (arguments && !json_object_is_type(arguments, json_type_null) && !json_object_is_type(arguments, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "arguments: expected an object");
        if (env && !json_object_is_type(env, json_type_null)) {
                if (!json_object_is_type(env, json_type_object))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "env: expected an object of strings");
                json_object_object_foreach(env, k, v) {
                        if (!env_name_is_valid(k))
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "env.%s: not a valid environment variable name", k);
                        if (!json_object_is_type(v, json_type_string) ||
                            strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v))
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "env.%s: expected a string without NUL", k);
                        if (strneq(k, "ENV_JOB_", 8))
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "env.%s: ENV_JOB_* is set by the gateway", k);
                }
        }
        merged = program_merge_arguments(p, json_object_is_type(arguments, json_type_object) ? arguments : NULL);
        if (!merged)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        if (strlen(json_object_to_json_string_ext(merged, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) >
            PROGRAM_ARGUMENTS_MAX) {
                json_object_put(merged);
                return gw_error_set(e, GW_ERROR_PAYLOAD_TOO_LARGE,
                                    "The arguments exceed %d bytes as JSON (they are passed in the environment).",
                                    PROGRAM_ARGUMENTS_MAX);
        }
        *ret = merged;
        return 0;
}

/* ---- a program's job ---- */

static json_object *read_spool_json(const Job *j, const char *name) {
        _cleanup_free_ char *text = NULL;

        if (job_read_spool_file(j, name, PROGRAM_ARGUMENTS_MAX + 4096, &text, NULL) < 0)
                return NULL;
        return json_tokener_parse(text);
}

static int env_add(char ***l, size_t *n, const char *k, const char *v) {
        char **t = realloc(*l, (*n + 2) * sizeof(char *));

        if (!t)
                return -ENOMEM;
        *l = t;
        if (asprintf(&t[*n], "%s=%s", k, v) < 0)
                return -ENOMEM;
        t[++*n] = NULL;
        return 0;
}

int program_job_service(const Program *p, const Job *j, const char *image, Service **ret) {
        _cleanup_(service_freep) Service *s = calloc(1, sizeof(Service));
        _cleanup_(json_object_putp) json_object *arguments = NULL, *env = NULL;
        size_t n = 0;
        int r = 0;

        if (!s)
                return -ENOMEM;
        arguments = read_spool_json(j, SPOOL_INPUT_DIR "/" PROGRAM_ARGUMENTS_FILE);
        env = read_spool_json(j, SPOOL_INPUT_DIR "/" PROGRAM_ENV_FILE);
        if (!arguments || !json_object_is_type(arguments, json_type_object))
                return -EBADMSG;
        s->name = strdup("");
        s->image = strdup(image);
        s->program_layer = strdup(p->squashfs_path);
        s->program_layer_id = strdup(p->layer);
        /* Without an entrypoint (a program on an image of its own), the image's entrypoint and cmd
         * run in its working directory, as a service's job runs it; the layer is at /program. */
        if (p->entrypoint && (!(s->workdir = strdup(PROGRAM_MOUNT_POINT)) || !(s->command = calloc(3, sizeof(char *)))))
                return -ENOMEM;
        if (!s->name || !s->image || !s->program_layer || !s->program_layer_id)
                return -ENOMEM;
        /* Executable: as it is (its #! line decides); otherwise a Python file, as the serverless
         * gateway's entrypoints are. */
        if (p->entrypoint && !p->entrypoint_executable && !(s->command[n++] = strdup("python3")))
                return -ENOMEM;
        if (p->entrypoint && asprintf(&s->command[n], PROGRAM_MOUNT_POINT "/%s", p->entrypoint) < 0) {
                s->command[n] = NULL;
                return -ENOMEM;
        }
        n = 0;
        /* The program's env, the run's over it, and what the gateway sets over both. */
        if (p->env) {
                json_object_object_foreach(p->env, k, v)
                        r = r < 0 ? r : env_add(&s->env, &n, k, json_object_get_string(v));
        }
        if (env && json_object_is_type(env, json_type_object)) {
                json_object_object_foreach(env, k2, v2)
                        r = r < 0 ? r : env_add(&s->env, &n, k2, json_object_get_string(v2));
        }
        if (r >= 0)
                r = env_add(&s->env, &n, "ENV_JOB_ARGUMENTS",
                            json_object_to_json_string_ext(arguments, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        if (r >= 0)
                r = env_add(&s->env, &n, "ENV_JOB_ID_GATEWAY", j->id);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}
