/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "owned-kind.h"

/* The body of a Remove method taking (s id), for one kind of owned object (owned-kind.h).
 * Returns what an sd-bus method handler should return. */
int bus_remove_owned(Manager *m, sd_bus_message *message, const OwnedKind *how, sd_bus_error *error);
