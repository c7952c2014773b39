/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "ctl-bus.h"
#include "ctl-polkit-agent.h"
#include "ctl-services.h"
#include "ctl-show.h"
#include "ctl-table.h"
#include "ctl-util.h"
#include "ctl.h"
#include "log.h"

SpecChanges arg_spec = SPEC_CHANGES_INIT;

typedef struct ServiceListEntry {
        char *name, *image, *description;
} ServiceListEntry;

static void service_list_free(ServiceListEntry *l, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(l[i].name);
                free(l[i].image);
                free(l[i].description);
        }
        free(l);
}

static int service_list_entry_compare(const void *a, const void *b) {
        return strcmp(((const ServiceListEntry *) a)->name, ((const ServiceListEntry *) b)->name);
}

/* ListServices(), sorted by name like machinectl's lists. */
static int list_services(sd_bus *bus, ServiceListEntry **ret, size_t *ret_n) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        ServiceListEntry *l = NULL;
        size_t n = 0;
        const char *name, *image, *description, *path;
        int r;

        r = ctl_call_manager(bus, "ListServices", &error, &reply, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to list services: %s", ctl_bus_error_message(&error, r));

        r = sd_bus_message_enter_container(reply, 'a', "(ssso)");
        if (r < 0)
                goto parse_error;
        while ((r = sd_bus_message_read(reply, "(ssso)", &name, &image, &description, &path)) > 0) {
                ServiceListEntry *t = reallocarray(l, n + 1, sizeof(ServiceListEntry));
                if (!t) {
                        service_list_free(l, n);
                        return log_oom();
                }
                l = t;
                l[n] = (ServiceListEntry) { strdup(name), strdup(image), strdup(description) };
                if (!l[n].name || !l[n].image || !l[n].description) {
                        service_list_free(l, n + 1);
                        return log_oom();
                }
                n++;
        }
        if (r < 0) {
                service_list_free(l, n);
                goto parse_error;
        }

        if (n > 0)
                qsort(l, n, sizeof(ServiceListEntry), service_list_entry_compare);
        *ret = l;
        *ret_n = n;
        return 0;

parse_error:
        return log_error_errno(r, "Failed to parse reply of ListServices(): %m");
}

static int get_service_json(sd_bus *bus, const char *name, json_object **ret) {
        _cleanup_free_ char *what = NULL;

        if (asprintf(&what, "get service '%s'", name) < 0)
                return log_oom();
        return ctl_call_manager_json(bus, what, "GetService", ret, "s", name);
}

static int verb_services_json(sd_bus *bus, ServiceListEntry *l, size_t n) {
        json_object *a;
        int r = 0;

        a = json_object_new_array();
        if (!a)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
                _cleanup_free_ char *msg = NULL;
                const char *text;
                json_object *o;

                r = ctl_call_manager(bus, "GetService", &error, &reply, "s", l[i].name);
                if (r == -ENOENT)   /* removed since ListServices(): it is simply gone */
                        continue;
                if (r < 0) {
                        log_error_errno(r, "Failed to get service '%s': %s", l[i].name,
                                        ctl_bus_error_message(&error, r));
                        goto finish;
                }
                r = sd_bus_message_read(reply, "s", &text);
                if (r < 0) {
                        log_error_errno(r, "Failed to parse reply of GetService(): %m");
                        goto finish;
                }
                r = json_parse_text(text, &o, &msg);
                if (r < 0) {
                        log_error_errno(r, "gatewayd sent invalid JSON from GetService(): %s", strna(msg));
                        goto finish;
                }
                if (json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        r = log_oom();
                        goto finish;
                }
        }
        r = json_print(a, arg_json == JSON_PRETTY, stdout);
finish:
        json_object_put(a);
        return r;
}

