/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>

#include "macro.h"
#include "result-files.h"
#include "sandbox.h"

typedef struct Argv {
        char **v;
        size_t n, alloc;
} Argv;

static int argv_add(Argv *a, const char *s) {
        if (a->n + 2 > a->alloc) {
                size_t n = MAX(a->alloc * 2, (size_t) 64);
                char **t = realloc(a->v, n * sizeof(char *));
                if (!t)
                        return -ENOMEM;
                a->v = t;
                a->alloc = n;
        }
        a->v[a->n] = strdup(s);
        if (!a->v[a->n])
                return -ENOMEM;
        a->v[++a->n] = NULL;
        return 0;
}

static int argv_addv(Argv *a, size_t n, ...) {
        va_list ap;
        int r = 0;

        va_start(ap, n);
        for (size_t i = 0; i < n && r >= 0; i++)
                r = argv_add(a, va_arg(ap, const char *));
        va_end(ap);
        return r;
}

static int argv_addf(Argv *a, const char *format, ...) _printf_(2, 3);
static int argv_addf(Argv *a, const char *format, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return argv_add(a, s);
}

/* A tmpfs for everyone's files (mode 1777, sticky), size bytes (0: tmpfs's default, half of
 * RAM). bwrap mounts it nosuid,nodev. */
static int add_tmpfs(Argv *a, const char *dest, uint64_t size) {
        int r;

        r = argv_addv(a, 2, "--perms", "1777");
        if (r >= 0 && size > 0) {
                r = argv_add(a, "--size");
                if (r >= 0)
                        r = argv_addf(a, "%" PRIu64, size);
        }
        if (r >= 0)
                r = argv_addv(a, 2, "--tmpfs", dest);
        return r;
}

/* Entries of the sandbox root that are never taken from the image. */
static bool is_replaced(const char *dest) {
        static const char * const replaced[] = { "/proc", "/dev", "/tmp", "/var/input", "/var/runtime", "/program", SANDBOX_INIT_PATH, NULL };
        for (const char * const *r = replaced; *r; r++)
                if (streq(dest, *r))
                        return true;
        return false;
}

static int compare_names(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

/* Binds (or re-creates, for symlinks) each entry of host directory src at dest (no trailing
 * "/"; "" for the root). own_etc (a job with network, lab members included): /etc is rebuilt
 * like /var, so that a hosts and resolver file can be bound at /etc/hosts and /etc/resolv.conf
 * whether or not the image has them, and the image's make way for them (its name servers are
 * those of wherever it was built, not of the network the job is in). lab (a lab member): the
 * image's /var/lab makes way for the member's writable layer. */
static int bind_entries(Argv *a, const char *src, const char *dest, bool expand_var, bool own_etc, bool lab) {
        struct dirent **names = NULL;
        int n, r = 0;

        n = scandir(src, &names, NULL, compare_names);
        if (n < 0)
                return -errno;

        for (int i = 0; i < n && r >= 0; i++) {
                const char *name = names[i]->d_name;
                char from[PATH_MAX], to[PATH_MAX], target[PATH_MAX];
                struct stat st;
                ssize_t l;

                if (streq(name, ".") || streq(name, ".."))
                        continue;
                if ((size_t) snprintf(from, sizeof(from), "%s/%s", src, name) >= sizeof(from) ||
                    (size_t) snprintf(to, sizeof(to), "%s/%s", dest, name) >= sizeof(to))
                        continue;
                if (is_replaced(to) || lstat(from, &st) < 0)
                        continue;
                if (own_etc && (streq(to, "/etc/hosts") || streq(to, "/etc/resolv.conf")))
                        continue;
                if (lab && streq(to, SANDBOX_WRITABLE_PATH))
                        continue;

                if (S_ISLNK(st.st_mode)) {
                        /* /var as a symlink cannot hold /var/input; a real /var is made below. */
                        if ((expand_var && streq(to, "/var")) || (own_etc && streq(to, "/etc")))
                                continue;
                        l = readlink(from, target, sizeof(target) - 1);
                        if (l < 0)
                                continue;
                        target[l] = 0;
                        r = argv_addv(a, 3, "--symlink", target, to);
                } else if (S_ISDIR(st.st_mode) && expand_var && streq(to, "/var")) {
                        r = argv_addv(a, 2, "--dir", "/var");
                        if (r >= 0)
                                r = bind_entries(a, from, "/var", false, own_etc, lab);
                } else if (S_ISDIR(st.st_mode) && own_etc && streq(to, "/etc")) {
                        r = argv_addv(a, 2, "--dir", "/etc");
                        if (r >= 0)
                                r = bind_entries(a, from, "/etc", false, own_etc, lab);
                } else if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))
                        r = argv_addv(a, 3, "--ro-bind", from, to);
                /* Device nodes, fifos and sockets in an image are not carried into a sandbox. */
        }

        for (int i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r;
}

static bool own_etc(const SandboxParams *p) {
        return p->network || p->hosts_path || p->resolv_path || p->writable_path;
}

SandboxRootFlags sandbox_root_flags(const SandboxParams *p) {
        return (own_etc(p) ? SANDBOX_ROOT_OWN_ETC : 0) |
                (p->hosts_path ? SANDBOX_ROOT_HOSTS : 0) |
                (p->resolv_path ? SANDBOX_ROOT_RESOLV : 0) |
                (p->writable_path ? SANDBOX_ROOT_LAB : 0) |
                (p->program_root ? SANDBOX_ROOT_PROGRAM : 0) |
                (p->output_path ? SANDBOX_ROOT_OUTPUT : 0);
}

