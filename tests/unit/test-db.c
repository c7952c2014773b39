/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "db-migrations.h"
#include "db.h"
#include "log.h"
#include "test-main.h"

/* base is made and removed in the parent (unchecked fixture), so it goes away even when a test
 * fails and its process exits early; each test works in its own directory below it. */
static char base[] = "/tmp/test-db-XXXXXX";
static char dir[64];

static void setup_base(void) {
        if (!mkdtemp(base))
                abort();
}

static void teardown_base(void) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", base);
}

static void setup(void) {
        snprintf(dir, sizeof(dir), "%s/t-XXXXXX", base);
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static char *path_in(const char *sub, const char *name) {
        static char buf[4][512];
        static unsigned n;
        char *p = buf[n++ % 4];
        snprintf(p, sizeof(buf[0]), "%s%s%s/%s", dir, sub ? "/" : "", sub ?: "", name);
        return p;
}

static long long query_int(sqlite3 *db, const char *sql) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;

        ck_assert_int_eq(db_prepare(db, sql, &s), 0);
        ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
        return sqlite3_column_int64(s, 0);
}

static char *query_text(sqlite3 *db, const char *sql) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;

        ck_assert_int_eq(db_prepare(db, sql, &s), 0);
        ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
        return strdup((const char *) sqlite3_column_text(s, 0));
}

static void assert_integrity(sqlite3 *db) {
        _cleanup_free_ char *t = query_text(db, "PRAGMA integrity_check");
        ck_assert_str_eq(t, "ok");
}

static void insert_service(sqlite3 *db, const char *name) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;

        ck_assert_int_eq(db_prepare(db, "INSERT INTO services (name, spec, created_usec, updated_usec) VALUES (?, '{}', 1, 1)", &s), 0);
        ck_assert_int_eq(sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(s), SQLITE_DONE);
}

static void copy_file(const char *from, const char *to) {
        char buf[65536];
        ssize_t n;
        int in = open(from, O_RDONLY | O_CLOEXEC), out;

        ck_assert_msg(in >= 0, "open %s: %m", from);
        out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ck_assert_int_ge(out, 0);
        while ((n = read(in, buf, sizeof(buf))) > 0)
                ck_assert_int_eq(write(out, buf, (size_t) n), n);
        ck_assert_int_eq(n, 0);
        close(in);
        close(out);
}

START_TEST(test_fresh_db_migrates_to_latest) {
        sqlite3 *db = NULL;
        _cleanup_free_ char *mode = NULL;

        ck_assert_uint_gt(db_n_migrations, 0);
        ck_assert_int_eq(db_open(path_in(NULL, "state.db"), &db), 0);
        ck_assert_int_eq(db_schema_version(db), (int) db_n_migrations);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='services'"), 1);
        mode = query_text(db, "PRAGMA journal_mode");
        ck_assert_str_eq(mode, "wal");
        ck_assert_int_eq(query_int(db, "PRAGMA foreign_keys"), 1);
        ck_assert_int_eq(query_int(db, "PRAGMA synchronous"), 2); /* FULL */
        /* Nothing is left open. */
        ck_assert_int_ne(sqlite3_get_autocommit(db), 0);
        db_close(db);
        ck_assert_ptr_null(db_close(NULL));
}
END_TEST

START_TEST(test_reopen_is_idempotent) {
        sqlite3 *db = NULL;

        ck_assert_int_eq(db_open(path_in(NULL, "state.db"), &db), 0);
        insert_service(db, "keep-me");
        db_close(db);

        for (int i = 0; i < 3; i++) {
                db = NULL;
                ck_assert_int_eq(db_open(path_in(NULL, "state.db"), &db), 0);
                ck_assert_int_eq(db_schema_version(db), (int) db_n_migrations);
                ck_assert_int_eq(db_migrate(db), (int) db_n_migrations);
                ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM services WHERE name='keep-me'"), 1);
                _cleanup_free_ char *mode = query_text(db, "PRAGMA journal_mode");
                ck_assert_str_eq(mode, "wal");
                db_close(db);
        }
}
END_TEST

