/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* Builds a squashfs image of a directory tree with mksquashfs (GATEWAYD_MKSQUASHFS overrides the
 * binary). mksquashfs's compressor dominates conversion time, so the default is zstd level 3 on
 * all processors rather than its own gzip-9. */

typedef enum SquashfsCompressor {
        SQUASHFS_ZSTD,
        SQUASHFS_LZ4,
        SQUASHFS_GZIP,
        SQUASHFS_XZ,
} SquashfsCompressor;

typedef struct SquashfsOptions {
        SquashfsCompressor compressor;
        int level;              /* < 0: the compressor's default (3 for zstd) */
        unsigned processors;    /* 0: all online */
        const char *pseudo_file; /* owners/modes when we could not set them on disk */
        bool set_root;
        unsigned root_mode, root_uid, root_gid;
} SquashfsOptions;

int squashfs_compressor_from_string(const char *s, SquashfsCompressor *ret);
const char *squashfs_compressor_to_string(SquashfsCompressor c);
/* -ERANGE if the level does not exist for the compressor. */
int squashfs_level_check(SquashfsCompressor c, int level);

int squashfs_build(const char *src, const char *dest, const SquashfsOptions *o);

/* The streaming writer: tar2sqfs (squashfs-tools-ng; GATEWAYD_TAR2SQFS overrides) reads a tar
 * stream of the final tree from *ret_fd and writes dest as it arrives, with the same compressor,
 * level and block size as squashfs_build(). Close *ret_fd, then squashfs_stream_wait(). Owners,
 * modes and xattrs come from the tar headers: o->pseudo_file and the root options are unused. */
bool squashfs_stream_available(void);
int squashfs_stream_start(const char *dest, const SquashfsOptions *o, int *ret_fd, pid_t *ret_pid);
int squashfs_stream_wait(pid_t pid);