int sandbox_build_argv(const SandboxParams *p, char ***ret) {
        Argv a = {};
        int r;

        r = argv_addv(&a, 9, p->bwrap,
                      "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
                      /* covers the sandbox's setup; once our init changed uid, its lifeline does */
                      "--die-with-parent",
                      /* no TIOCSTI into a terminal we might have */
                      "--new-session",
                      /* our init is pid 1, so it can forward signals and report the exit */
                      "--as-pid-1",
                      "--json-status-fd");
        if (r >= 0)
                r = argv_addf(&a, "%d", p->json_status_fd);
        if (r >= 0 && p->seccomp_fd > STDERR_FILENO) {
                r = argv_add(&a, "--seccomp");
                if (r >= 0)
                        r = argv_addf(&a, "%d", p->seccomp_fd);
        }
        if (r >= 0 && !p->network && !p->netns_given)
                r = argv_add(&a, "--unshare-net");
        if (r >= 0 && p->hostname)
                r = argv_addv(&a, 2, "--hostname", p->hostname);

        /* A root made for this image and these parameters holds every mount point below
         * (sandbox-root.c), read-only, nosuid and nodev like the image's mount. */
        if (r >= 0 && p->root)
                r = argv_addv(&a, 3, "--ro-bind", p->root, "/");
        else if (r >= 0)
                r = bind_entries(&a, p->image_root, "", true, own_etc(p), p->writable_path);
        /* The "--dir"s below are for bwrap's tmpfs root: a root of ours has them all. */
        if (r >= 0 && !p->root && (p->hosts_path || p->resolv_path))
                r = argv_addv(&a, 2, "--dir", "/etc");     /* no-op if the image has one */
        if (r >= 0 && p->hosts_path)
                r = argv_addv(&a, 3, "--ro-bind", p->hosts_path, "/etc/hosts");
        if (r >= 0 && p->resolv_path)
                r = argv_addv(&a, 3, "--ro-bind", p->resolv_path, "/etc/resolv.conf");
        if (r >= 0 && !p->root)
                r = argv_addv(&a, 2, "--dir", "/var");     /* no-op if the image has one */
        if (r >= 0)
                r = argv_addv(&a, 4,
                              "--proc", "/proc",
                              "--dev", "/dev");
        if (r >= 0)
                r = add_tmpfs(&a, "/tmp", p->tmp_size);
        /* bwrap's /dev has /dev/shm only as a root-owned directory: POSIX semaphores and shared
         * memory (Python's multiprocessing) need a writable one, private to the job. */
        if (r >= 0)
                r = add_tmpfs(&a, "/dev/shm", p->shm_size);
        if (r >= 0 && !p->root)
                r = argv_addv(&a, 2, "--dir", "/var/input");
        if (r >= 0)
                r = argv_addv(&a, 3, "--ro-bind", p->data_path, "/var/input/data.json");
        if (r >= 0)
                r = argv_addv(&a, 6,
                              "--ro-bind", p->params_path, "/var/input/params.json",
                              "--ro-bind", p->init, SANDBOX_INIT_PATH);
        /* The job's result files (result-files.h): the worker's tmpfs, writable, at the path
         * PlanQK's runtime uses. /var/runtime itself is the sandbox root's (the image's is left
         * out: a squashfs cannot grow the mount point). */
        if (r >= 0 && p->output_path && !p->root)
                r = argv_addv(&a, 2, "--dir", "/var/runtime");
        if (r >= 0 && p->output_path)
                r = argv_addv(&a, 3, "--bind", p->output_path, RESULT_FILES_PATH);
        /* A program's own files: a layer of their own over the base image, read-only. */
        if (r >= 0 && p->program_root)
                r = argv_addv(&a, 3, "--ro-bind", p->program_root, "/program");
        if (r >= 0 && p->arguments_path)
                r = argv_addv(&a, 3, "--ro-bind", p->arguments_path, "/var/input/arguments.json");
        if (r >= 0 && p->writable_path)
                r = argv_addv(&a, 3, "--bind", p->writable_path, SANDBOX_WRITABLE_PATH);
        /* bwrap's tmpfs root, read-only at last; a root of ours is read-only already */
        if (r >= 0 && !p->root)
                r = argv_addv(&a, 2, "--remount-ro", "/");
        if (r >= 0)
                r = argv_addv(&a, 2, "--chdir", p->workdir);

        if (r >= 0)
                r = argv_addv(&a, 2, "--", SANDBOX_INIT_PATH);
        if (r >= 0)
                r = argv_addf(&a, "%d", p->init_status_fd);
        if (r >= 0)
                r = argv_addf(&a, "%d", p->lifeline_fd);
        if (r >= 0)
                r = argv_addf(&a, "%u", (unsigned) p->uid);
        if (r >= 0)
                r = argv_addf(&a, "%u", (unsigned) p->gid);
        if (r >= 0)
                r = argv_add(&a, "--");
        for (char * const *c = p->command; r >= 0 && c && *c; c++)
                r = argv_add(&a, *c);

        if (r < 0) {
                strv_free(a.v);
                return r;
        }
        *ret = a.v;
        return 0;
}
