/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl-bus.h"
#include "ctl-listing.h"
#include "ctl-jobs.h"
#include "ctl-polkit-agent.h"
#include "ctl-show.h"
#include "ctl-spec.h"
#include "ctl-table.h"
#include "ctl-util.h"
#include "ctl.h"
#include "log.h"

#define JOB_PATH_PREFIX "/org/gatewayd/Gateway1/job"
#define JOB_INTERFACE "org.gatewayd.Gateway1.Job"
#define INPUT_MAX (64 * 1024 * 1024)

JobArgs arg_job = {};

void job_args_done(JobArgs *a) {
        a->data_file = mfree(a->data_file);
        a->params_file = mfree(a->params_file);
}

static bool status_is_terminal(const char *s) {
        return streq(s, "SUCCEEDED") || streq(s, "FAILED") || streq(s, "CANCELLED") || streq(s, "UNKNOWN");
}

static int job_path(const char *id, char **ret) {
        int r = sd_bus_path_encode(JOB_PATH_PREFIX, id, ret);
        return r < 0 ? log_oom() : 0;
}

/* Reads --data/--params: a file ("-" = stdin) holding JSON, checked here for a clear message. */
static int read_json_input(const char *path, const char *option, char **ret) {
        _cleanup_free_ char *text = NULL, *msg = NULL;
        json_object *o = NULL;
        int r;

        if (!path) {
                *ret = NULL;
                return 0;
        }
        r = read_full_file(path, INPUT_MAX, &text, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s=%s: %m", option, path);
        r = json_parse_text(text, &o, &msg);
        if (r < 0)
                return log_error_errno(r, "%s=%s is not valid JSON: %s", option, path, strna(msg));
        json_object_put(o);
        *ret = TAKE_PTR(text);
        return 0;
}

static int get_status(sd_bus *bus, const char *path, char **ret) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_string(bus, GATEWAY_BUS_NAME, path, JOB_INTERFACE, "Status", &error, ret);
        if (r < 0)
                return log_error_errno(r, "Failed to read the job's status: %s", ctl_bus_error_message(&error, r));
        return 0;
}

static int call_job(sd_bus *bus, const char *id, const char *method, sd_bus_message **reply, const char *types, ...) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *m = NULL;
        _cleanup_free_ char *path = NULL;
        va_list ap;
        int r;

        r = job_path(id, &path);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_call(bus, &m, GATEWAY_BUS_NAME, path, JOB_INTERFACE, method);
        if (r >= 0 && types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r < 0)
                return log_oom();
        r = sd_bus_call(bus, m, 0, &error, reply);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_METHOD))
                        return log_error_errno(ENOENT, "No job '%s'.", id);
                return log_error_errno(r, "Failed to %s job %s: %s", method, id, ctl_bus_error_message(&error, r));
        }
        return 0;
}

/* Waits until the job has ended, woken by its PropertiesChanged signals (and once a second,
 * so a missed signal cannot hang us). */
static int wait_for_end(sd_bus *bus, const char *path, char **ret_status) {
        _cleanup_free_ char *match = NULL;
        int r;

        if (asprintf(&match, "type='signal',interface='org.freedesktop.DBus.Properties',"
                     "member='PropertiesChanged',path='%s'", path) < 0)
                return log_oom();
        r = sd_bus_add_match(bus, NULL, match, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the job: %m");
        for (;;) {
                _cleanup_free_ char *status = NULL;

                r = get_status(bus, path, &status);
                if (r < 0)
                        return r;
                if (status_is_terminal(status)) {
                        *ret_status = TAKE_PTR(status);
                        return 0;
                }
                for (;;) {
                        r = sd_bus_process(bus, NULL);
                        if (r < 0)
                                return log_error_errno(r, "Failed to process bus messages: %m");
                        if (r == 0)
                                break;
                }
                r = sd_bus_wait(bus, USEC_PER_SEC);
                if (r < 0)
                        return log_error_errno(r, "Failed to wait on the bus: %m");
        }
}

static int print_result(sd_bus *bus, const char *id) {
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_free_ char *msg = NULL;
        json_object *o = NULL;
        const char *text;
        int r;

        r = call_job(bus, id, "GetResult", &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "s", &text);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the result: %m");
        r = json_parse_text(text, &o, &msg);
        if (r < 0) {
                puts(text);
                return 0;
        }
        r = json_print(o, arg_json != JSON_SHORT, stdout);
        json_object_put(o);
        return r;
}

/* --wait: until the job ends, then its result; exit status 1 unless it SUCCEEDED. */
static int wait_and_print(sd_bus *bus, const char *id, const char *path) {
        _cleanup_free_ char *status = NULL;
        int r;

        if (arg_json == JSON_OFF)
                fprintf(stderr, "Job %s submitted, waiting for it to end...\n", id);
        r = wait_for_end(bus, path, &status);
        if (r < 0)
                return r;
        if (arg_json == JSON_OFF)
                fprintf(stderr, "Job %s: %s\n", id, status);
        r = print_result(bus, id);
        if (r < 0)
                return r;
        return streq(status, "SUCCEEDED") ? 0 : -EBADE;
}

int verb_submit(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_free_ char *data = NULL, *params = NULL, *id = NULL;
        const char *path;
        int r;

        if (arg_job.data_file && arg_job.params_file && streq(arg_job.data_file, "-") && streq(arg_job.params_file, "-"))
                return log_error_errno(EINVAL, "--data=- and --params=- cannot both read standard input.");
        r = read_json_input(arg_job.data_file, "--data", &data);
        if (r >= 0)
                r = read_json_input(arg_job.params_file, "--params", &params);
        if (r < 0)
                return r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        r = ctl_call_manager(bus, "SubmitJob", &error, &reply, "sss", argv[0], strempty(data), strempty(params));
        if (r < 0)
                return log_error_errno(r, "Failed to submit a job for '%s': %s", argv[0], ctl_bus_error_message(&error, r));
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        r = sd_bus_path_decode(path, JOB_PATH_PREFIX, &id);
        if (r <= 0)
                return log_error_errno(EBADMSG, "Unexpected job path %s.", path);

        if (!arg_job.wait) {
                puts(id);
                return 0;
        }
        return wait_and_print(bus, id, path);
}

int ctl_job_wait_and_print(const char *id) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = job_path(id, &path);
        if (r >= 0)
                r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        return wait_and_print(bus, id, path);
}

