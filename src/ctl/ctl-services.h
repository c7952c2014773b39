/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "ctl-spec.h"

/* The options of "service create/update", filled in by gatewayctl.c's option parser. */
extern SpecChanges arg_spec;

/* GetService(name), parsed; logs "Failed to get service 'NAME': ..." on failure. */
int service_get_json(sd_bus *bus, const char *name, json_object **ret);

/* ctl-services.c: the verbs that look (services, service show). */
int verb_services(int argc, char *argv[], char *tail[]);
int verb_service_show(int argc, char *argv[], char *tail[]);

/* ctl-service-edit.c: the verbs that change (service create, update, rm). */
int verb_service_create(int argc, char *argv[], char *tail[]);
int verb_service_update(int argc, char *argv[], char *tail[]);
int verb_service_remove(int argc, char *argv[], char *tail[]);
