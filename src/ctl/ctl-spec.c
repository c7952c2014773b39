/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "ctl-spec.h"
#include "ctl-util.h"
#include "log.h"
#include "macro.h"

/* A spec larger than this is surely a mistake (the daemon limits request bodies too). */
#define SPEC_FILE_MAX (4U * 1024U * 1024U)

void spec_changes_done(SpecChanges *c) {
        c->file = mfree(c->file);
        c->image = mfree(c->image);
        c->description = mfree(c->description);
        strv_free(c->command);
        c->command = NULL;
        strv_free(c->env_set);
        c->env_set = NULL;
        strv_free(c->env_unset);
        c->env_unset = NULL;
}

bool spec_changes_empty(const SpecChanges *c) {
        return !c->file && !c->image && !c->description && !c->command_set && !c->env_set &&
               !c->env_unset && !c->memory_set && !c->cpus_set && !c->timeout_set && c->network < 0;
}

int strv_extend(char ***l, const char *s) {
        size_t n = strv_length(*l);
        char **t, *d;

        d = strdup(s);
        if (!d)
                return -ENOMEM;
        t = reallocarray(*l, n + 2, sizeof(char *));
        if (!t) {
                free(d);
                return -ENOMEM;
        }
        t[n] = d;
        t[n + 1] = NULL;
        *l = t;
        return 0;
}

int env_assignment_is_valid(const char *s) {
        const char *eq = strchr(s, '=');

        if (!eq || eq == s)
                return -EINVAL;
        return 0;
}

static json_object *json_strv(char **l) {
        json_object *a = json_object_new_array();

        if (!a)
                return NULL;
        for (char **i = l; i && *i; i++)
                if (json_object_array_add(a, json_object_new_string(*i)) < 0) {
                        json_object_put(a);
                        return NULL;
                }
        return a;
}

static int json_set(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

/* The environment is an object {"KEY": "value"}: --unset-env removes keys, --env sets them. */
static int spec_apply_env(json_object *spec, const SpecChanges *c) {
        json_object *env = NULL;
        int r;

        if (!c->env_set && !c->env_unset)
                return 0;

        if (!json_object_object_get_ex(spec, SPEC_KEY_ENVIRONMENT, &env) || json_object_is_type(env, json_type_null)) {
                env = json_object_new_object();
                r = json_set(spec, SPEC_KEY_ENVIRONMENT, env);
                if (r < 0)
                        return r;
        }
        if (!json_object_is_type(env, json_type_object))
                return log_error_errno(EINVAL, "The spec's \"" SPEC_KEY_ENVIRONMENT "\" is not an object.");

        for (char **i = c->env_unset; i && *i; i++)
                json_object_object_del(env, *i);
        for (char **i = c->env_set; i && *i; i++) {
                const char *eq = strchr(*i, '=');
                _cleanup_free_ char *key = strndup(*i, (size_t) (eq - *i));

                if (!key)
                        return -ENOMEM;
                r = json_set(env, key, json_object_new_string(eq + 1));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The limits live in a "resources" object; a limit of 0 is written as null ("no limit"), which
 * is how gatewayd itself shows an unset limit. */
static int spec_apply_resources(json_object *spec, const SpecChanges *c) {
        json_object *res = NULL;
        int r = 0;

        if (!c->memory_set && !c->cpus_set && !c->timeout_set)
                return 0;

        if (!json_object_object_get_ex(spec, SPEC_KEY_RESOURCES, &res) || !json_object_is_type(res, json_type_object)) {
                if (res && !json_object_is_type(res, json_type_null))
                        return log_error_errno(EINVAL, "The spec's \"" SPEC_KEY_RESOURCES "\" is not an object.");
                res = json_object_new_object();
                r = json_set(spec, SPEC_KEY_RESOURCES, res);
                if (r < 0)
                        return r;
        }

        if (c->memory_set)
                r = json_object_object_add(res, SPEC_KEY_MEMORY,
                                           c->memory > 0 ? json_object_new_uint64(c->memory) : NULL);
        if (r >= 0 && c->cpus_set)
                r = json_object_object_add(res, SPEC_KEY_CPUS, c->cpus > 0 ? json_object_new_double(c->cpus) : NULL);
        if (r >= 0 && c->timeout_set)
                r = json_object_object_add(res, SPEC_KEY_TIMEOUT,
                                           c->timeout_sec > 0 ? json_object_new_uint64(c->timeout_sec) : NULL);
        return r < 0 ? -ENOMEM : 0;
}

int spec_apply(json_object *spec, const SpecChanges *c) {
        int r = 0;

        if (c->image)
                r = json_set(spec, SPEC_KEY_IMAGE, json_object_new_string(c->image));
        if (r >= 0 && c->description)
                r = json_set(spec, SPEC_KEY_DESCRIPTION, json_object_new_string(c->description));
        /* An empty command ("--" with nothing after it) means the image's default command. */
        if (r >= 0 && c->command_set && strv_length(c->command) == 0)
                r = json_object_object_add(spec, SPEC_KEY_COMMAND, NULL) < 0 ? -ENOMEM : 0;
        else if (r >= 0 && c->command_set)
                r = json_set(spec, SPEC_KEY_COMMAND, json_strv(c->command));
        if (r >= 0)
                r = spec_apply_env(spec, c);
        if (r >= 0 && c->network >= 0)
                r = json_set(spec, SPEC_KEY_NETWORK, json_object_new_boolean(c->network));
        if (r >= 0)
                r = spec_apply_resources(spec, c);
        if (r == -ENOMEM)
                return log_oom();
        return r;
}

int spec_load_file(const char *path, json_object **ret) {
        _cleanup_free_ char *text = NULL, *msg = NULL;
        json_object *o;
        const char *what = streq(path, "-") ? "standard input" : path;
        int r;

        r = read_full_file(path, SPEC_FILE_MAX, &text, NULL);
        if (r == -EFBIG)
                return log_error_errno(r, "Spec %s is larger than %u bytes.", what, SPEC_FILE_MAX);
        if (r < 0)
                return log_error_errno(r, "Failed to read spec %s: %m", what);

        r = json_parse_text(text, &o, &msg);
        if (r < 0)
                return log_error_errno(r, "Spec %s is not valid JSON: %s", what, strna(msg));
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return log_error_errno(EINVAL, "Spec %s is not a JSON object.", what);
        }
        *ret = o;
        return 0;
}
