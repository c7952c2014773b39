/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* "gateway-worker program": turns a user's uploaded program artifact (tar or tar.gz) into the
 * small squashfs that program jobs get as a read-only layer (docs/programs.md). The artifact is
 * untrusted exactly like an image layer and goes through the same merger (layer-merge.c):
 * nothing is unpacked to disk, names outside the tree (absolute, "..") and paths through a
 * symlink are refused, the image limits apply; device nodes and sockets, which a merger drops
 * from images silently, fail an artifact here, so the user learns why. Owners come from the
 * uploader, not from the headers. gatewayd never parses the archive itself. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "events.h"
#include "layer-merge.h"
#include "layer-path.h"
#include "log.h"
#include "macro.h"
#include "program-deps.h"
#include "program-squash.h"
#include "squashfs-mount.h"
#include "squashfs.h"

typedef struct ProgramArgs {
        const char *artifact, *output, *entrypoint;
        const char *check_image;        /* the base image's squashfs, for --dependency */
        const char *runtime_dir;
        char **dependencies;
        size_t n_dependencies;
        uid_t uid;
        gid_t gid;
        bool shared;            /* a provider's program: readable by everyone who runs it */
        uint64_t size_max, files_max;
        int events_fd;
} ProgramArgs;

static void help(void) {
        printf("Usage: gateway-worker program [OPTIONS...] ARTIFACT OUTPUT\n"
               "\n"
               "Checks a program artifact (tar, optionally gzip-compressed) as an untrusted image\n"
               "layer and writes it as a squashfs to OUTPUT (via OUTPUT.tmp). Reports a 'done' event\n"
               "with entrypointExecutable, files and size, or a status INVALID (the artifact is\n"
               "refused) or FAILURE (something else went wrong).\n"
               "\n"
               "Options:\n"
               "  -h --help                  Show this help\n"
               "     --entrypoint=PATH       The file the program starts with (none: a program on an\n"
               "                             image of its own, whose entrypoint runs)\n"
               "     --uid=UID --gid=GID     Owner of every file in the squashfs (default 0)\n"
               "     --shared                Make every file readable (and every executable one\n"
               "                             executable) by all: a program other users run\n"
               "     --image-size-max=BYTES  Unpacked size limit (ImageSizeMax)\n"
               "     --image-files-max=N     Entry limit (ImageFilesMax)\n"
               "     --events-fd=FD          Write JSON-line events to FD instead of stdout\n"
               "     --dependency=REQ        A pip requirement the program declares (repeatable);\n"
               "                             refused (INVALID) unless --check-image satisfies it\n"
               "     --check-image=SQUASHFS  The base image whose installed distributions are read\n"
               "     --runtime-dir=DIR       Where image mounts are shared (default: /run/gatewayd/worker)\n");
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-')
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_argv(int argc, char *argv[], ProgramArgs *a) {
        enum { ARG_ENTRYPOINT = 0x100, ARG_UID, ARG_GID, ARG_SIZE_MAX, ARG_FILES_MAX, ARG_EVENTS_FD,
               ARG_DEPENDENCY, ARG_CHECK_IMAGE, ARG_RUNTIME_DIR, ARG_SHARED };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "entrypoint", required_argument, NULL, ARG_ENTRYPOINT },
                { "uid", required_argument, NULL, ARG_UID },
                { "gid", required_argument, NULL, ARG_GID },
                { "image-size-max", required_argument, NULL, ARG_SIZE_MAX },
                { "image-files-max", required_argument, NULL, ARG_FILES_MAX },
                { "events-fd", required_argument, NULL, ARG_EVENTS_FD },
                { "dependency", required_argument, NULL, ARG_DEPENDENCY },
                { "check-image", required_argument, NULL, ARG_CHECK_IMAGE },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "shared", no_argument, NULL, ARG_SHARED },
                {}
        };
        uint64_t u;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_ENTRYPOINT:
                        a->entrypoint = optarg;
                        break;
                case ARG_UID:
                case ARG_GID:
                        if (parse_u64(optarg, &u) < 0 || u >= UINT32_MAX)
                                return worker_error_errno(EINVAL, "Invalid --%s '%s'.", c == ARG_UID ? "uid" : "gid", optarg);
                        if (c == ARG_UID)
                                a->uid = (uid_t) u;
                        else
                                a->gid = (gid_t) u;
                        break;
                case ARG_SIZE_MAX:
                case ARG_FILES_MAX:
                        if (parse_u64(optarg, &u) < 0)
                                return worker_error_errno(EINVAL, "Invalid limit '%s'.", optarg);
                        if (c == ARG_SIZE_MAX)
                                a->size_max = u;
                        else
                                a->files_max = u;
                        break;
                case ARG_EVENTS_FD:
                        if (parse_u64(optarg, &u) < 0 || u > INT32_MAX || fcntl((int) u, F_GETFD) < 0)
                                return worker_error_errno(EBADF, "Invalid --events-fd '%s'.", optarg);
                        a->events_fd = (int) u;
                        break;
                case ARG_DEPENDENCY: {
                        char **d = realloc(a->dependencies, (a->n_dependencies + 2) * sizeof(char *));
                        if (!d)
                                return log_oom();
                        a->dependencies = d;
                        d[a->n_dependencies++] = optarg;
                        d[a->n_dependencies] = NULL;
                        break;
                }
                case ARG_CHECK_IMAGE:
                        a->check_image = optarg;
                        break;
                case ARG_RUNTIME_DIR:
                        a->runtime_dir = optarg;
                        break;
                case ARG_SHARED:
                        a->shared = true;
                        break;
                default:
                        return worker_error_errno(EINVAL, "Invalid command line.");
                }
        }
        if (a->n_dependencies > 0 && !a->check_image)
                return worker_error_errno(EINVAL, "--dependency= needs --check-image=.");
        if (argc - optind != 2)
                return worker_error_errno(EINVAL, "Expected ARTIFACT and OUTPUT.");
        a->artifact = argv[optind];
        a->output = argv[optind + 1];
        return 1;
}

