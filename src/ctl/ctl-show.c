/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <string.h>

#include "ctl-show.h"
#include "ctl-util.h"
#include "macro.h"

static size_t label_width = SHOW_LABEL_WIDTH;

void show_set_label_width(size_t width) {
        label_width = MIN(width, (size_t) 60);
}

static void show_line(const char *label, const char *value) {
        _cleanup_free_ char *e = escape_for_terminal(value);
        _cleanup_free_ char *l = escape_for_terminal(label);
        size_t w = l ? utf8_width(l) : 0;

        printf("%*s%s %s\n", (int) (label_width - MIN(w, label_width)), "", strempty(l), e ?: "?");
}

void show_field(const char *label, const char *value) {
        char l[64];

        snprintf(l, sizeof(l), "%s:", label);
        show_line(l, value && *value ? value : "-");
}

void show_fieldf(const char *label, const char *format, ...) {
        _cleanup_free_ char *v = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&v, format, ap) < 0)
                v = NULL;
        va_end(ap);
        show_field(label, v ?: "?");
}

void show_field_lines(const char *label, char **lines) {
        if (!lines || !*lines) {
                show_field(label, NULL);
                return;
        }
        show_field(label, lines[0]);
        for (char **i = lines + 1; *i; i++)
                show_line("", *i);
}

static bool skipped(const char *key, const char * const *skip) {
        for (const char * const *s = skip; s && *s; s++)
                if (streq(*s, key))
                        return true;
        return false;
}

static void show_json_fields_prefixed(json_object *o, const char *prefix, const char * const *skip) {
        json_object_object_foreach(o, key, v) {
                _cleanup_free_ char *label = NULL;

                if (!prefix && skipped(key, skip))
                        continue;
                if (asprintf(&label, "%s%s%s", strempty(prefix), prefix ? "." : "", key) < 0)
                        continue;
                if (json_object_is_type(v, json_type_object))
                        show_json_fields_prefixed(v, label, skip);
                else if (json_object_is_type(v, json_type_string))
                        show_field(label, json_object_get_string(v));
                else if (json_object_is_type(v, json_type_null))
                        show_field(label, NULL);
                else
                        show_field(label, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
        }
}

static size_t label_width_prefixed(json_object *o, size_t prefix_len, const char * const *skip) {
        size_t w = 0;

        json_object_object_foreach(o, key, v) {
                size_t l = prefix_len + (prefix_len > 0 ? 1 : 0) + strlen(key);

                if (prefix_len == 0 && skipped(key, skip))
                        continue;
                if (json_object_is_type(v, json_type_object))
                        w = MAX(w, label_width_prefixed(v, l, skip));
                else
                        w = MAX(w, l + 1);   /* with the colon */
        }
        return w;
}

size_t show_json_fields_label_width(json_object *o, const char * const *skip) {
        return json_object_is_type(o, json_type_object) ? label_width_prefixed(o, 0, skip) : 0;
}

void show_json_fields(json_object *o, const char * const *skip) {
        if (json_object_is_type(o, json_type_object))
                show_json_fields_prefixed(o, NULL, skip);
}

static bool word_is_plain(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-", *s))
                        return false;
        return true;
}

char *quote_command_line(char **argv) {
        size_t size = 1;
        char *buf, *p;

        for (char **i = argv; i && *i; i++)
                size += strlen(*i) * 4 + 3;
        buf = malloc(size);
        if (!buf)
                return NULL;
        p = buf;
        *p = 0;
        for (char **i = argv; i && *i; i++) {
                if (i != argv)
                        *p++ = ' ';
                if (word_is_plain(*i)) {
                        p = stpcpy(p, *i);
                        continue;
                }
                *p++ = '\'';
                for (const char *c = *i; *c; c++)
                        if (*c == '\'')
                                p = stpcpy(p, "'\\''");
                        else
                                *p++ = *c;
                *p++ = '\'';
        }
        *p = 0;
        return buf;
}
