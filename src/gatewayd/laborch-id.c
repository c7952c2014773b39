/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "laborch-id.h"
#include "manager.h"

static const char *const kind_table[_LABORCH_KIND_MAX] = {
        [LABORCH_DOCKER_IMAGE]     = "docker_image",
        [LABORCH_LAB]              = "lab",
        [LABORCH_LAB_DOCKER_IMAGE] = "lab_docker_image",
        [LABORCH_LAB_INSTANCE]     = "lab_instance",
};

static int lookup_id(Manager *m, const char *kind, const char *name, int64_t *ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = db_prepare(m->db, "SELECT id FROM laborch_ids WHERE kind = ? AND name = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return db_errno(rc);
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

int laborch_id_get(Manager *m, LaborchKind kind, const char *name, int64_t *ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        const char *k = kind_table[kind];
        int r, rc;

        r = lookup_id(m, k, name, ret);
        if (r != -ENOENT)
                return r;
        /* One statement, so the next id cannot be taken twice; the event loop is single-threaded
         * anyway. Ids start at 1, as Django's do. */
        r = db_prepare(m->db,
                       "INSERT INTO laborch_ids (kind, name, id) "
                       "SELECT ?1, ?2, COALESCE(MAX(id), 0) + 1 FROM laborch_ids WHERE kind = ?1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return db_errno(rc);
        return lookup_id(m, k, name, ret);
}

int laborch_id_lookup(Manager *m, LaborchKind kind, int64_t id, char **ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char *s;
        int r, rc;

        r = db_prepare(m->db, "SELECT name FROM laborch_ids WHERE kind = ? AND id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, kind_table[kind], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return db_errno(rc);
        s = strdup((const char *) sqlite3_column_text(st, 0));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
