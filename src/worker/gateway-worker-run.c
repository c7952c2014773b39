/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gateway-worker-run: "gateway-worker run" alone. gateway-worker links libcurl, libarchive,
 * OpenSSL and ISA-L for its pull verb; loading those ~46 shared objects costs about 10 ms,
 * which every job start would pay. This executable is built from the same sources as the run
 * verb and takes the same arguments; gatewayd's local platform prefers it when it is installed
 * next to gateway-worker. */
#include "log.h"
#include "run.h"

int main(int argc, char *argv[]) {
        log_setup("gateway-worker");
        return verb_run(argc, argv);
}
