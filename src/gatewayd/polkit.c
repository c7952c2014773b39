/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/syscall.h>
#include <signal.h>

#include "log.h"
#include "manager.h"
#include "polkit.h"

typedef struct PolkitQuery {
        Manager *manager;
        char *action;
        uid_t uid;
        pid_t pid;
        int pidfd;
        uint64_t start_time;
        PolkitDone done;
        void *userdata;
} PolkitQuery;

static PolkitQuery *polkit_query_free(PolkitQuery *q) {
        if (!q)
                return NULL;
        safe_close(q->pidfd);
        free(q->action);
        free(q);
        return NULL;
}

int process_start_time(pid_t pid, uint64_t *ret) {
        char path[64], buf[4096], *p;
        _cleanup_fclose_ FILE *f = NULL;
        unsigned long long t;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%i/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;

        /* The command name (field 2) may contain spaces and parentheses: start after the last ')'. */
        p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        p++;
        /* p is at the blank before field 3; 19 more blanks bring it to the one before field 22. */
        for (int i = 0; i < 19; i++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return -EIO;
        }
        if (sscanf(p, " %llu", &t) != 1)
                return -EIO;
        *ret = t;
        return 0;
}

/* A pid alone could be recycled while polkit thinks; the pidfd pins the process we asked about.
 * If it is still alive with the same start time, the answer was about the caller. */
static int polkit_query_verify_subject(PolkitQuery *q) {
        uint64_t t;

        if (q->pidfd < 0)
                return 0;
        if (syscall(SYS_pidfd_send_signal, q->pidfd, 0, NULL, 0) < 0)
                return -ESRCH;
        if (process_start_time(q->pid, &t) < 0 || t != q->start_time)
                return -ESRCH;
        return 0;
}

static int on_check_authorization_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        const sd_bus_error *e;
        int authorized = 0, challenge = 0, r;
        const char *message = NULL;

        manager_busy_unref(q->manager);

        e = sd_bus_message_get_error(reply);
        if (e) {
                log_warning("polkit check for %s failed: %s", q->action, e->message ?: e->name);
                q->done(-EHOSTUNREACH, "Authorization service (polkit) is not available; only root may do this.", q->userdata);
                goto finish;
        }

        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                log_warning_errno(r, "Failed to parse polkit reply: %m");
                q->done(r, "Unexpected reply from the authorization service.", q->userdata);
                goto finish;
        }

        if (authorized && polkit_query_verify_subject(q) < 0) {
                log_warning("Caller pid %i exited or was replaced during the polkit check for %s; refusing.",
                            (int) q->pid, q->action);
                q->done(0, "The requesting process changed during authorization.", q->userdata);
                goto finish;
        }

        if (!authorized)
                message = challenge ? "Interactive authentication required." : "Not authorized by polkit.";
        log_debug("polkit: uid %u %s for %s", (unsigned) q->uid, authorized ? "authorized" : "denied", q->action);
        q->done(!!authorized, message, q->userdata);

finish:
        polkit_query_free(q);
        return 0;
}

static int append_subject(sd_bus_message *m, const Caller *c, uint64_t start_time) {
        int r;

        r = sd_bus_message_open_container(m, 'r', "sa{sv}");
        if (r < 0)
                return r;
        if (c->bus_sender)
                r = sd_bus_message_append(m, "sa{sv}", "system-bus-name", 1, "name", "s", c->bus_sender);
        else
                r = sd_bus_message_append(m, "sa{sv}", "unix-process", 3,
                                          "pid", "u", (uint32_t) c->pid,
                                          "start-time", "t", start_time,
                                          "uid", "i", (int32_t) c->uid);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

int polkit_check(Manager *m, const Caller *c, const char *action, bool interactive,
                 PolkitDone done, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        PolkitQuery *q;
        uint64_t start_time = 0;
        int r;

        if (caller_is_root(c))
                return 1;
        if (!m->bus)
                return -EHOSTUNREACH;

        if (!c->bus_sender) {
                r = process_start_time(c->pid, &start_time);
                if (r < 0)
                        return log_debug_errno(r, "Cannot read start time of pid %i: %m", (int) c->pid);
        }

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        *q = (PolkitQuery) {
                .manager = m, .uid = c->uid, .pid = c->pid, .pidfd = -1,
                .start_time = start_time, .done = done, .userdata = userdata,
        };
        q->action = strdup(action);
        if (!q->action) {
                polkit_query_free(q);
                return -ENOMEM;
        }
        if (c->pidfd >= 0) {
                q->pidfd = fcntl(c->pidfd, F_DUPFD_CLOEXEC, 3);
                if (q->pidfd < 0) {
                        polkit_query_free(q);
                        return -errno;
                }
        }

        r = sd_bus_message_new_method_call(m->bus, &msg, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r >= 0)
                r = append_subject(msg, c, start_time);
        if (r >= 0)
                r = sd_bus_message_append(msg, "sa{ss}us", action, 0, (uint32_t) (interactive ? 1 : 0), "");
        if (r >= 0)
                /* Interactive checks may wait for a human; give them as long as systemd does. */
                r = sd_bus_call_async(m->bus, NULL, msg, on_check_authorization_reply, q,
                                      interactive ? UINT64_C(25) * 60 * 1000000 : 0);
        if (r < 0) {
                polkit_query_free(q);
                return log_error_errno(r, "Failed to ask polkit: %m");
        }

        manager_busy_ref(m);
        return 0;
}
