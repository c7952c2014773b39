/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <curl/curl.h>
#include <systemd/sd-event.h>

#include "macro.h"

/* libcurl's multi interface on the sd-event loop: curl's sockets become IO sources and its timer
 * a timer source, so that transfers never block the loop. Shared by the HTTP clients of gatewayd
 * (slurm-rest.c, auth-custom-token.c); each owns one CurlEvent and its easy handles, and tells
 * its transfers apart with CURLOPT_PRIVATE. */

typedef struct CurlEvent CurlEvent;

/* A transfer ended (result CURLE_OK or why not). Called from the loop; the handle is still added:
 * the callback typically calls curl_event_remove() and frees it. */
typedef void (*curl_event_done_t)(CurlEvent *c, CURL *easy, CURLcode result, void *userdata);

/* description names the event sources ("<description>-io", "<description>-timer"). */
int curl_event_new(sd_event *event, const char *description, curl_event_done_t done, void *userdata,
                   CurlEvent **ret);
/* The handles still added must have been removed (or are left to the caller to clean up). */
CurlEvent *curl_event_free(CurlEvent *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CurlEvent *, curl_event_free);

/* Starts a transfer: -EIO if curl refuses the handle. */
int curl_event_add(CurlEvent *c, CURL *easy);
/* Stops it (no done callback for it any more). NULL easy is a no-op. */
void curl_event_remove(CurlEvent *c, CURL *easy);
