/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "db-migrations.h"

/* Forward-only: never edit a migration that has shipped, append a new one. Entry i moves the
 * schema from version i to i + 1. */
const char * const db_migrations[] = {
        /* 1: the service registry. The spec is kept as JSON so that new optional fields do not
         * need a schema change; what we query on is in columns. */
        "CREATE TABLE services ("
        "  name TEXT PRIMARY KEY NOT NULL,"
        "  spec TEXT NOT NULL,"
        "  created_usec INTEGER NOT NULL,"
        "  updated_usec INTEGER NOT NULL"
        ") STRICT;",
};

const unsigned db_n_migrations = ELEMENTSOF(db_migrations);
