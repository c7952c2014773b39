/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager's client methods: the D-Bus side of /v1/clients (auth-client.c). D-Bus callers are
 * always local, identified by the bus. Removing someone else's client is like revoking someone
 * else's token (bus-token.c): org.gatewayd.manage-tokens, otherwise NotFound. */
#include "auth-client.h"
#include "bus-client.h"
#include "bus-credentials.h"
#include "bus-owned.h"
#include "bus-util.h"
#include "json-util.h"
#include "manager.h"

int bus_method_create_client(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_free_ char *name = NULL;
        Manager *m = userdata;
        json_object *options, *o = NULL;
        unsigned scopes = 0;
        Caller caller;
        int r;

        r = bus_read_credential_options(message, &caller, &options, error);
        if (r < 0)
                return r;
        if (options) {
                r = client_parse_request(options, &scopes, &name, &e);
                json_object_put(options);
                if (r < 0)
                        return gw_error_to_bus(&e, error);
        }
        if (client_create(m, &caller, scopes, name, &o, &e) < 0)
                return gw_error_to_bus(&e, error);
        return bus_reply_json(message, o);
}

static int append_client(sd_bus_message *reply, const ClientInfo *c) {
        int r;

        r = sd_bus_message_open_container(reply, 'r', "ssttas");
        if (r >= 0)
                r = sd_bus_message_append(reply, "sstt", c->id, c->name ?: "", c->created_usec, c->last_used_usec);
        if (r >= 0)
                r = bus_append_scopes(reply, c->scopes);
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

int bus_method_remove_client(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_remove_owned(userdata, message, &client_owned_kind, error);
}
