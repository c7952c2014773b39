/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* SIGTERM/SIGINT (gatewayd cancelling a pull, a user's ^C) set a flag that long-running work
 * polls: transfers abort from libcurl's progress callback, the applier and decoders stop at the
 * next block, mksquashfs is terminated. The pull then fails cleanly and removes its staging
 * tree instead of dying with it half-written. */
void cancel_setup(void);
bool cancelled(void);
