/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "ctl-bus.h"
#include "ctl-polkit-agent.h"
#include "ctl-services.h"
#include "ctl-util.h"
#include "ctl.h"
#include "log.h"

/* The verbs that change services: create, update, rm. */

SpecChanges arg_spec = SPEC_CHANGES_INIT;

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
        r = service_get_json(bus, name, &record);
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
        r = service_get_json(bus, name, &record);
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
