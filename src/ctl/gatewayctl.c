/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <limits.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-images.h"
#include "ctl-jobs.h"
#include "ctl-platforms.h"
#include "ctl-programs.h"
#include "ctl-services.h"
#include "ctl-status.h"
#include "ctl-labs.h"
#include "ctl-tokens.h"
#include "ctl-clients.h"
#include "ctl-util.h"
#include "ctl.h"
#include "log.h"

JsonMode arg_json = JSON_OFF;
bool arg_legend = true;
bool arg_ask_password = true;
bool arg_quiet = false;

/* Options that belong to some verbs only. A verb lists the ones it takes, so that
 * "gatewayctl status --image=x" is an error and not silently ignored. Options without a bit
 * (help, version, no-pager, no-legend, no-ask-password) apply everywhere. */
enum {
        OPT_JSON        = UINT64_C(1) << 0,
        OPT_FILE        = UINT64_C(1) << 1,
        OPT_IMAGE       = UINT64_C(1) << 2,
        OPT_COMMAND     = UINT64_C(1) << 3,
        OPT_ENV         = UINT64_C(1) << 4,
        OPT_UNSET_ENV   = UINT64_C(1) << 5,
        OPT_DESCRIPTION = UINT64_C(1) << 6,
        OPT_MEMORY      = UINT64_C(1) << 7,
        OPT_CPUS        = UINT64_C(1) << 8,
        OPT_TIMEOUT     = UINT64_C(1) << 9,
        OPT_NETWORK     = UINT64_C(1) << 10,
        OPT_PLATFORM    = UINT64_C(1) << 11,
        OPT_CREDENTIALS = UINT64_C(1) << 12,
        OPT_FORCE       = UINT64_C(1) << 13,
        OPT_QUIET       = UINT64_C(1) << 14,
        OPT_DATA        = UINT64_C(1) << 15,
        OPT_PARAMS      = UINT64_C(1) << 16,
        OPT_WAIT        = UINT64_C(1) << 17,
        OPT_FOLLOW      = UINT64_C(1) << 18,
        OPT_ALL         = UINT64_C(1) << 19,
        OPT_EXPIRES_IN  = UINT64_C(1) << 20,
        OPT_SCOPE       = UINT64_C(1) << 21,
        OPT_NAME        = UINT64_C(1) << 22,
        /* programs */
        OPT_ENTRYPOINT  = UINT64_C(1) << 23,
        OPT_TITLE       = UINT64_C(1) << 24,
        OPT_ARG         = UINT64_C(1) << 25,
        OPT_REPLACE     = UINT64_C(1) << 26,
        OPT_PROVIDER    = UINT64_C(1) << 27,   /* a provider's shared program */
};

#define OPTS_PULL (OPT_JSON | OPT_PLATFORM | OPT_CREDENTIALS | OPT_FORCE | OPT_QUIET)

#define OPTS_SPEC (OPT_JSON | OPT_FILE | OPT_IMAGE | OPT_COMMAND | OPT_ENV | OPT_DESCRIPTION | OPT_MEMORY | \
                   OPT_CPUS | OPT_TIMEOUT | OPT_NETWORK)

#define VERB_ANY UINT_MAX

typedef struct Verb {
        const char *words[2];   /* "service", "create"; words[1] NULL for one-word verbs */
        unsigned min_args, max_args;
        uint64_t options;       /* OPT_* bits the verb takes */
        bool tail;              /* "-- ARG..." is the verb's own (a command line) */
        bool hidden;            /* an alias: not in the overview */
        VerbFunction run;
        const char *synopsis;   /* after "gatewayctl [OPTIONS...] " */
        const char *summary;    /* one line for the overview */
        const char *help;       /* the verb's manual: description, options, examples */
} Verb;

static const char help_services[] =
        "Lists the services registered with gatewayd, sorted by name: a table with\n"
        "the columns NAME, IMAGE and DESCRIPTION, followed by a count. On a terminal\n"
        "the table is fitted to its width; in a pipe every cell is printed whole.\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]      Print a JSON array with the full record of every\n"
        "                        service (as 'service show --json' prints it); MODE\n"
        "                        is \"pretty\" (the default) or \"short\" (one line)\n"
        "     --no-legend        Print neither the header line nor the count\n"
        "\n"
        "Examples:\n"
        "  gatewayctl services\n"
        "  gatewayctl services --no-legend | cut -d' ' -f1\n"
        "  gatewayctl services --json=short\n";

static const char help_show[] =
        "Shows one service: its image, command, environment, limits and timestamps,\n"
        "one field per line.\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]      Print the service record as JSON instead (the record\n"
        "                        the HTTP API returns); MODE is \"pretty\" or \"short\"\n"
        "\n"
        "Examples:\n"
        "  gatewayctl service show hello\n"
        "  gatewayctl service show hello --json | jq .image\n";

#define SPEC_OPTIONS_HELP(env_extra, network_extra)                                          \
        "     --image=REF        Container image to run, e.g.\n"                            \
        "                        docker.io/library/busybox:latest\n"                         \
        "     --command=ARG      Append ARG to the job's command line; repeat it for\n"     \
        "                        each argument, or give the command after \"--\".\n"        \
        "                        Without either, the image's default command runs\n"        \
        "     --env=KEY=VALUE    Set an environment variable (repeatable)\n"                \
        env_extra                                                                            \
        "     --description=TEXT Free text shown in listings\n"                             \
        "     --memory=SIZE      Memory limit: bytes, or with a suffix K, M, G, T\n"        \
        "                        (base 1024): 512M, 2G, 1.5G; 0 removes the limit\n"        \
        "     --cpus=N           CPU limit, e.g. 0.5 or 2; 0 removes the limit\n"           \
        "     --timeout=TIME     Time limit of a job: seconds, or 90s, 5min, 1h30min;\n"    \
        "                        0 removes the limit\n"                                     \
        "     --network[=BOOL]   Give jobs network access (default: none)\n"               \
        network_extra                                                                        \
        "  -f --file=PATH        Read the spec as JSON from PATH (\"-\" = standard\n"       \
        "                        input); the other options apply on top of it\n"            \
        "     --json[=MODE]      Print the resulting service record as JSON\n"

static const char help_create[] =
        "Registers a new service: a container image and the command to run in it as\n"
        "a one-shot job, with its environment and limits. NAME is a lowercase DNS\n"
        "label (a-z, 0-9, '-'); it may be omitted when the spec given with --file has\n"
        "a \"name\". Needs the polkit action org.gatewayd.manage-services (root always\n"
        "has it); on a terminal, polkit may ask for a password unless\n"
        "--no-ask-password is given. Prints nothing on success.\n"
        "\n"
        "Options:\n" SPEC_OPTIONS_HELP("", "")
        "\n"
        "Examples:\n"
        "  gatewayctl service create hello \\\n"
        "          --image=docker.io/library/busybox:latest \\\n"
        "          --description='Says hello' -- echo hello\n"
        "  gatewayctl service create solver --image=registry.example.com/solver:1.2 \\\n"
        "          --env=THREADS=4 --memory=2G --cpus=2 --timeout=10min\n"
        "  gatewayctl service create --file=solver.json\n"
        "  echo '{\"name\":\"x\",\"image\":\"busybox\"}' | gatewayctl service create -f -\n";

