/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"

extern const char * const db_migrations[];
extern const unsigned db_n_migrations;