START_TEST(test_newer_version_refused) {
        sqlite3 *db = NULL;
        char sql[64];

        /* A database from a future gatewayd: it must be left exactly as it is. */
        ck_assert_int_eq(sqlite3_open(path_in(NULL, "state.db"), &db), SQLITE_OK);
        ck_assert_int_eq(db_exec(db, "CREATE TABLE future (x INTEGER)"), 0);
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %u", db_n_migrations + 1);
        ck_assert_int_eq(db_exec(db, sql), 0);
        ck_assert_int_eq(db_migrate(db), -EPROTONOSUPPORT);
        sqlite3_close(db);

        db = NULL;
        ck_assert_int_eq(db_open(path_in(NULL, "state.db"), &db), -EPROTONOSUPPORT);
        ck_assert_ptr_null(db);

        ck_assert_int_eq(sqlite3_open(path_in(NULL, "state.db"), &db), SQLITE_OK);
        ck_assert_int_eq(db_schema_version(db), (int) db_n_migrations + 1);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE name='services'"), 0);
        /* Not even switched to WAL. */
        _cleanup_free_ char *mode = query_text(db, "PRAGMA journal_mode");
        ck_assert_str_eq(mode, "delete");
        sqlite3_close(db);
}
END_TEST

START_TEST(test_failed_migration_rolls_back) {
        sqlite3 *db = NULL;

        /* Version 0 but the table of migration 1 already there: migration 1 fails, and must leave
         * the version at 0 with nothing half-applied. */
        ck_assert_int_eq(sqlite3_open(path_in(NULL, "state.db"), &db), SQLITE_OK);
        ck_assert_int_eq(db_exec(db, "CREATE TABLE services (x INTEGER)"), 0);
        sqlite3_close(db);

        db = NULL;
        ck_assert_int_lt(db_open(path_in(NULL, "state.db"), &db), 0);
        ck_assert_ptr_null(db);

        ck_assert_int_eq(sqlite3_open(path_in(NULL, "state.db"), &db), SQLITE_OK);
        ck_assert_int_eq(db_schema_version(db), 0);
        ck_assert_int_eq(sqlite3_get_autocommit(db), 1);
        sqlite3_close(db);
}
END_TEST

