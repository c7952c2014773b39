/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>

#include "config.h"
#include "json-util.h"
#include "lab.h"
#include "service.h"
#include "size-util.h"

static const char * const port_kinds[_LAB_PORT_KIND_MAX] = {
        [LAB_PORT_HTTP] = "http",
        [LAB_PORT_VNC] = "vnc",
        [LAB_PORT_TCP] = "tcp",
};

const char *lab_port_kind_to_string(LabPortKind k) {
        return k < _LAB_PORT_KIND_MAX ? port_kinds[k] : NULL;
}

LabPortKind lab_port_kind_from_string(const char *s) {
        for (LabPortKind k = 0; k < _LAB_PORT_KIND_MAX; k++)
                if (streq(s, port_kinds[k]))
                        return k;
        return _LAB_PORT_KIND_MAX;
}

static int invalid(GwError *e, const char *field, const char *what);

static const char * const networks[_LAB_NETWORK_MAX] = {
        [LAB_NETWORK_NONE] = "none",
        [LAB_NETWORK_OUTBOUND] = "outbound",
};

const char *lab_network_to_string(LabNetwork n) {
        return n < _LAB_NETWORK_MAX ? networks[n] : NULL;
}

static int parse_network(json_object *v, Lab *l, GwError *e) {
        if (json_object_is_type(v, json_type_null)) {
                l->network = LAB_NETWORK_NONE;
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return invalid(e, "network", "expected \"none\" or \"outbound\"");
        for (LabNetwork n = 0; n < _LAB_NETWORK_MAX; n++)
                if (streq(json_object_get_string(v), networks[n])) {
                        l->network = n;
                        return 0;
                }
        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "network: '%s' is not one of \"none\", \"outbound\"",
                            json_object_get_string(v));
}

static void lab_member_done(LabMember *m) {
        free(m->name);
        free(m->image);
        strv_free(m->command);
        strv_free(m->env);
        free(m->ports);
}

Lab *lab_free(Lab *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n_members; i++)
                lab_member_done(&l->members[i]);
        free(l->members);
        free(l->name);
        free(l->description);
        free(l->instructions);
        free(l->object_path);
        free(l->json);
        free(l);
        return NULL;
}

static int invalid(GwError *e, const char *field, const char *what) {
        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: %s", field, what);
}

static int parse_text(json_object *v, const char *field, size_t max, char **ret, GwError *e) {
        const char *s;
        size_t n;

        if (!json_object_is_type(v, json_type_string))
                return invalid(e, field, "expected a string");
        s = json_object_get_string(v);
        n = (size_t) json_object_get_string_len(v);
        if (n > max)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: longer than %zu bytes", field, max);
        if (strlen(s) != n)
                return invalid(e, field, "contains a NUL character");
        return free_and_strdup(ret, s);
}

static int parse_name(json_object *v, const char *field, char **ret, GwError *e) {
        int r;

        r = parse_text(v, field, 63, ret, e);
        if (r < 0)
                return r;
        if (!service_name_is_valid(*ret))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                    "%s: '%s' is not a lowercase DNS label (1-63 of a-z, 0-9, '-', not starting or ending with '-')",
                                    field, *ret);
        return 0;
}

static int parse_command(json_object *v, const char *field, char ***ret, GwError *e) {
        size_t n;
        int r;

        if (json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_array))
                return invalid(e, field, "expected an array of strings");
        n = json_object_array_length(v);
        if (n == 0)
                return invalid(e, field, "must not be empty (use null for the image's default)");
        if (n > LAB_ARGS_MAX)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: more than %u arguments", field, LAB_ARGS_MAX);
        r = strv_from_json_array(v, field, ret, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (strlen((*ret)[i]) > LAB_STRING_MAX)
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s[%zu]: longer than %u bytes",
                                            field, i, LAB_STRING_MAX);
        return 0;
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

static int parse_env(json_object *o, const char *field, char ***ret, GwError *e) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n, i = 0;

        if (json_object_is_type(o, json_type_null))
                return 0;
        if (!json_object_is_type(o, json_type_object))
                return invalid(e, field, "expected an object of strings");
        n = (size_t) json_object_object_length(o);
        if (n > LAB_ARGS_MAX)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: more than %u variables", field, LAB_ARGS_MAX);
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        json_object_object_foreach(o, k, v) {
                if (!env_name_is_valid(k))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                            "%s.%s: not a valid environment variable name", field, k);
                if (!json_object_is_type(v, json_type_string))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s.%s: expected a string", field, k);
                if ((size_t) json_object_get_string_len(v) > LAB_STRING_MAX)
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s.%s: longer than %u bytes",
                                            field, k, LAB_STRING_MAX);
                if (asprintf(&l[i++], "%s=%s", k, json_object_get_string(v)) < 0)
                        return -ENOMEM;
        }
        qsort(l, n, sizeof(char *), compare_strings);
        *ret = TAKE_PTR(l);
        return 0;
}

