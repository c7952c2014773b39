/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The value of a character of standard base64 (RFC 4648 §4: A-Z a-z 0-9 + /), or -1 for any
 * other, "=" included. */
int base64_char_value(char c);
