/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sha256.h"

int sha256_init(Sha256 *h) {
        h->ctx = EVP_MD_CTX_new();
        if (!h->ctx)
                return -ENOMEM;
        if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
                sha256_done(h);
                return -EIO;
        }
        return 0;
}

int sha256_update(Sha256 *h, const void *p, size_t n) {
        return EVP_DigestUpdate(h->ctx, p, n) == 1 ? 0 : -EIO;
}

int sha256_final_digest(Sha256 *h, char ret[static 72]) {
        unsigned char md[32];
        unsigned len = 0;

        if (EVP_DigestFinal_ex(h->ctx, md, &len) != 1 || len != 32)
                return -EIO;
        memcpy(ret, "sha256:", 7);
        for (size_t i = 0; i < 32; i++)
                sprintf(ret + 7 + 2 * i, "%02x", md[i]);
        if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
                return -EIO;
        return 0;
}

void sha256_done(Sha256 *h) {
        EVP_MD_CTX_free(h->ctx);
        h->ctx = NULL;
}

int sha256_digest_of(const void *p, size_t n, char ret[static 72]) {
        Sha256 h;
        int r;

        r = sha256_init(&h);
        if (r < 0)
                return r;
        r = sha256_update(&h, p, n);
        if (r >= 0)
                r = sha256_final_digest(&h, ret);
        sha256_done(&h);
        return r;
}
