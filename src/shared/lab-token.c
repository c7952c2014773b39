/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-util.h"
#include "json-util.h"
#include "jwt.h"
#include "lab-token.h"

LabTokenClaims *lab_token_claims_free(LabTokenClaims *c) {
        if (!c)
                return NULL;
        free(c->instance);
        for (char **m = c->members; m && *m; m++)
                free(*m);
        free(c->members);
        free(c);
        return NULL;
}

static int key_read(int dir_fd, uint8_t key[static LAB_TOKEN_KEY_SIZE]) {
        struct stat st;
        int fd, r = 0;

        fd = openat(dir_fd, LAB_TOKEN_KEY_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                r = -errno;
        else if (!S_ISREG(st.st_mode) || (st.st_mode & 0077) || st.st_size != LAB_TOKEN_KEY_SIZE)
                r = -EPERM;
        else if (read(fd, key, LAB_TOKEN_KEY_SIZE) != (ssize_t) LAB_TOKEN_KEY_SIZE)
                r = -EIO;
        close(fd);
        return r;
}

int lab_token_key_load(const char *state_dir, bool create, uint8_t ret[static LAB_TOKEN_KEY_SIZE]) {
        uint8_t key[LAB_TOKEN_KEY_SIZE];
        int dir_fd, r;

        dir_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;
        r = key_read(dir_fd, ret);
        if (r == -ENOENT && create) {
                if (getrandom(key, sizeof(key), 0) != (ssize_t) sizeof(key))
                        r = -EIO;
                else {
                        /* Atomically, so that the proxy never reads half a key. */
                        r = write_file_atomic_at(dir_fd, LAB_TOKEN_KEY_FILE, key, sizeof(key), 0600);
                        if (r >= 0)
                                r = key_read(dir_fd, ret);
                }
        }
        close(dir_fd);
        return r;
}

int lab_token_mint(const uint8_t key[static LAB_TOKEN_KEY_SIZE], const char *instance, uid_t uid,
                   char *const *members, uint64_t now, uint64_t lifetime, char **ret) {
        _cleanup_(json_object_putp) json_object *claims = json_object_new_object();
        json_object *list = json_object_new_array();
        uint8_t nonce[12];
        char jti[2 * sizeof(nonce) + 1];

        if (!claims || !list) {
                json_object_put(list);
                return -ENOMEM;
        }
        for (char *const *m = members; m && *m; m++)
                json_object_array_add(list, json_object_new_string(*m));
        json_object_object_add(claims, "inst", json_object_new_string(instance));
        json_object_object_add(claims, "uid", json_object_new_int64(uid));
        json_object_object_add(claims, "members", list);
        json_object_object_add(claims, "iat", json_object_new_int64((int64_t) now));
        json_object_object_add(claims, "exp", json_object_new_int64((int64_t) (now + lifetime)));
        /* Every token its own, also two made within a second (a renewal is a new token). */
        if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t) sizeof(nonce))
                return -EIO;
        for (size_t i = 0; i < sizeof(nonce); i++)
                snprintf(jti + 2 * i, 3, "%02x", nonce[i]);
        json_object_object_add(claims, "jti", json_object_new_string(jti));
        return jwt_sign_hs256(key, LAB_TOKEN_KEY_SIZE, claims, ret);
}

static int claims_take(json_object *o, LabTokenClaims *c) {
        const char *inst = json_get_string(o, "inst");
        json_object *uid, *members, *exp;
        size_t n;

        if (!inst || !json_object_object_get_ex(o, "uid", &uid) || !json_object_is_type(uid, json_type_int) ||
            !json_object_object_get_ex(o, "members", &members) || !json_object_is_type(members, json_type_array) ||
            !json_object_object_get_ex(o, "exp", &exp))
                return -EACCES;
        if (json_object_get_int64(uid) < 0 || json_object_get_int64(uid) >= UINT32_MAX)
                return -EACCES;
        n = json_object_array_length(members);
        c->members = calloc(n + 1, sizeof(char *));
        c->instance = strdup(inst);
        if (!c->members || !c->instance)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *m = json_object_array_get_idx(members, i);
                if (!json_object_is_type(m, json_type_string))
                        return -EACCES;
                c->members[i] = strdup(json_object_get_string(m));
                if (!c->members[i])
                        return -ENOMEM;
        }
        c->uid = (uid_t) json_object_get_int64(uid);
        c->expires = (uint64_t) json_object_get_int64(exp);
        return 0;
}

int lab_token_verify(const uint8_t key[static LAB_TOKEN_KEY_SIZE], const char *token, uint64_t now,
                     LabTokenClaims **ret, const char **ret_reason) {
        _cleanup_(lab_token_claims_freep) LabTokenClaims *c = NULL;
        _cleanup_(jwt_freep) Jwt *j = NULL;
        int r;

        if (jwt_parse(token, &j) < 0)
                return *ret_reason = "malformed token", -EACCES;
        if (jwt_verify_hs256(j, key, LAB_TOKEN_KEY_SIZE) < 0)
                return *ret_reason = "invalid token", -EACCES;
        /* Our own tokens: no clock skew to allow for. */
        if (jwt_check_times(j, now, 0, ret_reason) < 0)
                return -EACCES;
        c = calloc(1, sizeof(LabTokenClaims));
        if (!c)
                return -ENOMEM;
        r = claims_take(j->claims, c);
        if (r < 0)
                return *ret_reason = "invalid token", r == -ENOMEM ? r : -EACCES;
        *ret = TAKE_PTR(c);
        return 0;
}

bool lab_token_opens(const LabTokenClaims *c, const char *member) {
        for (char **m = c->members; m && *m; m++)
                if (streq(*m, member))
                        return true;
        return false;
}
