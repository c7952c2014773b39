/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "image-pull.h"
#include "image-registry.h"
#include "image-shifter-meta.h"
#include "json-util.h"
#include "lingering-mounts.h"
#include "log.h"
#include "manager.h"
#include "platform.h"
#include "registry-events.h"
#include "reference.h"
#include "time-util.h"

typedef struct ImageTag {
        char *key;       /* "<platform>\n<reference>" */
        char *image_id;
} ImageTag;

static ImageTag *image_tag_free(ImageTag *t) {
        if (t) {
                free(t->key);
                free(t->image_id);
                free(t);
        }
        return NULL;
}

static char *tag_key(const char *platform, const char *reference) {
        char *k = NULL;
        return asprintf(&k, "%s\n%s", platform, reference) < 0 ? NULL : k;
}

static const char *default_platform_name(Manager *m) {
        ConfigPlatform *p = config_platform_default(m->config);
        return p ? p->name : "local";
}

/* The default platform's record keeps the object path by id alone (what a site with one platform
 * has); another platform's is "<id>@<platform>" (encoded), see image_object_find(). */
static int image_attach(Manager *m, Image *i) {
        _cleanup_free_ char *name = NULL;
        int r;

        i->manager = m;
        i->key = tag_key(i->platform, i->id);
        if (!i->key)
                return -ENOMEM;
        if (!streq(i->platform, default_platform_name(m)) && asprintf(&name, "%s@%s", i->id, i->platform) < 0)
                return -ENOMEM;
        r = sd_bus_path_encode("/org/gatewayd/Gateway1/image", name ?: i->id, &i->object_path);
        if (r < 0)
                return r;
        return hashmap_put(m->images, i->key, i);
}

static int acl_from_json(Image *i, const char *text) {
        json_object *o = json_tokener_parse(text), *uids, *gids;
        int r = -EBADMSG;

        if (!o)
                return -EBADMSG;
        if (json_object_object_get_ex(o, "uids", &uids) && json_object_object_get_ex(o, "gids", &gids)) {
                size_t nu = json_object_array_length(uids), ng = json_object_array_length(gids);
                uid_t u[nu + 1];
                gid_t g[ng + 1];

                for (size_t k = 0; k < nu; k++)
                        u[k] = (uid_t) json_object_get_int64(json_object_array_get_idx(uids, k));
                for (size_t k = 0; k < ng; k++)
                        g[k] = (gid_t) json_object_get_int64(json_object_array_get_idx(gids, k));
                i->acl_uids = nu ? memdup(u, nu * sizeof(uid_t)) : NULL;
                i->acl_gids = ng ? memdup(g, ng * sizeof(gid_t)) : NULL;
                i->n_acl_uids = nu;
                i->n_acl_gids = ng;
                i->private_image = true;
                r = 0;
        }
        json_object_put(o);
        return r;
}

static char *acl_to_json(const Image *i) {
        json_object *o, *u, *g;
        char *s;

        if (!i->private_image)
                return NULL;
        o = json_object_new_object();
        u = json_object_new_array();
        g = json_object_new_array();
        for (size_t k = 0; k < i->n_acl_uids; k++)
                json_object_array_add(u, json_object_new_int64(i->acl_uids[k]));
        for (size_t k = 0; k < i->n_acl_gids; k++)
                json_object_array_add(g, json_object_new_int64(i->acl_gids[k]));
        json_object_object_add(o, "uids", u);
        json_object_object_add(o, "gids", g);
        s = strdup(json_text(o));
        json_object_put(o);
        return s;
}

static char *column_strdup(sqlite3_stmt *st, int c) {
        const char *t = (const char *) sqlite3_column_text(st, c);
        return t ? strdup(t) : NULL;
}