int verb_jobs(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        json_object *a = NULL;
        const char *id, *service, *status, *path;
        uint32_t uid;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        r = ctl_call_manager(bus, "ListJobs", &error, &reply, "b", (int) arg_job.all);
        if (r < 0)
                return log_error_errno(r, "Failed to list jobs: %s", ctl_bus_error_message(&error, r));
        r = sd_bus_message_enter_container(reply, 'a', "(ssuso)");
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");

        if (arg_json != JSON_OFF)
                a = json_object_new_array();
        else {
                t = table_new("ID", "SERVICE", "UID", "STATUS", NULL);
                if (!t)
                        return log_oom();
                table_set_header(t, arg_legend);
        }
        while ((r = sd_bus_message_read(reply, "(ssuso)", &id, &service, &uid, &status, &path)) > 0) {
                char uid_text[16];

                if (a) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "id", json_object_new_string(id));
                        json_object_object_add(o, "service", json_object_new_string(service));
                        json_object_object_add(o, "uid", json_object_new_int64(uid));
                        json_object_object_add(o, "status", json_object_new_string(status));
                        json_object_object_add(o, "path", json_object_new_string(path));
                        json_object_array_add(a, o);
                        continue;
                }
                snprintf(uid_text, sizeof(uid_text), "%" PRIu32, uid);
                r = table_add_row(t, id, service, uid_text, status);
                if (r < 0)
                        return log_oom();
        }
        return ctl_print_listing(r, a, t, "job", "jobs");
}

typedef struct JobInfo {
        char *id, *service, *platform, *status, *error_code, *error;
        uint32_t owner, group;
        uint64_t created, started, ended;
        int32_t exit_code;
} JobInfo;

static void job_info_done(JobInfo *i) {
        free(i->id);
        free(i->service);
        free(i->platform);
        free(i->status);
        free(i->error_code);
        free(i->error);
}

static int get_job_info(sd_bus *bus, const char *id, JobInfo *ret) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = job_path(id, &path);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, GATEWAY_BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll", &error,
                               &reply, "s", JOB_INTERFACE);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_INTERFACE))
                        return log_error_errno(ENOENT, "No job '%s'.", id);
                return log_error_errno(r, "Failed to read job %s: %s", id, ctl_bus_error_message(&error, r));
        }
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *name, *s;
                char **field = NULL;

                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        break;
                if (streq(name, "Id")) field = &ret->id;
                else if (streq(name, "Service")) field = &ret->service;
                else if (streq(name, "Platform")) field = &ret->platform;
                else if (streq(name, "Status")) field = &ret->status;
                else if (streq(name, "ErrorCode")) field = &ret->error_code;
                else if (streq(name, "Error")) field = &ret->error;

                if (field) {
                        r = sd_bus_message_read(reply, "v", "s", &s);
                        if (r >= 0 && !(*field = strdup(s)))
                                r = -ENOMEM;
                } else if (streq(name, "Owner"))
                        r = sd_bus_message_read(reply, "v", "u", &ret->owner);
                else if (streq(name, "Group"))
                        r = sd_bus_message_read(reply, "v", "u", &ret->group);
                else if (streq(name, "CreatedTimestamp"))
                        r = sd_bus_message_read(reply, "v", "t", &ret->created);
                else if (streq(name, "StartedTimestamp"))
                        r = sd_bus_message_read(reply, "v", "t", &ret->started);
                else if (streq(name, "EndedTimestamp"))
                        r = sd_bus_message_read(reply, "v", "t", &ret->ended);
                else if (streq(name, "ExitCode"))
                        r = sd_bus_message_read(reply, "v", "i", &ret->exit_code);
                else
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to parse the properties of job %s: %m", id);
        return 0;
}

static json_object *usec_json(uint64_t usec) {
        return usec > 0 ? json_object_new_int64((int64_t) usec) : NULL;
}

