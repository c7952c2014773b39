/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sqlite3.h>

#include "macro.h"

/* The state database: SQLite in WAL mode, schema versioned with PRAGMA user_version and moved
 * forward by the migrations in db-migrations.c, each in its own transaction, so that a crash at
 * any point leaves either the old or the new schema, never a mix. */

int db_open(const char *path, sqlite3 **ret);
sqlite3 *db_close(sqlite3 *db);

/* Applies every migration newer than the database's version. Refuses a database written by a
 * newer gatewayd (-EPROTONOSUPPORT) rather than guessing. Returns the resulting version. */
int db_migrate(sqlite3 *db);
int db_schema_version(sqlite3 *db);

int db_exec(sqlite3 *db, const char *sql);
int db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret);
int db_begin(sqlite3 *db);
int db_commit(sqlite3 *db);
void db_rollback(sqlite3 *db);

/* Space kept free for the database next to it (<db_path>.reserve): given up when a commit that
 * must not be lost (a job's outcome) fails for lack of space, taken again when there is room.
 * db_reserve_release() returns 1 if there was a reserve to give up. */
#define DB_RESERVE_SIZE (4U * 1024U * 1024U)
int db_reserve(const char *db_path);
bool db_has_reserve(const char *db_path);
int db_reserve_release(const char *db_path);

/* Maps an SQLite result code to a negative errno. */
int db_errno(int sqlite_code);

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize);
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)