static int image_from_row(sqlite3_stmt *st, Image **ret) {
        _cleanup_(image_freep) Image *i = calloc(1, sizeof(Image));

        if (!i)
                return -ENOMEM;
        i->id = column_strdup(st, 0);
        i->reference = column_strdup(st, 1);
        i->platform = column_strdup(st, 2);
        i->status = image_status_from_string((const char *) sqlite3_column_text(st, 3));
        i->status_message = column_strdup(st, 4);
        i->size = (uint64_t) sqlite3_column_int64(st, 5);
        i->squashfs_path = column_strdup(st, 6);
        i->meta_path = column_strdup(st, 7);
        if (sqlite3_column_type(st, 8) != SQLITE_NULL && acl_from_json(i, (const char *) sqlite3_column_text(st, 8)) < 0)
                return -EBADMSG;
        i->created_usec = (uint64_t) sqlite3_column_int64(st, 9);
        i->updated_usec = (uint64_t) sqlite3_column_int64(st, 10);
        i->last_used_usec = (uint64_t) sqlite3_column_int64(st, 11);
        if (!i->id || !i->reference || !i->platform || i->status < 0)
                return -EBADMSG;
        if (asprintf(&i->digest, "sha256:%s", i->id) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(i);
        return 0;
}

static int image_registry_put_tag(Manager *m, const char *platform, const char *reference, const char *image_id) {
        ImageTag *t;
        char *key = tag_key(platform, reference);

        if (!key)
                return -ENOMEM;
        t = hashmap_get(m->image_tags, key);
        if (t) {
                free(key);
                return free_and_strdup(&t->image_id, image_id);
        }
        t = calloc(1, sizeof(ImageTag));
        if (!t || !(t->image_id = strdup(image_id))) {
                free(t);
                free(key);
                return -ENOMEM;
        }
        t->key = key;
        return hashmap_put(m->image_tags, t->key, t);
}

static int image_registry_load_tags(Manager *m) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc, r;

        r = db_prepare(m->db, "SELECT platform, reference, image_id FROM image_tags", &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = image_registry_put_tag(m, (const char *) sqlite3_column_text(st, 0),
                                           (const char *) sqlite3_column_text(st, 1),
                                           (const char *) sqlite3_column_text(st, 2));
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

void image_registry_transfer_done(Image *i, int r, const char *message) {
        if (i->status != IMAGE_TRANSFER)
                return;
        if (r < 0)
                log_warning("Image %s (%s) could not be copied to platform %s: %s", i->id, i->reference, i->platform,
                            strna(message));
        (void) image_registry_set_status(i, r < 0 ? IMAGE_FAILURE : IMAGE_READY,
                                         r < 0 ? message ?: "The image could not be copied to the platform's nodes." : NULL);
        registry_publish_image(i->manager, REGISTRY_IMAGE_CHANGED, i);
}

/* A conversion that was complete when gatewayd stopped during its TRANSFER is copied again
 * (the nodes hold no torn copy: they install only whole files). Returns whether it was. */
static bool image_registry_resume_transfer(Image *i) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Platform *p = platform_get(i->manager, i->platform);
        int r;

        if (!p || !i->squashfs_path || access(i->squashfs_path, R_OK) < 0)
                return false;
        log_notice("Image %s (%s) was being copied to platform %s when gatewayd stopped; copying it again.",
                   i->id, i->reference, i->platform);
        r = platform_deploy_image(p, i, &e);
        if (r <= 0)
                image_registry_transfer_done(i, r, e.message);
        return true;
}

/* A pull does not survive gatewayd: its worker died with us and never published a half-written
 * image, so the record is failed, never left PULLING. */
static int image_registry_fail_interrupted(Manager *m) {
        Image *i;
        int r;

        HASHMAP_FOREACH(i, m->images) {
                if (i->status == IMAGE_TRANSFER && image_registry_resume_transfer(i))
                        continue;
                if (i->status != IMAGE_PENDING && i->status != IMAGE_PULLING && i->status != IMAGE_CONVERSION &&
                    i->status != IMAGE_TRANSFER)
                        continue;
                log_notice("Image %s (%s) was being pulled when gatewayd stopped; marking it failed.", i->id, i->reference);
                r = image_registry_set_status(i, IMAGE_FAILURE, "Pull interrupted by a restart of gatewayd; pull again.");
                if (r < 0)
                        /* e.g. a full disk: start anyway (the record stays as it was, and the
                         * next start tries again), rather than not serving at all */
                        log_warning_errno(r, "Cannot mark image %s failed: %m", i->id);
        }
        return 0;
}

int image_registry_load(Manager *m) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc, r;

        m->images = hashmap_new();
        m->image_tags = hashmap_new();
        m->pulls = hashmap_new();
        if (!m->images || !m->image_tags || !m->pulls)
                return log_oom();

        r = db_prepare(m->db,
                       "SELECT id, reference, platform, status, message, size, squashfs, meta, acl, "
                       "created_usec, updated_usec, last_used_usec FROM images", &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                Image *i = NULL;

                r = image_from_row(st, &i);
                if (r < 0) {
                        log_error_errno(r, "Skipping unreadable image record: %m");
                        continue;
                }
                r = image_attach(m, i);
                if (r < 0) {
                        image_free(i);
                        return log_error_errno(r, "Failed to register image: %m");
                }
        }
        if (rc != SQLITE_DONE)
                return log_error_errno(db_errno(rc), "Failed to read images: %s", sqlite3_errmsg(m->db));
        sqlite3_finalize(TAKE_PTR(st));

        /* After the SELECT is done: rewriting rows under an open cursor could show them twice. */
        r = image_registry_fail_interrupted(m);
        if (r < 0)
                return r;

        r = image_registry_load_tags(m);
        if (r < 0)
                return log_error_errno(r, "Failed to read image tags: %m");

        log_info("Loaded %zu images.", hashmap_size(m->images));
        return 0;
}

