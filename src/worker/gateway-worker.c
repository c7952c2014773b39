/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdio.h>

#include "connect.h"
#include "log.h"
#include "program-squash.h"
#include "pull.h"
#include "run.h"
#include "serve.h"

static void help(void) {
        printf("Usage: gateway-worker VERB [OPTIONS...]\n"
               "\n"
               "Node-side helper of gatewayd. gatewayd starts it as a child process (locally, over\n"
               "SSH or in a Slurm batch step); it reports progress as JSON lines.\n"
               "\n"
               "Verbs:\n"
               "  pull REFERENCE   Pull an image from a registry and convert it to squashfs\n"
               "  run SPOOLDIR     Run one job in a sandbox and write its spool files\n"
               "  program ARTIFACT OUTPUT\n"
               "                   Check a user's program artifact and write it as a squashfs\n"
               "  serve            The node agent: JSON-lines requests on stdin/stdout (one per\n"
               "                   connection to the node socket)\n"
               "  connect          The node SSH account's forced command: relays to the node\n"
               "                   socket, or serves SFTP\n"
               "\n"
               "Run 'gateway-worker VERB --help' for the options of a verb.\n");
}

int main(int argc, char *argv[]) {
        log_setup("gateway-worker");

        if (argc < 2) {
                help();
                return 1;
        }
        if (streq(argv[1], "-h") || streq(argv[1], "--help")) {
                help();
                return 0;
        }
        if (streq(argv[1], "--version")) {
                printf("gateway-worker %s\n", GATEWAYD_VERSION);
                return 0;
        }
        if (streq(argv[1], "pull"))
                return verb_pull(argc - 1, argv + 1);
        if (streq(argv[1], "run"))
                return verb_run(argc - 1, argv + 1);
        if (streq(argv[1], "program"))
                return verb_program(argc - 1, argv + 1);
        if (streq(argv[1], "serve"))
                return verb_serve(argc - 1, argv + 1);
        if (streq(argv[1], "connect"))
                return verb_connect(argc - 1, argv + 1);

        log_error("Unknown verb '%s'. See 'gateway-worker --help'.", argv[1]);
        return 1;
}
