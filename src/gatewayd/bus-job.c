/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <unistd.h>

#include "spool-layout.h"
#include "bus-job.h"
#include "bus-manager.h"
#include "bus-owned.h"
#include "bus-util.h"
#include "gw-error.h"
#include "job-registry.h"
#include "log.h"
#include "manager.h"

#define ACTION_SUBMIT_JOB "org.gatewayd.submit-job"
#define ACTION_MANAGE_JOBS "org.gatewayd.manage-jobs"
#define LOG_CHUNK_MAX (1024 * 1024)

/* The caller whose view of the objects is being built: the sender of the method call being
 * handled, if it addresses path (or path is NULL). Emissions of signals also resolve objects,
 * sometimes while some other message is current (e.g. polkit's reply); they are not a caller's
 * view and must see every object. */
static int current_caller(sd_bus *bus, const char *path, Caller *ret) {
        sd_bus_message *m = sd_bus_get_current_message(bus);
        uint8_t type = 0;

        if (!m || sd_bus_message_get_type(m, &type) < 0 || type != SD_BUS_MESSAGE_METHOD_CALL)
                return -ENXIO;
        if (path && !streq(strempty(sd_bus_message_get_path(m)), path))
                return -ENXIO;
        return bus_get_caller(m, ret);
}

static int job_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                           void **found, sd_bus_error *error) {
        _cleanup_free_ char *id = NULL;
        Manager *m = userdata;
        Caller c;
        Job *j;
        int r;

        r = sd_bus_path_decode(path, JOB_OBJECT_PREFIX, &id);
        if (r <= 0)
                return r;
        j = job_registry_get(m, id);
        if (!j)
                return 0;
        r = current_caller(bus, path, &c);
        if (r != -ENXIO && (r < 0 || !job_is_visible_to(j, &c)))
                return 0;
        *found = j;
        return 1;
}

static int job_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_strv_free_ char **l = NULL;
        size_t i = 0;
        Caller c;
        Job *j;
        int r;

        r = current_caller(bus, NULL, &c);
        l = calloc(hashmap_size(m->jobs) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        HASHMAP_FOREACH(j, m->jobs) {
                if (r != -ENXIO && (r < 0 || !job_is_visible_to(j, &c)))
                        continue;
                l[i] = strdup(j->object_path);
                if (!l[i++])
                        return -ENOMEM;
        }
        *nodes = TAKE_PTR(l);
        return 1;
}

static int property_get_status(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        return sd_bus_message_append(reply, "s", job_state_to_string(j->state));
}

static int property_get_uid(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "u", (uint32_t) *(uid_t *) userdata);
}

static int reply_json(sd_bus_message *message, json_object *o) {
        int r = sd_bus_reply_method_return(message, "s",
                                           o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "null");
        json_object_put(o);
        return r;
}

static int method_cancel(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Job *j = userdata;

        if (job_registry_cancel(j, &e) < 0 && gw_error_is_set(&e))
                return gw_error_to_bus(&e, error);
        return sd_bus_reply_method_return(message, NULL);
}

static int method_remove(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        /* The object resolves only for the owner and root: nobody else gets here. */
        if (job_registry_remove(userdata, &e) < 0)
                return gw_error_to_bus(&e, error);
        return sd_bus_reply_method_return(message, NULL);
}

static int method_get_result(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *o = NULL;

        if (job_result_json(userdata, &o, &e) < 0)
                return gw_error_to_bus(&e, error);
        return reply_json(message, o);
}

static int method_get_interim_results(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *o = NULL;
        int last, r;

        r = sd_bus_message_read(message, "b", &last);
        if (r < 0)
                return r;
        if (job_interim_json(userdata, last, &o, &e) < 0)
                return gw_error_to_bus(&e, error);
        return reply_json(message, o);
}

