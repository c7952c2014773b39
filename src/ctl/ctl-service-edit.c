/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "ctl-bus.h"
#include "ctl-polkit-agent.h"
#include "ctl-services.h"
#include "ctl-util.h"
#include "ctl.h"
#include "json-util.h"
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

/* Sends the spec with CreateService(spec) or UpdateService(name, spec), with a polkit agent on
 * a terminal; then, with --json, prints the record the daemon now has. */
static int send_spec(sd_bus *bus, const char *method, const char *update_name, json_object *spec,
                     const char *what) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *record = NULL;
        const char *text = json_text(spec), *name = json_get_string(spec, SPEC_KEY_NAME);
        pid_t agent;
        int r;

        if (!text)
                return log_oom();

        agent = ctl_polkit_agent_open();
        if (update_name)
                r = ctl_call_manager(bus, method, &error, NULL, "ss", update_name, text);
        else
                r = ctl_call_manager(bus, method, &error, NULL, "s", text);
        ctl_polkit_agent_close(agent);
        if (r < 0)
                return log_error_errno(r, "Failed to %s service: %s", what, ctl_bus_error_message(&error, r));

        if (arg_json == JSON_OFF)
                return 0;
        r = service_get_json(bus, name, &record);
        if (r < 0)
                return r;
        return json_print(record, arg_json == JSON_PRETTY, stdout);
}

int verb_service_create(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *spec = NULL;
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

        r = spec_finish(spec, argc > 0 ? argv[0] : NULL, tail, "create");
        if (r < 0)
                return r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        return send_spec(bus, "CreateService", NULL, spec, "create");
}

/* The spec the daemon holds now: the Service object's Spec property, which is exactly what
 * CreateService()/UpdateService() accept (the record from GetService() may carry more). */
static int get_current_spec(sd_bus *bus, const char *name, json_object **ret) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL, *text = NULL, *msg = NULL;
        _cleanup_(json_object_putp) json_object *record = NULL, *spec = NULL;
        int r;

        /* GetService() first, so that an unknown name gets gatewayd's own error message. */
        r = service_get_json(bus, name, &record);
        if (r < 0)
                return r;

        r = ctl_service_path(name, &path);
        if (r < 0)
                return log_oom();
        r = sd_bus_get_property_string(bus, GATEWAY_BUS_NAME, path, GATEWAY_SERVICE_INTERFACE, "Spec",
                                       &error, &text);
        if (r < 0) {
                log_debug("Cannot read the Spec property (%s), updating from the record.",
                          ctl_bus_error_message(&error, r));
                *ret = TAKE_PTR(record);
                return 0;
        }

        r = json_parse_text(text, &spec, &msg);
        if (r < 0)
                return log_error_errno(r, "gatewayd sent an invalid Spec: %s", strna(msg));
        if (!json_object_is_type(spec, json_type_object))
                return log_error_errno(EBADMSG, "gatewayd sent a Spec that is not a JSON object.");
        *ret = TAKE_PTR(spec);
        return 0;
}

int verb_service_update(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *spec = NULL;
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
                r = get_current_spec(bus, argv[0], &spec);
        if (r < 0)
                return r;

        r = spec_finish(spec, argv[0], tail, "update");
        if (r < 0)
                return r;
        return send_spec(bus, "UpdateService", argv[0], spec, "update");
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
