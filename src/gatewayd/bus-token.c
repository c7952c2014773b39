/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager's token methods: the D-Bus side of /v1/tokens (auth-token.c). D-Bus callers are
 * always local, identified by the bus. */
#include "auth-token.h"
#include "bus-credentials.h"
#include "bus-owned.h"
#include "bus-token.h"
#include "bus-util.h"
#include "json-util.h"
#include "manager.h"

int bus_method_create_token(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Manager *m = userdata;
        json_object *options, *o = NULL;
        uint64_t expires_in = 0;
        unsigned scopes = 0;
        Caller caller;
        int r;

        r = bus_read_credential_options(message, &caller, &options, error);
        if (r < 0)
                return r;
        if (options) {
                r = token_parse_request(options, &expires_in, &scopes, &e);
                json_object_put(options);
                if (r < 0)
                        return gw_error_to_bus(&e, error);
        }
        if (token_create(m, &caller, expires_in, scopes, &o, &e) < 0)
                return gw_error_to_bus(&e, error);
        return bus_reply_json(message, o);
}

static int append_token(sd_bus_message *reply, const TokenInfo *t) {
        int r;

        r = sd_bus_message_open_container(reply, 'r', "sttas");
        if (r >= 0)
                r = sd_bus_message_append(reply, "stt", t->id, t->created_usec, t->expires_usec);
        if (r >= 0)
                r = bus_append_scopes(reply, t->scopes);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

int bus_method_list_tokens(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Manager *m = userdata;
        Caller caller;
        TokenInfo *l = NULL;
        size_t n = 0;
        int r;

        r = bus_get_caller(message, &caller);
        if (r < 0)
                return r;
        if (token_list_infos(m, caller.uid, &l, &n, &e) < 0)
                return gw_error_to_bus(&e, error);
        r = sd_bus_message_new_method_return(message, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sttas)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = append_token(reply, &l[i]);
        free(l);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int bus_method_revoke_token(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_remove_owned(userdata, message, &token_owned_kind, error);
}
