/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* "1048576", "512K", "16MiB", "64G", "3T", "100B": a byte count in powers of 1024, the grammar of
 * gatewayd's size keys and of the workers' size options (which gatewayd fills from those keys).
 * Upper-case units only, no fractions, nothing around the number; at most INT64_MAX (what SQLite
 * and off_t can hold). -EINVAL for what is not a size, -ERANGE for what is too large. 0 is a size:
 * callers for which it means nothing refuse it themselves. */
int parse_size(const char *s, uint64_t *ret);
