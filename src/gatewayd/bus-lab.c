/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-lab.h"
#include "bus-util.h"
#include "gw-error.h"
#include "json-util.h"
#include "lab-access.h"
#include "lab-instance.h"
#include "lab-registry.h"
#include "log.h"
#include "manager.h"

#define LAB_INTERFACE "org.gatewayd.Gateway1.Lab"
#define ACTION_MANAGE_LABS "org.gatewayd.manage-labs"

static int lab_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                           void **found, sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        Lab *l;
        int r;

        r = sd_bus_path_decode(path, LAB_OBJECT_PREFIX, &name);
        if (r <= 0)
                return r;
        l = lab_registry_get(userdata, name);
        if (!l)
                return 0;
        *found = l;
        return 1;
}

static int lab_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        _cleanup_free_ Lab **v = lab_registry_list(userdata, NULL);
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;

        if (!v)
                return -ENOMEM;
        for (Lab **i = v; *i; i++)
                n++;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++)
                if (!(l[k] = strdup(v[k]->object_path)))
                        return -ENOMEM;
        *nodes = TAKE_PTR(l);
        return 1;
}

static int property_get_spec(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const char *j = lab_json(userdata);

        if (!j)
                return -ENOMEM;
        return sd_bus_message_append(reply, "s", j);
}

static int property_get_members(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Lab *l = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(ss)");
        for (size_t i = 0; r >= 0 && i < l->n_members; i++)
                r = sd_bus_message_append(reply, "(ss)", l->members[i].name, l->members[i].image);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

/* Definitions change in place on PUT: only Name and CreatedTimestamp are constant. */
static const sd_bus_vtable lab_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", bus_property_get_string, offsetof(Lab, name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Description", "s", bus_property_get_string, offsetof(Lab, description), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Instructions", "s", bus_property_get_string, offsetof(Lab, instructions), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LifetimeSec", "t", NULL, offsetof(Lab, lifetime_sec), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MemoryMax", "t", NULL, offsetof(Lab, memory), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TasksMax", "t", NULL, offsetof(Lab, tasks), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Members", "a(ss)", property_get_members, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CreatedTimestamp", "t", NULL, offsetof(Lab, created_usec), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("UpdatedTimestamp", "t", NULL, offsetof(Lab, updated_usec), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Spec", "s", property_get_spec, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END
};

int bus_lab_register(Manager *m) {
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, NULL, LAB_OBJECT_PREFIX, LAB_INTERFACE, lab_vtable, lab_object_find, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add lab object vtable: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, LAB_OBJECT_PREFIX, lab_node_enumerator, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add lab node enumerator: %m");
        return 0;
}

/* Best effort, like the services' signals: the change is committed already. */
void bus_lab_emit_added(Lab *l) {
        if (l->manager->bus && sd_bus_emit_object_added(l->manager->bus, l->object_path) < 0)
                log_warning("Failed to announce lab '%s' on the bus.", l->name);
}

void bus_lab_emit_changed(Lab *l) {
        if (l->manager->bus &&
            sd_bus_emit_properties_changed(l->manager->bus, l->object_path, LAB_INTERFACE, "Description", "Instructions",
                                           "LifetimeSec", "MemoryMax", "TasksMax", "Members", "UpdatedTimestamp",
                                           "Spec", NULL) < 0)
                log_warning("Failed to announce the change of lab '%s'.", l->name);
}

/* Called after the lab left the map (it no longer resolves): the interface is named. */
void bus_lab_emit_removed(Lab *l) {
        if (l->manager->bus && sd_bus_emit_interfaces_removed(l->manager->bus, l->object_path, LAB_INTERFACE, NULL) < 0)
                log_warning("Failed to announce the removal of lab '%s'.", l->name);
}

/* ---- definitions ---- */

int bus_method_list_labs(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Lab **l = lab_registry_list(userdata, NULL);
        int r;

        if (!l)
                return -ENOMEM;
        r = sd_bus_message_new_method_return(message, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sso)");
        for (Lab **i = l; r >= 0 && *i; i++)
                r = sd_bus_message_append(reply, "(sso)", (*i)->name, (*i)->description, (*i)->object_path);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int bus_method_get_lab(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *name, *j;
        Lab *l;
        int r;

        r = sd_bus_message_read(message, "s", &name);
        if (r < 0)
                return r;
        l = lab_registry_get(userdata, name);
        if (!l) {
                gw_error_set(&e, GW_ERROR_NOT_FOUND, "No lab '%s'.", name);
                return gw_error_to_bus(&e, error);
        }
        j = lab_json(l);
        if (!j)
                return -ENOMEM;
        return sd_bus_reply_method_return(message, "s", j);
}

static int put_lab_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *name, *text;
        json_object *spec = NULL;
        bool created;
        Lab *l;
        int r;

        r = sd_bus_message_read(message, "ss", &name, &text);
        if (r < 0)
                return r;
        r = bus_parse_json_argument(text, "Lab spec", &spec, &e);
        if (r < 0)
                return gw_error_to_bus(&e, error);
        r = lab_registry_put(m, name, spec, &l, &created, &e);
        json_object_put(spec);
        if (r < 0)
                return gw_error_to_bus(&e, error);
        return sd_bus_reply_method_return(message, "ob", l->object_path, created);
}

int bus_method_put_lab(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, ACTION_MANAGE_LABS, put_lab_authorized, error);
}

