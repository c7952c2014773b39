/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "fs-util.h"
#include "image.h"
#include "image-pull.h"
#include "job.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "platform.h"
#include "lingering-mounts.h"
#include "program-provider.h"
#include "program-registry.h"
#include "reference.h"
#include "spool-reserve.h"
#include "time-util.h"
#include "worker-process.h"

#define PROGRAM_SQUASHFS "program.squashfs"   /* before layers had ids */
#define PROGRAM_ARTIFACT "artifact"

/* An upload whose squashfs is being built. Not in m->programs yet, but its title is taken. */
typedef struct ProgramUpload {
        Manager *manager;
        Program *program;
        char *artifact;
        WorkerProcess *worker;
        ProgramUploaded cb;
        void *userdata;
        bool done, invalid;
        bool replacing;         /* of the program with this id: only the new layer is ours */
        char *message;
        struct ProgramUpload *next;
} ProgramUpload;
static ProgramUpload *uploads;

static int programs_dir(Manager *m, char **ret) {
        return asprintf(ret, "%s/programs", m->state_dir) < 0 ? -ENOMEM : 0;
}

int program_registry_upload_dir(Manager *m, char **ret) {
        return asprintf(ret, "%s/" PROGRAM_UPLOAD_DIR, m->state_dir) < 0 ? -ENOMEM : 0;
}

static int program_attach(Manager *m, Program *p) {
        p->manager = m;
        if (!p->dir && asprintf(&p->dir, "%s/programs/%s", m->state_dir, p->id) < 0)
                return -ENOMEM;
        /* A program uploaded before layers had ids: its squashfs keeps its name, and its id is
         * made from the program's (the UUID's hex digits, padded). */
        if (!p->layer) {
                char *l = calloc(65, 1);
                size_t n = 0;

                if (!l)
                        return -ENOMEM;
                for (const char *c = p->id; *c && n < 64; c++)
                        if (*c != '-')
                                l[n++] = *c;
                while (n < 64)
                        l[n++] = '0';
                p->layer = l;
                if (!p->squashfs_path && asprintf(&p->squashfs_path, "%s/" PROGRAM_SQUASHFS, p->dir) < 0)
                        return -ENOMEM;
        }
        if (!p->squashfs_path && asprintf(&p->squashfs_path, "%s/%s.squashfs", p->dir, p->layer) < 0)
                return -ENOMEM;
        return hashmap_put(m->programs, p->id, p);
}

/* Every platform gets the program's layer (SSH nodes: a copy, sent now; a job there brings it
 * along should it not have arrived). */
static void program_deploy_layer(Manager *m, const Program *p) {
        Platform *pl;

        HASHMAP_FOREACH(pl, m->platforms)
                (void) platform_deploy_layer(pl, p->layer, p->squashfs_path);
}

static void layer_remove_everywhere(Manager *m, const char *layer) {
        Platform *pl;

        HASHMAP_FOREACH(pl, m->platforms)
                (void) platform_remove_layer(pl, layer);
}

static bool program_in_use(Manager *m, const Program *p, const Job *except);

/* Layers of earlier uploads (a re-upload keeps them for the jobs that run on them) go once no
 * job of the program is unfinished but `except`: here and on every platform. */
static void program_collect_layers(Manager *m, Program *p, const Job *except) {
        struct dirent *de;
        DIR *d;

        /* (checked on every job's end: only a program with something to collect looks) */
        if (!p->old_layers || program_in_use(m, p, except))
                return;
        p->old_layers = false;
        d = opendir(p->dir);
        if (!d)
                return;
        while ((de = readdir(d))) {
                const char *dot = strrchr(de->d_name, '.');
                _cleanup_free_ char *layer = dot ? strndup(de->d_name, (size_t) (dot - de->d_name)) : NULL;

                if (!layer || !streq(dot, ".squashfs") || !program_layer_is_valid(layer) || streq(layer, p->layer))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
                        log_warning_errno(errno, "Cannot remove %s/%s, an earlier upload of program %s: %m",
                                          p->dir, de->d_name, p->id);
                else
                        log_info("Program '%s' (%s): the layer %s of an earlier upload is no longer used; removed.",
                                 p->title, p->id, layer);
                layer_remove_everywhere(m, layer);
        }
        closedir(d);
        lingering_mounts_sweep(m);  /* a removed layer's lingering mount */
}

