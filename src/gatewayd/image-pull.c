/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <sys/stat.h>

#include "image-place.h"
#include "image-pull.h"
#include "image-registry.h"
#include "json-util.h"
#include "lingering-mounts.h"
#include "log.h"
#include "manager.h"
#include "image-shifter-meta.h"
#include "platform.h"
#include "reference.h"
#include "registry-events.h"
#include "time-util.h"
#include "worker-process.h"

/* Longer credentials are no registry's; shorter than a pipe's buffer (credentials_pipe()). */
#define CREDENTIALS_MAX (16U * 1024U)

typedef struct PullWaiter {
        ImagePullCallback resolved;
        ImagePullCallback finished;
        void *userdata;
        struct PullWaiter *next;
} PullWaiter;

typedef struct ImagePull {
        Manager *manager;
        char *key;                /* "<platform>\n<reference as asked>" in m->pulls while resolving */
        char *reference;
        char *platform;
        char *credentials;        /* JSON text for the worker's stdin, wiped when done */
        bool private_acl;
        Caller caller;
        uid_t *acl_uids;
        size_t n_acl_uids;
        gid_t *acl_gids;
        size_t n_acl_gids;

        WorkerProcess *worker;
        bool resolving;
        char *resolved_id, *resolved_digest, *canonical;
        char *failure;            /* message of the worker's FAILURE status */
        json_object *done;        /* the worker's "done" event */
        Image *image;
        bool deploying;           /* TRANSFER: the platform is copying it to its nodes */
        bool converting;          /* its worker pulls and converts the image (not resolving) */

        /* An image id is converted once (docs/architecture.md, "Image pulls" 4): a pull that finds the
         * same id being converted for another platform follows that pull (its leader) and is
         * given the files when the conversion is done, or its failure. */
        struct ImagePull *leader;
        struct ImagePull *followers, *follower_next;

        PullWaiter *waiters;
} ImagePull;

static void ready_call_forget(PullWaiter *w);

static void image_pull_unfollow(ImagePull *p) {
        if (!p->leader)
                return;
        for (ImagePull **f = &p->leader->followers; *f; f = &(*f)->follower_next)
                if (*f == p) {
                        *f = p->follower_next;
                        break;
                }
        p->leader = p->follower_next = NULL;
}

/* The next follower, no longer following (its pull ends or goes on on its own). */
static ImagePull *image_pull_pop_follower(ImagePull *p) {
        ImagePull *f = p->followers;

        if (f)
                image_pull_unfollow(f);
        return f;
}

