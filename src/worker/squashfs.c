/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include "cancel.h"
#include "events.h"
#include "log.h"
#include "macro.h"
#include "squashfs.h"

static const char * const compressor_names[] = {
        [SQUASHFS_ZSTD] = "zstd",
        [SQUASHFS_LZ4] = "lz4",
        [SQUASHFS_GZIP] = "gzip",
        [SQUASHFS_XZ] = "xz",
};

int squashfs_compressor_from_string(const char *s, SquashfsCompressor *ret) {
        for (size_t i = 0; i < ELEMENTSOF(compressor_names); i++)
                if (streq(s, compressor_names[i])) {
                        *ret = (SquashfsCompressor) i;
                        return 0;
                }
        return -EINVAL;
}

const char *squashfs_compressor_to_string(SquashfsCompressor c) {
        return (size_t) c < ELEMENTSOF(compressor_names) ? compressor_names[c] : NULL;
}

int squashfs_level_check(SquashfsCompressor c, int level) {
        switch (c) {
        case SQUASHFS_ZSTD:
                return level >= 1 && level <= 22 ? 0 : -ERANGE;
        case SQUASHFS_GZIP:
                return level >= 1 && level <= 9 ? 0 : -ERANGE;
        case SQUASHFS_LZ4:
                /* lz4 has two modes: 1 is the fast one, anything higher uses -Xhc */
                return level >= 1 && level <= 12 ? 0 : -ERANGE;
        case SQUASHFS_XZ:
                return level >= 0 && level <= 9 ? 0 : -ERANGE; /* accepted, mksquashfs takes none */
        }
        return -EINVAL;
}

static int wait_child(pid_t pid, const char *name) {
        int status;

        while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR)
                        return worker_error_errno(errno, "Cannot wait for %s: %m", name);
                if (cancelled())
                        (void) kill(pid, SIGTERM);
        }
        if (cancelled())
                return -EINTR;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (WIFEXITED(status))
                return worker_error_errno(EIO, "%s failed with exit status %d", name, WEXITSTATUS(status));
        return worker_error_errno(EIO, "%s was killed by signal %d", name, WTERMSIG(status));
}

int squashfs_build(const char *src, const char *dest, const SquashfsOptions *o) {
        char level[16], processors[16], rmode[16], ruid[16], rgid[16];
        const char *argv[32];
        const char *binary = getenv("GATEWAYD_MKSQUASHFS") ?: "mksquashfs";
        size_t n = 0;
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        pid_t pid;

        snprintf(processors, sizeof(processors), "%u", o->processors ?: (unsigned) MAX(ncpu, 1L));
        argv[n++] = binary;
        argv[n++] = src;
        argv[n++] = dest;
        argv[n++] = "-noappend";
        argv[n++] = "-no-progress";
        argv[n++] = "-quiet";
        argv[n++] = "-processors";
        argv[n++] = processors;
        argv[n++] = "-comp";
        argv[n++] = compressor_names[o->compressor];

        switch (o->compressor) {
        case SQUASHFS_ZSTD:
        case SQUASHFS_GZIP:
                snprintf(level, sizeof(level), "%d", o->level >= 0 ? o->level : o->compressor == SQUASHFS_ZSTD ? 3 : 6);
                argv[n++] = "-Xcompression-level";
                argv[n++] = level;
                break;
        case SQUASHFS_LZ4:
                if (o->level > 1)
                        argv[n++] = "-Xhc";
                break;
        case SQUASHFS_XZ:
                break;
        }

        if (o->pseudo_file) {
                argv[n++] = "-pf";
                argv[n++] = o->pseudo_file;
        }
        if (o->set_root) {
                snprintf(rmode, sizeof(rmode), "%o", o->root_mode & 07777);
                snprintf(ruid, sizeof(ruid), "%u", o->root_uid);
                snprintf(rgid, sizeof(rgid), "%u", o->root_gid);
                argv[n++] = "-root-mode";
                argv[n++] = rmode;
                argv[n++] = "-root-uid";
                argv[n++] = ruid;
                argv[n++] = "-root-gid";
                argv[n++] = rgid;
        }
        argv[n] = NULL;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return worker_error_errno(errno, "Cannot fork: %m");
        if (pid == 0) {
                /* stdout may be the events stream: mksquashfs's chatter goes to stderr */
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, STDIN_FILENO);
                dup2(STDERR_FILENO, STDOUT_FILENO);
                execvp(binary, (char **) argv);
                fprintf(stderr, "Cannot execute %s: %m\n", binary);
                _exit(127);
        }

        return wait_child(pid, "mksquashfs");
}