void image_registry_free(Manager *m) {
        Image *i;
        ImageTag *t;

        image_pulls_free(m);
        HASHMAP_FOREACH(i, m->images)
                image_free(i);
        m->images = hashmap_free(m->images);
        HASHMAP_FOREACH(t, m->image_tags)
                image_tag_free(t);
        m->image_tags = hashmap_free(m->image_tags);
        m->expiry_timer = sd_event_source_disable_unref(m->expiry_timer);
}

Image *image_registry_get(Manager *m, const char *platform, const char *id) {
        _cleanup_free_ char *key = tag_key(platform, id);
        return key ? hashmap_get(m->images, key) : NULL;
}

/* By id without a platform: the default platform's record, else that of the first configured
 * platform that has one (the only one, usually), else one of a platform no longer configured. */
static Image *image_registry_get_any(Manager *m, const char *id) {
        Image *i = image_registry_get(m, default_platform_name(m), id);

        for (size_t k = 0; !i && k < m->config->n_platforms; k++)
                i = image_registry_get(m, m->config->platforms[k].name, id);
        if (i)
                return i;
        HASHMAP_FOREACH(i, m->images)
                if (streq(i->id, id))
                        return i;
        return NULL;
}

Image *image_registry_lookup(Manager *m, const char *platform, const char *s) {
        const char *id = strneq(s, "sha256:", 7) ? s + 7 : s;
        Image *i = platform ? image_registry_get(m, platform, id) : image_registry_get_any(m, id);

        return i ?: image_registry_lookup_on(m, platform ?: default_platform_name(m), s);
}

static bool user_in_group(uid_t uid, gid_t primary, gid_t wanted) {
        struct passwd *pw;
        gid_t groups[256];
        int n = ELEMENTSOF(groups);

        if (primary == wanted)
                return true;
        pw = getpwuid(uid);
        if (!pw || getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
                return false;
        for (int k = 0; k < n; k++)
                if (groups[k] == wanted)
                        return true;
        return false;
}

bool image_is_visible(const Image *i, const Caller *c) {
        if (!i->private_image || caller_is_root(c))
                return true;
        for (size_t k = 0; k < i->n_acl_uids; k++)
                if (i->acl_uids[k] == c->uid)
                        return true;
        for (size_t k = 0; k < i->n_acl_gids; k++)
                if (user_in_group(c->uid, c->gid, i->acl_gids[k]))
                        return true;
        return false;
}

int image_registry_save(Image *i) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_free_ char *acl = acl_to_json(i);
        Manager *m = i->manager;
        int rc, r;

        /* An upsert, never REPLACE: REPLACE deletes the row first, and with it (ON DELETE CASCADE
         * up to schema 3) every tag that references it. */
        r = db_prepare(m->db,
                       "INSERT INTO images (id, reference, platform, status, message, size, squashfs, meta, acl, "
                       "created_usec, updated_usec, last_used_usec) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                       "ON CONFLICT (platform, id) DO UPDATE SET reference = excluded.reference, "
                       "status = excluded.status, message = excluded.message, size = excluded.size, "
                       "squashfs = excluded.squashfs, meta = excluded.meta, acl = excluded.acl, "
                       "created_usec = excluded.created_usec, updated_usec = excluded.updated_usec, "
                       "last_used_usec = excluded.last_used_usec", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, i->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, i->reference, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, i->platform, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, image_status_to_string(i->status), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, i->status_message, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, (sqlite3_int64) i->size);
        sqlite3_bind_text(st, 7, i->squashfs_path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, i->meta_path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, acl, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 10, (sqlite3_int64) i->created_usec);
        sqlite3_bind_int64(st, 11, (sqlite3_int64) i->updated_usec);
        sqlite3_bind_int64(st, 12, (sqlite3_int64) i->last_used_usec);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return log_error_errno(db_errno(rc), "Failed to store image %s: %s", i->id, sqlite3_errmsg(m->db));
        return 0;
}

