/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

typedef struct Manager Manager;

/* What "gatewayctl status" and GET /v1/status show. */
json_object *status_to_json(Manager *m);
