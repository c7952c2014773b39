/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* D-Bus call load generator: keeps K asynchronous method calls in flight (sd_bus_call_async)
 * on one system-bus connection for a fixed duration and counts successful replies. Calls that
 * complete during the warm-up are not counted. Prints one summary line:
 *
 *   calls=… ok=… errors=… seconds=… cps=…
 *
 * Usage: bus-load --dest=NAME --path=PATH --interface=IFACE --method=M --arg=STRING
 *                 [--inflight=K] [--duration=SEC] [--warmup=SEC] [--cpu=N] */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

static const char *arg_dest, *arg_path, *arg_interface, *arg_method, *arg_arg = "";
static unsigned arg_inflight = 64;
static double arg_duration = 5, arg_warmup = 1;
static int arg_cpu = -1;

static uint64_t n_total, n_ok, n_errors;
static unsigned n_pending;
static bool measuring, stopping;
static size_t reply_size;
static char first_error[256];

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int issue(sd_bus *bus);

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        sd_bus *bus = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        n_pending--;
        n_total++;
        if (e) {
                if (!first_error[0])
                        snprintf(first_error, sizeof(first_error), "%s: %s", e->name, e->message);
                if (measuring)
                        n_errors++;
        } else {
                const char *s;
                if (sd_bus_message_read(m, "s", &s) >= 0)
                        reply_size = strlen(s);
                if (measuring)
                        n_ok++;
        }
        if (!stopping)
                (void) issue(bus);
        return 1;
}

static int issue(sd_bus *bus) {
        /* A NULL slot makes the call "floating": sd-bus frees it with the reply. */
        int r = sd_bus_call_method_async(bus, NULL, arg_dest, arg_path, arg_interface, arg_method,
                                         on_reply, bus, "s", arg_arg);
        if (r < 0) {
                fprintf(stderr, "call failed: %s\n", strerror(-r));
                exit(EXIT_FAILURE);
        }
        n_pending++;
        return r;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "dest",      required_argument, NULL, 'D' },
                { "path",      required_argument, NULL, 'p' },
                { "interface", required_argument, NULL, 'i' },
                { "method",    required_argument, NULL, 'm' },
                { "arg",       required_argument, NULL, 'a' },
                { "inflight",  required_argument, NULL, 'k' },
                { "duration",  required_argument, NULL, 'd' },
                { "warmup",    required_argument, NULL, 'w' },
                { "cpu",       required_argument, NULL, 'C' },
                {}
        };
        double t_measure, t_end;
        sd_bus *bus = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'D': arg_dest = optarg; break;
                case 'p': arg_path = optarg; break;
                case 'i': arg_interface = optarg; break;
                case 'm': arg_method = optarg; break;
                case 'a': arg_arg = optarg; break;
                case 'k': arg_inflight = (unsigned) atoi(optarg); break;
                case 'd': arg_duration = atof(optarg); break;
                case 'w': arg_warmup = atof(optarg); break;
                case 'C': arg_cpu = atoi(optarg); break;
                default: return EXIT_FAILURE;
                }
        if (!arg_dest || !arg_path || !arg_interface || !arg_method || arg_inflight == 0 || arg_duration <= 0) {
                fprintf(stderr, "Usage: bus-load --dest=NAME --path=PATH --interface=IFACE --method=M [--arg=S]\n"
                                "                [--inflight=K] [--duration=SEC] [--warmup=SEC] [--cpu=N]\n");
                return EXIT_FAILURE;
        }
        if (arg_cpu >= 0) {
                cpu_set_t set;
                CPU_ZERO(&set);
                CPU_SET(arg_cpu, &set);
                (void) sched_setaffinity(0, sizeof(set), &set);
        }

        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "Failed to connect to the system bus: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        t_measure = now() + arg_warmup;
        t_end = t_measure + arg_duration;
        for (unsigned i = 0; i < arg_inflight; i++)
                issue(bus);

        /* A plain process/wait loop: no event loop needed for a client that only does this. */
        for (;;) {
                double t = now();

                if (!measuring && t >= t_measure)
                        measuring = true;
                if (t >= t_end)
                        break;
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "sd_bus_process: %s\n", strerror(-r));
                        return EXIT_FAILURE;
                }
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, 10000);
                if (r < 0 && r != -EINTR) {
                        fprintf(stderr, "sd_bus_wait: %s\n", strerror(-r));
                        return EXIT_FAILURE;
                }
        }

        /* Drain what is still in flight so the server is not left answering a closed peer. */
        stopping = true;
        measuring = false;
        while (n_pending > 0) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        break;
                if (r == 0 && sd_bus_wait(bus, 1000000) <= 0)
                        break;
        }
        sd_bus_flush_close_unref(bus);

        if (first_error[0])
                fprintf(stderr, "first error: %s\n", first_error);
        printf("calls=%llu ok=%llu errors=%llu reply_size=%zu seconds=%.2f cps=%.0f\n",
               (unsigned long long) n_total, (unsigned long long) n_ok, (unsigned long long) n_errors,
               reply_size, arg_duration, (double) n_ok / arg_duration);
        return n_ok > 0 && n_errors == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
