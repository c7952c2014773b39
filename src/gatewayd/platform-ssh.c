/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-util.h"
#include "hashmap.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "node-client.h"
#include "platform-local.h"
#include "image-registry.h"
#include "image-shifter-meta.h"
#include "platform.h"
#include "service.h"
#include "spool-layout.h"

/* Remote platforms (accesstype "remote"): every `host` entry is a node running
 * `gateway-worker serve` behind sshd (docs/nodes.md), reached through one NodeClient each, kept
 * connected for the life of gatewayd. A job runs on one node; its events come back with sequence
 * numbers and are written into the job's spool here (log, interim.jsonl, result.json, exit.json),
 * so that every surface reads a remote job exactly as a local one.
 *
 * The spool's platform.json names the job's node and what of its events the spool already holds
 * (sequence number, log and interim sizes). It is written, and flushed, before the start is sent,
 * so that a restarted gatewayd always knows where the job went: it truncates the log and interim
 * results to the recorded sizes and follows from the recorded sequence number (the node never
 * runs a job id twice; a second start answers with the job's state). exit.json in the spool is
 * the commit point: once it is there the outcome is ours and the job is removed from the node. */

#define PLATFORM_JSON "platform.json"
/* platform.json is rewritten at most this often while events arrive. */
#define SAVE_DELAY_USEC (USEC_PER_SEC / 5)

typedef struct SshPlatform SshPlatform;
typedef struct SshNode SshNode;
typedef struct SshJob SshJob;
typedef struct NodeDeploy NodeDeploy;
typedef struct ImageTransfer ImageTransfer;

/* An image on its way to one node, for whoever waits for it there (jobs, a transfer): one upload
 * per image and node, however many need it (two uploads of one image would write the same
 * partial file). */
struct NodeDeploy {
        NodeDeploy *next;
        SshNode *node;
        char *image;
        char **jobs;                    /* ids, NULL-terminated */
        size_t n_jobs;
        ImageTransfer **transfers;
        size_t n_transfers;
};

/* Shifter's TRANSFER of one image to every node that is up (deploy_image). */
struct ImageTransfer {
        ImageTransfer *next;
        SshPlatform *platform;
        char *image;
        unsigned pending;               /* node uploads not ended */
        char *error;                    /* the first node's failure */
        bool no_space;
};

struct SshNode {
        SshPlatform *platform;
        char *name;                     /* the host entry as configured */
        NodeClient *client;
        SshNodeState state;
        bool draining;
        unsigned slots;
        unsigned running;               /* jobs placed here and not concluded */
        unsigned finishing;             /* of those, jobs whose sandbox has ended: no slot */
        sd_event_source *lost_timer;    /* armed while not up: its jobs are lost when it fires */
        NodeDeploy *deploys;
};

/* What a request to a node carries back to us: the job's id, not the job, which may be gone (and
 * freed) by the time a late answer comes. Owned by the platform until the answer. */
typedef struct Ticket Ticket;
struct Ticket {
        Ticket *next, *prev;
        SshPlatform *platform;
        char job[];
};

struct SshPlatform {
        Platform *platform;
        SshNode **nodes;
        size_t n_nodes;
        SshJob *waiting, **waiting_tail; /* PENDING jobs without a free slot, oldest first */
        Ticket *tickets;
        ImageTransfer *transfers;
};

struct SshJob {
        Job *job;
        SshPlatform *platform;
        SshNode *node;                  /* NULL while waiting for a slot */
        SshJob *next;                   /* in the waiting list */
        json_object *spec;              /* what is sent to the node (also job.json in the spool) */
        char *image_id, *squashfs_path; /* for a node that lacks the image */
        char *layer_id, *layer_path;    /* a program job's layer, likewise */
        uint64_t seq, log_size, interim_size;
        unsigned interim_count;
        bool waiting, followed, deployed, layer_deployed;
        bool sandbox_ended;             /* the worker said FINISHING: counted in node->finishing */
        sd_event_source *save_timer;
};

static usec_t node_lost_usec(Manager *m) {
        return m->config->node_lost_timeout_sec * USEC_PER_SEC;
}

static Ticket *ticket_new(SshPlatform *sp, const char *job) {
        size_t n = strlen(job) + 1;
        Ticket *t = malloc(sizeof(Ticket) + n);

        if (!t)
                return NULL;
        *t = (Ticket) { .platform = sp, .next = sp->tickets };
        memcpy(t->job, job, n);
        if (t->next)
                t->next->prev = t;
        sp->tickets = t;
        return t;
}

static void ticket_free(Ticket *t) {
        if (!t)
                return;
        if (t->prev)
                t->prev->next = t->next;
        else
                t->platform->tickets = t->next;
        if (t->next)
                t->next->prev = t->prev;
        free(t);
}

static bool streq_ptr(const char *a, const char *b) {
        return a && b && streq(a, b);
}

static void ssh_job_free(void *data);

/* The job a ticket is for, if this platform still holds it on node c; frees the ticket. */
static Job *ticket_redeem(Ticket *t, NodeClient *c) {
        Manager *m = t->platform->platform->manager;
        Job *j = hashmap_get(m->jobs, t->job);
        SshJob *sj;

        ticket_free(t);
        if (!j || j->platform_data_free != ssh_job_free || !(sj = j->platform_data) || !sj->node || sj->node->client != c)
                return NULL;
        return j;
}

/* ---- the job's spool ---- */

static int spool_append(Job *j, const char *name, const char *text, size_t n) {
        _cleanup_free_ char *path = spool_path(j->spool_dir, name);
        _cleanup_close_ int fd = -1;

        if (!path)
                return -ENOMEM;
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (fd < 0)
                return -errno;
        return loop_write(fd, text, n);
}

static int spool_truncate(Job *j, const char *name, uint64_t size) {
        _cleanup_free_ char *path = spool_path(j->spool_dir, name);

        if (!path)
                return -ENOMEM;
        if (truncate(path, (off_t) size) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static int ssh_job_save(SshJob *sj, bool sync) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        const char *text;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "node", json_object_new_string(sj->node->name));
        json_object_object_add(o, "seq", json_object_new_int64((int64_t) sj->seq));
        json_object_object_add(o, "log", json_object_new_int64((int64_t) sj->log_size));
        json_object_object_add(o, "interim", json_object_new_int64((int64_t) sj->interim_size));
        json_object_object_add(o, "interimCount", json_object_new_int64(sj->interim_count));
        text = json_text(o);
        return (sync ? write_file_atomic : write_file_atomic_nosync)(sj->job->spool_dir, PLATFORM_JSON, text, strlen(text));
}

static int on_save_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        SshJob *sj = userdata;

        if (sj->node)
                (void) ssh_job_save(sj, false);
        return 0;
}