void program_registry_job_ended(Manager *m, const Job *j) {
        Program *p = j->program_id ? program_registry_get(m, j->program_id) : NULL;

        if (p)
                program_collect_layers(m, p, j);
}

/* Earlier uploads' layers still kept (their jobs have not all finished): wanted too. */
static int foreach_old_layer(Platform *pl, const Program *p,
                             int (*fn)(Platform *pl, const char *layer, const char *squashfs_path, void *userdata),
                             void *userdata) {
        struct dirent *de;
        int r = 0;
        DIR *d;

        d = opendir(p->dir);
        if (!d)
                return 0;
        while (r >= 0 && (de = readdir(d))) {
                const char *dot = strrchr(de->d_name, '.');
                _cleanup_free_ char *layer = dot ? strndup(de->d_name, (size_t) (dot - de->d_name)) : NULL;
                _cleanup_free_ char *path = NULL;

                if (!layer || !streq(dot, ".squashfs") || !program_layer_is_valid(layer) || streq(layer, p->layer))
                        continue;
                if (asprintf(&path, "%s/%s", p->dir, de->d_name) < 0)
                        r = -ENOMEM;
                else
                        r = fn(pl, layer, path, userdata);
        }
        closedir(d);
        return r;
}

int program_registry_foreach_layer(Platform *pl, int (*fn)(Platform *pl, const char *layer, const char *squashfs_path, void *userdata),
                                   void *userdata) {
        Program *p;
        int r;

        HASHMAP_FOREACH(p, pl->manager->programs) {
                r = fn(pl, p->layer, p->squashfs_path, userdata);
                if (r >= 0 && p->old_layers)
                        r = foreach_old_layer(pl, p, fn, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

static char *column_strdup(sqlite3_stmt *st, int i) {
        const unsigned char *t = sqlite3_column_text(st, i);
        return t ? strdup((const char *) t) : NULL;
}

static int program_from_row(sqlite3_stmt *st, Program **ret) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(program_freep) Program *p = calloc(1, sizeof(Program));
        json_object *spec;
        int r;

        if (!p)
                return -ENOMEM;
        p->id = column_strdup(st, 0);
        p->uid = (uid_t) sqlite3_column_int64(st, 1);
        p->gid = (gid_t) sqlite3_column_int64(st, 2);
        p->title = column_strdup(st, 3);
        if (!p->id || !p->title)
                return -ENOMEM;
        if (sqlite3_column_type(st, 6) != SQLITE_NULL && !(p->provider = column_strdup(st, 6)))
                return -ENOMEM;
        if (sqlite3_column_type(st, 7) != SQLITE_NULL && !(p->image = column_strdup(st, 7)))
                return -ENOMEM;
        if (!job_id_is_valid(p->id))
                return log_error_errno(EBADMSG, "Program '%s' in the database has an invalid id; skipping it.", p->title);
        spec = json_tokener_parse((const char *) sqlite3_column_text(st, 4));
        r = spec ? program_spec_apply(p, spec, &e) : -EBADMSG;
        json_object_put(spec);
        if (r < 0)
                return log_error_errno(r, "Program %s in the database is invalid (%s); skipping it.", p->id, strna(e.message));
        p->created_usec = (uint64_t) sqlite3_column_int64(st, 5);
        *ret = TAKE_PTR(p);
        return 0;
}

/* Directories of programs without a row, and uploads that never finished: nobody can reach them. */
static void program_remove_orphans(Manager *m) {
        _cleanup_free_ char *dir = NULL;
        struct dirent *de;
        DIR *d;

        if (programs_dir(m, &dir) < 0)
                return;
        d = opendir(dir);
        if (!d)
                return;
        while ((de = readdir(d))) {
                bool ours = streq(de->d_name, ".uploads") || job_id_is_valid(de->d_name);

                if (!ours || streq(de->d_name, ".") || hashmap_get(m->programs, de->d_name))
                        continue;
                if (rm_rf_at(dirfd(d), de->d_name) < 0)
                        log_warning("Cannot remove %s/%s left by an unfinished upload.", dir, de->d_name);
                else if (!streq(de->d_name, ".uploads"))
                        log_info("Removed %s/%s: a program that no longer exists.", dir, de->d_name);
        }
        closedir(d);
}

int program_registry_load(Manager *m) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_free_ char *dir = NULL;
        int rc, r;

        r = db_prepare(m->db, "SELECT id, uid, gid, title, spec, created_usec, provider, image FROM programs", &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                Program *p = NULL;

                if (program_from_row(st, &p) < 0)
                        continue;
                p->old_layers = true;  /* a re-upload's jobs may have run until the restart */
                r = program_attach(m, p);
                if (r < 0) {
                        program_free(p);
                        return log_error_errno(r, "Failed to register program: %m");
                }
                /* The artifact of a re-upload that never finished (a squashfs it left is not the
                 * program's layer: collected with the earlier ones). */
                _cleanup_free_ char *artifact = NULL;
                if (asprintf(&artifact, "%s/" PROGRAM_ARTIFACT, p->dir) >= 0)
                        (void) unlink(artifact);
        }
        if (rc != SQLITE_DONE)
                return log_error_errno(db_errno(rc), "Failed to read programs: %s", sqlite3_errmsg(m->db));
        log_info("Loaded %zu programs.", hashmap_size(m->programs));
        program_remove_orphans(m);
        r = program_registry_upload_dir(m, &dir);
        if (r < 0)
                return log_oom();
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Cannot create %s: %m", dir);
        return 0;
}

static ProgramUpload *upload_free(ProgramUpload *u) {
        if (!u)
                return NULL;
        worker_process_free(u->worker);   /* kills a worker still running */
        if (u->program && u->replacing && u->program->squashfs_path)
                (void) unlink(u->program->squashfs_path);
        else if (u->program && u->program->dir)
                (void) rm_rf(u->program->dir);
        if (u->artifact)
                (void) unlink(u->artifact);
        program_free(u->program);
        free(u->artifact);
        free(u->message);
        free(u);
        return NULL;
}

void program_registry_free(Manager *m) {
        Program *p;

        while (uploads) {
                ProgramUpload *u = uploads;
                uploads = u->next;
                upload_free(u);
        }
        HASHMAP_FOREACH(p, m->programs)
                program_free(p);
        m->programs = hashmap_free(m->programs);
}

Program *program_registry_get(Manager *m, const char *id) {
        return job_id_is_valid(id) ? hashmap_get(m->programs, id) : NULL;
}

Program *program_registry_find(Manager *m, uid_t uid, const char *title) {
        Program *p;

        HASHMAP_FOREACH(p, m->programs)
                if (!p->provider && p->uid == uid && streq(p->title, title))
                        return p;
        return NULL;
}

Program *program_registry_find_provider(Manager *m, const char *provider, const char *title) {
        Program *p;

        HASHMAP_FOREACH(p, m->programs)
                if (p->provider && streq(p->provider, provider) && streq(p->title, title))
                        return p;
        return NULL;
}

Program *program_registry_lookup(Manager *m, const Caller *c, const char *provider, const char *title) {
        Program *p;

        if (!provider)
                return program_registry_find(m, c->uid, title);
        p = program_registry_find_provider(m, provider, title);
        return p && program_role(m, c, p) != PROGRAM_ROLE_NONE ? p : NULL;
}

/* The caller's own programs first, then providers' by provider; by title within each. */
static int compare_titles(const void *a, const void *b) {
        const Program *x = *(Program * const *) a, *y = *(Program * const *) b;

        if (!x->provider != !y->provider)
                return x->provider ? 1 : -1;
        if (x->provider && !streq(x->provider, y->provider))
                return strcmp(x->provider, y->provider);
        return strcmp(x->title, y->title);
}

Program **program_registry_list(Manager *m, const Caller *c, size_t *ret_n) {
        Program **l = calloc(hashmap_size(m->programs) + 1, sizeof(Program *)), *p;
        size_t n = 0;

        if (!l)
                return NULL;
        HASHMAP_FOREACH(p, m->programs)
                if (program_role(m, c, p) != PROGRAM_ROLE_NONE)
                        l[n++] = p;
        qsort(l, n, sizeof(Program *), compare_titles);
        if (ret_n)
                *ret_n = n;
        return l;
}

/* Titles are unique per owner for own programs, per provider for shared ones. */
static bool title_is_uploading(const Program *p) {
        for (ProgramUpload *u = uploads; u; u = u->next)
                if (streq(u->program->title, p->title) && !u->program->provider == !p->provider &&
                    (!p->provider || streq(u->program->provider, p->provider)) &&
                    (p->provider || u->program->uid == p->uid))
                        return true;
        return false;
}

static int program_exists_error(const Program *p, const char *hint, GwError *e) {
        if (p->provider)
                return gw_error_set(e, GW_ERROR_ALREADY_EXISTS, "Provider %s has a program '%s' already%s.", p->provider, p->title, hint);
        return gw_error_set(e, GW_ERROR_ALREADY_EXISTS, "You have a program '%s' already%s.", p->title, hint);
}

/* The error of a failed write of program p's row (rc from sqlite3_step()). */
static int program_store_error(Manager *m, const Program *p, int rc, GwError *e) {
        int r = db_errno(rc);

        log_error("Failed to store program %s: %s", p->id, sqlite3_errmsg(m->db));
        if (errno_is_disk_full(r))
                return gw_error_set_errno(e, r, "The state file system is full: cannot store the program.");
        return gw_error_set_errno(e, r, "Database error while storing the program.");
}

/* A re-upload: the program's row gets the new spec (its layer included). */
static int program_update(Manager *m, const Program *p, GwError *e) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        json_object *spec;
        int rc, r;

        r = db_prepare(m->db, "UPDATE programs SET gid = ?, spec = ?, uid = ?, image = ? WHERE id = ?", &st);
        if (r < 0)
                return gw_error_set_errno(e, r, "Database error.");
        spec = program_spec_to_json(p);
        if (!spec)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        sqlite3_bind_int64(st, 1, p->gid);
        sqlite3_bind_text(st, 2, json_text(spec), -1, SQLITE_TRANSIENT);
        json_object_put(spec);
        sqlite3_bind_int64(st, 3, p->uid);  /* a provider's program: its last uploader */
        sqlite3_bind_text(st, 4, p->image, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, p->id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return program_store_error(m, p, rc, e);
        if (sqlite3_changes(m->db) == 0)
                return gw_error_set(e, GW_ERROR_CONFLICT, "Program '%s' was removed while it was uploaded again.", p->title);
        return 0;
}

/* The new upload takes the old one's place; the old layer stays for its running jobs. */
static int program_replace(Manager *m, Program *p, GwError *e) {
        Program *old = program_registry_get(m, p->id);
        int r;

        if (!old)
                return gw_error_set(e, GW_ERROR_CONFLICT, "Program '%s' was removed while it was uploaded again.", p->title);
        r = program_update(m, p, e);
        if (r < 0)
                return r;
        p->old_layers = true;
        hashmap_remove(m->programs, old->id);
        program_free(old);
        r = program_attach(m, p);
        if (r < 0)
                /* the row is updated; a restart picks it up */
                return gw_error_set_errno(e, r, "Failed to register the program.");
        return 0;
}

static int program_insert(Manager *m, const Program *p, GwError *e) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        json_object *spec;
        int rc, r;

        r = db_prepare(m->db, "INSERT INTO programs (id, uid, gid, title, spec, created_usec, provider, image) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", &st);
        if (r < 0)
                return gw_error_set_errno(e, r, "Database error.");
        spec = program_spec_to_json(p);
        if (!spec)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, p->uid);
        sqlite3_bind_int64(st, 3, p->gid);
        sqlite3_bind_text(st, 4, p->title, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, json_text(spec), -1, SQLITE_TRANSIENT);
        json_object_put(spec);
        sqlite3_bind_int64(st, 6, (sqlite3_int64) p->created_usec);
        sqlite3_bind_text(st, 7, p->provider, -1, SQLITE_STATIC);  /* NULL: the uploader's own */
        sqlite3_bind_text(st, 8, p->image, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if ((rc & 0xff) == SQLITE_CONSTRAINT)
                return program_exists_error(p, "", e);
        if (rc != SQLITE_DONE)
                return program_store_error(m, p, rc, e);
        return 0;
}

