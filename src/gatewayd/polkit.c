/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/syscall.h>
#include <signal.h>

#include "auth-source.h"
#include "log.h"
#include "manager.h"
#include "polkit.h"
#include "polkit-grants.h"
#include "process-util.h"

/* The bus lets one connection wait for at most max_replies_per_connection replies (128 by
 * default, counting all of its calls) and refuses any further call with LimitsExceeded. A burst of
 * requests must not turn into refusals that are polkit's fault, so queries wait in a FIFO and only
 * POLKIT_INFLIGHT_MAX of them are at polkitd at a time, leaving room for gatewayd's other calls.
 * polkitd answers a query in well under a millisecond, so the queue drains quickly. Interactive
 * queries may wait up to 25 minutes for a human (or an agent that never answers): they have a
 * lane of their own, so that they can never hold up everyone else's checks. */
#define POLKIT_INFLIGHT_MAX 32U

/* Refusals by the bus itself (its limits, also hit by calls of others sharing our connection's
 * budget, or its memory) are transient: ask again after a pause that grows with each attempt. */
#define POLKIT_RETRY_MAX 5U
#define POLKIT_RETRY_USEC (20 * USEC_PER_SEC / 1000)

typedef enum PolkitQueryState {
        POLKIT_QUERY_WAITING,   /* in its lane's FIFO, not sent yet */
        POLKIT_QUERY_SENT,      /* at polkitd, counted in its lane's n_inflight */
        POLKIT_QUERY_RETRY,     /* refused by the bus, retry_timer pending */
} PolkitQueryState;

struct PolkitQuery {
        Manager *manager;
        PolkitQueryState state;
        PolkitQuery *all_prev, *all_next;   /* m->polkit_queries: every query not yet answered */
        PolkitQuery *wait_next;             /* its lane's FIFO */
        sd_bus_slot *slot;                  /* the call while SENT */
        sd_event_source *retry_timer;
        unsigned attempts;

        char *action;
        char *grant_key;                    /* polkit-grants.c: set for everyone's actions */
        char *bus_sender;                   /* subject: a bus name, or else the process below */
        uid_t uid;
        pid_t pid;
        int pidfd;
        uint64_t start_time;
        bool interactive;
        PolkitDone done;
        void *userdata;
};

static PolkitQuery *polkit_query_free(PolkitQuery *q) {
        if (!q)
                return NULL;
        sd_bus_slot_unref(q->slot);
        sd_event_source_disable_unref(q->retry_timer);
        safe_close(q->pidfd);
        free(q->action);
        free(q->grant_key);
        free(q->bus_sender);
        free(q);
        return NULL;
}

static void polkit_dispatch(Manager *m);

static PolkitLane *polkit_query_lane(PolkitQuery *q) {
        return &q->manager->polkit_lanes[q->interactive];
}

static void polkit_lane_push(PolkitLane *l, PolkitQuery *q, bool front) {
        q->state = POLKIT_QUERY_WAITING;
        if (front) {
                q->wait_next = l->waiting;
                l->waiting = q;
                if (!l->waiting_tail)
                        l->waiting_tail = q;
        } else {
                q->wait_next = NULL;
                if (l->waiting_tail)
                        l->waiting_tail->wait_next = q;
                else
                        l->waiting = q;
                l->waiting_tail = q;
        }
}

static PolkitQuery *polkit_lane_pop(PolkitLane *l) {
        PolkitQuery *q = l->waiting;

        if (!q || l->n_inflight >= POLKIT_INFLIGHT_MAX)
                return NULL;
        l->waiting = q->wait_next;
        if (!l->waiting)
                l->waiting_tail = NULL;
        q->wait_next = NULL;
        return q;
}

/* Tells the caller and forgets the query; the only way a query ends. */
static void polkit_query_finish(PolkitQuery *q, int r, const char *message) {
        Manager *m = q->manager;

        if (q->state == POLKIT_QUERY_SENT)
                polkit_query_lane(q)->n_inflight--;
        if (q->all_prev)
                q->all_prev->all_next = q->all_next;
        else
                m->polkit_queries = q->all_next;
        if (q->all_next)
                q->all_next->all_prev = q->all_prev;

        q->done(r, message, q->userdata);
        polkit_query_free(q);
        manager_busy_unref(m);
        polkit_dispatch(m);
}

/* A pid alone could be recycled while polkit thinks; the pidfd pins the process we asked about.
 * If it is still alive with the same start time, the answer was about the caller. */
