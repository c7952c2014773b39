/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* node-cli: gatewayd's SSH node client (ssh-session.c + node-client.c) on an sd-event loop of its
 * own, for tests and bench/transfer. Built only with -Dtests=true; not installed.
 *
 *   node-cli --host H [--host H2 …] --user U --key K --known-hosts F [OPTIONS] COMMAND
 *     hello                        every node's hello
 *     deploy IMAGE SQUASHFS [META] the image to every node (SFTP, then image-install)
 *     run JOB SPEC.json [INPUT.json] start JOB on the first node, follow it to `finished`
 *                                  (--also-deploy IMAGE:SQUASHFS: deploy on the same connection
 *                                  meanwhile; done when both are)
 *     request OP [JOB|IMAGE]       one request through node-client's calls: cancel JOB,
 *                                  remove JOB, list, image-list, image-remove IMAGE
 *     watch                        print state changes until SIGTERM or --timeout
 *     check-key                    only the configuration-time check of --key
 *
 * Everything it says is JSON lines on stdout:
 *   {"cli":"state","node":H,"state":S,"reason":R}   every state change of every node
 *   {"cli":"hello","node":H,"hello":{…}}            each hello (after every (re)connect)
 *   {"cli":"deployed","node":H,"event":{…},"seconds":T}
 *   {"cli":"started","node":H,"event":{…}}
 *   {"cli":"event","node":H,"event":{…}}            each event of the job, as delivered
 *   {"cli":"reply","node":H,"event":{…}}            the answer to `request`
 *   {"cli":"error","message":M}
 * Exit status: 0 done, 1 failed, 3 a node refused, 4 --timeout. */
#include <getopt.h>
#include <signal.h>
#include <time.h>

#include "json-util.h"
#include "log.h"
#include "node-client.h"

#define MAX_HOSTS 16

typedef struct Node {
        struct Cli *cli;
        const char *host;
        NodeClient *client;
        bool done;
        bool busy;          /* the command's work on this node has begun */
        usec_t started;
} Node;

typedef struct Cli {
        sd_event *event;
        Node nodes[MAX_HOSTS];
        size_t n_nodes;
        const char *command;
        char **args;
        int n_args;
        int status;
        const char *also_deploy;  /* run: "IMAGE:SQUASHFS" deployed at the same time */
        bool job_done, deploy_done;
} Cli;

static usec_t now_mono(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

static void emit(json_object *o) {
        fputs(json_object_to_json_string_ext(o, JSON_TEXT_FLAGS), stdout);
        fputc('\n', stdout);
        fflush(stdout);
        json_object_put(o);
}

static json_object *line(const char *kind, Node *n) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "cli", json_object_new_string(kind));
        if (n)
                json_object_object_add(o, "node", json_object_new_string(n->host));
        return o;
}

static void node_done(Node *n, int status) {
        Cli *c = n->cli;

        if (n->done)
                return;
        n->done = true;
        if (status > c->status)
                c->status = status;
        for (size_t i = 0; i < c->n_nodes; i++)
                if (!c->nodes[i].done)
                        return;
        sd_event_exit(c->event, c->status);
}

static void run_part_done(Node *n, bool job, int status) {
        Cli *c = n->cli;

        if (status > c->status)
                c->status = status;
        if (job)
                c->job_done = true;
        else
                c->deploy_done = true;
        if (c->job_done && (c->deploy_done || !c->also_deploy))
                node_done(n, c->status);
}

static void on_deployed(NodeClient *client, int r, json_object *event, void *userdata) {
        Node *n = userdata;
        json_object *o = line("deployed", n);

        json_object_object_add(o, "event", json_object_get(event));
        json_object_object_add(o, "seconds", json_object_new_double((double) (now_mono() - n->started) / USEC_PER_SEC));
        emit(o);
        if (streq(n->cli->command, "run"))
                run_part_done(n, false, r < 0 ? 1 : 0);
        else
                node_done(n, r < 0 ? 1 : 0);
}

static void on_job_event(NodeClient *client, const char *job, json_object *event, void *userdata) {
        Node *n = userdata;
        const char *kind = json_get_string(event, "event");
        json_object *o = line("event", n);

        json_object_object_add(o, "event", json_object_get(event));
        emit(o);
        if (kind && streq(kind, "finished"))
                run_part_done(n, true, 0);
        else if (kind && streq(kind, "error"))
                run_part_done(n, true, 1);
}

static void on_started(NodeClient *client, int r, json_object *event, void *userdata) {
        Node *n = userdata;
        json_object *o = line("started", n);

        json_object_object_add(o, "event", json_object_get(event));
        emit(o);
        if (r < 0)
                run_part_done(n, true, 1);
}

static int read_json_file(const char *path, json_object **ret) {
        json_object *o = json_object_from_file(path);

        if (!o)
                return log_error_errno(EINVAL, "Cannot read JSON from %s.", path);
        *ret = o;
        return 0;
}

