/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#include "events.h"
#include "fs-util.h"
#include "hashmap.h"
#include "layer-apply.h"
#include "layer-path.h"
#include "log.h"
#include "macro.h"

typedef struct OwnerRecord {
        char *path; /* key */
        unsigned mode, uid, gid;
} OwnerRecord;

struct LayerApplier {
        int root_fd;
        bool privileged;
        Hashmap *owners;      /* path → OwnerRecord (unprivileged) */
        Hashmap *layer_paths; /* paths this layer created: opaque markers keep them */
        Hashmap *dropped;     /* device nodes we skipped: hardlinks to them are skipped too */
        char *cached_parent;  /* the last parent resolved, and its O_PATH fd */
        int cached_parent_fd;
        const char *subject;
        LayerApplyStats stats;
        uint64_t size_max, files_max;
};

#define RESOLVE_SAFE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

static int openat2_beneath(int dirfd, const char *path, int flags) {
        struct open_how how = {
                .flags = (uint64_t) flags | O_CLOEXEC | O_NOFOLLOW,
                .resolve = RESOLVE_SAFE,
        };
        int fd;

        do
                fd = (int) syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
        while (fd < 0 && errno == EAGAIN);
        return fd < 0 ? -errno : fd;
}

static void string_set_clear(Hashmap *h) {
        char *s;
        size_t i = 0;

        /* the keys are the values: free them, then drop the map (callers make a new one) */
        while (hashmap_iterate(h, &i, (void **) &s, NULL))
                free(s);
}

static void invalidate_cache(LayerApplier *a) {
        a->cached_parent = mfree(a->cached_parent);
        a->cached_parent_fd = safe_close(a->cached_parent_fd);
}

LayerApplier *layer_applier_free(LayerApplier *a) {
        if (!a)
                return NULL;
        invalidate_cache(a);
        if (a->owners) {
                OwnerRecord *o;
                HASHMAP_FOREACH(o, a->owners) {
                        free(o->path);
                        free(o);
                }
                hashmap_free(a->owners);
        }
        if (a->layer_paths) {
                string_set_clear(a->layer_paths);
                hashmap_free(a->layer_paths);
        }
        if (a->dropped) {
                string_set_clear(a->dropped);
                hashmap_free(a->dropped);
        }
        free(a);
        return NULL;
}

