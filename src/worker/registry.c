/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <strings.h>
#include <time.h>

#include "auth-challenge.h"
#include "cancel.h"
#include "events.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "manifest.h"
#include "registry.h"
#include "sha256.h"

#define MAX_REDIRECTS 5
#define MAX_ERROR_BODY (64U * 1024U)

struct RegistryClient {
        char *display;     /* "127.0.0.1:5000/repo", for messages */
        char *base_url;    /* "http://127.0.0.1:5000" */
        char *origin;      /* base_url's scheme://host:port, to spot redirects elsewhere */
        char *repository;
        char *username, *password, *static_token;
        char *ca_file;     /* CA bundle for every connection of this client, NULL = system's */
        RegistryAuth auth;
        unsigned retries, retry_delay_ms;

        pthread_mutex_t lock;
        char *token;       /* bearer token negotiated from a challenge */
        bool use_basic;
};

static void curl_easy_cleanupp(CURL **c) {
        if (*c)
                curl_easy_cleanup(*c);
}

static void curl_slist_free_allp(struct curl_slist **l) {
        curl_slist_free_all(*l);
}

static bool host_is_loopback(const char *registry) {
        _cleanup_free_ char *host = NULL;
        const char *colon;

        if (registry[0] == '[')
                return strneq(registry, "[::1]", 5);
        colon = strchr(registry, ':');
        host = colon ? strndup(registry, colon - registry) : strdup(registry);
        if (!host)
                return false;
        return streq(host, "localhost") || strneq(host, "127.", 4);
}

static bool registry_is_insecure(const char *registry, char **insecure) {
        if (host_is_loopback(registry))
                return true;
        /* The same name rules as --allowed-registry: case-insensitive, Docker Hub's aliases. */
        for (char **i = insecure; i && *i; i++)
                if (registry_name_equal(*i, registry))
                        return true;
        return false;
}

/* scheme://host:port of a URL, with the default port filled in. */
static char *url_origin(const char *url) {
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL, *port = NULL, *s = NULL;

        if (!u)
                return NULL;
        if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
                if (asprintf(&s, "%s://%s:%s", scheme, host, port) < 0)
                        s = NULL;
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
        curl_url_cleanup(u);
        return s;
}

/* "https://host/" and "https://host" are the same base. */
static size_t base_url_length(const char *url) {
        size_t len = strlen(url);

        while (len > 0 && url[len - 1] == '/')
                len--;
        return len;
}

/* Resolves a Location header against the URL it came from. */
static char *url_resolve(const char *base, const char *location) {
        CURLU *u = curl_url();
        char *s = NULL, *r = NULL;

        if (!u)
                return NULL;
        if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
            curl_url_set(u, CURLUPART_URL, location, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK) {
                r = strdup(s);
                curl_free(s);
        }
        curl_url_cleanup(u);
        return r;
}

RegistryClient *registry_client_free(RegistryClient *c) {
        if (!c)
                return NULL;
        free(c->display);
        free(c->base_url);
        free(c->origin);
        free(c->repository);
        free(c->username);
        if (c->password)
                explicit_bzero(c->password, strlen(c->password));
        free(c->password);
        free(c->static_token);
        free(c->ca_file);
        free(c->token);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
}

int registry_auth_from_string(const char *s, RegistryAuth *ret) {
        if (streq(s, "http"))
                *ret = REGISTRY_AUTH_HTTP;
        else if (streq(s, "basic"))
                *ret = REGISTRY_AUTH_BASIC;
        else if (streq(s, "none"))
                *ret = REGISTRY_AUTH_NONE;
        else
                return -EINVAL;
        return 0;
}

