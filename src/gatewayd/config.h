/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* gatewayd's configuration (DESIGN.md §4, docs/configuration.md): /etc/gatewayd/gatewayd.json,
 * or --config PATH. Keys shared with Shifter's imagegw keep their names and meaning, so an
 * existing imagemanager.json loads; gatewayd's own keys live beside them. A missing file means
 * all defaults. After a successful parse every field holds its effective value: there is always
 * at least one location and one platform, and default_platform names one of them. */

/* DESIGN.md §2. (Not derived from SYSCONFDIR: the generated top-level config.h is shadowed by
 * this header inside src/gatewayd.) */
#define CONFIG_PATH_DEFAULT "/etc/gatewayd/gatewayd.json"

typedef struct ConfigLocation {
        char *name;            /* key in "Locations", e.g. "registry-1.docker.io" */
        char *remotetype;      /* "dockerv2" (or Shifter's "dockerhub") */
        char *authentication;  /* "http" (anonymous/token, Shifter's value), "basic", "none" */
        char *url;             /* optional explicit base URL */
        char *sslcacert;       /* CA bundle for this registry, NULL = system store */
        bool insecure;         /* plain http (gatewayd key, for local registries) */
} ConfigLocation;

typedef enum ConfigAccessType {
        CONFIG_ACCESS_LOCAL,   /* images land in a directory on this host */
        CONFIG_ACCESS_REMOTE,  /* images and jobs go to "host" over SSH */
} ConfigAccessType;

typedef struct ConfigPlatform {
        char *name;            /* key in "Platforms" */
        char *accesstype;      /* "local" or "remote" */
        ConfigAccessType access;
        char *host;            /* remote: first entry of "host" (string or list) */
        char **hosts;          /* remote: every entry of "host", NULL-terminated */
        char *ssh_username, *ssh_key, *ssh_image_dir;
        unsigned ssh_port;     /* "ssh.port" (gatewayd), default 22 */
        char *ssh_known_hosts; /* "ssh.knownHosts" (gatewayd), NULL = system default */
        char *local_image_dir; /* "local.imageDir", NULL = <state>/images */
        char *worker_path;     /* "workerPath" (gatewayd): gateway-worker on the node, NULL = ours */

        /* "slurm" (gatewayd): jobs go through slurmrestd when slurm_url is set */
        char *slurm_url;       /* "http(s)://host:port" or "unix:/path" */
        char *slurm_user;      /* X-SLURM-USER-NAME */
        char *slurm_token_file;/* file holding the JWT for X-SLURM-USER-TOKEN */
        char *slurm_jwt_key;   /* the site's jwt_key: mint a token per user */
        char *slurm_launcher;  /* gateway-slurm-launch on the nodes; NULL: LIBEXECDIR's */
        char *slurm_partition;
        char *slurm_account;
        char *slurm_spool_dir; /* job spool on a file system shared with the nodes */
        char *slurm_spool_watch; /* "auto" (NULL), "inotify" or "poll": how spool changes are seen */

        char **admins;         /* Shifter's "admins": user names that administer this platform's images */
        char *munge_socket_path; /* Shifter's "mungeSocketPath": munged for this platform's /api/ routes */
} ConfigPlatform;

/* "Authentication": {"customToken": {...}}: bearer tokens verified by the site's token service
 * (auth-custom-token.c, the Qiskit serverless gateway's custom_token). Off unless token_url. */
typedef struct ConfigCustomToken {
        char *token_url;          /* "tokenUrl": POST {tokenField: TOKEN} -> {userField, "id"} */
        char *verification_url;   /* "verificationUrl": GET with "Authorization: <id>" */
        char *token_field;        /* "tokenField", default "apiToken" */
        char *user_field;         /* "userField", default "userId" */
        char *verification_field; /* "verificationField": "a;b,c" = a and b.c truthy, NULL = none */
        char *local_user;         /* "localUser": account of external users without one of their name */
} ConfigCustomToken;

/* "ProgramProviders": {"NAME": {"admins": [...], "users": [...]}}: shared programs per provider
 * (docs/programs.md "Providers"); entries are user names and "@group"s, as in "Admins". */
