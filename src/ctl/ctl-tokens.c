/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl-bus.h"
#include "ctl-listing.h"
#include "ctl-scopes.h"
#include "ctl-polkit-agent.h"
#include "ctl-table.h"
#include "ctl-tokens.h"
#include "ctl-util.h"
#include "ctl.h"
#include "json-util.h"
#include "log.h"

TokenArgs arg_token = {};

void token_args_done(TokenArgs *a) {
        strv_free(a->scope);
        a->scope = NULL;
}

int verb_token_create(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        json_object *options, *token = NULL, *v;
        int r;

        options = json_object_new_object();
        if (!options)
                return log_oom();
        if (arg_token.expires_in_sec > 0)
                json_object_object_add(options, "expiresIn", json_object_new_int64((int64_t) arg_token.expires_in_sec));
        ctl_options_add_scope(options);

        r = ctl_bus_connect(&bus);
        if (r >= 0)
                r = ctl_call_manager_json(bus, "create a token", "CreateToken", &token, "s", json_text(options));
        json_object_put(options);
        if (r < 0)
                return r;

        if (arg_json != JSON_OFF)
                r = json_print(token, arg_json == JSON_PRETTY, stdout);
        else if (arg_quiet) {
                json_object_object_get_ex(token, "token", &v);
                printf("%s\n", json_object_get_string(v));
        } else {
                json_object *id, *expires;
                json_object_object_get_ex(token, "token", &v);
                json_object_object_get_ex(token, "id", &id);
                json_object_object_get_ex(token, "expiresAt", &expires);
                printf("%s\n", json_object_get_string(v));
                /* The secret goes to stdout alone; the rest is for the human. */
                fprintf(stderr, "Token %s, valid until %s. It is shown only now; use it as\n"
                                "\"Authorization: Bearer <token>\" on gatewayd's TCP/TLS listeners.\n",
                        json_object_get_string(id), json_object_get_string(expires));
        }
        json_object_put(token);
        return r;
}

int verb_token_list(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        json_object *a = NULL;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        r = ctl_call_manager(bus, "ListTokens", &error, &reply, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to list tokens: %s", ctl_bus_error_message(&error, r));
        r = sd_bus_message_enter_container(reply, 'a', "(sttas)");
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");

        if (arg_json != JSON_OFF)
                a = json_object_new_array();
        else {
                t = table_new("ID", "CREATED", "EXPIRES", "SCOPE", NULL);
                if (!t)
                        return log_oom();
                table_set_header(t, arg_legend);
        }
        while ((r = sd_bus_message_enter_container(reply, 'r', "sttas")) > 0) {
                char created[64], expires[64], scope[64] = "";
                json_object *scopes = json_object_new_array();
                const char *id;
                uint64_t c, e;

                r = sd_bus_message_read(reply, "stt", &id, &c, &e);
                if (r >= 0)
                        r = ctl_read_scopes(reply, scopes, scope, sizeof(scope));
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0) {
                        json_object_put(scopes);
                        break;
                }
                if (a) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "id", json_object_new_string(id));
                        json_object_object_add(o, "createdUsec", json_object_new_int64((int64_t) c));
                        json_object_object_add(o, "expiresUsec", json_object_new_int64((int64_t) e));
                        json_object_object_add(o, "scope", scopes);
                        json_object_array_add(a, o);
                        continue;
                }
                json_object_put(scopes);
                r = table_add_row(t, id, format_timestamp_usec(created, sizeof(created), c),
                                  format_timestamp_usec(expires, sizeof(expires), e), scope);
                if (r < 0)
                        return log_oom();
        }
        return ctl_print_listing(r, a, t, "token", "tokens");
}

int verb_token_revoke(int argc, char *argv[], char *tail[]) {
        return ctl_call_manager_each_id("RevokeToken", "revoke", "token", argc, argv);
}
