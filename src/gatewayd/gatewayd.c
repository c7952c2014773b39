/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "build-config.h"

#include "fd-limit.h"
#include "log.h"
#include "manager.h"

#define DEFAULT_CONFIG SYSCONFDIR "/gatewayd/gatewayd.json"
#define DEFAULT_STATE_DIR LOCALSTATEDIR "/lib/gatewayd"
#define DEFAULT_RUNTIME_DIR "/run/gatewayd"

static void help(void) {
        printf("Usage: gatewayd [OPTIONS...]\n"
               "\n"
               "Gateway between the users of a cluster site and its compute: imports container\n"
               "images into squashfs, runs registered services as sandboxed one-shot jobs, and\n"
               "serves D-Bus (org.gatewayd.Gateway1 on the system bus) and HTTP/JSON on a unix\n"
               "socket. Normally started by systemd through gatewayd.socket or D-Bus activation.\n"
               "\n"
               "Options:\n"
               "  -h --help              Show this help and exit\n"
               "     --version           Show the version and exit\n"
               "     --config=PATH       Configuration file (default: %s;\n"
               "                         a missing default file means built-in defaults)\n"
               "     --state-dir=DIR     State: database, image cache, job spool; overrides\n"
               "                         StateDirectory in the configuration (default: %s)\n"
               "     --runtime-dir=DIR   Where http.sock is bound when no socket is passed by\n"
               "                         the service manager (default: %s)\n"
               "     --idle-timeout=SEC  Exit after SEC seconds without clients or work in\n"
               "                         flight; 0 never exits (default: 0)\n"
               "     --log-level=LEVEL   err, warning, notice, info (default) or debug;\n"
               "                         overrides LogLevel in the configuration\n"
               "\n"
               "Environment:\n"
               "  DBUS_SYSTEM_BUS_ADDRESS  System bus to connect to, as for any D-Bus program\n"
               "  LISTEN_FDS, LISTEN_FDNAMES  Socket activation: the socket named \"http\" is used\n"
               "\n"
               "See gatewayctl(1) for the command line client and docs/ for the APIs.\n",
               DEFAULT_CONFIG, DEFAULT_STATE_DIR, DEFAULT_RUNTIME_DIR);
}

static int parse_seconds(const char *s, usec_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end != 0 || s[0] == '-' || v > UINT64_MAX / 1000000)
                return -EINVAL;
        *ret = v * 1000000;
        return 0;
}

static int parse_argv(int argc, char *argv[], ManagerOptions *o) {
        enum { ARG_VERSION = 0x100, ARG_CONFIG, ARG_STATE_DIR, ARG_RUNTIME_DIR, ARG_IDLE_TIMEOUT, ARG_LOG_LEVEL };
        static const struct option options[] = {
                { "help",         no_argument,       NULL, 'h' },
                { "version",      no_argument,       NULL, ARG_VERSION },
                { "config",       required_argument, NULL, ARG_CONFIG },
                { "state-dir",    required_argument, NULL, ARG_STATE_DIR },
                { "runtime-dir",  required_argument, NULL, ARG_RUNTIME_DIR },
                { "idle-timeout", required_argument, NULL, ARG_IDLE_TIMEOUT },
                { "log-level",    required_argument, NULL, ARG_LOG_LEVEL },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("gatewayd %s\n", GATEWAYD_VERSION);
                        return 0;
                case ARG_CONFIG:
                        o->config_path = optarg;
                        o->config_path_explicit = true;
                        break;
                case ARG_STATE_DIR:
                        o->state_dir = optarg;
                        break;
                case ARG_RUNTIME_DIR:
                        o->runtime_dir = optarg;
                        break;
                case ARG_IDLE_TIMEOUT:
                        if (parse_seconds(optarg, &o->idle_timeout_usec) < 0)
                                return log_error_errno(EINVAL, "Invalid --idle-timeout '%s': expected whole seconds.", optarg);
                        break;
                case ARG_LOG_LEVEL: {
                        int l = log_parse_level(optarg);
                        if (l < 0)
                                return log_error_errno(EINVAL, "Invalid --log-level '%s'.", optarg);
                        log_set_max_level(l);
                        o->log_level = l;
                        break;
                }
                case '?':
                        return -EINVAL;
                }

        if (optind < argc)
                return log_error_errno(EINVAL, "This program takes no arguments. See 'gatewayd --help'.");
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        ManagerOptions o = {
                .config_path = DEFAULT_CONFIG,
                .state_dir_default = DEFAULT_STATE_DIR,
                .runtime_dir = DEFAULT_RUNTIME_DIR,
                .log_level = -1,
        };
        int r;

        log_setup("gatewayd");
        r = parse_argv(argc, argv, &o);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        fd_limit_raise();
        r = manager_new(&o, &m);
        if (r >= 0)
                r = manager_startup(m);
        if (r >= 0)
                r = manager_run(m);
        if (r < 0) {
                (void) sd_notifyf(false, "ERRNO=%i\nSTATUS=Failed: %s", -r, strerror(-r));
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
