/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <curl/curl.h>
#include <gnutls/crypto.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>

#include <systemd/sd-event.h>

#include "auth-custom-token.h"
#include "config.h"
#include "curl-event.h"
#include "hashmap.h"
#include "http-server.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"

/* Both requests of one verification together: a slow token service costs the client a 503 after
 * this long, never the loop a blocked moment. */
#define CUSTOM_TOKEN_TIMEOUT_USEC (5 * USEC_PER_SEC)
#define CUSTOM_TOKEN_OK_USEC (60 * USEC_PER_SEC)
#define CUSTOM_TOKEN_REFUSED_USEC (10 * USEC_PER_SEC)
#define CUSTOM_TOKEN_CACHE_MAX 4096U
/* Verifications in flight at once: beyond this, requests get a 503 rather than a queue. */
#define CUSTOM_TOKEN_INFLIGHT_MAX 256U
#define CUSTOM_TOKEN_MAX 4096U          /* bytes of a bearer token we pass on */
#define CUSTOM_TOKEN_ANSWER_MAX (64U * 1024U)
#define CUSTOM_TOKEN_USER_MAX 256U      /* bytes of an external user name */
#define CUSTOM_TOKEN_ID_MAX 4096U       /* bytes of the access id sent back as a header */
/* A service that is down fails every request: say so in the journal at most this often. */
#define CUSTOM_TOKEN_WARN_INTERVAL_USEC (10 * USEC_PER_SEC)

typedef struct CtWaiter CtWaiter;
typedef struct CtVerification CtVerification;

/* A cached verdict, by the hex SHA-256 of the token. */
typedef struct CtVerdict {
        char key[65];
        int error;              /* 0, -EACCES (bad token), -EPERM (no local account for the user) */
        char *message;
        uid_t uid;
        gid_t gid;
        char *name;             /* the local account */
        char *subject;          /* the external user; NULL when it is the local account itself */
        usec_t until;           /* CLOCK_MONOTONIC */
} CtVerdict;

/* A request waiting for a verification (req->auth_data). */
struct CtWaiter {
        HttpRequest *req;
        AuthVerified done;
        CtVerification *verification;
        CtWaiter *next;
};

typedef enum CtStep {
        CT_STEP_LOGIN,          /* POST tokenUrl */
        CT_STEP_VERIFY,         /* GET verificationUrl */
} CtStep;

/* One token being verified, shared by the requests that carry it. */
struct CtVerification {
        struct CustomTokenSource *source;
        char key[65];
        CtStep step;
        usec_t deadline;        /* CLOCK_MONOTONIC */
        char *user, *access_id;
        char *login_body;       /* holds the token: kept for one retry, wiped when done */
        unsigned attempts;      /* of the current step */
        CURL *easy;
        struct curl_slist *headers;
        char *answer;
        size_t answer_size;
        bool answer_too_big;
        CtWaiter *waiters;
};

typedef struct CustomTokenSource {
        Manager *manager;
        const ConfigCustomToken *config;
        char **fields;          /* verificationField, split */
        CurlEvent *curl;
        Hashmap *cache;         /* key → CtVerdict */
        Hashmap *inflight;      /* key → CtVerification */
        usec_t warned_usec;     /* CLOCK_MONOTONIC of the last warning about the service */
} CustomTokenSource;

/* ---- the token service's answers (pure) ------------------------------------------------------ */

static int set_message(char **ret, int r, const char *format, ...) _printf_(3, 4);
static int set_message(char **ret, int r, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        if (vasprintf(ret, format, ap) < 0) {
                *ret = NULL;
                r = -ENOMEM;
        }
        va_end(ap);
        return r;
}

/* 4xx (but "slow down" and "timed out") is the service's verdict on the token; anything else that
 * is not 2xx says nothing about it. */
