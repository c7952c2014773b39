/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "http-server.h"
#include "job.h"

/* Shared by the native (/v1) and PlanQK (/planqk) job routes. */

typedef void (*HttpJobHandler)(HttpRequest *req, Job *j);

/* Finds job id for the caller and calls next. Someone else's job is found only for admins
 * (polkit org.gatewayd.manage-jobs, asked only then); for everybody else it does not exist (404).
 * If service is set, the job must belong to that service. */
void http_with_job(HttpRequest *req, const char *id, const char *service, HttpJobHandler next);

/* Parses {"data":…, "params":…} and submits a job for service (after polkit
 * org.gatewayd.submit-job); replies 201 with the job and a Location built from location_prefix. */
void http_submit_job(HttpRequest *req, const char *service, bool planqk);
/* Its validation of the body (tests/fuzz): an object with only "data" and "params" (both
 * optional, borrowed from body). */
int job_submission_parse(json_object *body, json_object **ret_data, json_object **ret_params, GwError *e);

/* The answers both APIs give alike: the result (JSON null if none; {"code","detail"} for a
 * failed job; 409 while unfinished), and the interim results (?last= for only the newest). */
void http_reply_job_result(HttpRequest *req, Job *j);
void http_reply_job_interim(HttpRequest *req, Job *j);

/* ?last=true|false|1|0 (absent = false); replies 400 and returns < 0 on anything else. */
int http_query_bool(HttpRequest *req, const char *key, bool *ret);
