/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* slurm-rest-cli: drives gatewayd's slurmrestd client (src/gatewayd/slurm-rest.c) on an
 * sd-event loop, for tests/integration/test_slurm.py. Built for tests only.
 *
 *   slurm-rest-cli [OPTIONS] submit USER SCRIPTFILE CWD [STDOUT]
 *   slurm-rest-cli [OPTIONS] launch USER JOBID LAUNCHER SPOOLDIR [STDOUT]
 *                                        the script from slurm-script.c, cwd SPOOLDIR
 *   slurm-rest-cli [OPTIONS] job USER JOBID
 *   slurm-rest-cli [OPTIONS] find USER NAME                      the newest job called NAME
 *   slurm-rest-cli [OPTIONS] wait USER JOBID PHASE[,PHASE...]    polls every 50 ms
 *   slurm-rest-cli [OPTIONS] cancel USER JOBID
 *   slurm-rest-cli [OPTIONS] ping | partitions
 *
 * Options: --url=URL, --jwt-key=FILE | --token-file=FILE --token-user=USER, --timeout=MSEC,
 * --attempts=N, --retry-delay=MSEC, --time-limit=SEC, --memory=BYTES, --name=NAME.
 * Prints one JSON object per answer on stdout ({"error": -errno, "message": ...} on failure,
 * exit status 1). While it waits, a line "tick" on stderr every 100 ms shows the loop is not
 * blocked. */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "slurm-rest.h"
#include "slurm-script.h"

static SlurmRestConfig config = {};
static SlurmJobDesc desc = {};
static sd_event *event;
static SlurmRest *rest;
static int exit_status;
static const char *wait_user, *wait_phases;
static uint32_t wait_job;
static unsigned ticks;

static void print(json_object *o) {
        printf("%s\n", json_text(o));
        fflush(stdout);
        json_object_put(o);
}

static void fail(int error, const char *message) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "error", json_object_new_int(error));
        json_object_object_add(o, "errno", json_object_new_string(strerror(-error)));
        json_object_object_add(o, "message", json_object_new_string(strempty(message)));
        json_object_object_add(o, "ticks", json_object_new_int(ticks));
        print(o);
        exit_status = 1;
        sd_event_exit(event, 0);
}

static void on_submit(SlurmRest *r, int error, uint32_t job_id, const char *message, void *userdata) {
        json_object *o;

        if (error < 0)
                return fail(error, message);
        o = json_object_new_object();
        json_object_object_add(o, "job_id", json_object_new_int64(job_id));
        print(o);
        sd_event_exit(event, 0);
}

static json_object *job_json(const SlurmJobInfo *j) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "job_id", json_object_new_int64(j->job_id));
        json_object_object_add(o, "name", j->name ? json_object_new_string(j->name) : NULL);
        json_object_object_add(o, "state", json_object_new_string(j->state));
        json_object_object_add(o, "phase", slurm_job_phase_to_string(j->phase) ?
                               json_object_new_string(slurm_job_phase_to_string(j->phase)) : NULL);
        json_object_object_add(o, "state_reason", j->state_reason ? json_object_new_string(j->state_reason) : NULL);
        json_object_object_add(o, "reason", slurm_job_state_reason(j->state) ?
                               json_object_new_string(slurm_job_state_reason(j->state)) : NULL);
        json_object_object_add(o, "user_name", j->user_name ? json_object_new_string(j->user_name) : NULL);
        json_object_object_add(o, "exit_code", json_object_new_int(j->exit_code));
        json_object_object_add(o, "version", json_object_new_string(slurm_rest_version(rest)));
        return o;
}

static void on_job(SlurmRest *r, int error, const SlurmJobInfo *j, const char *message, void *userdata) {
        if (error < 0)
                return fail(error, message);
        print(job_json(j));
        sd_event_exit(event, 0);
}

static int poll_job(sd_event_source *s, uint64_t usec, void *userdata);

