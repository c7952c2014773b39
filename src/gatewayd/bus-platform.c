/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "bus-platform.h"
#include "bus-util.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "platform-record.h"

#define ACTION_MANAGE_PLATFORMS "org.gatewayd.manage-platforms"

static int platform_object_path(const Platform *p, char **ret) {
        return sd_bus_path_encode(PLATFORM_OBJECT_PREFIX, p->name, ret);
}

static int platform_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                                void **found, sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        Platform *p;
        int r;

        r = sd_bus_path_decode(path, PLATFORM_OBJECT_PREFIX, &name);
        if (r <= 0)
                return r;
        p = platform_get(userdata, name);
        if (!p)
                return 0;
        *found = p;
        return 1;
}

static int platform_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                                    sd_bus_error *error) {
        _cleanup_free_ Platform **l = platforms_sorted(userdata);
        _cleanup_strv_free_ char **paths = NULL;
        size_t n = 0;
        int r;

        if (!l || !(paths = calloc(hashmap_size(((Manager *) userdata)->platforms) + 1, sizeof(char *))))
                return -ENOMEM;
        for (Platform **p = l; *p; p++) {
                r = platform_object_path(*p, &paths[n++]);
                if (r < 0)
                        return r;
        }
        *nodes = TAKE_PTR(paths);
        return 1;
}

static int property_get_kind(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Platform *p = userdata;
        return sd_bus_message_append(reply, "s", p->kind);
}

static int property_get_access_type(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Platform *p = userdata;
        return sd_bus_message_append(reply, "s", p->config->accesstype ?: "local");
}

static int property_get_default(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Platform *p = userdata;
        return sd_bus_message_append(reply, "b", platform_default(p->manager) == p);
}

static int property_get_runs_jobs(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "b", !platform_unsupported(userdata, /* jobs= */ true));
}

static int property_get_holds_images(sd_bus *bus, const char *path, const char *interface, const char *property,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "b", !platform_unsupported(userdata, /* jobs= */ false));
}

static int property_get_unsupported(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", strempty(platform_unsupported(userdata, /* jobs= */ true)));
}

static int property_get_image_directory(sd_bus *bus, const char *path, const char *interface, const char *property,
                                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *dir = platform_image_dir(userdata);

        if (!dir)
                return -ENOMEM;
        return sd_bus_message_append(reply, "s", dir);
}

static int method_get_nodes(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_reply_json(message, platform_nodes_json(userdata));
}

static const sd_bus_vtable platform_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", bus_property_get_string, offsetof(Platform, name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Kind", "s", property_get_kind, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("AccessType", "s", property_get_access_type, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Default", "b", property_get_default, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RunsJobs", "b", property_get_runs_jobs, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("HoldsImages", "b", property_get_holds_images, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Unsupported", "s", property_get_unsupported, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ImageDirectory", "s", property_get_image_directory, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("GetNodes", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json), method_get_nodes,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

int bus_platform_register(Manager *m) {
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, NULL, PLATFORM_OBJECT_PREFIX, PLATFORM_INTERFACE, platform_vtable,
                                       platform_object_find, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add platform object vtable: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, PLATFORM_OBJECT_PREFIX, platform_node_enumerator, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add platform node enumerator: %m");
        return 0;
}

/* ---- Manager methods ---- */

int bus_method_list_platforms(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Platform **l = platforms_sorted(userdata);
        int r;

        if (!l)
                return -ENOMEM;
        r = sd_bus_message_new_method_return(message, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssbbo)");
        for (Platform **p = l; r >= 0 && *p; p++) {
                _cleanup_free_ char *path = NULL;

                r = platform_object_path(*p, &path);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(ssbbo)", (*p)->name, (*p)->kind,
                                                  platform_default(userdata) == *p,
                                                  !platform_unsupported(*p, /* jobs= */ true), path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int bus_method_get_platform(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *name;
        Platform *p;
        int r;

        r = sd_bus_message_read(message, "s", &name);
        if (r < 0)
                return r;
        p = platform_lookup(userdata, name, &e);
        if (!p)
                return gw_error_to_bus(&e, error);
        return bus_reply_json(message, platform_to_json(p));
}

static int set_drain_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error, bool drain) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *platform, *node;
        json_object *n = NULL;
        int r;

        r = sd_bus_message_read(message, "ss", &platform, &node);
        if (r < 0)
                return r;
        if (platform_set_node_drain(m, platform, node, drain, &n, &e) < 0)
                return gw_error_to_bus(&e, error);
        return bus_reply_json(message, n);
}

static int drain_node_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        return set_drain_authorized(m, message, error, true);
}

static int resume_node_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        return set_drain_authorized(m, message, error, false);
}

int bus_method_drain_node(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, ACTION_MANAGE_PLATFORMS, drain_node_authorized, error);
}

int bus_method_resume_node(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, ACTION_MANAGE_PLATFORMS, resume_node_authorized, error);
}
