/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Who is asking. Filled only from kernel- or bus-provided credentials (SO_PEERCRED /
 * SO_PEERPIDFD on the HTTP socket, the bus daemon's view of the sender on D-Bus), never from
 * anything in the request itself. */
typedef struct Caller {
        uid_t uid;
        gid_t gid;
        pid_t pid;
        int pidfd;              /* HTTP callers: pins the process across a polkit check; -1 if none */
        const char *bus_sender; /* D-Bus callers: unique name, borrowed from the message */
} Caller;

static inline bool caller_is_root(const Caller *c) {
        return c->uid == 0;
}
