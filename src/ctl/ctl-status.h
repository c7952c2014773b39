/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

int verb_status(int argc, char *argv[], char *tail[]);