static int remove_lab_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *name;
        int r;

        r = sd_bus_message_read(message, "s", &name);
        if (r < 0)
                return r;
        r = lab_registry_remove(m, name, &e);
        if (r < 0)
                return gw_error_to_bus(&e, error);
        return sd_bus_reply_method_return(message, NULL);
}

int bus_method_remove_lab(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, ACTION_MANAGE_LABS, remove_lab_authorized, error);
}

/* ---- instances: the caller's own ---- */

int bus_method_start_lab_instance(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL, te = GW_ERROR_NULL;
        json_object *o, *access = NULL;
        LabInstance *i;
        const char *name;
        Caller c;
        int r;

        r = sd_bus_message_read(message, "s", &name);
        if (r < 0)
                return r;
        r = bus_get_caller(message, &c);
        if (r < 0)
                return r;
        if (lab_instance_create(userdata, name, &c, &i, &e) < 0)
                return gw_error_to_bus(&e, error);
        /* With its first access token, as over HTTP; without one (no key) it is still made. */
        o = lab_instance_to_json(i);
        if (o && lab_access_token(userdata, i, &access, &te) < 0)
                log_warning("Lab instance %s: no access token: %s", i->id, strna(te.message));
        if (o)
                json_object_object_add(o, "access", access);
        return bus_reply_json(message, o);
}

int bus_method_list_lab_instances(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ LabInstance **l = NULL;
        json_object *o, *a;
        Caller c;
        int r;

        r = bus_get_caller(message, &c);
        if (r < 0)
                return r;
        l = lab_instance_list(userdata, &c, NULL);
        if (!l)
                return -ENOMEM;
        a = json_object_new_array();
        for (LabInstance **i = l; a && *i; i++)
                json_object_array_add(a, lab_instance_to_json(*i));
        o = json_object_new_object();
        if (o)
                json_object_object_add(o, "instances", a);
        else
                json_object_put(a);
        return bus_reply_json(message, o);
}

static int get_own_instance(sd_bus_message *message, Manager *m, LabInstance **ret, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *id;
        Caller c;
        int r;

        r = sd_bus_message_read(message, "s", &id);
        if (r < 0)
                return r;
        r = bus_get_caller(message, &c);
        if (r < 0)
                return r;
        *ret = lab_instance_get(m, id, &c);
        if (!*ret) {
                gw_error_set(&e, GW_ERROR_NOT_FOUND, "No lab instance '%s'.", id);
                return gw_error_to_bus(&e, error);
        }
        return 0;
}

int bus_method_get_lab_instance(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        LabInstance *i;
        int r;

        r = get_own_instance(message, userdata, &i, error);
        if (r < 0)
                return r;
        return bus_reply_json(message, lab_instance_to_json(i));
}

int bus_method_remove_lab_instance(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        LabInstance *i;
        int r;

        r = get_own_instance(message, userdata, &i, error);
        if (r < 0)
                return r;
        if (lab_instance_remove(i, &e) < 0)
                return gw_error_to_bus(&e, error);
        return sd_bus_reply_method_return(message, NULL);
}

int bus_method_renew_lab_instance_token(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *access;
        LabInstance *i;
        int r;

        r = get_own_instance(message, userdata, &i, error);
        if (r < 0)
                return r;
        if (lab_access_token(userdata, i, &access, &e) < 0)
                return gw_error_to_bus(&e, error);
        return bus_reply_json(message, access);
}