static const char help_update[] =
        "Changes a service. gatewayctl fetches the current spec, applies the options\n"
        "given and sends the whole spec back; whatever no option names stays as it\n"
        "is. With --file the spec read replaces the current one (the options still\n"
        "apply on top). --command or \"-- ARG...\" replaces the whole command line;\n"
        "\"--\" alone restores the image's default command. Needs the polkit action\n"
        "org.gatewayd.manage-services.\n"
        "\n"
        "Options:\n"
        SPEC_OPTIONS_HELP("     --unset-env=KEY    Remove an environment variable (repeatable)\n",
                          "     --network=no       Take network access away again\n")
        "\n"
        "Examples:\n"
        "  gatewayctl service update hello --image=docker.io/library/busybox:1.36\n"
        "  gatewayctl service update solver --env=THREADS=8 --unset-env=DEBUG \\\n"
        "          --memory=0\n"
        "  gatewayctl service update hello -- echo hello again\n";

static const char help_rm[] =
        "Removes the named services. Every name is tried; if any removal fails, the\n"
        "errors are printed and the exit status is 1. Needs the polkit action\n"
        "org.gatewayd.manage-services.\n"
        "\n"
        "Example:\n"
        "  gatewayctl service rm hello solver\n";

static const char help_status[] =
        "Shows gatewayd's version, its directories and configuration file, uptime,\n"
        "idle timeout, the number of services, and whatever else the daemon reports\n"
        "about itself.\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]      Print the daemon's status object as JSON\n"
        "\n"
        "Example:\n"
        "  gatewayctl status\n";

static const char help_pull[] =
        "Asks gatewayd to import an image from a registry and convert it to squashfs,\n"
        "and follows the pull until the image is READY: on a terminal with a progress\n"
        "bar on standard error (status, downloaded/total bytes, layers applied,\n"
        "percentage), otherwise with a line whenever the status changes, a layer is\n"
        "done, or another tenth of the work is. Then prints the image's ID on standard\n"
        "output. If the pull fails, prints gatewayd's reason and exits with 1. An image\n"
        "pulled recently is answered from the cache at once, unless --force is given.\n"
        "Ctrl-C stops following, not the pull, which goes on in gatewayd.\n"
        "\n"
        "REF is a registry reference such as docker.io/library/busybox:latest,\n"
        "registry.example.com:5000/team/app@sha256:..., or a short name that\n"
        "gatewayd completes with its DefaultImageLocation. Needs the polkit action\n"
        "org.gatewayd.pull-image (allowed to everyone by default).\n"
        "\n"
        "Options:\n"
        "     --platform=NAME    Pull for this platform of gatewayd's configuration\n"
        "                        (default: the default platform)\n"
        "     --credentials-file=FILE\n"
        "                        Log in to the registry with the JSON object\n"
        "                        {\"username\": ..., \"password\": ...} read from FILE\n"
        "                        (\"-\" for standard input). The image becomes private\n"
        "                        to you\n"
        "     --force            Ask the registry again even if the image was pulled\n"
        "                        recently\n"
        "  -q --quiet            Show no progress; print only the ID (or the error)\n"
        "     --json[=MODE]      Print the image's record as JSON instead of its ID\n"
        "\n"
        "Examples:\n"
        "  gatewayctl pull docker.io/library/busybox:latest\n"
        "  gatewayctl pull registry.example.com/team/solver:1.2 \\\n"
        "          --credentials-file=/etc/gatewayd/solver-login.json\n"
        "  id=$(gatewayctl pull -q busybox) && gatewayctl image show \"$id\"\n";

static const char help_images[] =
        "Lists the images gatewayd knows and you may see, sorted by reference: a table\n"
        "with the columns ID (the first 12 digits of the image's sha256 content ID),\n"
        "REFERENCE, STATUS (PENDING, PULLING, CONVERSION, READY, FAILURE, EXPIRED),\n"
        "SIZE (of the squashfs) and PLATFORM, followed by a count.\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]      Print a JSON array with the full record of every\n"
        "                        image (as 'image show --json' prints it)\n"
        "     --no-legend        Print neither the header line nor the count\n"
        "\n"
        "Examples:\n"
        "  gatewayctl images\n"
        "  gatewayctl images --no-legend | awk '$3 == \"FAILURE\" {print $1}'\n";

static const char help_image_show[] =
        "Shows one image: ID, digest, reference, platform, status (with gatewayd's\n"
        "message after a failure), squashfs size, whether it is private, the progress\n"
        "of a pull under way, and when it was created, updated and last used. The\n"
        "image is named by its ID, a reference it was pulled as, or the start of its\n"
        "ID as 'images' shows it (if only one image's ID starts so).\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]      Print the image record as JSON (the record the HTTP\n"
        "                        API returns)\n"
        "     --platform=NAME    The record of this platform (default: the default\n"
        "                        platform's, else the first platform that has one)\n"
        "\n"
        "Examples:\n"
        "  gatewayctl image show docker.io/library/busybox:latest\n"
        "  gatewayctl image show 3f2a9c1b4d5e --json | jq .size\n";

static const char help_rmi[] =
        "Removes images: their records and squashfs files. Each is named by ID, by a\n"
        "reference, or by the start of its ID. Every name is tried; if any removal\n"
        "fails, the errors are printed and the exit status is 1. Needs the polkit\n"
        "action org.gatewayd.manage-images (root always has it).\n"
        "\n"
        "Options:\n"
        "     --platform=NAME    Remove this platform's records only (an image pulled\n"
        "                        for two platforms has a record on each)\n"
        "\n"
        "Example:\n"
        "  gatewayctl rmi 3f2a9c1b4d5e docker.io/library/busybox:latest\n";

static const char help_image_expire[] =
        "Expires images now instead of when ImageExpirationTimeout says: the squashfs\n"
        "file is deleted and the record stays, with the status EXPIRED, until the\n"
        "image is pulled again. Needs the polkit action org.gatewayd.manage-images.\n"
        "\n"
        "Options:\n"
        "     --platform=NAME    Expire this platform's records only\n"
        "\n"
        "Example:\n"
        "  gatewayctl image expire docker.io/library/busybox:latest\n";
static const char help_submit[] =
        "Submits a job of the service: gatewayd runs the service's image as the calling user,\n"
        "with the data and params mounted as /var/input/data.json and /var/input/params.json.\n"
        "Prints the job id, or with --wait waits for the job to end and prints its result\n"
        "(exit status 1 unless it SUCCEEDED). Needs the polkit action org.gatewayd.submit-job.\n"
        "\n"
        "Options:\n"
        "     --data=FILE          JSON input data (\"-\" = standard input; default {})\n"
        "     --params=FILE        JSON parameters (\"-\" = standard input; default {})\n"
        "     --wait               Wait for the job to end, then print its result\n"
        "     --json[=MODE]        Print the result as JSON of that mode\n"
        "\n"
        "Examples:\n"
        "  gatewayctl submit solver --data=problem.json --wait\n"
        "  echo '{\"n\": 5}' | gatewayctl submit solver --data=-\n";

