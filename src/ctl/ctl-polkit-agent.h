/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

#include "macro.h"

/* A text-mode polkit authentication agent (pkttyagent) for the duration of a call that may
 * need authorization, as systemctl and machinectl do: without an agent, polkit can ask no one,
 * and an "auth_admin" action fails on a terminal without a desktop session. Started only when
 * stdin is a terminal and --no-ask-password was not given; a missing pkttyagent is not an
 * error (the call then fails or succeeds on its own). */

#define PKTTYAGENT_PATH "/usr/bin/pkttyagent"

/* Returns the agent's pid (> 0), or 0 if none was started. Waits until it is registered. */
pid_t ctl_polkit_agent_open(void);
/* Stops and reaps the agent; accepts 0. */
void ctl_polkit_agent_close(pid_t pid);

static inline void ctl_polkit_agent_closep(pid_t *pid) {
        ctl_polkit_agent_close(*pid);
}
#define _cleanup_polkit_agent_ _cleanup_(ctl_polkit_agent_closep)