static bool phase_wanted(SlurmJobPhase p) {
        const char *name = slurm_job_phase_to_string(p);
        _cleanup_free_ char *list = NULL;

        if (!name || asprintf(&list, ",%s,", wait_phases) < 0)
                return false;
        _cleanup_free_ char *needle = NULL;
        if (asprintf(&needle, ",%s,", name) < 0)
                return false;
        return strstr(list, needle) != NULL;
}

static void on_wait_job(SlurmRest *r, int error, const SlurmJobInfo *j, const char *message, void *userdata) {
        static char last[64];
        uint64_t now;

        if (error < 0)
                return fail(error, message);
        if (!streq(last, j->state)) {
                /* Every state seen, so a test can check the path RUNNING → COMPLETED. */
                snprintf(last, sizeof(last), "%s", j->state);
                json_object *o = job_json(j);
                json_object_object_add(o, "seen", json_object_new_boolean(true));
                print(o);
        }
        if (phase_wanted(j->phase)) {
                sd_event_exit(event, 0);
                return;
        }
        sd_event_now(event, CLOCK_MONOTONIC, &now);
        sd_event_add_time(event, NULL, CLOCK_MONOTONIC, now + 50 * 1000, 1, poll_job, NULL);
}

static int poll_job(sd_event_source *s, uint64_t usec, void *userdata) {
        int k = slurm_rest_job(rest, wait_user, wait_job, on_wait_job, NULL, NULL);
        if (k < 0)
                fail(k, "cannot start the request");
        return 0;
}

static void on_done(SlurmRest *r, int error, const char *message, void *userdata) {
        json_object *o;

        if (error < 0)
                return fail(error, message);
        o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(true));
        print(o);
        sd_event_exit(event, 0);
}

static void on_ping(SlurmRest *r, int error, const SlurmPing *p, const char *message, void *userdata) {
        json_object *o;

        if (error < 0)
                return fail(error, message);
        o = json_object_new_object();
        json_object_object_add(o, "hostname", p->hostname ? json_object_new_string(p->hostname) : NULL);
        json_object_object_add(o, "version", p->version ? json_object_new_string(p->version) : NULL);
        json_object_object_add(o, "api", json_object_new_string(slurm_rest_version(rest)));
        print(o);
        sd_event_exit(event, 0);
}

static void on_partitions(SlurmRest *r, int error, const SlurmPartition *p, size_t n, const char *message,
                          void *userdata) {
        json_object *a;

        if (error < 0)
                return fail(error, message);
        a = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(p[i].name));
                json_object_object_add(o, "state", p[i].state ? json_object_new_string(p[i].state) : NULL);
                json_object_object_add(o, "nodes", json_object_new_int64(p[i].nodes));
                json_object_object_add(o, "cpus", json_object_new_int64(p[i].cpus));
                json_object_array_add(a, o);
        }
        print(a);
        sd_event_exit(event, 0);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        ticks++;
        sd_event_source_set_time(s, usec + 100 * 1000);
        return 0;
}

