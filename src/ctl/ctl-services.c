/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "ctl-bus.h"
#include "ctl-services.h"
#include "ctl-show.h"
#include "ctl-table.h"
#include "ctl-util.h"
#include "ctl.h"
#include "json-util.h"
#include "log.h"

/* The verbs that look at services: services, service show. */

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

int service_get_json(sd_bus *bus, const char *name, json_object **ret) {
        _cleanup_free_ char *what = NULL;

        if (asprintf(&what, "get service '%s'", name) < 0)
                return log_oom();
        return ctl_call_manager_json(bus, what, "GetService", ret, "s", name);
}

/* GetService() for one listed service; one removed since ListServices() is simply gone
 * (returns 0 with *ret NULL). */
static int get_listed_service(sd_bus *bus, const char *name, json_object **ret) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_free_ char *msg = NULL;
        const char *text;
        int r;

        r = ctl_call_manager(bus, "GetService", &error, &reply, "s", name);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to get service '%s': %s", name, ctl_bus_error_message(&error, r));
        r = sd_bus_message_read(reply, "s", &text);
        if (r < 0)
                return log_error_errno(r, "Failed to parse reply of GetService(): %m");
        r = json_parse_text(text, ret, &msg);
        if (r < 0)
                return log_error_errno(r, "gatewayd sent invalid JSON from GetService(): %s", strna(msg));
        return 0;
}

static int verb_services_json(sd_bus *bus, ServiceListEntry *l, size_t n) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        int r;

        if (!a)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                json_object *o;

                r = get_listed_service(bus, l[i].name, &o);
                if (r < 0)
                        return r;
                if (o && json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        return log_oom();
                }
        }
        return json_print(a, arg_json == JSON_PRETTY, stdout);
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

        return table_print_listing(t, arg_legend, "service", "services");
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
        _cleanup_(service_info_done) ServiceInfo info = {};
        _cleanup_(json_object_putp) json_object *record = NULL;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;

        /* GetService() first: it names a missing service properly, and --json wants it anyway. */
        r = service_get_json(bus, argv[0], &record);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF)
                return json_print(record, arg_json == JSON_PRETTY, stdout);

        r = get_service_info(bus, argv[0], &info, &error);
        if (r < 0) {
                /* Without the typed properties, the record still says everything. */
                log_debug_errno(r, "Failed to read service properties, showing the record: %s",
                                ctl_bus_error_message(&error, r));
                show_json_fields(record, NULL);
                return 0;
        }
        show_service_info(&info);
        return 0;
}
