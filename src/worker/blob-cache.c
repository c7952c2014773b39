/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "blob-cache.h"
#include "events.h"
#include "fs-util.h"
#include "log.h"
#include "macro.h"
#include "reference.h"

struct BlobCache {
        int dir_fd;
};

struct BlobWriter {
        BlobCache *cache;
        char digest[72];
        char *subject;
        uint64_t expected_size, size;
        int fd;
        char *tmp_name; /* NULL with O_TMPFILE */
        Sha256 hash;
        bool verified;
};

int blob_cache_open(const char *cache_dir, BlobCache **ret) {
        _cleanup_free_ char *p = NULL;
        BlobCache *c;
        int fd, r;

        if (asprintf(&p, "%s/blobs/sha256", cache_dir) < 0)
                return -ENOMEM;
        r = mkdir_p(p, 0755);
        if (r < 0)
                return worker_error_errno(r, "Cannot create cache directory %s: %m", p);
        fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return worker_error_errno(errno, "Cannot open cache directory %s: %m", p);

        c = calloc(1, sizeof(BlobCache));
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        c->dir_fd = fd;
        *ret = c;
        return 0;
}

BlobCache *blob_cache_free(BlobCache *c) {
        if (!c)
                return NULL;
        safe_close(c->dir_fd);
        free(c);
        return NULL;
}

int blob_cache_open_blob(BlobCache *c, const char *digest, int *ret_fd, uint64_t *ret_size) {
        struct stat st;
        int fd;

        if (!digest_is_valid(digest))
                return -EINVAL;
        fd = openat(c->dir_fd, digest + 7, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EBADF;
        }
        *ret_fd = fd;
        if (ret_size)
                *ret_size = (uint64_t) st.st_size;
        return 0;
}

BlobWriter *blob_writer_free(BlobWriter *w) {
        if (!w)
                return NULL;
        safe_close(w->fd);
        if (w->tmp_name) {
                (void) unlinkat(w->cache->dir_fd, w->tmp_name, 0);
                free(w->tmp_name);
        }
        free(w->subject);
        sha256_done(&w->hash);
        free(w);
        return NULL;
}

int blob_writer_new(BlobCache *c, const char *digest, uint64_t expected_size, const char *subject, BlobWriter **ret) {
        _cleanup_(blob_writer_freep) BlobWriter *w = NULL;
        static atomic_uint counter;
        int r;

        if (!digest_is_valid(digest))
                return -EINVAL;
        w = calloc(1, sizeof(BlobWriter));
        if (!w)
                return -ENOMEM;
        w->fd = -1;
        w->cache = c;
        w->expected_size = expected_size;
        strcpy(w->digest, digest);
        w->subject = strdup(subject);
        if (!w->subject)
                return -ENOMEM;
        r = sha256_init(&w->hash);
        if (r < 0)
                return r;

        w->fd = openat(c->dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
        if (w->fd < 0) {
                if (asprintf(&w->tmp_name, ".tmp-%s-%d-%u", digest + 7, (int) getpid(), atomic_fetch_add(&counter, 1)) < 0) {
                        w->tmp_name = NULL;
                        return -ENOMEM;
                }
                w->fd = openat(c->dir_fd, w->tmp_name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
                if (w->fd < 0) {
                        r = -errno;
                        w->tmp_name = mfree(w->tmp_name);
                        return worker_error_errno(r, "Cannot create a file in the blob cache: %m");
                }
        }

        *ret = TAKE_PTR(w);
        return 0;
}

int blob_writer_reset(BlobWriter *w) {
        if (ftruncate(w->fd, 0) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
                return -errno;
        w->size = 0;
        w->verified = false;
        sha256_done(&w->hash);
        return sha256_init(&w->hash);
}

int blob_writer_rewind(BlobWriter *w) {
        if (lseek(w->fd, 0, SEEK_SET) < 0)
                return -errno;
        w->size = 0;
        w->verified = false;
        sha256_done(&w->hash);
        return sha256_init(&w->hash);
}

int blob_writer_write(BlobWriter *w, const void *p, size_t n) {
        int r;

        if (w->size + n > w->expected_size)
                return worker_error_errno(EBADMSG, "size mismatch: blob %s is larger than the %" PRIu64 " bytes the manifest says",
                                          w->subject, w->expected_size);
        r = loop_write(w->fd, p, n);
        if (r < 0)
                return worker_error_errno(r, "Cannot write to the blob cache: %m");
        w->size += n;
        return sha256_update(&w->hash, p, n);
}

int blob_writer_verify(BlobWriter *w) {
        char digest[72];
        int r;

        if (w->verified)
                return 0;
        r = sha256_final_digest(&w->hash, digest);
        if (r < 0)
                return r;
        /* A mismatch explains whatever a decoder reading the blob as it arrived (pull-layers.c)
         * made of it better than the decoder's own error: it replaces that. */
        if (!streq(digest, w->digest))
                return worker_error_replace_errno(EBADMSG, "digest mismatch: blob %s has digest %s", w->subject, digest);
        if (w->size != w->expected_size)
                return worker_error_replace_errno(EBADMSG, "size mismatch: blob %s has %" PRIu64 " bytes, the manifest says %" PRIu64,
                                          w->subject, w->size, w->expected_size);
        w->verified = true;
        return 0;
}

int blob_writer_fd(BlobWriter *w) {
        return w->fd;
}

int blob_writer_commit(BlobWriter *w) {
        char proc[64];
        int r;

        r = blob_writer_verify(w);
        if (r < 0)
                return r;

        if (fdatasync(w->fd) < 0)
                return worker_error_errno(errno, "Cannot sync blob %s: %m", w->subject);

        if (w->tmp_name) {
                if (renameat(w->cache->dir_fd, w->tmp_name, w->cache->dir_fd, w->digest + 7) < 0)
                        return worker_error_errno(errno, "Cannot store blob %s: %m", w->subject);
                w->tmp_name = mfree(w->tmp_name);
                return 0;
        }

        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", w->fd);
        if (linkat(AT_FDCWD, proc, w->cache->dir_fd, w->digest + 7, AT_SYMLINK_FOLLOW) < 0 && errno != EEXIST)
                return worker_error_errno(errno, "Cannot store blob %s: %m", w->subject);
        /* EEXIST: a concurrent pull stored the same verified content first. */
        return 0;
}
