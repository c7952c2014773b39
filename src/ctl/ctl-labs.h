/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* gatewayctl lab put|list|show|rm: lab definitions (docs/labs.md) over the Manager's lab
 * methods; lab start|instances|instance|token|stop: the caller's own instances. */
int verb_lab_put(int argc, char *argv[], char *tail[]);
int verb_lab_list(int argc, char *argv[], char *tail[]);
int verb_lab_show(int argc, char *argv[], char *tail[]);
int verb_lab_remove(int argc, char *argv[], char *tail[]);
int verb_lab_start(int argc, char *argv[], char *tail[]);
int verb_lab_instances(int argc, char *argv[], char *tail[]);
int verb_lab_instance(int argc, char *argv[], char *tail[]);
int verb_lab_token(int argc, char *argv[], char *tail[]);
int verb_lab_stop(int argc, char *argv[], char *tail[]);
