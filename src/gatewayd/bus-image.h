/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "image.h"

#define IMAGE_OBJECT_PREFIX "/org/gatewayd/Gateway1/image"

int bus_image_register(Manager *m);

void bus_image_emit_added(Image *i);
void bus_image_emit_changed(Image *i);
void bus_image_emit_progress(Image *i);
void bus_image_emit_removed(Image *i);

/* Manager methods (listed in bus-manager.c's vtable). */
int method_pull_image(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_list_images(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_get_image(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_remove_image(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_expire_image(sd_bus_message *message, void *userdata, sd_bus_error *error);
