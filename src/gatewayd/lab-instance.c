/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"
#include "fs-util.h"
#include "image.h"
#include "json-util.h"
#include "lab-instance.h"
#include "lab-network.h"
#include "lab-registry.h"
#include "lab-resolv.h"
#include "lingering-mounts.h"
#include "log.h"
#include "manager.h"
#include "process-util.h"
#include "service.h"
#include "spool-layout.h"
#include "time-util.h"
#include "worker-process.h"

/* Members get this long between SIGTERM and SIGKILL from their worker; we give the worker a
 * little more before we kill it. */
#define MEMBER_KILL_GRACE_SEC 2
#define STOP_KILL_USEC (10 * USEC_PER_SEC)
#define JOB_NOBODY_ID 65534     /* as gateway-worker's job-spec.h */

static const char * const states[_LAB_INSTANCE_STATE_MAX] = {
        [LAB_INSTANCE_STARTING] = "STARTING",
        [LAB_INSTANCE_RUNNING] = "RUNNING",
        [LAB_INSTANCE_DEGRADED] = "DEGRADED",
        [LAB_INSTANCE_STOPPING] = "STOPPING",
        [LAB_INSTANCE_STOPPED] = "STOPPED",
        [LAB_INSTANCE_FAILED] = "FAILED",
};

const char *lab_instance_state_to_string(LabInstanceState s) {
        return s < _LAB_INSTANCE_STATE_MAX ? states[s] : NULL;
}

static LabInstanceState state_from_string(const char *s) {
        for (LabInstanceState k = 0; k < _LAB_INSTANCE_STATE_MAX; k++)
                if (s && streq(s, states[k]))
                        return k;
        return _LAB_INSTANCE_STATE_MAX;
}

static bool state_is_final(LabInstanceState s) {
        return s == LAB_INSTANCE_STOPPED || s == LAB_INSTANCE_FAILED;
}

static void member_detach(LabInstanceMember *mb) {
        mb->pidfd_source = sd_event_source_disable_unref(mb->pidfd_source);
        mb->worker = worker_process_free(mb->worker);   /* own session: it carries on */
        mb->worker_pidfd = safe_close(mb->worker_pidfd);
}

/* A live instance keeps gatewayd from exiting on idle, as an unfinished job does: nobody else
 * would end it at its lifetime or notice a member exit. */
static void instance_busy_update(LabInstance *i) {
        bool want = !state_is_final(i->state);

        if (want && !i->busy)
                manager_busy_ref(i->manager);
        else if (!want && i->busy)
                manager_busy_unref(i->manager);
        i->busy = want;
}

static LabInstance *lab_instance_free(LabInstance *i) {
        if (!i)
                return NULL;
        if (i->busy)
                manager_busy_unref(i->manager);
        for (size_t k = 0; k < i->n_members; k++) {
                LabInstanceMember *mb = &i->members[k];
                member_detach(mb);
                free(mb->address);
                free(mb->spool_dir);
                free(mb->image_path);
                free(mb->meta_path);
        }
        free(i->members);
        sd_event_source_disable_unref(i->expiry_timer);
        sd_event_source_disable_unref(i->kill_timer);
        lab_free(i->spec);
        free(i->id);
        free(i->lab);
        free(i->error);
        free(i->dir);
        free(i->netns_path);
        return mfree(i);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(LabInstance *, lab_instance_free);

/* ---- the record ---- */

static int instance_store(LabInstance *i, bool create) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        Manager *m = i->manager;
        int rc, r;

        r = db_prepare(m->db,
                       create ? "INSERT INTO lab_instances (state, started_usec, expires_usec, ended_usec, error, removing,"
                                " id, lab, uid, gid, spec, created_usec) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                              : "UPDATE lab_instances SET state = ?, started_usec = ?, expires_usec = ?, ended_usec = ?,"
                                " error = ?, removing = ? WHERE id = ?",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, states[i->state], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) i->started_usec);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) i->expires_usec);
        sqlite3_bind_int64(st, 4, (sqlite3_int64) i->ended_usec);
        if (i->error)
                sqlite3_bind_text(st, 5, i->error, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, 5);
        sqlite3_bind_int(st, 6, i->remove_when_stopped);
        sqlite3_bind_text(st, 7, i->id, -1, SQLITE_STATIC);
        if (create) {
                json_object *spec = lab_spec_to_json(i->spec);

                if (!spec)
                        return -ENOMEM;
                sqlite3_bind_text(st, 8, i->lab, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 9, (sqlite3_int64) i->uid);
                sqlite3_bind_int64(st, 10, (sqlite3_int64) i->gid);
                sqlite3_bind_text(st, 11, json_text(spec), -1, SQLITE_TRANSIENT);
                json_object_put(spec);
                sqlite3_bind_int64(st, 12, (sqlite3_int64) i->created_usec);
        }
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
                log_error("Lab instance %s: cannot store it: %s", i->id, sqlite3_errmsg(m->db));
                return db_errno(rc);
        }
        return 0;
}

/* Committed first, then in memory (and in every later answer). If the database refuses, memory
 * follows anyway: the host's state (processes, namespace) is what it is, and the next change or
 * a restart's recovery brings the row up to date. */
static void instance_set_state(LabInstance *i, LabInstanceState s, const char *error) {
        LabInstanceState old = i->state;

        i->state = s;
        if (error && !i->error)
                i->error = strdup(error);
        if (s == LAB_INSTANCE_RUNNING && !i->started_usec)
                i->started_usec = now_realtime_usec();
        if (state_is_final(s) && !i->ended_usec)
                i->ended_usec = now_realtime_usec();
        (void) instance_store(i, false);
        instance_busy_update(i);
        if (old != s)
                log_info("Lab instance %s (%s of uid %u): %s%s%s", i->id, i->lab, (unsigned) i->uid, states[s],
                         i->error ? " — " : "", strempty(i->error));
}

static void instance_delete_row(LabInstance *i) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (db_prepare(i->manager->db, "DELETE FROM lab_instances WHERE id = ?", &st) < 0)
                return;
        sqlite3_bind_text(st, 1, i->id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
                log_error("Lab instance %s: cannot remove its record: %s", i->id, sqlite3_errmsg(i->manager->db));
}

