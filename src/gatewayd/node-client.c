/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>

#include "hashmap.h"
#include "json-util.h"
#include "log.h"
#include "node-client.h"

/* A `finished` event carries up to 4 MiB of interim results and 64 KiB of log (base64) plus the
 * result; anything much longer is not serve speaking. */
#define NODE_LINE_MAX (64U * 1024U * 1024U)

typedef struct Request Request;
struct Request {
        Request *next;
        int64_t req;
        json_object *request;
        NodeReplyHandler handler;
        void *userdata;
        char *attach_job;      /* an attach made by the client itself for a followed job */
        bool sent;
};

typedef struct Follow {
        char *job;
        uint64_t seq;          /* the last sequence number delivered */
        NodeJobHandler handler;
        void *userdata;
} Follow;

typedef struct Deploy Deploy;
struct Deploy {
        Deploy *next, *prev;   /* the client's deploys in flight, freed with it */
        NodeClient *client;
        char *image, *squashfs, *meta;
        uint64_t size, meta_size;
        NodeReplyHandler handler;
        void *userdata;
};

struct NodeClient {
        SshSession *session;
        NodeClientCallbacks cb;
        void *userdata;
        SshNodeState state;
        json_object *hello;
        int64_t next_req;
        Request *requests;     /* unanswered, in the order they were made */
        Hashmap *follows;
        Deploy *deploys;
        char *in;
        size_t in_len, in_size;
        bool discarding;       /* in a line over NODE_LINE_MAX */
};

static void request_free(Request *r) {
        if (!r)
                return;
        json_object_put(r->request);
        free(r->attach_job);
        free(r);
}

static void follow_free(Follow *f) {
        if (!f)
                return;
        free(f->job);
        free(f);
}

static void deploy_free(Deploy *d) {
        if (!d)
                return;
        if (d->prev)
                d->prev->next = d->next;
        else if (d->client && d->client->deploys == d)
                d->client->deploys = d->next;
        if (d->next)
                d->next->prev = d->prev;
        free(d->image);
        free(d->squashfs);
        free(d->meta);
        free(d);
}

/* The session may be up before the node is (hello not answered yet): requests go out then. */
static bool session_is_up(NodeClient *c) {
        return ssh_session_get_state(c->session) == SSH_NODE_UP;
}

static void client_set_state(NodeClient *c, SshNodeState state, const char *reason) {
        c->state = state;
        if (c->cb.state_changed)
                c->cb.state_changed(c, state, reason, state == SSH_NODE_UP ? c->hello : NULL, c->userdata);
}

static int request_send(NodeClient *c, Request *r) {
        const char *text;
        size_t n;
        int k;

        text = json_object_to_json_string_ext(r->request, JSON_TEXT_FLAGS);
        n = strlen(text);
        k = ssh_session_send(c->session, text, n);
        if (k >= 0)
                k = ssh_session_send(c->session, "\n", 1);
        if (k >= 0)
                r->sent = true;
        return k == -ENOTCONN ? 0 : k;   /* sent again once up */
}

static Request *request_add(NodeClient *c, json_object *request, NodeReplyHandler handler, void *userdata) {
        Request *r, **tail;

        r = calloc(1, sizeof *r);
        if (!r)
                return NULL;
        r->req = ++c->next_req;
        r->request = request;
        json_object_object_add(request, "req", json_object_new_int64(r->req));
        r->handler = handler;
        r->userdata = userdata;
        for (tail = &c->requests; *tail; tail = &(*tail)->next)
                ;
        *tail = r;
        return r;
}

static Request *request_pop(NodeClient *c, int64_t req) {
        for (Request **p = &c->requests; *p; p = &(*p)->next)
                if ((*p)->req == req) {
                        Request *r = *p;

                        *p = r->next;
                        r->next = NULL;
                        return r;
                }
        return NULL;
}