int registry_client_new(const ImageReference *ref, const RegistryOptions *o, RegistryClient **ret) {
        _cleanup_(registry_client_freep) RegistryClient *c = NULL;

        c = calloc(1, sizeof(RegistryClient));
        if (!c)
                return -ENOMEM;
        pthread_mutex_init(&c->lock, NULL);

        if (asprintf(&c->display, "%s/%s", ref->registry, ref->repository) < 0) {
                c->display = NULL;
                return -ENOMEM;
        }
        if (o->base_url)
                /* A registry reached under another name: its own name is never looked up. */
                c->base_url = strndup(o->base_url, base_url_length(o->base_url));
        else if (asprintf(&c->base_url, "%s://%s",
                          registry_is_insecure(ref->registry, o->insecure_registries) ? "http" : "https",
                          registry_api_host(ref->registry)) < 0)
                c->base_url = NULL;
        if (!c->base_url)
                return -ENOMEM;
        if (!strneq(c->base_url, "http://", 7) && !strneq(c->base_url, "https://", 8))
                return worker_error_errno(EINVAL, "Registry URL for %s must be http:// or https://, got '%s'",
                                          ref->registry, c->base_url);
        c->origin = url_origin(c->base_url);
        c->repository = strdup(ref->repository);
        if (!c->origin || !c->repository)
                return -ENOMEM;
        if (o->ca_file && !(c->ca_file = strdup(o->ca_file)))
                return -ENOMEM;
        c->auth = o->auth;
        if (c->auth == REGISTRY_AUTH_BASIC && o->token && !o->username)
                return worker_error_errno(EINVAL, "Credentials for %s: the registry takes basic authentication "
                                          "(username and password), not a token", ref->registry);
        /* With authentication "none" the credentials are dropped here, so none can ever be sent. */
        if (c->auth != REGISTRY_AUTH_NONE &&
            ((o->username && !(c->username = strdup(o->username))) ||
             (o->password && !(c->password = strdup(o->password))) ||
             (c->auth == REGISTRY_AUTH_HTTP && o->token && !(c->static_token = strdup(o->token)))))
                return -ENOMEM;
        /* Basic credentials go along from the first request, without waiting for a challenge. */
        c->use_basic = c->auth == REGISTRY_AUTH_BASIC && c->username;
        c->retries = o->retries;
        c->retry_delay_ms = o->retry_delay_ms ?: 250;

        *ret = TAKE_PTR(c);
        return 0;
}

/* One HTTP exchange. Headers of interest are captured; the body of a 2xx response goes to the
 * sink, any other body is kept (bounded) for the error message. */
typedef struct Exchange {
        const RegistrySink *sink;
        CURL *curl;
        long status;
        char *www_authenticate, *location, *content_type, *docker_digest;
        long retry_after;
        char *error_body;
        size_t error_body_size;
        int sink_error;
        char curl_error[CURL_ERROR_SIZE]; /* libcurl's details, e.g. why a certificate failed */
} Exchange;

static void exchange_clear(Exchange *x) {
        x->www_authenticate = mfree(x->www_authenticate);
        x->location = mfree(x->location);
        x->content_type = mfree(x->content_type);
        x->docker_digest = mfree(x->docker_digest);
        x->error_body = mfree(x->error_body);
        x->error_body_size = 0;
        x->retry_after = -1;
        x->status = 0;
        x->sink_error = 0;
        x->curl_error[0] = 0;
}

