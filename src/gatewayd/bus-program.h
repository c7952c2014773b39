/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

/* Manager methods ListPrograms() → s json (the caller's program records, an array),
 * RunProgram(s title, s arguments_json, s env_json) → o job, RemoveProgram(s title):
 * docs/dbus-api.md. UploadProgram(s metadata_json, b replace) → s json: a program on an image of
 * its own, without an artifact (artifacts are uploaded over HTTP, docs/programs.md). */
int bus_method_list_programs(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_run_program(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_upload_program(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_remove_program(sd_bus_message *message, void *userdata, sd_bus_error *error);
/* RunProviderProgram(s provider, s title, s arguments_json, s env_json) → o job and
 * RemoveProviderProgram(s provider, s title): a provider's shared program (program-provider.h);
 * ListPrograms() lists those the caller sees too ("provider" set). */
int bus_method_run_provider_program(sd_bus_message *message, void *userdata, sd_bus_error *error);
#define bus_method_remove_provider_program bus_method_remove_program
