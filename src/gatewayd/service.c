/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <math.h>
#include <time.h>

#include "json-util.h"
#include "service.h"

Service *service_free(Service *s) {
        if (!s)
                return NULL;
        free(s->name);
        free(s->image);
        free(s->description);
        strv_free(s->command);
        strv_free(s->env);
        free(s->program_layer);
        free(s->program_layer_id);
        free(s->workdir);
        free(s->object_path);
        free(s->json);
        free(s);
        return NULL;
}

bool service_name_is_valid(const char *name) {
        size_t n = strlen(name);

        if (n == 0 || n > 63 || name[0] == '-' || name[n - 1] == '-')
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        return true;
}

bool env_name_is_valid(const char *name) {
        if (!name[0] || isdigit((unsigned char) name[0]) || strlen(name) > 255)
                return false;
        for (const char *p = name; *p; p++)
                if (!(isalnum((unsigned char) *p) || *p == '_'))
                        return false;
        return true;
}

/* A registry reference is validated in depth when it is pulled; here we only keep out what can
 * never be one, so that garbage does not sit in the registry until the first job. */
bool image_reference_is_plausible(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 1024)
                return false;
        for (const char *p = s; *p; p++)
                if (!(isalnum((unsigned char) *p) || strchr("./:_-@+", *p)))
                        return false;
        return s[0] != '/' && s[0] != ':' && s[0] != '@' && s[n - 1] != '/';
}

int strv_from_json_array(json_object *a, const char *field, char ***ret, GwError *e) {
        size_t n = json_object_array_length(a);
        _cleanup_strv_free_ char **l = calloc(n + 1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *x = json_object_array_get_idx(a, i);
                if (!json_object_is_type(x, json_type_string))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s[%zu]: expected a string", field, i);
                l[i] = strdup(json_object_get_string(x));
                if (!l[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

static int env_from_json(json_object *o, char ***ret, GwError *e) {
        size_t n = json_object_object_length(o), i = 0;
        _cleanup_strv_free_ char **l = calloc(n + 1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        json_object_object_foreach(o, k, v) {
                if (!env_name_is_valid(k))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                            "env.%s: not a valid environment variable name", k);
                if (!json_object_is_type(v, json_type_string))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "env.%s: expected a string", k);
                if (asprintf(&l[i++], "%s=%s", k, json_object_get_string(v)) < 0)
                        return -ENOMEM;
        }
        qsort(l, n, sizeof(char *), compare_strings);
        *ret = TAKE_PTR(l);
        return 0;
}

/* Accepts a positive integer (or null = unset). */
static int parse_positive_u64(json_object *v, const char *field, uint64_t *ret, GwError *e) {
        int64_t x;

        if (json_object_is_type(v, json_type_null)) {
                *ret = 0;
                return 0;
        }
        if (!json_object_is_type(v, json_type_int))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: expected a positive integer", field);
        x = json_object_get_int64(v);
        if (x <= 0)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: must be a positive integer", field);
        *ret = (uint64_t) x;
        return 0;
}

static int parse_resources(json_object *o, Service *s, GwError *e) {
        int r;

        if (!json_object_is_type(o, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "resources: expected an object");

        json_object_object_foreach(o, k, v) {
                if (streq(k, "memory"))
                        r = parse_positive_u64(v, "resources.memory", &s->memory, e);
                else if (streq(k, "timeout"))
                        r = parse_positive_u64(v, "resources.timeout", &s->timeout_sec, e);
                else if (streq(k, "cpus")) {
                        if (json_object_is_type(v, json_type_null)) {
                                s->cpus = 0;
                                continue;
                        }
                        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "resources.cpus: expected a number");
                        s->cpus = json_object_get_double(v);
                        if (!(s->cpus > 0) || !isfinite(s->cpus) || s->cpus > 65536)
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                                    "resources.cpus: must be a positive number");
                        r = 0;
                } else
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "resources.%s: unknown field", k);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_string_field(json_object *v, const char *field, char **ret, GwError *e) {
        if (!json_object_is_type(v, json_type_string))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: expected a string", field);
        return free_and_strdup(ret, json_object_get_string(v));
}

static int service_apply_field(Service *s, const char *k, json_object *v, const char *expected_name, GwError *e) {
        if (streq(k, "name")) {
                if (!json_object_is_type(v, json_type_string))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "name: expected a string");
                if (expected_name && !streq(json_object_get_string(v), expected_name))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                            "name: '%s' does not match the service in the path ('%s')",
                                            json_object_get_string(v), expected_name);
                return free_and_strdup(&s->name, json_object_get_string(v));
        }
        if (streq(k, "image"))
                return parse_string_field(v, "image", &s->image, e);
        if (streq(k, "description"))
                return parse_string_field(v, "description", &s->description, e);
        if (streq(k, "command")) {
                if (json_object_is_type(v, json_type_null))
                        return 0;
                if (!json_object_is_type(v, json_type_array))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "command: expected an array of strings");
                if (json_object_array_length(v) == 0)
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                            "command: must not be empty (use null for the image's default)");
                return strv_from_json_array(v, "command", &s->command, e);
        }
        if (streq(k, "env")) {
                if (json_object_is_type(v, json_type_null))
                        return 0;
                if (!json_object_is_type(v, json_type_object))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "env: expected an object of strings");
                return env_from_json(v, &s->env, e);
        }
        if (streq(k, "resources"))
                return json_object_is_type(v, json_type_null) ? 0 : parse_resources(v, s, e);
        if (streq(k, "network")) {
                if (!json_object_is_type(v, json_type_boolean))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "network: expected true or false");
                s->network = json_object_get_boolean(v);
                return 0;
        }
        if (streq(k, "createdAt") || streq(k, "updatedAt"))
                return 0;
        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: unknown field", k);
}