/* What the spool holds of the events changed: recorded soon, not per event. */
static void ssh_job_dirty(SshJob *sj) {
        if (!sj->save_timer) {
                if (sd_event_add_time_relative(sj->job->manager->event, &sj->save_timer, CLOCK_MONOTONIC,
                                               SAVE_DELAY_USEC, 0, on_save_timer, sj) < 0) {
                        (void) ssh_job_save(sj, false);
                        return;
                }
                (void) sd_event_source_set_description(sj->save_timer, "ssh-job-save");
        } else if (sd_event_source_get_enabled(sj->save_timer, NULL) > 0)
                return;  /* armed */
        else
                (void) sd_event_source_set_time_relative(sj->save_timer, SAVE_DELAY_USEC);
        (void) sd_event_source_set_enabled(sj->save_timer, SD_EVENT_ONESHOT);
}

/* ---- jobs ---- */

static void ssh_job_free(void *data) {
        SshJob *sj = data;

        if (!sj)
                return;
        if (sj->waiting) {
                for (SshJob **p = &sj->platform->waiting; *p; p = &(*p)->next)
                        if (*p == sj) {
                                *p = sj->next;
                                break;
                        }
                sj->platform->waiting_tail = &sj->platform->waiting;
                for (SshJob *w = sj->platform->waiting; w; w = w->next)
                        sj->platform->waiting_tail = &w->next;
        }
        if (sj->node && sj->followed)
                node_client_unfollow(sj->node->client, sj->job->id);
        sd_event_source_disable_unref(sj->save_timer);
        json_object_put(sj->spec);
        free(sj->image_id);
        free(sj->squashfs_path);
        free(sj->layer_id);
        free(sj->layer_path);
        free(sj);
}

static SshJob *ssh_job_new(SshPlatform *sp, Job *j) {
        SshJob *sj = calloc(1, sizeof(SshJob));

        if (!sj)
                return NULL;
        sj->job = j;
        sj->platform = sp;
        j->platform_data = sj;
        j->platform_data_free = ssh_job_free;
        return sj;
}

static void dispatch_waiting(SshPlatform *sp);

/* The platform lets go of the job: its slot is free for the next one. */
static void ssh_job_release(Job *j) {
        SshJob *sj = j->platform_data;
        SshPlatform *sp = sj ? sj->platform : NULL;

        if (!sj)
                return;
        if (sj->node && sj->node->running > 0)
                sj->node->running--;
        if (sj->node && sj->sandbox_ended && sj->node->finishing > 0)
                sj->node->finishing--;
        if (sj->save_timer && sj->node)
                (void) ssh_job_save(sj, false);
        ssh_job_free(sj);
        j->platform_data = NULL;
        j->platform_data_free = NULL;
        dispatch_waiting(sp);
}

static void on_removed(NodeClient *c, int r, json_object *event, void *userdata) {
        if (r < 0)
                log_debug("Node %s: remove: %s", ssh_session_get_host(node_client_get_session(c)),
                          event ? strna(json_get_string(event, "message")) : strerror(-r));
}

/* exit.json's content → the job's end. */
static void conclude_from_exit(Job *j, json_object *exit_o) {
        json_object *err = json_get_typed(exit_o, "error", json_type_object), *v;
        JobState state = job_state_from_string(json_get_string(exit_o, "status"));
        int exit_code = -1;

        if (!job_state_is_terminal(state))
                state = JOB_UNKNOWN;
        if (json_object_object_get_ex(exit_o, "exitCode", &v) && json_object_is_type(v, json_type_int))
                exit_code = json_object_get_int(v);
        j->platform_callbacks->on_exit(j, state, exit_code, json_get_string(err, "code"), json_get_string(err, "detail"),
                                       parse_timestamp_iso(json_get_string(exit_o, "startedAt")),
                                       parse_timestamp_iso(json_get_string(exit_o, "endedAt")));
}

/* Ends the job here with our own verdict (the node's is out of reach), committed to the spool
 * first like the worker's, so that a restart does not go looking for it again. */
static void ssh_job_fail(Job *j, JobState state, const char *code, const char *message) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object(), *err = json_object_new_object();
        char ts[64];

        if (o && err) {
                json_object_object_add(o, "status", json_object_new_string(job_state_to_string(state)));
                json_object_object_add(err, "code", json_object_new_string(code));
                json_object_object_add(err, "detail", json_object_new_string(message));
                json_object_object_add(o, "error", json_object_get(err));
                json_object_object_add(o, "endedAt", json_object_new_string(format_timestamp_iso(ts, sizeof(ts), realtime_now_usec())));
                (void) write_file_atomic(j->spool_dir, SPOOL_EXIT, json_text(o), strlen(json_text(o)));
        }
        ssh_job_release(j);
        j->platform_callbacks->on_exit(j, state, -1, code, message, 0, 0);
}

static int base64_decode(const char *in, char **ret, size_t *ret_n) {
        size_t n = strlen(in), pad = 0;
        char *out;
        int k;

        if (n % 4 != 0)
                return -EBADMSG;
        out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        k = n > 0 ? EVP_DecodeBlock((unsigned char *) out, (const unsigned char *) in, (int) n) : 0;
        if (k < 0) {
                free(out);
                return -EBADMSG;
        }
        for (size_t i = n; i > 0 && in[i - 1] == '='; i--)
                pad++;
        *ret_n = (size_t) k - pad;
        *ret = out;
        return 0;
}

/* A result file name as the worker keeps them (result-files.h): one plain path segment. */
static bool output_name_ok(const char *name) {
        if (!*name || name[0] == '.' || streq(name, "self") || streq(name, "status"))
                return false;
        for (const unsigned char *p = (const unsigned char *) name; *p; p++)
                if (*p < 0x20 || *p == 0x7f || *p == '/')
                        return false;
        return true;
}

/* The job's result files, inline in `finished` ({name: base64}), into the spool's output/
 * through a staging directory renamed whole, within OutputMax/OutputFiles (the node's worker
 * kept them within the job's, which are the same). */
static void write_output(Job *j, json_object *event) {
        const Config *c = j->manager->config;
        json_object *files = json_get_typed(event, "output", json_type_object), *dropped;
        _cleanup_free_ char *staging = NULL;
        _cleanup_close_ int dfd = -1;
        uint64_t left = c->output_max, count = c->output_files;
        int r = 0;

        dropped = json_get_typed(event, "outputDropped", json_type_array);
        for (size_t i = 0; dropped && i < json_object_array_length(dropped); i++)
                log_warning("Job %s: result file %s too large to come back from the node, not kept.", j->id,
                            strna(json_object_get_string(json_object_array_get_idx(dropped, i))));
        if (!files || json_object_object_length(files) == 0)
                return;
        dfd = open(j->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || asprintf(&staging, "%s/.output.partial", j->spool_dir) < 0)
                return;
        (void) rm_rf_at(dfd, ".output.partial");
        if (mkdirat(dfd, ".output.partial", 0750) < 0)
                r = -errno;
        json_object_object_foreach(files, name, v) {
                _cleanup_free_ char *data = NULL;
                size_t n = 0;

                if (r < 0)
                        break;
                if (!output_name_ok(name) || !json_object_is_type(v, json_type_string) ||
                    base64_decode(json_object_get_string(v), &data, &n) < 0)
                        continue;
                if (count == 0 || n > left) {
                        log_warning("Job %s: result file %s over OutputMax/OutputFiles, not kept.", j->id, name);
                        continue;
                }
                r = write_file_atomic_nosync(staging, name, data, n);
                if (r >= 0) {
                        count--;
                        left -= n;
                }
        }
        if (r >= 0) {
                (void) rm_rf_at(dfd, SPOOL_OUTPUT_DIR);
                if (renameat(dfd, ".output.partial", dfd, SPOOL_OUTPUT_DIR) < 0)
                        r = -errno;
        }
        if (r < 0) {
                log_warning_errno(r, "Job %s: cannot store its result files: %m", j->id);
                (void) rm_rf_at(dfd, ".output.partial");
        }
}

