/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Column-aligned tables for humans, in the style of machinectl's lists: a header line, cells
 * separated by two spaces, the last column not padded. On a terminal (or when $COLUMNS is set)
 * the table is fitted to the width by shortening the columns marked shrinkable, with an
 * ellipsis; elsewhere cells are printed whole so that pipes get everything. Cell text is
 * escaped so that it cannot control the terminal. */

typedef struct Table Table;

/* The headers, terminated by NULL. */
Table *table_new(const char *header, ...) __attribute__((sentinel));
Table *table_free(Table *t);

/* Exactly one cell per column; a NULL cell is shown as "-". */
int table_add_row(Table *t, ...);
/* Column n may be shortened to fit the width, down to min_width. */
void table_set_shrinkable(Table *t, size_t column, size_t min_width);
void table_set_header(Table *t, bool b);
/* Width to fit to; 0 = unlimited. table_new() initialises it from the terminal. */
void table_set_width(Table *t, size_t width);
size_t table_get_rows(Table *t);

int table_print(Table *t, FILE *f);
/* Prints the table (if it has rows) and, with legend, "N things listed." or "No things.". */
int table_print_listing(Table *t, bool legend, const char *singular, const char *plural);

/* Width of the output terminal: $COLUMNS if set, else the tty's width when stdout is one,
 * else 0 (unlimited). */
size_t terminal_columns(void);
/* Whether to decorate output (underlined header): stdout is a tty, $TERM is not "dumb" and
 * $NO_COLOR is unset. */
bool terminal_colors(void);
/* "…" in a UTF-8 locale, "..." otherwise. */
const char *terminal_ellipsis(void);

static inline void table_freep(Table **t) {
        table_free(*t);
}
#define _cleanup_table_free_ _cleanup_(table_freep)
