/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* POST /api/v1/jobs/{id}/result/: the serverless gateway's in-job save_result, taken with the
 * job's own token (job-token.h) instead of an identity. A program job normally reaches the
 * worker's endpoint in its own network namespace (src/worker/job-result-endpoint.h); this is the
 * same route on gatewayd's listeners, for whoever holds the token while the job runs (a job with
 * network, a helper of the job's owner). The job's platform stores it where the job's worker
 * takes it as the job's result when the job ends, as the worker's endpoint does (the spool's
 * saved-result.json: here, in the Slurm spool, or on the job's SSH node through serve). The
 * answers have the serverless gateway's shape ({"message": ...}). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http-api.h"
#include "http-auth.h"
#include "http-form.h"
#include "http-job-result.h"
#include "http-server.h"
#include "job-registry.h"
#include "job-token.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "platform.h"


static void reply_message(HttpRequest *req, unsigned status, const char *message) {
        json_object *o = json_object_new_object();

        if (o)
                json_object_object_add(o, "message", json_object_new_string(message));
        http_request_reply_json(req, status, o);
        if (status == 401)
                http_request_add_header(req, "WWW-Authenticate", "Bearer");
}

static const char *bearer(HttpRequest *req) {
        const char *a = http_request_header(req, "Authorization");

        if (!a || strncasecmp(a, "Bearer ", 7) != 0)
                return NULL;
        return a + 7 + strspn(a + 7, " ");
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* Whether s is a number as JSON writes it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool number_text_is_json(const char *s) {
        if (*s == '-')
                s++;
        if (*s == '0')
                s++;
        else if (is_digit(*s))
                while (is_digit(*s))
                        s++;
        else
                return false;
        if (*s == '.') {
                if (!is_digit(*++s))
                        return false;
                while (is_digit(*s))
                        s++;
        }
        if (*s == 'e' || *s == 'E') {
                s++;
                if (*s == '+' || *s == '-')
                        s++;
                if (!is_digit(*s))
                        return false;
                while (is_digit(*s))
                        s++;
        }
        return *s == 0;
}

/* json-c writes a double back as it read it ("2.", "1.e5") or as "NaN"/"Infinity": none of that
 * is JSON, and the worker takes the saved result as the job's as it is. */
static bool numbers_are_json(json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_double:
                return number_text_is_json(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        if (!numbers_are_json(json_object_array_get_idx(o, i)))
                                return false;
                return true;
        case json_type_object: {
                json_object_object_foreach(o, k, v) {
                        (void) k;
                        if (!numbers_are_json(v))
                                return false;
                }
                return true;
        }
        default:
                return true;
        }
}

/* The result's JSON text: the client's form field result=json.dumps(result), or a JSON body
 * {"result": <JSON text as a string, or any value>}. */
int job_result_body_parse(const char *type, const char *body, size_t size, char **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL, *parsed = NULL;
        _cleanup_free_ char *text = NULL;
        const char *reason;
        size_t offset;
        json_object *v;

        if (!body)
                return -EINVAL;
        if (type && form_content_type_is_urlencoded(type)) {
                if (form_get(body, size, "result", &text) < 0)
                        return -EINVAL;
        } else {
                if (json_parse_untrusted(body, size, &o, &offset, &reason) < 0 ||
                    !json_object_object_get_ex(o, "result", &v))
                        return -EINVAL;
                text = strdup(json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                              : json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                if (!text)
                        return -ENOMEM;
        }
        /* Stored as json-c writes it back: valid JSON as a marker result must be, even where
         * json-c's reader is lenient (single quotes); numbers it writes back as read. */
        if (json_parse_untrusted(text, strlen(text), &parsed, &offset, &reason) < 0 || !numbers_are_json(parsed))
                return -EINVAL;
        *ret = strdup(parsed ? json_object_to_json_string_ext(parsed, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                             : "null");
        return *ret ? 0 : -ENOMEM;
}

/* How long a save waits for the job's platform: a node that holds its connection but does not
 * answer (stopped, swapping, wedged) must not hold the caller until the node is given up. */
#define SAVE_RESULT_TIMEOUT_USEC (15 * USEC_PER_SEC)

/* A save waiting for the job's platform (a node's answer). The request points to it while it
 * waits; whichever goes first (the answer, the timeout, the request at shutdown) unlinks itself;
 * the answer, which always comes, frees it. */
typedef struct PendingSave {
        HttpRequest *req;
        sd_event_source *timeout;
} PendingSave;

static void pending_save_detach(void *userdata) {
        PendingSave *ps = userdata;

        ps->req = NULL;  /* the request is gone: the answer, when it comes, frees ps */
}

static void reply_saved(HttpRequest *req, int r, const char *message) {
        _cleanup_free_ char *text = NULL;

        if (r >= 0)
                return reply_message(req, 200, "Result saved.");
        if (r == -ESTALE)
                return reply_message(req, 409, "The job has finished: its result can no longer be saved.");
        if (r == -EAGAIN)
                return reply_message(req, 409, "The job does not run yet: its result can be saved while it runs.");
        if (r == -EHOSTDOWN)
                return reply_message(req, 503, "The job's node cannot be reached now: try again, or save the result from inside the job.");
        if (r == -ETIMEDOUT)
                return reply_message(req, 504, "The job's node did not answer in time: try again, or save the result from inside the job.");
        if (r == -EOPNOTSUPP)
                return reply_message(req, 503, "The job's platform cannot store a result saved from outside the job: save it from inside the job.");
        log_warning("Cannot save the result of a job: %s", message ?: strerror(-r));
        if (message && asprintf(&text, "The result could not be stored: %s", message) >= 0)
                return reply_message(req, 500, text);
        reply_message(req, 500, "The result could not be stored.");
}

/* Answers the request, if it is still there, and lets go of it. */
static void pending_save_reply(PendingSave *ps, int r, const char *message) {
        HttpRequest *req = ps->req;

        ps->timeout = sd_event_source_disable_unref(ps->timeout);
        if (!req)
                return;
        ps->req = NULL;
        req->userdata = NULL;
        req->free_userdata = NULL;
        if (!req->response)  /* not answered at shutdown meanwhile */
                reply_saved(req, r, message);
}

static void on_saved(int r, const char *message, void *userdata) {
        PendingSave *ps = userdata;

        pending_save_reply(ps, r, message);
        free(ps);
}

static int on_save_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        pending_save_reply(userdata, -ETIMEDOUT, NULL);
        return 0;
}

void http_save_job_result(HttpRequest *req, char **captures) {
        Manager *m = req->manager;
        const char *token = bearer(req);
        _cleanup_free_ char *result = NULL;
        PendingSave *ps;
        Platform *p;
        Job *j;
        int r;

        /* One answer for "no such job" and "not its token": a token names exactly one job. */
        j = job_registry_get(m, captures[0]);
        if (!token || !j || !j->program_id || !job_token_verify(m->state_dir, captures[0], token)) {
                /* counts as a failed authentication of the address, as any guessed credential */
                http_request_auth_failed(req, "job token", "invalid token");
                return reply_message(req, 401, "Invalid token.");
        }
        if (job_state_is_terminal(j->state))
                return reply_message(req, 409, "The job has finished: its result can no longer be saved.");
        if (job_result_body_parse(http_request_header(req, "Content-Type"), req->body, req->body_size, &result) < 0)
                return reply_message(req, 400, "The body has no valid 'result' (a form field or a JSON object's key, holding JSON).");
        if (strlen(result) > m->config->result_max)
                return reply_message(req, 413, "The result is larger than ResultMax.");
        /* Until the job runs its worker has no spool yet on every platform (a node's, Slurm's). */
        if (j->state != JOB_RUNNING)
                return reply_saved(req, -EAGAIN, NULL);

        /* Where the job's worker takes it: the job's platform knows (its spool may be a node's). */
        p = platform_get(m, j->platform) ?: platform_default(m);
        ps = calloc(1, sizeof(PendingSave));
        if (!ps)
                return reply_message(req, 500, "Out of memory.");
        r = platform_save_result(p, j, result, on_saved, ps);
        if (r != 1) {
                free(ps);
                return reply_saved(req, r, NULL);
        }
        ps->req = req;
        req->userdata = ps;
        req->free_userdata = pending_save_detach;
        /* Without a timer the save still ends with the platform's answer. */
        if (sd_event_add_time_relative(m->event, &ps->timeout, CLOCK_MONOTONIC, SAVE_RESULT_TIMEOUT_USEC, USEC_PER_SEC,
                                       on_save_timeout, ps) < 0)
                log_warning("Cannot set a timeout for the save of job %s's result.", j->id);
        http_request_suspend(req);
}