typedef struct ConfigProgramProvider {
        char *name;            /* 1-64 of [A-Za-z0-9_-] (the serverless gateway's provider names) */
        char **admins;         /* upload, replace and remove the provider's programs (and run them) */
        char **users;          /* see and run them */
} ConfigProgramProvider;

typedef struct Config {
        char *path;                       /* file it was loaded from, or NULL */

        /* Shifter-compatible keys */
        char *default_image_location;     /* DefaultImageLocation, "registry-1.docker.io" */
        char *default_image_format;       /* DefaultImageFormat, "squashfs" */
        uint64_t pull_update_timeout_sec; /* PullUpdateTimeout, 300 (durations: at most 100 years) */
        uint64_t image_expiration_sec;    /* ImageExpirationTimeout "D:HH:MM:SS", 0 = never */
        char *cache_directory;            /* CacheDirectory, NULL = <state>/cache */
        char *expand_directory;           /* ExpandDirectory, NULL = <state>/expand */
        int log_level;                    /* LogLevel as a syslog level, -1 = not set */
        ConfigLocation *locations;
        size_t n_locations;
        ConfigPlatform *platforms;
        size_t n_platforms;
        char *default_platform;           /* gatewayd: "DefaultPlatform", default: the first */

        /* gatewayd's own keys */
        char *state_directory;            /* "StateDirectory", NULL = /var/lib/gatewayd */
        char *worker_path;                /* "WorkerPath", NULL = next to gatewayd */
        uint64_t max_request_body;        /* "MaxRequestBody" bytes, default 1 MiB */
        unsigned jobs_per_user;           /* "JobsPerUser": running (PENDING+RUNNING) per user, 2, 0 = unlimited */
        uint64_t lab_token_lifetime_sec;  /* "LabTokenLifetime": lab access tokens live this long, 10 min */
        unsigned lab_instances_per_user;  /* "LabInstancesPerUser": unfinished lab instances per user, 2, 0 = unlimited */
        char *lab_proxy_url;              /* "LabProxyURL": gateway-proxy as browsers reach it, NULL = unknown */
        uint32_t lab_network_pool;        /* "LabNetworkPool": outbound labs' IPv4 /30s, host order, 10.250.0.0 */
        unsigned lab_network_pool_prefix; /*   its prefix length, 16 */
        char **lab_name_servers;          /* "LabNameServers": outbound members' name servers (IPv4), NULL = the host's */
        uint64_t lab_writable_max;        /* "LabWritableMax": a member's writable layer, bytes, 1 GiB, 0 = a plain directory */
        unsigned active_jobs_per_user;    /* "ActiveJobsPerUser": unfinished per user, 50, 0 = unlimited */
        unsigned max_clusters;            /* "MaxClusters", >= 1 */
        unsigned connections_per_user;    /* "ConnectionsPerUser" HTTP connections per peer uid, 64 */
        unsigned connections_max;         /* "ConnectionsMax" HTTP connections in total, 4096 */
        unsigned connection_timeout_sec;  /* "ConnectionTimeout" idle HTTP connections, 60 s */
        char *compressor;                 /* "Compression": {"algorithm"}, default "zstd" */
        int compression_level;            /* "Compression": {"level"}, default 3 */
        uint64_t job_retention_sec;       /* "JobRetention" duration, 7 days, 0 = keep forever */
        uint64_t image_size_max;          /* "ImageSizeMax" unpacked bytes of an image, 64 GiB */
        unsigned image_files_max;         /* "ImageFilesMax" entries of an image, 2000000 */
        uint64_t node_lost_timeout_sec;   /* "NodeLostTimeout" duration: a remote node unreachable this
                                           * long loses its jobs (NODE_LOST), 10 min, 0 = never */
        /* programs (docs/programs.md) */
        char *program_image;              /* "ProgramImage" base image reference of program jobs, NULL = none */
        uint64_t program_artifact_max;    /* "ProgramArtifactMax" bytes of an uploaded artifact, 64 MiB */
        char **program_images;            /* "ProgramImages" images a program may name instead of
                                           * ProgramImage (patterns), NULL/empty = none */
        ConfigProgramProvider *program_providers; /* "ProgramProviders", in file order */
        size_t n_program_providers;

        /* "Limits": per-job caps */
        uint64_t result_max;              /* "ResultMax" bytes of result, 16 MiB */
        uint64_t interim_max;             /* "InterimMax" bytes per interim result, 1 MiB */
        uint64_t interim_count;           /* "InterimCount" interim results per job, 10000 */
        uint64_t log_max;                 /* "LogMax" bytes of job log, 50 MiB */
        uint64_t runtime_max_sec;         /* "RuntimeMax" duration, 1 day, 0 = unlimited */
        uint64_t memory_max;              /* "MemoryMax" bytes; unset/0: a quarter of physical RAM */
        uint64_t tasks_max;               /* "TasksMax" processes/threads, 512, 0 = unlimited */
        uint64_t output_max;              /* "OutputMax" bytes of result files per job, 64 MiB, 0 = none */
        uint64_t output_files;            /* "OutputFiles" result files per job, 1000, 0 = none */

        /* Remote access (TCP/TLS listeners, identities; docs/configuration.md "Remote access") */
        char *listen_tcp;                 /* "Listen": {"tcp": "HOST:PORT"}, plain HTTP, NULL = none */
        char *listen_tls;                 /* "Listen": {"tls": "HOST:PORT"}, HTTPS, NULL = none */
        char *tls_certificate;            /* "TLS": {"certificate"}: PEM chain, reread on SIGHUP */
        char *tls_key;                    /* "TLS": {"key"}: PEM private key */
        char **anonymous_routes;          /* "AnonymousRoutes": "METHOD /pattern", NULL-terminated */
        unsigned connections_per_address; /* "ConnectionsPerAddress" on TCP/TLS, 64 */
        char **admins;                    /* "Admins": user names and "@group"s (network callers) */
        uint64_t token_expiry_sec;        /* "TokenExpiry" default lifetime of a token, 30 days */
        uint64_t token_expiry_max_sec;    /* "TokenExpiryMax" longest lifetime asked for, 365 days */
        /* "Authentication": {"oidc": …}: bearer JWTs of the site's OpenID Connect provider */
        char *oidc_issuer;                /* issuer URL; NULL: OIDC sign-in is off */
        char *oidc_audience;              /* required "aud" */
        char *oidc_user_claim;            /* the claim naming the user, "preferred_username" */
        char *oidc_local_user;            /* the account every OIDC user acts as; NULL: same name */
        char *oidc_ca_file;               /* CAs for the provider's TLS; NULL: the system's */
        /* "Authentication": "munge" (Shifter) or {"munge": {"socket": PATH}}: munge credentials
         * in the "authentication" header identify TCP/TLS callers (auth-munge.c) */
        bool munge;
        char *munge_socket;               /* NULL: libmunge's compiled-in default socket */
        uint64_t client_token_expiry_sec; /* "ClientTokenExpiry" lifetime of a token from POST /token, 1 hour */
        ConfigCustomToken custom_token;   /* "Authentication": {"customToken": {...}} */

        char **unknown_keys;              /* paths of keys nobody knows (also logged) */
} Config;