static const char *tar2sqfs_binary(void) {
        return getenv("GATEWAYD_TAR2SQFS") ?: "tar2sqfs";
}

bool squashfs_stream_available(void) {
        const char *b = tar2sqfs_binary(), *path = getenv("PATH") ?: "/usr/bin:/bin";

        if (strchr(b, '/'))
                return access(b, X_OK) >= 0;
        while (*path) {
                size_t l = strcspn(path, ":");
                _cleanup_free_ char *f = NULL;

                if (l > 0 && asprintf(&f, "%.*s/%s", (int) l, path, b) >= 0 && access(f, X_OK) >= 0)
                        return true;
                path += l + (path[l] == ':');
        }
        return false;
}

/* The writer's environment: ours, with glibc's malloc backing its arenas with transparent huge
 * pages (glibc >= 2.35; older ones ignore the tunable). tar2sqfs allocates a block buffer per
 * 128 KiB block; the first touch of fresh 4 KiB pages is what costs on a VM, huge pages take
 * about a fiftieth of it. Built before fork(): the pulling threads may hold malloc's locks. */
static void env_freep(char ***env) {
        size_t n = 0;

        if (!*env)
                return;
        while ((*env)[n])
                n++;
        /* only the last entry is ours; the others are environ's */
        if (n > 0)
                free((*env)[n - 1]);
        free(*env);
}

static char **writer_environment(void) {
        extern char **environ;
        const char *tunable = "glibc.malloc.hugetlb=1", *old = getenv("GLIBC_TUNABLES");
        size_t n = 0, k = 0;
        char **env;

        while (environ[n])
                n++;
        env = calloc(n + 2, sizeof(char *));
        if (!env)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "GLIBC_TUNABLES=", 15) != 0)
                        env[k++] = environ[i];
        /* the caller's own tunables stand, ours goes first so that theirs win on conflict */
        if (asprintf(&env[k], "GLIBC_TUNABLES=%s%s%s", tunable, old && *old ? ":" : "", old ?: "") < 0)
                return mfree(env);
        return env;
}

int squashfs_stream_start(const char *dest, const SquashfsOptions *o, int *ret_fd, pid_t *ret_pid) {
        char jobs[16], extra[32];
        const char *argv[24];
        const char *binary = tar2sqfs_binary();
        _cleanup_(env_freep) char **env = NULL;
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        size_t n = 0;
        int fds[2];
        pid_t pid;

        snprintf(jobs, sizeof(jobs), "%u", o->processors ?: (unsigned) MAX(ncpu, 1L));
        argv[n++] = binary;
        argv[n++] = "--quiet";
        argv[n++] = "--force";
        argv[n++] = "--no-skip";      /* a tar record it cannot read fails the image */
        argv[n++] = "--num-jobs";
        argv[n++] = jobs;
        argv[n++] = "--compressor";
        argv[n++] = compressor_names[o->compressor];
        switch (o->compressor) {
        case SQUASHFS_ZSTD:
        case SQUASHFS_GZIP:
                snprintf(extra, sizeof(extra), "level=%d", o->level >= 0 ? o->level : o->compressor == SQUASHFS_ZSTD ? 3 : 6);
                argv[n++] = "--comp-extra";
                argv[n++] = extra;
                break;
        case SQUASHFS_LZ4:
                if (o->level > 1) {
                        argv[n++] = "--comp-extra";
                        argv[n++] = "hc";
                }
                break;
        case SQUASHFS_XZ:
                break;
        }
        argv[n++] = "--defaults";
        argv[n++] = "uid=0,gid=0,mode=0755";
        argv[n++] = dest;
        argv[n] = NULL;

        env = writer_environment();
        if (!env)
                return -ENOMEM;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return worker_error_errno(errno, "Cannot create a pipe: %m");
        /* fewer, larger hops between the merger and the writer */
        (void) fcntl(fds[1], F_SETPIPE_SZ, 1024 * 1024);

        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(fds[0]);
                close(fds[1]);
                return worker_error_errno(r, "Cannot fork: %m");
        }
        if (pid == 0) {
                /* a killed worker must not leave a writer finishing a truncated image */
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                dup2(fds[0], STDIN_FILENO);
                dup2(STDERR_FILENO, STDOUT_FILENO);
                execvpe(binary, (char **) argv, env);
                fprintf(stderr, "Cannot execute %s: %m\n", binary);
                _exit(127);
        }
        close(fds[0]);
        *ret_fd = fds[1];
        *ret_pid = pid;
        return 0;
}

int squashfs_stream_wait(pid_t pid) {
        return wait_child(pid, "tar2sqfs");
}
