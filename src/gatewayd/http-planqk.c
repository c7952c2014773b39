/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The PlanQK-compatible service API (docs/openapi-planqk.yaml): one asynchronous API per service
 * under /planqk/{service}/, so that clients written for managed PlanQK services work unchanged. */
#include "http-api.h"
#include "http-jobs.h"
#include "job-registry.h"
#include "manager.h"
#include "service-registry.h"

void http_planqk_health(HttpRequest *req, char **captures) {
        if (!service_registry_get(req->manager, captures[0]))
                return http_request_reply_errorf(req, GW_ERROR_NO_SUCH_SERVICE, "No service '%s'.", captures[0]);
        http_request_reply_text(req, MHD_HTTP_OK, "{\"status\":\"Service is up and running\"}");
}

void http_planqk_submit(HttpRequest *req, char **captures) {
        http_submit_job(req, captures[0], true);
}

static void get_job_found(HttpRequest *req, Job *j) {
        http_request_reply_json(req, MHD_HTTP_OK, job_to_planqk_json(j));
}

void http_planqk_get_job(HttpRequest *req, char **captures) {
        http_with_job(req, captures[1], captures[0], get_job_found);
}

void http_planqk_get_result(HttpRequest *req, char **captures) {
        http_with_job(req, captures[1], captures[0], http_reply_job_result);
}

void http_planqk_get_interim_results(HttpRequest *req, char **captures) {
        http_with_job(req, captures[1], captures[0], http_reply_job_interim);
}

static void cancel_found(HttpRequest *req, Job *j) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        if (job_registry_cancel(j, &e) < 0 && gw_error_is_set(&e))
                return http_request_reply_error(req, &e);
        http_request_reply_json(req, MHD_HTTP_OK, job_to_planqk_json(j));
}

void http_planqk_cancel(HttpRequest *req, char **captures) {
        http_with_job(req, captures[1], captures[0], cancel_found);
}
