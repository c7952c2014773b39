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
void http_remove_image(HttpRequest *req, char **captures);
void http_expire_image(HttpRequest *req, char **captures);
