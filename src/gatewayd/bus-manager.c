/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-client.h"
#include "bus-image.h"
#include "bus-job.h"
#include "bus-lab.h"
#include "bus-manager.h"
#include "bus-platform.h"
#include "bus-program.h"
#include "bus-service.h"
#include "bus-token.h"
#include "bus-util.h"
#include "gw-error.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "registry-events.h"
#include "service-registry.h"
#include "status.h"

static int reply_gw_error(GwError *e, sd_bus_error *error) {
        return gw_error_to_bus(e, error);
}

static json_object *parse_json_argument(const char *text, const char *what, GwError *e) {
        json_object *o;

        if (bus_parse_json_argument(text, what, &o, e) < 0)
                return NULL;
        if (!o)
                gw_error_set(e, GW_ERROR_BAD_REQUEST, "%s must be a JSON object, not null.", what);
        return o;
}

static int method_list_services(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Service **l = NULL;
        Manager *m = userdata;
        int r;

        l = service_registry_list(m, NULL);
        if (!l)
                return -ENOMEM;
        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssso)");
        if (r < 0)
                return r;
        for (Service **s = l; *s; s++) {
                r = sd_bus_message_append(reply, "(ssso)", (*s)->name, (*s)->image, (*s)->description, (*s)->object_path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_service(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name, *json;
        Service *s;
        int r;

        r = sd_bus_message_read(message, "s", &name);
        if (r < 0)
                return r;
        s = service_registry_get(m, name);
        if (!s) {
                _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
                gw_error_set(&e, GW_ERROR_NO_SUCH_SERVICE, "No service '%s'.", name);
                return reply_gw_error(&e, error);
        }
        json = service_json(s);
        if (!json)
                return -ENOMEM;
        return sd_bus_reply_method_return(message, "s", json);
}

static int create_service_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *spec;
        const char *text;
        Service *s;
        int r;

        r = sd_bus_message_read(message, "s", &text);
        if (r < 0)
                return r;
        spec = parse_json_argument(text, "Service spec", &e);
        if (!spec)
                return reply_gw_error(&e, error);
        r = service_registry_create(m, spec, &s, &e);
        json_object_put(spec);
        if (r < 0)
                return reply_gw_error(&e, error);
        return sd_bus_reply_method_return(message, "o", s->object_path);
}

static int update_service_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *name, *text;
        json_object *spec;
        Service *s;
        int r;

        r = sd_bus_message_read(message, "ss", &name, &text);
        if (r < 0)
                return r;
        spec = parse_json_argument(text, "Service spec", &e);
        if (!spec)
                return reply_gw_error(&e, error);
        r = service_registry_update(m, name, spec, &s, &e);
        json_object_put(spec);
        if (r < 0)
                return reply_gw_error(&e, error);
        return sd_bus_reply_method_return(message, "o", s->object_path);
}

static int remove_service_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *name;
        int r;

        r = sd_bus_message_read(message, "s", &name);
        if (r < 0)
                return r;
        r = service_registry_remove(m, name, &e);
        if (r < 0)
                return reply_gw_error(&e, error);
        return sd_bus_reply_method_return(message, NULL);
}

static int method_create_service(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, "org.gatewayd.manage-services", create_service_authorized, error);
}

static int method_update_service(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, "org.gatewayd.manage-services", update_service_authorized, error);
}

static int method_remove_service(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, "org.gatewayd.manage-services", remove_service_authorized, error);
}

static int method_get_status(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        json_object *o = status_to_json(userdata);
        int r;

        if (!o)
                return -ENOMEM;
        r = sd_bus_reply_method_return(message, "s", json_text(o));
        json_object_put(o);
        return r;
}