static int method_get_log(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL, *buf = NULL;
        _cleanup_close_ int fd = -1;
        Job *j = userdata;
        uint64_t offset;
        ssize_t n = 0;
        int r;

        r = sd_bus_message_read(message, "t", &offset);
        if (r < 0)
                return r;
        if (!(path = spool_path(j->spool_dir, SPOOL_LOG)))
                return -ENOMEM;
        buf = malloc(LOG_CHUNK_MAX);
        if (!buf)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
                n = pread(fd, buf, LOG_CHUNK_MAX, (off_t) offset);
                if (n < 0)
                        return -errno;
        } else if (errno != ENOENT)
                return -errno;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r >= 0)
                r = sd_bus_message_append_array(reply, 'y', buf, (size_t) n);
        if (r >= 0)
                r = sd_bus_message_append(reply, "tb", offset + (uint64_t) n, (int) job_state_is_terminal(j->state));
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "s", bus_property_get_string, offsetof(Job, id), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Service", "s", bus_property_get_string, offsetof(Job, service), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Platform", "s", bus_property_get_string, offsetof(Job, platform), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Owner", "u", property_get_uid, offsetof(Job, uid), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Group", "u", property_get_uid, offsetof(Job, gid), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Status", "s", property_get_status, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CreatedTimestamp", "t", NULL, offsetof(Job, created_usec), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("StartedTimestamp", "t", NULL, offsetof(Job, started_usec), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("EndedTimestamp", "t", NULL, offsetof(Job, ended_usec), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ExitCode", "i", NULL, offsetof(Job, exit_code), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ErrorCode", "s", bus_property_get_string, offsetof(Job, error_code), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Error", "s", bus_property_get_string, offsetof(Job, error_message), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Remove", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_remove, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetResult", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json),
                                method_get_result, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetInterimResults", SD_BUS_ARGS("b", last), SD_BUS_RESULT("s", json),
                                method_get_interim_results, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetLog", SD_BUS_ARGS("t", offset), SD_BUS_RESULT("ay", data, "t", next_offset, "b", finished),
                                method_get_log, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("InterimResult", SD_BUS_ARGS("u", index, "s", json), 0),
        SD_BUS_VTABLE_END
};

int bus_job_register(Manager *m) {
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, NULL, JOB_OBJECT_PREFIX, JOB_INTERFACE, job_vtable, job_object_find, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add job object vtable: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, JOB_OBJECT_PREFIX, job_node_enumerator, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add job node enumerator: %m");
        return 0;
}

/* ---- Manager methods ---- */

static json_object *parse_optional_json(const char *text, const char *what, GwError *e) {
        json_object *o;

        if (!text || !*text)
                return json_object_new_object();
        if (bus_parse_json_argument(text, what, &o, e) < 0)
                return NULL;
        return o ?: json_object_new_object(); /* "null" */
}

static int submit_job_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *service, *data_text, *params_text;
        json_object *data = NULL, *params = NULL;
        Caller c;
        Job *j;
        int r;

        r = sd_bus_message_read(message, "sss", &service, &data_text, &params_text);
        if (r < 0)
                return r;
        r = bus_get_caller(message, &c);
        if (r < 0)
                return r;
        if (strlen(data_text) + strlen(params_text) > m->config->max_request_body) {
                gw_error_set(&e, GW_ERROR_PAYLOAD_TOO_LARGE, "data and params exceed the limit of %llu bytes (MaxRequestBody).",
                             (unsigned long long) m->config->max_request_body);
                return gw_error_to_bus(&e, error);
        }
        data = parse_optional_json(data_text, "data", &e);
        params = data ? parse_optional_json(params_text, "params", &e) : NULL;
        if (data && params)
                r = job_registry_submit(m, &c, service, data, params, &j, &e);
        json_object_put(data);
        json_object_put(params);
        if (gw_error_is_set(&e))
                return gw_error_to_bus(&e, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, "o", j->object_path);
}

int bus_method_submit_job(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, ACTION_SUBMIT_JOB, submit_job_authorized, error);
}