int service_from_spec(json_object *spec, const char *expected_name, Service **ret, GwError *e) {
        _cleanup_(service_freep) Service *s = NULL;
        int r;

        if (!json_object_is_type(spec, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "service spec: expected a JSON object");

        s = calloc(1, sizeof(Service));
        if (!s)
                return -ENOMEM;

        json_object_object_foreach(spec, k, v) {
                r = service_apply_field(s, k, v, expected_name, e);
                if (r < 0)
                        return r == -ENOMEM ? gw_error_set_errno(e, r, "Out of memory") : r;
        }

        if (!s->name && expected_name) {
                s->name = strdup(expected_name);
                if (!s->name)
                        return gw_error_set_errno(e, -ENOMEM, "Out of memory");
        }
        if (!s->name)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "name: missing");
        if (!service_name_is_valid(s->name))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                    "name: '%s' is not a lowercase DNS label (1-63 of a-z, 0-9, '-', not starting or ending with '-')",
                                    s->name);
        if (!s->image)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "image: missing");
        if (!image_reference_is_plausible(s->image))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "image: '%s' is not a valid image reference", s->image);
        if (!s->description && !(s->description = strdup("")))
                return gw_error_set_errno(e, -ENOMEM, "Out of memory");

        *ret = TAKE_PTR(s);
        return 0;
}

static json_object *json_uint_or_null(uint64_t v) {
        return v ? json_object_new_int64((int64_t) v) : NULL;
}

json_object *service_spec_to_json(const Service *s) {
        json_object *o = json_object_new_object(), *res, *env;

        if (!o)
                return NULL;
        json_object_object_add(o, "name", json_object_new_string(s->name));
        json_object_object_add(o, "image", json_object_new_string(s->image));
        if (s->command) {
                json_object *a = json_object_new_array();
                for (char **c = s->command; *c; c++)
                        json_object_array_add(a, json_object_new_string(*c));
                json_object_object_add(o, "command", a);
        } else
                json_object_object_add(o, "command", NULL);

        env = json_object_new_object();
        for (char **i = s->env; i && *i; i++) {
                const char *eq = strchr(*i, '=');
                _cleanup_free_ char *k = strndup(*i, (size_t) (eq - *i));
                if (k)
                        json_object_object_add(env, k, json_object_new_string(eq + 1));
        }
        json_object_object_add(o, "env", env);
        json_object_object_add(o, "description", json_object_new_string(s->description));

        res = json_object_new_object();
        json_object_object_add(res, "memory", json_uint_or_null(s->memory));
        json_object_object_add(res, "cpus", s->cpus > 0 ? json_object_new_double(s->cpus) : NULL);
        json_object_object_add(res, "timeout", json_uint_or_null(s->timeout_sec));
        json_object_object_add(o, "resources", res);
        json_object_object_add(o, "network", json_object_new_boolean(s->network));
        return o;
}

char *format_timestamp_iso(char *buf, size_t size, uint64_t usec) {
        time_t t = (time_t) (usec / 1000000);
        struct tm tm;
        size_t n;

        gmtime_r(&t, &tm);
        n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, size - n, ".%03uZ", (unsigned) (usec % 1000000 / 1000));
        return buf;
}

json_object *service_to_json(const Service *s) {
        json_object *o = service_spec_to_json(s);
        char buf[32];

        if (!o)
                return NULL;
        json_object_object_add(o, "createdAt", json_object_new_string(format_timestamp_iso(buf, sizeof(buf), s->created_usec)));
        json_object_object_add(o, "updatedAt", json_object_new_string(format_timestamp_iso(buf, sizeof(buf), s->updated_usec)));
        return o;
}

const char *service_json(Service *s) {
        if (!s->json) {
                json_object *o = service_to_json(s);
                if (!o)
                        return NULL;
                s->json = strdup(json_text(o));
                json_object_put(o);
        }
        return s->json;
}

void service_invalidate_json(Service *s) {
        s->json = mfree(s->json);
}