int node_client_request(NodeClient *c, json_object *request, NodeReplyHandler handler, void *userdata) {
        Request *r;

        if (!json_object_is_type(request, json_type_object) || !json_get_string(request, "op"))
                return -EINVAL;
        if (c->state == SSH_NODE_REFUSED)
                return -ECONNREFUSED;
        r = request_add(c, json_object_get(request), handler, userdata);
        if (!r) {
                json_object_put(request);
                return -ENOMEM;
        }
        /* Queued: from here on the handler is called once, with the node's answer or when the node
         * is refused, so a failure to send now is not the caller's (it goes again once the session
         * is back up) — an error return would have the caller free what the handler gets later. */
        if (session_is_up(c) && request_send(c, r) < 0)
                log_debug("Node request %" PRIi64 " not sent yet; it goes again when the session is back.", r->req);
        return 0;
}

static int attach(NodeClient *c, Follow *f) {
        json_object *o;
        Request *r;

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "op", json_object_new_string("attach"));
        json_object_object_add(o, "job", json_object_new_string(f->job));
        json_object_object_add(o, "from", json_object_new_int64((int64_t) f->seq));
        r = request_add(c, o, NULL, NULL);
        if (!r) {
                json_object_put(o);
                return -ENOMEM;
        }
        r->attach_job = strdup(f->job);
        if (!r->attach_job)
                return -ENOMEM;
        return request_send(c, r);
}

/* ---- incoming events ---- */

static void deliver_job_event(NodeClient *c, Follow *f, json_object *event) {
        const char *kind = json_get_string(event, "event");
        bool last = kind && (streq(kind, "finished") || streq(kind, "error"));

        if (last)
                hashmap_remove(c->follows, f->job);
        if (f->handler)
                f->handler(c, f->job, event, f->userdata);
        if (last)
                follow_free(f);
}

static void on_job_event(NodeClient *c, const char *job, json_object *event) {
        Follow *f = hashmap_get(c->follows, job);
        json_object *v;
        int64_t seq;

        if (!f)
                return;        /* no longer followed */
        if (!json_object_object_get_ex(event, "seq", &v) || !json_object_is_type(v, json_type_int))
                return;
        seq = json_object_get_int64(v);
        /* After a reconnect the node resends from the seq we asked for; anything at or below
         * what was delivered already (a stream that was still running) is a duplicate. */
        if (seq <= 0 || (uint64_t) seq <= f->seq)
                return;
        f->seq = (uint64_t) seq;
        deliver_job_event(c, f, event);
}

static void on_reply(NodeClient *c, Request *r, json_object *event) {
        const char *kind = json_get_string(event, "event");
        bool error = kind && streq(kind, "error");

        if (r->attach_job) {
                Follow *f = hashmap_get(c->follows, r->attach_job);

                /* A job the node does not know (removed, never started): the follower hears it. */
                if (error && f)
                        deliver_job_event(c, f, event);
                return;
        }
        if (r->handler)
                r->handler(c, error ? -EREMOTEIO : 0, event, r->userdata);
}

static void on_line(NodeClient *c, const char *line, size_t n) {
        _cleanup_(json_object_putp) json_object *event = NULL;
        const char *reason = NULL, *job;
        size_t offset = 0;
        json_object *v;
        Request *r;

        if (n == 0)
                return;
        if (json_parse_untrusted(line, n, &event, &offset, &reason) < 0 ||
            !json_object_is_type(event, json_type_object) || !json_get_string(event, "event")) {
                log_warning("Node %s: ignoring a line that is not an event (%s at %zu)",
                            ssh_session_get_host(c->session), strna(reason), offset);
                return;
        }
        job = json_get_string(event, "job");
        if (job && json_object_object_get_ex(event, "seq", NULL)) {
                on_job_event(c, job, event);
                return;
        }
        if (json_object_object_get_ex(event, "req", &v) && json_object_is_type(v, json_type_int) &&
            (r = request_pop(c, json_object_get_int64(v)))) {
                on_reply(c, r, event);
                request_free(r);
                return;
        }
        log_debug("Node %s: unsolicited event %s", ssh_session_get_host(c->session), json_get_string(event, "event"));
}