static const char help_program_upload[] =
        "Uploads DIR as a program of yours (docs/programs.md): gatewayctl makes a tar.gz\n"
        "of the directory and sends it to gatewayd, which checks it like an image layer\n"
        "and keeps it as a squashfs. The program runs on the site's ProgramImage (or on\n"
        "--image) with its files at /program; the entrypoint runs directly if it is\n"
        "executable, otherwise with python3. Talks to gatewayd's HTTP socket\n"
        "($GATEWAYD_HTTP_SOCKET, default /run/gatewayd/http.sock). Needs the polkit action\n"
        "org.gatewayd.submit-job.\n"
        "\n"
        "Options:\n"
        "     --entrypoint=FILE    The file the program starts with, relative to DIR\n"
        "                          (required)\n"
        "     --title=TITLE        The program's title (default: DIR's name)\n"
        "     --arg=KEY=VALUE      A default argument (repeatable); VALUE is taken as\n"
        "                          JSON if it is JSON, else as a string\n"
        "     --replace            Replace your program of that title (its running jobs\n"
        "                          keep the upload they started with)\n"
        "     --image=REF          Run on this image instead of ProgramImage, if the site\n"
        "                          permits it (ProgramImages); without --entrypoint the\n"
        "                          image's own entrypoint runs, and DIR may be left out\n"
        "                          (then --title is required)\n"
        "     --provider=NAME      Upload it as a program of that provider, shared with its\n"
        "                          users (ProgramProviders; only its admins may)\n"
        "     --json[=MODE]        Print the program record\n"
        "\n"
        "Examples:\n"
        "  gatewayctl program upload ./hello --entrypoint=main.py --arg=shots=100\n"
        "  gatewayctl program upload --image=registry.example.org/quantum/solver:2 --title=solver\n";
static const char help_program_list[] =
        "Lists your programs and those of the providers you belong to: provider (empty\n"
        "for your own), title, entrypoint, version and description.\n"
        "\n"
        "Options:\n"
        "     --provider=NAME      Only that provider's programs\n"
        "     --json[=MODE]        Print a JSON array of the program records\n";
static const char help_program_rm[] =
        "Removes your programs and their files. A program with unfinished jobs is not\n"
        "removed.\n"
        "\n"
        "Options:\n"
        "     --provider=NAME      Remove that provider's programs (its admins only)\n"
        "\n"
        "Example:\n"
        "  gatewayctl program rm hello\n";
static const char help_program_run[] =
        "Runs one of your programs as a job: its default arguments with the --arg ones\n"
        "over them are in $ENV_JOB_ARGUMENTS and /var/input/arguments.json. Prints the job\n"
        "id, or with --wait waits for the job to end and prints its result (exit status\n"
        "1 unless it SUCCEEDED). The job is an ordinary job: 'gatewayctl logs', 'cancel',\n"
        "'result' work on it. Needs the polkit action org.gatewayd.submit-job.\n"
        "\n"
        "Options:\n"
        "     --arg=KEY=VALUE      An argument (repeatable); VALUE is taken as JSON if it\n"
        "                          is JSON, else as a string\n"
        "     --wait               Wait for the job to end, then print its result\n"
        "     --provider=NAME      Run that provider's program (the job is yours)\n"
        "     --json[=MODE]        Print the result as JSON of that mode\n"
        "\n"
        "Example:\n"
        "  gatewayctl program run hello --arg=shots=1000 --wait\n";
static const char help_jobs[] =
        "Lists your jobs (id, service, owner, status), oldest first. --all lists every user's\n"
        "jobs; that needs the polkit action org.gatewayd.manage-jobs.\n"
        "\n"
        "Options:\n"
        "     --all                Every user's jobs\n"
        "     --json[=MODE]        Print a JSON array\n";

static const char help_job_show[] =
        "Shows a job: status, service, owner, timestamps, exit code and error.\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]        Print the job as JSON\n";

static const char help_result[] =
        "Prints the result of a finished job as JSON: what it printed behind\n"
        "PlanQK:Job:Result, or {\"code\", \"detail\"} if it did not succeed.\n";

static const char help_logs[] =
        "Prints the job's log (its stdout and stderr). With -f, keeps printing as the job\n"
        "writes, until it ends.\n"
        "\n"
        "Options:\n"
        "  -f --follow             Follow the log until the job ends\n";

static const char help_cancel[] =
        "Cancels jobs: a queued one never starts, a running one is stopped (SIGTERM, then\n"
        "SIGKILL after a grace period) and ends CANCELLED. Cancelling a finished job does\n"
        "nothing.\n"
        "\n"
        "Example:\n"
        "  gatewayctl cancel 6f1c2b7e-9a4d-4c1e-8f00-2a1b3c4d5e6f\n";

static const char help_job_rm[] =
        "Removes finished jobs: their records, results and logs. A job that has not\n"
        "ended yet must be cancelled first. Your own jobs you may remove; someone else's\n"
        "need the polkit action org.gatewayd.manage-jobs (root always has it). gatewayd\n"
        "also removes finished jobs by itself JobRetention (default 7 days) after they\n"
        "ended. Every id is tried; if any removal fails, the errors are printed and the\n"
        "exit status is 1.\n"
        "\n"
        "Example:\n"
        "  gatewayctl job rm 6f1c2b7e-9a4d-4c1e-8f00-2a1b3c4d5e6f\n";

static const char help_token_create[] =
        "Creates a token for you and prints it (only now: gatewayd keeps only a hash). Use it\n"
        "as \"Authorization: Bearer <token>\" on gatewayd's TCP and TLS listeners, where it\n"
        "acts as you within its scope until it expires or is revoked. Tokens can only be\n"
        "created by local users (here, over D-Bus, or on the unix socket).\n"
        "\n"
        "Options:\n"
        "     --expires-in=TIME   Lifetime (seconds, or 90s, 12h, 30d); default: the daemon's\n"
        "                         TokenExpiry (30 days), at most TokenExpiryMax\n"
        "     --scope=SCOPE,...   read (GET routes), submit (jobs), pull (images); repeatable;\n"
        "                         default: all three\n"
        "  -q --quiet             Print only the token\n"
        "\n"
        "Example:\n"
        "  gatewayctl token create --scope=read,submit --expires-in=7d\n";

static const char help_token_list[] =
        "Lists your tokens (never their secrets): id, creation, expiry and scope. Expired\n"
        "tokens are forgotten.\n";

static const char help_token_revoke[] =
        "Revokes tokens by id: requests with them are refused from now on. Your own tokens\n"
        "you may revoke; someone else's need the polkit action org.gatewayd.manage-tokens\n"
        "(root always has it); to everybody else they do not exist.\n"
        "\n"
        "Example:\n"
        "  gatewayctl token revoke 3f2a9c0b1d4e5f60\n";

static const char help_platforms[] =
        "Lists the platforms of gatewayd's configuration, where images live and jobs\n"
        "run: NAME, KIND (local, ssh, slurm), whether it is the DEFAULT platform, whether\n"
        "it runs JOBS (a kind this gatewayd does not implement runs none; 'platform show'\n"
        "says why) and its NODES counted by state (e.g. \"2 up, 1 unreachable\").\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]        Print a JSON array of the platforms' records (as\n"
        "                          'platform show --json' prints them)\n"
        "\n"
        "Example:\n"
        "  gatewayctl platforms\n";

static const char help_platform_show[] =
        "Shows one platform: its kind, access type, whether it is the default, whether it\n"
        "runs jobs and holds images (and if not, why), its image directories, its\n"
        "configured hosts and whatever else the platform reports about itself (e.g. a\n"
        "Slurm cluster's reachability), followed by a table of its nodes.\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]        Print the platform's record as JSON (the record of\n"
        "                          GET /v1/platforms/NAME)\n"
        "\n"
        "Example:\n"
        "  gatewayctl platform show cluster\n";