static int property_get_n_services(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(reply, "u", (uint32_t) hashmap_size(m->services));
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", GATEWAYD_VERSION);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0), /* every method is open to all: gatewayd authorizes with polkit itself */
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("StateDirectory", "s", NULL, offsetof(Manager, state_dir), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("NServices", "u", property_get_n_services, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("ListServices", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(ssso)", services), method_list_services, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetService", SD_BUS_ARGS("s", name),
                                SD_BUS_RESULT("s", json), method_get_service, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreateService", SD_BUS_ARGS("s", spec_json),
                                SD_BUS_RESULT("o", path), method_create_service, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("UpdateService", SD_BUS_ARGS("s", name, "s", spec_json),
                                SD_BUS_RESULT("o", path), method_update_service, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveService", SD_BUS_ARGS("s", name),
                                SD_BUS_NO_RESULT, method_remove_service, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetStatus", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("s", json), method_get_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PullImage", SD_BUS_ARGS("s", reference, "s", options_json),
                                SD_BUS_RESULT("o", path), method_pull_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListImages", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(ssstso)", images), method_list_images, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetImage", SD_BUS_ARGS("s", id_or_reference),
                                SD_BUS_RESULT("s", json), method_get_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveImage", SD_BUS_ARGS("s", id_or_reference),
                                SD_BUS_NO_RESULT, method_remove_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ExpireImage", SD_BUS_ARGS("s", id_or_reference),
                                SD_BUS_NO_RESULT, method_expire_image, SD_BUS_VTABLE_UNPRIVILEGED),
        /* images per platform: the same handlers, with the platform first */
        SD_BUS_METHOD_WITH_ARGS("GetImageOn", SD_BUS_ARGS("s", platform, "s", id_or_reference),
                                SD_BUS_RESULT("s", json), method_get_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveImageOn", SD_BUS_ARGS("s", platform, "s", id_or_reference),
                                SD_BUS_NO_RESULT, method_remove_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ExpireImageOn", SD_BUS_ARGS("s", platform, "s", id_or_reference),
                                SD_BUS_NO_RESULT, method_expire_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SubmitJob", SD_BUS_ARGS("s", service, "s", data_json, "s", params_json),
                                SD_BUS_RESULT("o", path), bus_method_submit_job, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListJobs", SD_BUS_ARGS("b", all_users),
                                SD_BUS_RESULT("a(ssuso)", jobs), bus_method_list_jobs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveJob", SD_BUS_ARGS("s", id),
                                SD_BUS_NO_RESULT, bus_method_remove_job, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreateToken", SD_BUS_ARGS("s", options_json),
                                SD_BUS_RESULT("s", json), bus_method_create_token, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListTokens", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sttas)", tokens), bus_method_list_tokens, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RevokeToken", SD_BUS_ARGS("s", id),
                                SD_BUS_NO_RESULT, bus_method_revoke_token, SD_BUS_VTABLE_UNPRIVILEGED),
        /* Platforms and their nodes (bus-platform.c) */
        SD_BUS_METHOD_WITH_ARGS("ListPlatforms", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(ssbbo)", platforms), bus_method_list_platforms, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetPlatform", SD_BUS_ARGS("s", name),
                                SD_BUS_RESULT("s", json), bus_method_get_platform, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DrainNode", SD_BUS_ARGS("s", platform, "s", node),
                                SD_BUS_RESULT("s", json), bus_method_drain_node, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ResumeNode", SD_BUS_ARGS("s", platform, "s", node),
                                SD_BUS_RESULT("s", json), bus_method_resume_node, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreateClient", SD_BUS_ARGS("s", options_json),
                                SD_BUS_RESULT("s", json), bus_method_create_client, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListClients", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(ssttas)", clients), bus_method_list_clients, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveClient", SD_BUS_ARGS("s", id),
                                SD_BUS_NO_RESULT, bus_method_remove_client, SD_BUS_VTABLE_UNPRIVILEGED),
        /* programs (docs/programs.md; uploads are HTTP only) */
        SD_BUS_METHOD_WITH_ARGS("ListPrograms", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("s", json), bus_method_list_programs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RunProgram", SD_BUS_ARGS("s", title, "s", arguments_json, "s", env_json),
                                SD_BUS_RESULT("o", path), bus_method_run_program, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveProgram", SD_BUS_ARGS("s", title),
                                SD_BUS_NO_RESULT, bus_method_remove_program, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("UploadProgram", SD_BUS_ARGS("s", metadata_json, "b", replace),
                                SD_BUS_RESULT("s", json), bus_method_upload_program, SD_BUS_VTABLE_UNPRIVILEGED),
        /* providers' shared programs (docs/programs.md "Providers") */
        SD_BUS_METHOD_WITH_ARGS("RunProviderProgram", SD_BUS_ARGS("s", provider, "s", title, "s", arguments_json, "s", env_json),
                                SD_BUS_RESULT("o", path), bus_method_run_provider_program, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveProviderProgram", SD_BUS_ARGS("s", provider, "s", title),
                                SD_BUS_NO_RESULT, bus_method_remove_provider_program, SD_BUS_VTABLE_UNPRIVILEGED),
        /* labs (bus-lab.c) */
        SD_BUS_METHOD_WITH_ARGS("ListLabs", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sso)", labs), bus_method_list_labs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetLab", SD_BUS_ARGS("s", name),
                                SD_BUS_RESULT("s", json), bus_method_get_lab, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PutLab", SD_BUS_ARGS("s", name, "s", spec_json),
                                SD_BUS_RESULT("o", path, "b", created), bus_method_put_lab, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveLab", SD_BUS_ARGS("s", name),
                                SD_BUS_NO_RESULT, bus_method_remove_lab, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("StartLabInstance", SD_BUS_ARGS("s", lab),
                                SD_BUS_RESULT("s", json), bus_method_start_lab_instance, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListLabInstances", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("s", json), bus_method_list_lab_instances, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetLabInstance", SD_BUS_ARGS("s", id),
                                SD_BUS_RESULT("s", json), bus_method_get_lab_instance, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveLabInstance", SD_BUS_ARGS("s", id),
                                SD_BUS_NO_RESULT, bus_method_remove_lab_instance, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RenewLabInstanceToken", SD_BUS_ARGS("s", id),
                                SD_BUS_RESULT("s", json), bus_method_renew_lab_instance_token, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("JobNew", SD_BUS_ARGS("s", id, "o", path), 0),
        SD_BUS_SIGNAL_WITH_ARGS("JobRemoved", SD_BUS_ARGS("s", id, "o", path), 0),
        SD_BUS_SIGNAL_WITH_ARGS("ServiceNew", SD_BUS_ARGS("s", name, "o", path), 0),
        SD_BUS_SIGNAL_WITH_ARGS("ServiceRemoved", SD_BUS_ARGS("s", name, "o", path), 0),
        SD_BUS_VTABLE_END
};

void bus_manager_emit_n_services(Manager *m) {
        if (m->bus && sd_bus_emit_properties_changed(m->bus, MANAGER_OBJECT_PATH, MANAGER_INTERFACE, "NServices", NULL) < 0)
                log_debug("Failed to announce the number of services.");
}

/* The registries' changes, as signals (registry-events.h). */
static void on_registry_event(Manager *m, const RegistryEvent *e, void *userdata) {
        switch (e->kind) {
        case REGISTRY_SERVICE_ADDED:
                bus_service_emit_added(e->service);
                bus_manager_emit_n_services(m);
                break;
        case REGISTRY_SERVICE_CHANGED:
                bus_service_emit_changed(e->service);
                break;
        case REGISTRY_SERVICE_REMOVED:
                bus_service_emit_removed(e->service);
                bus_manager_emit_n_services(m);
                break;
        case REGISTRY_IMAGE_ADDED:
                bus_image_emit_added(e->image);
                break;
        case REGISTRY_IMAGE_CHANGED:
                bus_image_emit_changed(e->image);
                break;
        case REGISTRY_IMAGE_PROGRESS:
                /* A status step was announced as a change already. */
                if (e->progress_counters)
                        bus_image_emit_progress(e->image);
                break;
        case REGISTRY_IMAGE_REMOVED:
                bus_image_emit_removed(e->image);
                break;
        case REGISTRY_JOB_ADDED:
                bus_job_emit_added(e->job);
                break;
        case REGISTRY_JOB_CHANGED:
                bus_job_emit_changed(e->job);
                break;
        case REGISTRY_JOB_INTERIM:
                bus_job_emit_interim(e->job, e->interim_index, e->interim_json);
                break;
        case REGISTRY_JOB_REMOVED:
                bus_job_emit_removed(e->job);
                break;
        default:
                break;
        }
}

int bus_subscribe_registries(Manager *m) {
        int r;

        for (RegistryEventKind k = 0; k < _REGISTRY_EVENT_KIND_MAX; k++) {
                r = registry_subscribe(m, k, on_registry_event, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

int bus_manager_register(Manager *m) {
        int r;

        r = sd_bus_add_object_vtable(m->bus, NULL, MANAGER_OBJECT_PATH, MANAGER_INTERFACE, manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add manager object vtable: %m");
        r = sd_bus_add_object_manager(m->bus, NULL, MANAGER_OBJECT_PATH);
        if (r < 0)
                return log_error_errno(r, "Failed to add object manager: %m");
        r = bus_service_register(m);
        if (r < 0)
                return r;
        r = bus_image_register(m);
        if (r < 0)
                return r;
        r = bus_platform_register(m);
        if (r < 0)
                return r;
        r = bus_lab_register(m);
        if (r < 0)
                return r;
        return bus_job_register(m);
}
