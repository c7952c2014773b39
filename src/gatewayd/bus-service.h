/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "service.h"

#define SERVICE_OBJECT_PREFIX "/org/gatewayd/Gateway1/service"

/* The org.gatewayd.Gateway1.Service objects, one per service, found through a fallback vtable
 * so that thousands of services cost no per-object registration. */
int bus_service_register(Manager *m);

void bus_service_emit_added(Service *s);
void bus_service_emit_changed(Service *s);
void bus_service_emit_removed(Service *s);
