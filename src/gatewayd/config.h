/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* gatewayd's configuration (DESIGN.md §4): /etc/gatewayd/gatewayd.json, or --config PATH.
 * Keys shared with Shifter's imagegw keep their names and meaning; gatewayd's own keys live
 * beside them. A missing file means all defaults. */

typedef struct ConfigLocation {
        char *name;            /* key in "Locations", e.g. "index.docker.io" */
        char *remotetype;      /* "dockerv2" */
        char *authentication;  /* "http" (anonymous/token), "basic", ... */
        char *url;             /* optional explicit base URL */
        bool insecure;         /* plain http (gatewayd key, for local registries) */
} ConfigLocation;

typedef struct ConfigPlatform {
        char *name;            /* key in "Platforms" */
        char *accesstype;      /* "local" or "remote" */
        char *host;            /* remote: host name */
        char *ssh_username, *ssh_key, *ssh_image_dir;
        char *local_image_dir;
} ConfigPlatform;

typedef struct Config {
        char *path;                       /* file it was loaded from, or NULL */

        /* Shifter-compatible keys */
        char *default_image_location;     /* DefaultImageLocation */
        char *default_image_format;       /* DefaultImageFormat, "squashfs" */
        uint64_t pull_update_timeout_sec; /* PullUpdateTimeout */
        uint64_t image_expiration_sec;    /* ImageExpirationTimeout "D:HH:MM:SS", 0 = never */
        char *cache_directory;            /* CacheDirectory, NULL = <state>/cache */
        char *expand_directory;           /* ExpandDirectory, NULL = <state>/expand */
        ConfigLocation *locations;
        size_t n_locations;
        ConfigPlatform *platforms;
        size_t n_platforms;
        char *default_platform;           /* gatewayd: "DefaultPlatform", NULL = first/local */

        /* gatewayd's own keys */
        uint64_t max_request_body;        /* "MaxRequestBody" bytes, default 1 MiB */
        unsigned jobs_per_user;           /* "JobsPerUser" */
        unsigned active_jobs_per_user;    /* "ActiveJobsPerUser" */
        unsigned max_clusters;            /* "MaxClusters" */
        char *compressor;                 /* "Compression": {"algorithm"}, default "zstd" */
        int compression_level;            /* "Compression": {"level"}, default 3 */
} Config;

/* Returns a configuration with every default filled in. */
Config *config_new(void);
Config *config_free(Config *c);

/* Parses JSON text. On error returns a negative errno and, if ret_error is set, a message that
 * names the offending key path (e.g. "Platforms.mycluster.ssh.key: expected a string").
 * Unknown keys are logged as warnings (also with their path) and otherwise ignored. */
int config_parse(const char *text, const char *path, Config **ret, char **ret_error);

/* Loads a file; a missing file is not an error when missing_ok is true (then: defaults). */
int config_load(const char *path, bool missing_ok, Config **ret, char **ret_error);

/* Parses "D:HH:MM:SS" (also "HH:MM:SS", "MM:SS", "SS") into seconds. */
int config_parse_duration(const char *s, uint64_t *ret_sec);

static inline void config_freep(Config **c) {
        config_free(*c);
}