static void upload_unlink(ProgramUpload *u) {
        for (ProgramUpload **p = &uploads; *p; p = &(*p)->next)
                if (*p == u) {
                        *p = u->next;
                        return;
                }
}

static void on_upload_event(WorkerProcess *w, const WorkerEvent *ev, void *userdata) {
        ProgramUpload *u = userdata;
        json_object *v;

        if (ev->kind == WORKER_EVENT_DONE) {
                u->done = true;
                u->program->entrypoint_executable =
                        json_object_object_get_ex(ev->object, "entrypointExecutable", &v) && json_object_get_boolean(v);
                u->program->files = json_get_u64(ev->object, "files");
                u->program->size = json_get_u64(ev->object, "size");
        } else if (ev->kind == WORKER_EVENT_STATUS && ev->status.message) {
                u->invalid = ev->status.status && streq(ev->status.status, "INVALID");
                (void) free_and_strdup(&u->message, ev->status.message);
        }
}

static void on_upload_exit(WorkerProcess *w, int status, void *userdata) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        ProgramUpload *u = userdata;
        Manager *m = u->manager;
        Program *added = NULL;
        int r;

        upload_unlink(u);
        u->worker = worker_process_free(u->worker);  /* it has exited */
        (void) unlink(u->artifact);                   /* the squashfs is all we keep */
        if (status != 0 || !u->done) {
                if (u->invalid)
                        gw_error_set(&e, GW_ERROR_INVALID_ARGUMENT, "The artifact is refused: %s", u->message);
                else
                        gw_error_set(&e, GW_ERROR_INTERNAL, "Cannot prepare the program: %s",
                                     u->message ?: "the worker failed");
        } else if (u->replacing) {
                if (program_replace(m, u->program, &e) >= 0) {
                        added = TAKE_PTR(u->program);
                        log_info("Program '%s' (%s) of uid %u replaced by a new upload: %" PRIu64 " files, %" PRIu64 " bytes.",
                                 added->title, added->id, (unsigned) added->uid, added->files, added->size);
                        program_deploy_layer(m, added);
                        program_collect_layers(m, added, NULL);
                }
        } else if (program_insert(m, u->program, &e) >= 0) {
                added = u->program;
                r = program_attach(m, added);
                if (r < 0) {
                        /* the row exists; a restart picks it up */
                        gw_error_set_errno(&e, r, "Failed to register the program.");
                        added = NULL;
                } else {
                        u->program = NULL;
                        log_info("Program '%s' (%s) of uid %u uploaded: %" PRIu64 " files, %" PRIu64 " bytes.",
                                 added->title, added->id, (unsigned) added->uid, added->files, added->size);
                        program_deploy_layer(m, added);
                }
        }
        if (u->cb)
                u->cb(m, added, &e, u->userdata);
        manager_busy_unref(m);
        upload_free(u);
}

