/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#include "fs-util.h"
#include "log.h"
#include "loop-device.h"
#include "macro.h"
#include "process-util.h"
#include "squashfs-mount.h"

/* The reason of the last failure, for the job's error detail (the worker is single-threaded). */
static char last_error[512];

#define fail(error, ...)                                                          \
        ({                                                                        \
                int _e = (error);                                                 \
                errno = abs(_e);                                                  \
                snprintf(last_error, sizeof(last_error), __VA_ARGS__);            \
                log_error_errno(_e, "%s", last_error);                            \
        })

const char *image_mount_last_error(void) {
        return last_error;
}

struct ImageMount {
        char *runtime_dir;
        char *entry;    /* RUNTIME_DIR/images/KEY */
        char *root;
        char *refs;
        char *ref;
};

static ImageMount *image_mount_free(ImageMount *m) {
        if (!m)
                return NULL;
        free(m->runtime_dir);
        free(m->entry);
        free(m->root);
        free(m->refs);
        free(m->ref);
        return mfree(m);
}

const char *image_mount_root(const ImageMount *m) {
        return m->root;
}

static int mkdir_ok(const char *p, mode_t mode) {
        return mkdir(p, mode) < 0 && errno != EEXIST ? -errno : 0;
}

static int take_lock(const char *runtime_dir) {
        _cleanup_free_ char *p = NULL;
        int fd;

        if (asprintf(&p, "%s/lock", runtime_dir) < 0)
                return -ENOMEM;
        fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
        return fd;
}

static bool ref_alive(const char *name) {
        unsigned long long start;
        uint64_t now;
        int pid;
        char c;

        /* The start time (process-util.c) tells a live user from a recycled pid. */
        if (sscanf(name, "%d-%llu%c", &pid, &start, &c) != 2 || pid <= 0)
                return false;
        return process_start_time(pid, &now) >= 0 && now == start;
}

/* Removes refs of dead processes; returns how many live ones remain. */
static int prune_refs(const char *refs) {
        DIR *d;
        struct dirent *de;
        int live = 0;

        d = opendir(refs);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (ref_alive(de->d_name))
                        live++;
                else {
                        log_debug("Removing stale image reference %s/%s.", refs, de->d_name);
                        (void) unlinkat(dirfd(d), de->d_name, 0);
                }
        }
        closedir(d);
        return live;
}

static bool is_mount_point(const char *dir, const char *parent) {
        struct stat a, b;
        return stat(dir, &a) >= 0 && stat(parent, &b) >= 0 && a.st_dev != b.st_dev;
}

