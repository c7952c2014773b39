/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "gw-error.h"
#include "service.h"

/* The service registry: the operations both surfaces share. Every change is committed to the
 * database first, then applied to the in-memory map, then announced on the bus, so a client that
 * sees a signal can always read the state it describes, even after a crash. Authorization is the
 * caller's job (the surfaces ask polkit before calling in). */

int service_registry_load(Manager *m);
void service_registry_free(Manager *m);

Service *service_registry_get(Manager *m, const char *name);
int service_registry_create(Manager *m, json_object *spec, Service **ret, GwError *e);
int service_registry_update(Manager *m, const char *name, json_object *spec, Service **ret, GwError *e);
int service_registry_remove(Manager *m, const char *name, GwError *e);

/* All services sorted by name (borrowed pointers, NULL-terminated; free the array only). */
Service **service_registry_list(Manager *m, size_t *ret_n);