static bool header_is(const char *line, size_t n, const char *name, const char **ret_value, size_t *ret_len) {
        size_t l = strlen(name);

        if (n <= l || strncasecmp(line, name, l) != 0 || line[l] != ':')
                return false;
        line += l + 1;
        n -= l + 1;
        while (n > 0 && (*line == ' ' || *line == '\t'))
                line++, n--;
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
                n--;
        *ret_value = line;
        *ret_len = n;
        return true;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *userdata) {
        Exchange *x = userdata;
        size_t n = size * nitems, vl;
        const char *v;
        char **field = NULL;

        if (n >= 5 && strneq(buf, "HTTP/", 5)) {
                /* A new response (after 100 Continue): forget earlier headers. */
                free(x->www_authenticate);
                free(x->location);
                free(x->content_type);
                free(x->docker_digest);
                x->www_authenticate = x->location = x->content_type = x->docker_digest = NULL;
                x->retry_after = -1;
                return n;
        }

        if (header_is(buf, n, "WWW-Authenticate", &v, &vl)) {
                if (x->www_authenticate)
                        return n; /* keep the first challenge */
                field = &x->www_authenticate;
        } else if (header_is(buf, n, "Location", &v, &vl))
                field = &x->location;
        else if (header_is(buf, n, "Content-Type", &v, &vl))
                field = &x->content_type;
        else if (header_is(buf, n, "Docker-Content-Digest", &v, &vl))
                field = &x->docker_digest;
        else if (header_is(buf, n, "Retry-After", &v, &vl)) {
                char tmp[32];
                if (vl < sizeof(tmp)) {
                        memcpy(tmp, v, vl);
                        tmp[vl] = 0;
                        x->retry_after = strtol(tmp, NULL, 10);
                }
                return n;
        }
        if (field) {
                free(*field);
                *field = strndup(v, vl);
                if (!*field)
                        return 0;
        }
        return n;
}

static size_t write_cb(char *buf, size_t size, size_t nmemb, void *userdata) {
        Exchange *x = userdata;
        size_t n = size * nmemb;

        if (x->status == 0)
                curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->status);

        if (x->status >= 200 && x->status < 300) {
                int r = x->sink->write(buf, n, x->sink->userdata);
                if (r < 0) {
                        x->sink_error = r;
                        return 0;
                }
                return n;
        }

        if (x->error_body_size + n <= MAX_ERROR_BODY) {
                char *p = realloc(x->error_body, x->error_body_size + n + 1);
                if (!p)
                        return 0;
                memcpy(p + x->error_body_size, buf, n);
                x->error_body = p;
                x->error_body_size += n;
                p[x->error_body_size] = 0;
        }
        return n;
}

static int xferinfo_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        const RegistrySink *sink = userdata;

        /* non-zero aborts the transfer */
        return cancelled() || (sink && sink->cancelled && sink->cancelled(sink->userdata));
}

static CURL *curl_new(const RegistryClient *c, const char *url) {
        CURL *curl = curl_easy_init();
        if (!curl)
                return NULL;
        if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
            (c->ca_file && (curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca_file) != CURLE_OK ||
                            curl_easy_setopt(curl, CURLOPT_CAPATH, NULL) != CURLE_OK))) {
                curl_easy_cleanup(curl);
                return NULL;
        }
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "gateway-worker/" GATEWAYD_VERSION);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
        /* A stalled transfer (under 1 byte/s for a minute) counts as a transient failure. */
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
        /* Redirects are followed by hand (registry_get() checks their scheme too); should
         * libcurl ever follow one, it may only be to http or https. */
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 256L * 1024L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        return curl;
}

static int exchange_perform(RegistryClient *c, const char *url, bool send_auth, const char *accept, Exchange *x, CURLcode *ret_code) {
        _cleanup_(curl_easy_cleanupp) CURL *curl = NULL;
        _cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
        _cleanup_free_ char *auth = NULL;
        struct curl_slist *l;
        CURLcode code;
        int r;

        exchange_clear(x);
        r = x->sink->reset ? x->sink->reset(x->sink->userdata) : 0;
        if (r < 0)
                return r;

        curl = curl_new(c, url);
        if (!curl)
                return -ENOMEM;
        x->curl = curl;
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, x->curl_error);

        if (accept) {
                _cleanup_free_ char *h = NULL;
                if (asprintf(&h, "Accept: %s", accept) < 0)
                        return -ENOMEM;
                l = curl_slist_append(headers, h);
                if (!l)
                        return -ENOMEM;
                headers = l;
        }

        if (send_auth) {
                pthread_mutex_lock(&c->lock);
                if (c->static_token || c->token) {
                        if (asprintf(&auth, "Authorization: Bearer %s", c->static_token ?: c->token) < 0)
                                auth = NULL;
                } else if (c->use_basic) {
                        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
                        curl_easy_setopt(curl, CURLOPT_USERNAME, c->username);
                        curl_easy_setopt(curl, CURLOPT_PASSWORD, strempty(c->password));
                }
                pthread_mutex_unlock(&c->lock);
                if (auth) {
                        l = curl_slist_append(headers, auth);
                        explicit_bzero(auth, strlen(auth));
                        if (!l)
                                return -ENOMEM;
                        headers = l;
                }
        }
        if (headers)
                curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, x->sink);

        code = curl_easy_perform(curl);
        if (x->status == 0)
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &x->status);
        x->curl = NULL;
        *ret_code = code;
        return 0;
}

