/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* "gateway-worker serve": argv[0] is "serve". Returns the process exit status. */
int verb_serve(int argc, char *argv[]);