START_TEST(test_not_a_database) {
        sqlite3 *db = NULL;
        int fd = open(path_in(NULL, "state.db"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

        ck_assert_int_ge(fd, 0);
        for (int i = 0; i < 100; i++)
                ck_assert_int_eq(write(fd, "this is not sqlite at all ", 26), 26);
        close(fd);
        ck_assert_int_eq(db_open(path_in(NULL, "state.db"), &db), -EUCLEAN);
        ck_assert_ptr_null(db);

        ck_assert_int_eq(db_open("/nonexistent-dir/state.db", &db), -ENOENT);
}
END_TEST

START_TEST(test_copy_with_uncommitted_wal) {
        sqlite3 *db = NULL, *copy = NULL;
        struct stat st;
        char sub[600];

        ck_assert_int_eq(db_open(path_in(NULL, "state.db"), &db), 0);
        ck_assert_int_eq(db_exec(db, "PRAGMA wal_autocheckpoint=0"), 0);
        ck_assert_int_eq(db_begin(db), 0);
        for (int i = 0; i < 100; i++) {
                char n[32];
                snprintf(n, sizeof(n), "committed-%i", i);
                insert_service(db, n);
        }
        ck_assert_int_eq(db_commit(db), 0);

        /* A big transaction with a tiny page cache spills its uncommitted pages into the WAL:
         * a backup tool copying the files now sees frames of a transaction that never commits. */
        ck_assert_int_eq(db_exec(db, "PRAGMA cache_size=2"), 0);
        ck_assert_int_eq(db_begin(db), 0);
        for (int i = 0; i < 5000; i++) {
                char n[64];
                snprintf(n, sizeof(n), "uncommitted-%i-padding-padding-padding-padding", i);
                insert_service(db, n);
        }
        ck_assert_int_eq(stat(path_in(NULL, "state.db-wal"), &st), 0);
        ck_assert_int_gt(st.st_size, 100 * 1024); /* the spill really happened */

        snprintf(sub, sizeof(sub), "%s/copy", dir);
        ck_assert_int_eq(mkdir(sub, 0700), 0);
        copy_file(path_in(NULL, "state.db"), path_in("copy", "state.db"));
        copy_file(path_in(NULL, "state.db-wal"), path_in("copy", "state.db-wal"));
        db_rollback(db);
        db_close(db);

        ck_assert_int_eq(db_open(path_in("copy", "state.db"), &copy), 0);
        assert_integrity(copy);
        ck_assert_int_eq(db_schema_version(copy), (int) db_n_migrations);
        ck_assert_int_eq(query_int(copy, "SELECT COUNT(*) FROM services WHERE name LIKE 'committed-%'"), 100);
        ck_assert_int_eq(query_int(copy, "SELECT COUNT(*) FROM services WHERE name LIKE 'uncommitted-%'"), 0);
        /* And it is writable. */
        ck_assert_int_eq(db_begin(copy), 0);
        insert_service(copy, "after-recovery");
        ck_assert_int_eq(db_commit(copy), 0);
        db_close(copy);
}
END_TEST

/* The child commits transactions of two rows each and reports every commit on a pipe; the
 * parent kills it with SIGKILL mid-stream, repeatedly on the same database. */
static _noreturn_ void writer_child(const char *path, int report_fd, int start) {
        sqlite3 *db = NULL;

        if (db_open(path, &db) < 0)
                _exit(2);
        for (int i = start;; i++) {
                char a[32], b[32];
                int r;

                snprintf(a, sizeof(a), "a-%i", i);
                snprintf(b, sizeof(b), "b-%i", i);
                r = db_begin(db);
                if (r < 0)
                        _exit(3);
                insert_service(db, a);
                insert_service(db, b);
                if (db_commit(db) < 0)
                        _exit(4);
                if (write(report_fd, &i, sizeof(i)) != sizeof(i))
                        _exit(5);
        }
}

START_TEST(test_killed_writer) {
        const char *path = path_in(NULL, "state.db");
        int next = 0;

        for (int round = 0; round < 5; round++) {
                int pipefd[2], last = -1, status, v;
                sqlite3 *db = NULL;
                pid_t pid;

                ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
                pid = fork();
                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        close(pipefd[0]);
                        writer_child(path, pipefd[1], next);
                }
                close(pipefd[1]);

                /* Let it commit a varying number of transactions, then kill it without warning
                 * (it is most likely inside the next one). */
                for (int n = 0; n < 20 + round * 37; n++) {
                        ck_assert_int_eq(read(pipefd[0], &v, sizeof(v)), sizeof(v));
                        last = v;
                }
                ck_assert_int_eq(kill(pid, SIGKILL), 0);
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
                /* Commits reported after our last read also count. */
                while (read(pipefd[0], &v, sizeof(v)) == sizeof(v))
                        last = v;
                close(pipefd[0]);

                ck_assert_int_eq(db_open(path, &db), 0);
                assert_integrity(db);
                /* Transactions are whole: as many a- rows as b- rows, none half-inserted. */
                long long na = query_int(db, "SELECT COUNT(*) FROM services WHERE name LIKE 'a-%'");
                long long nb = query_int(db, "SELECT COUNT(*) FROM services WHERE name LIKE 'b-%'");
                ck_assert_int_eq(na, nb);
                /* Every reported commit survived (and at most the one in flight more). */
                long long max = query_int(db, "SELECT MAX(CAST(substr(name, 3) AS INTEGER)) FROM services WHERE name LIKE 'a-%'");
                ck_assert_int_ge(max, last);
                ck_assert_int_le(max, last + 1);
                ck_assert_int_eq(na, max + 1);
                db_close(db);
                next = (int) max + 1;
        }
}
END_TEST

static void insert_image(sqlite3 *db, const char *id, const char *reference, long long updated) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;

        ck_assert_int_eq(db_prepare(db, "INSERT INTO images (id, reference, platform, status, created_usec, updated_usec, "
                                    "last_used_usec) VALUES (?, ?, 'local', 'READY', 1, ?, 1)", &s), 0);
        sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, reference, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 3, updated);
        ck_assert_int_eq(sqlite3_step(s), SQLITE_DONE);
}

