/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "fs-util.h"
#include "macro.h"

/* A scratch directory per test: created in setup, removed with everything in it in teardown. */
typedef struct TestTmpdir {
        char path[64];
        int fd;
} TestTmpdir;

static inline void test_tmpdir_create(TestTmpdir *t, const char *name) {
        snprintf(t->path, sizeof(t->path), "/tmp/test-%s-XXXXXX", name);
        ck_assert_ptr_nonnull(mkdtemp(t->path));
        t->fd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(t->fd, 0);
}

static inline void test_tmpdir_remove(TestTmpdir *t) {
        t->fd = safe_close(t->fd);
        ck_assert_int_eq(rm_rf(t->path), 0);
}
