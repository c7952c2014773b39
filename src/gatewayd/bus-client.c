/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager's client methods: the D-Bus side of /v1/clients (auth-client.c). D-Bus callers are
 * always local, identified by the bus. Removing someone else's client is like revoking someone
 * else's token (bus-token.c): org.gatewayd.manage-tokens, otherwise NotFound. */
#include "auth-client.h"
#include "auth-token.h"
#include "bus-client.h"
#include "bus-util.h"
#include "json-util.h"
#include "manager.h"
#include "polkit.h"

int bus_method_create_client(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_free_ char *name = NULL;
        Manager *m = userdata;
        json_object *options = NULL, *o = NULL;
        const char *text;
        unsigned scopes = 0;
        Caller caller;
        int r;

        r = sd_bus_message_read(message, "s", &text);
        if (r < 0)
                return r;
        r = bus_get_caller(message, &caller);
        if (r < 0)
                return r;
        if (*text) {
                if (bus_parse_json_argument(text, "options_json", &options, &e) < 0)
                        return gw_error_to_bus(&e, error);
                if (options)
                        r = client_parse_request(options, &scopes, &name, &e);
                json_object_put(options);
                if (r < 0)
                        return gw_error_to_bus(&e, error);
        }
        if (client_create(m, &caller, scopes, name, &o, &e) < 0)
                return gw_error_to_bus(&e, error);
        r = sd_bus_reply_method_return(message, "s", json_text(o));
        json_object_put(o);
        return r;
}

static int append_client(sd_bus_message *reply, const ClientInfo *c) {
        int r;

        r = sd_bus_message_open_container(reply, 'r', "ssttas");
        if (r >= 0)
                r = sd_bus_message_append(reply, "sstt", c->id, c->name ?: "", c->created_usec, c->last_used_usec);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "s");
        for (unsigned bit = 1; r >= 0 && bit & AUTH_SCOPE_ALL; bit <<= 1)
                if (c->scopes & bit)
                        r = sd_bus_message_append(reply, "s", auth_scope_to_string(bit));
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

int bus_method_list_clients(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Manager *m = userdata;
        ClientInfo *l = NULL;
        Caller caller;
        size_t n = 0;
        int r;

        r = bus_get_caller(message, &caller);
        if (r < 0)
                return r;
        if (client_list_infos(m, caller.uid, &l, &n, &e) < 0)
                return gw_error_to_bus(&e, error);
        r = sd_bus_message_new_method_return(message, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssttas)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = append_client(reply, &l[i]);
        client_infos_free(l, n);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

typedef struct RemoveClientCall {
        Manager *manager;
        sd_bus_message *message;
        char *id;
} RemoveClientCall;

static void remove_client_call_free(RemoveClientCall *c) {
        if (!c)
                return;
        sd_bus_message_unref(c->message);
        free(c->id);
        free(c);
}

static int remove_now(Manager *m, sd_bus_message *message, const char *id, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        if (client_remove(m, id, &e) < 0)
                return gw_error_to_bus(&e, error);
        return sd_bus_reply_method_return(message, NULL);
}

static int no_such_client(const char *id, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        gw_error_set(&e, GW_ERROR_NOT_FOUND, "No client '%s'.", id);
        return gw_error_to_bus(&e, error);
}

static void on_remove_checked(int r, const char *msg, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        RemoveClientCall *c = userdata;

        if (r > 0)
                r = remove_now(c->manager, c->message, c->id, &error);
        else
                r = no_such_client(c->id, &error);   /* not yours: it does not exist for you */
        if (r < 0 && sd_bus_error_is_set(&error))
                (void) sd_bus_reply_method_error(c->message, &error);
        else if (r < 0)
                (void) sd_bus_reply_method_errno(c->message, r, NULL);
        manager_touch(c->manager);
        remove_client_call_free(c);
}

int bus_method_remove_client(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        RemoveClientCall *c;
        const char *id;
        Caller caller;
        uid_t owner;
        int r;

        r = sd_bus_message_read(message, "s", &id);
        if (r < 0)
                return r;
        r = bus_get_caller(message, &caller);
        if (r < 0)
                return r;
        r = client_owner(m, id, &owner);
        if (r == -ENOENT)
                return no_such_client(id, error);
        if (r < 0)
                return r;
        if (owner == caller.uid)
                return remove_now(m, message, id, error);

        c = calloc(1, sizeof(RemoveClientCall));
        if (!c || !(c->id = strdup(id))) {
                free(c);
                return -ENOMEM;
        }
        c->manager = m;
        c->message = sd_bus_message_ref(message);
        r = polkit_check(m, &caller, ACTION_MANAGE_TOKENS, sd_bus_message_get_allow_interactive_authorization(message) > 0,
                         on_remove_checked, c);
        if (r == 0)
                return 1;  /* the reply comes from on_remove_checked() */
        remove_client_call_free(c);
        if (r > 0)
                return remove_now(m, message, id, error);
        return no_such_client(id, error);
}