static char *tag_of(sqlite3 *db, const char *reference) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;

        ck_assert_int_eq(db_prepare(db, "SELECT image_id FROM image_tags WHERE reference = ? AND platform = 'local'", &s), 0);
        sqlite3_bind_text(s, 1, reference, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) != SQLITE_ROW)
                return NULL;
        return strdup((const char *) sqlite3_column_text(s, 0));
}

static void assert_tag(sqlite3 *db, const char *reference, const char *id) {
        _cleanup_free_ char *t = tag_of(db, reference);

        ck_assert_msg(t, "no tag %s", reference);
        ck_assert_str_eq(t, id);
}

/* A schema-3 database whose tags were wiped by REPLACE (issue 8 §1): migration 4 puts back what
 * can be known, and from then on rewriting an image row cannot drop its tags. */
START_TEST(test_tags_repaired_and_safe) {
        sqlite3 *db = NULL;

        ck_assert_uint_ge(db_n_migrations, 4);
        ck_assert_int_eq(sqlite3_open(path_in(NULL, "state.db"), &db), SQLITE_OK);
        ck_assert_int_eq(db_exec(db, "PRAGMA foreign_keys=ON"), 0);
        for (unsigned v = 0; v < 3; v++)
                ck_assert_int_eq(db_exec(db, db_migrations[v]), 0);
        ck_assert_int_eq(db_exec(db, "PRAGMA user_version = 3"), 0);
        insert_image(db, "aaaa", "reg.example/lost:1", 10);      /* every tag lost */
        insert_image(db, "bbbb", "reg.example/kept:1", 10);      /* one tag survived */
        insert_image(db, "cccc", "reg.example/moved:latest", 10); /* the tag moved on to dddd */
        insert_image(db, "dddd", "reg.example/moved:latest", 20);
        insert_image(db, "eeee", "reg.example/elsewhere:1", 30); /* its reference tags another image */
        insert_image(db, "ffff", "reg.example/other:1", 10);
        ck_assert_int_eq(db_exec(db, "INSERT INTO image_tags VALUES ('kept:1', 'local', 'bbbb'), "
                                     "('reg.example/elsewhere:1', 'local', 'ffff')"), 0);
        /* What the old code did to an image row: its tags go. */
        ck_assert_int_eq(db_exec(db, "INSERT OR REPLACE INTO images SELECT * FROM images WHERE id = 'ffff'"), 0);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM image_tags WHERE image_id = 'ffff'"), 0);
        ck_assert_int_eq(db_exec(db, "INSERT INTO image_tags VALUES ('reg.example/elsewhere:1', 'local', 'ffff')"), 0);
        sqlite3_close(db);

        db = NULL;
        ck_assert_int_eq(db_open(path_in(NULL, "state.db"), &db), 0);
        ck_assert_int_eq(db_schema_version(db), (int) db_n_migrations);
        assert_integrity(db);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
        assert_tag(db, "reg.example/lost:1", "aaaa");
        assert_tag(db, "reg.example/kept:1", "bbbb");
        assert_tag(db, "kept:1", "bbbb");
        assert_tag(db, "reg.example/moved:latest", "dddd");
        assert_tag(db, "reg.example/elsewhere:1", "ffff"); /* an existing tag wins */
        assert_tag(db, "reg.example/other:1", "ffff");
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM image_tags"), 6);

        /* Rewriting the row, even the old way, keeps the tags now. */
        ck_assert_int_eq(db_exec(db, "INSERT OR REPLACE INTO images SELECT * FROM images WHERE id = 'bbbb'"), 0);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM image_tags WHERE image_id = 'bbbb'"), 2);
        /* An image with tags cannot be deleted by accident; with its tags it can. */
        ck_assert_int_eq(db_exec(db, "DELETE FROM images WHERE id = 'bbbb'"), -EEXIST);
        ck_assert_int_eq(db_exec(db, "DELETE FROM image_tags WHERE image_id = 'bbbb'; DELETE FROM images WHERE id = 'bbbb'"), 0);
        db_close(db);
}
END_TEST

/* state.db migrated up to (not including) the migration that holds marker, found by it as the
 * lead may renumber migrations at merge; *ret_index: that migration's index. */
