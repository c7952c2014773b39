/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "gw-error.h"
#include "program.h"

/* The body of the serverless gateway's POST /api/v1/programs/run/ (http-serverless.c), apart so
 * that tests/fuzz/fuzz-serverless-run.c can feed it what a client may send. */
typedef struct ServerlessRunRequest {
        char *title;
        char *provider;                 /* a provider's program ("provider", or "P/title"); NULL: own */
        json_object *arguments;         /* parsed */
        char *arguments_text;           /* as sent, echoed back */
} ServerlessRunRequest;

void serverless_run_request_free(ServerlessRunRequest *r);

/* {"title", "provider", "arguments": "<JSON text>", …} into rr (calloc()ed by the caller, freed
 * with serverless_run_request_free() whatever the outcome). */
int serverless_run_body_parse(json_object *body, ServerlessRunRequest *rr, GwError *e);

/* The text fields of the form of POST /api/v1/programs/upload/ ({"name": "value"}, as
 * form_upload_fields() gathers them) as a Program, for tests/fuzz/fuzz-serverless-upload.c too. */
int serverless_upload_metadata(json_object *fields, Program **ret, GwError *e);
