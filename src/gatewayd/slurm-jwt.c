/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <sys/stat.h>

#include "macro.h"
#include "slurm-jwt.h"

int base64url_encode(const void *data, size_t len, char **ret) {
        static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const uint8_t *p = data;
        char *out, *o;

        if (len > SIZE_MAX / 4 - 4)
                return -EINVAL;
        out = o = malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16;
                size_t n = MIN(len - i, (size_t) 3);

                if (n > 1)
                        v |= (uint32_t) p[i + 1] << 8;
                if (n > 2)
                        v |= p[i + 2];
                *o++ = table[(v >> 18) & 63];
                *o++ = table[(v >> 12) & 63];
                if (n > 1)
                        *o++ = table[(v >> 6) & 63];
                if (n > 2)
                        *o++ = table[v & 63];
        }
        *o = 0;
        *ret = out;
        return 0;
}

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
        static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
        _cleanup_free_ char *h64 = NULL, *c64 = NULL, *s64 = NULL, *signing_input = NULL;
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        json_object *claims;
        const char *cs;
        char *token;
        int r;

        if (!key || key_len == 0 || !user_name_ok(user) || lifetime == 0 || iat > INT64_MAX - lifetime)
                return -EINVAL;

        /* Claim order exp, iat, sun: what the known test vector (and python's json.dumps of
         * the same dict) produce; any order is valid JWT. */
        claims = json_object_new_object();
        if (!claims)
                return -ENOMEM;
        if (json_object_object_add(claims, "exp", json_object_new_int64((int64_t) (iat + lifetime))) < 0 ||
            json_object_object_add(claims, "iat", json_object_new_int64((int64_t) iat)) < 0 ||
            json_object_object_add(claims, "sun", json_object_new_string(user)) < 0) {
                json_object_put(claims);
                return -ENOMEM;
        }
        cs = json_object_to_json_string_ext(claims, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = cs ? base64url_encode(cs, strlen(cs), &c64) : -ENOMEM;
        json_object_put(claims);
        if (r < 0)
                return r;
        r = base64url_encode(header, strlen(header), &h64);
        if (r < 0)
                return r;

        if (asprintf(&signing_input, "%s.%s", h64, c64) < 0) {
                signing_input = NULL;
                return -ENOMEM;
        }
        if (!HMAC(EVP_sha256(), key, (int) key_len, (const unsigned char *) signing_input, strlen(signing_input),
                  mac, &mac_len))
                return -EIO;
        r = base64url_encode(mac, mac_len, &s64);
        if (r < 0)
                return r;

        if (asprintf(&token, "%s.%s", signing_input, s64) < 0)
                return -ENOMEM;
        *ret = token;
        return 0;
}
