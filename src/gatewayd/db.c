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

int db_exec(sqlite3 *db, const char *sql) {
        char *err = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
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