int layer_applier_new(int root_fd, bool privileged, LayerApplier **ret) {
        _cleanup_(layer_applier_freep) LayerApplier *a = NULL;

        a = calloc(1, sizeof(LayerApplier));
        if (!a)
                return -ENOMEM;
        a->root_fd = root_fd;
        a->cached_parent_fd = -1;
        a->size_max = a->files_max = UINT64_MAX;
        a->privileged = privileged;
        a->layer_paths = hashmap_new();
        a->dropped = hashmap_new();
        if (!a->layer_paths || !a->dropped)
                return -ENOMEM;
        if (!privileged) {
                a->owners = hashmap_new();
                if (!a->owners)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

void layer_applier_set_limits(LayerApplier *a, uint64_t size_max, uint64_t files_max) {
        a->size_max = size_max ?: UINT64_MAX;
        a->files_max = files_max ?: UINT64_MAX;
}

const LayerApplyStats *layer_applier_stats(LayerApplier *a) {
        return &a->stats;
}

static int record_owner(LayerApplier *a, const char *path, unsigned mode, unsigned uid, unsigned gid) {
        OwnerRecord *o;
        int r;

        if (a->privileged)
                return 0;
        o = hashmap_get(a->owners, path);
        if (!o) {
                o = calloc(1, sizeof(OwnerRecord));
                if (!o)
                        return -ENOMEM;
                o->path = strdup(path);
                if (!o->path) {
                        free(o);
                        return -ENOMEM;
                }
                r = hashmap_put(a->owners, o->path, o);
                if (r < 0) {
                        free(o->path);
                        free(o);
                        return r;
                }
        }
        o->mode = mode;
        o->uid = uid;
        o->gid = gid;
        return 0;
}

static int string_set_add(Hashmap *h, const char *path) {
        char *s;
        int r;

        if (hashmap_get(h, path))
                return 0;
        s = strdup(path);
        if (!s)
                return -ENOMEM;
        r = hashmap_put(h, s, s);
        if (r < 0)
                free(s);
        return r;
}

static int remember_layer_path(LayerApplier *a, const char *path) {
        return string_set_add(a->layer_paths, path);
}

static int refuse(LayerApplier *a, int error, const char *what, const char *name) {
        return worker_error_errno(error, "Refusing layer %s: %s: %s", a->subject, what, name);
}

/* Resolves (and, with create, makes) the directory path below the root; returns a new O_PATH
 * fd. A symlink anywhere on the way is refused: layers must not write through symlinks. */
static int resolve_dir(LayerApplier *a, const char *path, bool create, int *ret_fd) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *copy = NULL;
        char *p, *slash;
        int r;

        if (!*path) {
                fd = fcntl(a->root_fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return -errno;
                *ret_fd = TAKE_FD(fd);
                return 0;
        }

        r = openat2_beneath(a->root_fd, path, O_PATH | O_DIRECTORY);
        if (r >= 0) {
                *ret_fd = r;
                return 0;
        }
        if (r != -ENOENT || !create)
                return r;

        /* Walk component by component, creating what is missing. */
        copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        fd = fcntl(a->root_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        for (p = copy; p; p = slash ? slash + 1 : NULL) {
                int next;

                slash = strchr(p, '/');
                if (slash)
                        *slash = 0;
                next = openat2_beneath(fd, p, O_PATH | O_DIRECTORY);
                if (next == -ENOENT) {
                        if (mkdirat(fd, p, a->privileged ? 0755 : 0700) < 0 && errno != EEXIST)
                                return -errno;
                        if (!a->privileged) {
                                /* implicit parents: root-owned 0755, like docker */
                                _cleanup_free_ char *sofar = NULL;
                                if (slash)
                                        *slash = 0;
                                sofar = strdup(copy);
                                if (!sofar)
                                        return -ENOMEM;
                                r = record_owner(a, sofar, 040755, 0, 0);
                                if (r < 0)
                                        return r;
                        }
                        next = openat2_beneath(fd, p, O_PATH | O_DIRECTORY);
                }
                if (slash)
                        *slash = '/';
                if (next < 0)
                        return next;
                close(fd);
                fd = next;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Whether a component of path (below the root) is a symlink. Only used to explain a refusal
 * that openat2() already made: O_DIRECTORY on a final symlink gives ENOTDIR, not ELOOP. */
static bool path_has_symlink(LayerApplier *a, const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -1;
        char *p, *slash;

        if (!copy)
                return false;
        fd = fcntl(a->root_fd, F_DUPFD_CLOEXEC, 3);
        for (p = copy; fd >= 0 && p; p = slash ? slash + 1 : NULL) {
                struct stat st;
                int next;

                slash = strchr(p, '/');
                if (slash)
                        *slash = 0;
                if (fstatat(fd, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return false;
                if (S_ISLNK(st.st_mode))
                        return true;
                if (!S_ISDIR(st.st_mode))
                        return false;
                next = openat2_beneath(fd, p, O_PATH | O_DIRECTORY);
                close(fd);
                fd = next;
        }
        return false;
}

static int resolve_error(LayerApplier *a, int r, const char *name) {
        if (r == -ENOTDIR) {
                _cleanup_free_ char *n = NULL;
                if (layer_path_normalize(name, &n) >= 0 && path_has_symlink(a, n))
                        r = -ELOOP;
        }
        if (r == -ELOOP)
                return refuse(a, r, "path goes through a symlink", name);
        if (r == -EXDEV)
                return refuse(a, r, "path escapes the image root", name);
        if (r == -ENOTDIR)
                return refuse(a, r, "parent is not a directory", name);
        return worker_error_errno(r, "Layer %s: cannot resolve parent of %s: %m", a->subject, name);
}

/* The parent fd for path, cached: tar entries come grouped by directory. Borrowed. */
static int open_parent(LayerApplier *a, const char *parent, const char *name, int *ret_fd) {
        int fd, r;

        if (a->cached_parent && streq(a->cached_parent, parent)) {
                *ret_fd = a->cached_parent_fd;
                return 0;
        }
        invalidate_cache(a);
        r = resolve_dir(a, parent, true, &fd);
        if (r < 0)
                return resolve_error(a, r, name);
        a->cached_parent = strdup(parent);
        if (!a->cached_parent) {
                close(fd);
                return -ENOMEM;
        }
        a->cached_parent_fd = fd;
        *ret_fd = fd;
        return 0;
}

static int apply_xattrs(LayerApplier *a, int fd, struct archive_entry *e, const char *path) {
        const char *name;
        const void *value;
        size_t size;

        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
                if (!name || !*name)
                        continue;
                if (fsetxattr(fd, name, value, size, 0) < 0) {
                        /* Unprivileged we cannot set trusted.* or security.*; not fatal. */
                        if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP)
                                log_warning("Layer %s: dropping xattr %s of %s: %m", a->subject, name, path);
                        else
                                return worker_error_errno(errno, "Layer %s: cannot set xattr %s on %s: %m", a->subject, name, path);
                }
        }
        return 0;
}

/* Owner, mode, xattrs and mtime for a file or directory we hold an fd of. */
static int apply_metadata_fd(LayerApplier *a, int fd, struct archive_entry *e, const char *path, bool dir) {
        unsigned mode = archive_entry_perm(e) & 07777;
        struct timespec ts[2];
        int r;

        if (a->privileged) {
                if (fchown(fd, archive_entry_uid(e), archive_entry_gid(e)) < 0)
                        return worker_error_errno(errno, "Layer %s: cannot chown %s: %m", a->subject, path);
        } else {
                r = record_owner(a, path, archive_entry_mode(e), (unsigned) archive_entry_uid(e), (unsigned) archive_entry_gid(e));
                if (r < 0)
                        return r;
                /* keep it usable for us and mksquashfs; the pseudo file restores the mode */
                mode |= dir ? 0700 : 0600;
        }
        /* after chown, which clears set-id bits */
        if (fchmod(fd, mode) < 0)
                return worker_error_errno(errno, "Layer %s: cannot chmod %s: %m", a->subject, path);

        r = apply_xattrs(a, fd, e, path);
        if (r < 0)
                return r;

        ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
        ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
        (void) futimens(fd, ts);
        return 0;
}

static int write_data(LayerApplier *a, struct archive *ar, int fd, const char *path) {
        const void *buf;
        size_t size;
        la_int64_t offset, end = 0;

        for (;;) {
                int k = archive_read_data_block(ar, &buf, &size, &offset);
                if (k == ARCHIVE_EOF)
                        break;
                if (k < ARCHIVE_WARN)
                        return worker_error_errno(EBADMSG, "Layer %s is corrupt at %s: %s", a->subject, path, archive_error_string(ar));
                if (offset != end && lseek(fd, offset, SEEK_SET) < 0)
                        return -errno;
                k = loop_write(fd, buf, size);
                if (k < 0)
                        return worker_error_errno(k, "Layer %s: cannot write %s: %m", a->subject, path);
                end = offset + (la_int64_t) size;
                a->stats.bytes += size;
        }
        /* a sparse file may end in a hole */
        if (ftruncate(fd, MAX(end, (la_int64_t) 0)) < 0)
                return -errno;
        return 0;
}

static int apply_whiteout(LayerApplier *a, const char *parent, const char *target, const char *name) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (asprintf(&path, "%s%s%s", parent, *parent ? "/" : "", target) < 0)
                return -ENOMEM;
        if (hashmap_get(a->layer_paths, path))
                return 0; /* created by this very layer: the whiteout is for the lower ones */
        r = resolve_dir(a, parent, false, &fd);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return resolve_error(a, r, name);
        invalidate_cache(a);
        r = rm_rf_at(fd, target);
        if (r < 0)
                return worker_error_errno(r, "Layer %s: cannot delete %s: %m", a->subject, path);
        return 0;
}

static int apply_opaque(LayerApplier *a, const char *parent, const char *name) {
        _cleanup_close_ int pfd = -1, dfd = -1;
        DIR *d;
        struct dirent *de;
        int r = 0;

        r = resolve_dir(a, parent, true, &pfd);
        if (r < 0)
                return resolve_error(a, r, name);
        dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        d = fdopendir(TAKE_FD(dfd));
        if (!d)
                return -errno;
        invalidate_cache(a);
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = NULL;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (asprintf(&path, "%s%s%s", parent, *parent ? "/" : "", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (hashmap_get(a->layer_paths, path))
                        continue;
                r = rm_rf_at(dirfd(d), de->d_name);
                if (r < 0) {
                        r = worker_error_errno(r, "Layer %s: cannot clear %s: %m", a->subject, path);
                        break;
                }
        }
        closedir(d);
        return r;
}

static int apply_hardlink(LayerApplier *a, struct archive_entry *e, int parent_fd, const char *base, const char *path) {
        _cleanup_free_ char *target = NULL, *tparent = NULL;
        _cleanup_close_ int tfd = -1;
        const char *tbase;
        struct stat st;
        int r;

        r = layer_path_normalize(archive_entry_hardlink(e), &target);
        if (r < 0 || !*target)
                return refuse(a, EINVAL, "hardlink target outside the image", archive_entry_hardlink(e));
        if (hashmap_get(a->dropped, target)) {
                a->stats.dropped++;
                return string_set_add(a->dropped, path);
        }
        r = layer_path_split(target, &tparent, &tbase);
        if (r < 0)
                return r;
        r = resolve_dir(a, tparent, false, &tfd);
        if (r == -ENOENT)
                return refuse(a, ENOENT, "hardlink target does not exist", target);
        if (r < 0)
                return resolve_error(a, r, target);
        if (fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return refuse(a, errno, "hardlink target does not exist", target);
        if (S_ISDIR(st.st_mode))
                return refuse(a, EPERM, "hardlink to a directory", target);
        if (linkat(tfd, tbase, parent_fd, base, 0) < 0)
                return worker_error_errno(errno, "Layer %s: cannot link %s to %s: %m", a->subject, path, target);
        if (!a->privileged) {
                OwnerRecord *o = hashmap_get(a->owners, target);
                if (o) {
                        r = record_owner(a, path, o->mode, o->uid, o->gid);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int apply_entry(LayerApplier *a, struct archive *ar, struct archive_entry *e) {
        _cleanup_free_ char *path = NULL, *parent = NULL;
        const char *name = archive_entry_pathname(e), *base, *target;
        mode_t type = archive_entry_filetype(e);
        WhiteoutKind wk;
        struct stat st;
        int parent_fd = -1, r;
        bool exists;

        if (!name)
                return refuse(a, EINVAL, "entry without a name", "(null)");
        r = layer_path_normalize(name, &path);
        if (r < 0)
                return refuse(a, r, "path outside the image", name);

        if (++a->stats.entries > a->files_max)
                return worker_error_errno(EFBIG, "Image has more than ImageFilesMax (%" PRIu64 ") entries; "
                                          "stopped in layer %s at %s", a->files_max, a->subject, name);

        if (!*path) {
                /* the root directory itself ("./") */
                _cleanup_close_ int fd = openat(a->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (type != AE_IFDIR)
                        return refuse(a, EINVAL, "root entry is not a directory", name);
                if (fd < 0)
                        return -errno;
                return apply_metadata_fd(a, fd, e, "", true);
        }

        r = layer_path_split(path, &parent, &base);
        if (r < 0)
                return r;

        r = layer_whiteout_kind(base, &wk, &target);
        if (r < 0)
                return refuse(a, r, "invalid whiteout", name);
        switch (wk) {
        case WHITEOUT_FILE:
                return apply_whiteout(a, parent, target, name);
        case WHITEOUT_OPAQUE:
                return apply_opaque(a, parent, name);
        case WHITEOUT_META:
                return 0;
        case WHITEOUT_NONE:
                break;
        }

        if (!archive_entry_hardlink(e) && type != AE_IFREG && type != AE_IFCHR && type != AE_IFBLK && type != AE_IFSOCK && type != AE_IFDIR && type != AE_IFLNK && type != AE_IFIFO)
                return refuse(a, EINVAL, "unsupported entry type", name);

        r = open_parent(a, parent, name, &parent_fd);
        if (r < 0)
                return r;

        exists = fstatat(parent_fd, base, &st, AT_SYMLINK_NOFOLLOW) >= 0;
        if (!exists && errno != ENOENT)
                return worker_error_errno(errno, "Layer %s: cannot stat %s: %m", a->subject, path);

        r = remember_layer_path(a, path);
        if (r < 0)
                return r;

        if (exists && !(S_ISDIR(st.st_mode) && type == AE_IFDIR && !archive_entry_hardlink(e))) {
                r = rm_rf_at(parent_fd, base);
                if (r < 0)
                        return worker_error_errno(r, "Layer %s: cannot replace %s: %m", a->subject, path);
                exists = false;
        }

        if (!archive_entry_hardlink(e) && (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK)) {
                /* what it replaced is gone, the node itself is not created */
                a->stats.dropped++;
                log_debug("Layer %s: dropping device node or socket %s", a->subject, path);
                return string_set_add(a->dropped, path);
        }

        if (archive_entry_hardlink(e))
                return apply_hardlink(a, e, parent_fd, base, path);

        switch (type) {

        case AE_IFDIR: {
                _cleanup_close_ int fd = -1;

                if (!exists && mkdirat(parent_fd, base, 0700) < 0)
                        return worker_error_errno(errno, "Layer %s: cannot create directory %s: %m", a->subject, path);
                fd = openat(parent_fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return worker_error_errno(errno, "Layer %s: cannot open directory %s: %m", a->subject, path);
                return apply_metadata_fd(a, fd, e, path, true);
        }

        case AE_IFREG: {
                _cleanup_close_ int fd = -1;

                /* A sparse entry costs little tar but its full size in mksquashfs's reading:
                 * the file sizes count against ImageSizeMax too. */
                a->stats.apparent += (uint64_t) MAX(archive_entry_size(e), (la_int64_t) 0);
                if (a->stats.apparent > a->size_max)
                        return worker_error_errno(EFBIG, "Image is larger than ImageSizeMax (%" PRIu64 " bytes unpacked); "
                                                  "stopped in layer %s at %s", a->size_max, a->subject, name);

                fd = openat(parent_fd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return worker_error_errno(errno, "Layer %s: cannot create %s: %m", a->subject, path);
                r = write_data(a, ar, fd, path);
                if (r < 0)
                        return r;
                return apply_metadata_fd(a, fd, e, path, false);
        }

        case AE_IFIFO: {
                /* opening a FIFO would block: set its metadata through the parent */
                if (mkfifoat(parent_fd, base, 0600) < 0)
                        return worker_error_errno(errno, "Layer %s: cannot create FIFO %s: %m", a->subject, path);
                if (a->privileged && fchownat(parent_fd, base, archive_entry_uid(e), archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (fchmodat(parent_fd, base, archive_entry_perm(e) & 07777, 0) < 0)
                        return -errno;
                return record_owner(a, path, archive_entry_mode(e), (unsigned) archive_entry_uid(e), (unsigned) archive_entry_gid(e));
        }

        case AE_IFLNK: {
                const char *t = archive_entry_symlink(e);
                struct timespec ts[2];

                if (!t || !*t)
                        return refuse(a, EINVAL, "symlink without target", name);
                /* The target is stored, never followed by us, so it may point anywhere. */
                if (symlinkat(t, parent_fd, base) < 0)
                        return worker_error_errno(errno, "Layer %s: cannot create symlink %s: %m", a->subject, path);
                if (a->privileged && fchownat(parent_fd, base, archive_entry_uid(e), archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
                        return worker_error_errno(errno, "Layer %s: cannot chown %s: %m", a->subject, path);
                ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
                ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
                (void) utimensat(parent_fd, base, ts, AT_SYMLINK_NOFOLLOW);
                return record_owner(a, path, archive_entry_mode(e), (unsigned) archive_entry_uid(e), (unsigned) archive_entry_gid(e));
        }
        }
        return 0;
}

int layer_applier_apply(LayerApplier *a, struct archive *ar, const char *subject) {
        struct archive_entry *e;
        int r;

        a->subject = subject;
        string_set_clear(a->layer_paths);
        hashmap_free(a->layer_paths);
        a->layer_paths = hashmap_new();
        if (!a->layer_paths)
                return -ENOMEM;
        invalidate_cache(a);

        for (;;) {
                int k = archive_read_next_header(ar, &e);
                if (k == ARCHIVE_EOF)
                        break;
                if (k < ARCHIVE_WARN)
                        return worker_error_errno(EBADMSG, "Layer %s is corrupt: %s", subject, strna(archive_error_string(ar)));
                r = apply_entry(a, ar, e);
                if (r < 0)
                        return r;
        }
        invalidate_cache(a);
        return 0;
}

int layer_applier_ensure_dir(LayerApplier *a, const char *path, unsigned mode) {
        _cleanup_free_ char *parent = NULL;
        _cleanup_close_ int fd = -1;
        const char *base;
        int r;

        r = layer_path_split(path, &parent, &base);
        if (r < 0)
                return r;
        r = resolve_dir(a, parent, true, &fd);
        if (r < 0)
                return r;
        if (mkdirat(fd, base, mode) < 0) {
                if (errno == EEXIST)
                        return 0;
                return -errno;
        }
        /* mkdirat() applied the umask; the image's directory gets exactly its mode. */
        if (fchmodat(fd, base, mode, 0) < 0)
                return -errno;
        return record_owner(a, path, S_IFDIR | mode, 0, 0);
}

/* Quotes a path for a pseudo file: mksquashfs accepts double quotes and backslash escapes. */
static void write_quoted(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        fputc('\\', f);
                fputc(*s, f);
        }
        fputc('"', f);
}

static int walk_pseudo(LayerApplier *a, int dfd, char *path, size_t len, FILE *f) {
        DIR *d;
        struct dirent *de;
        int r = 0, fd;

        fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                struct stat st;
                OwnerRecord *o;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (len + 1 + l >= PATH_MAX) {
                        r = -ENAMETOOLONG;
                        break;
                }
                if (len > 0)
                        path[len] = '/';
                memcpy(path + len + (len > 0), de->d_name, l + 1);
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = -errno;
                        break;
                }
                /* The pseudo file is line based: a newline in a name would let a layer add its
                 * own definitions (modes, owners, even commands to run). Refuse those names. */
                if (strpbrk(path, "\n\r")) {
                        r = worker_error_errno(EINVAL, "Cannot convert unprivileged: file name with a line break: %s", path);
                        break;
                }
                o = hashmap_get(a->owners, path);
                write_quoted(f, path);
                fprintf(f, " m %o %u %u\n", o ? o->mode & 07777 : st.st_mode & 07777, o ? o->uid : 0, o ? o->gid : 0);

                if (S_ISDIR(st.st_mode)) {
                        int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (cfd < 0) {
                                r = -errno;
                                break;
                        }
                        r = walk_pseudo(a, cfd, path, len + (len > 0) + l, f);
                        close(cfd);
                        if (r < 0)
                                break;
                }
                path[len] = 0;
        }
        closedir(d);
        return r;
}

int layer_applier_write_pseudo_file(LayerApplier *a, FILE *f, unsigned *ret_root_mode, unsigned *ret_root_uid, unsigned *ret_root_gid) {
        _cleanup_free_ char *path = NULL;
        OwnerRecord *root;
        int r;

        if (a->privileged)
                return -EINVAL;
        path = calloc(1, PATH_MAX);
        if (!path)
                return -ENOMEM;
        r = walk_pseudo(a, a->root_fd, path, 0, f);
        if (r < 0)
                return r;
        root = hashmap_get(a->owners, "");
        *ret_root_mode = root ? root->mode & 07777 : 0755;
        *ret_root_uid = root ? root->uid : 0;
        *ret_root_gid = root ? root->gid : 0;
        return fflush(f) == 0 ? 0 : -errno;
}