/* Returns a configuration with every default filled in (one location, one "local" platform). */
Config *config_new(void);
Config *config_free(Config *c);

/* Parses JSON text. On error returns a negative errno and, if ret_error is set, a message that
 * names the offending key path (e.g. "Platforms.mycluster.ssh.key: expected a string").
 * Unknown keys are logged as warnings (also with their path) and otherwise ignored; keys that
 * only Shifter uses are noted at info level. */
int config_parse(const char *text, const char *path, Config **ret, char **ret_error);

/* Loads a file; a missing file is not an error when missing_ok is true (then: defaults).
 * Error messages start with the file name: "/etc/gatewayd/gatewayd.json: MaxClusters: ...". */
int config_load(const char *path, bool missing_ok, Config **ret, char **ret_error);

/* Files named by the configuration must be there when the daemon starts, not only when a pull
 * first needs them: checks that each sslcacert is a readable file. The error names the key
 * ("Locations.NAME.sslcacert: cannot read …"). */
int config_verify_files(const Config *c, char **ret_error);

/* "HOST:PORT" or "[V6]:PORT" with a numeric address (the "Listen" keys); ret may be NULL. */
int config_parse_listen_address(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len);

/* Parses "D:HH:MM:SS" (also "HH:MM:SS", "MM:SS", "SS") into seconds. */
int config_parse_duration(const char *s, uint64_t *ret_sec);