/* ---- the network namespace ---- */

static int loopback_up(void) {
        struct ifreq ifr = {};
        int fd, r = 0;

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                r = -errno;
        ifr.ifr_flags |= IFF_UP;
        if (r >= 0 && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                r = -errno;
        close(fd);
        return r;
}

/* A new network namespace with only loopback, up, pinned by a bind mount of its nsfs file at
 * path (as "ip netns add" does), so that it outlives the process that made it and gatewayd. */
static int netns_create(const char *path) {
        _cleanup_close_ int fd = -1;
        int status;
        pid_t pid;

        fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
        if (fd < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                if (unshare(CLONE_NEWNET) < 0)
                        _exit(1);
                if (loopback_up() < 0)
                        _exit(2);
                if (mount("/proc/self/ns/net", path, NULL, MS_BIND, NULL) < 0)
                        _exit(3);
                _exit(0);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                (void) unlink(path);
                return -EIO;
        }
        return 0;
}

static void netns_remove(const char *path) {
        if (!path)
                return;
        if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
                log_warning_errno(errno, "Cannot unmount %s: %m", path);
        if (unlink(path) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Cannot remove %s: %m", path);
}

/* ---- outbound network (lab-network.c) ---- */

static bool slot_in_use(Manager *m, unsigned slot) {
        LabInstance *i;

        HASHMAP_FOREACH(i, m->lab_instances)
                if (i->net_slot >= 0 && (unsigned) i->net_slot == slot)
                        return true;
        return false;
}

static bool any_slot_in_use(Manager *m) {
        LabInstance *i;

        HASHMAP_FOREACH(i, m->lab_instances)
                if (i->net_slot >= 0)
                        return true;
        return false;
}

/* The slot is kept in the instance's directory, where a restarted gatewayd finds it. */
static int slot_file(LabInstance *i, char **ret) {
        return asprintf(ret, "%s/network-slot", i->dir) < 0 ? -ENOMEM : 0;
}

static void instance_load_slot(LabInstance *i) {
        _cleanup_free_ char *p = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        int slot;

        if (slot_file(i, &p) < 0 || !(f = fopen(p, "re")))
                return;
        if (fscanf(f, "%d", &slot) == 1 && slot >= 0)
                i->net_slot = slot;
}

/* The lowest free slot of the pool, connected. */
static int instance_network_up(LabInstance *i, char **ret_error) {
        Manager *m = i->manager;
        char buf[16];
        unsigned slot = 0, n = lab_network_slots(m);
        int r;

        while (slot < n && slot_in_use(m, slot))
                slot++;
        if (slot >= n)
                return asprintf(ret_error, "All %u addresses of LabNetworkPool are in use.", n) < 0 ? -ENOMEM : -EBUSY;
        snprintf(buf, sizeof(buf), "%u\n", slot);
        r = write_file_atomic_nosync(i->dir, "network-slot", buf, strlen(buf));
        if (r < 0)
                return r;
        i->net_slot = (int) slot;       /* before: a failure half-way is taken down with the instance */
        return lab_network_up(m, i->netns_path, slot, ret_error);
}

static void instance_network_down(LabInstance *i) {
        if (i->net_slot < 0)
                return;
        lab_network_down(i->manager, (unsigned) i->net_slot);
        i->net_slot = -1;
        if (!any_slot_in_use(i->manager))
                lab_network_idle(i->manager);
}

/* ---- teardown ---- */

static bool members_all_exited(LabInstance *i) {
        for (size_t k = 0; k < i->n_members; k++)
                if (i->members[k].started && !i->members[k].exited)
                        return false;
        return true;
}

/* The members' writable layers that the workers mounted (LabWritableMax): detached here, their
 * loop devices go with the last sandbox that held them. EINVAL: not a mount point (a plain
 * directory, or gatewayd restarted in a mount namespace of its own since). */
static void members_unmount_writable(LabInstance *i) {
        for (size_t k = 0; i->dir && k < i->n_members; k++) {
                _cleanup_free_ char *writable = NULL;

                if (asprintf(&writable, "%s/%s.data", i->dir, i->members[k].spec->name) < 0)
                        continue;
                if (umount2(writable, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
                        log_warning_errno(errno, "Lab instance %s: cannot unmount %s: %m", i->id, writable);
        }
}

/* Everything of the instance on the host goes: namespace, hosts file, spools, writable layers. */
static void instance_finish(LabInstance *i, LabInstanceState final) {
        Manager *m = i->manager;
        int r;

        i->kill_timer = sd_event_source_disable_unref(i->kill_timer);
        i->expiry_timer = sd_event_source_disable_unref(i->expiry_timer);
        instance_network_down(i);
        netns_remove(i->netns_path);
        members_unmount_writable(i);
        /* rm_rf() never follows symlinks: the writable layers are the user's to fill. */
        r = i->dir ? rm_rf(i->dir) : 0;
        if (r < 0)
                log_warning_errno(r, "Lab instance %s: cannot remove %s completely: %m", i->id, i->dir);

        if (i->remove_when_stopped) {
                instance_delete_row(i);
                hashmap_remove(m->lab_instances, i->id);
                log_info("Lab instance %s removed.", i->id);
                lab_instance_free(i);
                return;
        }
        instance_set_state(i, final, NULL);
}

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        LabInstance *i = userdata;

        log_warning("Lab instance %s: members did not stop in time; killing their workers.", i->id);
        for (size_t k = 0; k < i->n_members; k++)
                if (i->members[k].worker_pidfd >= 0 && !i->members[k].exited)
                        (void) pidfd_signal(i->members[k].worker_pidfd, SIGKILL);
        return 0;
}

/* Stops every member; the instance ends in final when the last worker is gone. */
static void instance_stop(LabInstance *i, LabInstanceState final, const char *why) {
        bool any = false;
        int r;

        if (state_is_final(i->state))
                return;
        /* The first stop decides (a DELETE during the end of the lifetime does not turn it
         * into FAILED); a STOPPING instance recovered after a restart has none yet. */
        if (i->state != LAB_INSTANCE_STOPPING || !state_is_final(i->final_state))
                i->final_state = final;
        if (i->state != LAB_INSTANCE_STOPPING)
                instance_set_state(i, LAB_INSTANCE_STOPPING, why);
        for (size_t k = 0; k < i->n_members; k++) {
                LabInstanceMember *mb = &i->members[k];

                if (!mb->started || mb->exited || mb->worker_pidfd < 0)
                        continue;
                any = true;
                r = pidfd_signal(mb->worker_pidfd, SIGTERM);
                if (r < 0 && r != -ESRCH)
                        log_warning_errno(r, "Lab instance %s: cannot signal member %s: %m", i->id, mb->spec->name);
        }
        if (!any && members_all_exited(i)) {
                instance_finish(i, i->final_state);
                return;
        }
        if (!i->kill_timer)
                (void) sd_event_add_time_relative(i->manager->event, &i->kill_timer, CLOCK_MONOTONIC, STOP_KILL_USEC, 0,
                                                  on_kill_timer, i);
}

/* What a stop on request (DELETE, recovery) ends in: FAILED if it never ran, else STOPPED. */
static LabInstanceState stop_final(LabInstance *i) {
        return i->started_usec ? LAB_INSTANCE_STOPPED : LAB_INSTANCE_FAILED;
}

/* ---- members ---- */

/* How the member ended, from its worker's exit.json (docs/worker-run.md), for the instance's
 * error: "Member web exited with status 3.", or the worker's reason if it never ran. */
static char *member_outcome(LabInstanceMember *mb) {
        _cleanup_free_ char *path = NULL;
        json_object *o, *v, *err;
        char *msg = NULL;
        int r = -1;

        if (!(path = spool_path(mb->spool_dir, SPOOL_EXIT)))
                return NULL;
        o = json_object_from_file(path);
        if (o && json_object_object_get_ex(o, "exitCode", &v) && json_object_is_type(v, json_type_int))
                r = asprintf(&msg, "Member %s exited with status %d.", mb->spec->name, json_object_get_int(v));
        else if (o && json_object_object_get_ex(o, "error", &err) && json_object_is_type(err, json_type_object) &&
                 json_object_object_get_ex(err, "detail", &v) && json_object_is_type(v, json_type_string))
                r = asprintf(&msg, "Member %s ended: %.300s", mb->spec->name, json_object_get_string(v));
        json_object_put(o);
        if (r < 0 && asprintf(&msg, "Member %s exited.", mb->spec->name) < 0)
                return NULL;
        return msg;
}

static void member_exited(LabInstanceMember *mb, const char *why) {
        LabInstance *i = mb->instance;

        if (mb->exited)
                return;
        mb->exited = true;
        mb->running = false;
        member_detach(mb);
        log_info("Lab instance %s: member %s exited (%s).", i->id, mb->spec->name, why);
        lingering_mounts_sandbox_ended(i->manager);  /* its image's mount may linger */

        if (i->state == LAB_INSTANCE_STOPPING) {
                if (members_all_exited(i))
                        instance_finish(i, i->final_state);
                return;
        }
        if (i->state == LAB_INSTANCE_RUNNING || i->state == LAB_INSTANCE_STARTING) {
                _cleanup_free_ char *msg = member_outcome(mb);

                instance_set_state(i, LAB_INSTANCE_DEGRADED, msg ?: "A member exited.");
        }
}

static void on_worker_event(WorkerProcess *w, const WorkerEvent *e, void *userdata) {
        LabInstanceMember *mb = userdata;
        LabInstance *i = mb->instance;

        if (e->kind != WORKER_EVENT_STATUS || !streq(strempty(e->status.status), "RUNNING"))
                return;
        mb->running = true;
        if (i->state != LAB_INSTANCE_STARTING)
                return;
        for (size_t k = 0; k < i->n_members; k++)
                if (!i->members[k].running)
                        return;
        instance_set_state(i, LAB_INSTANCE_RUNNING, NULL);
}

static void on_worker_exit(WorkerProcess *w, int status, void *userdata) {
        char why[64];

        snprintf(why, sizeof(why), status >= 0 ? "worker status %i" : "worker killed by signal %i",
                 status >= 0 ? status : -status);
        member_exited(userdata, why);
}

static int on_reattached_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        member_exited(userdata, "re-attached worker ended");
        return 0;
}

static json_object *member_job_json(LabInstanceMember *mb) {
        LabInstance *i = mb->instance;
        Config *c = i->manager->config;
        json_object *o = json_object_new_object(), *img, *env, *res, *lab, *cmd;
        _cleanup_free_ char *id = NULL, *hosts = NULL, *writable = NULL;

        if (!o || asprintf(&id, "%s-%s", i->id, mb->spec->name) < 0 ||
            asprintf(&hosts, "%s/hosts", i->dir) < 0 || asprintf(&writable, "%s/%s.data", i->dir, mb->spec->name) < 0) {
                json_object_put(o);
                return NULL;
        }
        json_object_object_add(o, "id", json_object_new_string(id));
        img = json_object_new_object();
        json_object_object_add(img, "path", json_object_new_string(mb->image_path));
        if (mb->meta_path)
                json_object_object_add(img, "metaPath", json_object_new_string(mb->meta_path));
        json_object_object_add(o, "image", img);
        if (mb->spec->command) {
                cmd = json_object_new_array();
                for (char **a = mb->spec->command; *a; a++)
                        json_object_array_add(cmd, json_object_new_string(*a));
                json_object_object_add(o, "command", cmd);
        }
        env = json_object_new_object();
        for (char **v = mb->spec->env; v && *v; v++) {
                const char *eq = strchr(*v, '=');
                _cleanup_free_ char *k = eq ? strndup(*v, (size_t) (eq - *v)) : NULL;
                if (k)
                        json_object_object_add(env, k, json_object_new_string(eq + 1));
        }
        json_object_object_add(o, "env", env);
        res = json_object_new_object();
        /* Each member gets the site's caps for a job; the lab's limits hold for the instance as
         * a whole, in its group cgroup below (the worker's job-limits.c). */
        json_object_object_add(res, "memory", json_object_new_int64((int64_t) c->memory_max));
        json_object_object_add(res, "pids", json_object_new_int64((int64_t) c->tasks_max));
        /* A backstop for when gatewayd is not there at the end of the lifetime. */
        json_object_object_add(res, "timeout", json_object_new_int64((int64_t) i->spec->lifetime_sec + 60));
        json_object_object_add(o, "resources", res);
        json_object_object_add(o, "uid", json_object_new_int64(i->uid));
        json_object_object_add(o, "gid", json_object_new_int64(i->gid));
        lab = json_object_new_object();
        json_object_object_add(lab, "netns", json_object_new_string(i->netns_path));
        json_object_object_add(lab, "hostname", json_object_new_string(mb->spec->name));
        json_object_object_add(lab, "hosts", json_object_new_string(hosts));
        if (i->spec->network == LAB_NETWORK_OUTBOUND) {
                _cleanup_free_ char *resolv = NULL;

                if (asprintf(&resolv, "%s/resolv.conf", i->dir) < 0) {
                        json_object_put(o);
                        json_object_put(lab);
                        return NULL;
                }
                json_object_object_add(lab, "resolv", json_object_new_string(resolv));
        }
        json_object_object_add(lab, "writable", json_object_new_string(writable));
        if (c->lab_writable_max > 0) {
                _cleanup_free_ char *image = NULL, *template = NULL;

                /* the template is the site's, one per size, next to the instances' directories */
                if (asprintf(&image, "%s/%s.img", i->dir, mb->spec->name) < 0 ||
                    asprintf(&template, "%s/labs/.writable-%" PRIu64 ".img", i->manager->state_dir, c->lab_writable_max) < 0) {
                        json_object_put(o);
                        json_object_put(lab);
                        return NULL;
                }
                json_object_object_add(lab, "writableImage", json_object_new_string(image));
                json_object_object_add(lab, "writableTemplate", json_object_new_string(template));
                json_object_object_add(lab, "writableMax", json_object_new_int64((int64_t) c->lab_writable_max));
        }
        if (i->spec->memory || i->spec->tasks) {
                _cleanup_free_ char *group = NULL;

                /* "li-" ids are [a-z0-9-]: the worker insists on that for a cgroup's name. */
                if (asprintf(&group, "gatewayd-lab-%s", i->id + 3) < 0) {
                        json_object_put(o);
                        json_object_put(lab);
                        return NULL;
                }
                json_object_object_add(lab, "group", json_object_new_string(group));
                json_object_object_add(lab, "groupMemory", json_object_new_int64((int64_t) i->spec->memory));
                /* the tasks of the lab, and each sandbox's own two (bwrap, its init) */
                json_object_object_add(lab, "groupPids", json_object_new_int64(i->spec->tasks ?
                                       (int64_t) (i->spec->tasks + 2 * i->n_members) : 0));
        }
        json_object_object_add(o, "lab", lab);
        return o;
}

/* The member's spool (job.json, input/) and its writable layer, owned by the user. */
static int member_prepare(LabInstanceMember *mb) {
        LabInstance *i = mb->instance;
        _cleanup_free_ char *input = NULL, *writable = NULL;
        json_object *spec;
        const char *text;
        int r;

        if (asprintf(&input, "%s/" SPOOL_INPUT_DIR, mb->spool_dir) < 0 ||
            asprintf(&writable, "%s/%s.data", i->dir, mb->spec->name) < 0)
                return -ENOMEM;
        if (mkdir(mb->spool_dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (mkdir(input, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (mkdir(writable, 0700) < 0 && errno != EEXIST)
                return -errno;
        /* Whom the member runs as: the worker runs root's (uid or gid 0) as nobody. */
        if (chown(writable, i->uid ?: JOB_NOBODY_ID, i->gid ?: JOB_NOBODY_ID) < 0)
                return -errno;

        spec = member_job_json(mb);
        if (!spec)
                return -ENOMEM;
        text = json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = write_file_atomic_nosync(mb->spool_dir, SPOOL_JOB_SPEC, text, strlen(text));
        json_object_put(spec);
        return r;
}

static int member_start(LabInstanceMember *mb) {
        LabInstance *i = mb->instance;
        Manager *m = i->manager;
        _cleanup_free_ char *err_path = NULL, *a_runtime = NULL;
        _cleanup_close_ int err_fd = -1;
        char a_grace[64], a_linger[64];
        /* the image stays mounted a while after the member, as for jobs: the next instance (of
         * this lab or another on the image) neither mounts it again nor starts cold */
        char *args[] = { (char *) "run", (char *) "--events-fd=3", NULL, a_grace, a_linger, (char *) "--log-max=1M",
                         mb->spool_dir, NULL };
        bool verb;
        /* the slim run binary, as for jobs: two members of a lab start at once */
        const char *path = worker_run_binary_path(m, &verb);
        char **argv = verb ? args : args + 1;
        WorkerOptions o;
        int r;

        r = member_prepare(mb);
        if (r < 0)
                return log_warning_errno(r, "Lab instance %s: cannot prepare member %s: %m", i->id, mb->spec->name);
        if (asprintf(&a_runtime, "--runtime-dir=%s/worker", m->runtime_dir) < 0 ||
            !(err_path = spool_path(mb->spool_dir, SPOOL_WORKER_ERR)))
                return -ENOMEM;
        args[2] = a_runtime;
        snprintf(a_grace, sizeof(a_grace), "--kill-grace=%u", MEMBER_KILL_GRACE_SEC);
        snprintf(a_linger, sizeof(a_linger), "--image-linger=%u", IMAGE_MOUNT_LINGER_SEC);
        err_fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (err_fd < 0)
                return -errno;

        o = (WorkerOptions) {
                .path = path,
                .argv = argv,
                .own_session = true,    /* members outlive gatewayd; the spool re-attaches them */
                .drop_long_events = true,
                .stderr_fd = err_fd,
        };
        r = worker_process_spawn(m, &o, &(WorkerCallbacks) { .on_event = on_worker_event, .on_exit = on_worker_exit },
                                 mb, &mb->worker);
        if (r < 0)
                return log_warning_errno(r, "Lab instance %s: cannot start member %s: %m", i->id, mb->spec->name);
        mb->worker_pid = worker_process_pid(mb->worker);
        mb->worker_pidfd = pidfd_open_fd(mb->worker_pid);
        mb->started = true;
        if (mb->worker_pidfd < 0) {
                (void) worker_process_kill(mb->worker, SIGKILL);
                return mb->worker_pidfd;
        }
        log_info("Lab instance %s: member %s started (worker %i).", i->id, mb->spec->name, (int) mb->worker_pid);
        return 0;
}

/* Re-attaches to the live worker of a member, found through its locked worker.pid (as
 * platform-local.c does for jobs). Returns 1 if re-attached. */
static int member_reattach(LabInstanceMember *mb) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        char buf[32] = {};
        int pid, pidfd;

        if (!(path = spool_path(mb->spool_dir, SPOOL_WORKER_PID)))
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0 || sscanf(buf, "%d", &pid) != 1 || pid <= 0)
                return 0;
        if (flock(fd, LOCK_SH | LOCK_NB) >= 0 || errno != EWOULDBLOCK)
                return 0;       /* nobody holds the lock: the worker is gone */
        /* The lock holder is alive, so pid is the worker; pin it, then check the lock again. */
        pidfd = pidfd_open_fd(pid);
        if (pidfd < 0)
                return 0;
        if (flock(fd, LOCK_SH | LOCK_NB) >= 0 || errno != EWOULDBLOCK) {
                safe_close(pidfd);
                return 0;
        }
        mb->worker_pid = pid;
        mb->worker_pidfd = pidfd;
        mb->started = mb->running = true;
        if (sd_event_add_io(mb->instance->manager->event, &mb->pidfd_source, pidfd, EPOLLIN, on_reattached_exit, mb) < 0) {
                mb->worker_pidfd = safe_close(mb->worker_pidfd);
                mb->started = mb->running = false;
                return 0;
        }
        log_info("Lab instance %s: re-attached to member %s (worker %i).", mb->instance->id, mb->spec->name, pid);
        return 1;
}

/* ---- start ---- */

static int on_expiry(sd_event_source *s, uint64_t usec, void *userdata) {
        LabInstance *i = userdata;

        i->expiry_timer = sd_event_source_disable_unref(i->expiry_timer);
        log_info("Lab instance %s: its lifetime is over.", i->id);
        instance_stop(i, LAB_INSTANCE_STOPPED, NULL);
        return 0;
}

static int arm_expiry(LabInstance *i) {
        i->expiry_timer = sd_event_source_disable_unref(i->expiry_timer);
        return sd_event_add_time(i->manager->event, &i->expiry_timer, CLOCK_REALTIME, i->expires_usec, USEC_PER_SEC / 10,
                                 on_expiry, i);
}

static void instance_fail(LabInstance *i, const char *why) {
        if (!i->error)
                i->error = strdup(why);
        instance_stop(i, LAB_INSTANCE_FAILED, why);
}

static void start_members(LabInstance *i) {
        for (size_t k = 0; k < i->n_members; k++)
                if (member_start(&i->members[k]) < 0) {
                        _cleanup_free_ char *msg = NULL;

                        if (asprintf(&msg, "Member %s could not be started.", i->members[k].spec->name) < 0)
                                msg = NULL;
                        return instance_fail(i, msg ?: "A member could not be started.");
                }
}

typedef struct ImageWait {
        char *instance_id;
        size_t member;
} ImageWait;

static void on_image_ready(Manager *m, Image *image, const GwError *error, void *userdata) {
        ImageWait *w = userdata;
        LabInstance *i = m->lab_instances ? hashmap_get(m->lab_instances, w->instance_id) : NULL;
        LabInstanceMember *mb;

        if (!i || i->state != LAB_INSTANCE_STARTING || w->member >= i->n_members)
                goto out;
        mb = &i->members[w->member];
        i->images_pending--;
        if (!image || (error && gw_error_is_set(error))) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "Image %s of member %s could not be pulled: %s", mb->spec->image, mb->spec->name,
                             error && error->message ? error->message : "not available") < 0)
                        msg = NULL;
                instance_fail(i, msg ?: "An image could not be pulled.");
                goto out;
        }
        if (free_and_strdup(&mb->image_path, image->squashfs_path) < 0 ||
            (image->meta_path && free_and_strdup(&mb->meta_path, image->meta_path) < 0)) {
                instance_fail(i, "Out of memory.");
                goto out;
        }
        image_mark_used(image);
        if (i->images_pending == 0)
                start_members(i);
out:
        free(w->instance_id);
        free(w);
}

static int write_hosts(LabInstance *i) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fputs("127.0.0.1\tlocalhost\n::1\tlocalhost\n", f);
        for (size_t k = 0; k < i->n_members; k++)
                fprintf(f, "%s\t%s\n", i->members[k].address, i->members[k].spec->name);
        if (fclose(f) != 0)
                return -ENOMEM;
        r = write_file_atomic_nosync(i->dir, "hosts", text, size);
        if (r >= 0) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/hosts", i->dir) >= 0)
                        (void) chmod(p, 0644);
        }
        return r;
}

