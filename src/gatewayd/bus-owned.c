/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Removing a user's object over D-Bus, shared by RevokeToken, RemoveClient and RemoveJob. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus-owned.h"
#include "bus-util.h"
#include "manager.h"
#include "polkit.h"

typedef struct RemoveOwnedCall {
        Manager *manager;
        sd_bus_message *message;
        const OwnedKind *how;
        char *id;
} RemoveOwnedCall;

static void remove_owned_call_free(RemoveOwnedCall *c) {
        if (!c)
                return;
        sd_bus_message_unref(c->message);
        free(c->id);
        free(c);
}

static int remove_now(Manager *m, sd_bus_message *message, const OwnedKind *how, const char *id,
                      sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        if (how->remove(m, id, &e) < 0)
                return gw_error_to_bus(&e, error);
        return sd_bus_reply_method_return(message, NULL);
}

static int no_such_object(const OwnedKind *how, const char *id, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        gw_error_set(&e, how->not_found, "No %s '%s'.", how->noun, id);
        return gw_error_to_bus(&e, error);
}

static void on_remove_checked(int r, const char *msg, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        RemoveOwnedCall *c = userdata;

        if (r > 0)
                r = remove_now(c->manager, c->message, c->how, c->id, &error);
        else
                r = no_such_object(c->how, c->id, &error);   /* not yours: it does not exist for you */
        if (r < 0 && sd_bus_error_is_set(&error))
                (void) sd_bus_reply_method_error(c->message, &error);
        else if (r < 0)
                (void) sd_bus_reply_method_errno(c->message, r, NULL);
        manager_touch(c->manager);
        remove_owned_call_free(c);
}

int bus_remove_owned(Manager *m, sd_bus_message *message, const OwnedKind *how, sd_bus_error *error) {
        RemoveOwnedCall *c;
        const char *id;
        Caller caller;
        int r;

        r = sd_bus_message_read(message, "s", &id);
        if (r < 0)
                return r;
        r = bus_get_caller(message, &caller);
        if (r < 0)
                return r;
        r = how->is_own(m, id, &caller);
        if (r == -ENOENT)
                return no_such_object(how, id, error);
        if (r < 0)
                return r;
        if (r > 0)
                return remove_now(m, message, how, id, error);

        c = calloc(1, sizeof(RemoveOwnedCall));
        if (!c || !(c->id = strdup(id))) {
                free(c);
                return -ENOMEM;
        }
        c->manager = m;
        c->message = sd_bus_message_ref(message);
        c->how = how;
        r = polkit_check(m, &caller, how->action, sd_bus_message_get_allow_interactive_authorization(message) > 0,
                         on_remove_checked, c);
        if (r == 0)
                return 1;  /* the reply comes from on_remove_checked() */
        remove_owned_call_free(c);
        if (r > 0)
                return remove_now(m, message, how, id, error);
        return no_such_object(how, id, error);
}
