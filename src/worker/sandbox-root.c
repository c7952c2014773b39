/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <dirent.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "log.h"
#include "macro.h"
#include "result-files.h"
#include "sandbox-root.h"

/* Bump when the skeleton changes: a worker of a new version does not use an old one's lingering
 * root. */
#define SANDBOX_ROOT_VERSION 1

typedef enum SkelKind {
        SKEL_MERGED,    /* a directory whose image counterpart shows through */
        SKEL_OPAQUE,    /* a directory that hides the image's of that name */
        SKEL_FILE,      /* an empty file: a mount point for a file */
        SKEL_WHITEOUT,  /* hides the image's entry of that name */
} SkelKind;

/* The mode whatever the umask (a worker under Slurm has its user's, 077 say): the merged
 * directories' modes are the sandbox's, "/" and /var among them. */
static int set_mode(int fd, mode_t mode) {
        return fchmod(fd, mode) < 0 ? -errno : 0;
}

static int skel_add(int skel_fd, const char *path, SkelKind kind) {
        _cleanup_close_ int fd = -1;
        int r;

        switch (kind) {
        case SKEL_MERGED:
        case SKEL_OPAQUE:
                if (mkdirat(skel_fd, path, 0755) < 0)
                        return -errno;
                fd = openat(skel_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                r = set_mode(fd, 0755);
                if (r >= 0 && kind == SKEL_OPAQUE && fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) < 0)
                        r = -errno;
                return r;
        case SKEL_FILE:
                fd = openat(skel_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (fd < 0)
                        return -errno;
                return set_mode(fd, 0644);
        case SKEL_WHITEOUT:
                /* overlayfs's whiteout: a character device 0:0 */
                return mknodat(skel_fd, path, S_IFCHR | 0000, makedev(0, 0)) < 0 ? -errno : 0;
        }
        return -EINVAL;
}

/* Device nodes, fifos and sockets of the image's directory rel ("." or a top-level directory)
 * are whited out, as sandbox.c's entry-by-entry root skips them. A symlink in the image's place
 * of rel is not followed: the skeleton's directory hides it and everything below. */
static int skel_hide_specials(int skel_fd, const char *image_root, const char *rel) {
        _cleanup_close_ int root_fd = -1;
        struct dirent *de;
        int fd, r = 0;
        DIR *d;

        root_fd = open(image_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return -errno;
        fd = openat(root_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 0 : -errno;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        while (r >= 0 && (de = readdir(d))) {
                char path[NAME_MAX + 16];
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, "..") ||
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", rel, de->d_name);
                r = skel_add(skel_fd, path, SKEL_WHITEOUT);
                if (r == -EEXIST)      /* the skeleton has its own entry there */
                        r = 0;
        }
        closedir(d);
        return r;
}

static int skel_make(int skel_fd, const char *image_root, SandboxRootFlags f) {
        const struct {
                const char *path;
                SkelKind kind;
                bool want;
        } entries[] = {
                /* mounted over in every sandbox */
                { "proc",                          SKEL_OPAQUE,   true },
                { "dev",                           SKEL_OPAQUE,   true },
                { "tmp",                           SKEL_OPAQUE,   true },
                { SANDBOX_INIT_PATH + 1,           SKEL_FILE,     true },
                { "var",                           SKEL_MERGED,   true },
                { "var/input",                     SKEL_OPAQUE,   true },
                { "var/input/data.json",           SKEL_FILE,     true },
                { "var/input/params.json",         SKEL_FILE,     true },
                /* a program's files and arguments */
                { "program",                       SKEL_OPAQUE,   f & SANDBOX_ROOT_PROGRAM },
                { "program",                       SKEL_WHITEOUT, !(f & SANDBOX_ROOT_PROGRAM) },
                { "var/input/arguments.json",      SKEL_FILE,     f & SANDBOX_ROOT_PROGRAM },
                /* the result files' tmpfs at RESULT_FILES_PATH, in a /var/runtime of the
                 * sandbox's own (never the image's) */
                { "var/runtime",                   SKEL_OPAQUE,   f & SANDBOX_ROOT_OUTPUT },
                { RESULT_FILES_PATH + 1,           SKEL_OPAQUE,   f & SANDBOX_ROOT_OUTPUT },
                { "var/runtime",                   SKEL_WHITEOUT, !(f & SANDBOX_ROOT_OUTPUT) },
                /* a lab member's writable layer */
                { SANDBOX_WRITABLE_PATH + 1,       SKEL_OPAQUE,   f & SANDBOX_ROOT_LAB },
                /* the job's own hosts and resolver files, never the image's */
                { "etc",                           SKEL_MERGED,   f & SANDBOX_ROOT_OWN_ETC },
                { "etc/hosts",                     SKEL_FILE,     (f & SANDBOX_ROOT_OWN_ETC) && (f & SANDBOX_ROOT_HOSTS) },
                { "etc/hosts",                     SKEL_WHITEOUT, (f & SANDBOX_ROOT_OWN_ETC) && !(f & SANDBOX_ROOT_HOSTS) },
                { "etc/resolv.conf",               SKEL_FILE,     (f & SANDBOX_ROOT_OWN_ETC) && (f & SANDBOX_ROOT_RESOLV) },
                { "etc/resolv.conf",               SKEL_WHITEOUT, (f & SANDBOX_ROOT_OWN_ETC) && !(f & SANDBOX_ROOT_RESOLV) },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(entries); i++) {
                if (!entries[i].want)
                        continue;
                r = skel_add(skel_fd, entries[i].path, entries[i].kind);
                if (r < 0)
                        return log_debug_errno(r, "Cannot create %s in the sandbox root's skeleton: %m", entries[i].path);
        }
        r = skel_hide_specials(skel_fd, image_root, ".");
        if (r >= 0)
                r = skel_hide_specials(skel_fd, image_root, "var");
        if (r >= 0 && (f & SANDBOX_ROOT_OWN_ETC))
                r = skel_hide_specials(skel_fd, image_root, "etc");
        if (r < 0)
                return log_debug_errno(r, "Cannot hide the image's special files in the sandbox root: %m");
        return 0;
}

typedef struct MakeArgs {
        SandboxRootFlags flags;
} MakeArgs;

/* Makes DIR/skel and mounts DIR/root (image_mount_derived()'s maker). */
static int make_root(const char *dir, const char *image_root, void *userdata) {
        const MakeArgs *args = userdata;
        _cleanup_close_ int dir_fd = -1, skel_fd = -1, image_fd = -1;
        _cleanup_free_ char *root = NULL, *options = NULL;
        int r;

        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;
        if (mkdirat(dir_fd, "skel", 0755) < 0 || mkdirat(dir_fd, "root", 0755) < 0)
                return -errno;
        skel_fd = openat(dir_fd, "skel", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (skel_fd < 0)
                return -errno;
        r = set_mode(skel_fd, 0755);   /* the sandbox's "/" */
        if (r >= 0)
                r = skel_make(skel_fd, image_root, args->flags);
        if (r < 0)
                return r;

        image_fd = open(image_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (image_fd < 0)
                return -errno;
        /* The layers by our own fds: the options, which the job can read in /proc/self/mountinfo,
         * name no host path (and no ',' or ':' of one can break them). skel is the upper of the
         * two lower layers; with no upperdir the overlay is read-only. */
        if (asprintf(&root, "%s/root", dir) < 0 ||
            asprintf(&options, "lowerdir=/proc/self/fd/%d:/proc/self/fd/%d,redirect_dir=nofollow,metacopy=off,xino=off",
                     skel_fd, image_fd) < 0)
                return -ENOMEM;
        /* nodev: a device node in an image never opens in a sandbox (nor does one of the
         * skeleton's whiteouts); nosuid: no set-uid file gains anything. Keep both. */
        if (mount("overlay", root, "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, options) < 0)
                return log_debug_errno(errno, "Cannot mount the sandbox root overlay on %s: %m", root);
        return 0;
}

int sandbox_root_acquire(ImageMount *m, SandboxRootFlags flags, char **ret) {
        char name[64];

        assert(flags < _SANDBOX_ROOT_FLAGS_MAX);
        snprintf(name, sizeof(name), "sandbox-%d-%02x", SANDBOX_ROOT_VERSION, (unsigned) flags);
        return image_mount_derived(m, name, make_root, &(MakeArgs) { .flags = flags }, ret);
}