static struct archive *artifact_open(int fd) {
        struct archive *ar = archive_read_new();

        if (!ar)
                return NULL;
        archive_read_support_filter_gzip(ar);
        archive_read_support_filter_none(ar);
        archive_read_support_format_tar(ar);
        if (lseek(fd, 0, SEEK_SET) < 0 || archive_read_open_fd(ar, fd, 64 * 1024) != ARCHIVE_OK) {
                (void) worker_error_errno(EINVAL, "The artifact is not a tar or tar.gz archive: %s",
                                          strna(archive_error_string(ar)));
                archive_read_free(ar);
                return NULL;
        }
        return ar;
}

/* Finds the entrypoint's header: a regular file (not a link, not a directory). Headers only; the
 * merger's pass enforces the limits on everything. Returns whether it is executable. */
static int find_entrypoint(int fd, const ProgramArgs *a, bool *ret_executable) {
        _cleanup_free_ char *want = NULL;
        struct archive *ar;
        struct archive_entry *e;
        uint64_t n = 0;
        int found = -ENOENT, r;

        r = layer_path_normalize(a->entrypoint, &want);
        if (r < 0 || !*want)
                return worker_error_errno(EINVAL, "Invalid entrypoint '%s': it must be a relative path inside the artifact.",
                                          a->entrypoint);
        ar = artifact_open(fd);
        if (!ar)
                return -EINVAL;
        for (;;) {
                _cleanup_free_ char *path = NULL;
                int k = archive_read_next_header(ar, &e);

                if (k == ARCHIVE_EOF)
                        break;
                if (k < ARCHIVE_WARN) {
                        r = worker_error_errno(EBADMSG, "The artifact is corrupt: %s", strna(archive_error_string(ar)));
                        goto finish;
                }
                if (a->files_max > 0 && ++n > a->files_max)
                        break;  /* the merger says so, with the message */
                if (!archive_entry_pathname(e) || layer_path_normalize(archive_entry_pathname(e), &path) < 0 ||
                    !streq(path, want))
                        continue;
                if (archive_entry_hardlink(e) || archive_entry_filetype(e) != AE_IFREG)
                        found = -EISDIR;
                else {
                        found = 0;
                        *ret_executable = archive_entry_perm(e) & 0100;
                }
        }
        if (found == -ENOENT)
                r = worker_error_errno(ENOENT, "The entrypoint '%s' is not in the artifact.", a->entrypoint);
        else if (found < 0)
                r = worker_error_errno(EINVAL, "The entrypoint '%s' is not a regular file.", a->entrypoint);
        else
                r = 0;
finish:
        archive_read_free(ar);
        return r;
}

