/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "job.h"

#define JOB_INTERFACE "org.gatewayd.Gateway1.Job"

/* org.gatewayd.Gateway1.Job objects (fallback vtable) and the Manager's job methods. A job
 * object resolves only for its owner and root, so other users cannot read it. */
int bus_job_register(Manager *m);

void bus_job_emit_added(Job *j);
void bus_job_emit_changed(Job *j);
void bus_job_emit_removed(Job *j);
void bus_job_emit_interim(Job *j, unsigned index, const char *json_text);

/* Manager methods. */
int bus_method_submit_job(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_list_jobs(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_remove_job(sd_bus_message *message, void *userdata, sd_bus_error *error);
