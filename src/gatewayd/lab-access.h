/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "gw-error.h"
#include "lab-instance.h"

/* Access to lab instances through gateway-proxy (docs/labs.md "Access"): gatewayd mints the
 * short-lived tokens for an instance's owner (src/shared/lab-token.c, the key in the state
 * directory, made on first use), and answers the proxy's question about an instance. */

/* {"token", "expiresAt", "members": {NAME: "/<token>/<NAME>/"}}: a token opening every member,
 * valid for LabTokenLifetime. Only for an instance that is not over (Conflict otherwise). */
int lab_access_token(Manager *m, const LabInstance *i, json_object **ret, GwError *e);

/* What gateway-proxy is told: the instance's record plus its owner's uid and gatewayd's pid. */
json_object *lab_access_record(const LabInstance *i);

void lab_access_done(Manager *m);