int verb_job_show(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        JobInfo info = { .exit_code = -1 };
        char buf[FORMAT_TIMESTAMP_MAX];
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        r = get_job_info(bus, argv[0], &info);
        if (r < 0)
                goto finish;

        if (arg_json != JSON_OFF) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_string(strempty(info.id)));
                json_object_object_add(o, "service", json_object_new_string(strempty(info.service)));
                json_object_object_add(o, "platform", json_object_new_string(strempty(info.platform)));
                json_object_object_add(o, "status", json_object_new_string(strempty(info.status)));
                json_object_object_add(o, "uid", json_object_new_int64(info.owner));
                json_object_object_add(o, "gid", json_object_new_int64(info.group));
                json_object_object_add(o, "createdUsec", usec_json(info.created));
                json_object_object_add(o, "startedUsec", usec_json(info.started));
                json_object_object_add(o, "endedUsec", usec_json(info.ended));
                json_object_object_add(o, "exitCode", info.exit_code >= 0 ? json_object_new_int(info.exit_code) : NULL);
                json_object_object_add(o, "errorCode", info.error_code && *info.error_code ? json_object_new_string(info.error_code) : NULL);
                json_object_object_add(o, "error", info.error && *info.error ? json_object_new_string(info.error) : NULL);
                r = json_print(o, arg_json == JSON_PRETTY, stdout);
                json_object_put(o);
                goto finish;
        }

        show_field("Job", info.id);
        show_field("Service", info.service);
        show_field("Status", info.status);
        show_fieldf("Owner", "uid %" PRIu32 ", gid %" PRIu32, info.owner, info.group);
        show_field("Platform", info.platform);
        show_field("Created", format_timestamp_usec(buf, sizeof(buf), info.created));
        if (info.started)
                show_field("Started", format_timestamp_usec(buf, sizeof(buf), info.started));
        if (info.ended)
                show_field("Ended", format_timestamp_usec(buf, sizeof(buf), info.ended));
        if (info.exit_code >= 0)
                show_fieldf("Exit code", "%" PRIi32, info.exit_code);
        if (info.error_code && *info.error_code)
                show_field("Error", info.error_code);
        if (info.error && *info.error) {
                _cleanup_strv_free_ char **lines = NULL;
                char *save = NULL, *copy = strdup(info.error);

                for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save))
                        if (strv_extend(&lines, l) < 0)
                                break;
                show_field_lines("Detail", lines);
                free(copy);
        }
        r = 0;
finish:
        job_info_done(&info);
        return r;
}

int verb_result(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        return print_result(bus, argv[0]);
}

/* Writes the log from offset to stdout; returns the new offset, and whether the job has ended
 * and nothing more is to come. */
static int copy_log(sd_bus *bus, const char *id, uint64_t *offset, bool *ret_finished) {
        for (;;) {
                _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
                const void *data;
                size_t size;
                uint64_t next;
                int finished, r;

                r = call_job(bus, id, "GetLog", &reply, "t", *offset);
                if (r < 0)
                        return r;
                r = sd_bus_message_read_array(reply, 'y', &data, &size);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "tb", &next, &finished);
                if (r < 0)
                        return log_error_errno(r, "Failed to parse the log: %m");
                if (size > 0 && fwrite(data, 1, size, stdout) != size)
                        return log_error_errno(EIO, "Failed to write the log.");
                fflush(stdout);
                *offset = next;
                if (size == 0) {
                        *ret_finished = finished;
                        return 0;
                }
        }
}

int verb_logs(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_free_ char *path = NULL, *match = NULL;
        uint64_t offset = 0;
        bool finished = false;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        r = copy_log(bus, argv[0], &offset, &finished);
        if (r < 0 || !arg_job.follow)
                return r;

        r = job_path(argv[0], &path);
        if (r < 0)
                return r;
        if (asprintf(&match, "type='signal',path='%s'", path) < 0)
                return log_oom();
        r = sd_bus_add_match(bus, NULL, match, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the job: %m");

        /* Woken by the job's signals (status, interim results); the log itself grows silently,
         * so look at least twice a second. */
        while (!finished) {
                for (;;) {
                        r = sd_bus_process(bus, NULL);
                        if (r < 0)
                                return log_error_errno(r, "Failed to process bus messages: %m");
                        if (r == 0)
                                break;
                }
                r = sd_bus_wait(bus, USEC_PER_SEC / 2);
                if (r < 0)
                        return log_error_errno(r, "Failed to wait on the bus: %m");
                r = copy_log(bus, argv[0], &offset, &finished);
                if (r < 0)
                        return r;
        }
        return 0;
}

int verb_cancel(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        int r, ret = 0;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        for (int i = 0; i < argc; i++) {
                r = call_job(bus, argv[i], "Cancel", NULL, NULL);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

/* Manager.RemoveJob() rather than the job object's Remove(): an admin may remove someone else's
 * job, whose object does not resolve for them. Like "cancel", every id is tried and the first
 * error is returned after all were. */
int verb_job_remove(int argc, char *argv[], char *tail[]) {
        return ctl_call_manager_each_id("RemoveJob", "remove", "job", argc, argv);
}