static ImagePull *image_pull_free(ImagePull *p) {
        if (!p)
                return NULL;
        image_pull_unfollow(p);
        /* gatewayd stops: the followers are freed with their images, as this pull is. */
        while (image_pull_pop_follower(p))
                ;
        worker_process_free(p->worker);
        if (p->credentials) {
                explicit_bzero(p->credentials, strlen(p->credentials));
                free(p->credentials);
        }
        for (PullWaiter *w = p->waiters, *n; w; w = n) {
                n = w->next;
                ready_call_forget(w);
                free(w);
        }
        if (p->image && p->image->pull == p) {
                p->image->pull = NULL;
                /* Progress streams of the image end here. */
                registry_publish_image(p->manager, REGISTRY_IMAGE_PULL_ENDED, p->image);
        }
        json_object_put(p->done);
        free(p->key);
        free(p->reference);
        free(p->platform);
        free(p->acl_uids);
        free(p->acl_gids);
        free(p->resolved_id);
        free(p->resolved_digest);
        free(p->canonical);
        free(p->failure);
        free(p);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(ImagePull *, image_pull_free);

void image_pulls_free(Manager *m) {
        ImagePull *p;
        Image *i;

        /* Pulls that resolved hang off their image; the rest are in m->pulls. */
        HASHMAP_FOREACH(i, m->images)
                if (i->pull && hashmap_get(m->pulls, i->pull->key) != i->pull)
                        image_pull_free(i->pull);
        HASHMAP_FOREACH(p, m->pulls)
                image_pull_free(p);
        m->pulls = hashmap_free(m->pulls);
}

static int image_pull_add_waiter(ImagePull *p, ImagePullCallback resolved, ImagePullCallback finished, void *userdata) {
        PullWaiter *w;

        if (!resolved && !finished)
                return 0;
        w = calloc(1, sizeof(PullWaiter));
        if (!w)
                return -ENOMEM;
        *w = (PullWaiter) { .resolved = resolved, .finished = finished, .userdata = userdata, .next = p->waiters };
        p->waiters = w;
        return 0;
}

/* Calls (and clears) the resolved callbacks; with final also the finished ones. */
static void image_pull_notify(ImagePull *p, const GwError *e, bool final) {
        Image *image = gw_error_is_set(e) ? NULL : p->image;

        for (PullWaiter *w = p->waiters; w; w = w->next)
                if (w->resolved) {
                        ImagePullCallback cb = w->resolved;
                        w->resolved = NULL;
                        cb(p->manager, image, e, w->userdata);
                }
        if (!final)
                return;
        while (p->waiters) {
                PullWaiter *w = p->waiters;
                p->waiters = w->next;
                if (w->finished)
                        w->finished(p->manager, image, e, w->userdata);
                free(w);
        }
}

/* A step of the pull that progress streams show (the status moved on). */
static void image_pull_broadcast_image(ImagePull *p) {
        if (p->image)
                registry_publish_image(p->manager, REGISTRY_IMAGE_PROGRESS, p->image);
}

/* The worker's failure message decides what the client is told. */
static GwErrorCode error_code_from_failure(const char *msg) {
        if (!msg)
                return GW_ERROR_UNAVAILABLE;
        if (strstr(msg, "(HTTP 404)") || strstr(msg, "unknown") || strstr(msg, "no manifest for platform"))
                return GW_ERROR_NOT_FOUND;
        if (strstr(msg, "authentication") || strstr(msg, "(HTTP 401)") || strstr(msg, "(HTTP 403)") ||
            strstr(msg, "not an allowed location"))
                return GW_ERROR_ACCESS_DENIED;
        if (strstr(msg, "nvalid reference") || strstr(msg, "nvalid image reference") || strstr(msg, "Credentials file"))
                return GW_ERROR_INVALID_ARGUMENT;
        return GW_ERROR_UNAVAILABLE;
}

/* The pulls that wait for this one's conversion (its followers) show its download's progress as
 * their own: their clients see the bytes and layers advance, not a PULLING that stands at 0 until
 * the end. Their status stays PULLING: the conversion (CONVERSION, logged per record) is the
 * leader's alone. */
static void image_copy_counters(Image *i, const Image *from) {
        i->bytes_done = from->bytes_done;
        i->bytes_total = from->bytes_total;
        i->layers_done = from->layers_done;
        i->layers_total = from->layers_total;
}

static void image_pull_followers_follow(ImagePull *p) {
        for (ImagePull *f = p->followers; f; f = f->follower_next)
                if (f->image) {
                        image_copy_counters(f->image, p->image);
                        registry_publish(f->manager, &(RegistryEvent) { .kind = REGISTRY_IMAGE_PROGRESS,
                                                                        .image = f->image, .progress_counters = true });
                }
}

static void on_worker_event(WorkerProcess *w, const WorkerEvent *ev, void *userdata) {
        ImagePull *p = userdata;
        const char *status;

        switch (ev->kind) {
        case WORKER_EVENT_DONE:
                json_object_put(p->done);
                p->done = json_object_get(ev->object);
                break;
        case WORKER_EVENT_STATUS:
                status = ev->status.status;
                if (status && streq(status, "FAILURE"))
                        (void) free_and_strdup(&p->failure, ev->status.message ?: "pull failed");
                else if (status && p->image && !p->resolving) {
                        ImageStatus s = image_status_from_string(status);
                        /* READY is set only once the worker has exited cleanly (see below). */
                        if (s == IMAGE_PULLING || s == IMAGE_CONVERSION || s == IMAGE_TRANSFER) {
                                (void) image_registry_set_status(p->image, s, NULL);
                                image_pull_broadcast_image(p);
                        }
                }
                break;
        case WORKER_EVENT_PROGRESS:
                if (p->image && !p->resolving) {
                        Image *i = p->image;
                        i->bytes_done = ev->progress.bytes_done;
                        i->bytes_total = ev->progress.bytes_total;
                        i->layers_done = ev->progress.layers_applied;
                        i->layers_total = ev->progress.layers_total;
                        registry_publish(p->manager, &(RegistryEvent) { .kind = REGISTRY_IMAGE_PROGRESS, .image = i,
                                                                        .progress_counters = true });
                        image_pull_followers_follow(p);
                }
                break;
        case WORKER_EVENT_LOG:
                log_debug("pull %s: %s", p->reference, strna(ev->log.message));
                break;
        default:
                break;
        }
}

static void image_pull_fail(ImagePull *p, GwErrorCode code, const char *message) {
        GwError e = { .code = code, .message = (char *) message };

        if (p->image) {
                (void) image_registry_set_status(p->image, IMAGE_FAILURE, message);
                image_pull_broadcast_image(p);
        }
        image_pull_notify(p, &e, true);
}

static void image_pull_end(ImagePull *p);

/* The conversion that the followers waited for failed: each of them fails with its message (a
 * second attempt would fail alike — the same manifest, the same limits; a client that thinks
 * otherwise pulls again). */
static void image_pull_followers_fail(ImagePull *p, GwErrorCode code, const char *message) {
        ImagePull *f;

        while ((f = image_pull_pop_follower(p))) {
                log_info("Image %s for platform %s: its conversion for platform %s failed.", f->image->id, f->platform,
                         p->platform);
                image_pull_fail(f, code, message);
                image_pull_end(f);
        }
}

static void image_pull_end(ImagePull *p) {
        Manager *m = p->manager;

        /* Never left waiting for a conversion that will not come (it failed before it ran). */
        image_pull_followers_fail(p, GW_ERROR_UNAVAILABLE, p->failure ?: "The image's conversion for another platform failed.");
        if (p->key && hashmap_get(m->pulls, p->key) == p)
                hashmap_remove(m->pulls, p->key);
        manager_busy_unref(m);
        image_pull_free(p);
}

static void image_pull_ready(ImagePull *p) {
        if (image_registry_set_status(p->image, IMAGE_READY, NULL) < 0) {
                image_pull_fail(p, GW_ERROR_INTERNAL, "Failed to record the image as READY.");
                image_pull_end(p);
                return;
        }
        image_pull_broadcast_image(p);
        image_pull_notify(p, NULL, true);
        image_pull_end(p);
}

/* Shifter's TRANSFER: a platform whose jobs run elsewhere (SSH nodes) gets the converted image
 * there before it is READY; its .meta is written for every platform, as Shifter's runtime on
 * a compute node reads it. 1: the platform reports the end (image_pull_on_deployed). */
static int image_pull_deploy(ImagePull *p, GwError *e) {
        int r;

        r = image_shifter_meta_write(p->image);
        if (r < 0)
                return gw_error_set_errno(e, r, "Failed to write the image's Shifter metadata.");
        r = platform_deploy_image(platform_get(p->manager, p->platform), p->image, e);
        if (r <= 0)
                return r;
        p->deploying = true;
        (void) image_registry_set_status(p->image, IMAGE_TRANSFER, NULL);
        image_pull_broadcast_image(p);
        return 1;
}

void image_pull_on_deployed(Platform *pl, const char *image_id, int r, const char *message) {
        Image *i = image_registry_get(pl->manager, pl->name, image_id);
        ImagePull *p = i ? i->pull : NULL;

        if (!p || !p->deploying)
                return (void) (i ? image_registry_transfer_done(i, r, message) : 0);
        if (r >= 0)
                return image_pull_ready(p);
        image_pull_fail(p, r == -ENOSPC ? GW_ERROR_INSUFFICIENT_STORAGE : GW_ERROR_UNAVAILABLE,
                        message ?: "The image could not be copied to the platform's nodes.");
        image_pull_end(p);
}

/* The image's files are converted: deploy it to the platform, then it is READY. */
static void image_pull_converted(ImagePull *p, const char *squashfs, const char *meta, uint64_t size) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Image *i = p->image;
        int r;

        (void) free_and_strdup(&i->squashfs_path, squashfs);
        (void) free_and_strdup(&i->meta_path, meta);
        i->size = size;
        i->bytes_done = i->bytes_total;
        i->layers_done = i->layers_total;
        i->last_used_usec = now_realtime_usec();
        /* Should this pull have replaced a file that was mounted (a READY digest is not pulled
         * again, but an expired one's leftovers may be): jobs mount the new file (the mounts are
         * keyed by its device and inode), and a lingering mount of the old one goes now. */
        lingering_mounts_sweep(p->manager);
        r = image_pull_deploy(p, &e);
        if (r < 0) {
                image_pull_fail(p, e.code, e.message);
                image_pull_end(p);
        } else if (r == 0)
                image_pull_ready(p);
}