static void on_reply(NodeClient *client, int r, json_object *event, void *userdata) {
        Node *n = userdata;
        json_object *o = line("reply", n);

        json_object_object_add(o, "event", json_object_get(event));
        emit(o);
        node_done(n, r < 0 ? 1 : 0);
}

static int request(Node *n) {
        Cli *c = n->cli;
        const char *op = c->args[0], *arg = c->n_args > 1 ? c->args[1] : NULL;

        if (streq(op, "cancel") && arg)
                return node_client_cancel_job(n->client, arg, on_reply, n);
        if (streq(op, "remove") && arg)
                return node_client_remove_job(n->client, arg, on_reply, n);
        if (streq(op, "list") && !arg)
                return node_client_list_jobs(n->client, on_reply, n);
        if (streq(op, "image-list") && !arg)
                return node_client_list_images(n->client, on_reply, n);
        if (streq(op, "image-remove") && arg)
                return node_client_remove_image(n->client, arg, on_reply, n);
        return -EINVAL;
}

/* The command's work, once the node is up for the first time. */
static void node_begin(Node *n) {
        Cli *c = n->cli;
        int r;

        n->busy = true;
        n->started = now_mono();
        if (streq(c->command, "hello") || streq(c->command, "watch")) {
                if (streq(c->command, "hello"))
                        node_done(n, 0);
                return;
        }
        if (streq(c->command, "request")) {
                r = request(n);
                if (r < 0) {
                        json_object *o = line("error", n);

                        json_object_object_add(o, "message", json_object_new_string(strerror(-r)));
                        emit(o);
                        node_done(n, 1);
                }
                return;
        }
        if (streq(c->command, "deploy")) {
                r = node_client_deploy_image(n->client, c->args[0], c->args[1], c->n_args > 2 ? c->args[2] : NULL,
                                             on_deployed, n);
                if (r < 0) {
                        json_object *o = line("error", n);

                        json_object_object_add(o, "message", json_object_new_string(strerror(-r)));
                        emit(o);
                        node_done(n, 1);
                }
                return;
        }
}

static void on_state(NodeClient *client, SshNodeState state, const char *reason, json_object *hello, void *userdata) {
        Node *n = userdata;
        json_object *o = line("state", n);

        json_object_object_add(o, "state", json_object_new_string(ssh_node_state_to_string(state)));
        if (reason)
                json_object_object_add(o, "reason", json_object_new_string(reason));
        emit(o);
        if (state == SSH_NODE_UP) {
                o = line("hello", n);
                json_object_object_add(o, "hello", json_object_get(hello));
                emit(o);
                if (!n->busy)
                        node_begin(n);
                else if (n->cli->also_deploy && !n->started) {
                        _cleanup_free_ char *image = strndup(n->cli->also_deploy, 64);
                        int r;

                        n->started = now_mono();
                        r = image ? node_client_deploy_image(n->client, image, n->cli->also_deploy + 65, NULL,
                                                             on_deployed, n) : -ENOMEM;
                        if (r < 0)
                                run_part_done(n, false, 1);
                }
        } else if (state == SSH_NODE_REFUSED && !streq(n->cli->command, "watch"))
                node_done(n, 3);
}

static int on_timeout(sd_event_source *s, usec_t usec, void *userdata) {
        Cli *c = userdata;
        json_object *o = line("error", NULL);

        json_object_object_add(o, "message", json_object_new_string("timeout"));
        emit(o);
        return sd_event_exit(c->event, 4);
}

static void help(void) {
        printf("node-cli --host H [--host H2 ...] --user U --key K --known-hosts F [--port N]\n"
               "         [--connect-timeout S] [--keepalive S] [--backoff-min S] [--backoff-max S]\n"
               "         [--timeout S] [--command CMD] hello|deploy IMAGE SQUASHFS [META]|run JOB SPEC [INPUT]|\n"
               "         request cancel|remove JOB|list|image-list|image-remove IMAGE|watch|check-key\n");
}