static size_t n_dependencies(const Program *p) {
        return p->dependencies && json_object_is_type(p->dependencies, json_type_array)
                ? json_object_array_length(p->dependencies) : 0;
}

/* image: the base image to check the declared dependencies against (NULL: none declared). */
static int upload_spawn(ProgramUpload *u, const Image *image) {
        Manager *m = u->manager;
        Config *c = m->config;
        Program *p = u->program;
        size_t n_deps = image ? n_dependencies(p) : 0;
        _cleanup_strv_free_ char **argv = calloc(14 + n_deps, sizeof(char *));
        WorkerOptions o = {};
        WorkerCallbacks cb = { .on_event = on_upload_event, .on_exit = on_upload_exit };
        size_t n = 0;

        if (!argv)
                return -ENOMEM;
        if (!(argv[n++] = strdup("program")) || !(argv[n++] = strdup("--events-fd=3")) ||
            /* none: a program on an image of its own runs the image's entrypoint */
            (p->entrypoint && asprintf(&argv[n++], "--entrypoint=%s", p->entrypoint) < 0) ||
            asprintf(&argv[n++], "--uid=%u", p->provider ? 0U : (unsigned) p->uid) < 0 ||
            asprintf(&argv[n++], "--gid=%u", p->provider ? 0U : (unsigned) p->gid) < 0 ||
            asprintf(&argv[n++], "--image-size-max=%" PRIu64, c->image_size_max) < 0 ||
            asprintf(&argv[n++], "--image-files-max=%u", c->image_files_max) < 0) {
                argv[n - 1] = NULL;
                return -ENOMEM;
        }
        /* a provider's program runs as its users: its files are root's, readable by all */
        if (p->provider && !(argv[n++] = strdup("--shared")))
                return -ENOMEM;
        /* no network installs: the base image must have them (docs/programs.md) */
        if (n_deps > 0 &&
            (asprintf(&argv[n++], "--check-image=%s", image->squashfs_path) < 0 ||
             asprintf(&argv[n++], "--runtime-dir=%s/worker", m->runtime_dir) < 0)) {
                argv[n - 1] = NULL;
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_deps; i++)
                if (asprintf(&argv[n++], "--dependency=%s",
                             json_object_get_string(json_object_array_get_idx(p->dependencies, i))) < 0) {
                        argv[n - 1] = NULL;
                        return -ENOMEM;
                }
        if (!(argv[n++] = strdup("--")) || !(argv[n++] = strdup(u->artifact)) ||
            !(argv[n++] = strdup(p->squashfs_path))) {
                argv[n - 1] = NULL;
                return -ENOMEM;
        }
        o.argv = argv;
        return worker_process_spawn(m, &o, &cb, u, &u->worker);
}