static bool path_in_dir(const char *path, const char *dir) {
        size_t n = strlen(dir);

        return path && strneq(path, dir, n) && path[n] == '/' && !strchr(path + n + 1, '/');
}

/* Where pulls for the platform write their files (the worker's --image-dir). */
static int image_pull_dir(ImagePull *p, char **ret) {
        ConfigPlatform *pl = config_platform_find(p->manager->config, p->platform);
        char *d;

        if (pl && pl->local_image_dir)
                d = strdup(pl->local_image_dir);
        else if (asprintf(&d, "%s/images", p->manager->state_dir) < 0)
                d = NULL;
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

static void image_pull_convert(ImagePull *p, const char *reference, const char *digest);

/* This pull's image is converted already, for another platform (from): its files serve this
 * platform's record too — as they are where they are in this platform's image directory
 * (image_unlink_files() keeps a file that another record uses), else placed there as files of
 * this record's own (image_place_file()), so that removing either record leaves the other's. Then
 * what is this platform's alone: its Shifter .meta, its deployment. */
static void image_pull_adopt(ImagePull *p, const char *from, const char *squashfs, const char *meta, uint64_t size) {
        _cleanup_free_ char *dir = NULL, *placed = NULL, *placed_meta = NULL, *msg = NULL;
        int r;

        r = image_pull_dir(p, &dir);
        if (r >= 0 && path_in_dir(squashfs, dir) && path_in_dir(meta, dir)) {
                log_info("Image %s (%s) for platform %s: using the file converted for platform %s.",
                         p->image->id, p->image->reference, p->platform, from);
                return image_pull_converted(p, squashfs, meta, size);
        }
        if (r >= 0)
                r = image_place_file(squashfs, dir, strrchr(squashfs, '/') + 1, &placed);
        if (r >= 0)
                r = image_place_file(meta, dir, strrchr(meta, '/') + 1, &placed_meta);
        if (r == -EXDEV) {
                if (placed)
                        (void) unlink(placed);
                log_info("Image %s (%s) for platform %s: %s is on another file system than platform %s's file, "
                         "without reflinks; converting it here too.", p->image->id, p->image->reference, p->platform,
                         dir, from);
                return image_pull_convert(p, p->image->reference, p->image->digest);
        }
        if (r < 0) {
                if (placed)
                        (void) unlink(placed);
                log_warning_errno(r, "Image %s for platform %s: cannot place the file converted for platform %s in %s: %m",
                                  p->image->id, p->platform, from, strna(dir));
                if (asprintf(&msg, "Cannot place the image in platform %s's image directory: %s", p->platform,
                             strerror(-r)) < 0)
                        msg = NULL;
                image_pull_fail(p, r == -ENOSPC ? GW_ERROR_INSUFFICIENT_STORAGE : GW_ERROR_UNAVAILABLE,
                                msg ?: "Cannot place the image in the platform's image directory.");
                return image_pull_end(p);
        }
        log_info("Image %s (%s) for platform %s: placed the file converted for platform %s as %s.",
                 p->image->id, p->image->reference, p->platform, from, placed);
        image_pull_converted(p, placed, placed_meta, size);
}

static void on_full_pull_exit(WorkerProcess *w, int status, void *userdata) {
        ImagePull *p = userdata;
        const char *squashfs = p->done ? json_get_string(p->done, "squashfs") : NULL;
        const char *meta = p->done ? json_get_string(p->done, "meta") : NULL;
        uint64_t size = p->done ? json_get_u64(p->done, "size") : 0;
        ImagePull *f;

        p->converting = false;
        if (status != 0 || !squashfs || !meta) {
                _cleanup_free_ char *msg = NULL;
                if (!p->failure && asprintf(&msg, "gateway-worker pull %s %i", status < 0 ? "killed by signal" : "exited with status",
                                            status < 0 ? -status : status) < 0)
                        msg = NULL;
                image_pull_followers_fail(p, GW_ERROR_UNAVAILABLE, p->failure ?: msg ?: "pull failed");
                image_pull_fail(p, GW_ERROR_UNAVAILABLE, p->failure ?: msg ?: "pull failed");
                image_pull_end(p);
                return;
        }
        /* The followers first: what happens to this pull's record next (its deployment may fail
         * and end it) is its platform's alone. */
        while ((f = image_pull_pop_follower(p)))
                image_pull_adopt(f, p->platform, squashfs, meta, size);
        image_pull_converted(p, squashfs, meta, size);
}

/* Appends option (e.g. "--cache-dir=") followed by value (may be NULL). */
static int append_arg(char ***argv, size_t *n, const char *option, const char *value) {
        char **l = realloc(*argv, (*n + 2) * sizeof(char *));

        if (!l)
                return -ENOMEM;
        *argv = l;
        if (asprintf(&l[*n], "%s%s", option, strempty(value)) < 0)
                return -ENOMEM;
        l[++*n] = NULL;
        return 0;
}

static int image_pull_build_argv(ImagePull *p, bool resolve_only, const char *what, char ***ret) {
        Manager *m = p->manager;
        Config *c = m->config;
        ConfigPlatform *pl = config_platform_find(c, p->platform);
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *images = NULL, *cache = NULL, *expand = NULL, *level = NULL, *size_max = NULL, *files_max = NULL;
        size_t n = 0;
        int r = 0;

        if (asprintf(&images, "%s/images", m->state_dir) < 0 || asprintf(&cache, "%s/cache", m->state_dir) < 0 ||
            asprintf(&expand, "%s/expand", m->state_dir) < 0 || asprintf(&level, "%i", c->compression_level) < 0 ||
            asprintf(&size_max, "%" PRIu64, c->image_size_max) < 0 || asprintf(&files_max, "%u", c->image_files_max) < 0)
                return -ENOMEM;

        r |= append_arg(&argv, &n, "pull", NULL);
        r |= append_arg(&argv, &n, "--events-fd=3", NULL);
        r |= append_arg(&argv, &n, "--image-dir=", pl && pl->local_image_dir ? pl->local_image_dir : images);
        r |= append_arg(&argv, &n, "--cache-dir=", c->cache_directory ?: cache);
        r |= append_arg(&argv, &n, "--expand-dir=", c->expand_directory ?: expand);
        if (c->default_image_location)
                r |= append_arg(&argv, &n, "--default-location=", c->default_image_location);
        r |= append_arg(&argv, &n, "--compressor=", c->compressor ?: "zstd");
        r |= append_arg(&argv, &n, "--compression-level=", level);
        r |= append_arg(&argv, &n, "--image-size-max=", size_max);
        r |= append_arg(&argv, &n, "--image-files-max=", files_max);
        for (size_t k = 0; k < c->n_locations; k++) {
                _cleanup_strv_free_ char **location_args = NULL;

                /* The worker checks the reference against Locations too (defense in depth). */
                r |= append_arg(&argv, &n, "--allowed-registry=", c->locations[k].name);
                if (c->locations[k].insecure)
                        r |= append_arg(&argv, &n, "--insecure-registry=", c->locations[k].name);
                r |= config_location_worker_args(&c->locations[k], &location_args);
                for (char **a = location_args; a && *a; a++)
                        r |= append_arg(&argv, &n, *a, NULL);
        }
        if (p->credentials)
                r |= append_arg(&argv, &n, "--credentials-file=-", NULL);
        if (resolve_only)
                r |= append_arg(&argv, &n, "--resolve-only", NULL);
        r |= append_arg(&argv, &n, "", what);
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

/* Secrets reach the worker on its stdin, a pipe filled before it starts: never on a command
 * line or in the environment (ps, /proc), nor in a file that outlives a crash. They fit the
 * pipe's buffer (CREDENTIALS_MAX), so this write cannot block. */
static int credentials_pipe(const char *text, int *ret) {
        _cleanup_close_ int rfd = -1, wfd = -1;
        size_t n = strlen(text);
        int fds[2];

        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        rfd = fds[0];
        wfd = fds[1];
        if (write(wfd, text, n) != (ssize_t) n)
                return errno > 0 ? -errno : -EIO;
        if (fcntl(rfd, F_SETFL, 0) < 0)
                return -errno;
        *ret = TAKE_FD(rfd);
        return 0;
}

static int image_pull_spawn(ImagePull *p, bool resolve_only, const char *what,
                            void (*on_exit)(WorkerProcess *, int, void *)) {
        _cleanup_strv_free_ char **argv = NULL;
        WorkerOptions o = {};
        WorkerCallbacks cb = { .on_event = on_worker_event, .on_exit = on_exit };
        _cleanup_close_ int stdin_fd = -1;
        int r;

        r = image_pull_build_argv(p, resolve_only, what, &argv);
        if (r < 0)
                return r;
        o.argv = argv;
        p->worker = worker_process_free(p->worker);
        p->resolving = resolve_only;
        if (p->credentials) {
                r = credentials_pipe(p->credentials, &stdin_fd);
                if (r < 0)
                        return log_error_errno(r, "Failed to hand credentials to the worker: %m");
                o.stdin_fd = stdin_fd;
        }
        return worker_process_spawn(p->manager, &o, &cb, p, &p->worker);
}

/* Hands this pull's waiters to the pull already converting the same image. */
static void image_pull_merge_into(ImagePull *p, ImagePull *into) {
        PullWaiter **tail = &into->waiters;

        while (*tail)
                tail = &(*tail)->next;
        *tail = TAKE_PTR(p->waiters);
}

static bool image_file_present(const Image *i) {
        return i->squashfs_path && access(i->squashfs_path, R_OK) == 0;
}

/* The same image READY for another platform, its files on this host: one in this platform's
 * image directory if there is one (shared as it is), else any (placed). */
static Image *image_pull_find_converted(ImagePull *p) {
        _cleanup_free_ char *dir = NULL;
        Image *o, *found = NULL;

        if (image_pull_dir(p, &dir) < 0)
                return NULL;
        HASHMAP_FOREACH(o, p->manager->images) {
                if (o == p->image || !streq(o->id, p->image->id) || o->status != IMAGE_READY || !image_file_present(o) ||
                    !o->meta_path || access(o->meta_path, R_OK) < 0)
                        continue;
                if (path_in_dir(o->squashfs_path, dir))
                        return o;
                found = found ?: o;
        }
        return found;
}

/* The pull converting the same image for another platform right now. */
static ImagePull *image_pull_find_converting(ImagePull *p) {
        Image *o;

        HASHMAP_FOREACH(o, p->manager->images)
                if (o != p->image && streq(o->id, p->image->id) && o->pull && o->pull->converting)
                        return o->pull;
        return NULL;
}

/* This platform's own conversion of the image: the full pull. */
static void image_pull_convert(ImagePull *p, const char *reference, const char *digest) {
        _cleanup_free_ char *pinned = NULL;
        Image *i = p->image;
        int r;

        /* Pull exactly the manifest we resolved, even if the tag moves meanwhile. */
        if (asprintf(&pinned, "%s@%s", reference, digest) < 0)
                pinned = NULL;
        i->pull = p;
        i->bytes_done = i->bytes_total = 0;
        i->layers_done = i->layers_total = 0;
        hashmap_remove(p->manager->pulls, p->key);     /* joiners now find it through the image */
        (void) image_registry_set_status(i, IMAGE_PULLING, NULL);

        r = pinned ? image_pull_spawn(p, false, pinned, on_full_pull_exit) : -ENOMEM;
        p->converting = r >= 0;
        if (r < 0) {
                image_pull_fail(p, GW_ERROR_INTERNAL, "Failed to start gateway-worker.");
                image_pull_end(p);
                return;
        }
        log_info("Converting image %s (%s) for platform %s.", i->id, i->reference, i->platform);
        image_pull_notify(p, NULL, false);
}

static void image_pull_apply_acl(ImagePull *p, bool created) {
        Image *i = p->image;

        if (p->private_acl && !p->credentials) {
                /* Shifter's allowed_uids/allowed_gids: restricts who may use the image, with the
                 * puller added (Shifter's _make_acl). A public image stays public: others use it
                 * already, and anyone could pull these very bytes again. */
                if (!created && !i->private_image)
                        return;
                (void) image_registry_set_acl(i, &p->caller.uid, 1, &p->caller.gid, 1);
                (void) image_registry_set_acl(i, p->acl_uids, p->n_acl_uids, p->acl_gids, p->n_acl_gids);
                return;
        }
        if (!p->credentials) {
                /* Anyone could pull these very bytes without credentials: nothing left to hide. */
                if (i->private_image)
                        (void) image_registry_clear_acl(i);
                return;
        }
        /* Pulled with credentials: private to the puller and the named users and groups —
         * unless the same content is public already. */
        if (!created && !i->private_image)
                return;
        (void) image_registry_set_acl(i, &p->caller.uid, 1, NULL, 0);
        (void) image_registry_set_acl(i, p->acl_uids, p->n_acl_uids, p->acl_gids, p->n_acl_gids);
}

static void on_resolve_exit(WorkerProcess *w, int status, void *userdata) {
        ImagePull *p = userdata;
        Manager *m = p->manager;
        bool created;
        Image *i, *converted;
        ImagePull *leader;
        int r;

        const char *id = p->done ? json_get_string(p->done, "id") : NULL;
        const char *digest = p->done ? json_get_string(p->done, "digest") : NULL;
        const char *canonical = p->done ? json_get_string(p->done, "reference") : NULL;

        if (status != 0 || !id || !digest) {
                image_pull_fail(p, error_code_from_failure(p->failure), p->failure ?: "Failed to resolve the image reference.");
                image_pull_end(p);
                return;
        }

        created = !image_registry_get(m, p->platform, id);
        r = image_registry_add(m, id, digest, canonical ?: p->reference, p->platform, &i);
        if (r < 0) {
                image_pull_fail(p, GW_ERROR_INTERNAL, "Failed to record the image.");
                image_pull_end(p);
                return;
        }
        p->image = i;
        (void) image_registry_tag(i, p->reference);
        if (canonical && !streq(canonical, p->reference))
                (void) image_registry_tag(i, canonical);
        image_pull_apply_acl(p, created);
        if (created)
                registry_publish_image(p->manager, REGISTRY_IMAGE_ADDED, i);

        if (i->status == IMAGE_READY && image_file_present(i)) {
                /* Same digest as what we have: nothing to convert. Record the re-check. */
                i->updated_usec = now_realtime_usec();
                (void) image_registry_save(i);
                image_pull_notify(p, NULL, true);
                image_pull_end(p);
                return;
        }
        if (i->pull) {
                image_pull_merge_into(p, i->pull);
                image_pull_notify(i->pull, NULL, false);
                image_pull_end(p);
                return;
        }

        converted = image_pull_find_converted(p);
        if (converted) {
                i->pull = p;
                hashmap_remove(m->pulls, p->key);
                image_pull_notify(p, NULL, false);
                image_pull_adopt(p, converted->platform, converted->squashfs_path, converted->meta_path, converted->size);
                return;
        }
        leader = image_pull_find_converting(p);
        if (leader) {
                log_info("Image %s (%s) for platform %s: waiting for its conversion for platform %s.",
                         i->id, i->reference, i->platform, leader->platform);
                i->pull = p;
                hashmap_remove(m->pulls, p->key);
                p->leader = leader;
                p->follower_next = leader->followers;
                leader->followers = p;
                /* from now on it shows the leader's progress (image_pull_followers_follow()) */
                image_copy_counters(i, leader->image);
                (void) image_registry_set_status(i, IMAGE_PULLING, NULL);
                image_pull_notify(p, NULL, false);
                return;
        }

        image_pull_convert(p, canonical ?: p->reference, digest);
}

static int image_pull_new(Manager *m, const ImagePullRequest *req, const char *platform, char *key, ImagePull **ret) {
        _cleanup_(image_pull_freep) ImagePull *p = calloc(1, sizeof(ImagePull));

        if (!p) {
                free(key);
                return -ENOMEM;
        }
        p->manager = m;
        p->key = key;
        p->caller = req->caller;
        p->private_acl = req->private_acl;
        p->caller.bus_sender = NULL;
        p->caller.pidfd = -1;
        p->caller.name = NULL;  /* borrowed from the request, which ends before the pull */
        p->reference = strdup(req->reference);
        p->platform = strdup(platform);
        if (!p->reference || !p->platform)
                return -ENOMEM;
        if (req->n_acl_uids > 0 && !(p->acl_uids = memdup(req->acl_uids, req->n_acl_uids * sizeof(uid_t))))
                return -ENOMEM;
        if (req->n_acl_gids > 0 && !(p->acl_gids = memdup(req->acl_gids, req->n_acl_gids * sizeof(gid_t))))
                return -ENOMEM;
        p->n_acl_uids = req->n_acl_uids;
        p->n_acl_gids = req->n_acl_gids;
        if (req->credentials && !(p->credentials = strdup(json_text(req->credentials))))
                return -ENOMEM;
        *ret = TAKE_PTR(p);
        return 0;
}

bool credentials_are_valid(json_object *c) {
        size_t n = 0;

        if (!json_object_is_type(c, json_type_object))
                return false;
        json_object_object_foreach(c, k, v) {
                if ((!streq(k, "username") && !streq(k, "password") && !streq(k, "token")) ||
                    !json_object_is_type(v, json_type_string))
                        return false;
                n++;
        }
        return json_get_string(c, "token") ? n == 1 : json_get_string(c, "username") && json_get_string(c, "password") && n == 2;
}

int image_reference_parse_field(Manager *m, const char *field, const char *reference, ImageReference **ret,
                                GwError *e) {
        int r;

        /* The worker's own parser: a reference it would refuse is the client's mistake (400), not a
         * failed pull (503). */
        r = image_reference_parse(reference, m->config->default_image_location, ret);
        if (r == -ENOMEM)
                return gw_error_set_errno(e, r, "Out of memory.");
        if (r < 0)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: '%s' is not a valid image reference "
                                    "([REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], repository in lower case, ASCII only)",
                                    field, reference);
        return 0;
}

int image_reference_check_location(Manager *m, const char *field, const ImageReference *ref, GwError *e) {
        if (config_location_for_registry(m->config, ref->registry))
                return 0;
        log_info("Refusing image %s/%s: registry %s is not in Locations.", ref->registry, ref->repository, ref->registry);
        return gw_error_set(e, GW_ERROR_ACCESS_DENIED,
                            "%s: registry '%s' is not one of the configured Locations; "
                            "images can be pulled only from those.", field, ref->registry);
}

/* A pull makes the worker, which runs as root, connect to the registry the reference names: that
 * must be one the site configured in Locations, never any host:port a user writes. Checked
 * before anything is spawned, so that a refused pull makes no connection at all. */
static int image_pull_check_location(Manager *m, const char *reference, GwError *e) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        int r;

        r = image_reference_parse_field(m, "reference", reference, &ref, e);
        return r < 0 ? r : image_reference_check_location(m, "reference", ref, e);
}

