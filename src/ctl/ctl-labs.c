/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "ctl-bus.h"
#include "ctl-labs.h"
#include "ctl-polkit-agent.h"
#include "ctl-show.h"
#include "ctl-spec.h"
#include "ctl-table.h"
#include "ctl-util.h"
#include "ctl.h"
#include "json-util.h"
#include "log.h"

/* The lab's name comes from the file: one file is one definition, as "kubectl apply -f". */
int verb_lab_put(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *spec = NULL;
        _cleanup_polkit_agent_ pid_t agent = 0;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        json_object *v;
        const char *path, *name;
        int created, r;

        r = spec_load_file(argv[0], &spec);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(spec, "name", &v) || !json_object_is_type(v, json_type_string))
                return log_error_errno(EINVAL, "%s has no \"name\": the lab's name is taken from the file.", argv[0]);
        name = json_object_get_string(v);

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        agent = ctl_polkit_agent_open();
        r = ctl_call_manager(bus, "PutLab", &error, &reply, "ss", name, json_text(spec));
        if (r < 0)
                return log_error_errno(r, "Failed to put lab %s: %s", name, ctl_bus_error_message(&error, r));
        r = sd_bus_message_read(reply, "ob", &path, &created);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        if (!arg_quiet)
                printf("%s lab %s.\n", created ? "Created" : "Replaced", name);
        return 0;
}

static char *format_lifetime(uint64_t sec, char *buf, size_t size) {
        if (sec % 3600 == 0)
                snprintf(buf, size, "%" PRIu64 "h", sec / 3600);
        else if (sec % 60 == 0)
                snprintf(buf, size, "%" PRIu64 "min", sec / 60);
        else
                snprintf(buf, size, "%" PRIu64 "s", sec);
        return buf;
}

static int get_lab(sd_bus *bus, const char *name, json_object **ret) {
        return ctl_call_manager_json(bus, "get lab", "GetLab", ret, "s", name);
}

int verb_lab_list(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        _cleanup_(json_object_putp) json_object *a = NULL;
        const char *name, *description, *path;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        r = ctl_call_manager(bus, "ListLabs", &error, &reply, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to list labs: %s", ctl_bus_error_message(&error, r));
        r = sd_bus_message_enter_container(reply, 'a', "(sso)");
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");

        if (arg_json != JSON_OFF)
                a = json_object_new_array();
        else {
                t = table_new("NAME", "MEMBERS", "LIFETIME", "DESCRIPTION", NULL);
                if (!t)
                        return log_oom();
                table_set_shrinkable(t, 3, 10);
                table_set_header(t, arg_legend);
        }
        while ((r = sd_bus_message_read(reply, "(sso)", &name, &description, &path)) > 0) {
                _cleanup_(json_object_putp) json_object *rec = NULL;
                json_object *members = NULL, *lifetime = NULL;
                char n[32], life[32];

                /* The record has what the list does not: members and lifetime. */
                r = get_lab(bus, name, &rec);
                if (r < 0)
                        return r;
                if (a) {
                        json_object_array_add(a, TAKE_PTR(rec));
                        continue;
                }
                json_object_object_get_ex(rec, "members", &members);
                json_object_object_get_ex(rec, "lifetime", &lifetime);
                snprintf(n, sizeof(n), "%zu", members ? json_object_array_length(members) : (size_t) 0);
                r = table_add_row(t, name, n, format_lifetime((uint64_t) json_object_get_int64(lifetime), life, sizeof(life)),
                                  description);
                if (r < 0)
                        return log_oom();
        }
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        if (a)
                return json_print(a, arg_json == JSON_PRETTY, stdout);
        return table_print_listing(t, arg_legend, "lab", "labs");
}

int verb_lab_show(int argc, char *argv[], char *tail[]) {
        _cleanup_(json_object_putp) json_object *rec = NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        int r;

        r = ctl_bus_connect(&bus);
        if (r >= 0)
                r = get_lab(bus, argv[0], &rec);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF)
                return json_print(rec, arg_json == JSON_PRETTY, stdout);
        show_json_fields(rec, NULL);
        return 0;
}

int verb_lab_remove(int argc, char *argv[], char *tail[]) {
        return ctl_call_manager_each_id("RemoveLab", "remove", "lab", argc, argv);
}

/* ---- instances: the caller's own (StartLabInstance, ListLabInstances, ...) ---- */

/* The access token and the proxy path of each member it opens ("/<token>/<member>/",
 * relative to gateway-proxy). */
