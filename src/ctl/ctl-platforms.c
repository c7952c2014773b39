/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl-bus.h"
#include "ctl-platforms.h"
#include "ctl-polkit-agent.h"
#include "ctl-show.h"
#include "ctl-spec.h"
#include "ctl-table.h"
#include "ctl-util.h"
#include "ctl.h"
#include "json-util.h"
#include "log.h"

/* The records come from GetPlatform(), the same JSON as GET /v1/platforms/{name}; the names
 * and their order from ListPlatforms(). */

static int platform_names(sd_bus *bus, char ***ret) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **names = NULL;
        const char *name, *kind, *path;
        int r, is_default, runs_jobs;

        r = ctl_call_manager(bus, "ListPlatforms", &error, &reply, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to list platforms: %s", ctl_bus_error_message(&error, r));
        r = sd_bus_message_enter_container(reply, 'a', "(ssbbo)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(ssbbo)", &name, &kind, &is_default, &runs_jobs, &path)) > 0)
                if (strv_extend(&names, name) < 0)
                        return log_oom();
        if (r < 0)
                return log_error_errno(r, "Failed to parse reply of ListPlatforms(): %m");
        *ret = TAKE_PTR(names);
        return 0;
}

static int platform_record(sd_bus *bus, const char *name, json_object **ret) {
        char what[256];

        snprintf(what, sizeof(what), "get platform '%s'", name);
        return ctl_call_manager_json(bus, what, "GetPlatform", ret, "s", name);
}

/* The records of the n named platforms, or of all when n is 0, as a JSON array. */
static int platform_records(sd_bus *bus, int n, char **names, json_object **ret) {
        _cleanup_strv_free_ char **all = NULL;
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        int r;

        if (!a)
                return log_oom();
        if (n == 0) {
                r = platform_names(bus, &all);
                if (r < 0)
                        return r;
                names = all;
                n = (int) strv_length(all);
        }
        for (int i = 0; i < n; i++) {
                json_object *o;

                r = platform_record(bus, names[i], &o);
                if (r < 0)
                        return r;
                json_object_array_add(a, o);
        }
        *ret = TAKE_PTR(a);
        return 0;
}

static json_object *record_nodes(json_object *o) {
        return json_get_typed(o, "nodes", json_type_array);
}

/* "2 up, 1 unreachable": the nodes counted by state, states in the order they first appear. */
static void nodes_summary(json_object *o, char *buf, size_t size) {
        json_object *nodes = record_nodes(o);
        size_t n = nodes ? json_object_array_length(nodes) : 0, len = 0;

        buf[0] = 0;
        for (size_t i = 0; i < n; i++) {
                const char *state = json_get_string(json_object_array_get_idx(nodes, i), "state") ?: "unknown";
                unsigned count = 0;
                bool seen = false;

                for (size_t k = 0; k < n; k++) {
                        const char *s = json_get_string(json_object_array_get_idx(nodes, k), "state") ?: "unknown";
                        if (streq(s, state)) {
                                if (k < i) {
                                        seen = true;
                                        break;
                                }
                                count++;
                        }
                }
                if (seen)
                        continue;
                len += (size_t) snprintf(buf + len, len < size ? size - len : 0, "%s%u %s", len > 0 ? ", " : "", count, state);
                if (len >= size)
                        break;
        }
}

static bool record_bool(json_object *o, const char *key) {
        json_object *v = json_get_typed(o, key, json_type_boolean);
        return v && json_object_get_boolean(v);
}

int verb_platforms(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *a = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        r = ctl_bus_connect(&bus);
        if (r >= 0)
                r = platform_records(bus, 0, NULL, &a);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF)
                return json_print(a, arg_json == JSON_PRETTY, stdout);

        t = table_new("NAME", "KIND", "DEFAULT", "JOBS", "NODES", NULL);
        if (!t)
                return log_oom();
        table_set_header(t, arg_legend);
        table_set_shrinkable(t, 4, 10);
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *o = json_object_array_get_idx(a, i);
                char nodes[256];

                nodes_summary(o, nodes, sizeof(nodes));
                r = table_add_row(t, json_get_string(o, "name"), json_get_string(o, "kind"),
                                  record_bool(o, "default") ? "yes" : "no",
                                  record_bool(o, "runsJobs") ? "yes" : "no",
                                  nodes[0] ? nodes : NULL);
                if (r < 0)
                        return log_oom();
        }
        return table_print_listing(t, arg_legend, "platform", "platforms");
}

/* "2026-12-04T13:22:56.123Z" as the other tables show times; the text itself if it is not one. */
static const char *format_contact(char *buf, size_t size, const char *iso) {
        struct tm tm = {};
        const char *end;
        time_t t;

        if (!iso)
                return NULL;
        end = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!end || (t = timegm(&tm)) < 0)
                return iso;
        return format_timestamp_usec(buf, size, (uint64_t) t * UINT64_C(1000000));
}

