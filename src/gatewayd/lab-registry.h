/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "gw-error.h"
#include "lab.h"

/* The lab definitions: like the service registry, every change is committed to the database
 * first and then applied to the in-memory map. Authorization is the caller's job. */

int lab_registry_load(Manager *m);
void lab_registry_free(Manager *m);

Lab *lab_registry_get(Manager *m, const char *name);
/* Creates the lab or replaces its definition (PUT); *ret_created says which. */
int lab_registry_put(Manager *m, const char *name, json_object *spec, Lab **ret, bool *ret_created, GwError *e);
int lab_registry_remove(Manager *m, const char *name, GwError *e);

/* All labs sorted by name (borrowed pointers, NULL-terminated; free the array only). */
Lab **lab_registry_list(Manager *m, size_t *ret_n);