static int parse_port(json_object *o, const char *field, LabPort *p, GwError *e) {
        bool have_port = false, have_kind = false;

        if (!json_object_is_type(o, json_type_object))
                return invalid(e, field, "expected an object {\"port\", \"kind\"}");
        json_object_object_foreach(o, k, v) {
                if (streq(k, "port")) {
                        int64_t x;

                        if (!json_object_is_type(v, json_type_int))
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s.port: expected an integer", field);
                        x = json_object_get_int64(v);
                        if (x < 1 || x > 65535)
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                                    "%s.port: %" PRIi64 " is not a port (1-65535)", field, x);
                        p->port = (uint16_t) x;
                        have_port = true;
                } else if (streq(k, "kind")) {
                        if (!json_object_is_type(v, json_type_string))
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s.kind: expected a string", field);
                        p->kind = lab_port_kind_from_string(json_object_get_string(v));
                        if (p->kind >= _LAB_PORT_KIND_MAX)
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                                    "%s.kind: '%s' is not one of \"http\", \"vnc\", \"tcp\"",
                                                    field, json_object_get_string(v));
                        have_kind = true;
                } else
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s.%s: unknown field", field, k);
        }
        if (!have_port)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s.port: missing", field);
        if (!have_kind)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s.kind: missing", field);
        return 0;
}

static int parse_ports(json_object *a, const char *field, LabMember *m, GwError *e) {
        size_t n;
        int r;

        if (json_object_is_type(a, json_type_null))
                return 0;
        if (!json_object_is_type(a, json_type_array))
                return invalid(e, field, "expected an array of {\"port\", \"kind\"}");
        n = json_object_array_length(a);
        if (n > LAB_PORTS_MAX)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: more than %u ports", field, LAB_PORTS_MAX);
        m->ports = calloc(MAX(n, 1U), sizeof(LabPort));
        if (!m->ports)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *f = NULL;

                if (asprintf(&f, "%s[%zu]", field, i) < 0)
                        return -ENOMEM;
                r = parse_port(json_object_array_get_idx(a, i), f, &m->ports[i], e);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (m->ports[j].port == m->ports[i].port)
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s.port: %u is listed twice",
                                                    f, m->ports[i].port);
                m->n_ports = i + 1;
        }
        return 0;
}

static int member_apply_field(LabMember *m, const char *field, const char *k, json_object *v, GwError *e) {
        _cleanup_free_ char *f = NULL;

        if (asprintf(&f, "%s.%s", field, k) < 0)
                return -ENOMEM;
        if (streq(k, "name"))
                return parse_name(v, f, &m->name, e);
        if (streq(k, "image"))
                return parse_text(v, f, 1024, &m->image, e);
        if (streq(k, "command"))
                return parse_command(v, f, &m->command, e);
        if (streq(k, "env"))
                return parse_env(v, f, &m->env, e);
        if (streq(k, "ports"))
                return parse_ports(v, f, m, e);
        return invalid(e, f, "unknown field");
}

static int parse_member(json_object *o, const char *field, LabMember *m, GwError *e) {
        int r;

        if (!json_object_is_type(o, json_type_object))
                return invalid(e, field, "expected an object");
        json_object_object_foreach(o, k, v) {
                r = member_apply_field(m, field, k, v, e);
                if (r < 0)
                        return r;
        }
        if (!m->name)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s.name: missing", field);
        if (!m->image)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s.image: missing", field);
        if (!image_reference_is_plausible(m->image))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s.image: '%s' is not a valid image reference",
                                    field, m->image);
        return 0;
}

static int parse_members(json_object *a, Lab *l, GwError *e) {
        size_t n;
        int r;

        if (!json_object_is_type(a, json_type_array))
                return invalid(e, "members", "expected an array of members");
        n = json_object_array_length(a);
        if (n == 0)
                return invalid(e, "members", "a lab needs at least one member");
        if (n > LAB_MEMBERS_MAX)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "members: more than %u members", LAB_MEMBERS_MAX);

        /* A PUT may carry "members" only once (JSON objects keep the last duplicate key), but be
         * safe against being called twice. */
        for (size_t i = 0; i < l->n_members; i++)
                lab_member_done(&l->members[i]);
        free(l->members);
        l->n_members = 0;
        l->members = calloc(n, sizeof(LabMember));
        if (!l->members)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *f = NULL;

                if (asprintf(&f, "members[%zu]", i) < 0)
                        return -ENOMEM;
                l->n_members = i + 1;
                r = parse_member(json_object_array_get_idx(a, i), f, &l->members[i], e);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (streq(l->members[j].name, l->members[i].name))
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                                    "%s.name: '%s' is also the name of members[%zu]",
                                                    f, l->members[i].name, j);
        }
        return 0;
}

