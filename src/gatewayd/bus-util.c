/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-util.h"
#include "gw-error.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "polkit.h"

typedef struct BusPendingCall {
        Manager *manager;
        sd_bus_message *message;
        BusAuthorizedHandler handler;
} BusPendingCall;

int bus_get_caller(sd_bus_message *message, Caller *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;
        gid_t gid = (gid_t) -1;
        pid_t pid = 0;
        int r;

        r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID | SD_BUS_CREDS_PID, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return r;
        (void) sd_bus_creds_get_egid(creds, &gid);
        (void) sd_bus_creds_get_pid(creds, &pid);

        *ret = (Caller) {
                .uid = uid, .gid = gid, .pid = pid, .pidfd = -1,
                .bus_sender = sd_bus_message_get_sender(message),
        };
        return 0;
}

static void reply_with_handler_result(BusPendingCall *p) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_rewind(p->message, true);
        if (r >= 0)
                r = p->handler(p->manager, p->message, &error);
        if (r < 0) {
                if (sd_bus_error_is_set(&error))
                        r = sd_bus_reply_method_error(p->message, &error);
                else
                        r = sd_bus_reply_method_errno(p->message, r, NULL);
                if (r < 0)
                        log_warning_errno(r, "Failed to send D-Bus error reply: %m");
        }
}

static void on_polkit_done(int r, const char *message, void *userdata) {
        BusPendingCall *p = userdata;

        if (r > 0)
                reply_with_handler_result(p);
        else {
                GwError e = { .code = r == -ESHUTDOWN ? GW_ERROR_UNAVAILABLE : GW_ERROR_ACCESS_DENIED,
                              .message = (char *) (message ?: "Access denied.") };
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                gw_error_to_bus(&e, &error);
                (void) sd_bus_reply_method_error(p->message, &error);
        }
        manager_touch(p->manager);
        sd_bus_message_unref(p->message);
        free(p);
}

int bus_verify_polkit_then(Manager *m, sd_bus_message *message, const char *action,
                           BusAuthorizedHandler handler, sd_bus_error *error) {
        BusPendingCall *p;
        Caller c;
        int r;

        r = bus_get_caller(message, &c);
        if (r < 0)
                return r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        *p = (BusPendingCall) { .manager = m, .message = sd_bus_message_ref(message), .handler = handler };

        r = polkit_check(m, &c, action, sd_bus_message_get_allow_interactive_authorization(message) > 0,
                         on_polkit_done, p);
        if (r == 0)
                return 1; /* reply comes from on_polkit_done() */

        sd_bus_message_unref(p->message);
        free(p);
        if (r < 0) {
                GwError e = { .code = GW_ERROR_ACCESS_DENIED,
                              .message = (char *) "Authorization could not be checked; only root may do this." };
                return gw_error_to_bus(&e, error);
        }
        return handler(m, message, error);
}

int bus_parse_json_argument(const char *text, const char *what, json_object **ret, GwError *e) {
        const char *reason;
        size_t offset;
        int r;

        r = json_parse_untrusted(text, strlen(text), ret, &offset, &reason);
        if (r == -ENOMEM)
                return gw_error_set_errno(e, r, "Out of memory.");
        if (r < 0)
                return gw_error_set(e, GW_ERROR_BAD_REQUEST, "%s is not valid JSON at offset %zu: %s", what, offset, reason);
        return 0;
}

int bus_property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", strempty(*(char **) userdata));
}

int bus_reply_json(sd_bus_message *message, json_object *o) {
        int r;

        if (!o)
                return -ENOMEM;
        r = sd_bus_reply_method_return(message, "s", json_text(o));
        json_object_put(o);
        return r;
}