static void on_data(SshSession *s, const void *p, size_t n, void *userdata) {
        NodeClient *c = userdata;
        const char *nl;
        size_t start = 0;

        if (c->in_len + n > c->in_size) {
                size_t want = MAX(c->in_len + n, MAX(c->in_size * 2, (size_t) 64 * 1024));
                char *q = realloc(c->in, want);

                if (!q) {
                        log_oom();
                        return;
                }
                c->in = q;
                c->in_size = want;
        }
        memcpy(c->in + c->in_len, p, n);
        c->in_len += n;

        while ((nl = memchr(c->in + start, '\n', c->in_len - start))) {
                size_t len = nl - (c->in + start);

                if (!c->discarding)
                        on_line(c, c->in + start, len);
                c->discarding = false;
                start += len + 1;
        }
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
        if (c->in_len > NODE_LINE_MAX) {
                log_error("Node %s: an event line longer than %u bytes; dropped", ssh_session_get_host(s), NODE_LINE_MAX);
                c->in_len = 0;
                c->discarding = true;
        }
}

/* ---- connection state ---- */

static void on_hello(NodeClient *c, int r, json_object *event, void *userdata) {
        if (r < 0 || !event)
                return;
        json_object_put(c->hello);
        c->hello = json_object_get(event);
        json_object_object_del(c->hello, "req");
        client_set_state(c, SSH_NODE_UP, NULL);
}

static int send_hello(NodeClient *c) {
        json_object *o = json_object_new_object();
        Request *r;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "op", json_object_new_string("hello"));
        r = request_add(c, o, on_hello, NULL);
        if (!r) {
                json_object_put(o);
                return -ENOMEM;
        }
        /* hello goes first on a new connection */
        request_pop(c, r->req);
        r->next = c->requests;
        c->requests = r;
        return request_send(c, r);
}

static void session_connected(NodeClient *c) {
        Follow *f;

        c->in_len = 0;
        c->discarding = false;
        if (send_hello(c) < 0)
                log_oom();
        /* What was asked but not answered goes again: every op is idempotent on the node. */
        for (Request *r = c->requests; r; r = r->next)
                if (!r->sent && request_send(c, r) < 0)
                        log_oom();
        HASHMAP_FOREACH(f, c->follows)
                if (attach(c, f) < 0)
                        log_oom();
}

static void session_lost(NodeClient *c, SshNodeState state) {
        Request **p = &c->requests;

        c->in_len = 0;
        while (*p) {
                Request *r = *p;

                /* Our own attaches and hellos are made anew on the next connection. */
                if (r->attach_job || r->handler == on_hello) {
                        *p = r->next;
                        request_free(r);
                        continue;
                }
                r->sent = false;
                p = &r->next;
        }
        if (state != SSH_NODE_REFUSED)
                return;
        /* Nothing will be answered by a node we do not talk to. */
        while (c->requests) {
                Request *r = c->requests;

                c->requests = r->next;
                if (r->handler)
                        r->handler(c, -ECONNREFUSED, NULL, r->userdata);
                request_free(r);
        }
}

static void on_session_state(SshSession *s, SshNodeState state, const char *reason, void *userdata) {
        NodeClient *c = userdata;

        if (state == SSH_NODE_UP) {
                /* Up for the platform once hello is answered. */
                session_connected(c);
                return;
        }
        session_lost(c, state);
        client_set_state(c, state, reason);
}

/* ---- object ---- */

