/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

typedef struct Manager Manager;

#define LAB_OBJECT_PREFIX "/org/gatewayd/Gateway1/lab"

/* The org.gatewayd.Gateway1.Lab objects, one per lab definition (fallback vtable, as for
 * services), and the manager's lab methods (docs/dbus-api.md). Instances are not objects: each
 * user sees only their own, so they are read through methods that know the caller. */
int bus_lab_register(Manager *m);

/* ObjectManager/PropertiesChanged signals for a committed change, whichever surface made it. */
typedef struct Lab Lab;
void bus_lab_emit_added(Lab *l);
void bus_lab_emit_changed(Lab *l);
void bus_lab_emit_removed(Lab *l);

int bus_method_list_labs(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_get_lab(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_put_lab(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_remove_lab(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_start_lab_instance(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_list_lab_instances(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_get_lab_instance(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_remove_lab_instance(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_renew_lab_instance_token(sd_bus_message *message, void *userdata, sd_bus_error *error);