int verb_services(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_table_free_ Table *t = NULL;
        ServiceListEntry *l = NULL;
        size_t n = 0;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        r = list_services(bus, &l, &n);
        if (r < 0)
                return r;

        if (arg_json != JSON_OFF) {
                r = verb_services_json(bus, l, n);
                service_list_free(l, n);
                return r;
        }

        t = table_new("NAME", "IMAGE", "DESCRIPTION", NULL);
        if (!t) {
                service_list_free(l, n);
                return log_oom();
        }
        table_set_header(t, arg_legend);
        /* The description gives way first (it is widest), then the image reference. */
        table_set_shrinkable(t, 1, 20);
        table_set_shrinkable(t, 2, 12);
        for (size_t i = 0; i < n && r >= 0; i++)
                r = table_add_row(t, l[i].name, l[i].image, l[i].description);
        service_list_free(l, n);
        if (r < 0)
                return log_oom();

        if (n > 0) {
                r = table_print(t, stdout);
                if (r < 0)
                        return log_error_errno(r, "Failed to print table: %m");
        }
        if (arg_legend) {
                if (n > 0)
                        printf("\n%zu service%s listed.\n", n, n == 1 ? "" : "s");
                else
                        printf("No services.\n");
        }
        return 0;
}

/* The typed properties of a Service object (docs/dbus-api.md). */
typedef struct ServiceInfo {
        char *name, *image, *description;
        char **command, **environment;
        int network;
        uint64_t memory_max, timeout_sec, created, updated;
        double cpus;
} ServiceInfo;

static void service_info_done(ServiceInfo *i) {
        free(i->name);
        free(i->image);
        free(i->description);
        strv_free(i->command);
        strv_free(i->environment);
}

static int read_strv(sd_bus_message *m, char ***ret) {
        char **l = NULL;
        const char *s;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "s", &s)) > 0)
                if (strv_extend(&l, s) < 0) {
                        strv_free(l);
                        return -ENOMEM;
                }
        if (r < 0) {
                strv_free(l);
                return r;
        }
        if (!l && !(l = calloc(1, sizeof(char *))))
                return -ENOMEM;
        strv_free(*ret);
        *ret = l;
        return sd_bus_message_exit_container(m);
}

static int read_string(sd_bus_message *m, char **ret) {
        const char *s;
        int r;

        r = sd_bus_message_read(m, "s", &s);
        if (r < 0)
                return r;
        return free_and_strdup(ret, s);
}

/* Reads one variant's value into the field named by the property, if gatewayctl knows it and
 * the type matches; anything else is skipped so that newer daemons stay readable. */
static int service_info_read_property(sd_bus_message *m, const char *name, const char *type, ServiceInfo *i) {
        static const struct {
                const char *name, *type;
                size_t offset;
        } fields[] = {
                { "Name", "s", offsetof(ServiceInfo, name) },
                { "Image", "s", offsetof(ServiceInfo, image) },
                { "Description", "s", offsetof(ServiceInfo, description) },
                { "Command", "as", offsetof(ServiceInfo, command) },
                { "Environment", "as", offsetof(ServiceInfo, environment) },
                { "Network", "b", offsetof(ServiceInfo, network) },
                { "MemoryMax", "t", offsetof(ServiceInfo, memory_max) },
                { "CPUs", "d", offsetof(ServiceInfo, cpus) },
                { "TimeoutSec", "t", offsetof(ServiceInfo, timeout_sec) },
                { "CreatedTimestamp", "t", offsetof(ServiceInfo, created) },
                { "UpdatedTimestamp", "t", offsetof(ServiceInfo, updated) },
        };

        for (size_t k = 0; k < ELEMENTSOF(fields); k++) {
                void *p = (char *) i + fields[k].offset;

                if (!streq(fields[k].name, name) || !streq(fields[k].type, type))
                        continue;
                if (streq(type, "s"))
                        return read_string(m, p);
                if (streq(type, "as"))
                        return read_strv(m, p);
                return sd_bus_message_read_basic(m, type[0], p);
        }
        return sd_bus_message_skip(m, type);
}

static int get_service_info(sd_bus *bus, const char *name, ServiceInfo *i, sd_bus_error *error) {
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = ctl_service_path(name, &path);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, GATEWAY_BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll",
                               error, &reply, "s", GATEWAY_SERVICE_INTERFACE);
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *prop, *type;

                r = sd_bus_message_read(reply, "s", &prop);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(reply, NULL, &type);
                if (r < 0)
                        return r;
                r = sd_bus_message_enter_container(reply, 'v', type);
                if (r < 0)
                        return r;
                r = service_info_read_property(reply, prop, type, i);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(reply);
}