int node_client_new(NodeClient **ret, sd_event *event, const SshSessionOptions *options,
                    const NodeClientCallbacks *callbacks, void *userdata) {
        static const SshSessionCallbacks session_callbacks = {
                .state_changed = on_session_state,
                .data = on_data,
        };
        _cleanup_(node_client_freep) NodeClient *c = NULL;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        if (callbacks)
                c->cb = *callbacks;
        c->userdata = userdata;
        c->state = SSH_NODE_CONNECTING;
        c->follows = hashmap_new();
        if (!c->follows)
                return -ENOMEM;
        r = ssh_session_new(&c->session, event, options, &session_callbacks, c);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

NodeClient *node_client_free(NodeClient *c) {
        Follow *f;

        if (!c)
                return NULL;
        ssh_session_free(c->session);
        while (c->requests) {
                Request *r = c->requests;

                c->requests = r->next;
                request_free(r);
        }
        HASHMAP_FOREACH(f, c->follows)
                follow_free(f);
        hashmap_free(c->follows);
        /* Their uploads went with the session, their callbacks will not come. */
        while (c->deploys)
                deploy_free(c->deploys);
        json_object_put(c->hello);
        free(c->in);
        return mfree(c);
}

int node_client_start(NodeClient *c) {
        return ssh_session_start(c->session);
}

SshSession *node_client_get_session(NodeClient *c) {
        return c->session;
}

SshNodeState node_client_get_state(NodeClient *c) {
        return c->state;
}

json_object *node_client_get_hello(NodeClient *c) {
        return c->hello;
}

/* ---- ops ---- */

static int simple_request(NodeClient *c, const char *op, const char *key, const char *value,
                          NodeReplyHandler handler, void *userdata) {
        json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "op", json_object_new_string(op));
        if (key)
                json_object_object_add(o, key, json_object_new_string(value));
        r = node_client_request(c, o, handler, userdata);
        json_object_put(o);
        return r;
}

int node_client_start_job(NodeClient *c, const char *job, json_object *spec, json_object *input,
                          NodeReplyHandler handler, void *userdata) {
        json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "op", json_object_new_string("start"));
        json_object_object_add(o, "job", json_object_new_string(job));
        json_object_object_add(o, "spec", json_object_get(spec));
        if (input)
                json_object_object_add(o, "input", json_object_get(input));
        r = node_client_request(c, o, handler, userdata);
        json_object_put(o);
        return r;
}

int node_client_cancel_job(NodeClient *c, const char *job, NodeReplyHandler handler, void *userdata) {
        return simple_request(c, "cancel", "job", job, handler, userdata);
}

int node_client_remove_job(NodeClient *c, const char *job, NodeReplyHandler handler, void *userdata) {
        return simple_request(c, "remove", "job", job, handler, userdata);
}

int node_client_list_jobs(NodeClient *c, NodeReplyHandler handler, void *userdata) {
        return simple_request(c, "list", NULL, NULL, handler, userdata);
}

int node_client_remove_image(NodeClient *c, const char *image, NodeReplyHandler handler, void *userdata) {
        return simple_request(c, "image-remove", "image", image, handler, userdata);
}

int node_client_list_images(NodeClient *c, NodeReplyHandler handler, void *userdata) {
        return simple_request(c, "image-list", NULL, NULL, handler, userdata);
}

int node_client_follow(NodeClient *c, const char *job, uint64_t from, NodeJobHandler handler, void *userdata) {
        Follow *f;
        int r;

        if (hashmap_get(c->follows, job))
                return -EEXIST;
        f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        f->job = strdup(job);
        if (!f->job) {
                free(f);
                return -ENOMEM;
        }
        f->seq = from;
        f->handler = handler;
        f->userdata = userdata;
        r = hashmap_put(c->follows, f->job, f);
        if (r < 0) {
                follow_free(f);
                return r;
        }
        if (session_is_up(c))
                return attach(c, f);
        return 0;   /* attached once up */
}

void node_client_unfollow(NodeClient *c, const char *job) {
        follow_free(hashmap_remove(c->follows, job));
}

uint64_t node_client_get_seq(NodeClient *c, const char *job) {
        Follow *f = hashmap_get(c->follows, job);

        return f ? f->seq : 0;
}

/* ---- deploy ---- */

static void deploy_fail(Deploy *d, int r, const char *code, const char *message) {
        _cleanup_(json_object_putp) json_object *e = json_object_new_object();

        if (e) {
                json_object_object_add(e, "event", json_object_new_string("error"));
                json_object_object_add(e, "op", json_object_new_string("deploy"));
                json_object_object_add(e, "image", json_object_new_string(d->image));
                json_object_object_add(e, "code", json_object_new_string(code));
                json_object_object_add(e, "message", json_object_new_string(message));
        }
        d->handler(d->client, r, e, d->userdata);
        deploy_free(d);
}

