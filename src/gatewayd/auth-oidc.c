/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pwd.h>
#include <time.h>

#include <systemd/sd-event.h>

#include "auth-source.h"
#include "curl-event.h"
#include "http-server.h"
#include "json-util.h"
#include "jwt.h"
#include "log.h"
#include "manager.h"

/* Sign-in through the site's OpenID Connect provider ("Authentication": {"oidc": …}): a bearer
 * JWT signed by the provider (RS256 or ES256) whose iss is the configured issuer, whose aud
 * holds the configured audience and whose time claims hold; the user claim (default
 * preferred_username) names the local account it acts as, or "localUser" names one for all.
 *
 * The provider's keys come from its discovery document (<issuer>/.well-known/openid-configuration,
 * its jwks_uri), fetched asynchronously through libcurl on the loop and kept. A token whose key
 * id is unknown makes us fetch the keys again (the provider rotated them) — at most once per
 * OIDC_REFRESH_MIN_USEC, so that tokens with made-up key ids cannot make us hammer the provider;
 * keys are fetched again anyway when older than OIDC_KEYS_MAX_AGE_USEC, so that a key the
 * provider withdrew stops working. Requests that need the keys wait for the fetch; when the
 * provider cannot be reached they get 503, never 401 (their tokens may be fine). */

#define OIDC_SOURCE "oidc"
#define OIDC_FETCH_TIMEOUT_MS 5000L
#define OIDC_DOCUMENT_MAX (1024U * 1024U)
#define OIDC_REFRESH_MIN_USEC (10 * USEC_PER_SEC)
#define OIDC_KEYS_MAX_AGE_USEC (10 * 60 * USEC_PER_SEC)
#define OIDC_CLOCK_SKEW_SEC 60
#define OIDC_WAITING_MAX 1024U

typedef enum OidcFetch {
        OIDC_FETCH_NONE,
        OIDC_FETCH_DISCOVERY,
        OIDC_FETCH_KEYS,
} OidcFetch;

typedef struct OidcWaiter {
        struct OidcWaiter *next;
        HttpRequest *req;
        AuthVerified done;
} OidcWaiter;

typedef struct Oidc {
        Manager *manager;
        CurlEvent *curl;
        CURL *easy;
        OidcFetch fetch;
        char *body;
        size_t body_size;
        bool body_too_large;

        char *jwks_uri;
        json_object *keys;              /* the JWKS "keys" array; NULL before the first fetch */
        usec_t keys_fetched_usec;       /* CLOCK_MONOTONIC */
        usec_t last_fetch_usec;         /* of the last fetch started */
        OidcWaiter *waiting;
        size_t n_waiting;
} Oidc;

static Oidc *oidc_of(HttpRequest *req) {
        return req->manager->oidc;
}

static usec_t now_monotonic(Manager *m) {
        usec_t now = 0;

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        return now;
}

/* ---- fetching the provider's documents ---- */

static size_t on_body(char *p, size_t size, size_t n, void *userdata) {
        Oidc *o = userdata;
        size_t len = size * n;
        char *b;

        if (o->body_size + len > OIDC_DOCUMENT_MAX) {
                o->body_too_large = true;
                return 0;
        }
        b = realloc(o->body, o->body_size + len + 1);
        if (!b)
                return 0;
        memcpy(b + o->body_size, p, len);
        o->body_size += len;
        b[o->body_size] = 0;
        o->body = b;
        return len;
}

static void oidc_fetch_reset(Oidc *o) {
        if (o->easy) {
                curl_event_remove(o->curl, o->easy);
                curl_easy_cleanup(o->easy);
                o->easy = NULL;
        }
        o->fetch = OIDC_FETCH_NONE;
        o->body = mfree(o->body);
        o->body_size = 0;
        o->body_too_large = false;
}

