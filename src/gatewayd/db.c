/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>

#include "db-migrations.h"
#include "db.h"
#include "log.h"
#include "spool-reserve.h"


int db_errno(int code) {
        switch (code & 0xff) {
        case SQLITE_OK:
        case SQLITE_DONE:
        case SQLITE_ROW:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EUCLEAN;
        default:
                return -EIO;
        }
}

static void batch_yield(sqlite3 *db);

int db_exec(sqlite3 *db, const char *sql) {
        char *err = NULL;
        int rc;

        batch_yield(db);
        rc = sqlite3_exec(db, sql, NULL, NULL, &err);
        if (rc != SQLITE_OK) {
                log_error("SQL failed: %s", err ?: sqlite3_errstr(rc));
                sqlite3_free(err);
                return db_errno(rc);
        }
        return 0;
}

int db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret) {
        int rc = sqlite3_prepare_v2(db, sql, -1, ret, NULL);
        if (rc != SQLITE_OK)
                return log_error_errno(db_errno(rc), "Failed to prepare SQL '%s': %s", sql, sqlite3_errmsg(db));
        if (!sqlite3_stmt_readonly(*ret))
                batch_yield(db);
        return 0;
}

int db_begin(sqlite3 *db) {
        /* IMMEDIATE takes the write lock up front, so a transaction never fails half-way with
         * SQLITE_BUSY when a second process (an admin's sqlite3 shell) holds a read lock. */
        return db_exec(db, "BEGIN IMMEDIATE");
}

int db_commit(sqlite3 *db) {
        return db_exec(db, "COMMIT");
}

void db_rollback(sqlite3 *db) {
        if (!sqlite3_get_autocommit(db))
                (void) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int db_schema_version(sqlite3 *db) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        r = db_prepare(db, "PRAGMA user_version", &s);
        if (r < 0)
                return r;
        r = sqlite3_step(s);
        if (r != SQLITE_ROW)
                /* e.g. SQLITE_NOTADB: the first read of the file happens here, not in open */
                return log_error_errno(r == SQLITE_DONE ? -EIO : db_errno(r), "Failed to read schema version: %s",
                                       sqlite3_errmsg(db));
        return sqlite3_column_int(s, 0);
}

int db_migrate(sqlite3 *db) {
        int version, r;

        version = db_schema_version(db);
        if (version < 0)
                return version;
        if ((unsigned) version > db_n_migrations)
                return log_error_errno(EPROTONOSUPPORT,
                                       "State database has schema version %i, this gatewayd knows only up to %u. "
                                       "Refusing to touch a database written by a newer version.",
                                       version, db_n_migrations);

        for (unsigned v = (unsigned) version; v < db_n_migrations; v++) {
                char pragma[64];

                r = db_begin(db);
                if (r < 0)
                        return r;
                r = db_exec(db, db_migrations[v]);
                if (r >= 0) {
                        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %u", v + 1);
                        r = db_exec(db, pragma);
                }
                if (r >= 0)
                        r = db_commit(db);
                if (r < 0) {
                        db_rollback(db);
                        return log_error_errno(r, "Failed to migrate state database to version %u: %m", v + 1);
                }
                log_info("Migrated state database to schema version %u.", v + 1);
        }
        return (int) db_n_migrations;
}

int db_open(const char *path, sqlite3 **ret) {
        sqlite3 *db = NULL;
        int rc, r;

        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                r = log_error_errno(db_errno(rc), "Failed to open state database %s: %s", path,
                                    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
                sqlite3_close(db);
                return r;
        }

        sqlite3_busy_timeout(db, 5000);

        /* Check the version before anything below writes to the file (journal_mode=WAL does):
         * a database from a newer gatewayd is left exactly as it was. */
        r = db_schema_version(db);
        if (r >= 0 && (unsigned) r > db_n_migrations)
                r = log_error_errno(EPROTONOSUPPORT,
                                    "State database %s has schema version %i, this gatewayd knows only up to %u. "
                                    "Refusing to touch a database written by a newer version.",
                                    path, r, db_n_migrations);
        if (r < 0) {
                sqlite3_close(db);
                return r;
        }

        /* WAL keeps readers and the writer apart and makes every commit atomic on crash;
         * synchronous=FULL makes a commit durable before we announce the change it records. */
        r = db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
        if (r < 0) {
                sqlite3_close(db);
                return log_error_errno(r, "Failed to configure state database %s: %m", path);
        }

        /* Keep the WAL and its index when the last connection closes: reopening (a restart on a
         * full disk) then needs no new space, and a WAL already grown is reused in place. */
        (void) sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &(int) { 1 });

        r = db_migrate(db);
        if (r < 0) {
                sqlite3_close(db);
                return r;
        }

        *ret = db;
        return 0;
}

sqlite3 *db_close(sqlite3 *db) {
        sqlite3_close(db);
        return NULL;
}

static char *reserve_path(const char *db_path) {
        char *p;

        return asprintf(&p, "%s.reserve", db_path) < 0 ? NULL : p;
}

int db_reserve(const char *db_path) {
        _cleanup_free_ char *p = reserve_path(db_path);
        int fd;

        if (!p)
                return -ENOMEM;
        fd = reserve_file_at(AT_FDCWD, p, DB_RESERVE_SIZE);
        if (fd < 0)
                return fd;
        safe_close(fd);
        return 0;
}

bool db_has_reserve(const char *db_path) {
        _cleanup_free_ char *p = reserve_path(db_path);

        return p && access(p, F_OK) >= 0;
}

