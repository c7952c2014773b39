/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* "gateway-worker connect": argv[0] is "connect". Returns the process exit status. */
int verb_connect(int argc, char *argv[]);
