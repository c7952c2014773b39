/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* POST /token: OAuth2's token endpoint for the client credentials grant (RFC 6749 §4.4), the
 * call PlanQK's service SDK makes before it calls a service. A client (auth-client.c) proves
 * itself with its id and secret, in HTTP Basic or as client_id/client_secret form fields
 * (§2.3.1), and gets a short-lived gatewayd token (ClientTokenExpiry) that acts as the client's
 * owner within the client's scope. The route is anonymous (AnonymousRoutes): the secret is the
 * credential, checked here, and a bad one counts for the per-address blocking like a bad token.
 * Errors have OAuth2's shape (§5.2), not gatewayd's, because OAuth2 libraries parse them. */
#include "auth-client.h"
#include "auth-token.h"
#include "http-api.h"
#include "http-form.h"
#include "log.h"
#include "manager.h"

#define OAUTH_CHALLENGE "Basic realm=\"gatewayd\""

static void reply_oauth(HttpRequest *req, unsigned status, json_object *o) {
        http_request_reply_json(req, status, o);
        /* §5.1: nothing on the way may keep a token (or an answer about one). */
        http_request_add_header(req, "Cache-Control", "no-store");
        http_request_add_header(req, "Pragma", "no-cache");
}

static void reply_oauth_error(HttpRequest *req, unsigned status, const char *error, const char *description) {
        json_object *o = json_object_new_object();

        if (o) {
                json_object_object_add(o, "error", json_object_new_string(error));
                json_object_object_add(o, "error_description", json_object_new_string(description));
        }
        reply_oauth(req, status, o);
        if (status == MHD_HTTP_UNAUTHORIZED)
                http_request_add_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, OAUTH_CHALLENGE);
}

static void reply_invalid_request(HttpRequest *req, const char *description) {
        reply_oauth_error(req, MHD_HTTP_BAD_REQUEST, "invalid_request", description);
}

/* A bad id or secret: 401 and one more failed authentication of the client's address. */
static void reply_invalid_client(HttpRequest *req, const char *description) {
        http_request_auth_failed(req, "client", description);
        reply_oauth_error(req, MHD_HTTP_UNAUTHORIZED, "invalid_client", description);
}

/* A form field: 0 (value in *ret, or NULL if absent), or an answer has been sent. */
static int form_field(HttpRequest *req, const char *key, char **ret) {
        _cleanup_free_ char *d = NULL;
        int r;

        r = form_get(req->body ?: "", req->body_size, key, ret);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r == -ENOTUNIQ) {
                if (asprintf(&d, "Parameter '%s' given more than once.", key) < 0)
                        d = NULL;
                reply_invalid_request(req, d ?: "A parameter is given more than once.");
        } else if (r == -EINVAL)
                reply_invalid_request(req, "Malformed application/x-www-form-urlencoded body.");
        else if (r < 0)
                reply_oauth_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", "Out of memory.");
        return r;
}

/* The client's id and secret from Basic or the form: 0, or an answer has been sent. */
static int client_credentials(HttpRequest *req, char **ret_id, char **ret_secret) {
        _cleanup_free_ char *form_id = NULL, *form_secret = NULL;
        int r;

        if (form_field(req, "client_id", &form_id) < 0 || form_field(req, "client_secret", &form_secret) < 0)
                return -EINVAL;
        r = http_basic_parse(http_request_header(req, "Authorization"), ret_id, ret_secret);
        if (r == 0) {
                if (form_secret) {
                        *ret_id = mfree(*ret_id);
                        *ret_secret = mfree(*ret_secret);
                        reply_invalid_request(req, "Client credentials in both Authorization and the body (use one).");
                        return -EINVAL;
                }
                return 0;
        }
        if (r == -EINVAL) {
                reply_invalid_client(req, "Malformed Basic credentials.");
                return r;
        }
        if (r != -ENOENT) {
                reply_oauth_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", "Out of memory.");
                return r;
        }
        if (!form_id || !form_secret) {
                /* No credential at all is no failed guess: not counted, as anonymous requests aren't. */
                reply_oauth_error(req, MHD_HTTP_UNAUTHORIZED, "invalid_client",
                                  "Client authentication required (HTTP Basic, or client_id and client_secret).");
                return -EACCES;
        }
        *ret_id = TAKE_PTR(form_id);
        *ret_secret = TAKE_PTR(form_secret);
        return 0;
}

