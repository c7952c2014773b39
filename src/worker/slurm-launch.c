/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gateway-slurm-launch SPOOLDIR: the setuid-root launcher that a gatewayd Slurm job's batch
 * script execs on the compute node. The step runs as the job's owner, who cannot loop-mount the
 * image; the launcher checks that SPOOLDIR is a job gatewayd prepared for exactly this user, on
 * an image inside the image directory, and then runs the unchanged "gateway-worker run" as root,
 * which mounts the image and sandboxes the job as the user like on every other platform.
 * docs/slurm.md §4 has the decision and the list of checks.
 *
 * This program runs with root's effective uid on behalf of any user: it trusts nothing from the
 * caller but its real uid and the one argument, clears the environment first, opens every path
 * without following a final symlink relative to a directory it already checked, and requires
 * root-owned, not group/other-writable files and directories all the way (only gatewayd, as
 * root, writes spools and images). */
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "build-config.h"
#include "json-util.h"
#include "macro.h"

#define CONFIG_PATH SYSCONFDIR "/gatewayd/slurm-launch.conf"
#define CONFIG_MAX 4096
#define JOB_JSON_MAX (1024 * 1024)

typedef struct LaunchConfig {
        char spool_dir[PATH_MAX];
        char image_dir[PATH_MAX];
        char worker[PATH_MAX];
        char runtime_dir[PATH_MAX];
} LaunchConfig;