static sqlite3 *db_before_migration(const char *marker, unsigned *ret_index) {
        char pragma[64];
        unsigned before = 0;
        sqlite3 *db = NULL;

        while (before < db_n_migrations && !strstr(db_migrations[before], marker))
                before++;
        ck_assert_uint_lt(before, db_n_migrations);
        ck_assert_int_eq(sqlite3_open(path_in(NULL, "state.db"), &db), SQLITE_OK);
        ck_assert_int_eq(db_exec(db, "PRAGMA foreign_keys=ON"), 0);
        for (unsigned v = 0; v < before; v++)
                ck_assert_int_eq(db_exec(db, db_migrations[v]), 0);
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %u", before);
        ck_assert_int_eq(db_exec(db, pragma), 0);
        *ret_index = before;
        return db;
}

/* The migration that makes image records per platform (found by its table, as the lead may
 * renumber it at merge): the database as the one-record-per-id code left it, where a second
 * platform's pull tagged the first platform's record. */
START_TEST(test_images_per_platform) {
        unsigned before;
        sqlite3 *db = db_before_migration("images_by_platform", &before);

        ck_assert_int_eq(db_exec(db, "INSERT INTO images (id, reference, platform, status, message, size, squashfs, meta, "
                                     "acl, created_usec, updated_usec, last_used_usec) VALUES "
                                     "('aaaa', 'reg.example/a:1', 'local', 'READY', NULL, 42, '/i/aaaa.squashfs', "
                                     "'/i/aaaa.meta.json', '{\"uids\":[7],\"gids\":[]}', 1, 2, 3), "
                                     "('bbbb', 'reg.example/b:1', 'nodes', 'FAILURE', 'no', 0, NULL, NULL, NULL, 4, 5, 6)"), 0);
        ck_assert_int_eq(db_exec(db, "INSERT INTO image_tags VALUES ('reg.example/a:1', 'local', 'aaaa'), "
                                     "('a:1', 'local', 'aaaa'), ('reg.example/a:1', 'nodes', 'aaaa'), "
                                     "('reg.example/b:1', 'nodes', 'bbbb')"), 0);
        sqlite3_close(db);

        db = NULL;
        ck_assert_int_eq(db_open(path_in(NULL, "state.db"), &db), 0);
        ck_assert_int_eq(db_schema_version(db), (int) db_n_migrations);
        assert_integrity(db);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
        /* Every row and column kept. */
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM images WHERE id = 'aaaa' AND reference = 'reg.example/a:1' "
                                       "AND platform = 'local' AND status = 'READY' AND message IS NULL AND size = 42 "
                                       "AND squashfs = '/i/aaaa.squashfs' AND meta = '/i/aaaa.meta.json' "
                                       "AND acl = '{\"uids\":[7],\"gids\":[]}' AND created_usec = 1 "
                                       "AND updated_usec = 2 AND last_used_usec = 3"), 1);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM images WHERE id = 'bbbb' AND platform = 'nodes' "
                                       "AND status = 'FAILURE' AND message = 'no' AND created_usec = 4"), 1);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM images"), 2);
        /* The tags of each platform's own records stay; the one on another platform's record goes. */
        assert_tag(db, "reg.example/a:1", "aaaa");
        assert_tag(db, "a:1", "aaaa");
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM image_tags WHERE platform = 'nodes'"), 1);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM image_tags WHERE platform = 'nodes' AND image_id = 'bbbb'"), 1);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM image_tags"), 3);

        /* The same image on another platform is a record of its own, its tags point at it. */
        ck_assert_int_eq(db_exec(db, "INSERT INTO images (id, reference, platform, status, created_usec, updated_usec, "
                                     "last_used_usec) VALUES ('aaaa', 'reg.example/a:1', 'nodes', 'READY', 7, 7, 7)"), 0);
        ck_assert_int_eq(db_exec(db, "INSERT INTO image_tags VALUES ('reg.example/a:1', 'nodes', 'aaaa')"), 0);
        ck_assert_int_eq(db_exec(db, "INSERT INTO images (id, reference, platform, status, created_usec, updated_usec, "
                                     "last_used_usec) VALUES ('aaaa', 'x', 'nodes', 'READY', 7, 7, 7)"), -EEXIST);
        /* A tag must point at a record of its own platform. */
        ck_assert_int_ne(db_exec(db, "INSERT INTO image_tags VALUES ('b:1', 'local', 'bbbb')"), 0);
        /* One platform's record goes with its tags; the other's stays, with its tags. */
        ck_assert_int_eq(db_exec(db, "DELETE FROM images WHERE platform = 'nodes' AND id = 'aaaa'"), -EEXIST);
        ck_assert_int_eq(db_exec(db, "DELETE FROM image_tags WHERE platform = 'nodes' AND image_id = 'aaaa'; "
                                     "DELETE FROM images WHERE platform = 'nodes' AND id = 'aaaa'"), 0);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM images WHERE id = 'aaaa'"), 1);
        assert_tag(db, "reg.example/a:1", "aaaa");
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
        db_close(db);
}
END_TEST

