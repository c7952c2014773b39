/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "ctl-table.h"

/* The end of a list verb that filled either a JSON array a (--json) or the table t from a bus
 * reply: r is the reading loop's result (negative: the reply did not parse). Prints the one that
 * was filled and frees a. Returns 0 or a negative errno, already logged. */
int ctl_print_listing(int r, json_object *a, Table *t, const char *singular, const char *plural);