static bool curl_code_is_transient(CURLcode code) {
        switch (code) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_SSL_CONNECT_ERROR:
                return true;
        default:
                return false;
        }
}

static bool curl_code_is_tls(CURLcode code) {
        switch (code) {
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_INVALIDCERTSTATUS:
                return true;
        default:
                return false;
        }
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !cancelled())
                ;
}

static unsigned backoff_ms(RegistryClient *c, unsigned attempt, long retry_after) {
        unsigned ms;

        if (retry_after >= 0)
                return (unsigned) MIN(retry_after, 60L) * 1000U;
        ms = c->retry_delay_ms << MIN(attempt, 10U);
        return MIN(ms, 10000U);
}

/* The registry's own words for an error ({"errors":[{"code":…,"message":…}]}), if any. */
static char *registry_error_message(const char *body) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *errors, *e, *m;

        if (!body)
                return NULL;
        o = json_tokener_parse(body);
        if (!o || !json_object_object_get_ex(o, "errors", &errors) ||
            !json_object_is_type(errors, json_type_array) || json_object_array_length(errors) == 0)
                return NULL;
        e = json_object_array_get_idx(errors, 0);
        if (!json_object_object_get_ex(e, "message", &m) || !json_object_is_type(m, json_type_string))
                return NULL;
        return strdup(json_object_get_string(m));
}

static int status_to_errno(long status) {
        switch (status) {
        case 401:
                return -EACCES;
        case 403:
                return -EPERM;
        case 404:
                return -ENOENT;
        case 429:
                return -EBUSY;
        default:
                return -EIO;
        }
}

static const char *status_to_message(long status, const char *kind) {
        switch (status) {
        case 401:
                return "authentication required";
        case 403:
                return "access denied";
        case 404:
                return streq(kind, "manifest") ? "manifest unknown" :
                       streq(kind, "blob") ? "blob unknown" : "not found";
        case 429:
                return "too many requests";
        default:
                return "registry error";
        }
}

char *registry_token_url(const char *realm, const char *service, const char *scope) {
        char *esc_service = NULL, *esc_scope = NULL, *url = NULL;
        const char *sep = strchr(realm, '?') ? "&" : "?";

        if (service)
                esc_service = curl_easy_escape(NULL, service, 0);
        if (scope)
                esc_scope = curl_easy_escape(NULL, scope, 0);
        if ((service && !esc_service) || (scope && !esc_scope))
                goto finish;
        if (asprintf(&url, "%s%s%s%s%s%s%s", realm,
                     (service || scope) ? sep : "",
                     service ? "service=" : "", strempty(esc_service),
                     service && scope ? "&" : "",
                     scope ? "scope=" : "", strempty(esc_scope)) < 0)
                url = NULL;
finish:
        curl_free(esc_service);
        curl_free(esc_scope);
        return url;
}

typedef struct Buffer {
        char *data;
        size_t size, max;
} Buffer;

static int buffer_reset(void *userdata) {
        Buffer *b = userdata;
        b->data = mfree(b->data);
        b->size = 0;
        return 0;
}

static int buffer_write(const void *p, size_t n, void *userdata) {
        Buffer *b = userdata;
        char *d;

        if (b->size + n > b->max)
                return -EFBIG;
        d = realloc(b->data, b->size + n + 1);
        if (!d)
                return -ENOMEM;
        memcpy(d + b->size, p, n);
        b->data = d;
        b->size += n;
        d[b->size] = 0;
        return 0;
}

