/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdio.h>

#include <json-c/json.h>

/* "Label: value" views (service show, status), labels right-aligned to a common column like
 * systemctl status. Values are escaped for the terminal; a multi-line value (one line per
 * element) continues under the first. */

#define SHOW_LABEL_WIDTH 12

/* Labels are right-aligned to this width (default SHOW_LABEL_WIDTH); views that show labels
 * they do not know in advance widen it first. */
void show_set_label_width(size_t width);

void show_field(const char *label, const char *value);
void show_fieldf(const char *label, const char *format, ...) __attribute__((format(printf, 2, 3)));
void show_field_lines(const char *label, char **lines);

/* Prints each member of a JSON object as a field (nested objects as "parent.child"), skipping
 * the keys in skip (NULL-terminated, may be NULL). For records whose shape gatewayctl does not
 * know in detail. */
void show_json_fields(json_object *o, const char * const *skip);
/* The width of the longest label show_json_fields() would print. */
size_t show_json_fields_label_width(json_object *o, const char * const *skip);

/* Joins argv the way a shell would need it typed: plain words as they are, others in single
 * quotes. */
char *quote_command_line(char **argv);