/* The base image is READY (or could not be made so): check the artifact and the dependencies. */
static void on_check_image_ready(Manager *m, Image *image, const GwError *error, void *userdata) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_free_ char *id = userdata;
        ProgramUpload *u;
        int r;

        /* By the program's id: an upload freed meanwhile (shutdown) is simply gone. */
        for (u = uploads; u; u = u->next)
                if (u->program && streq(u->program->id, id) && !u->worker)
                        break;
        if (!u)
                return;

        if ((error && gw_error_is_set(error)) || !image)
                gw_error_set(&e, GW_ERROR_UNAVAILABLE, "Cannot check the dependencies: %s is not available: %s",
                             u->program->image ? "the program's image" : "ProgramImage",
                             error && error->message ? error->message : "no image");
        else if ((r = upload_spawn(u, image)) < 0)
                gw_error_set_errno(&e, r, "Cannot start the worker: %s", strerror(-r));
        if (!gw_error_is_set(&e))
                return;
        upload_unlink(u);
        (void) unlink(u->artifact);
        if (u->cb)
                u->cb(m, NULL, &e, u->userdata);
        manager_busy_unref(m);
        upload_free(u);
}

/* ---- a program's own image (docs/programs.md, "Images of programs") ---- */

int program_registry_check_image(Manager *m, const char *reference, char **ret_normalized, GwError *e) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        int r;

        r = image_reference_parse_field(m, "image", reference, &ref, e);
        if (r < 0)
                return r;
        if (!config_program_image_permitted(m->config, reference))
                return gw_error_set(e, GW_ERROR_ACCESS_DENIED,
                                    m->config->program_images && m->config->program_images[0]
                                    ? "image: '%s' is not one of the images programs may name here (ProgramImages)."
                                    : "image: '%s': programs cannot name an image here; they run on ProgramImage.",
                                    reference);
        /* as for a pull: a registry the site did not configure is never connected to */
        r = image_reference_check_location(m, "image", ref, e);
        if (r < 0)
                return r;
        if (ret_normalized && !(*ret_normalized = image_reference_to_string(ref)))
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        return 0;
}