/* The node's `finished`: its outcome files become the spool's, exit.json last. */
static void on_finished(SshJob *sj, json_object *event) {
        Job *j = sj->job;
        json_object *exit_o = json_get_typed(event, "exit", json_type_object), *result = NULL, *interim;
        const char *tail = json_get_string(event, "logTail");
        NodeClient *c = sj->node->client;
        _cleanup_free_ char *id = strdup(j->id);

        /* The whole log when the tail is all of it (lines the events dropped or cut included). */
        if (tail) {
                _cleanup_free_ char *log = NULL;
                size_t n = 0;

                if (base64_decode(tail, &log, &n) >= 0 && n == json_get_u64(event, "logSize"))
                        (void) write_file_atomic_nosync(j->spool_dir, SPOOL_LOG, log, n);
        }
        interim = json_get_typed(event, "interim", json_type_array);
        for (size_t i = sj->interim_count; interim && i < json_object_array_length(interim); i++) {
                const char *text = json_text(json_object_array_get_idx(interim, i));

                (void) spool_append(j, SPOOL_INTERIM, text, strlen(text));
                (void) spool_append(j, SPOOL_INTERIM, "\n", 1);
                j->platform_callbacks->on_interim(j, (unsigned) i, text);
        }
        if (json_object_object_get_ex(event, "result", &result) && result) {
                const char *text = json_text(result);

                (void) write_file_atomic(j->spool_dir, SPOOL_RESULT, text, strlen(text));
        }
        if (!exit_o) {
                ssh_job_fail(j, JOB_UNKNOWN, "WORKER_LOST", "The node reported the job finished without an outcome.");
                return;
        }
        write_output(j, event);
        (void) write_file_atomic(j->spool_dir, SPOOL_EXIT, json_text(exit_o), strlen(json_text(exit_o)));
        json_object_get(exit_o);
        log_info("Job %s: finished on node %s.", j->id, sj->node->name);
        ssh_job_release(j);
        conclude_from_exit(j, exit_o);
        json_object_put(exit_o);
        /* Ours now: the node may forget it. */
        if (id)
                (void) node_client_remove_job(c, id, on_removed, NULL);
}

/* Nothing of the job runs on its node any more: the slot goes to the next job while the node's
 * worker records the outcome. */
static void ssh_job_sandbox_ended(SshJob *sj) {
        if (sj->sandbox_ended || !sj->node)
                return;
        sj->sandbox_ended = true;
        sj->node->finishing++;
        sj->job->platform_callbacks->on_sandbox_ended(sj->job);
        dispatch_waiting(sj->platform);
}

static void on_job_event(NodeClient *c, const char *job, json_object *event, void *userdata) {
        SshJob *sj = userdata;
        Job *j = sj->job;
        const char *kind = json_get_string(event, "event");
        uint64_t seq = json_get_u64(event, "seq");

        if (!kind)
                return;
        if (streq(kind, "error")) {
                sj->followed = false;
                ssh_job_fail(j, JOB_UNKNOWN, "WORKER_LOST", "The node does not know the job (any more).");
                return;
        }
        if (streq(kind, "finished")) {
                sj->followed = false;
                on_finished(sj, event);
                return;
        }
        if (seq > 0)
                sj->seq = seq;
        if (streq(kind, "status")) {
                const char *status = strempty(json_get_string(event, "status"));

                if (streq(status, "RUNNING"))
                        j->platform_callbacks->on_started(j, json_get_u64(event, "startedAt"));
                else if (streq(status, "FINISHING"))
                        ssh_job_sandbox_ended(sj);
        } else if (streq(kind, "log")) {
                const char *line = json_get_string(event, "line");

                if (line && json_get_string(event, "stream")) {
                        size_t n = strlen(line);

                        if (spool_append(j, SPOOL_LOG, line, n) >= 0 && spool_append(j, SPOOL_LOG, "\n", 1) >= 0)
                                sj->log_size += n + 1;
                        j->platform_callbacks->on_log(j);
                }
        } else if (streq(kind, "interim")) {
                json_object *result = NULL;
                const char *text;

                json_object_object_get_ex(event, "result", &result);
                text = json_text(result);
                if (spool_append(j, SPOOL_INTERIM, text, strlen(text)) >= 0 && spool_append(j, SPOOL_INTERIM, "\n", 1) >= 0)
                        sj->interim_size += strlen(text) + 1;
                j->platform_callbacks->on_interim(j, sj->interim_count++, text);
        }
        ssh_job_dirty(sj);
}

static int ssh_job_send_start(SshJob *sj);

static NodeDeploy *node_deploy_free(NodeDeploy *d) {
        NodeDeploy *next;

        if (!d)
                return NULL;
        next = d->next;
        strv_free(d->jobs);
        free(d->transfers);
        free(d->image);
        free(d);
        return next;
}

static ImageTransfer *image_transfer_free(ImageTransfer *t) {
        ImageTransfer *next;

        if (!t)
                return NULL;
        next = t->next;
        free(t->image);
        free(t->error);
        free(t);
        return next;
}

/* All its node uploads ended: the image is READY on the platform, or the transfer failed. */
static void image_transfer_end(ImageTransfer *t) {
        SshPlatform *sp = t->platform;
        Platform *p = sp->platform;

        for (ImageTransfer **q = &sp->transfers; *q; q = &(*q)->next)
                if (*q == t) {
                        *q = t->next;
                        break;
                }
        log_full(t->error ? LOG_ERR : LOG_INFO, "Platform %s: image %s %s%s", p->name, t->image,
                 t->error ? "could not be copied to every node: " : "is on every node that is up.", strempty(t->error));
        if (p->image_hooks)
                p->image_hooks->deployed(p, t->image, t->error ? (t->no_space ? -ENOSPC : -EIO) : 0, t->error);
        image_transfer_free(t);
}

