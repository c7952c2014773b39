/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* "gateway-worker pull": argv[0] is "pull". Returns the process exit status. */
int verb_pull(int argc, char *argv[]);