static char *read_file(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t n = 0;

        if (!f)
                return NULL;
        if (getdelim(&buf, &n, '\0', f) < 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static uint32_t parse_job_id(const char *s) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (*end || v == 0 || v > UINT32_MAX) {
                fprintf(stderr, "bad job id %s\n", s);
                exit(2);
        }
        return (uint32_t) v;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "url", required_argument, NULL, 'u' },
                { "jwt-key", required_argument, NULL, 'k' },
                { "token-file", required_argument, NULL, 't' },
                { "token-user", required_argument, NULL, 'U' },
                { "timeout", required_argument, NULL, 'T' },
                { "attempts", required_argument, NULL, 'a' },
                { "retry-delay", required_argument, NULL, 'd' },
                { "time-limit", required_argument, NULL, 'l' },
                { "memory", required_argument, NULL, 'm' },
                { "name", required_argument, NULL, 'n' },
                {}
        };
        _cleanup_free_ char *script = NULL;
        sd_event_source *tick = NULL;
        const char *verb;
        uint64_t now;
        int c, k;

        log_setup("slurm-rest-cli");
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'u': config.url = optarg; break;
                case 'k': config.jwt_key_file = optarg; break;
                case 't': config.token_file = optarg; break;
                case 'U': config.token_user = optarg; break;
                case 'T': config.timeout_usec = strtoull(optarg, NULL, 10) * 1000; break;
                case 'a': config.attempts = strtoul(optarg, NULL, 10); break;
                case 'd': config.retry_delay_usec = strtoull(optarg, NULL, 10) * 1000; break;
                case 'l': desc.time_limit_usec = strtoull(optarg, NULL, 10) * USEC_PER_SEC; break;
                case 'm': desc.memory_bytes = strtoull(optarg, NULL, 10); break;
                case 'n': desc.name = optarg; break;
                default: return 2;
                }
        if (optind >= argc) {
                fprintf(stderr, "no verb\n");
                return 2;
        }
        verb = argv[optind++];

        if (sd_event_default(&event) < 0)
                return 1;
        k = slurm_rest_new(event, &config, &rest);
        if (k < 0) {
                fail(k, "cannot set up the client");
                return 1;
        }
        sd_event_now(event, CLOCK_MONOTONIC, &now);
        sd_event_add_time(event, &tick, CLOCK_MONOTONIC, now + 100 * 1000, 1, on_tick, NULL);
        sd_event_source_set_enabled(tick, SD_EVENT_ON);

        if (streq(verb, "submit") && argc - optind >= 3) {
                script = read_file(argv[optind + 1]);
                if (!script) {
                        fprintf(stderr, "cannot read %s\n", argv[optind + 1]);
                        return 2;
                }
                desc.name = desc.name ?: "gatewayd-test";
                desc.script = script;
                desc.cwd = argv[optind + 2];
                desc.standard_output = argc - optind >= 4 ? argv[optind + 3] : NULL;
                k = slurm_rest_submit(rest, argv[optind], &desc, on_submit, NULL, NULL);
        } else if (streq(verb, "launch") && argc - optind >= 4) {
                SlurmScriptParams sp = { .job_id = argv[optind + 1], .launcher = argv[optind + 2],
                                         .spool_dir = argv[optind + 3] };
                k = slurm_script_generate(&sp, &script);
                if (k < 0) {
                        fail(k, "cannot generate the batch script");
                        return 1;
                }
                desc.name = desc.name ?: "gatewayd-test";
                desc.script = script;
                desc.cwd = argv[optind + 3];
                desc.standard_output = desc.standard_error = argc - optind >= 5 ? argv[optind + 4] : NULL;
                k = slurm_rest_submit(rest, argv[optind], &desc, on_submit, NULL, NULL);
        } else if (streq(verb, "job") && argc - optind == 2)
                k = slurm_rest_job(rest, argv[optind], parse_job_id(argv[optind + 1]), on_job, NULL, NULL);
        else if (streq(verb, "find") && argc - optind == 2)
                k = slurm_rest_find_job(rest, argv[optind], argv[optind + 1], on_job, NULL, NULL);
        else if (streq(verb, "wait") && argc - optind == 3) {
                wait_user = argv[optind];
                wait_job = parse_job_id(argv[optind + 1]);
                wait_phases = argv[optind + 2];
                k = slurm_rest_job(rest, wait_user, wait_job, on_wait_job, NULL, NULL);
        } else if (streq(verb, "cancel") && argc - optind == 2)
                k = slurm_rest_cancel(rest, argv[optind], parse_job_id(argv[optind + 1]), on_done, NULL, NULL);
        else if (streq(verb, "ping"))
                k = slurm_rest_ping(rest, on_ping, NULL, NULL);
        else if (streq(verb, "partitions"))
                k = slurm_rest_partitions(rest, on_partitions, NULL, NULL);
        else {
                fprintf(stderr, "bad arguments for %s\n", verb);
                return 2;
        }
        if (k < 0)
                fail(k, "cannot start the request");
        else
                sd_event_loop(event);

        sd_event_source_disable_unref(tick);
        slurm_rest_free(rest);
        sd_event_unref(event);
        return exit_status;
}
