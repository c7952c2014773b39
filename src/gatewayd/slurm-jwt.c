/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>

#include "json-util.h"
#include "jwt.h"
#include "macro.h"
#include "slurm-jwt.h"

int slurm_jwt_key_load(const char *path, uint8_t **ret_key, size_t *ret_len) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *key = NULL;
        struct stat st;
        size_t n = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_mode & (S_IROTH | S_IWOTH))
                return -EPERM;
        if (st.st_size <= 0 || (uint64_t) st.st_size > SLURM_JWT_KEY_MAX)
                return -EMSGSIZE;

        key = malloc(st.st_size);
        if (!key)
                return -ENOMEM;
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, key + n, st.st_size - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += k;
        }
        if (n == 0)
                return -EMSGSIZE;

        *ret_key = TAKE_PTR(key);
        *ret_len = n;
        return 0;
}

static bool user_name_ok(const char *user) {
        if (!user || !*user || strlen(user) > 256)
                return false;
        for (const char *c = user; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        return false;
        return true;
}

int slurm_jwt_mint(const uint8_t *key, size_t key_len, const char *user, uint64_t iat, uint64_t lifetime,
                   char **ret) {
        _cleanup_(json_object_putp) json_object *claims = NULL;

        if (!key || key_len == 0 || !user_name_ok(user) || lifetime == 0 || iat > INT64_MAX - lifetime)
                return -EINVAL;

        /* Claim order exp, iat, sun: what the known test vector (and python's json.dumps of
         * the same dict) produce; any order is valid JWT. */
        claims = json_object_new_object();
        if (!claims)
                return -ENOMEM;
        if (json_object_object_add(claims, "exp", json_object_new_int64((int64_t) (iat + lifetime))) < 0 ||
            json_object_object_add(claims, "iat", json_object_new_int64((int64_t) iat)) < 0 ||
            json_object_object_add(claims, "sun", json_object_new_string(user)) < 0)
                return -ENOMEM;
        return jwt_sign_hs256(key, key_len, claims, ret);
}
