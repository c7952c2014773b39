/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "auth-source.h"
#include "http-api.h"
#include "status.h"

const HttpRoute http_api_routes[] = {
        { "GET",    "/v1/status",       http_get_status },
        { "GET",    "/v1/services",     http_list_services },
        { "POST",   "/v1/services",     http_create_service },
        { "GET",    "/v1/services/*",   http_get_service },
        { "PUT",    "/v1/services/*",   http_update_service },
        { "DELETE", "/v1/services/*",   http_remove_service },
        { "GET",    "/v1/images",       http_list_images },
        { "POST",   "/v1/images/pull",  http_pull_image, AUTH_SCOPE_PULL },
        { "GET",    "/v1/images/*/progress", http_get_image_progress },
        { "POST",   "/v1/images/*/expire",   http_expire_image },
        /* After the routes above: a reference like "library/alpine:3" spans segments. */
        { "GET",    "/v1/images/**",    http_get_image },
        { "DELETE", "/v1/images/**",    http_remove_image },
        { "POST",   "/v1/services/*/jobs",      http_submit_service_job, AUTH_SCOPE_SUBMIT },
        { "GET",    "/v1/jobs",                 http_list_jobs },
        { "GET",    "/v1/jobs/*",               http_get_job },
        { "DELETE", "/v1/jobs/*",               http_remove_job, AUTH_SCOPE_SUBMIT },
        { "GET",    "/v1/jobs/*/result",        http_get_job_result },
        { "GET",    "/v1/jobs/*/interim-results", http_get_job_interim_results },
        { "GET",    "/v1/jobs/*/log",           http_get_job_log },
        { "PUT",    "/v1/jobs/*/cancel",        http_cancel_job, AUTH_SCOPE_SUBMIT },
        /* Programs (docs/programs.md): the upload's body is the artifact, streamed to a file. */
        { "GET",    "/v1/programs",             http_list_programs },
        { "POST",   "/v1/programs",             http_upload_program, AUTH_SCOPE_SUBMIT | HTTP_ROUTE_BODY_FILE },
        { "GET",    "/v1/programs/*",           http_get_program },
        { "DELETE", "/v1/programs/*",           http_remove_program, AUTH_SCOPE_SUBMIT },
        { "POST",   "/v1/programs/*/run",       http_run_program, AUTH_SCOPE_SUBMIT },
        /* Local users only: a token must not be able to mint more tokens. */
        { "POST",   "/v1/tokens",               http_create_token, HTTP_ROUTE_LOCAL_ONLY },
        { "GET",    "/v1/tokens",               http_list_tokens,  HTTP_ROUTE_LOCAL_ONLY },
        { "DELETE", "/v1/tokens/*",             http_revoke_token, HTTP_ROUTE_LOCAL_ONLY },
        /* Platforms: reading is "read" (GET); drain/resume every scope and, for network
         * callers, Admins (http-platforms.c). */
        { "GET",    "/v1/platforms",            http_list_platforms },
        { "GET",    "/v1/platforms/*",          http_get_platform },
        { "POST",   "/v1/platforms/*/nodes/*/drain",  http_drain_platform_node },
        { "POST",   "/v1/platforms/*/nodes/*/resume", http_resume_platform_node },
        /* PlanQK client credentials (http-clients.c) and OAuth2's token endpoint (http-oauth.c),
         * anonymous by default: the client's secret is the credential. */
        { "POST",   "/v1/clients",              http_create_client, HTTP_ROUTE_LOCAL_ONLY },
        { "GET",    "/v1/clients",              http_list_clients,  HTTP_ROUTE_LOCAL_ONLY },
        { "DELETE", "/v1/clients/*",            http_remove_client, HTTP_ROUTE_LOCAL_ONLY },
        { "POST",   "/token",                   http_oauth_token, AUTH_SCOPE_READ },
        /* Labs (issue 12): definitions (admin) and instances (each user their own). */
        { "GET",    "/v1/labs",                 http_list_labs },
        { "GET",    "/v1/labs/*",               http_get_lab },
        { "PUT",    "/v1/labs/*",               http_put_lab },
        { "DELETE", "/v1/labs/*",               http_remove_lab },
        { "POST",   "/v1/labs/*/instances",     http_create_lab_instance, AUTH_SCOPE_SUBMIT },
        { "GET",    "/v1/lab-instances",        http_list_lab_instances },
        { "GET",    "/v1/lab-instances/*",      http_get_lab_instance },
        { "DELETE", "/v1/lab-instances/*",      http_remove_lab_instance, AUTH_SCOPE_SUBMIT },
        { "POST",   "/v1/lab-instances/*/token", http_lab_instance_token, AUTH_SCOPE_SUBMIT },
        { "GET",    "/v1/lab-instances/*/access", http_lab_instance_access, HTTP_ROUTE_LOCAL_ONLY },
        { "GET",    "/planqk/*",                http_planqk_health },
        { "POST",   "/planqk/*",                http_planqk_submit, AUTH_SCOPE_SUBMIT },
        { "GET",    "/planqk/*/*",              http_planqk_get_job },
        { "GET",    "/planqk/*/*/result",       http_planqk_get_result },
        { "GET",    "/planqk/*/*/interim-results", http_planqk_get_interim_results },
        { "PUT",    "/planqk/*/*/cancel",       http_planqk_cancel, AUTH_SCOPE_SUBMIT },
        /* PlanQK's newer service API (SDK 2.x): the log as a list of lines, result files. */
        { "GET",    "/planqk/*/*/log",          http_planqk_get_log },
        { "GET",    "/planqk/*/*/result/*",     http_planqk_get_result_file },
        /* Shifter's image gateway API (docs/openapi-shifter.yaml). Tags arrive unescaped and may
         * contain '/', hence "**". LabOrchestrator's /api/{docker_images,labs,lab_instances}/
         * have other first segments. */
        { "GET",    "/api/list/*",              http_shifter_list },
        { "GET",    "/api/lookup/*/*/**",       http_shifter_lookup },
        { "POST",   "/api/pull/*/*/**",         http_shifter_pull, AUTH_SCOPE_PULL },
        { "GET",    "/api/expire/*/*/**",       http_shifter_expire },
        { "POST",   "/api/expire/*/*/**",       http_shifter_expire },
        { "GET",    "/api/autoexpire/*",        http_shifter_autoexpire },
        { "GET",    "/api/queue/*",             http_shifter_queue },
        /* LabOrchestrator's API (docs/openapi-laborch.yaml): its collections are the first
         * segment after /api/, Shifter's verbs (list, lookup, pull, expire, autoexpire, queue)
         * never are one of them, so neither table shadows the other whatever the later segments. */
        { "GET",    "/api/docker_images",       http_laborch_list_docker_images },
        { "GET",    "/api/docker_images/*",     http_laborch_get_docker_image },
        { "GET",    "/api/lab_docker_images",   http_laborch_list_lab_docker_images },
        { "GET",    "/api/lab_docker_images/*", http_laborch_get_lab_docker_image },
        { "GET",    "/api/labs",                http_laborch_list_labs },
        { "GET",    "/api/labs/*",              http_laborch_get_lab },
        { "GET",    "/api/lab_instances",       http_laborch_list_instances },
        { "POST",   "/api/lab_instances",       http_laborch_create_instance, AUTH_SCOPE_SUBMIT },
        { "GET",    "/api/lab_instances/*",     http_laborch_get_instance },
        { "DELETE", "/api/lab_instances/*",     http_laborch_remove_instance, AUTH_SCOPE_SUBMIT },
        { "GET",    "/api/lab_instances/*/token", http_laborch_instance_token, AUTH_SCOPE_SUBMIT },
};

const size_t http_api_n_routes = ELEMENTSOF(http_api_routes);

void http_get_status(HttpRequest *req, char **captures) {
        http_request_reply_json(req, MHD_HTTP_OK, status_to_json(req->manager));
}