static usec_t parse_seconds(const char *s) {
        return (usec_t) (strtod(s, NULL) * USEC_PER_SEC);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "host",            required_argument, NULL, 'H' },
                { "user",            required_argument, NULL, 'u' },
                { "key",             required_argument, NULL, 'k' },
                { "known-hosts",     required_argument, NULL, 'K' },
                { "port",            required_argument, NULL, 'p' },
                { "connect-timeout", required_argument, NULL, 'c' },
                { "keepalive",       required_argument, NULL, 'a' },
                { "backoff-min",     required_argument, NULL, 'b' },
                { "backoff-max",     required_argument, NULL, 'B' },
                { "timeout",         required_argument, NULL, 't' },
                { "command",         required_argument, NULL, 'C' },
                { "also-deploy",     required_argument, NULL, 'D' },
                { "send-buffer",     required_argument, NULL, 'S' },
                { "help",            no_argument,       NULL, 'h' },
                {}
        };
        SshSessionOptions so = {};
        const char *hosts[MAX_HOSTS];
        size_t n_hosts = 0;
        usec_t timeout = 0;
        _cleanup_(json_object_putp) json_object *spec = NULL, *input = NULL;
        Cli cli = {};
        int opt, r;

        log_setup("node-cli");
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case 'H':
                        if (n_hosts == MAX_HOSTS)
                                return log_error_errno(E2BIG, "Too many hosts."), 1;
                        hosts[n_hosts++] = optarg;
                        break;
                case 'u': so.user = optarg; break;
                case 'k': so.key = optarg; break;
                case 'K': so.known_hosts = optarg; break;
                case 'p': so.default_port = (unsigned) atoi(optarg); break;
                case 'c': so.connect_timeout = parse_seconds(optarg); break;
                case 'a': so.keepalive_interval = parse_seconds(optarg); break;
                case 'b': so.backoff_min = parse_seconds(optarg); break;
                case 'B': so.backoff_max = parse_seconds(optarg); break;
                case 't': timeout = parse_seconds(optarg); break;
                case 'C': so.command = optarg; break;
                case 'S': so.send_buffer = atoi(optarg); break;
                case 'D':
                        if (strlen(optarg) < 66 || optarg[64] != ':')
                                return log_error_errno(EINVAL, "--also-deploy=IMAGE:SQUASHFS"), 1;
                        cli.also_deploy = optarg;
                        break;
                case 'h': help(); return 0;
                default: return 1;
                }
        if (optind >= argc || !so.key) {
                help();
                return 1;
        }
        cli.command = argv[optind];
        cli.args = argv + optind + 1;
        cli.n_args = argc - optind - 1;

        {
                _cleanup_free_ char *error = NULL;

                r = ssh_key_check(so.key, &error);
                if (r < 0) {
                        json_object *o = line("error", NULL);

                        json_object_object_add(o, "message", json_object_new_string(error ?: strerror(-r)));
                        emit(o);
                        return 1;
                }
        }
        if (streq(cli.command, "check-key"))
                return 0;

        if (n_hosts == 0 || !so.user)
                return log_error_errno(EINVAL, "--host and --user are needed."), 1;
        if ((streq(cli.command, "deploy") && (cli.n_args < 2 || cli.n_args > 3)) ||
            (streq(cli.command, "run") && (cli.n_args < 2 || cli.n_args > 3)) ||
            ((streq(cli.command, "hello") || streq(cli.command, "watch")) && cli.n_args != 0) ||
            (streq(cli.command, "request") && (cli.n_args < 1 || cli.n_args > 2)) ||
            (!streq(cli.command, "deploy") && !streq(cli.command, "run") && !streq(cli.command, "hello") &&
             !streq(cli.command, "watch") && !streq(cli.command, "request"))) {
                help();
                return 1;
        }
        if (streq(cli.command, "run")) {
                if (read_json_file(cli.args[1], &spec) < 0)
                        return 1;
                if (cli.n_args > 2 && read_json_file(cli.args[2], &input) < 0)
                        return 1;
                n_hosts = 1;
        }

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&cli.event);
        if (r < 0)
                return log_error_errno(r, "sd_event_default: %m"), 1;
        (void) sd_event_add_signal(cli.event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(cli.event, NULL, SIGINT, NULL, NULL);
        if (timeout > 0)
                (void) sd_event_add_time_relative(cli.event, NULL, CLOCK_MONOTONIC, timeout, 0, on_timeout, &cli);

        for (size_t i = 0; i < n_hosts; i++) {
                static const NodeClientCallbacks cb = { .state_changed = on_state };
                Node *n = &cli.nodes[i];

                n->cli = &cli;
                n->host = hosts[i];
                so.host = hosts[i];
                r = node_client_new(&n->client, cli.event, &so, &cb, n);
                if (r < 0)
                        return log_error_errno(r, "Bad node %s: %m", hosts[i]), 1;
                cli.n_nodes++;
        }
        if (streq(cli.command, "run")) {
                Node *n = &cli.nodes[0];

                /* Queued until the node is up; start goes before attach on the same connection. */
                n->busy = true;
                r = node_client_start_job(n->client, cli.args[0], spec, input, on_started, n);
                if (r >= 0)
                        r = node_client_follow(n->client, cli.args[0], 0, on_job_event, n);
                if (r < 0)
                        return log_error_errno(r, "Cannot queue the job: %m"), 1;
        }
        for (size_t i = 0; i < cli.n_nodes; i++)
                (void) node_client_start(cli.nodes[i].client);

        r = sd_event_loop(cli.event);
        for (size_t i = 0; i < cli.n_nodes; i++)
                node_client_free(cli.nodes[i].client);
        sd_event_unref(cli.event);
        return r < 0 ? 1 : r;
}
