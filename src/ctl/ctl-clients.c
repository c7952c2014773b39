/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl-bus.h"
#include "ctl-listing.h"
#include "ctl-scopes.h"
#include "ctl-clients.h"
#include "ctl-table.h"
#include "ctl-tokens.h"
#include "ctl-util.h"
#include "ctl.h"
#include "json-util.h"
#include "log.h"

ClientArgs arg_client = {};

void client_args_done(ClientArgs *a) {
        free(a->name);
        a->name = NULL;
}

int verb_client_create(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        json_object *options, *client = NULL, *id, *secret;
        int r;

        options = json_object_new_object();
        if (!options)
                return log_oom();
        if (arg_client.name)
                json_object_object_add(options, "name", json_object_new_string(arg_client.name));
        ctl_options_add_scope(options);

        r = ctl_bus_connect(&bus);
        if (r >= 0)
                r = ctl_call_manager_json(bus, "create a client", "CreateClient", &client, "s", json_text(options));
        json_object_put(options);
        if (r < 0)
                return r;

        if (arg_json != JSON_OFF) {
                r = json_print(client, arg_json == JSON_PRETTY, stdout);
                json_object_put(client);
                return r;
        }
        json_object_object_get_ex(client, "clientId", &id);
        json_object_object_get_ex(client, "clientSecret", &secret);
        /* Id and secret on stdout, one a line (for scripts); the explanation goes to stderr. */
        printf("%s\n%s\n", json_object_get_string(id), json_object_get_string(secret));
        if (!arg_quiet)
                fprintf(stderr, "Client id (first line) and secret (second line); the secret is shown only now.\n"
                                "Get a token with them at POST /token on gatewayd's TCP/TLS listeners\n"
                                "(OAuth2 client credentials, e.g. PlanQK's service SDK).\n");
        json_object_put(client);
        return 0;
}

int verb_client_list(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        json_object *a = NULL;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        r = ctl_call_manager(bus, "ListClients", &error, &reply, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to list clients: %s", ctl_bus_error_message(&error, r));
        r = sd_bus_message_enter_container(reply, 'a', "(ssttas)");
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");

        if (arg_json != JSON_OFF)
                a = json_object_new_array();
        else {
                t = table_new("ID", "NAME", "CREATED", "LAST USED", "SCOPE", NULL);
                if (!t)
                        return log_oom();
                table_set_header(t, arg_legend);
        }
        while ((r = sd_bus_message_enter_container(reply, 'r', "ssttas")) > 0) {
                char created[64], used[64], scope[64] = "";
                json_object *scopes = json_object_new_array();
                const char *id, *name;
                uint64_t c, u;

                r = sd_bus_message_read(reply, "sstt", &id, &name, &c, &u);
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
                        json_object_object_add(o, "clientId", json_object_new_string(id));
                        json_object_object_add(o, "name", json_object_new_string(name));
                        json_object_object_add(o, "createdUsec", json_object_new_int64((int64_t) c));
                        json_object_object_add(o, "lastUsedUsec", json_object_new_int64((int64_t) u));
                        json_object_object_add(o, "scope", scopes);
                        json_object_array_add(a, o);
                        continue;
                }
                json_object_put(scopes);
                r = table_add_row(t, id, *name ? name : "-", format_timestamp_usec(created, sizeof(created), c),
                                  u > 0 ? format_timestamp_usec(used, sizeof(used), u) : "never", scope);
                if (r < 0)
                        return log_oom();
        }
        return ctl_print_listing(r, a, t, "client", "clients");
}

int verb_client_rm(int argc, char *argv[], char *tail[]) {
        return ctl_call_manager_each_id("RemoveClient", "remove", "client", argc, argv);
}
