/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ctl-spec.h"

/* The options of "service create/update", filled in by gatewayctl.c's option parser. */
extern SpecChanges arg_spec;

int verb_services(int argc, char *argv[], char *tail[]);
int verb_service_show(int argc, char *argv[], char *tail[]);
int verb_service_create(int argc, char *argv[], char *tail[]);
int verb_service_update(int argc, char *argv[], char *tail[]);
int verb_service_remove(int argc, char *argv[], char *tail[]);
