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
};

const size_t http_api_n_routes = ELEMENTSOF(http_api_routes);

void http_get_status(HttpRequest *req, char **captures) {
        http_request_reply_json(req, MHD_HTTP_OK, status_to_json(req->manager));
}
