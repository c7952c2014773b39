/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "gw-error.h"

/* The body of POST /v1/programs/{title}/run (http-programs.c), apart so that
 * tests/fuzz/fuzz-program-run.c can feed it what a client may send: {"arguments": …, "env": …},
 * no other key. Takes a reference on each into *ret_arguments and *ret_env (NULL initially; the
 * caller puts them whatever the outcome); program_run_arguments() checks them. */
int program_run_body_parse(json_object *body, json_object **ret_arguments, json_object **ret_env, GwError *e);