static const char help_nodes[] =
        "Lists the nodes of the named platforms, or of every platform: PLATFORM, NODE\n"
        "(the host as configured, e.g. node01:22; a local platform's one node is the\n"
        "gateway host), STATE (up, connecting, unreachable, refused, draining), SLOTS,\n"
        "RUNNING jobs and LAST CONTACT.\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]        Print a JSON array of the nodes, each with its\n"
        "                          \"platform\"\n"
        "\n"
        "Examples:\n"
        "  gatewayctl nodes\n"
        "  gatewayctl nodes cluster\n";

static const char help_node_drain[] =
        "Drains a node of a platform: it takes no new jobs, the jobs running on it go on.\n"
        "'node resume' lets it take jobs again. NODE is the node's name as 'nodes' shows\n"
        "it. A local platform has no nodes of its own to drain (its jobs run on the\n"
        "gateway host): that is refused. Needs the polkit action\n"
        "org.gatewayd.manage-platforms (root always has it). Prints nothing on success.\n"
        "\n"
        "Examples:\n"
        "  gatewayctl node drain cluster node01:22\n"
        "  gatewayctl node resume cluster node01:22\n";
static const char help_client_create[] =
        "Creates PlanQK client credentials for you and prints the client id and secret, one\n"
        "a line (the secret only now: gatewayd keeps only a hash). A client trades them at\n"
        "POST /token on gatewayd's TCP and TLS listeners (OAuth2 client credentials, HTTP\n"
        "Basic) for a token that acts as you within the client's scope for ClientTokenExpiry\n"
        "(1 hour): what PlanQK's service SDK does with its consumer key and secret. Clients\n"
        "can only be created by local users.\n"
        "\n"
        "Options:\n"
        "     --name=NAME         A label for you (\"laptop\", \"ci\"), shown by client list\n"
        "     --scope=SCOPE,...   read (GET routes), submit (jobs), pull (images); repeatable;\n"
        "                         default: all three\n"
        "  -q --quiet             Print only the id and the secret\n"
        "\n"
        "Example:\n"
        "  gatewayctl client create --name=laptop --scope=read,submit\n";

static const char help_client_list[] =
        "Lists your clients (never their secrets): id, name, creation, last token fetch and\n"
        "scope.\n";

static const char help_client_rm[] =
        "Removes clients by id: their secrets are refused from now on, and the tokens they\n"
        "were given are revoked. Your own clients you may remove; someone else's need the\n"
        "polkit action org.gatewayd.manage-tokens (root always has it); to everybody else\n"
        "they do not exist.\n"
        "\n"
        "Example:\n"
        "  gatewayctl client rm gwc_3f2a9c0b1d4e5f60\n";
static const char help_lab_put[] =
        "Creates a lab or replaces its definition (docs/labs.md) from a JSON file (\"-\" for\n"
        "standard input) with the lab's \"name\", \"members\" and optionally \"description\",\n"
        "\"instructions\", \"lifetime\", \"limits\" and \"network\". The whole definition is replaced.\n"
        "Needs the polkit action org.gatewayd.manage-labs.\n"
        "\n"
        "Options:\n"
        "  -q --quiet             Print nothing on success\n"
        "\n"
        "Example:\n"
        "  gatewayctl lab put web-lab.json\n";

static const char help_lab_list[] =
        "Lists the lab definitions, sorted by name: NAME, MEMBERS (how many), LIFETIME of\n"
        "an instance and DESCRIPTION.\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]      Print a JSON array of the full records instead\n"
        "     --no-legend        Print neither the header line nor the count\n"
        "\n"
        "Example:\n"
        "  gatewayctl lab list\n";

static const char help_lab_show[] =
        "Shows one lab definition, one field per line.\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]      Print the record as JSON instead (as the HTTP API does)\n"
        "\n"
        "Example:\n"
        "  gatewayctl lab show web-lab --json\n";

static const char help_lab_rm[] =
        "Removes lab definitions; instances that exist keep running until they end.\n"
        "Needs the polkit action org.gatewayd.manage-labs.\n"
        "\n"
        "Example:\n"
        "  gatewayctl lab rm web-lab\n";

static const char help_lab_start[] =
        "Starts an instance of a lab for you (docs/labs.md) and shows it: its id, state,\n"
        "members, an access token, when the token expires, and for each member its path\n"
        "on gateway-proxy (http://PROXY/<token>/<member>/). The instance is STARTING at\n"
        "first; \"lab instance ID\" shows when it is RUNNING.\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]      Print the instance (with \"access\") as JSON instead\n"
        "\n"
        "Example:\n"
        "  gatewayctl lab start web-lab\n";

static const char help_lab_instances[] =
        "Lists your lab instances, oldest first: ID, LAB, STATE and when it EXPIRES.\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]      Print a JSON array of the full records instead\n"
        "     --no-legend        Print neither the header line nor the count\n"
        "\n"
        "Example:\n"
        "  gatewayctl lab instances\n";

static const char help_lab_instance[] =
        "Shows one of your lab instances: state, times, and each member's state, image\n"
        "and address inside the instance.\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]      Print the record as JSON instead (as the HTTP API does)\n"
        "\n"
        "Example:\n"
        "  gatewayctl lab instance li-3c34b64009db7531\n";

static const char help_lab_token[] =
        "Makes a fresh access token for one of your lab instances (earlier ones stay valid\n"
        "until they expire) and shows it with its expiry and each member's proxy path.\n"
        "\n"
        "Options:\n"
        "     --json[=MODE]      Print {\"token\", \"expiresAt\", \"members\"} as JSON instead\n"
        "\n"
        "Example:\n"
        "  gatewayctl lab token li-3c34b64009db7531\n";

static const char help_lab_stop[] =
        "Stops lab instances of yours and removes everything they had (members, writable\n"
        "layers, network); their tokens stop working at once.\n"
        "\n"
        "Example:\n"
        "  gatewayctl lab stop li-3c34b64009db7531\n";

static int verb_help(int argc, char *argv[], char *tail[]);

static const char help_help[] =
        "Shows the overview of all commands, or the manual of one command.\n"
        "\n"
        "Examples:\n"
        "  gatewayctl help\n"
        "  gatewayctl help service create\n";

/* Adding a verb: write verb_<noun>_<verb>() in ctl-<noun>.c (declared in ctl-<noun>.h), give
 * it an entry here with its manual, add an OPT_* bit and a getopt case for each option of its
 * own (storing into an arg_* variable of its file), and list it in docs/gatewayctl.md. Verbs
 * open the bus themselves (ctl_bus_connect()), so --help never needs the daemon. */