/* The migration that gives programs a provider (found by its table, as the lead may renumber it
 * at merge): existing rows are kept as users' own programs, and titles become unique per owner
 * among own programs and per provider among providers'. */
START_TEST(test_programs_provider) {
        unsigned before;
        sqlite3 *db = db_before_migration("programs_with_provider", &before);

        ck_assert_int_eq(db_exec(db, "INSERT INTO programs (id, uid, gid, title, spec, created_usec) VALUES "
                                     "('p1', 1000, 100, 'hello', '{\"entrypoint\":\"a\"}', 5), "
                                     "('p2', 1001, 100, 'hello', '{}', 6)"), 0);
        sqlite3_close(db);

        db = NULL;
        ck_assert_int_eq(db_open(path_in(NULL, "state.db"), &db), 0);
        ck_assert_int_eq(db_schema_version(db), (int) db_n_migrations);
        assert_integrity(db);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM programs WHERE id = 'p1' AND uid = 1000 AND gid = 100 "
                                       "AND title = 'hello' AND spec = '{\"entrypoint\":\"a\"}' AND created_usec = 5 "
                                       "AND provider IS NULL"), 1);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM programs WHERE provider IS NULL"), 2);
        /* own programs: unique per owner */
        ck_assert_int_eq(db_exec(db, "INSERT INTO programs (id, uid, gid, title, spec, created_usec) "
                                     "VALUES ('p3', 1000, 100, 'hello', '{}', 7)"), -EEXIST);
        /* a provider's: unique per provider, beside the uploader's own of that title */
        ck_assert_int_eq(db_exec(db, "INSERT INTO programs (id, uid, gid, title, spec, created_usec, provider) "
                                     "VALUES ('p4', 1000, 100, 'hello', '{}', 8, 'acme')"), 0);
        ck_assert_int_eq(db_exec(db, "INSERT INTO programs (id, uid, gid, title, spec, created_usec, provider) "
                                     "VALUES ('p5', 1001, 100, 'hello', '{}', 9, 'acme')"), -EEXIST);
        ck_assert_int_eq(db_exec(db, "INSERT INTO programs (id, uid, gid, title, spec, created_usec, provider) "
                                     "VALUES ('p6', 1001, 100, 'hello', '{}', 9, 'other')"), 0);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = 'program_provider'"), 1);
        db_close(db);
}
END_TEST

/* A program's own image (programs.image) comes after the rebuild of programs for providers, which
 * names its columns: in the other order the rebuild would drop the images. A provider's program
 * may have an image. */
