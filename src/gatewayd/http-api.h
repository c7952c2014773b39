/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "http-router.h"
#include "http-server.h"

/* The route table of the HTTP API (docs/openapi.yaml). */
extern const HttpRoute http_api_routes[];
extern const size_t http_api_n_routes;

void http_get_status(HttpRequest *req, char **captures);
void http_list_services(HttpRequest *req, char **captures);
void http_get_service(HttpRequest *req, char **captures);
void http_create_service(HttpRequest *req, char **captures);
void http_update_service(HttpRequest *req, char **captures);
void http_remove_service(HttpRequest *req, char **captures);
void http_list_images(HttpRequest *req, char **captures);
void http_pull_image(HttpRequest *req, char **captures);
void http_get_image(HttpRequest *req, char **captures);
void http_get_image_progress(HttpRequest *req, char **captures);
/* Progress streams follow the image registry's events (registry-events.h): subscribed when HTTP
 * starts, the streams still open are ended at shutdown. */
int http_images_subscribe(Manager *m);
void http_image_streams_free(Manager *m);
void http_remove_image(HttpRequest *req, char **captures);
void http_expire_image(HttpRequest *req, char **captures);

/* Jobs (http-jobs.c) */
void http_submit_service_job(HttpRequest *req, char **captures);
/* http-programs.c */
void http_list_programs(HttpRequest *req, char **captures);
void http_upload_program(HttpRequest *req, char **captures);
void http_get_program(HttpRequest *req, char **captures);
void http_remove_program(HttpRequest *req, char **captures);
void http_run_program(HttpRequest *req, char **captures);
void http_list_jobs(HttpRequest *req, char **captures);
void http_get_job(HttpRequest *req, char **captures);
void http_get_job_result(HttpRequest *req, char **captures);
void http_get_job_interim_results(HttpRequest *req, char **captures);
void http_get_job_log(HttpRequest *req, char **captures);
void http_cancel_job(HttpRequest *req, char **captures);
void http_remove_job(HttpRequest *req, char **captures);

/* Tokens for TCP/TLS (http-tokens.c) */
void http_create_token(HttpRequest *req, char **captures);
void http_list_tokens(HttpRequest *req, char **captures);
void http_revoke_token(HttpRequest *req, char **captures);

/* PlanQK client credentials (http-clients.c) and the OAuth2 token endpoint (http-oauth.c) */
void http_create_client(HttpRequest *req, char **captures);
void http_list_clients(HttpRequest *req, char **captures);
void http_remove_client(HttpRequest *req, char **captures);
void http_oauth_token(HttpRequest *req, char **captures);
/* Lab definitions (http-labs.c) */
void http_list_labs(HttpRequest *req, char **captures);
void http_get_lab(HttpRequest *req, char **captures);
void http_put_lab(HttpRequest *req, char **captures);
void http_remove_lab(HttpRequest *req, char **captures);
void http_create_lab_instance(HttpRequest *req, char **captures);
void http_list_lab_instances(HttpRequest *req, char **captures);
void http_get_lab_instance(HttpRequest *req, char **captures);
void http_remove_lab_instance(HttpRequest *req, char **captures);
void http_lab_instance_token(HttpRequest *req, char **captures);
void http_lab_instance_access(HttpRequest *req, char **captures);

/* PlanQK service API (http-planqk.c, docs/openapi-planqk.yaml) */
void http_planqk_health(HttpRequest *req, char **captures);
void http_planqk_submit(HttpRequest *req, char **captures);
void http_planqk_get_job(HttpRequest *req, char **captures);
void http_planqk_get_result(HttpRequest *req, char **captures);
void http_planqk_get_interim_results(HttpRequest *req, char **captures);
void http_planqk_cancel(HttpRequest *req, char **captures);
void http_planqk_get_log(HttpRequest *req, char **captures);
void http_planqk_get_result_file(HttpRequest *req, char **captures);

/* Platforms and their nodes (http-platforms.c) */
void http_list_platforms(HttpRequest *req, char **captures);
void http_get_platform(HttpRequest *req, char **captures);
void http_drain_platform_node(HttpRequest *req, char **captures);
void http_resume_platform_node(HttpRequest *req, char **captures);

/* Shifter's image gateway API (http-shifter.c, docs/openapi-shifter.yaml) */
void http_shifter_list(HttpRequest *req, char **captures);
void http_shifter_lookup(HttpRequest *req, char **captures);
void http_shifter_pull(HttpRequest *req, char **captures);
void http_shifter_expire(HttpRequest *req, char **captures);
void http_shifter_autoexpire(HttpRequest *req, char **captures);
void http_shifter_queue(HttpRequest *req, char **captures);

/* LabOrchestrator's API (http-laborch.c, docs/openapi-laborch.yaml) */
void http_laborch_list_docker_images(HttpRequest *req, char **captures);
void http_laborch_get_docker_image(HttpRequest *req, char **captures);
void http_laborch_list_lab_docker_images(HttpRequest *req, char **captures);
void http_laborch_get_lab_docker_image(HttpRequest *req, char **captures);
void http_laborch_list_labs(HttpRequest *req, char **captures);
void http_laborch_get_lab(HttpRequest *req, char **captures);
void http_laborch_list_instances(HttpRequest *req, char **captures);
void http_laborch_create_instance(HttpRequest *req, char **captures);
/* The body of POST /api/lab_instances/ before the lab is looked up (pure, for the fuzzer): 0 and
 * the "lab" id as sent, -EINVAL with DRF's status and answer (415, 400), or -ENOMEM. */
int http_laborch_parse_create(const char *content_type, const char *body, size_t size, int64_t *ret_lab,
                              unsigned *ret_status, json_object **ret_answer);
void http_laborch_get_instance(HttpRequest *req, char **captures);
void http_laborch_remove_instance(HttpRequest *req, char **captures);
void http_laborch_instance_token(HttpRequest *req, char **captures);
