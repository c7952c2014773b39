/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

/* Options of the program verbs, filled in by gatewayctl.c's option parser. */
typedef struct ProgramArgs {
        char *entrypoint;        /* --entrypoint=FILE */
        char *title;             /* --title=TITLE */
        json_object *arguments;  /* --arg=KEY=VALUE... */
        bool replace;            /* --replace */
        char *provider;          /* --provider=NAME: a provider's shared program */
} ProgramArgs;

extern ProgramArgs arg_program;
void program_args_done(ProgramArgs *a);
int program_args_add_argument(ProgramArgs *a, const char *kv);

int verb_program_upload(int argc, char *argv[], char *tail[]);
int verb_program_list(int argc, char *argv[], char *tail[]);
int verb_program_remove(int argc, char *argv[], char *tail[]);
int verb_program_run(int argc, char *argv[], char *tail[]);
