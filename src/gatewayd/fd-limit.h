/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Every HTTP connection costs gatewayd a descriptor (two while polkit needs the peer's pidfd), so
 * it raises RLIMIT_NOFILE's soft limit to the hard limit at start, as systemd does for itself.
 * Children must not inherit that: select() breaks on descriptors >= 1024, and jobs should see
 * the limit the unit configured. */

/* Raises the soft limit to the hard limit and remembers the soft limit it started with. Failure
 * is only logged: the HTTP server plans with whatever limit is in effect. */
void fd_limit_raise(void);

/* In a forked child before exec: back to the soft limit gatewayd was started with.
 * Async-signal-safe. */
void fd_limit_restore(void);
