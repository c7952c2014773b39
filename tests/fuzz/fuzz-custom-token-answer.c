/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What gatewayd reads from a site's token service (src/gatewayd/auth-custom-token.c): the first
 * byte picks the HTTP status and which answer it is (token or verification), the rest is the
 * body. Checks: a message exactly when the answer is not accepted, the user and the id of an
 * accepted token answer non-empty and free of control characters (they land in logs, the
 * database and a request header), only the documented errors. */
#include <errno.h>

#include "auth-custom-token.h"
#include "fuzz.h"
#include "macro.h"

static const long statuses[] = { 200, 200, 200, 201, 204, 302, 400, 401, 403, 404, 408, 429, 500, 503 };

static void check_text(const char *s, bool ascii) {
        if (!s || !*s)
                abort();
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < ' ' || *p == 0x7f || (ascii && *p > 0x7e))
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char *const fields[] = { (char *) "is_valid", (char *) "some,nested,field", NULL };
        char *user = NULL, *id = NULL, *msg = NULL;
        long status;
        int r;

        if (size < 1)
                return 0;
        fuzz_quiet();
        status = statuses[data[0] % ELEMENTSOF(statuses)];
        if (data[0] & 0x80) {
                r = custom_token_parse_verification(status, (const char *) data + 1, size - 1, fields, &msg);
        } else {
                r = custom_token_parse_login(status, (const char *) data + 1, size - 1, "userId", &user, &id, &msg);
                if (r == 0) {
                        check_text(user, false);
                        check_text(id, true);
                } else if (user || id)
                        abort();
        }
        if (r != 0 && r != -EACCES && r != -EIO && r != -EBADMSG && r != -ENOMEM)
                abort();
        if (r != -ENOMEM && (r == 0) != (msg == NULL))
                abort();
        free(user);
        free(id);
        free(msg);
        return 0;
}
