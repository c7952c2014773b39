/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* Options of the job verbs, filled in by gatewayctl.c's option parser. */
typedef struct JobArgs {
        char *data_file;     /* --data=FILE|- */
        char *params_file;   /* --params=FILE|- */
        bool wait;           /* --wait */
        bool follow;         /* -f/--follow */
        bool all;            /* --all */
} JobArgs;

extern JobArgs arg_job;
void job_args_done(JobArgs *a);

int verb_submit(int argc, char *argv[], char *tail[]);
int verb_jobs(int argc, char *argv[], char *tail[]);
int verb_job_show(int argc, char *argv[], char *tail[]);
int verb_result(int argc, char *argv[], char *tail[]);
int verb_logs(int argc, char *argv[], char *tail[]);
int verb_cancel(int argc, char *argv[], char *tail[]);
int verb_job_remove(int argc, char *argv[], char *tail[]);

/* Waits (on the bus) for job id to end and prints its result, as "submit --wait" does. */
int ctl_job_wait_and_print(const char *id);
