/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ceiling for gatewayd's D-Bus path: a trivial sd-bus service on the same bus, attached to an
 * sd-event loop like gatewayd's, whose GetService(s name) → s method returns a fixed string of a
 * given size. Whatever gatewayd does beyond this is what the benchmark measures.
 *
 * Usage: bus-echo --reply-size=N [--name=org.gatewayd.BenchEcho] [--cpu=N]
 * Connects to the system bus ($DBUS_SYSTEM_BUS_ADDRESS), object /org/gatewayd/BenchEcho,
 * interface org.gatewayd.BenchEcho. Sends READY=1 to $NOTIFY_SOCKET once it owns the name;
 * exits on SIGTERM/SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

static char *reply;

static int method_get_service(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *name;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "s", reply);
}

static const sd_bus_vtable echo_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("GetService", SD_BUS_ARGS("s", name), SD_BUS_RESULT("s", json),
                                method_get_service, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "reply-size", required_argument, NULL, 'b' },
                { "name",       required_argument, NULL, 'n' },
                { "cpu",        required_argument, NULL, 'C' },
                {}
        };
        const char *name = "org.gatewayd.BenchEcho";
        sd_event *event = NULL;
        sd_bus *bus = NULL;
        size_t size = 0;
        sigset_t mask;
        int c, r, cpu = -1;

        while ((c = getopt_long(argc, argv, "b:n:C:", options, NULL)) >= 0)
                switch (c) {
                case 'b': size = strtoul(optarg, NULL, 10); break;
                case 'n': name = optarg; break;
                case 'C': cpu = atoi(optarg); break;
                default: return EXIT_FAILURE;
                }
        if (size < 12) {
                fprintf(stderr, "Usage: bus-echo --reply-size=N [--name=NAME] [--cpu=N]\n");
                return EXIT_FAILURE;
        }
        if (cpu >= 0) {
                cpu_set_t set;
                CPU_ZERO(&set);
                CPU_SET(cpu, &set);
                (void) sched_setaffinity(0, sizeof(set), &set);
        }

        reply = malloc(size + 1);
        if (!reply)
                return EXIT_FAILURE;
        memset(reply, 'x', size);
        memcpy(reply, "{\"pad\":\"", 8);
        memcpy(reply + size - 2, "\"}", 2);
        reply[size] = 0;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_default(&event);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r >= 0)
                r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, "/org/gatewayd/BenchEcho", "org.gatewayd.BenchEcho", echo_vtable, NULL);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_request_name(bus, name, 0);
        if (r < 0) {
                fprintf(stderr, "bus-echo setup failed: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        (void) sd_notify(false, "READY=1");
        r = sd_event_loop(event);

        sd_bus_flush_close_unref(bus);
        sd_event_unref(event);
        free(reply);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