/* §3.3: space-separated scope names, each one the client has. 0 = the client's scopes. */
static int requested_scopes(const char *s, unsigned allowed, unsigned *ret) {
        _cleanup_free_ char *copy = NULL;
        char *save = NULL;
        unsigned scopes = 0;

        if (!s) {
                *ret = allowed;
                return 0;
        }
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                unsigned bit;

                if (auth_scope_from_string(w, &bit) < 0 || !(bit & allowed))
                        return -EINVAL;
                scopes |= bit;
        }
        *ret = scopes ?: allowed;
        return 0;
}

static json_object *scope_string(unsigned scopes) {
        char buf[32] = "";

        for (unsigned bit = 1; bit & AUTH_SCOPE_ALL; bit <<= 1)
                if (scopes & bit) {
                        if (buf[0])
                                strcat(buf, " ");
                        strcat(buf, auth_scope_to_string(bit));
                }
        return json_object_new_string(buf);
}

static void issue_token(HttpRequest *req, const ClientInfo *client, unsigned scopes) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        uint64_t lifetime = req->manager->config->client_token_expiry_sec, expires;
        char *token = NULL, id[17];
        json_object *o;

        if (token_issue(req->manager, client->uid, client->gid, lifetime, scopes, client->id, &token, id, &expires, &e) < 0)
                return reply_oauth_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", e.message ?: "Failed to issue a token.");
        log_info("Client %s (UID %u) obtained token %s.", client->id, (unsigned) client->uid, id);
        o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "access_token", json_object_new_string(token));
                json_object_object_add(o, "token_type", json_object_new_string("Bearer"));
                json_object_object_add(o, "expires_in", json_object_new_int64((int64_t) lifetime));
                json_object_object_add(o, "scope", scope_string(scopes));
        }
        explicit_bzero(token, strlen(token));
        free(token);
        reply_oauth(req, MHD_HTTP_OK, o);
}

void http_oauth_token(HttpRequest *req, char **captures) {
        _cleanup_free_ char *grant = NULL, *id = NULL, *secret = NULL, *scope = NULL;
        ClientInfo client = {};
        unsigned scopes;
        int r;

        if (!form_content_type_is_urlencoded(http_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE)))
                return reply_invalid_request(req, "The body must be application/x-www-form-urlencoded.");
        if (form_field(req, "grant_type", &grant) < 0 || form_field(req, "scope", &scope) < 0)
                return;
        if (!grant)
                return reply_invalid_request(req, "grant_type is required.");
        if (client_credentials(req, &id, &secret) < 0)
                return;

        r = client_authenticate(req->manager, id, secret, &client);
        explicit_bzero(secret, strlen(secret));
        if (r == -EACCES)
                return reply_invalid_client(req, "Unknown client or wrong secret.");
        if (r < 0)
                return reply_oauth_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable",
                                         "The client database is unavailable.");
        if (!streq(grant, "client_credentials"))
                return reply_oauth_error(req, MHD_HTTP_BAD_REQUEST, "unsupported_grant_type",
                                         "Only grant_type=client_credentials is supported.");
        r = requested_scopes(scope, client.scopes, &scopes);
        if (r == -EINVAL)
                return reply_oauth_error(req, MHD_HTTP_BAD_REQUEST, "invalid_scope",
                                         "scope: space-separated \"read\", \"submit\", \"pull\", each one the client has.");
        if (r < 0)
                return reply_oauth_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", "Out of memory.");
        issue_token(req, &client, scopes);
}
