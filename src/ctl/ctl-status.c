/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ctl-bus.h"
#include "ctl-show.h"
#include "ctl-status.h"
#include "ctl-util.h"
#include "ctl.h"
#include "log.h"

/* Members of GetStatus() that the typed properties already show. */
static const char * const status_shown[] = {
        "version", "stateDirectory", "state_directory", "nServices", "n_services", NULL,
};

int verb_status(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_free_ char *version = NULL, *state_dir = NULL;
        json_object *status = NULL;
        uint32_t n_services = 0;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;

        r = ctl_call_manager_json(bus, "get status", "GetStatus", &status, NULL);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                r = json_print(status, arg_json == JSON_PRETTY, stdout);
                json_object_put(status);
                return r;
        }

        r = sd_bus_get_property_string(bus, GATEWAY_BUS_NAME, GATEWAY_OBJECT_PATH, GATEWAY_MANAGER_INTERFACE,
                                       "Version", &error, &version);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, GATEWAY_BUS_NAME, GATEWAY_OBJECT_PATH,
                                               GATEWAY_MANAGER_INTERFACE, "StateDirectory", &error, &state_dir);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, GATEWAY_BUS_NAME, GATEWAY_OBJECT_PATH,
                                                GATEWAY_MANAGER_INTERFACE, "NServices", &error, 'u', &n_services);
        if (r < 0) {
                json_object_put(status);
                return log_error_errno(r, "Failed to read gatewayd's properties: %s",
                                       ctl_bus_error_message(&error, r));
        }

        show_set_label_width(MAX((size_t) SHOW_LABEL_WIDTH, show_json_fields_label_width(status, status_shown)));
        show_field("Daemon", "gatewayd " GATEWAY_BUS_NAME);
        show_field("Version", version);
        show_field("Client", "gatewayctl " GATEWAYD_VERSION);
        show_field("State dir", state_dir);
        show_fieldf("Services", "%" PRIu32, n_services);
        /* Whatever else the daemon reports (uptime, counts, paths), as it names it. */
        show_json_fields(status, status_shown);
        json_object_put(status);
        return 0;
}