/* An upload without an artifact (a program on an image of its own) gets an empty one: its layer
 * is an empty /program, and everything else is as for any program. */
static int write_empty_artifact(const char *path) {
        static const char end_of_archive[1024] = {};
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

        if (fd < 0)
                return -errno;
        return loop_write(fd, end_of_archive, sizeof(end_of_archive));
}

static int upload_check_image(Manager *m, Program *p, const char *artifact_path, GwError *e) {
        char *normalized = NULL;
        int r;

        if (!artifact_path && !p->image)
                return gw_error_set(e, GW_ERROR_BAD_REQUEST,
                                    "The upload must carry the program's artifact (a tar or tar.gz), or name an image.");
        if (!artifact_path && p->entrypoint)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                    "entrypoint: '%s' would be a file in the artifact, but the upload has none "
                                    "(without one, the image's own entrypoint runs).", p->entrypoint);
        if (!p->image)
                return 0;
        r = program_registry_check_image(m, p->image, &normalized, e);
        if (r < 0)
                return r;
        free(p->image);
        p->image = normalized;
        return 0;
}

int program_registry_upload(Manager *m, const Caller *c, Program *meta, const char *artifact_path, bool replace,
                            ProgramUploaded cb, void *userdata, GwError *e) {
        _cleanup_(program_freep) Program *p = meta;
        _cleanup_free_ char *dir = NULL;
        Program *existing;
        ProgramUpload *u;
        int r;

        /* who may upload for the provider first: its image is the admins' business */
        r = program_provider_check_upload(m, c, p->provider, e);
        if (r < 0)
                return r;
        r = upload_check_image(m, p, artifact_path, e);
        if (r < 0)
                return r;
        if (n_dependencies(p) > 0 && !program_image(p, m->config->program_image))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                    "dependencies: cannot be checked without ProgramImage (nothing is installed over the network).");
        p->uid = c->uid;
        if (title_is_uploading(p))
                return gw_error_set(e, GW_ERROR_ALREADY_EXISTS, "Program '%s' is being uploaded already; wait for that upload.", p->title);
        existing = p->provider ? program_registry_find_provider(m, p->provider, p->title) : program_registry_find(m, c->uid, p->title);
        if (existing && !replace)
                return program_exists_error(p, "; remove it first, or replace it", e);
        r = existing ? (p->id = strdup(existing->id)) ? 0 : -ENOMEM : job_id_new(&p->id);
        if (r < 0)
                return gw_error_set_errno(e, r, "Cannot generate a program id.");
        r = program_layer_new(&p->layer);
        if (r < 0)
                return gw_error_set_errno(e, r, "Cannot generate a layer id.");
        p->uid = c->uid;
        p->gid = c->gid != (gid_t) -1 ? c->gid : (gid_t) 65534;
        p->created_usec = existing ? existing->created_usec : now_realtime_usec();
        if (programs_dir(m, &dir) < 0 || asprintf(&p->dir, "%s/%s", dir, p->id) < 0 ||
            asprintf(&p->squashfs_path, "%s/%s.squashfs", p->dir, p->layer) < 0)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        if (!existing && mkdir(p->dir, 0700) < 0)
                return gw_error_set_errno(e, -errno, "Cannot create the program's directory: %m");

        u = calloc(1, sizeof(ProgramUpload));
        if (!u) {
                if (!existing)
                        (void) rm_rf(p->dir);
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        }
        *u = (ProgramUpload) { .manager = m, .program = TAKE_PTR(p), .cb = cb, .userdata = userdata,
                               .replacing = existing != NULL };
        if (asprintf(&u->artifact, "%s/" PROGRAM_ARTIFACT, u->program->dir) < 0) {
                u->artifact = NULL;
                upload_free(u);
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        }
        /* the same file system: the upload is not copied */
        r = !artifact_path ? write_empty_artifact(u->artifact) : rename(artifact_path, u->artifact) < 0 ? -errno : 0;
        if (r < 0) {
                upload_free(u);
                return gw_error_set_errno(e, r, "Cannot take the artifact: %s", strerror(-r));
        }
        if (n_dependencies(u->program) == 0) {
                r = upload_spawn(u, NULL);
                if (r < 0) {
                        upload_free(u);
                        return gw_error_set_errno(e, r, "Cannot start the worker: %s", strerror(-r));
                }
        }
        u->next = uploads;
        uploads = u;
        manager_busy_ref(m);
        /* Declared dependencies are checked against the base image, pulled on demand as for a
         * job (the callback may come at once). */
        if (n_dependencies(u->program) > 0) {
                char *id = strdup(u->program->id);

                r = id ? image_registry_ensure_ready(m, platform_default(m)->name,
                                                     program_image(u->program, m->config->program_image),
                                                     u->program->uid, on_check_image_ready, id) : -ENOMEM;
                if (r < 0) {
                        free(id);
                        /* no callback comes */
                        upload_unlink(u);
                        manager_busy_unref(m);
                        upload_free(u);
                        return gw_error_set_errno(e, r, "Cannot request %s to check the dependencies: %s",
                                                  u->program->image ? "the program's image" : "ProgramImage", strerror(-r));
                }
        }
        return 0;
}