int image_registry_add(Manager *m, const char *id, const char *digest, const char *reference, const char *platform,
                       Image **ret) {
        _cleanup_(image_freep) Image *n = NULL;
        Image *i;
        int r;

        i = image_registry_get(m, platform, id);
        if (i) {
                *ret = i;
                return 0;
        }

        n = calloc(1, sizeof(Image));
        if (!n)
                return -ENOMEM;
        n->id = strdup(id);
        n->digest = strdup(digest);
        n->reference = strdup(reference);
        n->platform = strdup(platform);
        if (!n->id || !n->digest || !n->reference || !n->platform)
                return -ENOMEM;
        n->status = IMAGE_PENDING;
        n->created_usec = n->updated_usec = n->last_used_usec = now_realtime_usec();
        n->manager = m;

        r = image_registry_save(n);
        if (r < 0)
                return r;
        i = TAKE_PTR(n);
        r = image_attach(m, i);
        if (r < 0) {
                image_free(i);
                return r;
        }
        /* Not announced yet: the caller first decides whether the image is private. */
        *ret = i;
        return 0;
}

int image_registry_set_status(Image *i, ImageStatus status, const char *message) {
        int r;

        if (i->status == status && streq(strempty(i->status_message), strempty(message)))
                return 0;
        i->status = status;
        r = free_and_strdup(&i->status_message, message);
        if (r < 0)
                return r;
        i->updated_usec = now_realtime_usec();
        r = image_registry_save(i);
        if (r < 0)
                return r;
        log_info("Image %s (%s): %s%s%s", i->id, i->reference, image_status_to_string(status),
                 message ? ": " : "", strempty(message));
        registry_publish_image(i->manager, REGISTRY_IMAGE_CHANGED, i);
        return 0;
}

int image_registry_tag(Image *i, const char *reference) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        Manager *m = i->manager;
        int rc, r;

        r = db_prepare(m->db,
                       "INSERT INTO image_tags (reference, platform, image_id) VALUES (?,?,?) "
                       "ON CONFLICT (reference, platform) DO UPDATE SET image_id = excluded.image_id", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, reference, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, i->platform, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, i->id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return log_error_errno(db_errno(rc), "Failed to tag image %s: %s", i->id, sqlite3_errmsg(m->db));
        return image_registry_put_tag(m, i->platform, reference, i->id);
}

static bool id_in(const uint32_t *l, size_t n, uint32_t id) {
        for (size_t k = 0; k < n; k++)
                if (l[k] == id)
                        return true;
        return false;
}

int image_registry_set_acl(Image *i, const uid_t *uids, size_t n_uids, const gid_t *gids, size_t n_gids) {
        /* Merges: an image pulled privately by two users is visible to both. */
        uid_t *u = realloc(i->acl_uids, (i->n_acl_uids + n_uids + 1) * sizeof(uid_t));
        gid_t *g;

        if (!u)
                return -ENOMEM;
        i->acl_uids = u;
        /* Each id once: a re-pull of the same private image must not grow the list. */
        for (size_t k = 0; k < n_uids; k++)
                if (!id_in(i->acl_uids, i->n_acl_uids, uids[k]))
                        i->acl_uids[i->n_acl_uids++] = uids[k];
        g = realloc(i->acl_gids, (i->n_acl_gids + n_gids + 1) * sizeof(gid_t));
        if (!g)
                return -ENOMEM;
        i->acl_gids = g;
        for (size_t k = 0; k < n_gids; k++)
                if (!id_in(i->acl_gids, i->n_acl_gids, gids[k]))
                        i->acl_gids[i->n_acl_gids++] = gids[k];
        i->private_image = true;
        return image_registry_save(i);
}

int image_registry_clear_acl(Image *i) {
        i->acl_uids = mfree(i->acl_uids);
        i->acl_gids = mfree(i->acl_gids);
        i->n_acl_uids = i->n_acl_gids = 0;
        i->private_image = false;
        return image_registry_save(i);
}

