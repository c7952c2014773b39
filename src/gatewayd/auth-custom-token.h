/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "auth-source.h"

/* Bearer tokens verified by the site's token service, as the Qiskit serverless gateway's
 * custom_token backend does (facts/qiskit-serverless.md; config "Authentication": {"customToken":
 * {...}}):
 *
 *   POST tokenUrl {"<tokenField>": TOKEN}          → 2xx {"<userField>": USER, "id": ID}
 *   GET verificationUrl, "Authorization: ID"       → 2xx, every verificationField truthy
 *
 * Both on the event loop (curl-event.h), together within CUSTOM_TOKEN_TIMEOUT_USEC. Verdicts are
 * cached by the SHA-256 of the token (never the token): verified ones for 60 s, refused ones for
 * 10 s; a service that is down or slow is asked again by the next request. Requests with the same
 * token share one verification. The external user acts as the local account of the same name
 * (an ordinary account, uid >= CUSTOM_TOKEN_UID_MIN), else as "localUser"; in the latter case
 * the external name is the identity's subject, which keeps its jobs and limits its own. */

#define CUSTOM_TOKEN_SOURCE "customToken"
#define CUSTOM_TOKEN_UID_MIN 1000U

/* Classify the token service's answers (pure, fuzzed). Return 0 (accepted), -EACCES (the token
 * is refused: 401), -EBADMSG or -EIO (the service failed or answered nonsense: 503), -ENOMEM.
 * ret_message gets why, for every outcome but 0 and -ENOMEM. */
int custom_token_parse_login(long status, const char *body, size_t size, const char *user_field,
                             char **ret_user, char **ret_id, char **ret_message);
/* fields: NULL-terminated list of paths, each "key" or "key,nested,key"; NULL = none. */
int custom_token_parse_verification(long status, const char *body, size_t size, char * const *fields,
                                    char **ret_message);
/* Splits "a;b,c" into {"a", "b,c"}. */
int custom_token_split_fields(const char *spec, char ***ret);
