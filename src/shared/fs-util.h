/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

int mkdir_p(const char *path, mode_t mode);
int loop_write(int fd, const void *p, size_t n);

/* Removes name below dirfd, recursively for directories, never following symlinks. */
int rm_rf_at(int dirfd, const char *name);
/* Removes every entry inside the directory fd (not the directory itself). */
int rm_rf_children(int fd);
int rm_rf(const char *path);

/* Writes data to dir/name atomically: a temp file in dir, fsync, rename. */
int write_file_atomic(const char *dir, const char *name, const void *data, size_t size);
/* Temp file in the same directory, fsync, rename, fsync of the directory. */
int write_file_atomic_at(int dir_fd, const char *name, const void *data, size_t size, mode_t mode);

typedef enum WriteFileFlags {
        WRITE_FILE_SYNC     = 1 << 0, /* fsync the file before the rename */
        WRITE_FILE_SYNC_DIR = 1 << 1, /* fsync the directory after it */
} WriteFileFlags;

/* The same with a choice of flushes. Leaving out WRITE_FILE_SYNC_DIR is for a file renamed just
 * before another one in the same directory whose fsync of the directory covers both renames;
 * leaving out both, for a file that is written again anyway after a crash of the machine
 * (readers still never see a partial file). */
int write_file_atomic_at_full(int dir_fd, const char *name, const void *data, size_t size, mode_t mode,
                              WriteFileFlags flags);
/* write_file_atomic() without any fsync (see above). */
int write_file_atomic_nosync(const char *dir, const char *name, const void *data, size_t size);
