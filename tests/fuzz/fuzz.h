/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the libFuzzer targets in this directory (scripts/fuzz builds and runs them). Each
 * target defines LLVMFuzzerTestOneInput() and feeds its input to one parser of untrusted input
 * exactly as the daemon or the worker does; where cheap, it also checks the parser's promises
 * (round trips, invariants) and aborts when one is broken, so libFuzzer keeps the input. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy: the parsers take C strings, as their callers hand them. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = 0;
        return s;
}

/* Logging would cost most of the time of a run and flood the output. */
static inline void fuzz_quiet(void) {
        static int done;

        if (!done) {
                log_set_max_level(getenv("FUZZ_DEBUG") ? LOG_DEBUG : LOG_EMERG);
                done = 1;
        }
}

#define fuzz_assert(expr)                                                                  \
        do {                                                                               \
                if (!(expr)) {                                                             \
                        fprintf(stderr, "%s:%d: promise broken: %s\n", __FILE__, __LINE__, #expr); \
                        abort();                                                           \
                }                                                                          \
        } while (0)

/* Whether the input holds a JSON "\u0000" escape: names with a NUL inside are cut short by C
 * strings; refusing them is the JSON helper's business (issue 8 §7), so round-trip checks skip
 * such inputs rather than report that known defect again and again. */
static inline int fuzz_has_nul_escape(const uint8_t *data, size_t size) {
        for (size_t i = 0; i + 6 <= size; i++)
                if (data[i] == '\\' && data[i + 1] == 'u' && memcmp(data + i + 2, "0000", 4) == 0)
                        return 1;
        return 0;
}