/* An image pulled as this reference recently enough (PullUpdateTimeout) is served as is. */
static Image *image_fresh_for(Manager *m, const ImagePullRequest *req, const char *platform) {
        Image *i = image_registry_lookup(m, platform, req->reference);
        uint64_t timeout = m->config->pull_update_timeout_sec * USEC_PER_SEC;

        if (!i || req->force || req->credentials || req->private_acl || !streq(i->platform, platform))
                return NULL;
        if (i->status != IMAGE_READY || !image_file_present(i) || !image_is_visible(i, &req->caller))
                return NULL;
        if (i->updated_usec + timeout < now_realtime_usec())
                return NULL;
        return i;
}

int image_pull_start(Manager *m, const ImagePullRequest *req, ImagePullCallback resolved,
                     ImagePullCallback finished, void *userdata, GwError *e) {
        ConfigPlatform *pl = req->platform ? config_platform_find(m->config, req->platform) : config_platform_default(m->config);
        ImagePull *p;
        Image *i;
        char *key;
        int r;

        if (!pl)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "platform: unknown platform '%s'", req->platform);
        if (platform_unsupported(platform_get(m, pl->name), /* jobs= */ false))
                return gw_error_set(e, GW_ERROR_UNAVAILABLE, "Platform '%s': %s.", pl->name,
                                    platform_unsupported(platform_get(m, pl->name), false));
        if (req->credentials && !credentials_are_valid(req->credentials))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                    "credentials: expected {\"username\": …, \"password\": …} or {\"token\": …} with string values");
        if (req->credentials && strlen(json_text(req->credentials)) > CREDENTIALS_MAX)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "credentials: longer than %u bytes", CREDENTIALS_MAX);
        r = image_pull_check_location(m, req->reference, e);
        if (r < 0)
                return r;

        i = image_fresh_for(m, req, pl->name);
        if (i) {
                if (resolved)
                        resolved(m, i, NULL, userdata);
                if (finished)
                        finished(m, i, NULL, userdata);
                return 0;
        }

        if (asprintf(&key, "%s\n%s%s", pl->name, req->reference,
                     req->credentials || req->private_acl ? "\nprivate" : "") < 0)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");

        /* Same reference (and same credentials-ness) in flight: join it. */
        p = hashmap_get(m->pulls, key);
        if (p && !req->credentials && !req->private_acl) {
                free(key);
                if (image_pull_add_waiter(p, resolved, finished, userdata) < 0)
                        return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
                return 0;
        }
        if (p) {
                /* Private pulls never share credentials; the second one just waits its turn. */
                free(key);
                return gw_error_set(e, GW_ERROR_CONFLICT, "A private pull of %s is in flight; retry when it is done.", req->reference);
        }

        r = image_pull_new(m, req, pl->name, key, &p);
        if (r < 0)
                return gw_error_set_errno(e, r, "Failed to set up the pull.");
        r = image_pull_add_waiter(p, resolved, finished, userdata);
        if (r >= 0)
                r = hashmap_put(m->pulls, p->key, p);
        if (r < 0) {
                image_pull_free(p);
                return gw_error_set_errno(e, r, "Failed to set up the pull.");
        }
        manager_busy_ref(m);

        r = image_pull_spawn(p, true, p->reference, on_resolve_exit);
        if (r < 0) {
                /* Waiters are not told: the caller learns from the error return. */
                for (PullWaiter *w = p->waiters; w; w = w->next)
                        w->resolved = w->finished = NULL;
                image_pull_end(p);
                return gw_error_set_errno(e, r, "Failed to start gateway-worker.");
        }
        log_info("Pulling %s for uid %u.", req->reference, (unsigned) req->caller.uid);
        return 0;
}