static const Verb verbs[] = {
        { { "services", NULL }, 0, 0, OPT_JSON, false, false, verb_services,
          "services", "List services", help_services },
        { { "service", "list" }, 0, 0, OPT_JSON, false, true, verb_services,
          "service list", "List services", help_services },
        { { "service", "show" }, 1, 1, OPT_JSON, false, false, verb_service_show,
          "service show NAME", "Show a service", help_show },
        { { "service", "create" }, 0, 1, OPTS_SPEC, true, false, verb_service_create,
          "service create NAME --image=REF [OPTIONS...] [-- COMMAND...]", "Register a service", help_create },
        { { "service", "update" }, 1, 1, OPTS_SPEC | OPT_UNSET_ENV, true, false, verb_service_update,
          "service update NAME [OPTIONS...] [-- COMMAND...]", "Change a service", help_update },
        { { "service", "rm" }, 1, VERB_ANY, 0, false, false, verb_service_remove,
          "service rm NAME...", "Remove services", help_rm },
        { { "service", "remove" }, 1, VERB_ANY, 0, false, true, verb_service_remove,
          "service remove NAME...", "Remove services", help_rm },
        { { "pull", NULL }, 1, 1, OPTS_PULL, false, false, verb_pull,
          "pull REF [OPTIONS...]", "Import an image and wait until it is READY", help_pull },
        { { "image", "pull" }, 1, 1, OPTS_PULL, false, true, verb_pull,
          "image pull REF [OPTIONS...]", "Import an image and wait until it is READY", help_pull },
        { { "images", NULL }, 0, 0, OPT_JSON, false, false, verb_images,
          "images", "List images", help_images },
        { { "image", "list" }, 0, 0, OPT_JSON, false, true, verb_images,
          "image list", "List images", help_images },
        { { "image", "show" }, 1, 1, OPT_JSON | OPT_PLATFORM, false, false, verb_image_show,
          "image show ID|REF", "Show an image", help_image_show },
        { { "rmi", NULL }, 1, VERB_ANY, OPT_PLATFORM, false, false, verb_image_remove,
          "rmi ID|REF...", "Remove images", help_rmi },
        { { "image", "rm" }, 1, VERB_ANY, OPT_PLATFORM, false, true, verb_image_remove,
          "image rm ID|REF...", "Remove images", help_rmi },
        { { "image", "expire" }, 1, VERB_ANY, OPT_PLATFORM, false, false, verb_image_expire,
          "image expire ID|REF...", "Expire images now", help_image_expire },
        { { "submit", NULL }, 1, 1, OPT_DATA | OPT_PARAMS | OPT_WAIT | OPT_JSON, false, false, verb_submit,
          "submit SERVICE [--data=FILE] [--params=FILE] [--wait]", "Submit a job", help_submit },
        { { "jobs", NULL }, 0, 0, OPT_ALL | OPT_JSON, false, false, verb_jobs,
          "jobs [--all]", "List jobs", help_jobs },
        { { "job", "show" }, 1, 1, OPT_JSON, false, false, verb_job_show,
          "job show ID", "Show a job", help_job_show },
        { { "job", "rm" }, 1, VERB_ANY, 0, false, false, verb_job_remove,
          "job rm ID...", "Remove finished jobs", help_job_rm },
        { { "job", "remove" }, 1, VERB_ANY, 0, false, true, verb_job_remove,
          "job remove ID...", "Remove finished jobs", help_job_rm },
        { { "result", NULL }, 1, 1, OPT_JSON, false, false, verb_result,
          "result ID", "Print a job's result", help_result },
        { { "logs", NULL }, 1, 1, OPT_FOLLOW, false, false, verb_logs,
          "logs ID [-f]", "Print a job's log", help_logs },
        { { "cancel", NULL }, 1, VERB_ANY, 0, false, false, verb_cancel,
          "cancel ID...", "Cancel jobs", help_cancel },
        { { "token", "create" }, 0, 0, OPT_JSON | OPT_EXPIRES_IN | OPT_SCOPE | OPT_QUIET, false, false, verb_token_create,
          "token create [OPTIONS...]", "Create a token for the TCP/TLS listeners", help_token_create },
        { { "token", "list" }, 0, 0, OPT_JSON, false, false, verb_token_list,
          "token list", "List your tokens", help_token_list },
        { { "token", "revoke" }, 1, VERB_ANY, 0, false, false, verb_token_revoke,
          "token revoke ID...", "Revoke tokens", help_token_revoke },
        { { "platforms", NULL }, 0, 0, OPT_JSON, false, false, verb_platforms,
          "platforms", "List platforms", help_platforms },
        { { "platform", "list" }, 0, 0, OPT_JSON, false, true, verb_platforms,
          "platform list", "List platforms", help_platforms },
        { { "platform", "show" }, 1, 1, OPT_JSON, false, false, verb_platform_show,
          "platform show NAME", "Show a platform and its nodes", help_platform_show },
        { { "nodes", NULL }, 0, VERB_ANY, OPT_JSON, false, false, verb_nodes,
          "nodes [PLATFORM...]", "List the nodes of platforms", help_nodes },
        { { "node", "drain" }, 2, 2, 0, false, false, verb_node_drain,
          "node drain PLATFORM NODE", "Drain a node: it takes no new jobs", help_node_drain },
        { { "node", "resume" }, 2, 2, 0, false, false, verb_node_resume,
          "node resume PLATFORM NODE", "Let a drained node take jobs again", help_node_drain },
        { { "client", "create" }, 0, 0, OPT_JSON | OPT_NAME | OPT_SCOPE | OPT_QUIET, false, false, verb_client_create,
          "client create [OPTIONS...]", "Create PlanQK client credentials", help_client_create },
        { { "client", "list" }, 0, 0, OPT_JSON, false, false, verb_client_list,
          "client list", "List your clients", help_client_list },
        { { "client", "rm" }, 1, VERB_ANY, 0, false, false, verb_client_rm,
          "client rm ID...", "Remove clients", help_client_rm },
        { { "program", "upload" }, 0, 1, OPT_ENTRYPOINT | OPT_TITLE | OPT_ARG | OPT_REPLACE | OPT_PROVIDER | OPT_JSON | OPT_IMAGE,
          false, false, verb_program_upload, "program upload [DIR] [--entrypoint=FILE] [--image=REF]",
          "Upload a directory as a program", help_program_upload },
        { { "program", "list" }, 0, 0, OPT_PROVIDER | OPT_JSON, false, false, verb_program_list,
          "program list", "List your programs", help_program_list },
        { { "program", "rm" }, 1, VERB_ANY, OPT_PROVIDER, false, false, verb_program_remove,
          "program rm TITLE...", "Remove programs", help_program_rm },
        { { "program", "run" }, 1, 1, OPT_ARG | OPT_WAIT | OPT_PROVIDER | OPT_JSON, false, false, verb_program_run,
          "program run TITLE [--arg=K=V...]", "Run a program as a job", help_program_run },
        { { "lab", "put" }, 1, 1, OPT_QUIET, false, false, verb_lab_put,
          "lab put FILE", "Create or replace a lab", help_lab_put },
        { { "lab", "list" }, 0, 0, OPT_JSON, false, false, verb_lab_list,
          "lab list", "List labs", help_lab_list },
        { { "lab", "show" }, 1, 1, OPT_JSON, false, false, verb_lab_show,
          "lab show NAME", "Show a lab", help_lab_show },
        { { "lab", "rm" }, 1, VERB_ANY, 0, false, false, verb_lab_remove,
          "lab rm NAME...", "Remove labs", help_lab_rm },
        { { "lab", "start" }, 1, 1, OPT_JSON, false, false, verb_lab_start,
          "lab start NAME", "Start an instance of a lab", help_lab_start },
        { { "lab", "instances" }, 0, 0, OPT_JSON, false, false, verb_lab_instances,
          "lab instances", "List your lab instances", help_lab_instances },
        { { "lab", "instance" }, 1, 1, OPT_JSON, false, false, verb_lab_instance,
          "lab instance ID", "Show a lab instance", help_lab_instance },
        { { "lab", "token" }, 1, 1, OPT_JSON, false, false, verb_lab_token,
          "lab token ID", "New access token for a lab instance", help_lab_token },
        { { "lab", "stop" }, 1, VERB_ANY, 0, false, false, verb_lab_stop,
          "lab stop ID...", "Stop and remove lab instances", help_lab_stop },
        { { "status", NULL }, 0, 0, OPT_JSON, false, false, verb_status,
          "status", "Show the daemon's version and state", help_status },
        { { "help", NULL }, 0, 2, 0, false, false, verb_help,
          "help [COMMAND]", "Show this overview, or a command's manual", help_help },
};

