/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "caller.h"

typedef struct Manager Manager;

/* Called once with r > 0 if authorized, r == 0 if not, r < 0 if polkit could not be asked (then
 * the operation must be refused: an unreachable polkit never grants anything; -ESHUTDOWN: the
 * daemon is exiting, say Unavailable rather than AccessDenied). message explains a refusal for
 * the client. */
typedef void (*PolkitDone)(int r, const char *message, void *userdata);

/* Asks polkit whether the caller may perform the action, asynchronously: the event loop keeps
 * serving meanwhile. This is the one authorization check of every surface: for network callers
 * (TCP/TLS, caller_is_network()) it answers at once from the "Admins" list instead: 1, or
 * -EACCES. Queries beyond a small number in flight wait their turn (see polkit.c). Returns 1 when the answer is known at once (root is always an admin; the
 * callback is not called), 0 when the callback will be called, or a negative errno. */
int polkit_check(Manager *m, const Caller *caller, const char *action, bool interactive,
                 PolkitDone done, void *userdata);

/* Answers every pending query with -ESHUTDOWN (at shutdown, while requests can still be
 * answered). */
void polkit_queries_cancel(Manager *m);