static void show_limit_bytes(const char *label, uint64_t v) {
        char buf[FORMAT_BYTES_MAX];
        show_field(label, v > 0 ? format_bytes(buf, sizeof(buf), v) : "default");
}

static void show_limit_timespan(const char *label, uint64_t v) {
        char buf[FORMAT_TIMESPAN_MAX];
        show_field(label, v > 0 ? format_timespan_sec(buf, sizeof(buf), v) : "default");
}

static void show_service_info(const ServiceInfo *i) {
        _cleanup_free_ char *cmdline = quote_command_line(i->command);
        char ts[FORMAT_TIMESTAMP_MAX];

        show_field("Name", i->name);
        show_field("Image", i->image);
        show_field("Description", i->description);
        show_field("Command", cmdline && *cmdline ? cmdline : "(image default)");
        show_field_lines("Environment", i->environment);
        show_field("Network", i->network ? "yes" : "no");
        show_limit_bytes("Memory", i->memory_max);
        if (i->cpus > 0)
                show_fieldf("CPUs", "%g", i->cpus);
        else
                show_field("CPUs", "default");
        show_limit_timespan("Timeout", i->timeout_sec);
        show_field("Created", format_timestamp_usec(ts, sizeof(ts), i->created));
        show_field("Updated", format_timestamp_usec(ts, sizeof(ts), i->updated));
}

int verb_service_show(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        ServiceInfo info = { .network = 0 };
        json_object *record = NULL;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;

        /* GetService() first: it names a missing service properly, and --json wants it anyway. */
        r = get_service_json(bus, argv[0], &record);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                r = json_print(record, arg_json == JSON_PRETTY, stdout);
                json_object_put(record);
                return r;
        }

        r = get_service_info(bus, argv[0], &info, &error);
        if (r >= 0)
                show_service_info(&info);
        else {
                /* Without the typed properties, the record still says everything. */
                log_debug_errno(r, "Failed to read service properties, showing the record: %s",
                                ctl_bus_error_message(&error, r));
                show_json_fields(record, NULL);
                r = 0;
        }
        service_info_done(&info);
        json_object_put(record);
        return r;
}

/* Applies the options and "-- ARG..." to spec, and makes sure it carries the name. */
static int spec_finish(json_object *spec, const char *name, char *tail[], const char *verb) {
        json_object *v;
        int r;

        if (tail) {
                if (arg_spec.command_set)
                        return log_error_errno(EINVAL, "--command= and \"-- ARG...\" cannot be combined.");
                strv_free(arg_spec.command);
                arg_spec.command = NULL;
                for (char **i = tail; *i; i++)
                        if (strv_extend(&arg_spec.command, *i) < 0)
                                return log_oom();
                arg_spec.command_set = true;
        }

        r = spec_apply(spec, &arg_spec);
        if (r < 0)
                return r;

        if (json_object_object_get_ex(spec, SPEC_KEY_NAME, &v)) {
                const char *n = json_object_get_string(v);
                if (name && (!json_object_is_type(v, json_type_string) || !streq(n, name)))
                        return log_error_errno(EINVAL, "The spec's name \"%s\" does not match '%s'.", strna(n), name);
        } else if (name) {
                v = json_object_new_string(name);
                if (!v || json_object_object_add(spec, SPEC_KEY_NAME, v) < 0) {
                        json_object_put(v);
                        return log_oom();
                }
        } else
                return log_error_errno(EINVAL, "No service name given: pass NAME, or \"name\" in the --file spec "
                                       "(see 'gatewayctl service %s --help').", verb);
        return 0;
}

static const char *spec_name(json_object *spec) {
        json_object *v;

        if (!json_object_object_get_ex(spec, SPEC_KEY_NAME, &v))
                return NULL;
        return json_object_get_string(v);
}

/* CreateService()/UpdateService() done: with --json, show the record the daemon now has. */
static int print_result_record(sd_bus *bus, const char *name) {
        json_object *record = NULL;
        int r;

        if (arg_json == JSON_OFF)
                return 0;
        r = get_service_json(bus, name, &record);
        if (r < 0)
                return r;
        r = json_print(record, arg_json == JSON_PRETTY, stdout);
        json_object_put(record);
        return r;
}