/* Fetches a bearer token for the challenge, with basic credentials if we have them. */
static int registry_fetch_token(RegistryClient *c, const AuthChallenge *ch) {
        _cleanup_free_ char *url = NULL, *default_scope = NULL;
        _cleanup_(curl_easy_cleanupp) CURL *curl = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        Buffer b = { .max = 1024 * 1024 };
        RegistrySink sink = { .reset = buffer_reset, .write = buffer_write, .userdata = &b };
        Exchange x = { .sink = &sink, .retry_after = -1 };
        json_object *t;
        const char *token;
        CURLcode code = CURLE_OK;
        unsigned attempt = 0;
        int r;

        if (!ch->scope && asprintf(&default_scope, "repository:%s:pull", c->repository) < 0)
                return -ENOMEM;
        url = registry_token_url(ch->realm, ch->service, ch->scope ?: default_scope);
        if (!url)
                return -ENOMEM;

        for (;;) {
                curl = curl_new(c, url);
                if (!curl) {
                        r = -ENOMEM;
                        goto finish;
                }
                exchange_clear(&x);
                buffer_reset(&b);
                x.curl = curl;
                if (c->username) {
                        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
                        curl_easy_setopt(curl, CURLOPT_USERNAME, c->username);
                        curl_easy_setopt(curl, CURLOPT_PASSWORD, strempty(c->password));
                }
                curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
                curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x);
                curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
                curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
                code = curl_easy_perform(curl);
                if (x.status == 0)
                        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &x.status);
                curl_easy_cleanup(TAKE_PTR(curl));

                if (code == CURLE_OK && x.status >= 200 && x.status < 300)
                        break;
                if (attempt < c->retries &&
                    ((code != CURLE_OK && curl_code_is_transient(code)) ||
                     (code == CURLE_OK && (x.status == 429 || x.status >= 500)))) {
                        sleep_ms(backoff_ms(c, attempt++, x.retry_after));
                        continue;
                }
                if (code != CURLE_OK)
                        r = worker_error_errno(EIO, "Failed to get a token from %s for %s: %s",
                                               ch->realm, c->display, curl_easy_strerror(code));
                else if (x.status == 401 || x.status == 403)
                        r = worker_error_errno(EACCES, "authentication failed: %s for %s (HTTP %ld)",
                                               c->username ? "credentials rejected by the token service"
                                                           : "the token service requires credentials",
                                               c->display, x.status);
                else
                        r = worker_error_errno(EIO, "Token service %s failed for %s (HTTP %ld)",
                                               ch->realm, c->display, x.status);
                goto finish;
        }

        o = json_tokener_parse(strempty(b.data));
        if (!o || !((json_object_object_get_ex(o, "token", &t) && json_object_is_type(t, json_type_string)) ||
                    (json_object_object_get_ex(o, "access_token", &t) && json_object_is_type(t, json_type_string)))) {
                r = worker_error_errno(EBADMSG, "Token service %s returned no token for %s", ch->realm, c->display);
                goto finish;
        }
        token = json_object_get_string(t);
        pthread_mutex_lock(&c->lock);
        r = free_and_strdup(&c->token, token);
        pthread_mutex_unlock(&c->lock);

finish:
        exchange_clear(&x);
        free(b.data);
        return r;
}