static void on_deployed(NodeClient *c, int r, json_object *event, void *userdata) {
        NodeDeploy *d = userdata;
        SshNode *n = d->node;
        Manager *m = n->platform->platform->manager;
        const char *message = strna(json_get_string(event, "message"));

        for (NodeDeploy **p = &n->deploys; *p; p = &(*p)->next)
                if (*p == d) {
                        *p = d->next;
                        break;
                }
        if (r < 0)
                log_error("Platform %s: copying image %s to node %s failed: %s", n->platform->platform->name, d->image,
                          n->name, message);
        else
                log_info("Platform %s: image %s is on node %s.", n->platform->platform->name, d->image, n->name);
        for (size_t i = 0; i < d->n_jobs; i++) {
                Job *j = hashmap_get(m->jobs, d->jobs[i]);
                SshJob *sj = j && j->platform_data_free == ssh_job_free ? j->platform_data : NULL;

                if (!sj || sj->node != n || sj->followed)
                        continue;  /* cancelled or lost meanwhile */
                if (r < 0) {
                        _cleanup_free_ char *msg = NULL;

                        if (asprintf(&msg, "Cannot copy the image to node %s: %s", n->name, message) < 0)
                                msg = NULL;
                        ssh_job_fail(j, JOB_FAILED, "IMAGE_ERROR", msg ?: "Cannot copy the image to the node.");
                        continue;
                }
                if (streq_ptr(d->image, sj->layer_id))
                        sj->layer_deployed = true;
                else
                        sj->deployed = true;
                if (ssh_job_send_start(sj) < 0)
                        ssh_job_fail(j, JOB_FAILED, "INTERNAL_ERROR", "Cannot send the job to its node.");
        }
        for (size_t i = 0; i < d->n_transfers; i++) {
                ImageTransfer *t = d->transfers[i];

                if (r < 0 && !t->error && asprintf(&t->error, "node %s: %s", n->name, message) < 0)
                        t->error = NULL;
                if (r < 0 && streq_ptr(json_get_string(event, "code"), "NO_SPACE"))
                        t->no_space = true;
                if (--t->pending == 0)
                        image_transfer_end(t);
        }
        node_deploy_free(d);
}

static int node_deploy_add_job(NodeDeploy *d, const char *job) {
        char **l = reallocarray(d->jobs, d->n_jobs + 2, sizeof(char *));

        if (!l)
                return -ENOMEM;
        d->jobs = l;
        l[d->n_jobs] = strdup(job);
        if (!l[d->n_jobs])
                return -ENOMEM;
        l[++d->n_jobs] = NULL;
        return 0;
}

static int node_deploy_add_transfer(NodeDeploy *d, ImageTransfer *t) {
        ImageTransfer **l = reallocarray(d->transfers, d->n_transfers + 1, sizeof(ImageTransfer *));

        if (!l)
                return -ENOMEM;
        d->transfers = l;
        l[d->n_transfers++] = t;
        t->pending++;
        return 0;
}

/* Shifter's .meta of an image, written beside its squashfs by the pull (image-shifter-meta.c);
 * made now for an image pulled before gatewayd wrote them. */
static int shifter_meta_for(const Image *i, char **ret) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = image_shifter_meta_path(i, &path);
        if (r < 0)
                return r;
        if (access(path, R_OK) < 0) {
                r = image_shifter_meta_write(i);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(path);
        return 0;
}

/* Joins the upload of image to node n in flight, or starts one. */
static int node_deploy_start(SshNode *n, const char *image, const char *squashfs, const char *meta, NodeDeploy **ret) {
        NodeDeploy *d;
        int r;

        for (d = n->deploys; d; d = d->next)
                if (streq(d->image, image)) {
                        *ret = d;
                        return 0;
                }
        d = calloc(1, sizeof(NodeDeploy));
        if (!d)
                return -ENOMEM;
        d->node = n;
        d->image = strdup(image);
        if (!d->image) {
                node_deploy_free(d);
                return -ENOMEM;
        }
        log_info("Platform %s: copying image %s to node %s.", n->platform->platform->name, d->image, n->name);
        r = node_client_deploy_image(n->client, d->image, squashfs, meta, on_deployed, d);
        if (r < 0) {
                node_deploy_free(d);
                return r;
        }
        d->next = n->deploys;
        n->deploys = d;
        *ret = d;
        return 0;
}

/* The job waits for its image (or its program layer) to reach its node. */
static int node_deploy_for(SshNode *n, SshJob *sj, bool layer) {
        Manager *m = n->platform->platform->manager;
        Image *i = layer ? NULL : image_registry_get(m, n->platform->platform->name, sj->image_id);
        _cleanup_free_ char *meta = NULL;
        NodeDeploy *d;
        int r;

        if (i)
                (void) shifter_meta_for(i, &meta);
        r = layer ? node_deploy_start(n, sj->layer_id, sj->layer_path, NULL, &d) :
                node_deploy_start(n, sj->image_id, sj->squashfs_path, meta, &d);
        if (r < 0)
                return r;
        return node_deploy_add_job(d, sj->job->id);
}

static void on_start_reply(NodeClient *c, int r, json_object *event, void *userdata) {
        Job *j = ticket_redeem(userdata, c);
        SshJob *sj = j ? j->platform_data : NULL;
        const char *code = json_get_string(event, "code");
        int k;

        if (!sj || sj->followed)
                return;
        if (r == -ECONNREFUSED || (r < 0 && !event))
                return;  /* the node is refused: its lost timer decides */
        if (r < 0 && streq_ptr(code, "IMAGE_NOT_FOUND") && !sj->deployed && sj->squashfs_path) {
                /* The image has not reached this node yet: copy it, then start again. */
                k = node_deploy_for(sj->node, sj, /* layer= */ false);
                if (k >= 0)
                        return;
                ssh_job_fail(j, JOB_FAILED, "IMAGE_ERROR", "Cannot copy the image to the node.");
                return;
        }
        if (r < 0 && streq_ptr(code, "PROGRAM_NOT_FOUND") && !sj->layer_deployed && sj->layer_path) {
                /* Nor has the program's layer (sent at upload; the node was down, or is new). */
                k = node_deploy_for(sj->node, sj, /* layer= */ true);
                if (k >= 0)
                        return;
                ssh_job_fail(j, JOB_FAILED, "IMAGE_ERROR", "Cannot copy the program to the node.");
                return;
        }
        if (r < 0) {
                _cleanup_free_ char *m = NULL;

                if (asprintf(&m, "Node %s refused the job: %s", sj->node->name, strna(json_get_string(event, "message"))) < 0)
                        m = NULL;
                ssh_job_fail(j, JOB_FAILED, streq_ptr(code, "INVALID_JOB") ? "INVALID_JOB" : "INTERNAL_ERROR",
                             m ?: "The node refused the job.");
                return;
        }
        k = node_client_follow(c, j->id, sj->seq, on_job_event, sj);
        if (k < 0 && k != -EEXIST) {
                ssh_job_fail(j, JOB_UNKNOWN, "WORKER_LOST", "Cannot follow the job on its node.");
                return;
        }
        sj->followed = true;
        if (j->cancel_requested)
                (void) node_client_cancel_job(c, j->id, NULL, NULL);
}

