/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ctl-bus.h"
#include "ctl-polkit-agent.h"
#include "ctl-util.h"
#include "ctl.h"
#include "log.h"

/* gatewayd's named errors (docs/dbus-api.md), mapped to errno values so that callers can react
 * to "not found" and friends without comparing strings. */
static const sd_bus_error_map gateway_errors[] = {
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.InvalidArgument", EINVAL),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.NoSuchService", ENOENT),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.NoSuchImage", ENOENT),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.NoSuchJob", ENOENT),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.AlreadyExists", EEXIST),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.AccessDenied", EACCES),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.LimitExceeded", EUSERS),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.Unavailable", EHOSTDOWN),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.Internal", EIO),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.NotFound", ENOENT),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.BadRequest", EBADMSG),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.Conflict", EBUSY),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.InsufficientStorage", ENOSPC),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.NoSuchPlatform", ENOENT),
        SD_BUS_ERROR_MAP("org.gatewayd.Gateway1.Error.NoSuchNode", ENOENT),
        SD_BUS_ERROR_MAP_END
};

/* How long a call may take when polkit may be asking someone for a password. */
#define CTL_INTERACTIVE_TIMEOUT_USEC (UINT64_C(5) * 60 * 1000000)

/* Whether this run lets polkit ask for a password; explains an authorization failure. */
static bool interactive = false;

int ctl_bus_connect(sd_bus **ret) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        int r;

        (void) sd_bus_error_add_map(gateway_errors);

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus%s: %m",
                                       getenv("DBUS_SYSTEM_BUS_ADDRESS") ? " ($DBUS_SYSTEM_BUS_ADDRESS)" : "");

        /* Like systemd's tools: let polkit ask for a password only if someone can type it. */
        interactive = arg_ask_password && isatty(STDIN_FILENO);
        r = sd_bus_set_allow_interactive_authorization(bus, interactive);
        if (r < 0)
                return log_error_errno(r, "Failed to set up interactive authorization: %m");

        *ret = TAKE_PTR(bus);
        return 0;
}

static const char *error_fixed_message(const sd_bus_error *e) {
        if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                return "gatewayd is not running (" GATEWAY_BUS_NAME " is not on the system bus and cannot be "
                       "activated)";
        if (sd_bus_error_has_names(e, SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_TIMEOUT))
                return "gatewayd did not answer in time";
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED) && (!e->message || !*e->message))
                return "Access denied by the D-Bus policy";
        return NULL;
}

const char *ctl_bus_error_message(const sd_bus_error *e, int r) {
        static char *buf = NULL;
        _cleanup_free_ char *escaped = NULL;
        const char *fixed;
        bool hint, denied;

        if (!e || !sd_bus_error_is_set(e))
                return strerror(abs(r));
        fixed = error_fixed_message(e);
        if (fixed)
                return fixed;
        if (!e->message || !*e->message)
                return strerror(abs(r));

        /* The message may quote names a user chose: keep their control characters away from
         * the terminal. A refusal is easier to understand if it says that nobody was asked. */
        escaped = escape_for_terminal(e->message);
        if (!escaped)
                return e->message;
        hint = !interactive && sd_bus_error_has_names(e, "org.gatewayd.Gateway1.Error.AccessDenied",
                                                      SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED);
        /* polkit's reasons ("Interactive authentication required.") do not say what they
         * mean for the command. */
        denied = sd_bus_error_has_name(e, "org.gatewayd.Gateway1.Error.AccessDenied") &&
                 strncasecmp(escaped, "Access denied", strlen("Access denied")) != 0;
        buf = mfree(buf);
        if (asprintf(&buf, "%s%s%s", denied ? "Access denied: " : "", escaped,
                     hint ? " (no password was asked for: standard input is not a terminal, or "
                            "--no-ask-password was given)" : "") < 0) {
                buf = NULL;
                return e->message;
        }
        return buf;
}

static int call_manager_va(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **reply,
                           const char *types, va_list ap) {
        _cleanup_bus_message_unref_ sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, GATEWAY_BUS_NAME, GATEWAY_OBJECT_PATH,
                                           GATEWAY_MANAGER_INTERFACE, method);
        if (r < 0)
                return r;
        if (types) {
                r = sd_bus_message_appendv(m, types, ap);
                if (r < 0)
                        return r;
        }
        /* Someone may be typing a password while polkit waits: give them time. */
        return sd_bus_call(bus, m, interactive ? CTL_INTERACTIVE_TIMEOUT_USEC : 0, error, reply);
}

int ctl_call_manager(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **reply,
                     const char *types, ...) {
        va_list ap;
        int r;

        va_start(ap, types);
        r = call_manager_va(bus, method, error, reply, types, ap);
        va_end(ap);
        return r;
}

int ctl_call_manager_json(sd_bus *bus, const char *what, const char *method, json_object **ret,
                          const char *types, ...) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_free_ char *msg = NULL;
        const char *text;
        va_list ap;
        int r;

        va_start(ap, types);
        r = call_manager_va(bus, method, &error, &reply, types, ap);
        va_end(ap);
        if (r < 0)
                return log_error_errno(r, "Failed to %s: %s", what, ctl_bus_error_message(&error, r));

        r = sd_bus_message_read(reply, "s", &text);
        if (r < 0)
                return log_error_errno(r, "Failed to parse reply of %s(): %m", method);

        r = json_parse_text(text, ret, &msg);
        if (r < 0)
                return log_error_errno(r, "gatewayd sent invalid JSON from %s(): %s", method, strna(msg));
        return 0;
}

int ctl_service_path(const char *name, char **ret) {
        return sd_bus_path_encode(GATEWAY_SERVICE_PATH_PREFIX, name, ret);
}

int ctl_call_manager_each_id(const char *method, const char *action, const char *noun, int n, char *ids[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_polkit_agent_ pid_t agent = 0;
        int r, ret = 0;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        agent = ctl_polkit_agent_open();

        for (int i = 0; i < n; i++) {
                _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;

                r = ctl_call_manager(bus, method, &error, NULL, "s", ids[i]);
                if (r < 0) {
                        log_error_errno(r, "Failed to %s %s %s: %s", action, noun, ids[i],
                                        ctl_bus_error_message(&error, r));
                        if (ret == 0)
                                ret = r;
                }
        }
        return ret;
}