static const Verb *default_verb = &verbs[0];

static void help_overview(void) {
        printf("gatewayctl [OPTIONS...] COMMAND ...\n"
               "\n"
               "Control gatewayd, the gateway that imports container images and runs\n"
               "services as sandboxed one-shot jobs. gatewayctl talks to gatewayd\n"
               "(%s) on the system bus. Without a command, it lists\n"
               "the services.\n"
               "\n"
               "Commands:\n", "org.gatewayd.Gateway1");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                if (verbs[i].hidden)
                        continue;
                if (strlen(verbs[i].synopsis) <= 34)
                        printf("  %-34s %s\n", verbs[i].synopsis, verbs[i].summary);
                else
                        printf("  %s\n  %-34s %s\n", verbs[i].synopsis, "", verbs[i].summary);
        }
        printf("\n"
               "Options:\n"
               "  -h --help               Show this help; after a command, the command's manual\n"
               "     --version            Show the version\n"
               "     --json[=MODE]        Print JSON instead of tables and fields; MODE is\n"
               "                          \"pretty\" (default) or \"short\" (one line)\n"
               "     --no-legend          Print no header and no footer around tables\n"
               "     --no-pager           Accepted for compatibility; output is never paged\n"
               "     --no-ask-password    Do not let polkit ask for a password\n"
               "\n"
               "Options of 'service create' and 'service update' are described by\n"
               "'gatewayctl service create --help', those of 'pull' (--platform,\n"
               "--credentials-file, --force, --quiet) by 'gatewayctl pull --help'.\n"
               "\n"
               "Environment:\n"
               "  DBUS_SYSTEM_BUS_ADDRESS  The system bus to use (default: the standard socket)\n"
               "  COLUMNS                  Width to fit tables to, also when not on a terminal\n"
               "  NO_COLOR                 Do not underline table headers\n"
               "\n"
               "Exit status: 0 on success, 1 on any failure (the error is printed on\n"
               "standard error). See docs/gatewayctl.md for the full reference.\n");
}

static void help_verb(const Verb *v) {
        /* A long synopsis continues on a second line, so that the manual stays within 80
         * columns. */
        if (strlen(v->synopsis) > 55 && strstr(v->synopsis, " [OPTIONS...]"))
                printf("gatewayctl [OPTIONS...] %.*s\n        %s\n\n%s",
                       (int) (strstr(v->synopsis, " [OPTIONS...]") - v->synopsis), v->synopsis,
                       strstr(v->synopsis, " [OPTIONS...]") + 1, v->help);
        else
                printf("gatewayctl [OPTIONS...] %s\n\n%s", v->synopsis, v->help);
        printf("\nGeneral options (--no-legend, --no-ask-password, ...): gatewayctl --help\n");
}

static const Verb *verb_find(char *words[], size_t n, size_t *ret_consumed) {
        if (n == 0)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                const Verb *v = &verbs[i];
                if (!streq(v->words[0], words[0]))
                        continue;
                if (!v->words[1]) {
                        *ret_consumed = 1;
                        return v;
                }
                if (n >= 2 && streq(v->words[1], words[1])) {
                        *ret_consumed = 2;
                        return v;
                }
        }
        return NULL;
}

/* A verb's first word that needs a second ("service"), for a helpful error. */
static bool verb_is_group(const char *word) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (verbs[i].words[1] && streq(verbs[i].words[0], word))
                        return true;
        return false;
}

static int log_unknown_subcommand(const char *group, const char *sub) {
        char list[256] = "";

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (verbs[i].words[1] && !verbs[i].hidden && streq(verbs[i].words[0], group)) {
                        if (list[0])
                                strncat(list, ", ", sizeof(list) - strlen(list) - 1);
                        strncat(list, verbs[i].words[1], sizeof(list) - strlen(list) - 1);
                }
        if (sub)
                return log_error_errno(EINVAL, "Unknown command '%s %s'; '%s' takes one of: %s.", group, sub,
                                       group, list);
        return log_error_errno(EINVAL, "'%s' needs a command: one of %s.", group, list);
}

static int verb_help(int argc, char *argv[], char *tail[]) {
        const Verb *v;
        size_t consumed;

        if (argc == 0) {
                help_overview();
                return 0;
        }
        v = verb_find(argv, (size_t) argc, &consumed);
        if (!v || consumed != (size_t) argc) {
                if (verb_is_group(argv[0]))
                        return log_unknown_subcommand(argv[0], argc > 1 ? argv[1] : NULL);
                return log_error_errno(EINVAL, "Unknown command '%s'; see 'gatewayctl --help'.", argv[0]);
        }
        help_verb(v);
        return 0;
}

typedef struct ParsedArgs {
        bool help, version;
        uint64_t given;          /* OPT_* bits seen */
        const char *given_name[64];
        char **positional;       /* points into argv */
        size_t n_positional;
        char **tail;             /* after "--", NULL-terminated, or NULL */
} ParsedArgs;

static int parse_memory(const char *s) {
        int r = ctl_parse_size(s, &arg_spec.memory);
        if (r < 0)
                return log_error_errno(r, "Invalid --memory= value '%s': expected bytes or a size such as 512M "
                                       "or 2G.", s);
        arg_spec.memory_set = true;
        return 0;
}