static int oidc_fetch_start(Oidc *o, OidcFetch what, const char *url) {
        Config *c = o->manager->config;
        int r;

        oidc_fetch_reset(o);
        o->easy = curl_easy_init();
        if (!o->easy)
                return -ENOMEM;
        if (curl_easy_setopt(o->easy, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(o->easy, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(o->easy, CURLOPT_WRITEDATA, o) != CURLE_OK ||
            curl_easy_setopt(o->easy, CURLOPT_TIMEOUT_MS, OIDC_FETCH_TIMEOUT_MS) != CURLE_OK ||
            curl_easy_setopt(o->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(o->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(o->easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            (c->oidc_ca_file && curl_easy_setopt(o->easy, CURLOPT_CAINFO, c->oidc_ca_file) != CURLE_OK)) {
                oidc_fetch_reset(o);
                return -EINVAL;
        }
        r = curl_event_add(o->curl, o->easy);
        if (r < 0) {
                oidc_fetch_reset(o);
                return r;
        }
        o->fetch = what;
        o->last_fetch_usec = now_monotonic(o->manager);
        return 0;
}

static int oidc_fetch_keys(Oidc *o) {
        _cleanup_free_ char *url = NULL;
        const char *issuer = o->manager->config->oidc_issuer;
        size_t n = strlen(issuer);

        if (o->jwks_uri)
                return oidc_fetch_start(o, OIDC_FETCH_KEYS, o->jwks_uri);
        /* OpenID Connect Discovery §4: the issuer with any trailing slash dropped. */
        if (asprintf(&url, "%.*s/.well-known/openid-configuration", (int) (n > 0 && issuer[n - 1] == '/' ? n - 1 : n),
                     issuer) < 0)
                return -ENOMEM;
        return oidc_fetch_start(o, OIDC_FETCH_DISCOVERY, url);
}

static void oidc_verify_with_keys(HttpRequest *req, AuthVerified done);

/* Answers everyone who waited for the keys: with them, or 503 with why there are none. */
static void oidc_release_waiters(Oidc *o, const char *failure) {
        OidcWaiter *w = o->waiting;

        o->waiting = NULL;
        o->n_waiting = 0;
        while (w) {
                OidcWaiter *next = w->next;
                if (failure)
                        w->done(w->req, -EHOSTUNREACH, NULL, failure);
                else
                        oidc_verify_with_keys(w->req, w->done);
                free(w);
                w = next;
        }
}

/* The discovery document's jwks_uri, or why not. */
static const char *oidc_take_discovery(Oidc *o, json_object *doc) {
        const char *issuer = json_get_string(doc, "issuer"), *uri = json_get_string(doc, "jwks_uri");

        if (!issuer || !streq(issuer, o->manager->config->oidc_issuer))
                return "The identity provider's discovery document names another issuer.";
        if (!uri || (!strneq(uri, "https://", 8) && !strneq(uri, "http://", 7)))
                return "The identity provider's discovery document has no usable jwks_uri.";
        return free_and_strdup(&o->jwks_uri, uri) < 0 ? "Out of memory." : NULL;
}

static const char *oidc_take_keys(Oidc *o, json_object *doc) {
        json_object *keys;

        if (!json_object_object_get_ex(doc, "keys", &keys) || !json_object_is_type(keys, json_type_array))
                return "The identity provider's key set has no \"keys\" array.";
        json_object_put(o->keys);
        o->keys = json_object_get(keys);
        o->keys_fetched_usec = now_monotonic(o->manager);
        return NULL;
}

static void on_fetch_done(CurlEvent *c, CURL *easy, CURLcode result, void *userdata) {
        _cleanup_(json_object_putp) json_object *doc = NULL;
        Oidc *o = userdata;
        OidcFetch what = o->fetch;
        const char *failure = NULL;
        long status = 0;
        int r;

        (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        if (result != CURLE_OK)
                failure = o->body_too_large ? "The identity provider's answer is too large." :
                          "The identity provider cannot be reached.";
        else if (status != 200)
                failure = "The identity provider answered with an error.";
        else if (!o->body || !(doc = json_tokener_parse(o->body)) || !json_object_is_type(doc, json_type_object))
                failure = "The identity provider's answer is not a JSON object.";
        else
                failure = what == OIDC_FETCH_DISCOVERY ? oidc_take_discovery(o, doc) : oidc_take_keys(o, doc);
        if (failure)
                log_warning("OIDC: %s (%s, HTTP %ld, %s)", failure, what == OIDC_FETCH_DISCOVERY ? "discovery" : "keys",
                            status, curl_easy_strerror(result));
        oidc_fetch_reset(o);

        if (!failure && what == OIDC_FETCH_DISCOVERY) {
                r = oidc_fetch_start(o, OIDC_FETCH_KEYS, o->jwks_uri);
                if (r >= 0)
                        return;
                failure = "Cannot fetch the identity provider's keys.";
        }
        /* A jwks_uri that failed may have moved: discover it again next time. */
        if (failure)
                o->jwks_uri = mfree(o->jwks_uri);
        oidc_release_waiters(o, failure);
}

/* ---- verifying a token ---- */

static bool audience_matches(json_object *aud, const char *want) {
        if (json_object_is_type(aud, json_type_string))
                return streq(json_object_get_string(aud), want);
        if (!json_object_is_type(aud, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(aud); i++) {
                const char *a = json_object_get_string(json_object_array_get_idx(aud, i));
                if (json_object_is_type(json_object_array_get_idx(aud, i), json_type_string) && streq(a, want))
                        return true;
        }
        return false;
}

/* The claims every token must hold, whatever key signed it; a sentence if not. */
static const char *oidc_check_claims(Manager *m, const Jwt *j) {
        Config *c = m->config;
        const char *iss = json_get_string(j->claims, "iss"), *reason = NULL;
        json_object *aud = NULL;

        if (!streq(j->alg, "RS256") && !streq(j->alg, "ES256"))
                return "The token is not signed with RS256 or ES256.";
        if (!iss || !streq(iss, c->oidc_issuer))
                return "The token was issued by another issuer.";
        if (!json_object_object_get_ex(j->claims, "aud", &aud) || !audience_matches(aud, c->oidc_audience))
                return "The token is meant for another audience.";
        if (jwt_check_times(j, (uint64_t) time(NULL), OIDC_CLOCK_SKEW_SEC, &reason) < 0)
                return reason;
        return NULL;
}

/* The key that signed the token: by its key id, or without one the only key of its type. */
static json_object *oidc_find_key(Oidc *o, const Jwt *j) {
        const char *kty = streq(j->alg, "ES256") ? "EC" : "RSA";
        json_object *found = NULL;
        size_t n_found = 0;

        for (size_t i = 0; o->keys && i < json_object_array_length(o->keys); i++) {
                json_object *k = json_object_array_get_idx(o->keys, i);
                const char *kid = json_get_string(k, "kid"), *t = json_get_string(k, "kty");

                if (j->kid ? kid && streq(kid, j->kid) : t && streq(t, kty)) {
                        found = k;
                        n_found++;
                }
        }
        return n_found == 1 ? found : NULL;
}

/* The local account the token's user acts as; a sentence if there is none. */
static const char *oidc_map_user(Manager *m, const Jwt *j, struct passwd **ret) {
        Config *c = m->config;
        const char *user = json_get_string(j->claims, c->oidc_user_claim ?: "preferred_username");
        struct passwd *pw;

        if (!user || !*user)
                return "The token does not name a user.";
        pw = getpwnam(c->oidc_local_user ?: user);
        if (!pw)
                return "The token's user has no account here.";
        /* A provider's user called "root" must not become root. */
        if (pw->pw_uid == 0)
                return "The token's user may not act as root.";
        *ret = pw;
        return NULL;
}

static void oidc_conclude(HttpRequest *req, const Jwt *j, json_object *key, AuthVerified done) {
        const char *failure;
        struct passwd *pw = NULL;

        if (jwt_verify_jwk(j, key) < 0)
                return done(req, -EACCES, NULL, "The token's signature does not verify.");
        failure = oidc_map_user(req->manager, j, &pw);
        if (failure)
                return done(req, -EACCES, NULL, failure);
        done(req, 0, &(Identity) {
                .uid = pw->pw_uid,
                .gid = pw->pw_gid,
                .name = pw->pw_name,
                .source = OIDC_SOURCE,
                .scopes = AUTH_SCOPE_ALL,
        }, NULL);
}

static int oidc_wait_for_keys(Oidc *o, HttpRequest *req, AuthVerified done) {
        OidcWaiter *w;
        int r;

        if (o->n_waiting >= OIDC_WAITING_MAX)
                return -EBUSY;
        if (o->fetch == OIDC_FETCH_NONE) {
                r = oidc_fetch_keys(o);
                if (r < 0)
                        return r;
        }
        w = malloc(sizeof(OidcWaiter));
        if (!w)
                return -ENOMEM;
        *w = (OidcWaiter) { .next = o->waiting, .req = req, .done = done };
        o->waiting = w;
        o->n_waiting++;
        return 0;
}

/* With the keys we have: verified, refused, or (a key we do not know, and the keys may be
 * stale) waiting for a fresh set. */
static void oidc_verify_with_keys(HttpRequest *req, AuthVerified done) {
        _cleanup_(jwt_freep) Jwt *j = NULL;
        Oidc *o = oidc_of(req);
        const char *failure;
        json_object *key;
        usec_t now = now_monotonic(req->manager);
        bool refresh_allowed = now >= o->last_fetch_usec + OIDC_REFRESH_MIN_USEC || !o->keys;

        if (jwt_parse(auth_bearer_token(req), &j) < 0)
                return done(req, -EACCES, NULL, "Malformed token.");
        failure = oidc_check_claims(req->manager, j);
        if (failure)
                return done(req, -EACCES, NULL, failure);

        key = oidc_find_key(o, j);
        if (key && now < o->keys_fetched_usec + OIDC_KEYS_MAX_AGE_USEC)
                return oidc_conclude(req, j, key, done);
        if (!refresh_allowed || o->fetch != OIDC_FETCH_NONE) {
                /* A fetch just happened (or is under way and will answer the waiters): judge by
                 * what we have, an unknown key now is one the provider does not have. */
                if (o->fetch != OIDC_FETCH_NONE && !key && oidc_wait_for_keys(o, req, done) >= 0)
                        return;
                return key ? oidc_conclude(req, j, key, done)
                           : done(req, -EACCES, NULL, "The token is signed with a key the identity provider does not publish.");
        }
        if (oidc_wait_for_keys(o, req, done) < 0)
                done(req, -EHOSTUNREACH, NULL, "Cannot ask the identity provider for its keys.");
}

static bool oidc_match(HttpRequest *req) {
        const char *t = auth_bearer_token(req);

        /* A JWT: three base64url parts, the first a JSON object ("eyJ" = '{"'). */
        return oidc_of(req) && t && strneq(t, "eyJ", 3) && strchr(t, '.');
}

static void oidc_verify(HttpRequest *req, AuthVerified done) {
        oidc_verify_with_keys(req, done);
}

static void oidc_cancel(HttpRequest *req) {
        Oidc *o = oidc_of(req);

        for (OidcWaiter **w = o ? &o->waiting : NULL; w && *w; )
                if ((*w)->req == req) {
                        OidcWaiter *dead = *w;
                        *w = dead->next;
                        o->n_waiting--;
                        free(dead);
                } else
                        w = &(*w)->next;
}

static void oidc_source_done(Manager *m) {
        Oidc *o = m->oidc;

        if (!o)
                return;
        oidc_fetch_reset(o);
        for (OidcWaiter *w = o->waiting, *n; w; w = n) {
                n = w->next;
                free(w);
        }
        curl_event_free(o->curl);
        json_object_put(o->keys);
        free(o->jwks_uri);
        free(o);
        m->oidc = NULL;
}

static int oidc_source_init(Manager *m) {
        Oidc *o;
        int r;

        if (!m->config->oidc_issuer)
                return 0;
        o = calloc(1, sizeof(Oidc));
        if (!o)
                return log_oom();
        o->manager = m;
        m->oidc = o;
        r = curl_event_new(m->event, "oidc", on_fetch_done, o, &o->curl);
        if (r < 0) {
                oidc_source_done(m);
                return log_error_errno(r, "OIDC: cannot set up the HTTP client: %m");
        }
        /* Fetch the keys now, so that the first sign-in does not wait for them. */
        r = oidc_fetch_keys(o);
        if (r < 0)
                log_warning_errno(r, "OIDC: cannot start fetching the provider's keys, will try when asked: %m");
        log_info("OIDC: bearer tokens of %s for audience %s are accepted.", m->config->oidc_issuer, m->config->oidc_audience);
        return 0;
}

const AuthSource auth_source_oidc = {
        .name = OIDC_SOURCE,
        .challenge = "Bearer realm=\"gatewayd\"",
        .match = oidc_match,
        .verify = oidc_verify,
        .cancel = oidc_cancel,
        .init = oidc_source_init,
        .done = oidc_source_done,
};