static int polkit_query_verify_subject(PolkitQuery *q) {
        uint64_t t;

        if (q->pidfd < 0)
                return 0;
        if (pidfd_signal(q->pidfd, 0) < 0)
                return -ESRCH;
        if (process_start_time(q->pid, &t) < 0 || t != q->start_time)
                return -ESRCH;
        return 0;
}

/* polkitd not running and not activatable: only root can be an admin then. */
static bool polkit_error_is_absent(const sd_bus_error *e) {
        return sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                      "org.freedesktop.DBus.Error.Spawn.ServiceNotFound");
}

static bool polkit_error_is_transient(const sd_bus_error *e) {
        return sd_bus_error_has_names(e, SD_BUS_ERROR_LIMITS_EXCEEDED, SD_BUS_ERROR_NO_MEMORY);
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        PolkitQuery *q = userdata;
        Manager *m = q->manager;

        q->retry_timer = sd_event_source_disable_unref(q->retry_timer);
        /* It waited longest: first in line again. */
        polkit_lane_push(polkit_query_lane(q), q, /* front= */ true);
        polkit_dispatch(m);
        return 0;
}

static int polkit_query_retry_later(PolkitQuery *q) {
        Manager *m = q->manager;
        int r;

        r = sd_event_add_time_relative(m->event, &q->retry_timer, CLOCK_MONOTONIC,
                                       POLKIT_RETRY_USEC << (q->attempts - 1), 0, on_retry_timer, q);
        if (r < 0)
                return r;
        q->slot = sd_bus_slot_unref(q->slot);
        q->state = POLKIT_QUERY_RETRY;
        polkit_query_lane(q)->n_inflight--;
        return 0;
}

static int on_check_authorization_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        const sd_bus_error *e;
        int authorized = 0, challenge = 0, r;
        const char *message = NULL;
        char buf[256];

        e = sd_bus_message_get_error(reply);
        if (e && polkit_error_is_transient(e) && q->attempts < POLKIT_RETRY_MAX) {
                log_debug("polkit check for %s refused by the bus (%s); retrying.", q->action, e->name);
                if (polkit_query_retry_later(q) >= 0)
                        return 0;
        }
        if (e && polkit_error_is_absent(e)) {
                log_warning("polkit check for %s failed: %s", q->action, e->message ?: e->name);
                polkit_query_finish(q, -EHOSTUNREACH,
                                    "Authorization service (polkit) is not available; only root may do this.");
                return 0;
        }
        if (e) {
                /* polkitd is there but could not decide (it timed out, or the subject vanished):
                 * a refusal, and not one that blames a missing polkit. */
                log_warning("polkit check for %s failed: %s: %s", q->action, e->name, strna(e->message));
                snprintf(buf, sizeof(buf), "Authorization could not be checked: %s", e->message ?: e->name);
                polkit_query_finish(q, sd_bus_error_get_errno(e) > 0 ? -sd_bus_error_get_errno(e) : -EIO, buf);
                return 0;
        }

        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                log_warning_errno(r, "Failed to parse polkit reply: %m");
                polkit_query_finish(q, r, "Unexpected reply from the authorization service.");
                return 0;
        }

        if (authorized && polkit_query_verify_subject(q) < 0) {
                log_warning("Caller pid %i exited or was replaced during the polkit check for %s; refusing.",
                            (int) q->pid, q->action);
                polkit_query_finish(q, 0, "The requesting process changed during authorization.");
                return 0;
        }

        if (authorized)
                polkit_grants_add(q->manager, q->grant_key);
        else
                message = challenge ? "Interactive authentication required." : "Not authorized by polkit.";
        log_debug("polkit: uid %u %s for %s", (unsigned) q->uid, authorized ? "authorized" : "denied", q->action);
        polkit_query_finish(q, !!authorized, message);
        return 0;
}

static int append_subject(sd_bus_message *m, const PolkitQuery *q) {
        int r;

        r = sd_bus_message_open_container(m, 'r', "sa{sv}");
        if (r < 0)
                return r;
        if (q->bus_sender)
                r = sd_bus_message_append(m, "sa{sv}", "system-bus-name", 1, "name", "s", q->bus_sender);
        else
                r = sd_bus_message_append(m, "sa{sv}", "unix-process", 3,
                                          "pid", "u", (uint32_t) q->pid,
                                          "start-time", "t", q->start_time,
                                          "uid", "i", (int32_t) q->uid);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static int polkit_query_send(PolkitQuery *q) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        Manager *m = q->manager;
        int r;

        r = sd_bus_message_new_method_call(m->bus, &msg, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r >= 0)
                r = append_subject(msg, q);
        if (r >= 0)
                r = sd_bus_message_append(msg, "sa{ss}us", q->action, 0, (uint32_t) (q->interactive ? 1 : 0), "");
        if (r >= 0)
                /* Interactive checks may wait for a human; give them as long as systemd does. */
                r = sd_bus_call_async(m->bus, &q->slot, msg, on_check_authorization_reply, q,
                                      q->interactive ? UINT64_C(25) * 60 * 1000000 : 0);
        if (r < 0)
                return r;
        q->state = POLKIT_QUERY_SENT;
        q->attempts++;
        polkit_query_lane(q)->n_inflight++;
        return 0;
}