static int parse_argv(int argc, char *argv[], ParsedArgs *p) {
        enum {
                ARG_VERSION = 0x100,
                ARG_JSON,
                ARG_NO_PAGER,
                ARG_NO_LEGEND,
                ARG_NO_ASK_PASSWORD,
                ARG_IMAGE,
                ARG_COMMAND,
                ARG_ENV,
                ARG_UNSET_ENV,
                ARG_DESCRIPTION,
                ARG_MEMORY,
                ARG_CPUS,
                ARG_TIMEOUT,
                ARG_NETWORK,
                ARG_PLATFORM,
                ARG_CREDENTIALS_FILE,
                ARG_FORCE,
                ARG_DATA,
                ARG_PARAMS,
                ARG_WAIT,
                ARG_FOLLOW,
                ARG_ALL,
                ARG_EXPIRES_IN,
                ARG_SCOPE,
                ARG_NAME,
                ARG_ENTRYPOINT,
                ARG_TITLE,
                ARG_ARG,
                ARG_REPLACE,
                ARG_PROVIDER,
        };
        static const struct option options[] = {
                { "help",            no_argument,       NULL, 'h'                 },
                { "version",         no_argument,       NULL, ARG_VERSION         },
                { "json",            optional_argument, NULL, ARG_JSON            },
                { "no-pager",        no_argument,       NULL, ARG_NO_PAGER        },
                { "no-legend",       no_argument,       NULL, ARG_NO_LEGEND       },
                { "no-ask-password", no_argument,       NULL, ARG_NO_ASK_PASSWORD },
                { "file",            required_argument, NULL, 'f'                 },
                { "image",           required_argument, NULL, ARG_IMAGE           },
                { "command",         required_argument, NULL, ARG_COMMAND         },
                { "env",             required_argument, NULL, ARG_ENV             },
                { "unset-env",       required_argument, NULL, ARG_UNSET_ENV       },
                { "description",     required_argument, NULL, ARG_DESCRIPTION     },
                { "memory",          required_argument, NULL, ARG_MEMORY          },
                { "cpus",            required_argument, NULL, ARG_CPUS            },
                { "timeout",         required_argument, NULL, ARG_TIMEOUT         },
                { "network",         optional_argument, NULL, ARG_NETWORK         },
                { "platform",        required_argument, NULL, ARG_PLATFORM        },
                { "credentials-file", required_argument, NULL, ARG_CREDENTIALS_FILE },
                { "force",           no_argument,       NULL, ARG_FORCE           },
                { "quiet",           no_argument,       NULL, 'q'                 },
                { "data",            required_argument, NULL, ARG_DATA            },
                { "params",          required_argument, NULL, ARG_PARAMS          },
                { "wait",            no_argument,       NULL, ARG_WAIT            },
                { "follow",          no_argument,       NULL, ARG_FOLLOW          },
                { "all",             no_argument,       NULL, ARG_ALL             },
                { "expires-in",      required_argument, NULL, ARG_EXPIRES_IN      },
                { "scope",           required_argument, NULL, ARG_SCOPE           },
                { "name",            required_argument, NULL, ARG_NAME            },
                { "entrypoint",      required_argument, NULL, ARG_ENTRYPOINT      },
                { "title",           required_argument, NULL, ARG_TITLE           },
                { "replace",         no_argument,       NULL, ARG_REPLACE         },
                { "arg",             required_argument, NULL, ARG_ARG             },
                { "provider",        required_argument, NULL, ARG_PROVIDER        },
                {}
        };
        _cleanup_free_ char **original = NULL;
        const char *dashdash_arg = NULL;   /* a "--" taken as an option's argument */
        size_t n_tail = 0;
        int c, r;

        /* getopt permutes argv; keep the original order to find where "--" was. */
        original = malloc(sizeof(char *) * ((size_t) argc + 1));
        if (!original)
                return log_oom();
        memcpy(original, argv, sizeof(char *) * ((size_t) argc + 1));

        /* "-f" is --file for the service verbs but --follow for "logs", as in journalctl. */
        for (int k = 1; k < argc; k++) {
                if (streq(argv[k], "--"))
                        break;
                if (argv[k][0] == '-')
                        continue;
                if (streq(argv[k], "logs"))
                        for (int m = 1; m < argc && !streq(argv[m], "--"); m++)
                                if (streq(argv[m], "-f"))
                                        argv[m] = (char *) "--follow";
                break;
        }

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hf:q", options, NULL)) >= 0) {
                uint64_t bit = 0;
                const char *name = NULL;

                if (optarg && streq(optarg, "--"))
                        dashdash_arg = optarg;

                switch (c) {
                case 'h':
                        p->help = true;
                        break;
                case ARG_VERSION:
                        p->version = true;
                        break;
                case ARG_JSON:
                        bit = OPT_JSON, name = "--json";
                        if (!optarg || streq(optarg, "pretty"))
                                arg_json = JSON_PRETTY;
                        else if (streq(optarg, "short"))
                                arg_json = JSON_SHORT;
                        else if (streq(optarg, "off"))
                                arg_json = JSON_OFF;
                        else
                                return log_error_errno(EINVAL, "Invalid --json= mode '%s': expected pretty, short "
                                                       "or off.", optarg);
                        break;
                case ARG_NO_PAGER:
                        break;
                case ARG_NO_LEGEND:
                        arg_legend = false;
                        break;
                case ARG_NO_ASK_PASSWORD:
                        arg_ask_password = false;
                        break;
                case 'f':
                        bit = OPT_FILE, name = "--file";
                        if (!*optarg)
                                return log_error_errno(EINVAL, "--file= needs a path (or \"-\" for standard input).");
                        if (free_and_strdup(&arg_spec.file, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_IMAGE:
                        bit = OPT_IMAGE, name = "--image";
                        if (!*optarg)
                                return log_error_errno(EINVAL, "--image= needs an image reference.");
                        if (free_and_strdup(&arg_spec.image, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_COMMAND:
                        bit = OPT_COMMAND, name = "--command";
                        if (strv_extend(&arg_spec.command, optarg) < 0)
                                return log_oom();
                        arg_spec.command_set = true;
                        break;
                case ARG_ENV:
                        bit = OPT_ENV, name = "--env";
                        if (env_assignment_is_valid(optarg) < 0)
                                return log_error_errno(EINVAL, "Invalid --env= value '%s': expected KEY=VALUE.", optarg);
                        if (strv_extend(&arg_spec.env_set, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_UNSET_ENV:
                        bit = OPT_UNSET_ENV, name = "--unset-env";
                        if (!*optarg || strchr(optarg, '='))
                                return log_error_errno(EINVAL, "Invalid --unset-env= value '%s': expected a variable "
                                                       "name.", optarg);
                        if (strv_extend(&arg_spec.env_unset, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_DESCRIPTION:
                        bit = OPT_DESCRIPTION, name = "--description";
                        if (free_and_strdup(&arg_spec.description, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_MEMORY:
                        bit = OPT_MEMORY, name = "--memory";
                        r = parse_memory(optarg);
                        if (r < 0)
                                return r;
                        break;
                case ARG_CPUS:
                        bit = OPT_CPUS, name = "--cpus";
                        r = parse_cpus(optarg, &arg_spec.cpus);
                        if (r < 0)
                                return log_error_errno(r, "Invalid --cpus= value '%s': expected a number of CPUs "
                                                       "such as 0.5 or 2.", optarg);
                        arg_spec.cpus_set = true;
                        break;
                case ARG_TIMEOUT:
                        bit = OPT_TIMEOUT, name = "--timeout";
                        r = parse_timespan_sec(optarg, &arg_spec.timeout_sec);
                        if (r < 0)
                                return log_error_errno(r, "Invalid --timeout= value '%s': expected seconds or a time "
                                                       "such as 90s, 5min, 1h30min.", optarg);
                        arg_spec.timeout_set = true;
                        break;
                case ARG_NETWORK:
                        bit = OPT_NETWORK, name = "--network";
                        if (optarg) {
                                r = parse_boolean(optarg);
                                if (r < 0)
                                        return log_error_errno(r, "Invalid --network= value '%s': expected yes or no.",
                                                               optarg);
                                arg_spec.network = r;
                        } else
                                arg_spec.network = 1;
                        break;
                case ARG_PLATFORM:
                        bit = OPT_PLATFORM, name = "--platform";
                        if (!*optarg)
                                return log_error_errno(EINVAL, "--platform= needs a platform name.");
                        if (free_and_strdup(&arg_pull_platform, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_CREDENTIALS_FILE:
                        bit = OPT_CREDENTIALS, name = "--credentials-file";
                        if (!*optarg)
                                return log_error_errno(EINVAL, "--credentials-file= needs a path (or \"-\" for "
                                                       "standard input).");
                        if (free_and_strdup(&arg_pull_credentials_file, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_FORCE:
                        bit = OPT_FORCE, name = "--force";
                        arg_pull_force = true;
                        break;
                case 'q':
                        bit = OPT_QUIET, name = "--quiet";
                        arg_quiet = true;
                        break;
                case ARG_DATA:
                        bit = OPT_DATA, name = "--data";
                        if (!*optarg || free_and_strdup(&arg_job.data_file, optarg) < 0)
                                return *optarg ? log_oom() : log_error_errno(EINVAL, "--data= needs a file (or \"-\").");
                        break;
                case ARG_PARAMS:
                        bit = OPT_PARAMS, name = "--params";
                        if (!*optarg || free_and_strdup(&arg_job.params_file, optarg) < 0)
                                return *optarg ? log_oom() : log_error_errno(EINVAL, "--params= needs a file (or \"-\").");
                        break;
                case ARG_WAIT:
                        bit = OPT_WAIT, name = "--wait";
                        arg_job.wait = true;
                        break;
                case ARG_FOLLOW:
                        bit = OPT_FOLLOW, name = "--follow";
                        arg_job.follow = true;
                        break;
                case ARG_ALL:
                        bit = OPT_ALL, name = "--all";
                        arg_job.all = true;
                        break;
                case ARG_EXPIRES_IN:
                        bit = OPT_EXPIRES_IN, name = "--expires-in";
                        r = parse_timespan_sec(optarg, &arg_token.expires_in_sec);
                        if (r < 0 || arg_token.expires_in_sec == 0)
                                return log_error_errno(r < 0 ? r : EINVAL, "Invalid --expires-in= value '%s': expected "
                                                       "seconds or a time such as 12h or 30d.", optarg);
                        break;
                case ARG_SCOPE: {
                        _cleanup_free_ char *copy = strdup(optarg);
                        char *save = NULL;

                        bit = OPT_SCOPE, name = "--scope";
                        if (!copy)
                                return log_oom();
                        for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                                if (!streq(w, "read") && !streq(w, "submit") && !streq(w, "pull"))
                                        return log_error_errno(EINVAL, "Invalid --scope= value '%s': expected read, "
                                                               "submit or pull.", w);
                                if (strv_extend(&arg_token.scope, w) < 0)
                                        return log_oom();
                        }
                        break;
                }
                case ARG_NAME:
                        bit = OPT_NAME, name = "--name";
                        if (!*optarg)
                                return log_error_errno(EINVAL, "--name= needs a name.");
                        if (free_and_strdup(&arg_client.name, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_ENTRYPOINT:
                        bit = OPT_ENTRYPOINT, name = "--entrypoint";
                        if (!*optarg || free_and_strdup(&arg_program.entrypoint, optarg) < 0)
                                return *optarg ? log_oom() : log_error_errno(EINVAL, "--entrypoint= needs a file.");
                        break;
                case ARG_TITLE:
                        bit = OPT_TITLE, name = "--title";
                        if (!*optarg || free_and_strdup(&arg_program.title, optarg) < 0)
                                return *optarg ? log_oom() : log_error_errno(EINVAL, "--title= needs a title.");
                        break;
                case ARG_REPLACE:
                        bit = OPT_REPLACE, name = "--replace";
                        arg_program.replace = true;
                        break;
                case ARG_PROVIDER:
                        bit = OPT_PROVIDER, name = "--provider";
                        if (!*optarg || free_and_strdup(&arg_program.provider, optarg) < 0)
                                return *optarg ? log_oom() : log_error_errno(EINVAL, "--provider= needs a provider.");
                        break;
                case ARG_ARG:
                        bit = OPT_ARG, name = "--arg";
                        r = program_args_add_argument(&arg_program, optarg);
                        if (r < 0)
                                return r;
                        break;
                case ':':
                        if (optopt > 0 && optopt < 0x100)
                                return log_error_errno(EINVAL, "Option -%c needs an argument.", optopt);
                        return log_error_errno(EINVAL, "Option %s needs an argument.", argv[optind - 1]);
                case '?':
                        if (optopt > 0 && optopt < 0x100)
                                return log_error_errno(EINVAL, "Unknown option -%c; see 'gatewayctl --help'.", optopt);
                        return log_error_errno(EINVAL, "Unknown option %s; see 'gatewayctl --help'.", argv[optind - 1]);
                default:
                        return log_error_errno(EINVAL, "Unhandled option.");
                }

                if (bit) {
                        p->given |= bit;
                        p->given_name[__builtin_ctzll(bit)] = name;
                }
        }

        /* If getopt stopped at a "--" (and not at one that was an option's argument), what
         * follows it is the tail, left in its original order at the end of argv. */
        if (optind > 1 && streq(argv[optind - 1], "--") && argv[optind - 1] != dashdash_arg)
                for (int k = 1; k < argc; k++)
                        if (original[k] == argv[optind - 1]) {
                                n_tail = (size_t) (argc - k - 1);
                                break;
                        }

        p->positional = argv + optind;
        p->n_positional = (size_t) (argc - optind) - n_tail;
        p->tail = n_tail > 0 || (optind > 1 && streq(argv[optind - 1], "--") && argv[optind - 1] != dashdash_arg)
                          ? argv + (argc - (int) n_tail)
                          : NULL;
        /* "gatewayctl -- status": the command itself came after "--". */
        if (p->n_positional == 0 && p->tail) {
                p->n_positional = n_tail;
                p->tail = NULL;
        }
        return 0;
}

static int dispatch(ParsedArgs *p) {
        const Verb *v = default_verb;
        size_t consumed = 0, n_args;
        char **args;

        if (p->n_positional > 0) {
                v = verb_find(p->positional, p->n_positional, &consumed);
                if (!v) {
                        if (verb_is_group(p->positional[0]))
                                return log_unknown_subcommand(p->positional[0],
                                                              p->n_positional > 1 ? p->positional[1] : NULL);
                        return log_error_errno(EINVAL, "Unknown command '%s'; see 'gatewayctl --help'.",
                                               p->positional[0]);
                }
        }

        if (p->help) {
                if (p->n_positional == 0)
                        help_overview();
                else
                        help_verb(v);
                return 0;
        }

        for (unsigned bit = 0; bit < 64; bit++)
                if ((p->given & (UINT64_C(1) << bit)) && !(v->options & (UINT64_C(1) << bit)))
                        return log_error_errno(EINVAL, "Option %s does not apply to '%s%s%s'; see 'gatewayctl %s%s%s --help'.",
                                               p->given_name[bit], v->words[0], v->words[1] ? " " : "", strempty(v->words[1]),
                                               v->words[0], v->words[1] ? " " : "", strempty(v->words[1]));

        args = p->positional + consumed;
        n_args = p->n_positional - consumed;

        /* For verbs that do not run a command line, "--" just ends the options, as usual: what
         * follows are more arguments (e.g. a name that starts with "-"). */
        if (p->tail && !v->tail) {
                n_args += strv_length(p->tail);
                p->tail = NULL;
        }

        if (n_args < v->min_args)
                return log_error_errno(EINVAL, "Too few arguments; usage: gatewayctl %s", v->synopsis);
        if (v->max_args != VERB_ANY && n_args > v->max_args)
                return log_error_errno(EINVAL, "Too many arguments; usage: gatewayctl %s", v->synopsis);

        /* args and the tail are contiguous in argv, so a merged tail needs no copying. */
        return v->run((int) n_args, args, p->tail);
}

int main(int argc, char *argv[]) {
        ParsedArgs p = {};
        int r;

        log_setup("gatewayctl");
        setlocale(LC_ALL, "");

        r = parse_argv(argc, argv, &p);
        if (r >= 0 && p.version) {
                printf("gatewayctl %s\n", GATEWAYD_VERSION);
        } else if (r >= 0)
                r = dispatch(&p);

        spec_changes_done(&arg_spec);
        images_args_done();
        job_args_done(&arg_job);
        program_args_done(&arg_program);
        token_args_done(&arg_token);
        client_args_done(&arg_client);
        if (fflush(stdout) == EOF && r >= 0)
                r = log_error_errno(errno, "Failed to write output: %m");
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
