/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "ctl-bus.h"
#include "ctl-show.h"
#include "ctl-status.h"
#include "ctl-util.h"
#include "ctl.h"
#include "json-util.h"
#include "log.h"

/* Members of GetStatus() with a label of their own; "seconds" ones are shown as time spans.
 * Members not listed here are shown under their JSON names, so a newer daemon's additions
 * still appear. */
static const struct {
        const char *key, *label;
        bool seconds;
} status_fields[] = {
        { "runtimeDirectory", "Runtime dir", false },
        { "configFile", "Config file", false },
        { "uptimeSec", "Uptime", true },
        { "idleTimeoutSec", "Idle timeout", true },
};

/* Shown from the typed properties instead (or with a label above). */
static const char * const status_shown[] = {
        "version", "stateDirectory", "services", "runtimeDirectory", "configFile", "uptimeSec",
        "idleTimeoutSec", NULL,
};

static void show_status_member(json_object *status, const char *key, const char *label, bool seconds) {
        char buf[FORMAT_TIMESPAN_MAX];
        json_object *v;

        if (!json_object_object_get_ex(status, key, &v))
                return;
        if (seconds && json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0)
                show_field(label, json_object_get_int64(v) == 0 && streq(key, "idleTimeoutSec")
                                          ? "off"
                                          : format_timespan_sec(buf, sizeof(buf), (uint64_t) json_object_get_int64(v)));
        else if (json_object_is_type(v, json_type_null))
                show_field(label, NULL);
        else
                show_field(label, json_object_get_string(v));
}

static int read_properties(sd_bus *bus, char **version, char **state_dir, uint32_t *n_services) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_string(bus, GATEWAY_BUS_NAME, GATEWAY_OBJECT_PATH, GATEWAY_MANAGER_INTERFACE,
                                       "Version", &error, version);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, GATEWAY_BUS_NAME, GATEWAY_OBJECT_PATH,
                                               GATEWAY_MANAGER_INTERFACE, "StateDirectory", &error, state_dir);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, GATEWAY_BUS_NAME, GATEWAY_OBJECT_PATH,
                                                GATEWAY_MANAGER_INTERFACE, "NServices", &error, 'u', n_services);
        if (r < 0)
                return log_error_errno(r, "Failed to read gatewayd's properties: %s",
                                       ctl_bus_error_message(&error, r));
        return 0;
}

int verb_status(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_free_ char *version = NULL, *state_dir = NULL;
        _cleanup_(json_object_putp) json_object *status = NULL;
        uint32_t n_services = 0;
        size_t width;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;

        r = ctl_call_manager_json(bus, "get status", "GetStatus", &status, NULL);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF)
                return json_print(status, arg_json == JSON_PRETTY, stdout);

        r = read_properties(bus, &version, &state_dir, &n_services);
        if (r < 0)
                return r;

        width = MAX((size_t) SHOW_LABEL_WIDTH, show_json_fields_label_width(status, status_shown));
        for (size_t i = 0; i < ELEMENTSOF(status_fields); i++)
                width = MAX(width, strlen(status_fields[i].label) + 1);
        show_set_label_width(width);

        show_field("Daemon", "gatewayd " GATEWAY_BUS_NAME);
        show_field("Version", version);
        show_field("Client", "gatewayctl " GATEWAYD_VERSION);
        show_field("State dir", state_dir);
        for (size_t i = 0; i < ELEMENTSOF(status_fields); i++)
                show_status_member(status, status_fields[i].key, status_fields[i].label, status_fields[i].seconds);
        show_fieldf("Services", "%" PRIu32, n_services);
        /* Whatever else the daemon reports, under its JSON names. */
        show_json_fields(status, status_shown);
        return 0;
}