static bool program_in_use(Manager *m, const Program *p, const Job *except) {
        Job *j;

        HASHMAP_FOREACH(j, m->jobs)
                if (j != except && j->program_id && streq(j->program_id, p->id) && !job_state_is_terminal(j->state))
                        return true;
        return false;
}

int program_registry_remove(Manager *m, Program *p, GwError *e) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        if (program_in_use(m, p, NULL))
                return gw_error_set(e, GW_ERROR_CONFLICT, "Program '%s' has unfinished jobs; cancel them or wait.", p->title);
        r = db_prepare(m->db, "DELETE FROM programs WHERE id = ?", &st);
        if (r < 0)
                return gw_error_set_errno(e, r, "Database error.");
        sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
                return gw_error_set_errno(e, -EIO, "Database error while removing program '%s': %s", p->title,
                                          sqlite3_errmsg(m->db));
        hashmap_remove(m->programs, p->id);
        /* its layers, current and earlier, wherever platforms keep copies */
        p->old_layers = true;
        program_collect_layers(m, p, NULL);
        layer_remove_everywhere(m, p->layer);
        r = rm_rf(p->dir);
        if (r < 0)
                log_warning_errno(r, "Cannot remove %s of program %s (it is removed at the next start): %m", p->dir, p->id);
        lingering_mounts_sweep(m);
        log_info("Program '%s' (%s) of uid %u removed.", p->title, p->id, (unsigned) p->uid);
        program_free(p);
        return 0;
}

const PlatformLayerHooks program_layer_hooks = {
        .foreach_layer = program_registry_foreach_layer,
};