/* Start (or, after a restart, re-start: the node answers with the job's state) and follow. */
static int ssh_job_send_start(SshJob *sj) {
        /* (arguments.json: a program job's, also /var/input/arguments.json on the node) */
        static const char *const names[] = { "data.json", "params.json", "arguments.json" };
        _cleanup_(json_object_putp) json_object *input = json_object_new_object();
        Job *j = sj->job;
        Ticket *t;
        int r;

        if (!input)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *rel = NULL, *text = NULL;

                if (asprintf(&rel, "%s/%s", SPOOL_INPUT_DIR, names[i]) < 0)
                        return -ENOMEM;
                if (job_read_spool_file(j, rel, 16 * 1024 * 1024, &text, NULL) >= 0)
                        json_object_object_add(input, names[i], json_object_new_string(text));
        }
        t = ticket_new(sj->platform, j->id);
        if (!t)
                return -ENOMEM;
        r = node_client_start_job(sj->node->client, j->id, sj->spec, input, on_start_reply, t);
        if (r < 0)
                ticket_free(t);
        return r;
}

/* Slots held: jobs whose sandbox runs (a finishing one only records its outcome). */
static unsigned node_busy(const SshNode *n) {
        return n->running - MIN(n->finishing, n->running);
}

static bool node_is_free(SshNode *n) {
        return n->state == SSH_NODE_UP && !n->draining && node_busy(n) < n->slots;
}

/* The node with the most free slots (the first of equals). */
static SshNode *pick_node(SshPlatform *sp) {
        SshNode *best = NULL;

        for (size_t i = 0; i < sp->n_nodes; i++) {
                SshNode *n = sp->nodes[i];

                if (node_is_free(n) && (!best || n->slots - node_busy(n) > best->slots - node_busy(best)))
                        best = n;
        }
        return best;
}

static int ssh_job_place(SshJob *sj, SshNode *n) {
        Job *j = sj->job;
        int r;

        sj->node = n;
        n->running++;
        /* Where the job went is durable before the node hears of it. */
        r = ssh_job_save(sj, true);
        if (r < 0)
                return r;
        log_info("Job %s: starting on node %s.", j->id, n->name);
        return ssh_job_send_start(sj);
}

static void dispatch_waiting(SshPlatform *sp) {
        SshNode *n;

        while (sp && sp->waiting && (n = pick_node(sp))) {
                SshJob *sj = sp->waiting;
                Job *j = sj->job;

                sp->waiting = sj->next;
                if (!sp->waiting)
                        sp->waiting_tail = &sp->waiting;
                sj->next = NULL;
                sj->waiting = false;
                if (ssh_job_place(sj, n) < 0)
                        ssh_job_fail(j, JOB_FAILED, "INTERNAL_ERROR", "Cannot record or send the job's start.");
        }
}

static json_object *read_meta(const Image *image) {
        enum json_tokener_error jerr;
        json_object *o;

        if (!image->meta_path)
                return NULL;
        o = json_object_from_file(image->meta_path);
        (void) jerr;
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static int ssh_start_job(Platform *p, Job *j, const Service *s, const Image *image, GwError *e) {
        SshPlatform *sp = p->data;
        json_object *img, *meta;
        SshJob *sj;
        SshNode *n;
        int r;

        sj = ssh_job_new(sp, j);
        if (!sj)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        sj->spec = platform_job_spec_json(j, s, image);
        sj->image_id = strdup(image->id);
        sj->squashfs_path = strdup(image->squashfs_path);
        img = json_object_new_object();
        if (!sj->spec || !sj->image_id || !sj->squashfs_path || !img) {
                json_object_put(img);
                ssh_job_release(j);
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        }
        /* On the node the image is named by id; serve finds it in its image directory. */
        json_object_object_add(img, "id", json_object_new_string(image->id));
        meta = read_meta(image);
        if (meta)
                json_object_object_add(img, "meta", meta);
        json_object_object_add(sj->spec, "image", img);
        json_object_object_del(sj->spec, "id");
        /* A program's layer likewise, by its id: serve keeps it beside the images. */
        if (s->program_layer_id) {
                json_object *prog = json_get_typed(sj->spec, "program", json_type_object);

                sj->layer_id = strdup(s->program_layer_id);
                sj->layer_path = strdup(s->program_layer);
                if (!prog || !sj->layer_id || !sj->layer_path) {
                        ssh_job_release(j);
                        return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
                }
                json_object_object_del(prog, "path");
                json_object_object_add(prog, "id", json_object_new_string(s->program_layer_id));
        }
        r = write_file_atomic_nosync(j->spool_dir, SPOOL_JOB_SPEC, json_text(sj->spec), strlen(json_text(sj->spec)));
        if (r < 0) {
                ssh_job_release(j);
                return gw_error_set_errno(e, r, "Cannot write job.json: %s", strerror(-r));
        }
        j->worker_started = true;

        n = pick_node(sp);
        if (!n) {
                /* PENDING until a slot frees or a node comes up. */
                sj->waiting = true;
                *sp->waiting_tail = sj;
                sp->waiting_tail = &sj->next;
                log_info("Job %s: waiting for a free slot on platform %s.", j->id, p->name);
                return 0;
        }
        r = ssh_job_place(sj, n);
        if (r < 0) {
                ssh_job_release(j);
                j->worker_started = false;
                return gw_error_set_errno(e, r, "Cannot start the job on node %s: %s", n->name, strerror(-r));
        }
        return 0;
}

/* ---- results saved from outside the job ---- */

/* A save on its way to the node; the node's answer (or its refusal) frees it. */
typedef struct SaveCall {
        PlatformResultSaved done;
        void *userdata;
} SaveCall;

static void on_result_saved(NodeClient *c, int r, json_object *event, void *userdata) {
        SaveCall *sc = userdata;
        const char *code = event ? json_get_string(event, "code") : NULL;

        if (r < 0)
                sc->done(-EHOSTDOWN, NULL, sc->userdata);
        else if (streq_ptr(json_get_string(event, "event"), "result-saved"))
                sc->done(0, NULL, sc->userdata);
        else
                /* the node's worker took the outcome, or removed the job: too late */
                sc->done(streq_ptr(code, "FINISHED") || streq_ptr(code, "NOT_FOUND") ? -ESTALE :
                         streq_ptr(code, "NOT_RUNNING") ? -EAGAIN :
                         streq_ptr(code, "UNKNOWN_OP") ? -EOPNOTSUPP : -EIO,  /* a node from before */
                         json_get_string(event, "message"), sc->userdata);
        free(sc);
}

/* The job's worker runs on its node and takes saved-result.json from the node's spool: serve
 * writes it there (op save-result, docs/worker-serve.md). The answer comes with the node's. */
static int ssh_save_result(Platform *p, Job *j, const char *json_text, PlatformResultSaved done, void *userdata) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        SshJob *sj = j->platform_data;
        SaveCall *sc;
        int r;

        if (!sj)
                return -ESTALE;
        if (!sj->node)
                return -EAGAIN;
        if (node_client_get_state(sj->node->client) != SSH_NODE_UP)
                return -EHOSTDOWN;  /* not waiting for the node to come back */
        o = json_object_new_object();
        sc = calloc(1, sizeof(SaveCall));
        if (!o || !sc) {
                free(sc);
                return -ENOMEM;
        }
        json_object_object_add(o, "op", json_object_new_string("save-result"));
        json_object_object_add(o, "job", json_object_new_string(j->id));
        json_object_object_add(o, "result", json_object_new_string(json_text));
        *sc = (SaveCall) { .done = done, .userdata = userdata };
        r = node_client_request(sj->node->client, o, on_result_saved, sc);
        if (r < 0) {
                free(sc);   /* nothing was queued */
                return r;
        }
        return 1;
}