/* A duration: "D:HH:MM:SS" (like the configuration's) or whole seconds. */
static int parse_lifetime(json_object *v, Lab *l, GwError *e) {
        uint64_t sec;

        if (json_object_is_type(v, json_type_null)) {
                l->lifetime_sec = LAB_LIFETIME_DEFAULT_SEC;
                return 0;
        }
        if (json_object_is_type(v, json_type_string)) {
                if (config_parse_duration(json_object_get_string(v), &sec) < 0)
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                            "lifetime: expected a duration \"D:HH:MM:SS\" (or seconds), got \"%s\"",
                                            json_object_get_string(v));
        } else if (json_object_is_type(v, json_type_int)) {
                int64_t x = json_object_get_int64(v);
                sec = x < 0 ? 0 : (uint64_t) x;
        } else
                return invalid(e, "lifetime", "expected a duration \"D:HH:MM:SS\" or seconds");
        if (sec < 1 || sec > LAB_LIFETIME_MAX_SEC)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                    "lifetime: must be between 1 second and %u days", LAB_LIFETIME_MAX_SEC / 86400);
        l->lifetime_sec = sec;
        return 0;
}

static int parse_memory(json_object *v, uint64_t *ret, GwError *e) {
        uint64_t x;

        if (json_object_is_type(v, json_type_null)) {
                *ret = 0;
                return 0;
        }
        if (json_object_is_type(v, json_type_string)) {
                if (parse_size(json_object_get_string(v), &x) < 0)
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                            "limits.memory: expected bytes or a size like \"512M\", got \"%s\"",
                                            json_object_get_string(v));
        } else if (json_object_is_type(v, json_type_int)) {
                int64_t i = json_object_get_int64(v);
                x = i < 0 ? 0 : (uint64_t) i;
        } else
                return invalid(e, "limits.memory", "expected bytes or a size like \"512M\"");
        if (x < LAB_MEMORY_MIN || x > LAB_MEMORY_MAX)
                return invalid(e, "limits.memory", "must be between 4 MiB and 1 TiB");
        *ret = x;
        return 0;
}

static int parse_limits(json_object *o, Lab *l, GwError *e) {
        int r;

        if (json_object_is_type(o, json_type_null))
                return 0;
        if (!json_object_is_type(o, json_type_object))
                return invalid(e, "limits", "expected an object");
        json_object_object_foreach(o, k, v) {
                if (streq(k, "memory")) {
                        r = parse_memory(v, &l->memory, e);
                        if (r < 0)
                                return r;
                } else if (streq(k, "tasks")) {
                        int64_t x;

                        if (json_object_is_type(v, json_type_null)) {
                                l->tasks = 0;
                                continue;
                        }
                        if (!json_object_is_type(v, json_type_int))
                                return invalid(e, "limits.tasks", "expected a positive integer");
                        x = json_object_get_int64(v);
                        if (x < 1 || x > LAB_TASKS_MAX)
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                                    "limits.tasks: must be between 1 and %u", LAB_TASKS_MAX);
                        l->tasks = (uint64_t) x;
                } else
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "limits.%s: unknown field", k);
        }
        return 0;
}

static int lab_apply_field(Lab *l, const char *k, json_object *v, const char *expected_name, GwError *e) {
        int r;

        if (streq(k, "name")) {
                r = parse_name(v, "name", &l->name, e);
                if (r >= 0 && expected_name && !streq(l->name, expected_name))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                            "name: '%s' does not match the lab in the path ('%s')",
                                            l->name, expected_name);
                return r;
        }
        if (streq(k, "description"))
                return parse_text(v, "description", LAB_DESCRIPTION_MAX, &l->description, e);
        if (streq(k, "instructions"))
                return parse_text(v, "instructions", LAB_INSTRUCTIONS_MAX, &l->instructions, e);
        if (streq(k, "lifetime"))
                return parse_lifetime(v, l, e);
        if (streq(k, "limits"))
                return parse_limits(v, l, e);
        if (streq(k, "members"))
                return parse_members(v, l, e);
        if (streq(k, "network"))
                return parse_network(v, l, e);
        if (streq(k, "createdAt") || streq(k, "updatedAt"))
                return 0;
        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: unknown field", k);
}