static int classify_status(long status, const char *what, char **ret_message) {
        if (status >= 200 && status < 300)
                return 0;
        if (status >= 400 && status < 500 && status != 408 && status != 429)
                return set_message(ret_message, -EACCES, "The token service refused the token (%s: HTTP %ld).", what, status);
        return set_message(ret_message, -EIO, "The token service failed (%s: HTTP %ld).", what, status);
}

static int parse_object(const char *body, size_t size, const char *what, json_object **ret, char **ret_message) {
        json_object *o = NULL;
        const char *reason;
        size_t offset;
        int r;

        r = json_parse_untrusted(body ?: "", body ? size : 0, &o, &offset, &reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return set_message(ret_message, -EBADMSG, "The token service's %s answer is not a JSON object.", what);
        }
        *ret = o;
        return 0;
}

/* A string or an integer (user ids may be numbers) as text of printable characters: the user name
 * lands in logs and the database, the id in a header. */
static int answer_string(json_object *o, const char *key, size_t max, bool ascii, char **ret) {
        json_object *v;
        const char *s;

        if (!json_object_object_get_ex(o, key, &v))
                return -EBADMSG;
        if (json_object_is_type(v, json_type_int))
                return asprintf(ret, "%" PRIi64, json_object_get_int64(v)) < 0 ? -ENOMEM : 0;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        s = json_object_get_string(v);
        if (!*s || strlen(s) > max)
                return -EBADMSG;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < ' ' || *p == 0x7f || (ascii && *p > 0x7e))
                        return -EBADMSG;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int custom_token_parse_login(long status, const char *body, size_t size, const char *user_field,
                             char **ret_user, char **ret_id, char **ret_message) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *user = NULL, *id = NULL;
        int r;

        r = classify_status(status, "token", ret_message);
        if (r < 0)
                return r;
        r = parse_object(body, size, "token", &o, ret_message);
        if (r < 0)
                return r;
        r = answer_string(o, user_field, CUSTOM_TOKEN_USER_MAX, false, &user);
        if (r == -EBADMSG)
                return set_message(ret_message, r, "The token service's answer has no usable \"%s\".", user_field);
        if (r < 0)
                return r;
        r = answer_string(o, "id", CUSTOM_TOKEN_ID_MAX, true, &id);
        if (r == -EBADMSG)
                return set_message(ret_message, r, "The token service's answer has no usable \"id\".");
        if (r < 0)
                return r;
        *ret_user = TAKE_PTR(user);
        *ret_id = TAKE_PTR(id);
        return 0;
}

/* Python's truth, as the serverless gateway tests the fields. */
static bool json_truthy(json_object *v) {
        switch (json_object_get_type(v)) {
        case json_type_null:    return false;
        case json_type_boolean: return json_object_get_boolean(v);
        case json_type_int:     return json_object_get_int64(v) != 0;
        case json_type_double:  return json_object_get_double(v) != 0;
        case json_type_string:  return json_object_get_string_len(v) > 0;
        case json_type_array:   return json_object_array_length(v) > 0;
        case json_type_object:  return json_object_object_length(v) > 0;
        }
        return false;
}

/* The value at "a,b,c" (o.a.b.c), NULL if a key is missing or a step is not an object. */
static json_object *json_path(json_object *o, const char *path) {
        const char *p = path;

        for (;;) {
                size_t n = strcspn(p, ",");
                char key[256];
                json_object *v;

                if (n >= sizeof(key) || !json_object_is_type(o, json_type_object))
                        return NULL;
                memcpy(key, p, n);
                key[n] = 0;
                if (!json_object_object_get_ex(o, key, &v))
                        return NULL;
                o = v;
                if (!p[n])
                        return o;
                p += n + 1;
        }
}

