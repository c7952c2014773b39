/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "ctl-listing.h"
#include "ctl-util.h"
#include "ctl.h"
#include "log.h"

int ctl_print_listing(int r, json_object *a, Table *t, const char *singular, const char *plural) {
        if (r < 0) {
                json_object_put(a);
                return log_error_errno(r, "Failed to parse the reply: %m");
        }
        if (a) {
                r = json_print(a, arg_json == JSON_PRETTY, stdout);
                json_object_put(a);
                return r;
        }
        return table_print_listing(t, arg_legend, singular, plural);
}