typedef struct ReadyCall {
        Manager *manager;
        char *platform;
        char *image_id;
        ImageReadyCallback done;
        void *userdata;
        sd_event_source *defer;
} ReadyCall;

static ReadyCall *ready_call_free(ReadyCall *c) {
        if (c) {
                sd_event_source_disable_unref(c->defer);
                free(c->platform);
                free(c->image_id);
                free(c);
        }
        return NULL;
}

static int on_ready_defer(sd_event_source *s, void *userdata) {
        ReadyCall *c = userdata;
        Image *i = image_registry_get(c->manager, c->platform, c->image_id);
        GwError e = { .code = GW_ERROR_NO_SUCH_IMAGE, .message = (char *) "The image was removed." };

        c->done(c->manager, i && i->status == IMAGE_READY ? i : NULL,
                i && i->status == IMAGE_READY ? NULL : &e, c->userdata);
        ready_call_free(c);
        return 0;
}

static void on_ready_pull_finished(Manager *m, Image *image, const GwError *error, void *userdata) {
        ReadyCall *c = userdata;
        GwError e = { .code = GW_ERROR_UNAVAILABLE, .message = (char *) "The image could not be pulled." };

        if (image && image->status == IMAGE_READY)
                c->done(m, image, NULL, c->userdata);
        else {
                if (gw_error_is_set(error))
                        e = *error;
                else if (image && image->status_message)
                        e.message = image->status_message;
                c->done(m, NULL, &e, c->userdata);
        }
        ready_call_free(c);
}