START_TEST(test_programs_provider_and_image) {
        unsigned provider = 0, image = 0;
        sqlite3 *db = NULL;

        while (provider < db_n_migrations && !strstr(db_migrations[provider], "programs_with_provider"))
                provider++;
        while (image < db_n_migrations && !strstr(db_migrations[image], "programs ADD COLUMN image"))
                image++;
        ck_assert_uint_lt(image, db_n_migrations);
        ck_assert_uint_gt(image, provider);
        ck_assert_int_eq(db_open(path_in(NULL, "state.db"), &db), 0);
        ck_assert_int_eq(db_exec(db, "INSERT INTO programs (id, uid, gid, title, spec, created_usec, provider, image) VALUES "
                                     "('p1', 1000, 100, 'hello', '{}', 5, 'acme', 'reg.example/q/tool:1'), "
                                     "('p2', 1000, 100, 'hello', '{}', 6, NULL, 'reg.example/q/tool:2')"), 0);
        db_close(db);
        db = NULL;
        ck_assert_int_eq(db_open(path_in(NULL, "state.db"), &db), 0);
        assert_integrity(db);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM programs WHERE id = 'p1' AND provider = 'acme' "
                                       "AND image = 'reg.example/q/tool:1'"), 1);
        ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM programs WHERE id = 'p2' AND provider IS NULL "
                                       "AND image = 'reg.example/q/tool:2'"), 1);
        db_close(db);
}
END_TEST

START_TEST(test_db_errno) {
        ck_assert_int_eq(db_errno(SQLITE_OK), 0);
        ck_assert_int_eq(db_errno(SQLITE_DONE), 0);
        ck_assert_int_eq(db_errno(SQLITE_ROW), 0);
        ck_assert_int_eq(db_errno(SQLITE_NOMEM), -ENOMEM);
        ck_assert_int_eq(db_errno(SQLITE_BUSY), -EBUSY);
        ck_assert_int_eq(db_errno(SQLITE_BUSY_SNAPSHOT), -EBUSY); /* extended codes map by their base */
        ck_assert_int_eq(db_errno(SQLITE_CONSTRAINT_PRIMARYKEY), -EEXIST);
        ck_assert_int_eq(db_errno(SQLITE_READONLY), -EACCES);
        ck_assert_int_eq(db_errno(SQLITE_FULL), -ENOSPC);
        ck_assert_int_eq(db_errno(SQLITE_NOTADB), -EUCLEAN);
        ck_assert_int_eq(db_errno(SQLITE_CORRUPT), -EUCLEAN);
        ck_assert_int_eq(db_errno(SQLITE_CANTOPEN), -ENOENT);
        ck_assert_int_eq(db_errno(SQLITE_ERROR), -EIO);
}
END_TEST
/* After a clean close the WAL and its index stay: reopening needs no new space (a full disk). */
START_TEST(test_wal_kept_on_close) {
        sqlite3 *db = NULL;
        struct stat st;

        ck_assert_int_eq(db_open(path_in(NULL, "state.db"), &db), 0);
        insert_service(db, "x");
        db_close(db);
        ck_assert_int_eq(stat(path_in(NULL, "state.db-wal"), &st), 0);
        ck_assert_int_eq(stat(path_in(NULL, "state.db-shm"), &st), 0);
}
END_TEST

START_TEST(test_reserve) {
        char db[512];
        struct stat st;

        snprintf(db, sizeof(db), "%s", path_in(NULL, "state.db"));   /* (path_in() reuses its buffers) */
        ck_assert(!db_has_reserve(db));
        ck_assert_int_eq(db_reserve_release(db), 0);
        ck_assert_int_eq(db_reserve(db), 0);
        ck_assert(db_has_reserve(db));
        ck_assert_int_eq(stat(path_in(NULL, "state.db.reserve"), &st), 0);
        ck_assert_int_eq(st.st_size, DB_RESERVE_SIZE);
        ck_assert_int_ge((int64_t) st.st_blocks * 512, DB_RESERVE_SIZE);  /* allocated, not sparse */
        ck_assert_int_eq(db_reserve(db), 0);                              /* idempotent */
        ck_assert_int_eq(db_reserve_release(db), 1);
        ck_assert(!db_has_reserve(db));
}
END_TEST


/* Group commit: staged writes are invisible to others (not committed) until the batch ends; the
 * callbacks run after the COMMIT, in order; a write outside the batch commits it first. */
static int calls[8], results[8];
static unsigned n_calls;

static void on_committed(int r, void *userdata) {
        calls[n_calls] = (int) (intptr_t) userdata;
        results[n_calls++] = r;
}

static void stage_insert(sqlite3 *db, int x, bool with_callback) {
        char sql[64];

        ck_assert_int_eq(db_batch_stage(db, false), 0);
        snprintf(sql, sizeof(sql), "INSERT INTO t VALUES (%i)", x);
        ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        db_batch_unstage(db);
        if (with_callback)
                ck_assert_int_eq(db_batch_after(db, on_committed, (void *) (intptr_t) x), 0);
}

