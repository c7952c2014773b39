/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* "gateway-worker run": argv[0] is "run". Returns the process exit status. */
int verb_run(int argc, char *argv[]);
