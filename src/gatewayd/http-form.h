/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* application/x-www-form-urlencoded bodies and HTTP Basic credentials, as an OAuth2 token
 * endpoint receives them (RFC 6749 §2.3.1, §4.4; POST /token). Both are untrusted input:
 * tests/fuzz/fuzz-form.c. */

/* Whether a Content-Type is application/x-www-form-urlencoded (parameters such as
 * ";charset=UTF-8" allowed). */
int form_content_type_is_urlencoded(const char *content_type);

/* The decoded value of key in body ("a=1&b=x%20y"; '+' is a space). 0 and *ret (free() it),
 * -ENOENT if absent, -EINVAL if the body is malformed (a bad escape, an escaped NUL), -ENOTUNIQ
 * if key occurs more than once (RFC 6749 §3.2: parameters must not repeat). */
int form_get(const char *body, size_t size, const char *key, char **ret);

/* Splits an "Authorization: Basic base64(id:secret)" value into its two halves, each
 * form-urlencoding-decoded as RFC 6749 §2.3.1 asks. -ENOENT: not Basic, -EINVAL: malformed. */
int http_basic_parse(const char *header, char **ret_user, char **ret_password);
