/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Scopes of tokens and clients, shared by ctl-tokens.c and ctl-clients.c. */
#include <stdio.h>
#include <string.h>

#include "ctl-scopes.h"
#include "ctl-tokens.h"

void ctl_options_add_scope(json_object *options) {
        json_object *a;

        if (!arg_token.scope)
                return;
        a = json_object_new_array();
        for (char **s = arg_token.scope; *s; s++)
                json_object_array_add(a, json_object_new_string(*s));
        json_object_object_add(options, "scope", a);
}

int ctl_read_scopes(sd_bus_message *reply, json_object *scopes, char *text, size_t size) {
        const char *s;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "s");
        while (r >= 0 && (r = sd_bus_message_read(reply, "s", &s)) > 0) {
                json_object_array_add(scopes, json_object_new_string(s));
                snprintf(text + strlen(text), size - strlen(text), "%s%s", *text ? "," : "", s);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        return r;
}
