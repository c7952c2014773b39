/* SPDX-License-Identifier: LGPL-2.1-or-later */
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
        { "POST",   "/v1/images/pull",  http_pull_image },
        { "GET",    "/v1/images/*/progress", http_get_image_progress },
        { "POST",   "/v1/images/*/expire",   http_expire_image },
        /* After the routes above: a reference like "library/alpine:3" spans segments. */
        { "GET",    "/v1/images/**",    http_get_image },
        { "DELETE", "/v1/images/**",    http_remove_image },
};

const size_t http_api_n_routes = ELEMENTSOF(http_api_routes);

void http_get_status(HttpRequest *req, char **captures) {
        http_request_reply_json(req, MHD_HTTP_OK, status_to_json(req->manager));
}