static void on_installed(NodeClient *c, int r, json_object *event, void *userdata) {
        Deploy *d = userdata;

        d->handler(c, r, event, d->userdata);
        deploy_free(d);
}

static void deploy_install(Deploy *d) {
        json_object *o = json_object_new_object();
        int r;

        if (!o)
                {
                deploy_fail(d, -ENOMEM, "UPLOAD_FAILED", "out of memory");
                return;
        }
        json_object_object_add(o, "op", json_object_new_string("image-install"));
        json_object_object_add(o, "image", json_object_new_string(d->image));
        json_object_object_add(o, "size", json_object_new_int64((int64_t) d->size));
        if (d->meta)
                json_object_object_add(o, "metaSize", json_object_new_int64((int64_t) d->meta_size));
        r = node_client_request(d->client, o, on_installed, d);
        json_object_put(o);
        if (r < 0)
                deploy_fail(d, r, "UPLOAD_FAILED", "cannot ask the node to install the image");
}

static void on_uploaded(SshSession *s, int r, const char *error, uint64_t size, void *userdata);

static void deploy_upload(Deploy *d, const char *path, const char *suffix) {
        _cleanup_free_ char *name = NULL;
        int r;

        if (asprintf(&name, "%s%s", d->image, suffix) < 0)
                {
                deploy_fail(d, -ENOMEM, "UPLOAD_FAILED", "out of memory");
                return;
        }
        r = ssh_session_upload(d->client->session, path, name, on_uploaded, d);
        if (r < 0) {
                _cleanup_free_ char *m = NULL;

                if (asprintf(&m, "cannot upload %s: %s", path, strerror(-r)) < 0)
                        m = NULL;
                deploy_fail(d, r, "UPLOAD_FAILED", m ?: "cannot upload");
        }
}

static void on_uploaded(SshSession *s, int r, const char *error, uint64_t size, void *userdata) {
        Deploy *d = userdata;

        if (r < 0) {
                _cleanup_free_ char *m = NULL;

                if (asprintf(&m, "uploading image %s to node %s failed: %s", d->image, ssh_session_get_host(s),
                             strna(error)) < 0)
                        m = NULL;
                log_error("%s", strna(m));
                {
                deploy_fail(d, r, r == -ENOSPC ? "NO_SPACE" : "UPLOAD_FAILED", m ?: "upload failed");
                return;
        }
        }
        if (d->size == UINT64_MAX) {
                d->size = size;
                if (d->meta)
                        {
                deploy_upload(d, d->meta, ".meta");
                return;
        }
        } else
                d->meta_size = size;
        deploy_install(d);
}

static bool image_id_is_valid(const char *s) {
        size_t n = 0;

        for (; s[n]; n++)
                if (!strchr("0123456789abcdef", s[n]))
                        return false;
        return n == 64;
}

int node_client_deploy_image(NodeClient *c, const char *image, const char *squashfs_path, const char *meta_path,
                             NodeReplyHandler handler, void *userdata) {
        _cleanup_free_ char *name = NULL;
        Deploy *d;
        int r;

        if (!image_id_is_valid(image) || !handler)
                return -EINVAL;
        if (asprintf(&name, "%s.squashfs", image) < 0)
                return -ENOMEM;
        if (!session_is_up(c))
                return -ENOTCONN;
        d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->client = c;
        d->image = strdup(image);
        d->squashfs = strdup(squashfs_path);
        d->meta = meta_path ? strdup(meta_path) : NULL;
        if (!d->image || !d->squashfs || (meta_path && !d->meta)) {
                deploy_free(d);
                return -ENOMEM;
        }
        d->size = UINT64_MAX;
        d->handler = handler;
        d->userdata = userdata;
        d->next = c->deploys;
        if (d->next)
                d->next->prev = d;
        c->deploys = d;
        r = ssh_session_upload(c->session, d->squashfs, name, on_uploaded, d);
        if (r < 0)
                deploy_free(d);
        return r;
}
