/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What gatewayd reads from a job's worker: the JSON-lines events on its pipe (job_event_parse(),
 * src/gatewayd/platform-local.c; the pipe's bytes are cut at "\n" as drain_events() does) and the
 * timestamps of exit.json (parse_timestamp_iso()). */
#include "fuzz.h"
#include "macro.h"
#include "platform-local.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = fuzz_strndup(data, size);
        char *line = s, *nl;

        fuzz_quiet();
        for (;;) {
                _cleanup_(job_event_done) JobEvent ev = {};

                nl = strchr(line, '\n');
                if (nl)
                        *nl = 0;
                if (job_event_parse(line, &ev) >= 0)
                        fuzz_assert(ev.kind != JOB_EVENT_INTERIM || ev.result);
                (void) parse_timestamp_iso(line);
                if (!nl)
                        break;
                line = nl + 1;
        }
        return 0;
}