int custom_token_parse_verification(long status, const char *body, size_t size, char * const *fields,
                                    char **ret_message) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        int r;

        r = classify_status(status, "verification", ret_message);
        if (r < 0)
                return r;
        if (!fields || !fields[0])
                return 0;
        r = parse_object(body, size, "verification", &o, ret_message);
        if (r < 0)
                return r;
        for (char * const *f = fields; *f; f++)
                if (!json_truthy(json_path(o, *f))) {
                        _cleanup_free_ char *dotted = strdup(*f);

                        if (!dotted)
                                return -ENOMEM;
                        for (char *c = dotted; *c; c++)
                                if (*c == ',')
                                        *c = '.';
                        return set_message(ret_message, -EACCES, "The token is not verified (%s is not true).", dotted);
                }
        return 0;
}

int custom_token_split_fields(const char *spec, char ***ret) {
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        size_t n = 0;

        if (!l)
                return -ENOMEM;
        for (const char *p = spec; p && *p;) {
                size_t k = strcspn(p, ";");
                char **t;

                if (k > 0) {
                        t = reallocarray(l, n + 2, sizeof(char *));
                        if (!t)
                                return -ENOMEM;
                        l = t;
                        l[n] = strndup(p, k);
                        if (!l[n])
                                return -ENOMEM;
                        l[++n] = NULL;
                }
                p += k + (p[k] == ';');
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* ---- the cache ------------------------------------------------------------------------------- */

static CtVerdict *verdict_free(CtVerdict *v) {
        if (!v)
                return NULL;
        free(v->message);
        free(v->name);
        free(v->subject);
        free(v);
        return NULL;
}

static usec_t now_usec(CustomTokenSource *s) {
        usec_t t = 0;

        (void) sd_event_now(s->manager->event, CLOCK_MONOTONIC, &t);
        return t;
}

static void cache_sweep(CustomTokenSource *s, bool all) {
        _cleanup_free_ CtVerdict **drop = NULL;
        usec_t now = now_usec(s);
        size_t n = 0;
        CtVerdict *v;

        if (!s->cache)
                return;
        drop = calloc(hashmap_size(s->cache) + 1, sizeof(CtVerdict *));
        if (!drop)
                return;
        HASHMAP_FOREACH(v, s->cache)
                if (all || v->until <= now)
                        drop[n++] = v;
        for (size_t i = 0; i < n; i++)
                verdict_free(hashmap_remove(s->cache, drop[i]->key));
}

static void cache_put(CustomTokenSource *s, CtVerdict *v) {
        verdict_free(hashmap_remove(s->cache, v->key));
        if (hashmap_size(s->cache) >= CUSTOM_TOKEN_CACHE_MAX) {
                cache_sweep(s, false);
                if (hashmap_size(s->cache) >= CUSTOM_TOKEN_CACHE_MAX)
                        cache_sweep(s, true);
        }
        if (hashmap_put(s->cache, v->key, v) < 0)
                verdict_free(v);
}

/* The local account of a verified external user: the account of the same name if it is an
 * ordinary one (never root or a system account: the token service's namespace is not trusted
 * with those), else localUser with the external name as the subject. */
static void verdict_map_user(CustomTokenSource *s, CtVerdict *v, const char *user) {
        const char *local = s->config->local_user;
        struct passwd *pw = getpwnam(user);

        if (pw && pw->pw_uid >= CUSTOM_TOKEN_UID_MIN && pw->pw_uid != (uid_t) 65534) {
                v->uid = pw->pw_uid;
                v->gid = pw->pw_gid;
                v->name = strdup(pw->pw_name);
                if (!v->name)
                        v->error = -ENOMEM;
                return;
        }
        pw = local ? getpwnam(local) : NULL;
        if (!pw) {
                v->error = -EPERM;
                if (asprintf(&v->message, local ? "External user '%s' cannot be mapped: localUser '%s' does not exist."
                                                : "External user '%s' has no ordinary local account of that name, and no localUser is configured.",
                             user, local) < 0)
                        v->message = NULL;
                return;
        }
        v->uid = pw->pw_uid;
        v->gid = pw->pw_gid;
        v->name = strdup(pw->pw_name);
        v->subject = strdup(user);
        if (!v->name || !v->subject)
                v->error = -ENOMEM;
}

static void deliver(HttpRequest *req, AuthVerified done, const CtVerdict *v) {
        if (v->error < 0)
                return done(req, v->error, NULL, v->message);
        done(req, 0, &(Identity) {
                .uid = v->uid,
                .gid = v->gid,
                .name = v->name,
                .subject = v->subject,
                .source = CUSTOM_TOKEN_SOURCE,
                .scopes = AUTH_SCOPE_ALL,
        }, NULL);
}

/* ---- verifications in flight ----------------------------------------------------------------- */

static void verification_free(CtVerification *v) {
        if (!v)
                return;
        if (v->source)
                hashmap_remove(v->source->inflight, v->key);
        if (v->easy) {
                curl_event_remove(v->source->curl, v->easy);
                curl_easy_cleanup(v->easy);
        }
        curl_slist_free_all(v->headers);
        free(v->user);
        if (v->login_body)
                explicit_bzero(v->login_body, strlen(v->login_body));
        free(v->login_body);
        if (v->access_id)
                explicit_bzero(v->access_id, strlen(v->access_id));
        free(v->access_id);
        free(v->answer);
        free(v);
}

/* Answers every waiting request with the verdict (error < 0 without a cached verdict: the service
 * could not tell), then forgets the verification. */
static void verification_finish(CtVerification *v, const CtVerdict *verdict, int error, const char *message) {
        while (v->waiters) {
                CtWaiter *w = v->waiters;

                v->waiters = w->next;
                w->req->auth_data = NULL;
                if (verdict)
                        deliver(w->req, w->done, verdict);
                else
                        w->done(w->req, error, NULL, message);
                free(w);
        }
        verification_free(v);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata) {
        CtVerification *v = userdata;
        size_t n = size * nmemb;
        char *p;

        if (v->answer_size + n > CUSTOM_TOKEN_ANSWER_MAX) {
                v->answer_too_big = true;
                return 0;
        }
        p = realloc(v->answer, v->answer_size + n + 1);
        if (!p)
                return 0;
        memcpy(p + v->answer_size, data, n);
        v->answer = p;
        v->answer_size += n;
        v->answer[v->answer_size] = 0;
        return n;
}

/* Starts the step's request; body (JSON) only for the login. */
static int verification_send(CtVerification *v, const char *url, const char *body, const char *authorization) {
        CustomTokenSource *s = v->source;
        _cleanup_free_ char *auth_header = NULL;
        usec_t now = now_usec(s);
        long left_ms = v->deadline > now ? (long) ((v->deadline - now + 999) / 1000) : 1;
        struct curl_slist *t;

        if (v->easy) {
                curl_event_remove(s->curl, v->easy);
                curl_easy_cleanup(v->easy);
        }
        curl_slist_free_all(v->headers);
        v->headers = NULL;
        v->answer = mfree(v->answer);
        v->answer_size = 0;
        v->answer_too_big = false;

        t = curl_slist_append(NULL, "Accept: application/json");
        if (t)
                v->headers = t;
        if (t && body)
                t = curl_slist_append(v->headers, "Content-Type: application/json");
        if (t && authorization) {
                if (asprintf(&auth_header, "Authorization: %s", authorization) < 0)
                        return -ENOMEM;
                t = curl_slist_append(v->headers, auth_header);
                explicit_bzero(auth_header, strlen(auth_header));
        }
        if (!t)
                return -ENOMEM;

        v->easy = curl_easy_init();
        if (!v->easy)
                return -ENOMEM;
        if (curl_easy_setopt(v->easy, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(v->easy, CURLOPT_HTTPHEADER, v->headers) != CURLE_OK ||
            curl_easy_setopt(v->easy, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(v->easy, CURLOPT_WRITEDATA, v) != CURLE_OK ||
            curl_easy_setopt(v->easy, CURLOPT_PRIVATE, v) != CURLE_OK ||
            curl_easy_setopt(v->easy, CURLOPT_TIMEOUT_MS, left_ms) != CURLE_OK ||
            curl_easy_setopt(v->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(v->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(v->easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK)
                return -EIO;
        /* COPYPOSTFIELDS: curl keeps its own copy, ours (holding the token) is wiped at once. */
        if (body && (curl_easy_setopt(v->easy, CURLOPT_POSTFIELDSIZE, (long) strlen(body)) != CURLE_OK ||
                     curl_easy_setopt(v->easy, CURLOPT_COPYPOSTFIELDS, body) != CURLE_OK))
                return -EIO;
        return curl_event_add(s->curl, v->easy);
}

static int verification_start(CtVerification *v, const char *token) {
        const ConfigCustomToken *c = v->source->config;
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *t = json_object_new_string(token);
        const char *text;

        if (!o || !t || json_object_object_add(o, c->token_field, t) < 0) {
                json_object_put(t);
                return -ENOMEM;
        }
        text = json_text(o);
        if (!text)
                return -ENOMEM;
        v->login_body = strdup(text);
        explicit_bzero((char *) text, strlen(text));
        if (!v->login_body)
                return -ENOMEM;
        v->attempts = 1;
        return verification_send(v, c->token_url, v->login_body, NULL);
}

/* The step once more, when the connection broke before an answer (a reset, a kept-alive
 * connection the service had closed): both requests only look things up, so a repeat is
 * harmless. Once per step, within the deadline. */
static bool verification_retry(CtVerification *v, CURLcode code) {
        const ConfigCustomToken *c = v->source->config;

        if ((code != CURLE_RECV_ERROR && code != CURLE_SEND_ERROR && code != CURLE_GOT_NOTHING) || v->attempts >= 2 ||
            now_usec(v->source) >= v->deadline)
                return false;
        v->attempts++;
        log_debug("Token service: %s, asking once more.", curl_easy_strerror(code));
        if (v->step == CT_STEP_LOGIN)
                return verification_send(v, c->token_url, v->login_body, NULL) >= 0;
        return verification_send(v, c->verification_url, NULL, v->access_id) >= 0;
}

static const char *transport_message(CURLcode code, bool too_big) {
        if (too_big)
                return "The token service's answer is too large.";
        if (code == CURLE_OPERATION_TIMEDOUT)
                return "The token service did not answer in time (5 s).";
        if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST)
                return "Cannot reach the token service.";
        if (code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR || code == CURLE_GOT_NOTHING)
                return "The token service closed the connection without an answer.";
        return "The token service's answer was cut short or unreadable.";
}

static void warn_service(CustomTokenSource *s, const char *step, const char *message) {
        usec_t now = now_usec(s);

        if (s->warned_usec != 0 && now < s->warned_usec + CUSTOM_TOKEN_WARN_INTERVAL_USEC) {
                log_debug("Token service (%s): %s", step, message);
                return;
        }
        s->warned_usec = now;
        log_warning("Token service (%s): %s", step, message);
}

static void on_transfer_done(CurlEvent *c, CURL *easy, CURLcode code, void *userdata) {
        CustomTokenSource *s = userdata;
        _cleanup_free_ char *message = NULL;
        CtVerification *v = NULL;
        CtVerdict *verdict;
        long status = 0;
        int r;

        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &v) != CURLE_OK || !v)
                return;
        if (code != CURLE_OK && verification_retry(v, code))
                return;
        if (code != CURLE_OK) {
                warn_service(s, v->step == CT_STEP_LOGIN ? "token" : "verification", curl_easy_strerror(code));
                return verification_finish(v, NULL, -EIO, transport_message(code, v->answer_too_big));
        }
        (void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);

        if (v->step == CT_STEP_LOGIN) {
                r = custom_token_parse_login(status, v->answer, v->answer_size, s->config->user_field,
                                             &v->user, &v->access_id, &message);
                if (r == 0) {
                        v->step = CT_STEP_VERIFY;
                        v->attempts = 1;
                        r = verification_send(v, s->config->verification_url, NULL, v->access_id);
                        if (r >= 0)
                                return;
                        return verification_finish(v, NULL, r, "Cannot start the verification request.");
                }
        } else
                r = custom_token_parse_verification(status, v->answer, v->answer_size, s->fields, &message);

        if (r == -ENOMEM)
                return verification_finish(v, NULL, r, "Out of memory.");
        if (r < 0 && r != -EACCES) {
                warn_service(s, v->step == CT_STEP_LOGIN ? "token" : "verification", strna(message));
                return verification_finish(v, NULL, r, message);
        }

        /* A verdict on the token: kept, so that the service is not asked again for a while. */
        verdict = calloc(1, sizeof(CtVerdict));
        if (!verdict)
                return verification_finish(v, NULL, -ENOMEM, "Out of memory.");
        memcpy(verdict->key, v->key, sizeof(verdict->key));
        if (r == -EACCES) {
                verdict->error = -EACCES;
                verdict->message = TAKE_PTR(message);
                verdict->until = now_usec(s) + CUSTOM_TOKEN_REFUSED_USEC;
        } else {
                verdict_map_user(s, verdict, v->user);
                verdict->until = now_usec(s) + CUSTOM_TOKEN_OK_USEC;
                if (verdict->error == 0)
                        log_debug("Token of external user %s verified: acts as %s.", v->user, verdict->name);
        }
        if (verdict->error == -ENOMEM) {
                verdict_free(verdict);
                return verification_finish(v, NULL, -ENOMEM, "Out of memory.");
        }
        verification_finish(v, verdict, 0, NULL);
        cache_put(s, verdict);
}

/* ---- the identity source --------------------------------------------------------------------- */

static CustomTokenSource *source_of(HttpRequest *req) {
        return req->manager->custom_token;
}

/* Any bearer token but gatewayd's own (auth-token.c comes first in the table; the prefix check
 * here keeps gatewayd's tokens from ever reaching the site's service whatever the order). */
static bool custom_token_match(HttpRequest *req) {
        const char *t;

        if (!source_of(req))
                return false;
        t = auth_bearer_token(req);
        return t && !strneq(t, "gwt_", 4);
}

static int token_key(const char *token, char key[static 65]) {
        static const char hex[] = "0123456789abcdef";
        uint8_t h[32];

        if (gnutls_hash_fast(GNUTLS_DIG_SHA256, token, strlen(token), h) < 0)
                return -EIO;
        for (size_t i = 0; i < sizeof(h); i++) {
                key[2 * i] = hex[h[i] >> 4];
                key[2 * i + 1] = hex[h[i] & 15];
        }
        key[64] = 0;
        return 0;
}

static void custom_token_verify(HttpRequest *req, AuthVerified done) {
        CustomTokenSource *s = source_of(req);
        const char *token = auth_bearer_token(req);
        CtVerification *v;
        CtVerdict *verdict;
        CtWaiter *w;
        char key[65];
        int r;

        if (strlen(token) > CUSTOM_TOKEN_MAX)
                return done(req, -EACCES, NULL, "Malformed token (too long).");
        for (const char *p = token; *p; p++)
                if (*p <= ' ' || *p > '~')
                        return done(req, -EACCES, NULL, "Malformed token.");
        if (token_key(token, key) < 0)
                return done(req, -EIO, NULL, "Failed to hash the token.");

        verdict = hashmap_get(s->cache, key);
        if (verdict && verdict->until > now_usec(s))
                return deliver(req, done, verdict);

        w = calloc(1, sizeof(CtWaiter));
        if (!w)
                return done(req, -ENOMEM, NULL, "Out of memory.");
        *w = (CtWaiter) { .req = req, .done = done };

        v = hashmap_get(s->inflight, key);
        if (!v) {
                if (hashmap_size(s->inflight) >= CUSTOM_TOKEN_INFLIGHT_MAX) {
                        free(w);
                        return done(req, -EBUSY, NULL, "Too many token verifications in flight.");
                }
                v = calloc(1, sizeof(CtVerification));
                if (!v) {
                        free(w);
                        return done(req, -ENOMEM, NULL, "Out of memory.");
                }
                memcpy(v->key, key, sizeof(key));
                v->step = CT_STEP_LOGIN;
                v->deadline = now_usec(s) + CUSTOM_TOKEN_TIMEOUT_USEC;
                r = hashmap_put(s->inflight, v->key, v);
                if (r < 0) {
                        free(v);
                        free(w);
                        return done(req, r, NULL, "Out of memory.");
                }
                v->source = s;
                r = verification_start(v, token);
                if (r < 0) {
                        verification_free(v);
                        free(w);
                        return done(req, r, NULL, "Cannot start the request to the token service.");
                }
        }
        w->verification = v;
        w->next = v->waiters;
        v->waiters = w;
        req->auth_data = w;
}

/* The request goes away while its token is verified: the verification goes on (its verdict is
 * cached for the next request), without this waiter. */
static void custom_token_cancel(HttpRequest *req) {
        CtWaiter *w = TAKE_PTR(req->auth_data);

        if (!w)
                return;
        for (CtWaiter **p = &w->verification->waiters; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        break;
                }
        free(w);
}

static int custom_token_init(Manager *m) {
        const ConfigCustomToken *c = &m->config->custom_token;
        _cleanup_free_ CustomTokenSource *s = NULL;
        struct passwd *pw;
        int r;

        if (!c->token_url)
                return 0;
        if (c->local_user) {
                pw = getpwnam(c->local_user);
                if (!pw)
                        return log_error_errno(ENOENT, "Authentication.customToken.localUser: no such user '%s'.", c->local_user);
                if (pw->pw_uid == 0)
                        return log_error_errno(EPERM, "Authentication.customToken.localUser: must not be root.");
        }
        s = calloc(1, sizeof(CustomTokenSource));
        if (!s)
                return log_oom();
        s->manager = m;
        s->config = c;
        s->cache = hashmap_new();
        s->inflight = hashmap_new();
        if (!s->cache || !s->inflight || custom_token_split_fields(c->verification_field, &s->fields) < 0) {
                hashmap_free(s->cache);
                hashmap_free(s->inflight);
                strv_free(s->fields);
                return log_oom();
        }
        r = curl_event_new(m->event, "custom-token", on_transfer_done, s, &s->curl);
        if (r < 0) {
                hashmap_free(s->cache);
                hashmap_free(s->inflight);
                strv_free(s->fields);
                return log_error_errno(r, "Cannot set up the token service client: %m");
        }
        log_info("Bearer tokens are verified by the token service at %s.", c->token_url);
        m->custom_token = TAKE_PTR(s);
        return 0;
}

static void custom_token_done(Manager *m) {
        CustomTokenSource *s = TAKE_PTR(m->custom_token);
        CtVerification *v;

        if (!s)
                return;
        /* Requests were answered (and cancelled) when the HTTP server went away. */
        while (s->inflight && hashmap_size(s->inflight) > 0) {
                size_t i = 0;

                if (!hashmap_iterate(s->inflight, &i, (void **) &v, NULL))
                        break;
                verification_finish(v, NULL, -ECANCELED, "gatewayd is shutting down.");
        }
        cache_sweep(s, true);
        hashmap_free(s->cache);
        hashmap_free(s->inflight);
        curl_event_free(s->curl);
        strv_free(s->fields);
        free(s);
}

const AuthSource auth_source_custom_token = {
        .name = CUSTOM_TOKEN_SOURCE,
        .challenge = NULL,      /* also a bearer token: auth-token.c's challenge covers it */
        .match = custom_token_match,
        .verify = custom_token_verify,
        .cancel = custom_token_cancel,
        .init = custom_token_init,
        .done = custom_token_done,
};
