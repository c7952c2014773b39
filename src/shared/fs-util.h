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
/* The same without the fsync: readers never see a partial file, but after a crash of the
 * machine the file may be empty or missing. Only for files that are written again anyway then. */
int write_file_atomic_nosync(const char *dir, const char *name, const void *data, size_t size);
