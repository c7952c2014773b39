/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sqlite3.h>
#include <systemd/sd-event.h>

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

/* Group commit. Changes staged with db_batch_stage() go into one transaction that stays open
 * until the event loop has nothing more urgent to do (an idle-priority defer source) or until
 * db_batch_flush(); then one COMMIT (one WAL fsync with synchronous=FULL) makes all of them
 * durable together, and the callbacks queued with db_batch_after() run in order with its
 * result: only then may what was staged be shown to anyone. Any other write (db_begin(),
 * db_exec(), a statement from db_prepare() that writes) commits the batch first, so it never
 * joins a transaction it does not know of; that commit leaves the callbacks to the defer
 * source. Without db_batch_setup() staging is a no-op and every statement commits at once. */
typedef void (*DbBatchCallback)(int r, void *userdata);
int db_batch_setup(sqlite3 *db, sd_event *e);
void db_batch_teardown(sqlite3 *db);
/* Before the statements: opens the transaction. vital: on a full disk the COMMIT may use the
 * space reserved for the database (job outcomes; not new submissions). */
int db_batch_stage(sqlite3 *db, bool vital);
void db_batch_unstage(sqlite3 *db);   /* after them */
int db_batch_after(sqlite3 *db, DbBatchCallback cb, void *userdata);
int db_batch_flush(sqlite3 *db);      /* commits now and runs the callbacks */
bool db_batch_is_open(sqlite3 *db);

/* Maps an SQLite result code to a negative errno. */
int db_errno(int sqlite_code);

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize);
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)
