/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the D-Bus methods of tokens (bus-token.c) and clients (bus-client.c) have in common. */
#include "auth-source.h"
#include "bus-credentials.h"
#include "bus-util.h"
#include "gw-error.h"

int bus_read_credential_options(sd_bus_message *message, Caller *caller, json_object **ret, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *text;
        int r;

        *ret = NULL;
        r = sd_bus_message_read(message, "s", &text);
        if (r < 0)
                return r;
        r = bus_get_caller(message, caller);
        if (r < 0)
                return r;
        if (*text && bus_parse_json_argument(text, "options_json", ret, &e) < 0)
                return gw_error_to_bus(&e, error);
        return 0;
}

int bus_append_scopes(sd_bus_message *reply, unsigned scopes) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "s");
        for (unsigned bit = 1; r >= 0 && bit & AUTH_SCOPE_ALL; bit <<= 1)
                if (scopes & bit)
                        r = sd_bus_message_append(reply, "s", auth_scope_to_string(bit));
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}