static int ssh_cancel_job(Platform *p, Job *j) {
        SshJob *sj = j->platform_data;

        j->cancel_requested = true;
        if (!sj)
                return 0;
        if (!sj->node) {
                ssh_job_release(j);
                j->platform_callbacks->on_exit(j, JOB_CANCELLED, -1, "CANCELLED", "Cancelled before it started.", 0, 0);
                return 0;
        }
        log_info("Job %s: cancelling on node %s.", j->id, sj->node->name);
        if (!sj->followed)
                return 0;  /* sent once the start is answered */
        return node_client_cancel_job(sj->node->client, j->id, NULL, NULL);
}

/* ---- recovery ---- */

static SshNode *node_find(SshPlatform *sp, const char *name) {
        for (size_t i = 0; name && i < sp->n_nodes; i++)
                if (streq(sp->nodes[i]->name, name))
                        return sp->nodes[i];
        return NULL;
}

static int ssh_reattach_job(Platform *p, Job *j) {
        SshPlatform *sp = p->data;
        _cleanup_free_ char *text = NULL, *spec = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        enum json_tokener_error jerr;
        SshNode *n;
        SshJob *sj;

        /* The outcome was ours before we went away. */
        if (job_read_spool_file(j, SPOOL_EXIT, 1024 * 1024, &text, NULL) >= 0) {
                o = json_tokener_parse_verbose(text, &jerr);
                j->worker_started = true;
                if (!json_object_is_type(o, json_type_object))
                        j->platform_callbacks->on_exit(j, JOB_UNKNOWN, -1, "WORKER_LOST", "exit.json in the spool is unreadable.", 0, 0);
                else
                        conclude_from_exit(j, o);
                return 1;
        }
        if (job_read_spool_file(j, PLATFORM_JSON, 65536, &text, NULL) < 0) {
                if (j->state != JOB_RUNNING)
                        return 0;  /* never placed: started anew */
                j->platform_callbacks->on_exit(j, JOB_UNKNOWN, -1, "WORKER_LOST",
                                               "The job was running, but the spool does not say on which node.", 0, 0);
                return 1;
        }
        o = json_tokener_parse_verbose(text, &jerr);
        n = node_find(sp, json_get_string(o, "node"));
        j->worker_started = true;
        if (!n || job_read_spool_file(j, SPOOL_JOB_SPEC, 1024 * 1024, &spec, NULL) < 0) {
                j->platform_callbacks->on_exit(j, JOB_UNKNOWN, -1, "WORKER_LOST",
                                               n ? "job.json is missing from the spool." :
                                               "The job's node is no longer configured.", 0, 0);
                return 1;
        }
        sj = ssh_job_new(sp, j);
        if (!sj)
                return -ENOMEM;
        sj->spec = json_tokener_parse_verbose(spec, &jerr);
        sj->node = n;
        n->running++;
        sj->seq = json_get_u64(o, "seq");
        sj->log_size = json_get_u64(o, "log");
        sj->interim_size = json_get_u64(o, "interim");
        sj->interim_count = (unsigned) json_get_u64(o, "interimCount");
        sj->deployed = true;   /* the image was there (or is gone: then the job fails) */
        /* What was written after the last record comes again from the node. */
        (void) spool_truncate(j, SPOOL_LOG, sj->log_size);
        (void) spool_truncate(j, SPOOL_INTERIM, sj->interim_size);
        log_info("Job %s: following it again on node %s from event %" PRIu64 ".", j->id, n->name, sj->seq);
        if (!sj->spec || ssh_job_send_start(sj) < 0)
                ssh_job_fail(j, JOB_UNKNOWN, "WORKER_LOST", "Cannot ask the job's node about it.");
        return 1;
}

/* ---- images ---- */

static int ssh_deploy_image(Platform *p, Image *i, GwError *e) {
        SshPlatform *sp = p->data;
        _cleanup_free_ char *meta = NULL;
        ImageTransfer *t;
        int r;

        if (!i->squashfs_path)
                return gw_error_set(e, GW_ERROR_INTERNAL, "Image %s has no squashfs to copy.", i->id);
        r = shifter_meta_for(i, &meta);
        if (r < 0)
                return gw_error_set_errno(e, r, "Cannot write the image's .meta for the nodes: %s", strerror(-r));
        t = calloc(1, sizeof(ImageTransfer));
        if (!t || !(t->image = strdup(i->id))) {
                image_transfer_free(t);
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        }
        *t = (ImageTransfer) { .platform = sp, .image = t->image };
        /* Nodes that are not up now get it when they come up (node_catch_up()); until then a job
         * there brings it along. */
        for (size_t k = 0; k < sp->n_nodes; k++) {
                SshNode *n = sp->nodes[k];
                NodeDeploy *d;

                if (n->state != SSH_NODE_UP)
                        continue;
                r = node_deploy_start(n, i->id, i->squashfs_path, meta, &d);
                if (r >= 0)
                        r = node_deploy_add_transfer(d, t);
                if (r < 0)
                        log_warning_errno(r, "Platform %s: cannot copy image %s to node %s: %m", p->name, i->id, n->name);
        }
        if (t->pending == 0) {
                image_transfer_free(t);
                return 0;
        }
        t->next = sp->transfers;
        sp->transfers = t;
        return 1;
}

static int ssh_remove_image(Platform *p, Image *i) {
        SshPlatform *sp = p->data;

        /* Queued for nodes that are not up: sent when they are. */
        for (size_t k = 0; k < sp->n_nodes; k++)
                (void) node_client_remove_image(sp->nodes[k]->client, i->id, NULL, NULL);
        return 0;
}

static int layer_matches(Platform *p, const char *layer, const char *squashfs_path, void *userdata) {
        return streq(layer, userdata) ? -EEXIST : 0;
}

/* Program layers go where images go: to every node that is up now (the others catch up when they
 * come up), through the same upload, without a .meta. */
