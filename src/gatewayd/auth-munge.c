/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* munge credentials as Shifter's shifterimg sends them: the header "authentication: MUNGE:…:",
 * decoded with libmunge (munge's only supported decoder: the format is munged's private business)
 * against the munged of "Authentication" or of the platform a /api/ route names
 * ("mungeSocketPath"). The credential's uid and gid are the caller.
 *
 * munge_decode() is a blocking round trip to munged. munged answers in about 0.2 ms, but a hung
 * one keeps libmunge waiting for about 4 s (its own retries; libmunge has no timeout option), and
 * a blocked sd-event loop would stall every client. So decodes run on a few threads of their
 * own, each request waits suspended, and a timer answers 503 after MUNGE_TIMEOUT_USEC whatever
 * the thread still does (a job no thread has started yet is dropped then); a bounded queue
 * answers 503 at once when munged cannot keep up. No munged gets more than
 * MUNGE_THREADS_PER_SOCKET threads, so a hung one (a platform's) leaves the others served. The
 * threads touch only their job's credential and results, never a request: results come back to
 * the loop through an eventfd, and the loop alone decides what a request is told.
 *
 * Replays: munged refuses a credential it decoded before, but only its own: every munged keeps
 * its own cache, and several munged with one key (a platform's socket and the default one) would
 * each accept the same credential once. So gatewayd keeps its own cache of the credentials it
 * accepted (or is decoding), until long after they expire. */
#include <munge.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <time.h>

#include <systemd/sd-event.h>

#include "auth-source.h"
#include "hashmap.h"
#include "http-server.h"
#include "log.h"
#include "manager.h"
#include "munge-credential.h"
#include "registry-logins.h"
#include "time-util.h"

#define MUNGE_SOURCE "munge"           /* AuthSource.name, Identity.source */
#define MUNGE_HEADER "authentication"  /* Shifter's api.py */
#define MUNGE_THREADS 4
#define MUNGE_THREADS_PER_SOCKET 2
#define MUNGE_QUEUE_MAX 64U            /* decodes waiting or running; more: 503 at once */
#define MUNGE_TIMEOUT_USEC (2 * USEC_PER_SEC)
#define MUNGE_PAYLOAD_MAX (64U * 1024U)
/* Credentials remembered against replays: at munged's longest TTL (1 h) and shifterimg's pace
 * (a credential per request, two per second while a pull is polled) this is ample; when full of
 * live entries, new credentials get 503 rather than an unguarded decode. */
#define MUNGE_REPLAY_MAX 100000U
/* Kept past encode time + TTL by this much more: munged accepts clock skew of up to a TTL. */
#define MUNGE_REPLAY_SLACK_USEC (60 * USEC_PER_SEC)
#define MUNGE_REPLAY_PENDING UINT64_MAX

typedef struct MungeDecoder MungeDecoder;

typedef struct MungeJob {
        MungeDecoder *decoder;
        /* Loop side: the request, NULL once it was answered (timeout) or went away. */
        HttpRequest *req;
        AuthVerified done;
        sd_event_source *timer;
        char key[65];

        /* Thread side: input, then results. */
        char *credential;
        char *socket;                   /* NULL: libmunge's default */
        munge_err_t err;
        char *error;                    /* munged's or libmunge's words */
        uid_t uid;
        gid_t gid;
        time_t encoded;
        int ttl;
        char *name;                     /* the uid's account, or the uid in decimal */
        RegistryLogins *logins;

        struct MungeJob *next;
} MungeJob;

struct MungeDecoder {
        Manager *manager;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        pthread_t threads[MUNGE_THREADS];
        size_t n_threads;
        bool stopping;
        MungeJob *queue, **queue_tail;  /* waiting for a thread */
        MungeJob *running[MUNGE_THREADS]; /* by thread */
        MungeJob *finished;             /* decoded, waiting for the loop */
        unsigned n_jobs;                /* queued, decoding or finished: the loop's count */

        int event_fd;
        sd_event_source *event_source;
        Hashmap *replays;               /* key → MungeReplay */
        unsigned inserts;
};

typedef struct MungeReplay {
        char key[65];
        uint64_t until_usec;            /* CLOCK_REALTIME; MUNGE_REPLAY_PENDING while decoding */
} MungeReplay;

static MungeJob *munge_job_free(MungeJob *j) {
        if (!j)
                return NULL;
        sd_event_source_disable_unref(j->timer);
        if (j->credential) {
                explicit_bzero(j->credential, strlen(j->credential));
                free(j->credential);
        }
        free(j->socket);
        free(j->error);
        free(j->name);
        registry_logins_free(j->logins);
        free(j);
        return NULL;
}

/* ---- the threads ---- */

static void munge_job_decode(MungeJob *j) {
        munge_ctx_t ctx = munge_ctx_create();
        void *payload = NULL;
        int len = 0;

        if (!ctx) {
                j->err = EMUNGE_NO_MEMORY;
                return;
        }
        if (j->socket)
                j->err = munge_ctx_set(ctx, MUNGE_OPT_SOCKET, j->socket);
        if (j->err == EMUNGE_SUCCESS)
                j->err = munge_decode(j->credential, ctx, &payload, &len, &j->uid, &j->gid);
        if (j->err != EMUNGE_SUCCESS) {
                const char *s = munge_ctx_strerror(ctx);
                j->error = strdup(s ?: munge_strerror(j->err));
        }
        (void) munge_ctx_get(ctx, MUNGE_OPT_ENCODE_TIME, &j->encoded);
        (void) munge_ctx_get(ctx, MUNGE_OPT_TTL, &j->ttl);
        munge_ctx_destroy(ctx);

        if (j->err == EMUNGE_SUCCESS) {
                struct passwd pw, *found = NULL;
                char buf[4096];

                /* Here rather than on the loop: NSS may ask a directory service. */
                if (getpwuid_r(j->uid, &pw, buf, sizeof(buf), &found) == 0 && found)
                        j->name = strdup(found->pw_name);
                else if (asprintf(&j->name, "%u", (unsigned) j->uid) < 0)
                        j->name = NULL;
                if (payload && len > 0 && (size_t) len <= MUNGE_PAYLOAD_MAX &&
                    registry_logins_from_munge_payload(payload, (size_t) len, &j->logins) < 0)
                        j->err = EMUNGE_NO_MEMORY;
                if (!j->name)
                        j->err = EMUNGE_NO_MEMORY;
        }
        if (payload) {
                explicit_bzero(payload, (size_t) MAX(len, 0));
                free(payload);
        }
}

static bool streq_ptr(const char *a, const char *b) {
        return a == b || (a && b && streq(a, b));
}

/* The first queued job whose munged has fewer than MUNGE_THREADS_PER_SOCKET threads decoding
 * for it, taken out of the queue; NULL if none. Called with the lock held. */
static MungeJob *munge_queue_take(MungeDecoder *d) {
        for (MungeJob **p = &d->queue; *p; p = &(*p)->next) {
                MungeJob *j = *p;
                unsigned busy = 0;

                for (size_t i = 0; i < MUNGE_THREADS; i++)
                        if (d->running[i] && streq_ptr(d->running[i]->socket, j->socket))
                                busy++;
                if (busy >= MUNGE_THREADS_PER_SOCKET)
                        continue;
                *p = j->next;
                if (d->queue_tail == &j->next)
                        d->queue_tail = p;
                j->next = NULL;
                return j;
        }
        return NULL;
}

typedef struct MungeThread {
        MungeDecoder *decoder;
        size_t slot;
} MungeThread;

static void *munge_thread(void *userdata) {
        MungeDecoder *d = ((MungeThread *) userdata)->decoder;
        size_t slot = ((MungeThread *) userdata)->slot;
        uint64_t one = 1;

        free(userdata);
        pthread_mutex_lock(&d->lock);
        for (;;) {
                MungeJob *j = NULL;

                while (!d->stopping && !(j = munge_queue_take(d)))
                        pthread_cond_wait(&d->wake, &d->lock);
                if (d->stopping)
                        break;  /* what is still queued is freed with the decoder */
                d->running[slot] = j;
                pthread_mutex_unlock(&d->lock);

                munge_job_decode(j);

                pthread_mutex_lock(&d->lock);
                d->running[slot] = NULL;
                j->next = d->finished;
                d->finished = j;
                if (write(d->event_fd, &one, sizeof(one)) < 0)
                        log_debug_errno(errno, "Failed to wake the loop for a munge result: %m");
                /* A job that waited for this munged's share of threads may go now. */
                pthread_cond_broadcast(&d->wake);
        }
        pthread_mutex_unlock(&d->lock);
        return NULL;
}

/* Takes j out of the queue if no thread has started it; then it is the loop's again. */
static bool munge_job_unqueue(MungeDecoder *d, MungeJob *j) {
        bool found = false;

        pthread_mutex_lock(&d->lock);
        for (MungeJob **p = &d->queue; *p; p = &(*p)->next)
                if (*p == j) {
                        *p = j->next;
                        if (d->queue_tail == &j->next)
                                d->queue_tail = p;
                        found = true;
                        break;
                }
        pthread_mutex_unlock(&d->lock);
        return found;
}

/* ---- the replay cache (loop only) ---- */

static void munge_replays_prune(MungeDecoder *d) {
        uint64_t now = now_realtime_usec();
        MungeReplay **stale, *e;
        size_t n = 0;

        stale = calloc(hashmap_size(d->replays) + 1, sizeof(MungeReplay *));
        if (!stale)
                return;
        HASHMAP_FOREACH(e, d->replays)
                if (e->until_usec != MUNGE_REPLAY_PENDING && e->until_usec <= now)
                        stale[n++] = e;
        for (size_t i = 0; i < n; i++)
                free(hashmap_remove(d->replays, stale[i]->key));
        free(stale);
}

/* 0: recorded as being decoded; -EEXIST: seen (a replay); -ENOSPC: cache full; -ENOMEM. */
static int munge_replays_claim(MungeDecoder *d, const char *key) {
        MungeReplay *e = hashmap_get(d->replays, key);
        int r;

        if (e && (e->until_usec == MUNGE_REPLAY_PENDING || e->until_usec > now_realtime_usec()))
                return -EEXIST;
        if (e)
                free(hashmap_remove(d->replays, key));
        if (++d->inserts % 1024 == 0 || hashmap_size(d->replays) >= MUNGE_REPLAY_MAX)
                munge_replays_prune(d);
        if (hashmap_size(d->replays) >= MUNGE_REPLAY_MAX)
                return -ENOSPC;
        e = calloc(1, sizeof(MungeReplay));
        if (!e)
                return -ENOMEM;
        memcpy(e->key, key, sizeof(e->key));
        e->until_usec = MUNGE_REPLAY_PENDING;
        r = hashmap_put(d->replays, e->key, e);
        if (r < 0)
                free(e);
        return r;
}

/* After the decode: a credential munged accepted (or called a replay) stays until it cannot be
 * accepted anywhere any more; one that failed otherwise is forgotten (a retry once munged is
 * back must not be called a replay). */
static void munge_replays_settle(MungeDecoder *d, const MungeJob *j) {
        MungeReplay *e = hashmap_get(d->replays, j->key);

        if (!e)
                return;
        if (j->err == EMUNGE_SUCCESS || j->err == EMUNGE_CRED_REPLAYED) {
                uint64_t ttl = (uint64_t) MAX(j->ttl, 0) * USEC_PER_SEC;
                uint64_t encoded = j->encoded > 0 ? (uint64_t) j->encoded * USEC_PER_SEC : now_realtime_usec();

                e->until_usec = encoded + 2 * ttl + MUNGE_REPLAY_SLACK_USEC;
        } else
                free(hashmap_remove(d->replays, j->key));
}

/* ---- the loop side ---- */

static MungeDecoder *munge_decoder(HttpRequest *req) {
        return req->manager->munge;
}

static void munge_job_answer(MungeJob *j) {
        HttpRequest *req = TAKE_PTR(j->req);
        AuthVerified done = j->done;
        _cleanup_free_ char *message = NULL;
        /* Clients get munge's word for the error; the context's message (which may name the
         * socket's path) goes to the log only. */
        const char *why = munge_strerror(j->err);
        int r = -EACCES;

        j->timer = sd_event_source_disable_unref(j->timer);
        req->auth_data = NULL;
        switch (j->err) {
        case EMUNGE_SUCCESS:
                req->registry_logins = TAKE_PTR(j->logins);
                return done(req, 0, &(Identity) {
                        .uid = j->uid,
                        .gid = j->gid,
                        .name = j->name,
                        .source = MUNGE_SOURCE,
                        .scopes = AUTH_SCOPE_ALL,
                }, NULL);
        case EMUNGE_CRED_REPLAYED:
                return done(req, -EACCES, NULL, "Replayed munge credential (each credential is good for one request).");
        case EMUNGE_CRED_EXPIRED:
                r = asprintf(&message, "Expired munge credential (encoded %lld s ago, TTL %d s).",
                             (long long) (time(NULL) - j->encoded), j->ttl);
                return done(req, -EACCES, NULL, r < 0 ? "Expired munge credential." : message);
        case EMUNGE_CRED_REWOUND:
                return done(req, -EACCES, NULL, "munge credential encoded in the future (clock skew between hosts?).");
        case EMUNGE_BAD_CRED:
        case EMUNGE_BAD_VERSION:
        case EMUNGE_BAD_CIPHER:
        case EMUNGE_BAD_MAC:
        case EMUNGE_BAD_ZIP:
        case EMUNGE_BAD_REALM:
        case EMUNGE_BAD_LENGTH:
        case EMUNGE_CRED_INVALID:
        case EMUNGE_CRED_UNAUTHORIZED:
                r = asprintf(&message, "Invalid munge credential: %s.", why);
                return done(req, -EACCES, NULL, r < 0 ? "Invalid munge credential." : message);
        default:
                /* The socket, a timeout, munged's own trouble: nothing is known about the caller. */
                log_warning("munge credential not decoded (%s): %s", j->socket ?: "default socket", j->error ?: why);
                r = asprintf(&message, "munged is not available (%s).", why);
                return done(req, -EHOSTDOWN, NULL, r < 0 ? "munged is not available." : message);
        }
}

static int on_munge_results(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        MungeDecoder *d = userdata;
        MungeJob *l;
        uint64_t n;

        if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
                log_debug_errno(errno, "Failed to read the munge eventfd: %m");
        pthread_mutex_lock(&d->lock);
        l = TAKE_PTR(d->finished);
        pthread_mutex_unlock(&d->lock);

        while (l) {
                MungeJob *j = l;

                l = j->next;
                d->n_jobs--;
                munge_replays_settle(d, j);
                if (j->req)
                        munge_job_answer(j);
                munge_job_free(j);
        }
        return 0;
}

/* A job no thread has started is not decoded at all once its request is gone: munged never saw
 * the credential, so it is no replay either. */
static void munge_job_drop_unstarted(MungeJob *j) {
        MungeDecoder *d = j->decoder;

        if (!munge_job_unqueue(d, j))
                return;
        free(hashmap_remove(d->replays, j->key));
        d->n_jobs--;
        munge_job_free(j);
}

static int on_munge_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        MungeJob *j = userdata;
        HttpRequest *req = TAKE_PTR(j->req);

        /* The thread finishes the job some time; its result then only settles the replay cache. */
        j->timer = sd_event_source_disable_unref(j->timer);
        req->auth_data = NULL;
        log_warning("munged (%s) did not answer within %llu s.", j->socket ?: "default socket",
                    (unsigned long long) (MUNGE_TIMEOUT_USEC / USEC_PER_SEC));
        j->done(req, -ETIMEDOUT, NULL, "munged did not answer in time.");
        munge_job_drop_unstarted(j);
        return 0;
}

/* The munged to ask: that of the platform /api/<mode>/<system>/… names, else the default. */
static const char *munge_socket_for(HttpRequest *req) {
        Config *c = req->manager->config;
        const char *p, *end;
        char system[128];

        if (!strneq(req->url, "/api/", 5) || !(p = strchr(req->url + 5, '/')))
                return config_munge_socket(c, NULL);
        p++;
        end = strchrnul(p, '/');
        if ((size_t) (end - p) >= sizeof(system))
                return config_munge_socket(c, NULL);
        memcpy(system, p, end - p);
        system[end - p] = 0;
        return config_munge_socket(c, config_platform_find(c, system));
}

static bool munge_match(HttpRequest *req) {
        return req->manager->munge && http_request_header(req, MUNGE_HEADER);
}

static void munge_verify(HttpRequest *req, AuthVerified done) {
        MungeDecoder *d = munge_decoder(req);
        const char *socket = munge_socket_for(req);
        _cleanup_free_ char *credential = NULL;
        char key[65];
        MungeJob *j;
        int r;

        r = munge_credential_parse(http_request_header(req, MUNGE_HEADER), &credential, key);
        if (r == -EINVAL)
                return done(req, -EACCES, NULL, "Malformed munge credential (expected \"MUNGE:…:\" as munge_encode() writes it).");
        if (r < 0)
                return done(req, r, NULL, "Out of memory.");
        if (d->n_jobs >= MUNGE_QUEUE_MAX)
                return done(req, -EBUSY, NULL, "Too many munge credentials waiting for munged.");

        r = munge_replays_claim(d, key);
        if (r == -EEXIST)
                return done(req, -EACCES, NULL, "Replayed munge credential (each credential is good for one request).");
        if (r == -ENOSPC)
                return done(req, -EBUSY, NULL, "Too many live munge credentials to guard against replays; retry later.");
        if (r < 0)
                return done(req, r, NULL, "Out of memory.");

        j = calloc(1, sizeof(MungeJob));
        if (!j || (socket && !(j->socket = strdup(socket)))) {
                free(hashmap_remove(d->replays, key));
                munge_job_free(j);
                return done(req, -ENOMEM, NULL, "Out of memory.");
        }
        j->decoder = d;
        j->req = req;
        j->done = done;
        j->credential = TAKE_PTR(credential);
        memcpy(j->key, key, sizeof(key));
        r = sd_event_add_time_relative(req->manager->event, &j->timer, CLOCK_MONOTONIC, MUNGE_TIMEOUT_USEC, 0,
                                       on_munge_timeout, j);
        if (r < 0) {
                free(hashmap_remove(d->replays, key));
                munge_job_free(j);
                return done(req, r, NULL, "Failed to set up a timer.");
        }

        req->auth_data = j;
        d->n_jobs++;
        pthread_mutex_lock(&d->lock);
        *d->queue_tail = j;
        d->queue_tail = &j->next;
        pthread_cond_signal(&d->wake);
        pthread_mutex_unlock(&d->lock);
}

/* The request goes away: a job being decoded is left to its thread and freed when it comes
 * back; a queued one is dropped. */
static void munge_cancel(HttpRequest *req) {
        MungeJob *j = TAKE_PTR(req->auth_data);

        if (j) {
                j->req = NULL;
                j->timer = sd_event_source_disable_unref(j->timer);
                munge_job_drop_unstarted(j);
        }
}

static void munge_decoder_free(MungeDecoder *d) {
        MungeReplay *e;

        if (!d)
                return;
        pthread_mutex_lock(&d->lock);
        d->stopping = true;
        pthread_cond_broadcast(&d->wake);
        pthread_mutex_unlock(&d->lock);
        /* A thread in munge_decode() with a hung munged returns within libmunge's own ~4 s. */
        for (size_t i = 0; i < d->n_threads; i++)
                (void) pthread_join(d->threads[i], NULL);

        for (MungeJob *l = d->queue, *n; l; l = n) {
                n = l->next;
                munge_job_free(l);
        }
        for (MungeJob *l = d->finished, *n; l; l = n) {
                n = l->next;
                munge_job_free(l);
        }
        sd_event_source_disable_unref(d->event_source);
        if (d->event_fd >= 0)
                (void) close(d->event_fd);
        HASHMAP_FOREACH(e, d->replays)
                free(e);
        hashmap_free(d->replays);
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
        free(d);
}

static int munge_source_init(Manager *m) {
        MungeDecoder *d;
        int r;

        if (!m->config->munge)
                return 0;
        d = calloc(1, sizeof(MungeDecoder));
        if (!d)
                return log_oom();
        d->manager = m;
        d->queue_tail = &d->queue;
        d->event_fd = -1;
        pthread_mutex_init(&d->lock, NULL);
        pthread_cond_init(&d->wake, NULL);
        m->munge = d;

        d->replays = hashmap_new();
        if (!d->replays)
                return log_oom();
        d->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (d->event_fd < 0)
                return log_error_errno(errno, "Failed to create an eventfd for munge: %m");
        r = sd_event_add_io(m->event, &d->event_source, d->event_fd, EPOLLIN, on_munge_results, d);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the munge eventfd: %m");
        for (; d->n_threads < MUNGE_THREADS; d->n_threads++) {
                MungeThread *t = malloc(sizeof(MungeThread));

                if (!t)
                        return log_oom();
                *t = (MungeThread) { .decoder = d, .slot = d->n_threads };
                r = pthread_create(&d->threads[d->n_threads], NULL, munge_thread, t);
                if (r != 0) {
                        free(t);
                        return log_error_errno(r, "Failed to start a munge thread: %m");
                }
        }
        log_debug("munge credentials accepted (munged: %s).", m->config->munge_socket ?: "libmunge's default socket");
        return 0;
}

static void munge_source_done(Manager *m) {
        munge_decoder_free(TAKE_PTR(m->munge));
}

const AuthSource auth_source_munge = {
        .name = MUNGE_SOURCE,
        .match = munge_match,
        .verify = munge_verify,
        .cancel = munge_cancel,
        .init = munge_source_init,
        .done = munge_source_done,
};