static int squash(int fd, const ProgramArgs *a, const char *tmp, LayerApplyStats *ret_stats) {
        _cleanup_(layer_merger_freep) LayerMerger *merger = NULL;
        _cleanup_close_ int out = -1;
        SquashfsOptions so = { .compressor = SQUASHFS_ZSTD, .level = -1, .processors = 1 };
        struct archive *ar;
        pid_t pid = 0;
        int r;

        ar = artifact_open(fd);
        if (!ar)
                return -EINVAL;
        r = squashfs_stream_start(tmp, &so, &out, &pid);
        if (r >= 0)
                r = layer_merger_new(out, &merger);
        if (r >= 0) {
                layer_merger_set_limits(merger, a->size_max, a->files_max);
                layer_merger_set_owner(merger, a->uid, a->gid);
                if (a->shared)
                        layer_merger_set_shared(merger);
                r = layer_merger_merge(merger, ar, "(artifact)");
                if (r == -EAGAIN)
                        r = worker_error_errno(EINVAL, "The artifact has a path twice, a hard link to a file that is "
                                               "not in it, or a sparse file; make the tar without them.");
        }
        if (r >= 0 && layer_merger_stats(merger)->dropped > 0)
                r = worker_error_errno(EINVAL, "The artifact contains device nodes or sockets (%" PRIu64 "); "
                                       "a program may only contain files, directories and symlinks.",
                                       layer_merger_stats(merger)->dropped);
        if (r >= 0)
                r = layer_merger_finish(merger, NULL, 0);
        if (merger)
                *ret_stats = *layer_merger_stats(merger);
        merger = layer_merger_free(merger);
        out = safe_close(out);
        archive_read_free(ar);
        if (pid > 0) {
                if (r < 0)
                        (void) kill(pid, SIGKILL);
                int k = squashfs_stream_wait(pid);
                if (r >= 0 && k < 0)
                        r = worker_error_errno(EIO, "tar2sqfs failed to write %s.", tmp);
        }
        return r;
}

static bool artifact_error(int r) {
        return r == -EINVAL || r == -ELOOP || r == -EFBIG || r == -EBADMSG || r == -ENOENT ||
               r == -ENAMETOOLONG || r == -EISDIR;
}

/* The declared dependencies against the base image, mounted read-only as a job's would be
 * (shared with running jobs) and only read: no code of it runs. */
static int check_dependencies(const ProgramArgs *a) {
        _cleanup_free_ char *message = NULL;
        ImageMount *mount = NULL;
        int r;

        if (a->n_dependencies == 0)
                return 0;
        r = image_mount_acquire(a->runtime_dir, a->check_image, &mount);
        if (r < 0)
                return worker_error_errno(EIO, "Cannot mount the program image to check the dependencies: %s",
                                          image_mount_last_error());
        r = program_deps_check(image_mount_root(mount), a->dependencies, &message);
        (void) image_mount_release(mount);
        if (r == -ENOENT || r == -EINVAL)
                return worker_error_errno(EINVAL, "%s", message ?: "The dependencies cannot be checked.");
        if (r < 0)
                return worker_error_errno(-r, "Cannot check the dependencies: %m");
        return 0;
}

static void program_args_done(ProgramArgs *a) {
        a->dependencies = mfree(a->dependencies);   /* the strings are argv's */
        a->n_dependencies = 0;
}

int verb_program(int argc, char *argv[]) {
        _cleanup_(program_args_done) ProgramArgs a = { .events_fd = STDOUT_FILENO, .runtime_dir = "/run/gatewayd/worker" };
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        LayerApplyStats stats = {};
        bool executable = false;
        json_object *done;
        int r;

        r = parse_argv(argc, argv, &a);
        events_set_fd(a.events_fd);
        if (r <= 0) {
                if (r < 0)
                        events_emit_status("FAILURE", worker_error_message() ?: "Invalid command line");
                return r < 0 ? 1 : 0;
        }
        if (a.events_fd != STDOUT_FILENO)
                (void) fcntl(a.events_fd, F_SETFD, FD_CLOEXEC);
        signal(SIGPIPE, SIG_IGN);

        fd = open(a.artifact, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                r = worker_error_errno(errno, "Cannot open %s: %m", a.artifact);
        else if (asprintf(&tmp, "%s.tmp", a.output) < 0)
                r = log_oom();
        /* The hostile parts first: their refusal is the message worth reading. */
        if (r >= 0)
                r = squash(fd, &a, tmp, &stats);
        if (r >= 0 && a.entrypoint)
                r = find_entrypoint(fd, &a, &executable);
        if (r >= 0)
                r = check_dependencies(&a);
        if (r >= 0 && rename(tmp, a.output) < 0)
                r = worker_error_errno(errno, "Cannot move %s into place: %m", a.output);
        if (r < 0) {
                if (tmp)
                        (void) unlink(tmp);
                events_emit_status(artifact_error(r) ? "INVALID" : "FAILURE",
                                   worker_error_message() ?: strerror(-r));
                return 1;
        }
        done = json_object_new_object();
        json_object_object_add(done, "squashfs", json_object_new_string(a.output));
        json_object_object_add(done, "entrypointExecutable", json_object_new_boolean(executable));
        json_object_object_add(done, "files", json_object_new_int64((int64_t) stats.entries));
        json_object_object_add(done, "size", json_object_new_int64((int64_t) stats.apparent));
        events_emit(WORKER_EVENT_DONE, done);
        return 0;
}
