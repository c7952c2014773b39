/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

/* Small parsing and formatting helpers of gatewayctl. They take no global state, so the unit
 * test (tests/unit/test-ctl-util.c) exercises them directly. */

/* What a user types: "512", "512K", "512M", "1.5G", "2t" (base 1024, like systemd's MemoryMax=);
 * more lenient than parse_size() of gatewayd's keys, which takes no fractions. An optional
 * trailing "B" or "iB" after the unit is accepted. -EINVAL on syntax, -ERANGE on overflow. */
int ctl_parse_size(const char *s, uint64_t *ret);

/* "90", "90s", "5min", "1h30min", "2d" → seconds. Units: s/sec, m/min, h/hr, d. */
int parse_timespan_sec(const char *s, uint64_t *ret);

/* A positive finite decimal such as "0.5" or "4"; 0 is accepted (means "unset"). */
int parse_cpus(const char *s, double *ret);

/* "yes"/"no", "true"/"false", "on"/"off", "1"/"0". */
int parse_boolean(const char *s);

/* Formats into buf (at least FORMAT_BYTES_MAX bytes) and returns it: "512M", "1.5G", "100B". */
#define FORMAT_BYTES_MAX 32
const char *format_bytes(char *buf, size_t size, uint64_t bytes);

/* "1h 30min 5s", "0s". */
#define FORMAT_TIMESPAN_MAX 64
const char *format_timespan_sec(char *buf, size_t size, uint64_t sec);

/* "Sat 2026-11-21 18:24:51 UTC" in local time; usec since the epoch. */
#define FORMAT_TIMESTAMP_MAX 64
const char *format_timestamp_usec(char *buf, size_t size, uint64_t usec);

/* Reads a whole file ("-" = stdin), at most max bytes; -EFBIG beyond. NUL-terminated. */
int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size);

/* Parses JSON text; on error returns -EINVAL and a message in *ret_error (when not NULL). */
int json_parse_text(const char *text, json_object **ret, char **ret_error);

/* Writes an object as JSON followed by a newline; pretty = indented. */
int json_print(json_object *o, bool pretty, FILE *f);

/* Escapes control characters and invalid UTF-8 as C escapes (\n, \t, \x1b) so that text from
 * the daemon cannot move the terminal's cursor or change its state. Backslashes stay as they
 * are: this is for reading, not for parsing back (that is what --json is for). Returns NULL
 * on OOM. */
char *escape_for_terminal(const char *s);

/* Display width of valid UTF-8 text (wide characters count 2). */
size_t utf8_width(const char *s);

/* Returns a copy cut to at most width columns, ending in an ellipsis when cut. */
char *ellipsize(const char *s, size_t width, const char *ellipsis);