static int ssh_deploy_layer(Platform *p, const char *layer, const char *squashfs_path) {
        SshPlatform *sp = p->data;
        NodeDeploy *d;
        int r;

        for (size_t k = 0; k < sp->n_nodes; k++) {
                SshNode *n = sp->nodes[k];

                if (n->state != SSH_NODE_UP)
                        continue;
                r = node_deploy_start(n, layer, squashfs_path, NULL, &d);
                if (r < 0)
                        log_warning_errno(r, "Platform %s: cannot copy program layer %s to node %s: %m", p->name, layer, n->name);
        }
        return 0;
}

static int ssh_remove_layer(Platform *p, const char *layer) {
        SshPlatform *sp = p->data;

        for (size_t k = 0; k < sp->n_nodes; k++)
                (void) node_client_remove_image(sp->nodes[k]->client, layer, NULL, NULL);
        return 0;
}

static bool image_is_wanted(SshPlatform *sp, const char *id) {
        Platform *p = sp->platform;
        Image *i = id ? image_registry_get(p->manager, p->name, id) : NULL;

        if (i && streq_ptr(i->platform, p->name) && (i->status == IMAGE_READY || i->status == IMAGE_TRANSFER))
                return true;
        /* a program's layer, kept in the same directory */
        return id && p->layer_hooks && p->layer_hooks->foreach_layer(p, layer_matches, (void *) id) == -EEXIST;
}

typedef struct NodeCatchUp {
        SshNode *node;
        json_object *list;      /* the node's image-list */
} NodeCatchUp;

/* foreach_ready: a READY image of the platform that the node lacks (or has without its .meta)
 * is copied there. */
static int node_catch_up_image(Platform *p, const Image *i, void *userdata) {
        NodeCatchUp *u = userdata;
        _cleanup_free_ char *meta = NULL;
        NodeDeploy *d;

        if (!i->squashfs_path)
                return 0;
        for (size_t k = 0; k < json_object_array_length(u->list); k++) {
                json_object *o = json_object_array_get_idx(u->list, k), *v;

                if (streq_ptr(json_get_string(o, "image"), i->id) &&
                    json_object_object_get_ex(o, "meta", &v) && json_object_get_boolean(v))
                        return 0;
        }
        if (shifter_meta_for(i, &meta) < 0 || node_deploy_start(u->node, i->id, i->squashfs_path, meta, &d) < 0)
                log_warning("Platform %s: cannot bring node %s up to date with image %s.", p->name, u->node->name, i->id);
        return 0;
}

/* foreach_layer: a program layer the node lacks is copied there (it has no .meta). */
static int node_catch_up_layer(Platform *p, const char *layer, const char *squashfs_path, void *userdata) {
        NodeCatchUp *u = userdata;
        NodeDeploy *d;

        for (size_t k = 0; k < json_object_array_length(u->list); k++)
                if (streq_ptr(json_get_string(json_object_array_get_idx(u->list, k), "image"), layer))
                        return 0;
        if (node_deploy_start(u->node, layer, squashfs_path, NULL, &d) < 0)
                log_warning("Platform %s: cannot bring node %s up to date with program layer %s.", p->name, u->node->name, layer);
        return 0;
}

/* A node that came up: READY images of the platform it lacks are copied to it, images the
 * platform no longer has are removed from it. */
static void on_node_images(NodeClient *c, int r, json_object *event, void *userdata) {
        SshNode *n = userdata;
        SshPlatform *sp = n->platform;
        json_object *list = json_get_typed(event, "images", json_type_array);

        if (r < 0 || !list)
                return;
        for (size_t k = 0; k < json_object_array_length(list); k++) {
                json_object *o = json_object_array_get_idx(list, k);
                const char *id = json_get_string(o, "image");

                if (id && !image_is_wanted(sp, id)) {
                        log_info("Platform %s: removing image %s from node %s (no longer on the platform).",
                                 sp->platform->name, id, n->name);
                        (void) node_client_remove_image(c, id, NULL, NULL);
                }
        }
        if (sp->platform->image_hooks)
                (void) sp->platform->image_hooks->foreach_ready(sp->platform, node_catch_up_image,
                                                                &(NodeCatchUp) { .node = n, .list = list });
        if (sp->platform->layer_hooks)
                (void) sp->platform->layer_hooks->foreach_layer(sp->platform, node_catch_up_layer,
                                                                &(NodeCatchUp) { .node = n, .list = list });
}

/* A node that came up: finished jobs it keeps whose outcome is ours already (given up on as
 * NODE_LOST, or collected just before a restart) are removed there. Only jobs this gatewayd
 * knows: a node may serve others too. */
static void on_node_jobs(NodeClient *c, int r, json_object *event, void *userdata) {
        SshNode *n = userdata;
        Manager *m = n->platform->platform->manager;
        json_object *list = json_get_typed(event, "jobs", json_type_array);

        for (size_t k = 0; r >= 0 && list && k < json_object_array_length(list); k++) {
                json_object *o = json_object_array_get_idx(list, k);
                const char *id = json_get_string(o, "job");
                Job *j = id ? hashmap_get(m->jobs, id) : NULL;

                if (!j || !job_state_is_terminal(j->state) || j->platform_data ||
                    !streq_ptr(json_get_string(o, "state"), "finished"))
                        continue;
                log_debug("Platform %s: removing finished job %s from node %s.", n->platform->platform->name, id, n->name);
                (void) node_client_remove_job(c, id, on_removed, NULL);
        }
}

/* ---- nodes ---- */

/* A job given up on (NODE_LOST) once its node is back: when it has ended there, it goes. */
static void on_abandoned_event(NodeClient *c, const char *job, json_object *event, void *userdata) {
        if (streq_ptr(json_get_string(event, "event"), "finished"))
                (void) node_client_remove_job(c, job, on_removed, NULL);
}

static int on_lost_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        SshNode *n = userdata;
        SshPlatform *sp = n->platform;
        Manager *m = sp->platform->manager;
        _cleanup_free_ char *message = NULL;
        uint64_t seq;
        Job *j;

        if (n->running == 0)
                return 0;
        if (asprintf(&message, "Node %s was unreachable for longer than NodeLostTimeout (%" PRIu64 " s).",
                     n->name, m->config->node_lost_timeout_sec) < 0)
                message = NULL;
        log_warning("Platform %s: %s Its %u job(s) are failed.", sp->platform->name, strna(message), n->running);
        HASHMAP_FOREACH(j, m->jobs) {
                SshJob *sj = j->platform_data;

                if (j->platform_data_free != ssh_job_free || !sj || sj->node != n)
                        continue;
                seq = sj->seq;
                ssh_job_fail(j, JOB_FAILED, "NODE_LOST", message ?: "The node was lost.");
                /* Should the node come back, the job must not go on there, nor stay. */
                (void) node_client_cancel_job(n->client, j->id, NULL, NULL);
                (void) node_client_follow(n->client, j->id, seq, on_abandoned_event, NULL);
        }
        return 0;
}

