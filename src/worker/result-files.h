/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A job's result files (PlanQK: "any file written to /var/runtime/output"; gatewayd serves them
 * as GET /planqk/{service}/{id}/result/{file} from the spool's output/ directory).
 *
 * Where the job writes them: a tmpfs of its own, mounted by the worker on the host below
 * RUNTIME_DIR/output/PID with size= and nr_inodes= from the job's limits, so the kernel bounds
 * what a job can put there (ENOSPC), bound read-write into the sandbox at RESULT_FILES_PATH.
 * Its pages are charged to the job's memory cgroup like /tmp's; nothing of it reaches the
 * host's disk until the copy below.
 *
 * When the job has ended (every process of it is dead), the worker detaches the mount from the
 * host's tree (keeping its directory fd) and copies what is fit to serve into the spool, then
 * the tmpfs goes with the last fd. The job is untrusted: every entry is opened relative to the
 * directory fd with O_NOFOLLOW, checked with fstat(), and read at most as far as its size. */

#define RESULT_FILES_PATH "/var/runtime/output"
#define RESULT_FILES_ENV "OUTPUT_DIRECTORY"
#define RESULT_FILES_MAX_DEFAULT (64ULL * 1024 * 1024)
#define RESULT_FILES_COUNT_DEFAULT 1000ULL

typedef struct ResultDir ResultDir;

/* Mounts the tmpfs (mode 0700, owned by uid:gid) at RUNTIME_DIR/output/PID: size bytes plus one
 * page, files inodes plus the root. The page more means that only a job that tried to write
 * past the limit fills it; result_files_copy() then drops the file written last (it may be
 * cut short by ENOSPC).
 * Mounts left behind by workers that are gone are removed first. */
int result_dir_mount(const char *runtime_dir, uint64_t size, uint64_t files, uid_t uid, gid_t gid,
                     ResultDir **ret);
/* Host path of the mount point, for bwrap's --bind. */
const char *result_dir_path(const ResultDir *d);
/* Unmounts (lazily) and removes the mount point; the directory fd stays usable. */
void result_dir_detach(ResultDir *d);
int result_dir_fd(const ResultDir *d);
/* Detaches if not yet done, closes, frees. NULL is fine. */
ResultDir *result_dir_free(ResultDir *d);

typedef void (*ResultFilesNote)(void *userdata, const char *level, const char *message);

typedef struct ResultFilesStats {
        uint64_t files, bytes;          /* copied */
        uint64_t dropped;               /* entries not copied (wrong type, name, over a limit) */
        bool spool_full;                /* some were not copied because the spool's file system is full */
} ResultFilesStats;

/* Copies the regular files directly inside from_fd (oldest mtime first, then by name) into
 * spool_fd's output/:
 * each through a partial file and a rename, the directory as a whole through
 * ".output.partial" and a rename, so a reader sees all of output/ or nothing. Skipped, each
 * with a note: dot files, names with control characters or invalid UTF-8, "self" and
 * "status" (HAL's own link names), symlinks, directories, devices, fifos, sockets, and files
 * beyond max_files or that do not fit into what remains of max_bytes. If from_fd's file system
 * has no free block left, some write of the job failed: the newest file(s) (latest mtime) are
 * dropped too, since they may be incomplete. A file that cannot be
 * written for lack of space ends the copy (noted). Nothing to copy: no output/. Returns < 0
 * only when the spool cannot be written at all. */
int result_files_copy(int from_fd, int spool_fd, uint64_t max_bytes, uint64_t max_files,
                      ResultFilesNote note, void *userdata, ResultFilesStats *ret_stats);

/* A name that may be served as one URL path segment and one HAL link name. */
bool result_file_name_ok(const char *name);
