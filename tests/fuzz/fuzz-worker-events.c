/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What gatewayd reads from its workers: the JSON-lines events on their pipes (worker_event_parse(),
 * src/shared/worker-events.c; the pipe's bytes are cut at "\n" as the line splitter does) and the
 * timestamps of exit.json (parse_timestamp_iso()). */
#include "fuzz.h"
#include "macro.h"
#include "platform-local.h"
#include "worker-events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = fuzz_strndup(data, size);
        char *line = s, *nl;

        fuzz_quiet();
        for (;;) {
                WorkerEvent ev = {};

                nl = strchr(line, '\n');
                if (nl)
                        *nl = 0;
                if (worker_event_parse(line, &ev) >= 0) {
                        fuzz_assert(ev.object);
                        worker_event_done(&ev);
                }
                (void) parse_timestamp_iso(line);
                if (!nl)
                        break;
                line = nl + 1;
        }
        return 0;
}