int db_reserve_release(const char *db_path) {
        _cleanup_free_ char *p = reserve_path(db_path);

        if (!p)
                return -ENOMEM;
        if (unlink(p) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 1;
}

/* ---- group commit ---- */

typedef struct DbBatchItem {
        DbBatchCallback cb;
        void *userdata;
        bool done;      /* its transaction has ended; r says how */
        int r;
} DbBatchItem;

typedef struct DbBatch {
        sqlite3 *db;
        sd_event_source *defer;
        bool open;              /* our transaction is open */
        unsigned staging;       /* inside db_batch_stage() .. db_batch_unstage() */
        bool running;           /* callbacks are being run */
        bool vital;             /* it carries changes that may use the reserve (how jobs ended) */
        DbBatchItem *items;
        size_t n_items, n_allocated;
} DbBatch;

/* gatewayd has one state database; one batch for it. */
static DbBatch batch;

static DbBatch *batch_of(sqlite3 *db) {
        return db && batch.db == db ? &batch : NULL;
}

/* Ends the open transaction. On a full disk the space reserved next to the database is given up
 * and the COMMIT tried once more, as long as SQLite kept the transaction (it may roll it back
 * itself): the batch may carry how jobs ended. Returns 1 if the reserve was used. */
static int batch_commit(DbBatch *b) {
        int rc, r;

        if (!b->open)
                return 0;
        rc = sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL);
        r = db_errno(rc);
        if (r < 0 && (r == -ENOSPC || r == -EIO) && b->vital && !sqlite3_get_autocommit(b->db) &&
            db_reserve_release(sqlite3_db_filename(b->db, "main")) > 0) {
                log_warning("State database is out of space; using the space reserved for it.");
                rc = sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL);
                r = db_errno(rc);
                if (r >= 0)
                        r = 1;
        }
        if (r < 0) {
                log_error("Failed to commit a batch of %zu changes: %s", b->n_items, sqlite3_errmsg(b->db));
                db_rollback(b->db);
        }
        b->open = b->vital = false;
        for (size_t i = 0; i < b->n_items; i++)
                if (!b->items[i].done) {
                        b->items[i].done = true;
                        b->items[i].r = r;
                }
        return r;
}

/* Runs the callbacks of ended transactions, in order. They may stage more: that goes to the
 * next batch, and to the next call of this. */
static void batch_run_callbacks(DbBatch *b) {
        size_t i = 0;

        if (b->running)
                return;
        b->running = true;
        while (i < b->n_items && b->items[i].done) {
                DbBatchItem it = b->items[i++];
                it.cb(it.r, it.userdata);
        }
        if (i > 0 && i < b->n_items)   /* (memmove of nothing from a NULL array is undefined) */
                memmove(b->items, b->items + i, (b->n_items - i) * sizeof(DbBatchItem));
        b->n_items -= i;
        b->running = false;
}

static int on_batch_idle(sd_event_source *s, void *userdata) {
        DbBatch *b = userdata;

        (void) batch_commit(b);
        batch_run_callbacks(b);
        if (!b->open && b->n_items == 0)
                (void) sd_event_source_set_enabled(b->defer, SD_EVENT_OFF);
        return 0;
}

/* Someone else writes: what is staged is committed first (the callbacks wait for the defer
 * source, as the caller is in the middle of something). */
static void batch_yield(sqlite3 *db) {
        DbBatch *b = batch_of(db);

        if (b && b->open && b->staging == 0)
                (void) batch_commit(b);
}

int db_batch_setup(sqlite3 *db, sd_event *e) {
        int r;

        if (batch.db)
                return -EBUSY;
        r = sd_event_add_defer(e, &batch.defer, on_batch_idle, &batch);
        if (r < 0)
                return r;
        /* Idle: everything else ready in this iteration stages its changes first. */
        (void) sd_event_source_set_priority(batch.defer, SD_EVENT_PRIORITY_IDLE);
        (void) sd_event_source_set_enabled(batch.defer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(batch.defer, "db-batch");
        batch.db = db;
        return 0;
}

void db_batch_teardown(sqlite3 *db) {
        DbBatch *b = batch_of(db);

        if (!b)
                return;
        (void) db_batch_flush(db);
        b->defer = sd_event_source_disable_unref(b->defer);
        free(b->items);
        *b = (DbBatch) {};
}

bool db_batch_is_open(sqlite3 *db) {
        DbBatch *b = batch_of(db);

        return b && b->open;
}

int db_batch_stage(sqlite3 *db, bool vital) {
        DbBatch *b = batch_of(db);
        int r;

        if (!b)
                return 0;
        if (!b->open) {
                r = db_begin(db);
                if (r < 0)
                        return r;
                b->open = true;
                (void) sd_event_source_set_enabled(b->defer, SD_EVENT_ONESHOT);
        }
        b->staging++;
        b->vital = b->vital || vital;
        return 0;
}

void db_batch_unstage(sqlite3 *db) {
        DbBatch *b = batch_of(db);

        if (b && b->staging > 0)
                b->staging--;
}

int db_batch_after(sqlite3 *db, DbBatchCallback cb, void *userdata) {
        DbBatch *b = batch_of(db);

        if (!b || !b->open) {
                cb(0, userdata);  /* nothing staged: what came before is committed */
                return 0;
        }
        if (b->n_items == b->n_allocated) {
                size_t n = MAX(b->n_allocated * 2, (size_t) 16);
                DbBatchItem *l = reallocarray(b->items, n, sizeof(DbBatchItem));
                if (!l)
                        return -ENOMEM;
                b->items = l;
                b->n_allocated = n;
        }
        b->items[b->n_items++] = (DbBatchItem) { .cb = cb, .userdata = userdata };
        return 0;
}

int db_batch_flush(sqlite3 *db) {
        DbBatch *b = batch_of(db);
        int r;

        if (!b)
                return 0;
        r = batch_commit(b);
        batch_run_callbacks(b);
        return r;
}