static void unlink_logged(const char *path) {
        if (path && unlink(path) < 0 && errno != ENOENT)
                log_warning("Failed to remove %s: %m", path);
}

/* Another platform's record of the same image that uses the same file on this host (platforms
 * whose image directories are the same, e.g. the local one and the SSH nodes' source). */
static Image *image_registry_file_sharer(Image *i) {
        Image *o;

        HASHMAP_FOREACH(o, i->manager->images)
                if (o != i && streq(o->id, i->id) && o->status != IMAGE_EXPIRED && o->squashfs_path &&
                    i->squashfs_path && streq(o->squashfs_path, i->squashfs_path))
                        return o;
        return NULL;
}

/* This host's files (unless another platform's record uses them), and the platform's copies (on
 * its nodes). */
static void image_unlink_files(Image *i) {
        _cleanup_free_ char *shifter_meta = NULL;
        Platform *p = platform_get(i->manager, i->platform);
        Image *sharer;
        int r;

        if (p) {
                r = platform_remove_image(p, i);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove image %s from platform %s: %m", i->id, i->platform);
        }
        sharer = image_registry_file_sharer(i);
        if (sharer) {
                log_debug("Image %s: keeping %s, platform %s uses it.", i->id, i->squashfs_path, sharer->platform);
                return;
        }
        if (image_shifter_meta_path(i, &shifter_meta) >= 0)
                unlink_logged(shifter_meta);
        unlink_logged(i->squashfs_path);
        unlink_logged(i->meta_path);
        lingering_mounts_sweep(i->manager);  /* a lingering mount of the file goes with it */
}

int image_registry_expire(Image *i, GwError *e) {
        int r;

        if (i->pull)
                return gw_error_set(e, GW_ERROR_CONFLICT, "Image %s is being pulled; try again when it is done.", i->id);
        if (i->status == IMAGE_EXPIRED)
                return 0;
        /* Record first: an EXPIRED record with files still on disk is harmless, the reverse is a
         * READY image whose file is gone. */
        r = image_registry_set_status(i, IMAGE_EXPIRED, NULL);
        if (r < 0)
                return gw_error_set_errno(e, r, "Failed to expire image %s.", i->id);
        image_unlink_files(i);
        return 0;
}

static int delete_where_id(sqlite3 *db, const char *sql, const char *platform, const char *id) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc, r;

        r = db_prepare(db, sql, &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, platform, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        return rc == SQLITE_DONE ? 0 : log_error_errno(db_errno(rc), "Failed to remove image %s: %s", id, sqlite3_errmsg(db));
}

/* The image and its tags go together. The schema does not cascade (since version 4): a tag is
 * only ever dropped on purpose, here. */
static int image_registry_delete_row(Manager *m, const char *platform, const char *id) {
        int r;

        r = db_begin(m->db);
        if (r < 0)
                return r;
        r = delete_where_id(m->db, "DELETE FROM image_tags WHERE platform = ? AND image_id = ?", platform, id);
        if (r >= 0)
                r = delete_where_id(m->db, "DELETE FROM images WHERE platform = ? AND id = ?", platform, id);
        if (r >= 0)
                r = db_commit(m->db);
        if (r < 0)
                db_rollback(m->db);
        return r;
}

int image_registry_remove(Image *i, GwError *e) {
        Manager *m = i->manager;
        ImageTag *t;
        char **dead = NULL;
        size_t n = 0, plen = strlen(i->platform);
        int r;

        if (i->pull)
                return gw_error_set(e, GW_ERROR_CONFLICT, "Image %s is being pulled; try again when it is done.", i->id);

        r = image_registry_delete_row(m, i->platform, i->id);
        if (r < 0)
                return gw_error_set_errno(e, r, "Database error while removing image %s.", i->id);

        /* Drop the in-memory mirror of the tags too. */
        dead = calloc(hashmap_size(m->image_tags) + 1, sizeof(char *));
        if (dead) {
                HASHMAP_FOREACH(t, m->image_tags)
                        if (streq(t->image_id, i->id) && strneq(t->key, i->platform, plen) && t->key[plen] == '\n')
                                dead[n++] = t->key;
                for (size_t k = 0; k < n; k++)
                        image_tag_free(hashmap_remove(m->image_tags, dead[k]));
                free(dead);
        }

        image_unlink_files(i);
        hashmap_remove(m->images, i->key);
        log_info("Removed image %s (%s) of platform %s.", i->id, i->reference, i->platform);
        registry_publish_image(m, REGISTRY_IMAGE_REMOVED, i);
        image_free(i);
        return 0;
}