static void node_arm_lost(SshNode *n) {
        Manager *m = n->platform->platform->manager;

        if (node_lost_usec(m) == 0)
                return;  /* jobs wait for their node however long it takes */
        if (!n->lost_timer) {
                if (sd_event_add_time_relative(m->event, &n->lost_timer, CLOCK_MONOTONIC, node_lost_usec(m), 0,
                                               on_lost_timer, n) < 0) {
                        log_oom();
                        return;
                }
                (void) sd_event_source_set_description(n->lost_timer, "ssh-node-lost");
        } else if (sd_event_source_get_enabled(n->lost_timer, NULL) > 0)
                return;  /* lost since earlier */
        else
                (void) sd_event_source_set_time_relative(n->lost_timer, node_lost_usec(m));
        (void) sd_event_source_set_enabled(n->lost_timer, SD_EVENT_ONESHOT);
}

static void on_node_state(NodeClient *c, SshNodeState state, const char *reason, json_object *hello, void *userdata) {
        SshNode *n = userdata;
        SshNodeState old = n->state;

        n->state = state;
        if (state == SSH_NODE_UP) {
                uint64_t slots = json_get_u64(hello, "slots") ?: json_get_u64(hello, "cpus");

                n->slots = (unsigned) MIN(slots ?: 1, (uint64_t) UINT_MAX);
                (void) sd_event_source_set_enabled(n->lost_timer, SD_EVENT_OFF);
                log_info("Platform %s: node %s is up (%u slots).", n->platform->platform->name, n->name, n->slots);
                if (node_client_list_images(c, on_node_images, n) < 0 || node_client_list_jobs(c, on_node_jobs, n) < 0)
                        log_oom();
                dispatch_waiting(n->platform);
                return;
        }
        if (old == SSH_NODE_UP)
                log_warning("Platform %s: node %s is %s: %s", n->platform->platform->name, n->name,
                            ssh_node_state_to_string(state), strna(reason));
        node_arm_lost(n);
}

static SshNode *ssh_node_free(SshNode *n) {
        if (!n)
                return NULL;
        node_client_free(n->client);  /* no deploy callback comes after it */
        while (n->deploys)
                n->deploys = node_deploy_free(n->deploys);
        sd_event_source_disable_unref(n->lost_timer);
        free(n->name);
        return mfree(n);
}

static int ssh_node_new(SshPlatform *sp, const char *host, SshNode **ret) {
        Platform *p = sp->platform;
        const ConfigPlatform *c = p->config;
        SshSessionOptions o = {
                .host = host,
                .default_port = c->ssh_port,
                .user = c->ssh_username,
                .key = c->ssh_key,
                .known_hosts = c->ssh_known_hosts,
        };
        SshNode *n;
        int r;

        n = calloc(1, sizeof(SshNode));
        if (!n)
                return -ENOMEM;
        n->platform = sp;
        n->state = SSH_NODE_CONNECTING;
        n->name = strdup(host);
        if (!n->name) {
                ssh_node_free(n);
                return -ENOMEM;
        }
        r = node_client_new(&n->client, p->manager->event, &o, &(NodeClientCallbacks) { .state_changed = on_node_state }, n);
        if (r < 0) {
                ssh_node_free(n);
                return r;
        }
        *ret = n;
        return 0;
}

static void ssh_done(Platform *p) {
        SshPlatform *sp = p->data;

        if (!sp)
                return;
        /* Their answers will not come: the clients go first. */
        for (size_t i = 0; i < sp->n_nodes; i++)
                ssh_node_free(sp->nodes[i]);
        free(sp->nodes);
        while (sp->tickets)
                ticket_free(sp->tickets);
        while (sp->transfers)
                sp->transfers = image_transfer_free(sp->transfers);
        p->data = mfree(sp);
}

static int ssh_init(Platform *p) {
        SshPlatform *sp;
        size_t n = strv_length(p->config->hosts);
        int r;

        sp = calloc(1, sizeof(SshPlatform));
        if (!sp)
                return -ENOMEM;
        p->data = sp;
        sp->platform = p;
        sp->waiting_tail = &sp->waiting;
        sp->nodes = calloc(n + 1, sizeof(SshNode *));
        if (!sp->nodes) {
                ssh_done(p);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                r = ssh_node_new(sp, p->config->hosts[i], &sp->nodes[sp->n_nodes]);
                if (r < 0) {
                        log_error_errno(r, "Platforms.%s: node %s: %m%s", p->name, p->config->hosts[i],
                                        r == -EINVAL ? " (host, ssh.username and ssh.key are needed)" : "");
                        ssh_done(p);
                        return r;
                }
                sp->n_nodes++;
        }
        /* Connected at start and kept; a node that never comes up loses its (re-attached) jobs. */
        for (size_t i = 0; i < sp->n_nodes; i++) {
                r = node_client_start(sp->nodes[i]->client);
                if (r < 0) {
                        ssh_done(p);
                        return r;
                }
                node_arm_lost(sp->nodes[i]);
        }
        return 0;
}

static const char *node_state_name(SshNode *n) {
        if (n->draining && n->state == SSH_NODE_UP)
                return "draining";
        return ssh_node_state_to_string(n->state);
}

static json_object *ssh_report_nodes(Platform *p) {
        SshPlatform *sp = p->data;
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < sp->n_nodes; i++) {
                SshNode *n = sp->nodes[i];
                usec_t last = ssh_session_get_last_contact_realtime(node_client_get_session(n->client));
                json_object *o = json_object_new_object();
                char ts[64];

                if (!o) {
                        json_object_put(a);
                        return NULL;
                }
                json_object_object_add(o, "name", json_object_new_string(n->name));
                json_object_object_add(o, "state", json_object_new_string(node_state_name(n)));
                json_object_object_add(o, "draining", json_object_new_boolean(n->draining));
                json_object_object_add(o, "slots", json_object_new_int64(n->slots));
                json_object_object_add(o, "running", json_object_new_int64(node_busy(n)));
                json_object_object_add(o, "lastContact", last > 0 ? json_object_new_string(format_timestamp_iso(ts, sizeof(ts), last)) : NULL);
                json_object_array_add(a, o);
        }
        return a;
}

static int ssh_drain_node(Platform *p, const char *node, bool drain) {
        SshPlatform *sp = p->data;
        SshNode *n = node_find(sp, node);

        if (!n)
                return -ENOENT;
        if (n->draining != drain)
                log_info("Platform %s: node %s %s.", p->name, n->name, drain ? "draining: no new jobs" : "takes jobs again");
        n->draining = drain;
        if (!drain)
                dispatch_waiting(sp);
        return 0;
}

const PlatformVTable platform_ssh_vtable = {
        .kind = "ssh",
        .init = ssh_init,
        .done = ssh_done,
        .start_job = ssh_start_job,
        .cancel_job = ssh_cancel_job,
        .reattach_job = ssh_reattach_job,
        .deploy_image = ssh_deploy_image,
        .remove_image = ssh_remove_image,
        .deploy_layer = ssh_deploy_layer,
        .remove_layer = ssh_remove_layer,
        .report_nodes = ssh_report_nodes,
        .drain_node = ssh_drain_node,
        .save_result = ssh_save_result,
};
