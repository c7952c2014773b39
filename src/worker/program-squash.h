/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* "gateway-worker program": argv[0] is "program". Returns the process exit status. */
int verb_program(int argc, char *argv[]);