static int list_jobs_reply(Manager *m, sd_bus_message *message, bool all, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Job **l = NULL;
        JobFilter f = { .all_users = all, .state = _JOB_STATE_INVALID };
        Caller c;
        int r;

        r = bus_get_caller(message, &c);
        if (r < 0)
                return r;
        f.uid = c.uid;
        l = job_registry_list(m, &f, NULL);
        if (!l)
                return -ENOMEM;
        r = sd_bus_message_new_method_return(message, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssuso)");
        for (Job **j = l; r >= 0 && *j; j++)
                r = sd_bus_message_append(reply, "(ssuso)", (*j)->id, (*j)->service, (uint32_t) (*j)->uid,
                                          job_state_to_string((*j)->state), (*j)->object_path);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int list_all_jobs_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        return list_jobs_reply(m, message, true, error);
}

int bus_method_list_jobs(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        int all, r;

        r = sd_bus_message_read(message, "b", &all);
        if (r < 0)
                return r;
        if (all)
                return bus_verify_polkit_then(userdata, message, ACTION_MANAGE_JOBS, list_all_jobs_authorized, error);
        return list_jobs_reply(userdata, message, false, error);
}

/* RemoveJob(s id): the owner and root remove their job at once; anybody else needs polkit's
 * org.gatewayd.manage-jobs, and without it the job does not exist for them (NoSuchJob, as the
 * HTTP API's 404), so that a refusal does not tell that the id is taken. */
static int job_is_own(Manager *m, const char *id, const Caller *caller) {
        Job *j = job_registry_get(m, id);

        if (!j)
                return -ENOENT;
        return job_is_visible_to(j, caller);
}

static int job_remove(Manager *m, const char *id, GwError *e) {
        Job *j = job_registry_get(m, id);

        if (!j)
                return gw_error_set(e, GW_ERROR_NO_SUCH_JOB, "No job '%s'.", id);
        return job_registry_remove(j, e);
}

static const OwnedKind job_removal = {
        .noun = "job",
        .not_found = GW_ERROR_NO_SUCH_JOB,
        .action = ACTION_MANAGE_JOBS,
        .is_own = job_is_own,
        .remove = job_remove,
};

int bus_method_remove_job(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_remove_owned(userdata, message, &job_removal, error);
}

/* ---- signals: best effort, the state is committed already ---- */

void bus_job_emit_added(Job *j) {
        Manager *m = j->manager;
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_object_added(m->bus, j->object_path);
        if (r >= 0)
                r = sd_bus_emit_signal(m->bus, MANAGER_OBJECT_PATH, MANAGER_INTERFACE, "JobNew", "so", j->id, j->object_path);
        if (r < 0)
                log_warning_errno(r, "Failed to announce job %s on the bus: %m", j->id);
}

void bus_job_emit_removed(Job *j) {
        Manager *m = j->manager;
        int r;

        if (!m->bus)
                return;
        /* The job is gone from the registry already, so its object no longer resolves: name
         * the interface instead of letting sd-bus look it up. */
        r = sd_bus_emit_interfaces_removed(m->bus, j->object_path, JOB_INTERFACE, NULL);
        if (r >= 0)
                r = sd_bus_emit_signal(m->bus, MANAGER_OBJECT_PATH, MANAGER_INTERFACE, "JobRemoved", "so", j->id, j->object_path);
        if (r < 0)
                log_warning_errno(r, "Failed to announce removal of job %s: %m", j->id);
}

void bus_job_emit_changed(Job *j) {
        Manager *m = j->manager;
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_properties_changed(m->bus, j->object_path, JOB_INTERFACE, "Status", "StartedTimestamp",
                                           "EndedTimestamp", "ExitCode", "ErrorCode", "Error", NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to announce change of job %s: %m", j->id);
}

void bus_job_emit_interim(Job *j, unsigned index, const char *json_text) {
        Manager *m = j->manager;
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_signal(m->bus, j->object_path, JOB_INTERFACE, "InterimResult", "us", (uint32_t) index, json_text);
        if (r < 0)
                log_warning_errno(r, "Failed to send interim result of job %s: %m", j->id);
}