static void polkit_dispatch(Manager *m) {
        for (size_t i = 0; i < ELEMENTSOF(m->polkit_lanes); i++) {
                PolkitQuery *q;

                while ((q = polkit_lane_pop(&m->polkit_lanes[i]))) {
                        int r = polkit_query_send(q);
                        if (r < 0) {
                                log_error_errno(r, "Failed to ask polkit: %m");
                                polkit_query_finish(q, r, "Authorization could not be checked; only root may do this.");
                                return; /* finishing dispatched the rest */
                        }
                }
        }
}

/* The actions org.gatewayd.policy grants to any user (allow_any=yes). */
static bool polkit_action_is_for_everyone(const char *action) {
        return streq(action, "org.gatewayd.pull-image") || streq(action, "org.gatewayd.submit-job");
}

int polkit_check(Manager *m, const Caller *c, const char *action, bool interactive,
                 PolkitDone done, void *userdata) {
        _cleanup_free_ char *grant_key = NULL;
        PolkitLane *lane;
        PolkitQuery *q;
        uint64_t start_time = 0;
        int r;

        if (caller_is_root(c))
                return 1;
        /* polkit knows processes and bus names, not network identities: for those the actions
         * every user has by default (gatewayd's policy: allow_any=yes) are granted, the
         * credential's scope having admitted the route already, and the site's Admins list
         * decides every admin action alike. */
        if (caller_is_network(c))
                return polkit_action_is_for_everyone(action) || auth_is_admin(m, c) ? 1 : -EACCES;
        if (!m->bus)
                return -EHOSTUNREACH;

        if (!c->bus_sender) {
                r = process_start_time(c->pid, &start_time);
                if (r < 0)
                        return log_debug_errno(r, "Cannot read start time of pid %i: %m", (int) c->pid);
        }

        if (polkit_action_is_for_everyone(action)) {
                grant_key = polkit_grant_key(action, c->bus_sender, (int) c->pid, start_time, (unsigned) c->uid);
                if (polkit_grants_has(m, grant_key))
                        return 1;
        }

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        *q = (PolkitQuery) {
                .manager = m, .uid = c->uid, .pid = c->pid, .pidfd = -1, .start_time = start_time,
                .interactive = interactive, .done = done, .userdata = userdata,
        };
        q->action = strdup(action);
        q->grant_key = TAKE_PTR(grant_key);
        if (!q->action || (c->bus_sender && !(q->bus_sender = strdup(c->bus_sender)))) {
                polkit_query_free(q);
                return -ENOMEM;
        }
        if (c->pidfd >= 0) {
                q->pidfd = fcntl(c->pidfd, F_DUPFD_CLOEXEC, 3);
                if (q->pidfd < 0) {
                        r = -errno;
                        polkit_query_free(q);
                        return r;
                }
        }

        /* Sent at once when there is room, so that a failure is still the caller's to report. */
        lane = polkit_query_lane(q);
        if (!lane->waiting && lane->n_inflight < POLKIT_INFLIGHT_MAX) {
                r = polkit_query_send(q);
                if (r < 0) {
                        polkit_query_free(q);
                        return log_error_errno(r, "Failed to ask polkit: %m");
                }
        } else
                polkit_lane_push(lane, q, /* front= */ false);

        q->all_next = m->polkit_queries;
        if (q->all_next)
                q->all_next->all_prev = q;
        m->polkit_queries = q;
        manager_busy_ref(m);
        return 0;
}

void polkit_queries_cancel(Manager *m) {
        /* Everyone waiting is answered (-ESHUTDOWN: 503), so no request or bus call is left
         * hanging or leaked. */
        for (size_t i = 0; i < ELEMENTSOF(m->polkit_lanes); i++)
                m->polkit_lanes[i].waiting = m->polkit_lanes[i].waiting_tail = NULL;
        while (m->polkit_queries) {
                PolkitQuery *q = m->polkit_queries;

                if (q->state == POLKIT_QUERY_WAITING)
                        q->state = POLKIT_QUERY_RETRY; /* off the FIFO, which is gone already */
                polkit_query_finish(q, -ESHUTDOWN, "gatewayd is shutting down.");
        }
}
