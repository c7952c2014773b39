/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-service.h"
#include "bus-util.h"
#include "log.h"
#include "manager.h"
#include "service-registry.h"

#define SERVICE_INTERFACE "org.gatewayd.Gateway1.Service"

static int service_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                               void **found, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *name = NULL;
        Service *s;
        int r;

        r = sd_bus_path_decode(path, SERVICE_OBJECT_PREFIX, &name);
        if (r <= 0)
                return r;
        s = service_registry_get(m, name);
        if (!s)
                return 0;
        *found = s;
        return 1;
}

static int service_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                                   sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_strv_free_ char **l = NULL;
        size_t i = 0;
        Service *s;

        l = calloc(hashmap_size(m->services) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        HASHMAP_FOREACH(s, m->services) {
                l[i] = strdup(s->object_path);
                if (!l[i++])
                        return -ENOMEM;
        }
        *nodes = TAKE_PTR(l);
        return 1;
}

static int property_get_env(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Service *s = userdata;
        return sd_bus_message_append_strv(reply, s->env ?: (char *[]) { NULL });
}

static int property_get_command(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Service *s = userdata;
        return sd_bus_message_append_strv(reply, s->command ?: (char *[]) { NULL });
}

static int property_get_spec(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Service *s = userdata;
        const char *j = service_json(s);

        if (!j)
                return -ENOMEM;
        return sd_bus_message_append(reply, "s", j);
}

static const sd_bus_vtable service_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", bus_property_get_string, offsetof(Service, name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Image", "s", bus_property_get_string, offsetof(Service, image), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Description", "s", bus_property_get_string, offsetof(Service, description), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Command", "as", property_get_command, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Environment", "as", property_get_env, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Network", "b", NULL, offsetof(Service, network), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MemoryMax", "t", NULL, offsetof(Service, memory), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CPUs", "d", NULL, offsetof(Service, cpus), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TimeoutSec", "t", NULL, offsetof(Service, timeout_sec), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CreatedTimestamp", "t", NULL, offsetof(Service, created_usec), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("UpdatedTimestamp", "t", NULL, offsetof(Service, updated_usec), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Spec", "s", property_get_spec, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END
};

int bus_service_register(Manager *m) {
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, NULL, SERVICE_OBJECT_PREFIX, SERVICE_INTERFACE, service_vtable,
                                       service_object_find, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add service object vtable: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, SERVICE_OBJECT_PREFIX, service_node_enumerator, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add service node enumerator: %m");
        return 0;
}

/* Signals are best effort: the state is committed already, and a client that missed one can
 * always re-read it. So failures are logged, not propagated. */

void bus_service_emit_added(Service *s) {
        Manager *m = s->manager;
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_object_added(m->bus, s->object_path);
        if (r >= 0)
                r = sd_bus_emit_signal(m->bus, "/org/gatewayd/Gateway1", "org.gatewayd.Gateway1.Manager",
                                       "ServiceNew", "so", s->name, s->object_path);
        if (r < 0)
                log_warning_errno(r, "Failed to announce service '%s' on the bus: %m", s->name);
}

void bus_service_emit_changed(Service *s) {
        Manager *m = s->manager;
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_properties_changed(m->bus, s->object_path, SERVICE_INTERFACE,
                                           "Image", "Description", "Command", "Environment", "Network",
                                           "MemoryMax", "CPUs", "TimeoutSec", "UpdatedTimestamp", "Spec", NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to announce change of service '%s': %m", s->name);
}

void bus_service_emit_removed(Service *s) {
        Manager *m = s->manager;
        int r;

        if (!m->bus)
                return;
        /* InterfacesRemoved needs the object to still resolve while it is built; the registry
         * calls us before freeing it, but it is gone from the map already, so name the
         * interfaces explicitly. */
        r = sd_bus_emit_interfaces_removed(m->bus, s->object_path, SERVICE_INTERFACE, NULL);
        if (r >= 0)
                r = sd_bus_emit_signal(m->bus, "/org/gatewayd/Gateway1", "org.gatewayd.Gateway1.Manager",
                                       "ServiceRemoved", "so", s->name, s->object_path);
        if (r < 0)
                log_warning_errno(r, "Failed to announce removal of service '%s': %m", s->name);
}