START_TEST(test_group_commit) {
        sqlite3 *db = NULL, *other = NULL;
        sd_event *e = NULL;

        ck_assert_int_eq(db_open(path_in(NULL, "state.db"), &db), 0);
        ck_assert_int_eq(db_exec(db, "CREATE TABLE t (x INTEGER)"), 0);
        ck_assert_int_eq(sqlite3_open_v2(path_in(NULL, "state.db"), &other, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        ck_assert_int_eq(sd_event_new(&e), 0);
        ck_assert_int_eq(db_batch_setup(db, e), 0);

        n_calls = 0;
        stage_insert(db, 1, true);
        stage_insert(db, 2, true);
        ck_assert(db_batch_is_open(db));
        ck_assert_int_eq(query_int(other, "SELECT COUNT(*) FROM t"), 0);
        ck_assert_uint_eq(n_calls, 0);

        /* A write that is not part of the batch commits it first and is not swallowed by it. */
        ck_assert_int_eq(db_exec(db, "INSERT INTO t VALUES (3)"), 0);
        ck_assert(!db_batch_is_open(db));
        ck_assert_int_eq(query_int(other, "SELECT COUNT(*) FROM t"), 3);
        ck_assert_uint_eq(n_calls, 0);  /* they run from the loop, not inside someone's write */

        ck_assert_int_ge(sd_event_run(e, 0), 0);
        ck_assert_uint_eq(n_calls, 2);
        ck_assert_int_eq(calls[0], 1);
        ck_assert_int_eq(calls[1], 2);
        ck_assert_int_eq(results[0], 0);
        ck_assert_int_eq(results[1], 0);

        /* The loop commits a batch by itself once it has nothing else to do. */
        stage_insert(db, 4, true);
        ck_assert_int_eq(query_int(other, "SELECT COUNT(*) FROM t"), 3);
        ck_assert_int_ge(sd_event_run(e, 0), 0);
        ck_assert_uint_eq(n_calls, 3);
        ck_assert_int_eq(query_int(other, "SELECT COUNT(*) FROM t"), 4);

        /* flush: now, callbacks included. */
        stage_insert(db, 5, true);
        ck_assert_int_eq(db_batch_flush(db), 0);
        ck_assert_uint_eq(n_calls, 4);
        ck_assert_int_eq(calls[3], 5);
        ck_assert_int_eq(query_int(other, "SELECT COUNT(*) FROM t"), 5);

        /* Teardown commits what is still staged. */
        stage_insert(db, 6, true);
        db_batch_teardown(db);
        ck_assert_uint_eq(n_calls, 5);
        ck_assert_int_eq(query_int(other, "SELECT COUNT(*) FROM t"), 6);

        sqlite3_close(other);
        db_close(db);
        sd_event_unref(e);
}
END_TEST

static Suite *db_suite(void) {
        Suite *s = suite_create("db");
        TCase *tc = tcase_create("core");

        tcase_add_unchecked_fixture(tc, setup_base, teardown_base);
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_fresh_db_migrates_to_latest);
        tcase_add_test(tc, test_reopen_is_idempotent);
        tcase_add_test(tc, test_newer_version_refused);
        tcase_add_test(tc, test_failed_migration_rolls_back);
        tcase_add_test(tc, test_not_a_database);
        tcase_add_test(tc, test_copy_with_uncommitted_wal);
        tcase_add_test(tc, test_killed_writer);
        tcase_add_test(tc, test_db_errno);
        tcase_add_test(tc, test_tags_repaired_and_safe);
        tcase_add_test(tc, test_images_per_platform);
        tcase_add_test(tc, test_programs_provider);
        tcase_add_test(tc, test_programs_provider_and_image);
        tcase_add_test(tc, test_wal_kept_on_close);
        tcase_add_test(tc, test_reserve);
        tcase_add_test(tc, test_group_commit);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {

        log_set_max_level(LOG_CRIT); /* the refusals above log errors on purpose */
        return test_run_suite(db_suite());
}
