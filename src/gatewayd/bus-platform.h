/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

typedef struct Manager Manager;

#define PLATFORM_OBJECT_PREFIX "/org/gatewayd/Gateway1/platform"
#define PLATFORM_INTERFACE "org.gatewayd.Gateway1.Platform"

/* The org.gatewayd.Gateway1.Platform objects, one per configured platform (fallback vtable, as
 * for the other objects; platforms come from the configuration and never change while gatewayd
 * runs, so they send no InterfacesAdded/Removed). */
int bus_platform_register(Manager *m);

/* Manager methods (listed in bus-manager.c's vtable). */
int bus_method_list_platforms(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_get_platform(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_drain_node(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_resume_node(sd_bus_message *message, void *userdata, sd_bus_error *error);