int lab_from_spec(json_object *spec, const char *expected_name, Lab **ret, GwError *e) {
        _cleanup_(lab_freep) Lab *l = NULL;
        int r;

        if (!json_object_is_type(spec, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "lab spec: expected a JSON object");

        l = calloc(1, sizeof(Lab));
        if (!l)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory");
        l->lifetime_sec = LAB_LIFETIME_DEFAULT_SEC;

        json_object_object_foreach(spec, k, v) {
                r = lab_apply_field(l, k, v, expected_name, e);
                if (r < 0)
                        return r == -ENOMEM ? gw_error_set_errno(e, r, "Out of memory") : r;
        }

        if (!l->name && expected_name) {
                if (!service_name_is_valid(expected_name))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                            "name: '%s' is not a lowercase DNS label (1-63 of a-z, 0-9, '-', not starting or ending with '-')",
                                            expected_name);
                l->name = strdup(expected_name);
                if (!l->name)
                        return gw_error_set_errno(e, -ENOMEM, "Out of memory");
        }
        if (!l->name)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "name: missing");
        if (l->n_members == 0)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "members: missing (a lab needs at least one member)");
        if ((!l->description && !(l->description = strdup(""))) ||
            (!l->instructions && !(l->instructions = strdup(""))))
                return gw_error_set_errno(e, -ENOMEM, "Out of memory");

        *ret = TAKE_PTR(l);
        return 0;
}

static json_object *strv_to_json_array(char **l) {
        json_object *a = json_object_new_array();

        for (char **c = l; a && c && *c; c++)
                json_object_array_add(a, json_object_new_string(*c));
        return a;
}

static json_object *env_to_json(char **l) {
        json_object *o = json_object_new_object();

        for (char **i = l; o && i && *i; i++) {
                const char *eq = strchr(*i, '=');
                _cleanup_free_ char *k = strndup(*i, (size_t) (eq - *i));
                if (k)
                        json_object_object_add(o, k, json_object_new_string(eq + 1));
        }
        return o;
}

static json_object *member_to_json(const LabMember *m) {
        json_object *o = json_object_new_object(), *ports = json_object_new_array();

        if (!o || !ports) {
                json_object_put(o);
                json_object_put(ports);
                return NULL;
        }
        json_object_object_add(o, "name", json_object_new_string(m->name));
        json_object_object_add(o, "image", json_object_new_string(m->image));
        json_object_object_add(o, "command", m->command ? strv_to_json_array(m->command) : NULL);
        json_object_object_add(o, "env", env_to_json(m->env));
        for (size_t i = 0; i < m->n_ports; i++) {
                json_object *p = json_object_new_object();
                json_object_object_add(p, "port", json_object_new_int(m->ports[i].port));
                json_object_object_add(p, "kind", json_object_new_string(lab_port_kind_to_string(m->ports[i].kind)));
                json_object_array_add(ports, p);
        }
        json_object_object_add(o, "ports", ports);
        return o;
}

json_object *lab_spec_to_json(const Lab *l) {
        json_object *o = json_object_new_object(), *limits, *members;

        if (!o)
                return NULL;
        json_object_object_add(o, "name", json_object_new_string(l->name));
        json_object_object_add(o, "description", json_object_new_string(l->description));
        json_object_object_add(o, "instructions", json_object_new_string(l->instructions));
        json_object_object_add(o, "lifetime", json_object_new_int64((int64_t) l->lifetime_sec));
        limits = json_object_new_object();
        json_object_object_add(limits, "memory", l->memory ? json_object_new_int64((int64_t) l->memory) : NULL);
        json_object_object_add(limits, "tasks", l->tasks ? json_object_new_int64((int64_t) l->tasks) : NULL);
        json_object_object_add(o, "limits", limits);
        json_object_object_add(o, "network", json_object_new_string(networks[l->network]));
        members = json_object_new_array();
        for (size_t i = 0; i < l->n_members; i++)
                json_object_array_add(members, member_to_json(&l->members[i]));
        json_object_object_add(o, "members", members);
        return o;
}

json_object *lab_to_json(const Lab *l) {
        json_object *o = lab_spec_to_json(l);
        char buf[32];

        if (!o)
                return NULL;
        json_object_object_add(o, "createdAt", json_object_new_string(format_timestamp_iso(buf, sizeof(buf), l->created_usec)));
        json_object_object_add(o, "updatedAt", json_object_new_string(format_timestamp_iso(buf, sizeof(buf), l->updated_usec)));
        return o;
}

const char *lab_json(Lab *l) {
        if (!l->json) {
                json_object *o = lab_to_json(l);
                if (!o)
                        return NULL;
                l->json = strdup(json_text(o));
                json_object_put(o);
        }
        return l->json;
}

void lab_invalidate_json(Lab *l) {
        l->json = mfree(l->json);
}