/* Outbound members' /etc/resolv.conf (lab-resolv.h), read from the host's at each start. With
 * no name server to give them, the file says why, and so does the log. */
static int write_resolv(LabInstance *i) {
        _cleanup_free_ char *text = NULL, *why = NULL, *p = NULL;
        int r;

        r = lab_resolv_conf_make(i->manager->config->lab_name_servers, LAB_RESOLV_HOST, LAB_RESOLV_UPSTREAM,
                                 &text, &why);
        if (r < 0)
                return log_warning_errno(r, "Lab instance %s: cannot make its resolv.conf: %m", i->id);
        if (r == 0)
                log_warning("Lab instance %s: %s.", i->id, why);
        r = write_file_atomic_nosync(i->dir, "resolv.conf", text, strlen(text));
        if (r >= 0 && asprintf(&p, "%s/resolv.conf", i->dir) >= 0)
                (void) chmod(p, 0644);
        return r;
}

/* Members run on the gateway host, so their images must be ones converted into this host's
 * image directory: the default platform's if that is such a platform, else the first one. */
static const char *lab_platform(Manager *m) {
        ConfigPlatform *d = config_platform_default(m->config);

        if (d && d->access == CONFIG_ACCESS_LOCAL && !config_platform_is_slurm(d))
                return d->name;
        for (size_t k = 0; k < m->config->n_platforms; k++)
                if (m->config->platforms[k].access == CONFIG_ACCESS_LOCAL &&
                    !config_platform_is_slurm(&m->config->platforms[k]))
                        return m->config->platforms[k].name;
        return NULL;
}

