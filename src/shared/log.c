/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int max_level = LOG_INFO;
static const char *program_name = "gatewayd";
static int use_journal_prefix = -1;

void log_setup(const char *program) {
        const char *e;

        if (program)
                program_name = program;
        use_journal_prefix = !!getenv("JOURNAL_STREAM");

        e = getenv("GATEWAYD_LOG_LEVEL");
        if (e && log_parse_level(e) >= 0)
                max_level = log_parse_level(e);
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

int log_parse_level(const char *s) {
        static const char * const names[] = {
                [LOG_EMERG] = "emerg",   [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit",
                [LOG_ERR] = "err",       [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
                [LOG_INFO] = "info",     [LOG_DEBUG] = "debug",
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(s, names[i]))
                        return (int) i;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == 0)
                return s[0] - '0';
        return -EINVAL;
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        (void) file;
        (void) line;
        (void) func;

        /* %m in the format refers to the error passed in, as in systemd. */
        errno = abs(error);
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        if (use_journal_prefix > 0)
                fprintf(stderr, "<%i>%s\n", level, buf);
        else
                fprintf(stderr, "%s: %s\n", program_name, buf);

        errno = saved;
        return -abs(error);
}
