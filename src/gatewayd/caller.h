/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Who is asking. Filled only from kernel- or bus-provided credentials (SO_PEERCRED /
 * SO_PEERPIDFD on the HTTP socket, the bus daemon's view of the sender on D-Bus) or, on TCP/TLS
 * listeners, from a credential an identity source verified (auth-source.h), never from anything
 * else in the request. */
typedef struct Caller {
        uid_t uid;
        gid_t gid;
        pid_t pid;
        int pidfd;              /* HTTP callers: pins the process across a polkit check; -1 if none */
        const char *bus_sender; /* D-Bus callers: unique name, borrowed from the message */

        /* Network callers (TCP/TLS): the identity source that verified them ("token", …; NULL
         * for local callers), the local account's name, and what the credential allows
         * (AuthScope bits). polkit cannot judge them: admin rights come from "Admins". */
        const char *source;
        const char *name;
        unsigned scopes;
        /* The external user a site's token service vouched for, when it acts as a shared local
         * account ("localUser"): owner of its jobs and subject of the per-user limits together
         * with uid. NULL for everyone else. */
        const char *subject;
} Caller;

static inline bool caller_is_network(const Caller *c) {
        return c->source;
}

/* Root over the network is not root: a stolen token of root's must not be worth more than its
 * scopes and the Admins list allow. */
static inline bool caller_is_root(const Caller *c) {
        return c->uid == 0 && !caller_is_network(c);
}

/* The group a local caller's jobs and lab instances run with: the bus daemon does not always
 * pass the sender's gid; then the user's primary group, and for a user without a passwd entry
 * nobody's group. */
gid_t caller_gid(const Caller *c);