/* The directory, the namespace, the hosts file, then the images (the members start when the
 * last one is READY). */
static void instance_start(LabInstance *i) {
        Manager *m = i->manager;
        const char *platform = lab_platform(m);
        int r;

        if (!platform)
                return instance_fail(i, "No platform of this gatewayd keeps its images on the gateway host, where labs run.");

        r = mkdir_p(i->dir, 0700);
        if (r >= 0)
                r = write_hosts(i);
        if (r < 0)
                return instance_fail(i, "Cannot create the instance's directory.");
        r = netns_create(i->netns_path);
        if (r < 0) {
                log_warning_errno(r, "Lab instance %s: cannot create its network namespace: %m", i->id);
                return instance_fail(i, "Cannot create the instance's network namespace.");
        }
        if (i->spec->network == LAB_NETWORK_OUTBOUND) {
                _cleanup_free_ char *error = NULL, *msg = NULL;

                if (write_resolv(i) < 0)
                        return instance_fail(i, "Cannot write the instance's resolv.conf.");
                r = instance_network_up(i, &error);
                if (r < 0) {
                        log_warning("Lab instance %s: no outbound network: %s", i->id, strna(error));
                        if (asprintf(&msg, "No outbound network: %s", error ?: "cannot set it up.") < 0)
                                msg = NULL;
                        return instance_fail(i, msg ?: "No outbound network.");
                }
        }
        i->images_pending = (unsigned) i->n_members;
        /* A pull may fail at once (callbacks can come before ensure_ready() returns): then the
         * instance has failed and the rest need not be asked for. */
        for (size_t k = 0; k < i->n_members && i->state == LAB_INSTANCE_STARTING; k++) {
                ImageWait *w = calloc(1, sizeof(ImageWait));

                if (!w || !(w->instance_id = strdup(i->id))) {
                        free(w);
                        return instance_fail(i, "Out of memory.");
                }
                w->member = k;
                r = image_registry_ensure_ready(m, platform, i->members[k].spec->image, i->uid, on_image_ready, w);
                if (r < 0) {
                        free(w->instance_id);
                        free(w);
                        return instance_fail(i, "An image could not be requested.");
                }
        }
}