static int add_node_rows(Table *t, json_object *o, bool with_platform) {
        json_object *nodes = record_nodes(o);

        for (size_t i = 0; nodes && i < json_object_array_length(nodes); i++) {
                json_object *n = json_object_array_get_idx(nodes, i);
                json_object *slots = json_get_typed(n, "slots", json_type_int);
                json_object *running = json_get_typed(n, "running", json_type_int);
                char s[32], rn[32], contact[FORMAT_TIMESTAMP_MAX];
                int r;

                if (slots)
                        snprintf(s, sizeof(s), "%" PRIi64, json_object_get_int64(slots));
                if (running)
                        snprintf(rn, sizeof(rn), "%" PRIi64, json_object_get_int64(running));
                if (with_platform)
                        r = table_add_row(t, json_get_string(o, "name"), json_get_string(n, "name"),
                                          json_get_string(n, "state"), slots ? s : NULL, running ? rn : NULL,
                                          format_contact(contact, sizeof(contact), json_get_string(n, "lastContact")));
                else
                        r = table_add_row(t, json_get_string(n, "name"), json_get_string(n, "state"),
                                          slots ? s : NULL, running ? rn : NULL,
                                          format_contact(contact, sizeof(contact), json_get_string(n, "lastContact")));
                if (r < 0)
                        return r;
        }
        return 0;
}

int verb_nodes(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *a = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        r = ctl_bus_connect(&bus);
        if (r >= 0)
                r = platform_records(bus, argc, argv, &a);
        if (r < 0)
                return r;

        if (arg_json != JSON_OFF) {
                /* The nodes of every platform in one array, each naming its platform. */
                _cleanup_(json_object_putp) json_object *nodes = json_object_new_array();

                for (size_t i = 0; nodes && i < json_object_array_length(a); i++) {
                        json_object *o = json_object_array_get_idx(a, i), *l = record_nodes(o);

                        for (size_t k = 0; l && k < json_object_array_length(l); k++) {
                                json_object *n = json_object_array_get_idx(l, k);

                                json_object_object_add(n, "platform", json_object_new_string(json_get_string(o, "name")));
                                json_object_array_add(nodes, json_object_get(n));
                        }
                }
                if (!nodes)
                        return log_oom();
                return json_print(nodes, arg_json == JSON_PRETTY, stdout);
        }

        t = table_new("PLATFORM", "NODE", "STATE", "SLOTS", "RUNNING", "LAST CONTACT", NULL);
        if (!t)
                return log_oom();
        table_set_header(t, arg_legend);
        table_set_shrinkable(t, 1, 12);
        for (size_t i = 0; i < json_object_array_length(a); i++)
                if (add_node_rows(t, json_object_array_get_idx(a, i), true) < 0)
                        return log_oom();
        return table_print_listing(t, arg_legend, "node", "nodes");
}

/* Shown by name in "platform show"; everything else in the record follows as it is. */
static const char * const platform_shown[] = {
        "name", "kind", "accesstype", "default", "runsJobs", "holdsImages", "unsupported", "imageDir",
        "nodeImageDir", "hosts", "nodes", NULL
};

static void show_hosts(json_object *o) {
        json_object *hosts = json_get_typed(o, "hosts", json_type_array);
        _cleanup_strv_free_ char **l = NULL;

        if (!hosts)
                return;
        for (size_t i = 0; i < json_object_array_length(hosts); i++)
                if (strv_extend(&l, json_object_get_string(json_object_array_get_idx(hosts, i))) < 0)
                        return;
        show_field_lines("Hosts", l);
}

int verb_platform_show(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        r = ctl_bus_connect(&bus);
        if (r >= 0)
                r = platform_record(bus, argv[0], &o);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF)
                return json_print(o, arg_json == JSON_PRETTY, stdout);

        show_set_label_width(MAX((size_t) SHOW_LABEL_WIDTH + 1, show_json_fields_label_width(o, platform_shown)));
        show_field("Name", json_get_string(o, "name"));
        show_field("Kind", json_get_string(o, "kind"));
        show_field("Access type", json_get_string(o, "accesstype"));
        show_field("Default", record_bool(o, "default") ? "yes" : "no");
        if (record_bool(o, "runsJobs"))
                show_field("Runs jobs", "yes");
        else
                show_fieldf("Runs jobs", "no: %s", strna(json_get_string(o, "unsupported")));
        show_field("Holds images", record_bool(o, "holdsImages") ? "yes" : "no");
        show_field("Image dir", json_get_string(o, "imageDir"));
        if (json_object_object_get_ex(o, "nodeImageDir", NULL))
                show_field("Node images", json_get_string(o, "nodeImageDir"));
        show_hosts(o);
        show_json_fields(o, platform_shown);

        printf("\n");
        t = table_new("NODE", "STATE", "SLOTS", "RUNNING", "LAST CONTACT", NULL);
        if (!t)
                return log_oom();
        table_set_header(t, arg_legend);
        if (add_node_rows(t, o, false) < 0)
                return log_oom();
        return table_print_listing(t, arg_legend, "node", "nodes");
}

static int set_drain(const char *platform, const char *node, bool drain) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_polkit_agent_ pid_t agent = 0;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        agent = ctl_polkit_agent_open();
        r = ctl_call_manager(bus, drain ? "DrainNode" : "ResumeNode", &error, NULL, "ss", platform, node);
        if (r < 0)
                return log_error_errno(r, "Failed to %s node '%s' of platform '%s': %s", drain ? "drain" : "resume", node,
                                       platform, ctl_bus_error_message(&error, r));
        return 0;
}

int verb_node_drain(int argc, char *argv[], char *tail[]) {
        return set_drain(argv[0], argv[1], true);
}

int verb_node_resume(int argc, char *argv[], char *tail[]) {
        return set_drain(argv[0], argv[1], false);
}