static int compare_images(const void *a, const void *b) {
        return strcmp((*(Image * const *) a)->reference, (*(Image * const *) b)->reference);
}

Image **image_registry_list(Manager *m, const Caller *c) {
        size_t n = 0;
        Image **l = calloc(hashmap_size(m->images) + 1, sizeof(Image *)), *i;

        if (!l)
                return NULL;
        HASHMAP_FOREACH(i, m->images)
                if (image_is_visible(i, c))
                        l[n++] = i;
        qsort(l, n, sizeof(Image *), compare_images);
        return l;
}

static int on_expiry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t now = now_realtime_usec(), limit = m->config->image_expiration_sec * USEC_PER_SEC;
        Image **l, *i;
        size_t n = 0;

        l = calloc(hashmap_size(m->images) + 1, sizeof(Image *));
        if (l) {
                HASHMAP_FOREACH(i, m->images)
                        if (i->status == IMAGE_READY && !i->pull && i->last_used_usec + limit <= now)
                                l[n++] = i;
                for (size_t k = 0; k < n; k++) {
                        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
                        log_info("Image %s (%s) unused for longer than ImageExpirationTimeout; expiring it.",
                                 l[k]->id, l[k]->reference);
                        (void) image_registry_expire(l[k], &e);
                }
                free(l);
        }

        /* Look again at a tenth of the timeout (at most hourly, at least every second). */
        (void) sd_event_source_set_time_relative(s, MAX(MIN(limit / 10, 3600 * USEC_PER_SEC), USEC_PER_SEC));
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

int image_registry_start_expiry(Manager *m) {
        if (m->config->image_expiration_sec == 0)
                return 0;
        return sd_event_add_time_relative(m->event, &m->expiry_timer, CLOCK_MONOTONIC, 0, 0, on_expiry_timer, m);
}

void image_mark_used(Image *i) {
        i->last_used_usec = now_realtime_usec();
        /* A timestamp for ImageRetention, written with every job start: it rides along with the
         * next group commit rather than costing a commit (an fsync) of its own. */
        if (db_batch_stage(i->manager->db, /* vital= */ false) < 0)
                return (void) image_registry_save(i);
        (void) image_registry_save(i);
        db_batch_unstage(i->manager->db);
}

Image *image_registry_lookup_on(Manager *m, const char *platform, const char *reference) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_free_ char *key = NULL, *canonical = NULL;
        ImageTag *t;

        key = tag_key(platform, reference);
        t = key ? hashmap_get(m->image_tags, key) : NULL;
        if (t)
                return image_registry_get(m, platform, t->image_id);
        /* Another spelling of a pulled reference, as in image_registry_lookup(). */
        if (image_reference_parse(reference, m->config->default_image_location, &ref) < 0)
                return NULL;
        canonical = image_reference_to_string(ref);
        if (!canonical || streq(canonical, reference))
                return NULL;
        free(key);
        key = tag_key(platform, canonical);
        t = key ? hashmap_get(m->image_tags, key) : NULL;
        return t ? image_registry_get(m, platform, t->image_id) : NULL;
}

char **image_registry_tags(Image *i) {
        Manager *m = i->manager;
        size_t n = 0, plen = strlen(i->platform);
        char **l = calloc(hashmap_size(m->image_tags) + 1, sizeof(char *));
        ImageTag *t;

        if (!l)
                return NULL;
        HASHMAP_FOREACH(t, m->image_tags)
                if (streq(t->image_id, i->id) && strneq(t->key, i->platform, plen) && t->key[plen] == '\n')
                        if (!(l[n++] = strdup(t->key + plen + 1))) {
                                strv_free(l);
                                return NULL;
                        }
        return l;
}

static int image_registry_foreach_ready(Platform *p, int (*fn)(Platform *p, const Image *i, void *userdata), void *userdata) {
        Image *i;
        int r;

        HASHMAP_FOREACH(i, p->manager->images) {
                if (i->status != IMAGE_READY || !streq(i->platform, p->name))
                        continue;
                r = fn(p, i, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

const PlatformImageHooks image_platform_hooks = {
        .deployed = image_pull_on_deployed,
        .foreach_ready = image_registry_foreach_ready,
};