/* The pull that would have answered goes away unfinished (gatewayd stops): the ReadyCalls among
 * its waiters are ours to free. Their callers are not told — a job that waited stays PENDING in
 * the database and the next gatewayd pulls for it again. */
static void ready_call_forget(PullWaiter *w) {
        if (w->finished == on_ready_pull_finished)
                ready_call_free(w->userdata);
}

int image_registry_ensure_ready(Manager *m, const char *platform, const char *reference, uid_t uid,
                                ImageReadyCallback done, void *userdata) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Image *i = image_registry_lookup(m, platform, reference);
        struct passwd *pw = getpwuid(uid);
        ImagePullRequest req = {
                .reference = reference,
                .platform = platform,
                .caller = { .uid = uid, .gid = pw ? pw->pw_gid : (gid_t) -1, .pidfd = -1 },
        };
        ReadyCall *c;
        int r;

        c = calloc(1, sizeof(ReadyCall));
        if (!c)
                return -ENOMEM;
        *c = (ReadyCall) { .manager = m, .done = done, .userdata = userdata };

        /* A READY image serves jobs as it is: re-checking the registry before every job would put
         * a network round trip on the job's start. The answer still comes from the loop. */
        if (i && i->status == IMAGE_READY && image_file_present(i) && image_is_visible(i, &req.caller)) {
                c->image_id = strdup(i->id);
                c->platform = strdup(i->platform);
                if (!c->image_id || !c->platform || sd_event_add_defer(m->event, &c->defer, on_ready_defer, c) < 0) {
                        ready_call_free(c);
                        return -ENOMEM;
                }
                return 0;
        }

        r = image_pull_start(m, &req, NULL, on_ready_pull_finished, c, &e);
        if (r < 0) {
                ready_call_free(c);
                return log_warning_errno(r, "Cannot pull %s: %s", reference, strna(e.message));
        }
        return 0;
}
