/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* Global settings of gatewayctl, set by the command line in gatewayctl.c and read by the verbs
 * (the systemd tools' arg_* convention). */

typedef enum JsonMode {
        JSON_OFF,
        JSON_PRETTY,
        JSON_SHORT,
} JsonMode;

extern JsonMode arg_json;
extern bool arg_legend;        /* --no-legend clears it: no header, no footer */
extern bool arg_ask_password;  /* --no-ask-password clears it */
extern bool arg_quiet;

/* Every verb has this shape. argv holds the positional arguments after the verb's words (argv[0]
 * is the first argument, not the verb); tail holds what followed "--" on the command line, or
 * is NULL when there was no "--". Returns 0 or a negative errno, already logged. */
typedef int (*VerbFunction)(int argc, char *argv[], char *tail[]);
