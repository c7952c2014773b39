/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <langinfo.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ctl-table.h"
#include "log.h"
#include "ctl-util.h"
#include "macro.h"

typedef struct TableColumn {
        char *header;
        bool shrinkable;
        size_t min_width;
        size_t width;   /* computed by table_print() */
} TableColumn;

struct Table {
        TableColumn *columns;
        size_t n_columns;
        char **cells;   /* n_rows × n_columns, already escaped */
        size_t n_rows;
        bool header;
        size_t width;
};

size_t terminal_columns(void) {
        const char *e = getenv("COLUMNS");
        struct winsize ws = {};

        if (e) {
                char *end;
                unsigned long v = strtoul(e, &end, 10);
                if (*e && !*end && v > 0 && v < 100000)
                        return v;
        }
        if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) >= 0 && ws.ws_col > 0)
                return ws.ws_col;
        return 0;
}

bool terminal_colors(void) {
        const char *term = getenv("TERM");

        if (getenv("NO_COLOR"))
                return false;
        if (term && streq(term, "dumb"))
                return false;
        return isatty(STDOUT_FILENO);
}

const char *terminal_ellipsis(void) {
        const char *cs = nl_langinfo(CODESET);
        return cs && streq(cs, "UTF-8") ? "…" : "...";
}

Table *table_new(const char *header, ...) {
        Table *t;
        va_list ap;
        size_t n = 0;

        va_start(ap, header);
        for (const char *h = header; h; h = va_arg(ap, const char *))
                n++;
        va_end(ap);

        t = calloc(1, sizeof(Table));
        if (!t)
                return NULL;
        t->columns = calloc(n, sizeof(TableColumn));
        if (!t->columns)
                return table_free(t);
        t->header = true;
        t->width = terminal_columns();

        va_start(ap, header);
        for (const char *h = header; h; h = va_arg(ap, const char *)) {
                TableColumn *c = &t->columns[t->n_columns];
                c->header = strdup(h);
                if (!c->header) {
                        va_end(ap);
                        return table_free(t);
                }
                c->min_width = utf8_width(h);
                t->n_columns++;
        }
        va_end(ap);
        return t;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_columns; i++)
                free(t->columns[i].header);
        free(t->columns);
        for (size_t i = 0; i < t->n_rows * t->n_columns; i++)
                free(t->cells[i]);
        free(t->cells);
        return mfree(t);
}

int table_add_row(Table *t, ...) {
        char **cells;
        va_list ap;
        int r = 0;

        cells = reallocarray(t->cells, (t->n_rows + 1) * t->n_columns, sizeof(char *));
        if (!cells)
                return -ENOMEM;
        t->cells = cells;
        cells += t->n_rows * t->n_columns;

        va_start(ap, t);
        for (size_t i = 0; i < t->n_columns; i++) {
                const char *s = va_arg(ap, const char *);
                cells[i] = r < 0 ? NULL : escape_for_terminal(s && *s ? s : "-");
                if (!cells[i])
                        r = -ENOMEM;
        }
        va_end(ap);

        if (r < 0) {
                for (size_t i = 0; i < t->n_columns; i++)
                        free(cells[i]);
                return r;
        }
        t->n_rows++;
        return 0;
}

void table_set_shrinkable(Table *t, size_t column, size_t min_width) {
        if (column >= t->n_columns)
                return;
        t->columns[column].shrinkable = true;
        t->columns[column].min_width = MAX(min_width, (size_t) 1);
}

void table_set_header(Table *t, bool b) {
        t->header = b;
}

void table_set_width(Table *t, size_t width) {
        t->width = width;
}

size_t table_get_rows(Table *t) {
        return t->n_rows;
}

/* Shrinks the widest shrinkable column one step at a time until the table fits, so that a long
 * description gives way before a short image name does. */
static void table_fit(Table *t) {
        size_t total = 0;

        for (size_t i = 0; i < t->n_columns; i++)
                total += t->columns[i].width + (i > 0 ? 2 : 0);

        while (t->width > 0 && total > t->width) {
                TableColumn *widest = NULL;
                for (size_t i = 0; i < t->n_columns; i++) {
                        TableColumn *c = &t->columns[i];
                        if (c->shrinkable && c->width > c->min_width && (!widest || c->width > widest->width))
                                widest = c;
                }
                if (!widest)
                        break;   /* cannot fit: let the terminal wrap */
                widest->width--;
                total--;
        }
}

/* Prints s cut or padded to width; the last column is not padded, so lines carry no trailing
 * blanks (except an underlined header on a terminal, where the underline shows the width). */
static int table_print_cell(FILE *f, const char *s, size_t width, bool pad) {
        _cleanup_free_ char *cut = NULL;
        size_t w;

        w = utf8_width(s);
        if (w > width) {
                cut = ellipsize(s, width, terminal_ellipsis());
                if (!cut)
                        return -ENOMEM;
                s = cut;
                w = utf8_width(s);
        }
        fputs(s, f);
        if (pad && w < width)
                fprintf(f, "%*s", (int) (width - w), "");
        return 0;
}

int table_print(Table *t, FILE *f) {
        bool colors = terminal_colors();
        int r;

        for (size_t i = 0; i < t->n_columns; i++) {
                TableColumn *c = &t->columns[i];
                c->width = t->header ? utf8_width(c->header) : 0;
                for (size_t j = 0; j < t->n_rows; j++)
                        c->width = MAX(c->width, utf8_width(t->cells[j * t->n_columns + i]));
        }
        table_fit(t);

        if (t->header) {
                for (size_t i = 0; i < t->n_columns; i++) {
                        bool last = i + 1 == t->n_columns;
                        if (i > 0)
                                fputs("  ", f);
                        if (colors)
                                fputs("\x1b[4m", f);
                        r = table_print_cell(f, t->columns[i].header, t->columns[i].width, colors || !last);
                        if (r < 0)
                                return r;
                        if (colors)
                                fputs("\x1b[0m", f);
                }
                fputc('\n', f);
        }

        for (size_t j = 0; j < t->n_rows; j++) {
                for (size_t i = 0; i < t->n_columns; i++) {
                        if (i > 0)
                                fputs("  ", f);
                        r = table_print_cell(f, t->cells[j * t->n_columns + i], t->columns[i].width,
                                             i + 1 < t->n_columns);
                        if (r < 0)
                                return r;
                }
                fputc('\n', f);
        }
        return fflush(f) == EOF ? -errno : 0;
}

int table_print_listing(Table *t, bool legend, const char *singular, const char *plural) {
        size_t n = table_get_rows(t);
        int r;

        if (n > 0) {
                r = table_print(t, stdout);
                if (r < 0)
                        return log_error_errno(r, "Failed to print table: %m");
        }
        if (legend) {
                if (n > 0)
                        printf("\n%zu %s listed.\n", n, n == 1 ? singular : plural);
                else
                        printf("No %s.\n", plural);
        }
        return 0;
}
