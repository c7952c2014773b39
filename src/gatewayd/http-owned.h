/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "http-server.h"
#include "owned-kind.h"

/* DELETE of one object of a kind a user owns (owned-kind.h), as the caller of req: replies 204,
 * or 404 "No <noun> '<id>'." where it does not exist or is not theirs to remove. */
void http_remove_owned(HttpRequest *req, const char *id, const OwnedKind *how);