static int registry_authenticate(RegistryClient *c, const char *header, const char *subject) {
        _cleanup_(auth_challenge_freep) AuthChallenge *ch = NULL;
        int r;

        if (c->auth == REGISTRY_AUTH_NONE)
                return worker_error_errno(EACCES, "authentication required: %s (HTTP 401); the registry is configured "
                                          "with authentication \"none\", so no credentials are sent", subject);
        if (!header)
                return worker_error_errno(EACCES, "authentication required: %s (HTTP 401 without a challenge)", subject);
        r = auth_challenge_parse(header, &ch);
        if (r < 0)
                return worker_error_errno(r, "Cannot parse the registry's authentication challenge for %s: %s", subject, header);

        if (c->auth == REGISTRY_AUTH_BASIC && !streq(ch->scheme, "basic"))
                return worker_error_errno(EACCES, "authentication required: %s asks for '%s' authentication, but the "
                                          "registry is configured with authentication \"basic\"", subject, ch->scheme);
        if (streq(ch->scheme, "basic")) {
                if (c->use_basic) /* sent with the request already */
                        return worker_error_errno(EACCES, "authentication failed: %s (HTTP 401)", subject);
                if (!c->username)
                        return worker_error_errno(EACCES, "authentication required: %s (HTTP 401; no credentials given)", subject);
                pthread_mutex_lock(&c->lock);
                c->use_basic = true;
                pthread_mutex_unlock(&c->lock);
                return 0;
        }
        if (streq(ch->scheme, "bearer")) {
                if (c->static_token)
                        return worker_error_errno(EACCES, "authentication failed: %s rejected the given token (HTTP 401)", subject);
                return registry_fetch_token(c, ch);
        }
        return worker_error_errno(EOPNOTSUPP, "Unsupported authentication scheme '%s' for %s", ch->scheme, subject);
}

/* GET base_url + path with authentication, redirects and retries. kind is "manifest" or "blob"
 * and subject names the object in messages. */
static int registry_get(RegistryClient *c, const char *path, const char *accept, const char *kind,
                        const char *subject, const RegistrySink *sink, Exchange *x) {
        _cleanup_free_ char *url = NULL;
        unsigned attempt = 0, redirects = 0;
        bool same_origin = true, authenticated = false;
        int r;

        if (asprintf(&url, "%s%s", c->base_url, path) < 0)
                return -ENOMEM;

        for (;;) {
                CURLcode code;

                r = exchange_perform(c, url, same_origin, accept, x, &code);
                if (r < 0)
                        return r;
                if (x->sink_error < 0)
                        return x->sink_error;

                if (code != CURLE_OK && cancelled())
                        return -EINTR;
                if (code != CURLE_OK && sink->cancelled && sink->cancelled(sink->userdata))
                        return -ECANCELED;
                if (code != CURLE_OK) {
                        if (curl_code_is_transient(code) && attempt < c->retries) {
                                log_debug("%s: %s, retrying", subject, curl_easy_strerror(code));
                                sleep_ms(backoff_ms(c, attempt++, -1));
                                continue;
                        }
                        if (curl_code_is_tls(code))
                                return worker_error_errno(EIO, "Failed to fetch %s %s: TLS error with %s: %s%s", kind,
                                                          subject, url, x->curl_error[0] ? x->curl_error : curl_easy_strerror(code),
                                                          c->ca_file ? "" : " (no CA bundle given for this registry: sslcacert in Locations)");
                        return worker_error_errno(code == CURLE_COULDNT_CONNECT ? ECONNREFUSED : EIO,
                                                  "Failed to fetch %s %s: %s%s", kind, subject,
                                                  curl_easy_strerror(code),
                                                  attempt > 0 ? " (gave up after retrying)" : "");
                }

                if (x->status >= 200 && x->status < 300)
                        return 0;

                if (x->status >= 300 && x->status < 400 && x->location) {
                        _cleanup_free_ char *next = NULL, *origin = NULL;

                        if (++redirects > MAX_REDIRECTS)
                                return worker_error_errno(ELOOP, "Too many redirects fetching %s %s", kind, subject);
                        next = url_resolve(url, x->location);
                        if (!next)
                                return worker_error_errno(EBADMSG, "Bad redirect for %s %s: %s", kind, subject, x->location);
                        origin = url_origin(next);
                        if (!origin || (!strneq(next, "http://", 7) && !strneq(next, "https://", 8)))
                                return worker_error_errno(EBADMSG, "Bad redirect for %s %s: %s", kind, subject, x->location);
                        /* Credentials only ever go to the registry itself. */
                        same_origin = same_origin && streq(origin, c->origin);
                        free(url);
                        url = TAKE_PTR(next);
                        continue;
                }

                if (x->status == 401 && same_origin && !authenticated) {
                        authenticated = true;
                        r = registry_authenticate(c, x->www_authenticate, subject);
                        if (r < 0)
                                return r;
                        continue;
                }

                if ((x->status == 429 || x->status >= 500) && attempt < c->retries) {
                        log_debug("%s: HTTP %ld, retrying", subject, x->status);
                        sleep_ms(backoff_ms(c, attempt++, x->retry_after));
                        continue;
                }

                {
                        _cleanup_free_ char *m = registry_error_message(x->error_body);
                        const char *what = m ?: status_to_message(x->status, kind);

                        if (x->status == 401 && authenticated)
                                return worker_error_errno(EACCES, "authentication failed: %s (HTTP 401)", subject);
                        return worker_error_errno(status_to_errno(x->status), "%s: %s (HTTP %ld)", what, subject, x->status);
                }
        }
}