static int do_mount(int image_fd, const char *image_path, const char *root) {
        _cleanup_close_ int loop_fd = -1;
        const char *step;
        char dev[64];

        loop_fd = loop_device_attach(image_fd, true, dev, sizeof(dev), &step);
        if (loop_fd < 0)
                return fail(loop_fd, "Cannot %s: %s", step, strerror(-loop_fd));
        if (mount(dev, root, "squashfs", MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
                /* closing loop_fd then detaches the device (autoclear) */
                return fail(errno, "Cannot mount %s (%s) on %s: %m", image_path, dev, root);
        log_debug("Mounted %s on %s via %s.", image_path, root, dev);
        return 0;
}

static uint64_t boottime_sec(void) {
        struct timespec ts;

        return clock_gettime(CLOCK_BOOTTIME, &ts) < 0 ? 0 : (uint64_t) ts.tv_sec;
}

static int entry_file(const char *entry, const char *name, char **ret) {
        return asprintf(ret, "%s/%s", entry, name) < 0 ? -ENOMEM : 0;
}

static int write_entry_file(const char *entry, const char *name, const char *text) {
        _cleanup_free_ char *p = NULL, *tmp = NULL;
        FILE *f;

        if (entry_file(entry, name, &p) < 0 || asprintf(&tmp, "%s.tmp", p) < 0)
                return -ENOMEM;
        f = fopen(tmp, "we");
        if (!f)
                return -errno;
        fputs(text, f);
        if (fclose(f) != 0 || rename(tmp, p) < 0) {
                int r = -errno;
                (void) unlink(tmp);
                return r;
        }
        return 0;
}

static int read_entry_file(const char *entry, const char *name, char *buf, size_t size) {
        _cleanup_free_ char *p = NULL;
        FILE *f;
        size_t n;

        if (entry_file(entry, name, &p) < 0)
                return -ENOMEM;
        f = fopen(p, "re");
        if (!f)
                return -errno;
        n = fread(buf, 1, size - 1, f);
        fclose(f);
        buf[n] = 0;
        return 0;
}

/* A lingering entry to keep: its time is not up, and its source still is the file it mounted
 * (the entry's name is the file's device and inode). */
static bool entry_lingers(const char *entry) {
        char until[32], source[4096], key[64];
        unsigned long long t;
        struct stat st;
        const char *name = strrchr(entry, '/');

        if (read_entry_file(entry, "linger", until, sizeof(until)) < 0 || sscanf(until, "%llu", &t) != 1 ||
            boottime_sec() >= t)
                return false;
        if (read_entry_file(entry, "source", source, sizeof(source)) < 0 || stat(source, &st) < 0 || !name)
                return false;
        snprintf(key, sizeof(key), "%llx-%llx", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        return streq(name + 1, key);
}

/* Unmounts a mount point of ours; one a process outside our control (an admin's shell) keeps
 * busy is detached: what it holds goes when the last user does. */
static int unmount_dir(const char *dir, const char *parent) {
        if (!is_mount_point(dir, parent) || umount2(dir, UMOUNT_NOFOLLOW) >= 0)
                return 0;
        if (errno != EBUSY || umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                return log_error_errno(errno, "Cannot unmount %s: %m", dir);
        return 0;
}

/* Unmounts ENTRY/derived-NAME/root and removes ENTRY/derived-NAME (its skeleton and all). */
static int remove_derived(const char *dir) {
        _cleanup_free_ char *root = NULL;
        int r;

        if (asprintf(&root, "%s/root", dir) < 0)
                return -ENOMEM;
        r = unmount_dir(root, dir);
        if (r < 0)
                return r;
        /* nothing is mounted below dir now: rm_rf() stays in our own files */
        return rm_rf(dir);
}

/* Everything derived from the entry's mount holds its file system (an overlay holds its lower
 * layers without keeping their mount busy): it goes first, or the loop device would stay. */
static int remove_derived_all(const char *entry) {
        struct dirent *de;
        int r = 0;
        DIR *d;

        d = opendir(entry);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                _cleanup_free_ char *dir = NULL;
                int k;

                if (strncmp(de->d_name, IMAGE_MOUNT_DERIVED_PREFIX, strlen(IMAGE_MOUNT_DERIVED_PREFIX)) != 0)
                        continue;
                if (asprintf(&dir, "%s/%s", entry, de->d_name) < 0) {
                        r = -ENOMEM;
                        continue;
                }
                k = remove_derived(dir);
                if (k < 0 && r >= 0)
                        r = k;
        }
        closedir(d);
        return r;
}

/* Unmounts RUNTIME_DIR/images/KEY (entry) and removes its directories. */
static int unmount_entry(const char *entry) {
        _cleanup_free_ char *root = NULL, *refs = NULL, *linger = NULL, *source = NULL;
        int r = 0;

        if (asprintf(&root, "%s/root", entry) < 0 || asprintf(&refs, "%s/refs", entry) < 0 ||
            entry_file(entry, "linger", &linger) < 0 || entry_file(entry, "source", &source) < 0)
                return -ENOMEM;
        (void) remove_derived_all(entry);
        r = unmount_dir(root, entry);
        if (r >= 0) {
                (void) unlink(linger);
                (void) unlink(source);
                (void) rmdir(root);
                (void) rmdir(refs);
                (void) rmdir(entry);
        }
        return r;
}

static int unmount_and_remove(ImageMount *m) {
        return unmount_entry(m->entry);
}

/* Mounts of other images whose users all died (workers killed outright) are unmounted by
 * whichever worker comes next, so a leaked mount lives at most until the next job; so are
 * lingering ones whose time is up (all: every one without users). Called with the lock held.
 * Returns how many entries without users still linger. */
static int sweep_stale(const char *runtime_dir, const char *skip_entry, bool all) {
        _cleanup_free_ char *images = NULL;
        struct dirent *de;
        int lingering = 0;
        DIR *d;

        if (asprintf(&images, "%s/images", runtime_dir) < 0)
                return -ENOMEM;
        d = opendir(images);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                _cleanup_free_ char *entry = NULL, *refs = NULL;

                if (de->d_name[0] == '.' ||
                    asprintf(&entry, "%s/%s", images, de->d_name) < 0 ||
                    asprintf(&refs, "%s/refs", entry) < 0)
                        continue;
                if ((skip_entry && streq(entry, skip_entry)) || prune_refs(refs) != 0)
                        continue;
                if (!all && entry_lingers(entry)) {
                        lingering++;
                        continue;
                }
                log_debug("Unmounting %s, whose users are gone.", entry);
                (void) unmount_entry(entry);
        }
        closedir(d);
        return lingering;
}

static int make_paths(ImageMount *m, const char *runtime_dir, const struct stat *st) {
        uint64_t start;
        int r;

        r = process_start_time(getpid(), &start);
        if (r < 0)
                return r;
        m->runtime_dir = strdup(runtime_dir);
        if (!m->runtime_dir ||
            asprintf(&m->entry, "%s/images/%llx-%llx", runtime_dir,
                     (unsigned long long) st->st_dev, (unsigned long long) st->st_ino) < 0 ||
            asprintf(&m->root, "%s/root", m->entry) < 0 ||
            asprintf(&m->refs, "%s/refs", m->entry) < 0 ||
            asprintf(&m->ref, "%s/%d-%llu", m->refs, (int) getpid(), (unsigned long long) start) < 0)
                return -ENOMEM;
        return 0;
}

static int create_ref(const char *ref) {
        int fd = open(ref, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        close(fd);
        return 0;
}

int image_mount_acquire(const char *runtime_dir, const char *image_path, ImageMount **ret) {
        ImageMount *m = NULL;
        _cleanup_close_ int image_fd = -1, lock_fd = -1;
        _cleanup_free_ char *images = NULL;
        struct stat st;
        int r;

        image_fd = open(image_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (image_fd < 0)
                return fail(errno, "Cannot open image %s: %m", image_path);
        if (fstat(image_fd, &st) < 0)
                return fail(errno, "Cannot stat image %s: %m", image_path);
        if (!S_ISREG(st.st_mode))
                return fail(EINVAL, "Image %s is not a regular file.", image_path);

        if (asprintf(&images, "%s/images", runtime_dir) < 0)
                return fail(ENOMEM, "Out of memory.");
        r = mkdir_ok(runtime_dir, 0755);
        if (r >= 0)
                r = mkdir_ok(images, 0755);
        if (r < 0)
                return fail(r, "Cannot create %s: %m", images);

        lock_fd = take_lock(runtime_dir);
        if (lock_fd < 0)
                return fail(lock_fd, "Cannot lock %s/lock: %m", runtime_dir);

        m = calloc(1, sizeof(*m));
        if (!m)
                return fail(ENOMEM, "Out of memory.");
        r = make_paths(m, runtime_dir, &st);
        if (r < 0) {
                (void) fail(r, "Cannot set up the mount of %s below %s: %m", image_path, runtime_dir);
                goto error;
        }
        r = mkdir_ok(m->entry, 0700);
        if (r >= 0)
                r = mkdir_ok(m->root, 0755);
        if (r >= 0)
                r = mkdir_ok(m->refs, 0700);
        if (r < 0) {
                (void) fail(r, "Cannot create %s: %m", m->entry);
                goto error;
        }

        (void) sweep_stale(runtime_dir, m->entry, false);
        r = prune_refs(m->refs);
        if (r >= 0 && !is_mount_point(m->root, m->entry)) {
                r = do_mount(image_fd, image_path, m->root);
                /* what a lingering mount is checked against (image_path is absolute) */
                if (r >= 0)
                        (void) write_entry_file(m->entry, "source", image_path);
        }
        if (r >= 0) {
                r = create_ref(m->ref);
                if (r < 0)
                        (void) fail(r, "Cannot create %s: %m", m->ref);
        }
        if (r < 0)
                goto error;

        *ret = m;
        return 0;

error:
        if (prune_refs(m->refs) == 0)
                (void) unmount_and_remove(m);
        image_mount_free(m);
        return r;
}

int image_mount_derived(ImageMount *m, const char *name, ImageMountMakeFn make, void *userdata, char **ret_root) {
        _cleanup_free_ char *dir = NULL, *root = NULL, *failed = NULL;
        _cleanup_close_ int lock_fd = -1;
        int r;

        if (asprintf(&dir, "%s/" IMAGE_MOUNT_DERIVED_PREFIX "%s", m->entry, name) < 0 ||
            asprintf(&root, "%s/root", dir) < 0 || asprintf(&failed, "%s/failed", dir) < 0)
                return -ENOMEM;
        /* Made before: our reference keeps it (no one unmounts an entry in use), no lock needed.
         * Failed before: not tried again before the image's next mount. */
        if (is_mount_point(root, dir)) {
                *ret_root = TAKE_PTR(root);
                return 0;
        }
        if (access(failed, F_OK) >= 0)
                return -EOPNOTSUPP;
        lock_fd = take_lock(m->runtime_dir);
        if (lock_fd < 0)
                return lock_fd;
        if (!is_mount_point(root, dir)) {
                if (access(failed, F_OK) >= 0)
                        return -EOPNOTSUPP;
                r = remove_derived(dir);       /* what a worker that died while making it left */
                if (r >= 0)
                        r = mkdir_ok(dir, 0700);
                if (r >= 0)
                        r = make(dir, m->root, userdata);
                if (r < 0) {
                        log_notice_errno(r, "Cannot make %s from %s, not trying again while it is mounted: %m", root, m->root);
                        if (remove_derived(dir) >= 0 && mkdir_ok(dir, 0700) >= 0)
                                (void) write_entry_file(dir, "failed", "");
                        return r;
                }
                log_debug("Made %s from %s.", root, m->root);
        }
        *ret_root = TAKE_PTR(root);
        return 0;
}

int image_mount_release_linger(ImageMount *m, unsigned linger_sec) {
        _cleanup_close_ int lock_fd = -1;
        int r = 0, live;

        if (!m)
                return 0;
        lock_fd = take_lock(m->runtime_dir);
        if (lock_fd < 0)
                r = fail(lock_fd, "Cannot lock %s/lock: %m", m->runtime_dir);
        else {
                (void) unlink(m->ref);
                live = prune_refs(m->refs);
                if (live == 0 && linger_sec > 0) {
                        char until[32];

                        snprintf(until, sizeof(until), "%llu\n", (unsigned long long) (boottime_sec() + linger_sec));
                        r = write_entry_file(m->entry, "linger", until);
                        if (r < 0 || !entry_lingers(m->entry))
                                r = unmount_and_remove(m);  /* cannot linger: as ever */
                } else if (live == 0)
                        r = unmount_and_remove(m);
                (void) sweep_stale(m->runtime_dir, m->entry, false);
        }
        image_mount_free(m);
        return r;
}

int image_mount_release(ImageMount *m) {
        return image_mount_release_linger(m, 0);
}

int image_mounts_sweep(const char *runtime_dir, bool all) {
        _cleanup_close_ int lock_fd = -1;
        _cleanup_free_ char *images = NULL;

        if (asprintf(&images, "%s/images", runtime_dir) < 0)
                return -ENOMEM;
        if (access(images, F_OK) < 0)
                return 0;  /* no job ever mounted anything here */
        lock_fd = take_lock(runtime_dir);
        if (lock_fd < 0)
                return log_error_errno(lock_fd, "Cannot lock %s/lock: %m", runtime_dir);
        return sweep_stale(runtime_dir, NULL, all);
}