/* ---- construction ---- */

static int instance_new(Manager *m, const char *id, const char *lab, Lab *spec, LabInstance **ret) {
        _cleanup_(lab_instance_freep) LabInstance *i = calloc(1, sizeof(LabInstance));

        if (!i)
                return -ENOMEM;
        i->manager = m;
        i->spec = spec;
        i->net_slot = -1;
        if (!(i->id = strdup(id)) || !(i->lab = strdup(lab)) ||
            asprintf(&i->dir, "%s/labs/%s", m->state_dir, id) < 0 ||
            asprintf(&i->netns_path, "%s/labs/%s.netns", m->runtime_dir, id) < 0)
                return -ENOMEM;
        i->members = calloc(spec->n_members, sizeof(LabInstanceMember));
        if (!i->members)
                return -ENOMEM;
        i->n_members = spec->n_members;
        for (size_t k = 0; k < i->n_members; k++) {
                LabInstanceMember *mb = &i->members[k];

                mb->instance = i;
                mb->spec = &spec->members[k];
                mb->worker_pidfd = -1;
                /* 127.0.0.1 is localhost; the members follow (at most LAB_MEMBERS_MAX). */
                if (asprintf(&mb->address, "127.0.0.%zu", k + 2) < 0 ||
                    asprintf(&mb->spool_dir, "%s/%s.spool", i->dir, mb->spec->name) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(i);
        return 0;
}

static int instance_id_new(char **ret) {
        uint8_t b[8];
        char *s;

        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return -EIO;
        if (asprintf(&s, "li-%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static unsigned count_unfinished(Manager *m, uid_t uid) {
        LabInstance *i;
        unsigned n = 0;

        HASHMAP_FOREACH(i, m->lab_instances)
                if (i->uid == uid && !state_is_final(i->state))
                        n++;
        return n;
}

/* Outbound instances that hold or will take an address of LabNetworkPool: all but the ended. */
static unsigned count_outbound(Manager *m) {
        LabInstance *i;
        unsigned n = 0;

        HASHMAP_FOREACH(i, m->lab_instances)
                if (i->spec->network == LAB_NETWORK_OUTBOUND && !state_is_final(i->state))
                        n++;
        return n;
}

static int ensure_dirs(Manager *m) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        int r;

        if (asprintf(&a, "%s/labs", m->state_dir) < 0 || asprintf(&b, "%s/labs", m->runtime_dir) < 0)
                return -ENOMEM;
        r = mkdir_p(a, 0700);
        if (r >= 0)
                r = mkdir_p(b, 0700);
        return r;
}

int lab_instance_create(Manager *m, const char *name, const Caller *caller, LabInstance **ret, GwError *e) {
        _cleanup_gw_error_ GwError pe = GW_ERROR_NULL;
        _cleanup_(lab_instance_freep) LabInstance *i = NULL;
        _cleanup_free_ char *id = NULL;
        json_object *spec_json;
        Lab *lab = lab_registry_get(m, name), *spec = NULL;
        LabInstance *added;
        int r;

        if (!lab)
                return gw_error_set(e, GW_ERROR_NOT_FOUND, "No lab '%s'.", name);
        if (m->config->lab_instances_per_user > 0 &&
            count_unfinished(m, caller->uid) >= m->config->lab_instances_per_user)
                return gw_error_set(e, GW_ERROR_LIMIT_EXCEEDED,
                                    "You have %u lab instances already (LabInstancesPerUser); delete one first.",
                                    m->config->lab_instances_per_user);
        /* Checked before anything is made: a host that cannot forward gets no instance that
         * could only fail, and the caller an answer that says what to do. */
        if (lab->network == LAB_NETWORK_OUTBOUND) {
                _cleanup_free_ char *why = NULL;

                if (lab_network_check(m, &why) < 0)
                        return gw_error_set(e, GW_ERROR_UNAVAILABLE, "Lab '%s' needs outbound network: %s.", name,
                                            why ?: "IPv4 forwarding is off and cannot be turned on");
                if (count_outbound(m) >= lab_network_slots(m))
                        return gw_error_set(e, GW_ERROR_UNAVAILABLE,
                                            "Lab '%s' needs outbound network, and all %u addresses of LabNetworkPool are "
                                            "in use; try again when an outbound lab instance has ended.",
                                            name, lab_network_slots(m));
        }
        r = ensure_dirs(m);
        if (r < 0)
                return gw_error_set_errno(e, r, "Cannot create the labs directories.");

        /* A copy of the definition as it is now: changing or removing the lab does not touch
         * instances that run. */
        spec_json = lab_spec_to_json(lab);
        r = spec_json ? lab_from_spec(spec_json, name, &spec, &pe) : -ENOMEM;
        json_object_put(spec_json);
        if (r < 0)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        r = instance_id_new(&id);
        if (r >= 0)
                r = instance_new(m, id, name, spec, &i);
        if (r < 0) {
                lab_free(spec);
                return gw_error_set_errno(e, r, "Out of memory.");
        }
        i->uid = caller->uid;
        i->gid = caller_gid(caller);
        i->state = LAB_INSTANCE_STARTING;
        i->created_usec = now_realtime_usec();
        i->expires_usec = i->created_usec + spec->lifetime_sec * USEC_PER_SEC;

        r = instance_store(i, true);
        if (r < 0)
                return gw_error_set_errno(e, r, "Database error while storing the lab instance.");
        r = hashmap_put(m->lab_instances, i->id, i);
        if (r < 0) {
                instance_delete_row(i);
                return gw_error_set_errno(e, r, "Out of memory.");
        }
        added = TAKE_PTR(i);
        instance_busy_update(added);
        log_info("Lab instance %s of lab %s created for uid %u.", added->id, name, (unsigned) added->uid);
        if (arm_expiry(added) < 0)
                log_warning("Lab instance %s: cannot arm its expiry timer.", added->id);
        instance_start(added);
        *ret = added;
        return 0;
}

/* ---- queries ---- */

LabInstance *lab_instance_get(Manager *m, const char *id, const Caller *caller) {
        LabInstance *i = m->lab_instances ? hashmap_get(m->lab_instances, id) : NULL;

        return i && i->uid == caller->uid ? i : NULL;
}

static int compare_instances(const void *a, const void *b) {
        const LabInstance *x = *(LabInstance * const *) a, *y = *(LabInstance * const *) b;

        if (x->created_usec != y->created_usec)
                return x->created_usec < y->created_usec ? -1 : 1;
        return strcmp(x->id, y->id);
}

LabInstance **lab_instance_list(Manager *m, const Caller *caller, size_t *ret_n) {
        size_t n = 0;
        LabInstance **v = calloc(hashmap_size(m->lab_instances) + 1, sizeof(LabInstance *)), *i;

        if (!v)
                return NULL;
        HASHMAP_FOREACH(i, m->lab_instances)
                if (i->uid == caller->uid)
                        v[n++] = i;
        qsort(v, n, sizeof(LabInstance *), compare_instances);
        if (ret_n)
                *ret_n = n;
        return v;
}

int lab_instance_remove(LabInstance *i, GwError *e) {
        int r;

        i->remove_when_stopped = true;
        if (state_is_final(i->state)) {
                instance_finish(i, i->state);
                return 0;
        }
        /* Recorded before anything is stopped: a restart in between finishes the removal. */
        r = instance_store(i, false);
        if (r < 0) {
                i->remove_when_stopped = false;
                return gw_error_set_errno(e, r, "Database error while removing the lab instance.");
        }
        instance_stop(i, stop_final(i), NULL);
        return 0;
}

static json_object *timestamp_or_null(uint64_t usec) {
        char buf[32];

        return usec ? json_object_new_string(format_timestamp_iso(buf, sizeof(buf), usec)) : NULL;
}

json_object *lab_instance_to_json(const LabInstance *i) {
        json_object *o = json_object_new_object(), *members;
        bool live = !state_is_final(i->state);

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_string(i->id));
        json_object_object_add(o, "lab", json_object_new_string(i->lab));
        json_object_object_add(o, "state", json_object_new_string(states[i->state]));
        json_object_object_add(o, "error", i->error ? json_object_new_string(i->error) : NULL);
        json_object_object_add(o, "createdAt", timestamp_or_null(i->created_usec));
        json_object_object_add(o, "startedAt", timestamp_or_null(i->started_usec));
        json_object_object_add(o, "expiresAt", timestamp_or_null(i->expires_usec));
        json_object_object_add(o, "endedAt", timestamp_or_null(i->ended_usec));
        json_object_object_add(o, "networkNamespace", live ? json_object_new_string(i->netns_path) : NULL);
        members = json_object_new_array();
        for (size_t k = 0; k < i->n_members; k++) {
                const LabInstanceMember *mb = &i->members[k];
                json_object *x = json_object_new_object(), *ports = json_object_new_array();
                const char *state = mb->exited ? "EXITED" : mb->running ? "RUNNING" : live ? "STARTING" : "EXITED";

                json_object_object_add(x, "name", json_object_new_string(mb->spec->name));
                json_object_object_add(x, "image", json_object_new_string(mb->spec->image));
                json_object_object_add(x, "address", json_object_new_string(mb->address));
                json_object_object_add(x, "state", json_object_new_string(state));
                for (size_t p = 0; p < mb->spec->n_ports; p++) {
                        json_object *port = json_object_new_object();
                        json_object_object_add(port, "port", json_object_new_int(mb->spec->ports[p].port));
                        json_object_object_add(port, "kind", json_object_new_string(lab_port_kind_to_string(mb->spec->ports[p].kind)));
                        json_object_array_add(ports, port);
                }
                json_object_object_add(x, "ports", ports);
                json_object_array_add(members, x);
        }
        json_object_object_add(o, "members", members);
        return o;
}

/* ---- load and recovery ---- */

static void instance_recover(LabInstance *i) {
        _cleanup_free_ char *lost = NULL;

        for (size_t k = 0; k < i->n_members; k++)
                if (member_reattach(&i->members[k]) <= 0) {
                        i->members[k].exited = true;
                        if (!lost)
                                lost = member_outcome(&i->members[k]);
                }
        switch (i->state) {
        case LAB_INSTANCE_STARTING:
                /* Its image requests and half-started members died with the previous gatewayd:
                 * stop what runs rather than guess. */
                instance_fail(i, "gatewayd was restarted while the instance was starting.");
                break;
        case LAB_INSTANCE_STOPPING:
                instance_stop(i, stop_final(i), NULL);
                break;
        case LAB_INSTANCE_RUNNING:
        case LAB_INSTANCE_DEGRADED:
                if (lost && i->state == LAB_INSTANCE_RUNNING)
                        instance_set_state(i, LAB_INSTANCE_DEGRADED, lost);
                if (i->expires_usec <= now_realtime_usec())
                        instance_stop(i, LAB_INSTANCE_STOPPED, NULL);
                else if (arm_expiry(i) < 0)
                        log_warning("Lab instance %s: cannot arm its expiry timer.", i->id);
                break;
        default:
                break;
        }
}

static int instance_from_row(Manager *m, sqlite3_stmt *st, LabInstance **ret) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *id = (const char *) sqlite3_column_text(st, 0), *lab = (const char *) sqlite3_column_text(st, 1);
        json_object *spec_json;
        Lab *spec = NULL;
        LabInstance *i;
        int r;

        spec_json = json_tokener_parse((const char *) sqlite3_column_text(st, 5));
        r = spec_json ? lab_from_spec(spec_json, lab, &spec, &e) : -EBADMSG;
        json_object_put(spec_json);
        if (r < 0)
                return log_error_errno(EBADMSG, "Lab instance %s in the database has an invalid spec; skipping it.", id);
        r = instance_new(m, id, lab, spec, &i);
        if (r < 0) {
                lab_free(spec);
                return r;
        }
        i->uid = (uid_t) sqlite3_column_int64(st, 2);
        i->gid = (gid_t) sqlite3_column_int64(st, 3);
        i->state = state_from_string((const char *) sqlite3_column_text(st, 4));
        i->created_usec = (uint64_t) sqlite3_column_int64(st, 6);
        i->started_usec = (uint64_t) sqlite3_column_int64(st, 7);
        i->expires_usec = (uint64_t) sqlite3_column_int64(st, 8);
        i->ended_usec = (uint64_t) sqlite3_column_int64(st, 9);
        if (sqlite3_column_type(st, 10) != SQLITE_NULL)
                i->error = strdup((const char *) sqlite3_column_text(st, 10));
        i->remove_when_stopped = sqlite3_column_int(st, 11) != 0;
        if (i->state >= _LAB_INSTANCE_STATE_MAX) {
                lab_instance_free(i);
                return log_error_errno(EBADMSG, "Lab instance %s in the database has an invalid state; skipping it.", id);
        }
        if (!state_is_final(i->state))
                instance_load_slot(i);
        *ret = i;
        return 0;
}

int lab_instances_load(Manager *m) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        LabInstance *i;
        int rc, r;

        m->lab_instances = hashmap_new();
        if (!m->lab_instances)
                return log_oom();
        r = db_prepare(m->db, "SELECT id, lab, uid, gid, state, spec, created_usec, started_usec, expires_usec,"
                              " ended_usec, error, removing FROM lab_instances", &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                i = NULL;
                if (instance_from_row(m, st, &i) < 0)
                        continue;
                r = hashmap_put(m->lab_instances, i->id, i);
                if (r < 0) {
                        lab_instance_free(i);
                        return log_error_errno(r, "Failed to register lab instance: %m");
                }
                instance_busy_update(i);
        }
        if (rc != SQLITE_DONE)
                return log_error_errno(db_errno(rc), "Failed to read lab instances: %s", sqlite3_errmsg(m->db));
        sqlite3_finalize(TAKE_PTR(st));

        /* Recovery may remove instances (a STOPPING one whose members are all gone): iterate
         * over a copy. */
        {
                _cleanup_free_ LabInstance **v = calloc(hashmap_size(m->lab_instances) + 1, sizeof(LabInstance *));
                size_t n = 0;

                if (!v)
                        return log_oom();
                HASHMAP_FOREACH(i, m->lab_instances)
                        v[n++] = i;
                for (size_t k = 0; k < n; k++)
                        if (!state_is_final(v[k]->state))
                                instance_recover(v[k]);
                        else if (v[k]->remove_when_stopped)
                                instance_finish(v[k], v[k]->state);     /* ended, but the row was left */
        }
        /* Veth pairs, the firewall table and IP forwarding of instances that are gone (a crash
         * between their end and their teardown): only what the live ones hold stays. */
        lab_network_prune(m, slot_in_use);
        if (!any_slot_in_use(m) && hashmap_size(m->lab_instances) > 0)
                lab_network_idle(m);
        log_info("Loaded %zu lab instances.", hashmap_size(m->lab_instances));
        return 0;
}

void lab_instances_free(Manager *m) {
        LabInstance *i;

        if (!m->lab_instances)
                return;
        HASHMAP_FOREACH(i, m->lab_instances)
                lab_instance_free(i);
        m->lab_instances = hashmap_free(m->lab_instances);
}