/* Parses a byte count: "1048576", "512K", "16M", "2G", "1T" (powers of 1024). */

/* At start: creates the directories gatewayd writes on this host if they are missing
 * (CacheDirectory, ExpandDirectory, each local platform's local.imageDir, or their defaults under
 * state_dir) and refuses a configured path that is not a directory. The error message starts
 * with the file and the key's path: "/etc/gatewayd/gatewayd.json: CacheDirectory: /x is not a
 * directory". */
int config_prepare_directories(const Config *c, const char *state_dir, char **ret_error);

/* The state directory in effect: --state-dir (cmdline, NULL if not given) overrides
 * "StateDirectory", which overrides fallback (the built-in default). */
const char *config_state_directory(const Config *c, const char *cmdline, const char *fallback);

/* The log level in effect: --log-level (cmdline, -1 if not given) overrides "LogLevel", which
 * overrides fallback (the level set from $GATEWAYD_LOG_LEVEL, or info). */
int config_log_level(const Config *c, int cmdline, int fallback);

ConfigPlatform *config_platform_find(Config *c, const char *name);
/* Whether user_name is listed in the platform's "admins" (Shifter's image administrators). */
bool config_platform_is_admin(const ConfigPlatform *p, const char *user_name);
/* The platform used when a request names none. Never NULL for a parsed Config. */
ConfigPlatform *config_platform_default(Config *c);
/* Where squashfs images live for this platform (local.imageDir or ssh.imageDir), may be NULL. */
const char *config_platform_image_dir(const ConfigPlatform *p);
static inline bool config_platform_is_slurm(const ConfigPlatform *p) {
        return p && p->slurm_url;
}
/* Whether a platform's kind is implemented: platform_config_unsupported() (platform.h). */

/* The munged socket for requests to platform p's routes: its mungeSocketPath, else the one of
 * "Authentication" (NULL: libmunge's default). p may be NULL. */
const char *config_munge_socket(const Config *c, const ConfigPlatform *p);

/* "ProgramProviders": the provider of that name, or NULL. */
const ConfigProgramProvider *config_program_provider_find(const Config *c, const char *name);
bool config_program_provider_name_is_valid(const char *name);

/* Looks up a registry by name; NULL name means DefaultImageLocation. */
ConfigLocation *config_location_find(Config *c, const char *name);
/* The location a registry named in an image reference ("host[:port]") belongs to, or NULL: pulls
 * go only to these. Names compare case-insensitively; Docker Hub's aliases count as one. */
ConfigLocation *config_location_for_registry(Config *c, const char *registry);

/* Whether "ProgramImages" permits a program to run on reference (docs/programs.md, "Images of
 * programs"): an entry "*" permits any image; "PREFIX/" followed by "*" every repository under
 * PREFIX (any tag or digest); a reference without a tag or digest every tag and digest of that repository; one with
 * a tag or digest only that. Entries and reference compare normalised (reference.h, the default
 * registry DefaultImageLocation). Locations are checked separately. */
bool config_program_image_permitted(const Config *c, const char *reference);
/* Base URL for the registry API: "url" if set, else http(s)://name; Docker Hub's aliases
 * ("docker.io", "index.docker.io") map to https://registry-1.docker.io. */
int config_location_base_url(const ConfigLocation *l, char **ret);
/* The gateway-worker pull options that carry this location's url, sslcacert and authentication
 * ("--registry-url=NAME=URL", "--registry-cacert=NAME=FILE", "--registry-auth=NAME=MODE"). */
int config_location_worker_args(const ConfigLocation *l, char ***ret);

static inline void config_freep(Config **c) {
        config_free(*c);
}