static int refuse(const char *fmt, ...) _printf_(1, 2);
static int refuse(const char *fmt, ...) {
        va_list ap;

        fputs("gateway-slurm-launch: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 1;
}

/* Owned by root and nobody else may change it. */
static bool trusted(const struct stat *st) {
        return st->st_uid == 0 && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

static ssize_t read_all(int fd, char *buf, size_t size) {
        size_t n = 0;

        while (n < size) {
                ssize_t k = read(fd, buf + n, size - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += k;
        }
        return (ssize_t) n;
}

static bool absolute_clean(const char *p) {
        if (p[0] != '/' || strstr(p, "/../") || strstr(p, "/./") || strstr(p, "//"))
                return false;
        size_t n = strlen(p);
        return !(n >= 3 && streq(p + n - 3, "/..")) && !(n >= 2 && streq(p + n - 2, "/."));
}

static int load_config(LaunchConfig *c) {
        _cleanup_close_ int fd = -1;
        char buf[CONFIG_MAX + 1];
        struct stat st;
        ssize_t n;

        fd = open(CONFIG_PATH, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return refuse("cannot open %s: %s", CONFIG_PATH, strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !trusted(&st))
                return refuse("%s must be a regular file owned by root, not writable by group or others",
                              CONFIG_PATH);
        n = read_all(fd, buf, sizeof(buf) - 1);
        if (n < 0 || n > CONFIG_MAX)
                return refuse("cannot read %s (or larger than %d bytes)", CONFIG_PATH, CONFIG_MAX);
        buf[n] = 0;

        *c = (LaunchConfig) {};
        for (char *line = buf, *next; line && *line; line = next) {
                char *eq, *dest = NULL;

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (line[0] == '#' || line[0] == 0)
                        continue;
                eq = strchr(line, '=');
                if (!eq)
                        return refuse("%s: line without '=': %s", CONFIG_PATH, line);
                *eq = 0;
                if (streq(line, "SpoolDir"))
                        dest = c->spool_dir;
                else if (streq(line, "ImageDir"))
                        dest = c->image_dir;
                else if (streq(line, "Worker"))
                        dest = c->worker;
                else if (streq(line, "RuntimeDir"))
                        dest = c->runtime_dir;
                else
                        return refuse("%s: unknown key %s", CONFIG_PATH, line);
                if (!absolute_clean(eq + 1) || strlen(eq + 1) >= PATH_MAX)
                        return refuse("%s: %s must be a normalized absolute path", CONFIG_PATH, line);
                strcpy(dest, eq + 1);
                /* No trailing slash: SpoolDir "/a/" and argument "/a/x" are compared as text. */
                for (size_t k = strlen(dest); k > 1 && dest[k - 1] == '/'; k--)
                        dest[k - 1] = 0;
        }
        if (!c->spool_dir[0] || !c->image_dir[0] || !c->worker[0])
                return refuse("%s must set SpoolDir=, ImageDir= and Worker=", CONFIG_PATH);
        return 0;
}

/* A directory named in the configuration: root's, not writable by others. */
static int open_trusted_dir(const char *path, const char *what, int *ret) {
        struct stat st;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0)
                return refuse("cannot open the %s %s: %s", what, path, strerror(errno));
        if (fstat(fd, &st) < 0 || !trusted(&st)) {
                close(fd);
                return refuse("the %s %s must be owned by root and not writable by group or others", what, path);
        }
        *ret = fd;
        return 0;
}

/* If path is DIR/NAME with NAME one component (not . or ..), returns NAME. */
static const char *child_name(const char *dir, const char *path) {
        size_t n = strlen(dir);
        const char *name;

        if (!strneq(path, dir, n) || path[n] != '/')
                return NULL;
        name = path + n + 1;
        if (!*name || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return NULL;
        return name;
}

/* path must be a root-owned regular file directly inside ImageDir: an image, or a program's
 * layer (gatewayd puts both there). */
static int check_in_image_dir(const LaunchConfig *c, const char *path, const char *what) {
        _cleanup_close_ int image_root = -1, image = -1;
        const char *image_name;
        struct stat st;

        image_name = child_name(c->image_dir, path);
        if (!image_name)
                return refuse("the %s %s is not a file directly inside %s", what, path, c->image_dir);
        if (open_trusted_dir(c->image_dir, "image directory", &image_root) != 0)
                return 1;
        image = openat(image_root, image_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (image < 0)
                return refuse("cannot open the %s %s: %s", what, path, strerror(errno));
        if (fstat(image, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0)
                return refuse("the %s %s must be a regular file owned by root", what, path);
        return 0;
}

static int check_job(const LaunchConfig *c, const char *spool, uid_t caller) {
        _cleanup_close_ int spool_root = -1, job = -1, job_json = -1;
        _cleanup_(json_object_putp) json_object *spec = NULL;
        _cleanup_free_ char *text = NULL;
        const char *name, *image_path, *reason = NULL;
        json_object *image_o, *uid_o, *program_o;
        struct stat st;
        size_t offset;
        ssize_t n;
        int64_t uid;

        name = child_name(c->spool_dir, spool);
        if (!name)
                return refuse("%s is not a job directory directly inside %s", spool, c->spool_dir);
        if (open_trusted_dir(c->spool_dir, "spool directory", &spool_root) != 0)
                return 1;
        job = openat(spool_root, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (job < 0)
                return refuse("cannot open the job directory %s: %s", spool, strerror(errno));
        if (fstat(job, &st) < 0 || !trusted(&st))
                return refuse("the job directory %s must be owned by root and not writable by group or others", spool);
        if (faccessat(job, "exit.json", F_OK, AT_SYMLINK_NOFOLLOW) >= 0)
                return refuse("the job in %s has run already", spool);

        job_json = openat(job, "job.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (job_json < 0)
                return refuse("cannot open %s/job.json: %s", spool, strerror(errno));
        if (fstat(job_json, &st) < 0 || !S_ISREG(st.st_mode) || !trusted(&st) || st.st_size > JOB_JSON_MAX)
                return refuse("%s/job.json must be a regular file owned by root, not writable by group or others, "
                              "of at most %d bytes", spool, JOB_JSON_MAX);
        text = malloc(st.st_size + 1);
        if (!text)
                return refuse("out of memory");
        n = read_all(job_json, text, st.st_size);
        if (n != st.st_size)
                return refuse("cannot read %s/job.json", spool);
        if (json_parse_untrusted(text, n, &spec, &offset, &reason) < 0 || !json_object_is_type(spec, json_type_object))
                return refuse("%s/job.json is not a JSON object", spool);

        /* The job must be the caller's: gatewayd checked that its owner may use the image. */
        if (!json_object_object_get_ex(spec, "uid", &uid_o) || !json_object_is_type(uid_o, json_type_int))
                return refuse("%s/job.json names no uid", spool);
        uid = json_object_get_int64(uid_o);
        if (uid != (int64_t) caller)
                return refuse("the job in %s is not yours (uid %lld, you are %u)", spool, (long long) uid,
                              (unsigned) caller);

        image_o = json_get_typed(spec, "image", json_type_object);
        image_path = json_get_string(image_o, "path");
        if (!image_path)
                return refuse("%s/job.json names no image.path", spool);
        if (check_in_image_dir(c, image_path, "image") != 0)
                return 1;
        /* A program job's layer (docs/programs.md) is mounted too: the same rule. */
        if (json_object_object_get_ex(spec, "program", &program_o) && !json_object_is_type(program_o, json_type_null)) {
                const char *program_path = json_get_string(json_get_typed(spec, "program", json_type_object), "path");

                if (!program_path)
                        return refuse("%s/job.json names a program without program.path", spool);
                if (check_in_image_dir(c, program_path, "program layer") != 0)
                        return 1;
        }
        return 0;
}

static int check_worker(const LaunchConfig *c) {
        struct stat st;

        if (stat(c->worker, &st) < 0 || !S_ISREG(st.st_mode) || !trusted(&st) || !(st.st_mode & S_IXUSR))
                return refuse("the worker %s must be an executable owned by root, not writable by group or others",
                              c->worker);
        return 0;
}

int main(int argc, char *argv[]) {
        LaunchConfig c;
        uid_t caller = getuid();
        char *args[8];
        size_t i = 0;

        /* Nothing from the caller's environment reaches root code (LD_*, locale, TMPDIR, ...). */
        if (clearenv() != 0)
                return refuse("cannot clear the environment");
        (void) setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);

        if (argc != 2 || argv[1][0] != '/') {
                fprintf(stderr,
                        "Usage: gateway-slurm-launch SPOOLDIR\n"
                        "\n"
                        "Runs `gateway-worker run` as root on a job that gatewayd prepared for the calling\n"
                        "user in SPOOLDIR, a directory directly inside the SpoolDir of %s.\n"
                        "Installed setuid root on Slurm compute nodes; see docs/slurm.md.\n", CONFIG_PATH);
                return 2;
        }
        if (geteuid() != 0)
                return refuse("not installed setuid root (see docs/slurm.md)");
        if (load_config(&c) != 0 || check_worker(&c) != 0 || check_job(&c, argv[1], caller) != 0)
                return 1;

        /* Root for good: the worker mounts the image and drops to the job's uid in its sandbox. */
        if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
                return refuse("cannot become root: %s", strerror(errno));

        args[i++] = c.worker;
        /* gateway-worker takes the verb; gateway-worker-run (the run verb alone) does not. */
        const char *base = strrchr(c.worker, '/') + 1;
        if (streq(base, "gateway-worker"))
                args[i++] = (char *) "run";
        /* Stay in the cgroup Slurm made for the step: its limits, accounting and scancel apply. */
        args[i++] = (char *) "--no-cgroups";
        if (c.runtime_dir[0]) {
                args[i++] = (char *) "--runtime-dir";
                args[i++] = c.runtime_dir;
        }
        args[i++] = argv[1];
        args[i] = NULL;
        execv(c.worker, args);
        return refuse("cannot execute %s: %s", c.worker, strerror(errno));
}
