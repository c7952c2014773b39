/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct Manager Manager;

/* polkit's recent "yes" for the actions gatewayd's policy gives everyone (submit-job,
 * pull-image), per subject (a bus name, or a process by pid, start time and uid), kept
 * POLKIT_GRANT_USEC: a client submitting job after job over one connection is asked about once
 * instead of each time (a polkit round trip costs polkitd and the bus ~1 ms of CPU). Never for
 * admin actions, never a refusal: a site rule that takes the action away from someone takes
 * effect within that time for processes already granted it. polkit itself keeps admin
 * authorizations ("auth_admin_keep") for 5 minutes per subject. */
#define POLKIT_GRANT_USEC (5 * UINT64_C(1000000))

/* "<action> <subject>" for polkit_grants_*(); NULL when out of memory. */
char *polkit_grant_key(const char *action, const char *bus_sender, int pid, uint64_t start_time, unsigned uid);
bool polkit_grants_has(Manager *m, const char *key);
void polkit_grants_add(Manager *m, const char *key);
void polkit_grants_free(Manager *m);