#define MANIFEST_ACCEPT                                                 \
        "application/vnd.oci.image.manifest.v1+json, "                  \
        "application/vnd.oci.image.index.v1+json, "                     \
        "application/vnd.docker.distribution.manifest.v2+json, "        \
        "application/vnd.docker.distribution.manifest.list.v2+json"

int registry_get_manifest(RegistryClient *c, const char *ref, char **ret_body, size_t *ret_size,
                          char **ret_media_type, char **ret_digest) {
        _cleanup_free_ char *path = NULL, *subject = NULL, *media_type = NULL;
        Buffer b = { .max = MANIFEST_SIZE_MAX };
        RegistrySink sink = { .reset = buffer_reset, .write = buffer_write, .userdata = &b };
        Exchange x = { .sink = &sink, .retry_after = -1 };
        char digest[72];
        int r;

        if (asprintf(&path, "/v2/%s/manifests/%s", c->repository, ref) < 0 ||
            asprintf(&subject, "%s%s%s", c->display, digest_is_valid(ref) ? "@" : ":", ref) < 0) {
                path = subject = NULL;
                return -ENOMEM;
        }

        r = registry_get(c, path, MANIFEST_ACCEPT, "manifest", subject, &sink, &x);
        if (r == -EFBIG)
                r = worker_error_errno(EFBIG, "Manifest %s is larger than %u bytes", subject, MANIFEST_SIZE_MAX);
        if (r < 0)
                goto finish;
        if (!b.data) {
                r = worker_error_errno(EBADMSG, "Registry returned an empty manifest for %s", subject);
                goto finish;
        }

        r = sha256_digest_of(b.data, b.size, digest);
        if (r < 0)
                goto finish;
        if (digest_is_valid(ref) && !streq(ref, digest)) {
                r = worker_error_errno(EBADMSG, "digest mismatch: manifest %s has digest %s", subject, digest);
                goto finish;
        }

        if (x.content_type) {
                /* drop parameters ("; charset=utf-8") */
                media_type = strndup(x.content_type, strcspn(x.content_type, "; "));
                if (!media_type) {
                        r = -ENOMEM;
                        goto finish;
                }
        }

        *ret_body = TAKE_PTR(b.data);
        *ret_size = b.size;
        *ret_media_type = TAKE_PTR(media_type);
        *ret_digest = strdup(digest);
        r = *ret_digest ? 0 : -ENOMEM;
finish:
        free(b.data);
        exchange_clear(&x);
        return r;
}

int registry_get_blob(RegistryClient *c, const char *digest, const RegistrySink *sink) {
        _cleanup_free_ char *path = NULL, *subject = NULL;
        Exchange x = { .sink = sink, .retry_after = -1 };
        int r;

        if (asprintf(&path, "/v2/%s/blobs/%s", c->repository, digest) < 0 ||
            asprintf(&subject, "%s@%s", c->display, digest) < 0) {
                path = subject = NULL;
                return -ENOMEM;
        }
        r = registry_get(c, path, NULL, "blob", subject, sink, &x);
        exchange_clear(&x);
        return r;
}
