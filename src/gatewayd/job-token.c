/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-util.h"
#include "job-token.h"
#include "log.h"
#include "macro.h"

#define KEY_SIZE 32
/* Domain separation: the key is for this one purpose, but say so in what is signed. */
#define TOKEN_CONTEXT "gatewayd job result token 1\n"

/* One gatewayd, one state directory: the key is read once. */
static unsigned char cached_key[KEY_SIZE];
static char *cached_dir;

static int read_key(int dir_fd, unsigned char key[static KEY_SIZE]) {
        _cleanup_close_ int fd = openat(dir_fd, JOB_TOKEN_KEY_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, key, KEY_SIZE);
        if (n < 0)
                return -errno;
        return n == KEY_SIZE ? 0 : -EBADMSG;
}

static int load_key(const char *state_dir) {
        _cleanup_close_ int dir_fd = -1;
        unsigned char key[KEY_SIZE];
        int r;

        if (cached_dir && streq(cached_dir, state_dir))
                return 0;
        dir_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", state_dir);
        r = read_key(dir_fd, key);
        if (r == -ENOENT) {
                if (RAND_bytes(key, KEY_SIZE) != 1)
                        return log_error_errno(EIO, "Cannot make a job token key.");
                /* atomic: a key once used is never replaced by a half-written one */
                r = write_file_atomic_at(dir_fd, JOB_TOKEN_KEY_FILE, key, KEY_SIZE, 0600);
                if (r >= 0)
                        r = read_key(dir_fd, key);
        }
        if (r < 0)
                return log_error_errno(r, "Cannot read %s/%s: %m", state_dir, JOB_TOKEN_KEY_FILE);
        free(cached_dir);
        cached_dir = strdup(state_dir);
        if (!cached_dir)
                return -ENOMEM;
        memcpy(cached_key, key, KEY_SIZE);
        OPENSSL_cleanse(key, KEY_SIZE);
        return 0;
}

int job_token_mint(const char *state_dir, const char *job_id, char **ret) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        _cleanup_free_ char *msg = NULL;
        char *hex;
        int r;

        r = load_key(state_dir);
        if (r < 0)
                return r;
        if (asprintf(&msg, TOKEN_CONTEXT "%s", job_id) < 0)
                return -ENOMEM;
        if (!HMAC(EVP_sha256(), cached_key, KEY_SIZE, (const unsigned char *) msg, strlen(msg), mac, &mac_len))
                return -EIO;
        hex = malloc(2 * mac_len + 1);
        if (!hex)
                return -ENOMEM;
        for (unsigned i = 0; i < mac_len; i++)
                snprintf(hex + 2 * i, 3, "%02x", mac[i]);
        *ret = hex;
        return 0;
}

bool job_token_verify(const char *state_dir, const char *job_id, const char *token) {
        _cleanup_free_ char *expected = NULL;

        if (!token || job_token_mint(state_dir, job_id, &expected) < 0)
                return false;
        return strlen(token) == strlen(expected) && CRYPTO_memcmp(token, expected, strlen(expected)) == 0;
}