int verb_service_create(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        json_object *spec = NULL;
        const char *name = argc > 0 ? argv[0] : NULL, *text;
        int r;

        if (!arg_spec.file && !arg_spec.image)
                return log_error_errno(EINVAL, "--image= is required (or a spec with --file=); "
                                       "see 'gatewayctl service create --help'.");

        if (arg_spec.file)
                r = spec_load_file(arg_spec.file, &spec);
        else
                r = (spec = json_object_new_object()) ? 0 : log_oom();
        if (r < 0)
                return r;

        r = spec_finish(spec, name, tail, "create");
        if (r < 0)
                goto finish;
        name = spec_name(spec);

        text = json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text) {
                r = log_oom();
                goto finish;
        }

        r = ctl_bus_connect(&bus);
        if (r < 0)
                goto finish;
        pid_t agent = ctl_polkit_agent_open();
        r = ctl_call_manager(bus, "CreateService", &error, &reply, "s", text);
        ctl_polkit_agent_close(agent);
        if (r < 0) {
                log_error_errno(r, "Failed to create service: %s", ctl_bus_error_message(&error, r));
                goto finish;
        }
        r = print_result_record(bus, name);
finish:
        json_object_put(spec);
        return r;
}

/* The spec the daemon holds now: the Service object's Spec property, which is exactly what
 * CreateService()/UpdateService() accept (the record from GetService() may carry more). */
static int get_current_spec(sd_bus *bus, const char *name, json_object **ret) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL, *text = NULL, *msg = NULL;
        json_object *record = NULL;
        int r;

        /* GetService() first, so that an unknown name gets gatewayd's own error message. */
        r = get_service_json(bus, name, &record);
        if (r < 0)
                return r;

        r = ctl_service_path(name, &path);
        if (r < 0) {
                json_object_put(record);
                return log_oom();
        }
        r = sd_bus_get_property_string(bus, GATEWAY_BUS_NAME, path, GATEWAY_SERVICE_INTERFACE, "Spec",
                                       &error, &text);
        if (r < 0) {
                log_debug("Cannot read the Spec property (%s), updating from the record.",
                          ctl_bus_error_message(&error, r));
                *ret = record;
                return 0;
        }
        json_object_put(record);

        r = json_parse_text(text, ret, &msg);
        if (r < 0)
                return log_error_errno(r, "gatewayd sent an invalid Spec: %s", strna(msg));
        if (!json_object_is_type(*ret, json_type_object)) {
                json_object_put(*ret);
                return log_error_errno(EBADMSG, "gatewayd sent a Spec that is not a JSON object.");
        }
        return 0;
}

int verb_service_update(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        json_object *spec = NULL;
        const char *name = argv[0], *text;
        int r;

        if (spec_changes_empty(&arg_spec) && !tail)
                return log_error_errno(EINVAL, "Nothing to change; give an option such as --image= "
                                       "(see 'gatewayctl service update --help').");

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;

        /* --file replaces the whole spec; otherwise the options edit the current one. */
        if (arg_spec.file)
                r = spec_load_file(arg_spec.file, &spec);
        else
                r = get_current_spec(bus, name, &spec);
        if (r < 0)
                return r;

        r = spec_finish(spec, name, tail, "update");
        if (r < 0)
                goto finish;

        text = json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text) {
                r = log_oom();
                goto finish;
        }
        pid_t agent = ctl_polkit_agent_open();
        r = ctl_call_manager(bus, "UpdateService", &error, &reply, "ss", name, text);
        ctl_polkit_agent_close(agent);
        if (r < 0) {
                log_error_errno(r, "Failed to update service: %s", ctl_bus_error_message(&error, r));
                goto finish;
        }
        r = print_result_record(bus, name);
finish:
        json_object_put(spec);
        return r;
}

int verb_service_remove(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_polkit_agent_ pid_t agent = 0;
        int r, ret = 0;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        agent = ctl_polkit_agent_open();

        /* Like "machinectl remove": try every name, report each failure, fail if any did. */
        for (int i = 0; i < argc; i++) {
                _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;

                r = ctl_call_manager(bus, "RemoveService", &error, NULL, "s", argv[i]);
                if (r < 0) {
                        log_error_errno(r, "Failed to remove service '%s': %s", argv[i],
                                        ctl_bus_error_message(&error, r));
                        if (ret == 0)
                                ret = r;
                }
        }
        return ret;
}