static void show_access(json_object *access) {
        json_object *members = json_get_typed(access, "members", json_type_object);

        if (!access)
                return show_field("Token", "none (gatewayd could not make one)");
        show_field("Token", json_get_string(access, "token"));
        show_field("Token expires", json_get_string(access, "expiresAt"));
        json_object_object_foreach(members, name, path) {
                _cleanup_free_ char *label = NULL;

                if (asprintf(&label, "URL %s", name) >= 0)
                        show_field(label, json_object_get_string(path));
        }
}

static void show_instance(json_object *rec) {
        json_object *members = json_get_typed(rec, "members", json_type_array), *access = NULL;

        show_set_label_width(SHOW_LABEL_WIDTH + 2);
        show_field("Id", json_get_string(rec, "id"));
        show_field("Lab", json_get_string(rec, "lab"));
        show_field("State", json_get_string(rec, "state"));
        if (json_get_string(rec, "error"))
                show_field("Error", json_get_string(rec, "error"));
        show_field("Created", json_get_string(rec, "createdAt"));
        show_field("Expires", json_get_string(rec, "expiresAt"));
        if (json_get_string(rec, "endedAt"))
                show_field("Ended", json_get_string(rec, "endedAt"));
        for (size_t k = 0; members && k < json_object_array_length(members); k++) {
                json_object *m = json_object_array_get_idx(members, k);
                _cleanup_free_ char *label = NULL;

                if (asprintf(&label, "Member %s", strna(json_get_string(m, "name"))) >= 0)
                        show_fieldf(label, "%s (%s, %s)", strna(json_get_string(m, "state")),
                                    strna(json_get_string(m, "image")), strna(json_get_string(m, "address")));
        }
        if (json_object_object_get_ex(rec, "access", &access))
                show_access(access);
}

/* StartLabInstance() or GetLabInstance() on name_or_id: both answer with the instance's record. */
static int call_and_show_instance(const char *what, const char *method, const char *name_or_id) {
        _cleanup_(json_object_putp) json_object *rec = NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        int r;

        r = ctl_bus_connect(&bus);
        if (r >= 0)
                r = ctl_call_manager_json(bus, what, method, &rec, "s", name_or_id);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF)
                return json_print(rec, arg_json == JSON_PRETTY, stdout);
        show_instance(rec);
        return 0;
}

int verb_lab_start(int argc, char *argv[], char *tail[]) {
        return call_and_show_instance("start an instance of lab", "StartLabInstance", argv[0]);
}

int verb_lab_instances(int argc, char *argv[], char *tail[]) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        json_object *a;
        int r;

        r = ctl_bus_connect(&bus);
        if (r >= 0)
                r = ctl_call_manager_json(bus, "list lab instances", "ListLabInstances", &o, NULL);
        if (r < 0)
                return r;
        a = json_get_typed(o, "instances", json_type_array);
        if (!a)
                return log_error_errno(EBADMSG, "Failed to parse the reply: no \"instances\".");
        if (arg_json != JSON_OFF)
                return json_print(a, arg_json == JSON_PRETTY, stdout);
        t = table_new("ID", "LAB", "STATE", "EXPIRES", NULL);
        if (!t)
                return log_oom();
        table_set_header(t, arg_legend);
        for (size_t k = 0; k < json_object_array_length(a); k++) {
                json_object *i = json_object_array_get_idx(a, k);

                if (table_add_row(t, strna(json_get_string(i, "id")), strna(json_get_string(i, "lab")),
                                  strna(json_get_string(i, "state")), strna(json_get_string(i, "expiresAt"))) < 0)
                        return log_oom();
        }
        return table_print_listing(t, arg_legend, "lab instance", "lab instances");
}

int verb_lab_instance(int argc, char *argv[], char *tail[]) {
        return call_and_show_instance("get lab instance", "GetLabInstance", argv[0]);
}

int verb_lab_token(int argc, char *argv[], char *tail[]) {
        _cleanup_(json_object_putp) json_object *access = NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        int r;

        r = ctl_bus_connect(&bus);
        if (r >= 0)
                r = ctl_call_manager_json(bus, "renew the token of lab instance", "RenewLabInstanceToken", &access,
                                          "s", argv[0]);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF)
                return json_print(access, arg_json == JSON_PRETTY, stdout);
        show_set_label_width(SHOW_LABEL_WIDTH + 2);
        show_access(access);
        return 0;
}

int verb_lab_stop(int argc, char *argv[], char *tail[]) {
        return ctl_call_manager_each_id("RemoveLabInstance", "stop", "lab instance", argc, argv);
}
