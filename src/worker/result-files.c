/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "fs-util.h"
#include "macro.h"
#include "result-files.h"
#include "spool-layout.h"
#include "utf8.h"

#define STAGING ".output.partial"

struct ResultDir {
        char *path;
        int fd;
        bool mounted;
};

/* ---- the tmpfs ---- */

/* Mount points of workers that died without cleaning up (SIGKILL): their pid is gone. */
static void remove_stale(const char *base) {
        DIR *d = opendir(base);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                char *end, path[4096];
                long pid;

                errno = 0;
                pid = strtol(de->d_name, &end, 10);
                if (errno || end == de->d_name || *end || pid <= 0)
                        continue;
                if (pid != (long) getpid() && (kill((pid_t) pid, 0) >= 0 || errno != ESRCH))
                        continue;
                if ((size_t) snprintf(path, sizeof(path), "%s/%s", base, de->d_name) >= sizeof(path))
                        continue;
                (void) umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
                (void) rmdir(path);
        }
        closedir(d);
}

int result_dir_mount(const char *runtime_dir, uint64_t size, uint64_t files, uid_t uid, gid_t gid,
                     ResultDir **ret) {
        _cleanup_free_ char *base = NULL, *opts = NULL;
        ResultDir *d;
        int r;

        if (asprintf(&base, "%s/output", runtime_dir) < 0)
                return -ENOMEM;
        r = mkdir_p(base, 0700);
        if (r < 0)
                return r;
        remove_stale(base);

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->fd = -1;
        /* nr_inodes counts the root directory too. */
        if (asprintf(&d->path, "%s/%d", base, (int) getpid()) < 0 ||
            asprintf(&opts, "size=%" PRIu64 ",nr_inodes=%" PRIu64 ",mode=0700,uid=%u,gid=%u",
                     size + (uint64_t) sysconf(_SC_PAGESIZE), files + 1, (unsigned) uid, (unsigned) gid) < 0) {
                result_dir_free(d);
                return -ENOMEM;
        }
        if (mkdir(d->path, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                result_dir_free(d);
                return r;
        }
        if (mount("gatewayd-output", d->path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0) {
                r = -errno;
                (void) rmdir(d->path);
                result_dir_free(d);
                return r;
        }
        d->mounted = true;
        d->fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (d->fd < 0) {
                r = -errno;
                result_dir_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

const char *result_dir_path(const ResultDir *d) {
        return d->path;
}

int result_dir_fd(const ResultDir *d) {
        return d->fd;
}

void result_dir_detach(ResultDir *d) {
        if (!d || !d->mounted)
                return;
        (void) umount2(d->path, MNT_DETACH | UMOUNT_NOFOLLOW);
        (void) rmdir(d->path);
        d->mounted = false;
}

ResultDir *result_dir_free(ResultDir *d) {
        if (!d)
                return NULL;
        result_dir_detach(d);
        safe_close(d->fd);
        free(d->path);
        free(d);
        return NULL;
}

/* ---- the copy ---- */

bool result_file_name_ok(const char *name) {
        size_t n = strlen(name);

        if (n == 0 || name[0] == '.' || streq(name, "self") || streq(name, "status"))
                return false;
        for (size_t i = 0; i < n;) {
                const unsigned char *p = (const unsigned char *) name + i;
                size_t k;

                if (*p < 0x20 || *p == 0x7f || *p == '/')
                        return false;
                k = utf8_sequence_length(p, n - i);
                if (k == 0)
                        return false;
                i += k;
        }
        return true;
}

typedef struct Entry {
        char *name;
        struct timespec mtime;
        bool written;           /* a regular file with data */
} Entry;

/* Oldest first, then by name. */
static int compare_entries(const void *a, const void *b) {
        const Entry *x = a, *y = b;

        if (x->mtime.tv_sec != y->mtime.tv_sec)
                return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
        if (x->mtime.tv_nsec != y->mtime.tv_nsec)
                return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
        return strcmp(x->name, y->name);
}

/* The directory's entries (but . and ..), with their mtimes (0 if they cannot be had). */
static int list_entries(int from_fd, Entry **ret, size_t *ret_n) {
        _cleanup_close_ int fd = -1;
        Entry *e = NULL;
        size_t n = 0, alloc = 0;
        struct dirent *de;
        DIR *d;

        /* A directory stream of our own: readdir() moves the fd's position. */
        fd = openat(from_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d)
                return -errno;
        TAKE_FD(fd);
        while ((de = readdir(d))) {
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (n == alloc) {
                        Entry *t = realloc(e, (alloc = MAX(alloc * 2, (size_t) 16)) * sizeof(Entry));
                        if (!t)
                                goto oom;
                        e = t;
                }
                e[n] = (Entry) { .name = strdup(de->d_name) };
                if (!e[n].name)
                        goto oom;
                if (fstatat(from_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                        e[n].mtime = st.st_mtim;
                        e[n].written = S_ISREG(st.st_mode) && st.st_size > 0;
                }
                n++;
        }
        closedir(d);
        if (n > 0)      /* e is NULL for an empty directory: qsort's pointer must not be */
                qsort(e, n, sizeof(Entry), compare_entries);
        *ret = e;
        *ret_n = n;
        return 0;
oom:
        closedir(d);
        for (size_t i = 0; i < n; i++)
                free(e[i].name);
        free(e);
        return -ENOMEM;
}

typedef struct Copy {
        int from_fd, spool_fd, out_fd;
        uint64_t bytes_left, files_left;
        ResultFilesNote note;
        void *userdata;
        ResultFilesStats stats;
        bool full;              /* the spool's file system */
        struct timespec cut;    /* files modified then were written when the job's directory
                                 * filled up; {0,0}: it did not */
} Copy;

static void notef(Copy *c, const char *level, const char *format, ...) _printf_(3, 4);
static void notef(Copy *c, const char *level, const char *format, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&m, format, ap);
        va_end(ap);
        if (r >= 0 && c->note)
                c->note(c->userdata, level, m);
}

static bool errno_full(int r) {
        return r == -ENOSPC || r == -EDQUOT;
}

static int ensure_staging(Copy *c) {
        if (c->out_fd >= 0)
                return 0;
        /* A leftover of a worker that died while copying. */
        (void) rm_rf_at(c->spool_fd, STAGING);
        if (mkdirat(c->spool_fd, STAGING, 0750) < 0)
                return -errno;
        c->out_fd = openat(c->spool_fd, STAGING, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        return c->out_fd < 0 ? -errno : 0;
}

/* in's first size bytes into out. */
static int copy_bytes(int in, int out, uint64_t size) {
        char buf[64 * 1024];
        uint64_t left = size;

        while (left > 0) {
                ssize_t k = read(in, buf, (size_t) MIN((uint64_t) sizeof(buf), left));
                int r;

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EIO;    /* shrank under us: not the file we checked */
                r = loop_write(out, buf, (size_t) k);
                if (r < 0)
                        return r;
                left -= (uint64_t) k;
        }
        return 0;
}

static int copy_one(Copy *c, const char *name, int in, uint64_t size) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int out = -1;
        int r;

        r = ensure_staging(c);
        if (r < 0)
                return r;
        if (asprintf(&tmp, ".%s.partial", name) < 0)
                return -ENOMEM;
        out = openat(c->out_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (out < 0)
                return -errno;
        r = copy_bytes(in, out, size);
        if (r >= 0 && fsync(out) < 0)
                r = -errno;
        if (r >= 0 && renameat(c->out_fd, tmp, c->out_fd, name) < 0)
                r = -errno;
        if (r < 0)
                (void) unlinkat(c->out_fd, tmp, 0);
        return r;
}

static const char *type_name(mode_t m) {
        return S_ISLNK(m) ? "a symbolic link" : S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a fifo" :
               S_ISSOCK(m) ? "a socket" : S_ISCHR(m) || S_ISBLK(m) ? "a device" : "not a regular file";
}

static int consider(Copy *c, const Entry *e) {
        const char *name = e->name;
        _cleanup_close_ int in = -1;
        struct stat st;
        int r;

        if (!result_file_name_ok(name)) {
                if (name[0] != '.')     /* dot files are quietly private to the job */
                        notef(c, "warning", "Result file '%s' not kept: not a plain file name.", name);
                c->stats.dropped++;
                return 0;
        }
        /* Never follow what the job made: a symlink fails here (ELOOP), a fifo does not block. */
        in = openat(c->from_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (in < 0 && (errno == ELOOP || errno == ENXIO) && fstatat(c->from_fd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                ;
        else if (in < 0) {
                notef(c, "warning", "Result file '%s' not kept: %s.", name, strerror(errno));
                c->stats.dropped++;
                return 0;
        } else if (fstat(in, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode)) {
                notef(c, "warning", "Result file '%s' not kept: it is %s (only regular files directly in %s are result files).",
                      name, type_name(st.st_mode), RESULT_FILES_PATH);
                c->stats.dropped++;
                return 0;
        }
        if ((c->cut.tv_sec || c->cut.tv_nsec) && st.st_size > 0 && e->mtime.tv_sec == c->cut.tv_sec && e->mtime.tv_nsec == c->cut.tv_nsec) {
                notef(c, "warning", "Result file '%s' (%" PRIu64 " bytes) not kept: it was written when the result "
                      "files reached their size limit, and may be cut short.", name, (uint64_t) st.st_size);
                c->stats.dropped++;
                return 0;
        }
        if (c->full || c->files_left == 0 || (uint64_t) st.st_size > c->bytes_left) {
                notef(c, "warning", "Result file '%s' (%" PRIu64 " bytes) not kept: %s.", name, (uint64_t) st.st_size,
                      c->full ? "the spool's file system is full" :
                      c->files_left == 0 ? "over the limit on the number of result files" :
                                           "over the limit on the total size of result files");
                c->stats.dropped++;
                return 0;
        }
        r = copy_one(c, name, in, (uint64_t) st.st_size);
        if (errno_full(r)) {
                notef(c, "error", "Result file '%s' not kept: the spool's file system is full.", name);
                c->full = true;
                c->stats.dropped++;
                return 0;
        }
        if (r == -EIO || r == -EISDIR) {
                notef(c, "warning", "Result file '%s' not kept: it changed while it was copied.", name);
                c->stats.dropped++;
                return 0;
        }
        if (r < 0)
                return r;
        c->files_left--;
        c->bytes_left -= (uint64_t) st.st_size;
        c->stats.files++;
        c->stats.bytes += (uint64_t) st.st_size;
        return 0;
}

int result_files_copy(int from_fd, int spool_fd, uint64_t max_bytes, uint64_t max_files,
                      ResultFilesNote note, void *userdata, ResultFilesStats *ret_stats) {
        Copy c = {
                .from_fd = from_fd, .spool_fd = spool_fd, .out_fd = -1,
                .bytes_left = max_bytes, .files_left = max_files,
                .note = note, .userdata = userdata,
        };
        struct statfs sf;
        Entry *e = NULL;
        size_t n = 0;
        int r;

        r = list_entries(from_fd, &e, &n);
        if (r < 0)
                return r;
        /* A directory without a free block refused some write of the job (ENOSPC), which may
         * have left the file it was writing incomplete: the newest with data (files created
         * after that can only be empty). The tmpfs is a page larger than the limit, so a job
         * that stays within it never fills it. */
        if (fstatfs(from_fd, &sf) >= 0 && sf.f_bavail == 0 && sf.f_blocks > 0)
                for (size_t i = 0; i < n; i++)
                        if (e[i].written && (e[i].mtime.tv_sec > c.cut.tv_sec ||
                                             (e[i].mtime.tv_sec == c.cut.tv_sec && e[i].mtime.tv_nsec > c.cut.tv_nsec)))
                                c.cut = e[i].mtime;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = consider(&c, &e[i]);
        for (size_t i = 0; i < n; i++)
                free(e[i].name);
        free(e);

        if (r >= 0 && c.out_fd >= 0) {
                (void) rm_rf_at(spool_fd, SPOOL_OUTPUT_DIR);
                if (renameat(spool_fd, STAGING, spool_fd, SPOOL_OUTPUT_DIR) < 0)
                        r = -errno;
        }
        if (r < 0 && c.out_fd >= 0)
                (void) rm_rf_at(spool_fd, STAGING);
        safe_close(c.out_fd);
        if (errno_full(r)) {
                notef(&c, "error", "Result files not kept: the spool's file system is full.");
                c.full = true;
                c.stats.dropped += c.stats.files;       /* none of them made it */
                c.stats.files = c.stats.bytes = 0;
                r = 0;
        }
        c.stats.spool_full = c.full;
        if (ret_stats)
                *ret_stats = c.stats;
        return r;
}
