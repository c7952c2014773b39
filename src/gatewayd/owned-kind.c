/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Tokens and clients as objects their users own, for bus-owned.c and http-owned.c. */
#include "auth-client.h"
#include "auth-token.h"
#include "owned-kind.h"

static int token_is_own(Manager *m, const char *id, const Caller *caller) {
        uid_t owner;
        int r;

        r = token_owner(m, id, &owner);
        if (r < 0)
                return r;
        return owner == caller->uid;
}

static int client_is_own(Manager *m, const char *id, const Caller *caller) {
        uid_t owner;
        int r;

        r = client_owner(m, id, &owner);
        if (r < 0)
                return r;
        return owner == caller->uid;
}

const OwnedKind token_owned_kind = {
        .noun = "token",
        .not_found = GW_ERROR_NOT_FOUND,
        .action = ACTION_MANAGE_TOKENS,
        .is_own = token_is_own,
        .remove = token_revoke,
};

const OwnedKind client_owned_kind = {
        .noun = "client",
        .not_found = GW_ERROR_NOT_FOUND,
        .action = ACTION_MANAGE_TOKENS,
        .is_own = client_is_own,
        .remove = client_remove,
};
