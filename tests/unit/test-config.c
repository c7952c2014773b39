/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "size-util.h"
#include "platform.h"
#include "fs-util.h"
#include "log.h"
#include "macro.h"

/* Shifter's imagegw configuration as sites deploy it: a remote platform with a host list, LDAP
 * and munge settings, a local platform, two registries (one with a relative CA file). */
static const char shifter_example[] =
        "{\n"
        "    \"WorkerThreads\":8,\n"
        "    \"LogLevel\":\"info\",\n"
        "    \"DefaultLustreReplication\": 1,\n"
        "    \"DefaultOstCount\": 16,\n"
        "    \"DefaultImageLocation\": \"index.docker.io\",\n"
        "    \"DefaultImageFormat\": \"squashfs\",\n"
        "    \"PullUpdateTimeout\": 300,\n"
        "    \"ImageExpirationTimeout\": \"90:00:00:00\",\n"
        "    \"CacheDirectory\": \"/data/cache/\",\n"
        "    \"ExpandDirectory\": \"/data/expand/\",\n"
        "    \"MongoDBURI\":\"mongodb://mongo/\",\n"
        "    \"MongoDB\":\"ShifterTest\",\n"
        "    \"Broker\":\"redis://:password@redis/\",\n"
        "    \"Authentication\":\"munge\",\n"
        "    \"Metrics\": true,\n"
        "    \"ImportUsers\": \"all\",\n"
        "    \"Locations\": {\n"
        "        \"index.docker.io\": {\n"
        "            \"remotetype\": \"dockerv2\",\n"
        "            \"authentication\": \"http\"\n"
        "        },\n"
        "        \"registry.example.org\": {\n"
        "            \"remotetype\": \"dockerv2\",\n"
        "            \"sslcacert\": \"certs/site.pem\",\n"
        "            \"authentication\": \"http\"\n"
        "        }\n"
        "    },\n"
        "    \"Platforms\": {\n"
        "        \"systema\": {\n"
        "            \"mungeSocketPath\": \"/var/run/munge/systema.socket\",\n"
        "            \"usergroupService\": \"ldap\",\n"
        "            \"accesstype\": \"remote\",\n"
        "            \"admins\": \"root\",\n"
        "            \"mountCommand\": \"/bin/mount\",\n"
        "            \"host\": [\n"
        "                \"systema01\", \"systema02\"\n"
        "            ],\n"
        "            \"ssh\": {\n"
        "                \"username\": \"shifter\",\n"
        "                \"key\": \"/config/ssh.key\",\n"
        "                \"imageDir\": \"/images/\",\n"
        "                \"sshCmdOptions\": [\"-o\", \"BatchMode=yes\"]\n"
        "            },\n"
        "            \"ldap\": {\n"
        "                \"userBase\": \"ou=People,dc=example,dc=org\",\n"
        "                \"groupBase\": \"ou=PosixGroup,dc=example,dc=org\"\n"
        "            }\n"
        "        },\n"
        "        \"systemb\": {\n"
        "            \"mungeSocketPath\": \"/var/run/munge/systemb.socket\",\n"
        "            \"accesstype\": \"local\",\n"
        "            \"usergroupService\": \"local\",\n"
        "            \"admins\": [\"root\"],\n"
        "            \"use_external\": true,\n"
        "            \"local\": {\n"
        "                \"imageDir\": \"/images/systemb\"\n"
        "            }\n"
        "        }\n"
        "    }\n"
        "}\n";

static uint64_t quarter_of_ram(void) {
        return (uint64_t) sysconf(_SC_PHYS_PAGES) * (uint64_t) sysconf(_SC_PAGESIZE) / 4;
}

static void check_defaults(Config *c) {
        ck_assert_ptr_null(c->cache_directory);
        ck_assert_ptr_null(c->expand_directory);
        ck_assert_ptr_null(c->state_directory);
        ck_assert_ptr_null(c->worker_path);
        ck_assert_str_eq(c->default_image_location, "registry-1.docker.io");
        ck_assert_str_eq(c->default_image_format, "squashfs");
        ck_assert_uint_eq(c->pull_update_timeout_sec, 300);
        ck_assert_uint_eq(c->image_expiration_sec, 90 * 86400);
        ck_assert_int_eq(c->log_level, -1);

        ck_assert_uint_eq(c->n_locations, 1);
        ck_assert_str_eq(c->locations[0].name, "registry-1.docker.io");
        ck_assert_str_eq(c->locations[0].remotetype, "dockerv2");
        ck_assert_str_eq(c->locations[0].authentication, "http");
        ck_assert(!c->locations[0].insecure);

        ck_assert_uint_eq(c->n_platforms, 1);
        ck_assert_str_eq(c->platforms[0].name, "local");
        ck_assert_str_eq(c->platforms[0].accesstype, "local");
        ck_assert_int_eq(c->platforms[0].access, CONFIG_ACCESS_LOCAL);
        ck_assert_ptr_null(c->platforms[0].local_image_dir);
        ck_assert_str_eq(c->default_platform, "local");
        ck_assert_ptr_eq(config_platform_default(c), &c->platforms[0]);

        ck_assert_uint_eq(c->max_request_body, 1024 * 1024);
        /* the serverless gateway's LIMITS_JOBS_PER_USER and LIMITS_ACTIVE_JOBS_PER_USER */
        ck_assert_uint_eq(c->jobs_per_user, 2);
        ck_assert_uint_eq(c->active_jobs_per_user, 50);
        ck_assert_uint_eq(c->lab_instances_per_user, 2);
        ck_assert_ptr_null(c->lab_proxy_url);
        ck_assert_uint_eq(c->lab_network_pool, 0x0afa0000);    /* 10.250.0.0/16 */
        ck_assert_uint_eq(c->lab_network_pool_prefix, 16);
        ck_assert_ptr_null(c->lab_name_servers);      /* the host's */
        ck_assert_uint_eq(c->lab_writable_max, UINT64_C(1) << 30);
        ck_assert_uint_eq(c->max_clusters, 4);
        ck_assert_uint_eq(c->connections_per_user, 64);
        ck_assert_uint_eq(c->connections_max, 4096);
        ck_assert_uint_eq(c->connection_timeout_sec, 60);
        ck_assert_str_eq(c->compressor, "zstd");
        ck_assert_int_eq(c->compression_level, 3);

        ck_assert_uint_eq(c->result_max, 16 * 1024 * 1024);
        ck_assert_uint_eq(c->interim_max, 1024 * 1024);
        ck_assert_uint_eq(c->interim_count, 10000);
        ck_assert_uint_eq(c->log_max, 50 * 1024 * 1024);
        ck_assert_uint_eq(c->runtime_max_sec, 86400);
        /* unset: a quarter of the machine's memory */
        ck_assert_uint_eq(c->memory_max, quarter_of_ram());
        ck_assert_uint_eq(c->tasks_max, 512);
        ck_assert_ptr_null(c->unknown_keys);
}

/* text is refused, with exactly this error (naming the key's path). */
static void assert_refused(const char *text, const char *error) {
        _cleanup_(config_freep) Config *x = NULL;
        _cleanup_free_ char *err = NULL;

        ck_assert_int_lt(config_parse(text, NULL, &x, &err), 0);
        ck_assert_str_eq(err, error);
}

START_TEST(test_defaults) {
        _cleanup_(config_freep) Config *c = config_new();

        ck_assert_ptr_nonnull(c);
        ck_assert_ptr_null(c->path);
        check_defaults(c);
        ck_assert_ptr_null(config_free(NULL));
}
END_TEST

START_TEST(test_empty_object_is_defaults) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;

        ck_assert_int_eq(config_parse("  {}\n", NULL, &c, &err), 0);
        ck_assert_ptr_null(err);
        check_defaults(c);
}
END_TEST

START_TEST(test_shifter_example) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL, *url = NULL;
        ConfigPlatform *a, *b;
        ConfigLocation *l;

        ck_assert_int_eq(config_parse(shifter_example, "/etc/imagegw/imagemanager.json", &c, &err), 0);
        ck_assert_ptr_null(err);
        ck_assert_str_eq(c->path, "/etc/imagegw/imagemanager.json");
        ck_assert_ptr_null(c->unknown_keys);

        ck_assert_str_eq(c->default_image_location, "index.docker.io");
        ck_assert_uint_eq(c->pull_update_timeout_sec, 300);
        ck_assert_uint_eq(c->image_expiration_sec, 7776000);
        ck_assert_str_eq(c->cache_directory, "/data/cache/");
        ck_assert_str_eq(c->expand_directory, "/data/expand/");
        ck_assert_int_eq(c->log_level, LOG_INFO);

        ck_assert_uint_eq(c->n_locations, 2);
        l = config_location_find(c, NULL);
        ck_assert_ptr_eq(l, &c->locations[0]);
        ck_assert_int_eq(config_location_base_url(l, &url), 0);
        ck_assert_str_eq(url, "https://registry-1.docker.io");
        l = config_location_find(c, "registry.example.org");
        ck_assert_ptr_nonnull(l);
        /* relative to the directory of the config file, not to the daemon's cwd */
        ck_assert_str_eq(l->sslcacert, "/etc/imagegw/certs/site.pem");
        ck_assert_ptr_null(config_location_find(c, "nope.example.org"));

        ck_assert_uint_eq(c->n_platforms, 2);
        a = config_platform_find(c, "systema");
        b = config_platform_find(c, "systemb");
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_ptr_null(config_platform_find(c, "systemc"));
        ck_assert_ptr_null(config_platform_find(c, NULL));

        ck_assert_int_eq(a->access, CONFIG_ACCESS_REMOTE);
        ck_assert_str_eq(a->accesstype, "remote");
        ck_assert_str_eq(a->host, "systema01");
        ck_assert_uint_eq(strv_length(a->hosts), 2);
        ck_assert_str_eq(a->hosts[1], "systema02");
        ck_assert_str_eq(a->ssh_username, "shifter");
        ck_assert_str_eq(a->ssh_key, "/config/ssh.key");
        ck_assert_str_eq(a->ssh_image_dir, "/images/");
        ck_assert_uint_eq(a->ssh_port, 22);
        ck_assert_str_eq(config_platform_image_dir(a), "/images/");
        ck_assert(!config_platform_is_slurm(a));

        ck_assert_int_eq(b->access, CONFIG_ACCESS_LOCAL);
        ck_assert_str_eq(b->local_image_dir, "/images/systemb");

        /* Shifter's "admins": a list, or one name as a string; whole names only */
        ck_assert(config_platform_is_admin(a, "root"));
        ck_assert(config_platform_is_admin(b, "root"));
        ck_assert(!config_platform_is_admin(a, "roo"));
        ck_assert(!config_platform_is_admin(b, "alice"));
        ck_assert(!config_platform_is_admin(NULL, "root"));
        ck_assert_str_eq(config_platform_image_dir(b), "/images/systemb");

        /* no DefaultPlatform: the first one in the file */
        ck_assert_str_eq(c->default_platform, "systema");
        ck_assert_ptr_eq(config_platform_default(c), a);
}
END_TEST

START_TEST(test_gatewayd_keys) {
        static const char text[] =
                "{ \"DefaultImageLocation\": \"localhost:5000\","
                "  \"Locations\": { \"localhost:5000\": { \"remotetype\": \"dockerv2\","
                "                     \"authentication\": \"none\", \"insecure\": true },"
                "                   \"mirror\": { \"url\": \"https://mirror.example.org/\" } },"
                "  \"Platforms\": {"
                "    \"here\": { \"accesstype\": \"local\" },"
                "    \"hpc\": { \"accesstype\": \"remote\", \"host\": \"login1\","
                "               \"ssh\": { \"username\": \"gw\", \"imageDir\": \"/scratch/images\","
                "                          \"port\": 2222, \"knownHosts\": \"/etc/gatewayd/known_hosts\" },"
                "               \"workerPath\": \"/opt/gatewayd/gateway-worker\","
                "               \"slurm\": { \"url\": \"unix:/run/slurmrestd.sock\", \"user\": \"gw\","
                "                            \"tokenFile\": \"/etc/gatewayd/slurm.jwt\", \"partition\": \"debug\","
                "                            \"account\": \"qc\", \"spoolDir\": \"/scratch/gatewayd\" } } },"
                "  \"DefaultPlatform\": \"hpc\","
                "  \"StateDirectory\": \"/srv/gatewayd\", \"WorkerPath\": \"/usr/lib/gatewayd/gateway-worker\","
                "  \"MaxRequestBody\": \"4M\", \"JobsPerUser\": 0, \"ActiveJobsPerUser\": \"3\", \"MaxClusters\": 16,"
                "  \"LabInstancesPerUser\": 5, \"LabTokenLifetime\": \"0:00:05:00\","
                "  \"LabProxyURL\": \"https://labs.example.org:8443/\", \"LabNetworkPool\": \"172.20.4.0/22\","
                "  \"LabNameServers\": [\"192.0.2.53\", \"198.51.100.53\"], \"LabWritableMax\": \"16M\","
                "  \"ConnectionsPerUser\": 8, \"ConnectionsMax\": \"100\", \"ConnectionTimeout\": \"1:30\","
                "  \"Compression\": { \"algorithm\": \"xz\" },"
                "  \"Limits\": { \"ResultMax\": 1024, \"InterimMax\": \"64K\", \"InterimCount\": 5,"
                "              \"LogMax\": \"1G\", \"RuntimeMax\": \"02:00:00\", \"MemoryMax\": \"2GiB\", \"TasksMax\": 0 },"
                "  \"ImageExpirationTimeout\": 0, \"PullUpdateTimeout\": \"60\", \"LogLevel\": \"DEBUG\" }";
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL, *u1 = NULL, *u2 = NULL;
        ConfigPlatform *p;

        ck_assert_msg(config_parse(text, NULL, &c, &err) == 0, "%s", strna(err));
        ck_assert_uint_eq(c->n_locations, 2);
        ck_assert(c->locations[0].insecure);
        ck_assert_str_eq(c->locations[0].authentication, "none");
        ck_assert_int_eq(config_location_base_url(&c->locations[0], &u1), 0);
        ck_assert_str_eq(u1, "http://localhost:5000");
        ck_assert_str_eq(c->locations[1].remotetype, "dockerv2");
        ck_assert_int_eq(config_location_base_url(&c->locations[1], &u2), 0);
        ck_assert_str_eq(u2, "https://mirror.example.org");

        p = config_platform_default(c);
        ck_assert_str_eq(p->name, "hpc");
        ck_assert_str_eq(p->host, "login1");
        ck_assert_uint_eq(strv_length(p->hosts), 1);
        ck_assert_uint_eq(p->ssh_port, 2222);
        ck_assert_ptr_null(p->ssh_key);
        ck_assert_str_eq(p->ssh_known_hosts, "/etc/gatewayd/known_hosts");
        ck_assert_str_eq(p->worker_path, "/opt/gatewayd/gateway-worker");
        ck_assert(config_platform_is_slurm(p));
        ck_assert_str_eq(p->slurm_url, "unix:/run/slurmrestd.sock");
        ck_assert_str_eq(p->slurm_user, "gw");
        ck_assert_str_eq(p->slurm_token_file, "/etc/gatewayd/slurm.jwt");
        ck_assert_str_eq(p->slurm_partition, "debug");
        ck_assert_str_eq(p->slurm_account, "qc");
        ck_assert_str_eq(p->slurm_spool_dir, "/scratch/gatewayd");
        ck_assert_ptr_null(config_platform_image_dir(config_platform_find(c, "here")));

        ck_assert_str_eq(c->state_directory, "/srv/gatewayd");
        ck_assert_str_eq(c->worker_path, "/usr/lib/gatewayd/gateway-worker");
        ck_assert_uint_eq(c->max_request_body, 4 * 1024 * 1024);
        ck_assert_uint_eq(c->jobs_per_user, 0);
        ck_assert_uint_eq(c->active_jobs_per_user, 3);
        ck_assert_uint_eq(c->lab_instances_per_user, 5);
        ck_assert_uint_eq(c->lab_token_lifetime_sec, 300);
        ck_assert_str_eq(c->lab_proxy_url, "https://labs.example.org:8443/");
        ck_assert_uint_eq(c->lab_network_pool, 0xac140400);
        ck_assert_uint_eq(c->lab_network_pool_prefix, 22);
        ck_assert_uint_eq(strv_length(c->lab_name_servers), 2);
        ck_assert_str_eq(c->lab_name_servers[0], "192.0.2.53");
        ck_assert_str_eq(c->lab_name_servers[1], "198.51.100.53");
        ck_assert_uint_eq(c->lab_writable_max, 16 << 20);
        ck_assert_uint_eq(c->max_clusters, 16);
        ck_assert_uint_eq(c->connections_per_user, 8);
        ck_assert_uint_eq(c->connections_max, 100);
        ck_assert_uint_eq(c->connection_timeout_sec, 90);
        ck_assert_str_eq(c->compressor, "xz");
        ck_assert_int_eq(c->compression_level, 6);   /* xz's default, not zstd's 3 */
        ck_assert_uint_eq(c->result_max, 1024);
        ck_assert_uint_eq(c->interim_max, 64 * 1024);
        ck_assert_uint_eq(c->interim_count, 5);
        ck_assert_uint_eq(c->log_max, 1024 * 1024 * 1024);
        ck_assert_uint_eq(c->runtime_max_sec, 7200);
        ck_assert_uint_eq(c->memory_max, UINT64_C(2) * 1024 * 1024 * 1024);
        ck_assert_uint_eq(c->tasks_max, 0);
        ck_assert_uint_eq(c->image_expiration_sec, 0);
        ck_assert_uint_eq(c->pull_update_timeout_sec, 60);
        ck_assert_int_eq(c->log_level, LOG_DEBUG);
}
END_TEST

/* slurm.jwtKey (mint a token per owner) and slurm.launcher (the node's launcher). */
START_TEST(test_slurm_jwt_key_and_launcher) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;
        ConfigPlatform *p;

        ck_assert_msg(config_parse("{\"Platforms\": {\"batch\": {\"accesstype\": \"local\", \"slurm\": {"
                                   "\"url\": \"http://slurmrestd:6820\", \"jwtKey\": \"/etc/slurm/jwt.key\","
                                   "\"launcher\": \"/opt/gw/gateway-slurm-launch\", \"spoolDir\": \"/shared/spool\", \"spoolWatch\": \"poll\"}}},"
                                   " \"DefaultPlatform\": \"batch\"}", NULL, &c, &err) == 0, "%s", strna(err));
        p = config_platform_default(c);
        ck_assert(config_platform_is_slurm(p));
        ck_assert_str_eq(p->slurm_jwt_key, "/etc/slurm/jwt.key");
        ck_assert_ptr_null(p->slurm_token_file);
        ck_assert_ptr_null(p->slurm_user);
        ck_assert_str_eq(p->slurm_launcher, "/opt/gw/gateway-slurm-launch");
        ck_assert_str_eq(p->slurm_spool_dir, "/shared/spool");
        ck_assert_str_eq(p->slurm_spool_watch, "poll");
}
END_TEST

START_TEST(test_default_location_without_locations) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *url = NULL;

        ck_assert_int_eq(config_parse("{\"DefaultImageLocation\": \"registry.example.org:5000\"}", NULL, &c, NULL), 0);
        ck_assert_uint_eq(c->n_locations, 1);
        ck_assert_str_eq(config_location_find(c, NULL)->name, "registry.example.org:5000");
        ck_assert_int_eq(config_location_base_url(config_location_find(c, NULL), &url), 0);
        ck_assert_str_eq(url, "https://registry.example.org:5000");
}
END_TEST

START_TEST(test_location_for_registry) {
        _cleanup_(config_freep) Config *c = NULL, *d = NULL;

        ck_assert_int_eq(config_parse("{\"Locations\": {\"index.docker.io\": {}, \"Reg.example.org:5000\": {}}}",
                                      NULL, &c, NULL), 0);
        ck_assert_str_eq(config_location_for_registry(c, "docker.io")->name, "index.docker.io");
        ck_assert_str_eq(config_location_for_registry(c, "registry-1.docker.io")->name, "index.docker.io");
        ck_assert_str_eq(config_location_for_registry(c, "reg.example.org:5000")->name, "Reg.example.org:5000");
        ck_assert_ptr_null(config_location_for_registry(c, "reg.example.org"));
        ck_assert_ptr_null(config_location_for_registry(c, "127.0.0.1:22"));
        ck_assert_ptr_null(config_location_for_registry(c, NULL));
        ck_assert_ptr_null(config_location_for_registry(NULL, "docker.io"));

        /* No Locations: DefaultImageLocation (default registry-1.docker.io) is the only one. */
        ck_assert_int_eq(config_parse("{}", NULL, &d, NULL), 0);
        ck_assert_ptr_nonnull(config_location_for_registry(d, "docker.io"));
        ck_assert_ptr_null(config_location_for_registry(d, "127.0.0.1:5000"));
}
END_TEST

START_TEST(test_compression_forms) {
        _cleanup_(config_freep) Config *a = NULL, *b = NULL, *d = NULL;

        ck_assert_int_eq(config_parse("{\"Compression\":\"lz4\"}", NULL, &a, NULL), 0);
        ck_assert_str_eq(a->compressor, "lz4");
        ck_assert_int_eq(a->compression_level, 0);
        ck_assert_int_eq(config_parse("{\"Compression\":{\"algorithm\":\"zstd\",\"level\":19}}", NULL, &b, NULL), 0);
        ck_assert_int_eq(b->compression_level, 19);
        ck_assert_int_eq(config_parse("{\"Compression\":{\"algorithm\":\"gzip\",\"level\":9}}", NULL, &d, NULL), 0);
        ck_assert_str_eq(d->compressor, "gzip");
        ck_assert_int_eq(d->compression_level, 9);
        d = config_free(d);
        /* a level alone applies to the default algorithm */
        ck_assert_int_eq(config_parse("{\"Compression\":{\"level\":12}}", NULL, &d, NULL), 0);
        ck_assert_str_eq(d->compressor, "zstd");
        ck_assert_int_eq(d->compression_level, 12);
}
END_TEST

START_TEST(test_memory_max_zero_is_quarter_of_ram) {
        _cleanup_(config_freep) Config *c = NULL;

        /* 0 is not "unlimited": a job must never be able to take the whole machine */
        ck_assert_int_eq(config_parse("{\"Limits\": {\"MemoryMax\": 0}}", NULL, &c, NULL), 0);
        ck_assert_uint_gt(quarter_of_ram(), 0);
        ck_assert_uint_eq(c->memory_max, quarter_of_ram());
        c = config_free(c);
        ck_assert_int_eq(config_parse("{\"Limits\": {\"MemoryMax\": \"64M\"}}", NULL, &c, NULL), 0);
        ck_assert_uint_eq(c->memory_max, 64 * 1024 * 1024);
}
END_TEST

START_TEST(test_null_means_default) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;

        ck_assert_int_eq(config_parse("{\"CacheDirectory\":null,\"LogLevel\":null,\"Locations\":{\"r.example\":"
                                      "{\"remotetype\":null,\"authentication\":null,\"url\":null}}}",
                                      NULL, &c, &err), 0);
        ck_assert_ptr_null(c->cache_directory);
        ck_assert_int_eq(c->log_level, -1);
        ck_assert_str_eq(c->locations[0].remotetype, "dockerv2");
        ck_assert_str_eq(c->locations[0].authentication, "http");
        ck_assert_ptr_null(c->locations[0].url);
        ck_assert_str_eq(c->default_image_location, "r.example");
}
END_TEST

/* LabNameServers: 1 to 3 IPv4 addresses, in order; null, like absent, is the host's (lab-resolv.h). */
START_TEST(test_lab_name_servers) {
        _cleanup_(config_freep) Config *c = NULL, *d = NULL;
        _cleanup_free_ char *err = NULL;

        ck_assert_msg(config_parse("{\"LabNameServers\": [\"10.0.0.53\", \"192.0.2.1\", \"100.64.0.1\"]}",
                                   NULL, &c, &err) == 0, "%s", strna(err));
        ck_assert_uint_eq(strv_length(c->lab_name_servers), 3);
        ck_assert_str_eq(c->lab_name_servers[0], "10.0.0.53");
        ck_assert_str_eq(c->lab_name_servers[2], "100.64.0.1");
        ck_assert_int_eq(config_parse("{\"LabNameServers\": null}", NULL, &d, &err), 0);
        ck_assert_ptr_null(d->lab_name_servers);
}
END_TEST

static const struct {
        const char *text;
        uint64_t sec;
} good_durations[] = {
        { "90:00:00:00", 90 * 86400 },
        { "1:02:03:04", 86400 + 2 * 3600 + 3 * 60 + 4 },
        { "0:00:00:00", 0 },
        { "02:03:04", 2 * 3600 + 3 * 60 + 4 },
        { "2:3:4", 2 * 3600 + 3 * 60 + 4 },
        { "05:30", 330 },
        { "45", 45 },
        { "0", 0 },
        { "300", 300 },           /* the leftmost field has no upper bound */
        { "36:00:00", 36 * 3600 },
        { "365:23:59:59", 365 * 86400 + 86399 },
};

/* JobRetention: a duration like the others (seconds or "D:HH:MM:SS"), 7 days by default. */
START_TEST(test_job_retention) {
        static const struct { const char *text; uint64_t sec; } forms[] = {
                { "{}", 7 * 86400 },
                { "{\"JobRetention\": 1}", 1 },
                { "{\"JobRetention\": \"30\"}", 30 },
                { "{\"JobRetention\": \"1:12:00:00\"}", 36 * 3600 },
                { "{\"JobRetention\": 0}", 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *err = NULL;

                ck_assert_msg(config_parse(forms[i].text, NULL, &c, &err) == 0, "%s: %s", forms[i].text, strna(err));
                ck_assert_uint_eq(c->job_retention_sec, forms[i].sec);
        }

        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;
        ck_assert_int_eq(config_parse("{\"JobRetention\": \"7 days\"}", NULL, &c, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "JobRetention: expected a duration"));
}
END_TEST

/* "Authentication": {"customToken": {...}} (auth-custom-token.c); Shifter's string stays ignored. */
START_TEST(test_custom_token) {
        static const char *const bad[] = {
                "{\"Authentication\": {\"customToken\": {}}}",
                "{\"Authentication\": {\"customToken\": {\"tokenUrl\": \"http://t/login\"}}}",
                "{\"Authentication\": {\"customToken\": {\"tokenUrl\": \"ftp://t\", \"verificationUrl\": \"http://t/v\"}}}",
                "{\"Authentication\": {\"customToken\": {\"tokenUrl\": \"http://t\", \"verificationUrl\": \"http://t/v\","
                " \"verificationField\": \"a;;b\"}}}",
                "{\"Authentication\": {\"customToken\": {\"tokenUrl\": \"http://t\", \"verificationUrl\": \"http://t/v\","
                " \"verificationField\": \"a,\"}}}",
                "{\"Authentication\": {\"customToken\": {\"tokenUrl\": \"http://t\", \"verificationUrl\": \"http://t/v\","
                " \"localUser\": \"\"}}}",
                "{\"Authentication\": {\"customToken\": \"yes\"}}",
        };
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;

        ck_assert_int_eq(config_parse("{\"Authentication\": \"munge\"}", NULL, &c, &err), 0);
        ck_assert_ptr_null(c->custom_token.token_url);
        c = config_free(c);
        ck_assert_int_eq(config_parse("{\"Authentication\": {\"customToken\": {\"tokenUrl\": \"https://t/login\","
                                      " \"verificationUrl\": \"https://t/me\"}}}", NULL, &c, &err), 0);
        ck_assert_str_eq(c->custom_token.token_url, "https://t/login");
        ck_assert_str_eq(c->custom_token.verification_url, "https://t/me");
        ck_assert_str_eq(c->custom_token.token_field, "apiToken");
        ck_assert_str_eq(c->custom_token.user_field, "userId");
        ck_assert_ptr_null(c->custom_token.verification_field);
        ck_assert_ptr_null(c->custom_token.local_user);
        c = config_free(c);
        ck_assert_int_eq(config_parse("{\"Authentication\": {\"customToken\": {\"tokenUrl\": \"http://t/login\","
                                      " \"verificationUrl\": \"http://t/me\", \"tokenField\": \"key\", \"userField\": \"name\","
                                      " \"verificationField\": \"is_valid;some,nested\", \"localUser\": \"qiskit\"}}}",
                                      NULL, &c, &err), 0);
        ck_assert_str_eq(c->custom_token.token_field, "key");
        ck_assert_str_eq(c->custom_token.user_field, "name");
        ck_assert_str_eq(c->custom_token.verification_field, "is_valid;some,nested");
        ck_assert_str_eq(c->custom_token.local_user, "qiskit");
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err = mfree(err);
                c = config_free(c);
                ck_assert_msg(config_parse(bad[i], NULL, &c, &err) < 0, "accepted: %s", bad[i]);
                ck_assert_msg(strstr(err, "Authentication.customToken"), "%s", err);
        }
}
END_TEST

/* "Authentication": Shifter's "munge", gatewayd's object form, a platform's mungeSocketPath. */
START_TEST(test_munge_authentication) {
        static const char *const bad[] = {
                "{\"Authentication\": \"mock\"}",
                "{\"Authentication\": 1}",
                "{\"Authentication\": {\"munge\": {\"socket\": \"relative.sock\"}}}",
                "{\"Authentication\": {\"munge\": \"yes\"}}",
                "{\"Platforms\": {\"p\": {\"accesstype\": \"local\", \"mungeSocketPath\": \"p.sock\"}}}",
        };
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;

        ck_assert_int_eq(config_parse("{}", NULL, &c, &err), 0);
        ck_assert(!c->munge);
        c = config_free(c);

        /* Shifter's sample configuration: munge, each platform with a socket of its own */
        ck_assert_int_eq(config_parse(shifter_example, "/etc/imagegw/imagemanager.json", &c, &err), 0);
        ck_assert(c->munge);
        ck_assert_ptr_null(c->munge_socket);
        ck_assert_str_eq(config_munge_socket(c, config_platform_find(c, "systema")), "/var/run/munge/systema.socket");
        ck_assert_ptr_null(config_munge_socket(c, NULL));
        c = config_free(c);

        ck_assert_int_eq(config_parse("{\"Authentication\": {\"munge\": {\"socket\": \"/run/m.sock\"}},"
                                      " \"Platforms\": {\"a\": {\"accesstype\": \"local\"},"
                                      "  \"b\": {\"accesstype\": \"local\", \"mungeSocketPath\": \"/run/b.sock\"}}}",
                                      NULL, &c, &err), 0);
        ck_assert(c->munge);
        ck_assert_str_eq(config_munge_socket(c, config_platform_find(c, "a")), "/run/m.sock");
        ck_assert_str_eq(config_munge_socket(c, config_platform_find(c, "b")), "/run/b.sock");
        ck_assert_str_eq(config_munge_socket(c, NULL), "/run/m.sock");
        c = config_free(c);
        ck_assert_int_eq(config_parse("{\"Authentication\": {\"munge\": {}}}", NULL, &c, &err), 0);
        ck_assert(c->munge);
        ck_assert_ptr_null(c->munge_socket);
        c = config_free(c);
        /* Shifter's default: a platform's mungeSocketPath alone means munge */
        ck_assert_int_eq(config_parse("{\"Platforms\": {\"p\": {\"accesstype\": \"local\", \"mungeSocketPath\": \"/run/p.sock\"}}}",
                                      NULL, &c, &err), 0);
        ck_assert(c->munge);
        ck_assert_str_eq(config_munge_socket(c, config_platform_find(c, "p")), "/run/p.sock");
        ck_assert_ptr_null(config_munge_socket(c, NULL));

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err = mfree(err);
                c = config_free(c);
                ck_assert_msg(config_parse(bad[i], NULL, &c, &err) < 0, "accepted: %s", bad[i]);
                ck_assert_ptr_nonnull(strstr(err, i == 2 ? "Authentication.munge.socket" : i == 4 ? "Platforms.p.mungeSocketPath" : "Authentication"));
        }
}
END_TEST

START_TEST(test_remote_access) {
        static const char *const bad[] = {
                "{\"Listen\": {\"tcp\": \"localhost:80\"}}",
                "{\"Listen\": {\"tcp\": \"127.0.0.1\"}}",
                "{\"Listen\": {\"tcp\": \"127.0.0.1:65536\"}}",
                "{\"Listen\": {\"tls\": \"[::1]:443\"}}",                 /* no TLS */
                "{\"Listen\": {\"udp\": \"127.0.0.1:1\"}}",                /* unknown: a warning, see below */
                "{\"AnonymousRoutes\": [\"GET\"]}",
                "{\"AnonymousRoutes\": \"GET /v1/status\"}",
                "{\"Admins\": [\"\"]}",
                "{\"TokenExpiry\": 0}",
                "{\"TokenExpiry\": 100, \"TokenExpiryMax\": 99}",
                "{\"ClientTokenExpiry\": 0}",
                "{\"ClientTokenExpiry\": \"soon\"}",
        };
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;
        struct sockaddr_storage ss;
        socklen_t len;

        ck_assert_int_eq(config_parse("{}", NULL, &c, &err), 0);
        ck_assert_ptr_null(c->listen_tcp);
        ck_assert_ptr_null(c->listen_tls);
        ck_assert_str_eq(c->anonymous_routes[0], "GET /v1/status");
        ck_assert_str_eq(c->anonymous_routes[1], "GET /planqk/*");
        ck_assert_str_eq(c->anonymous_routes[2], "POST /token");
        ck_assert_ptr_null(c->anonymous_routes[3]);
        ck_assert_uint_eq(c->connections_per_address, 64);
        ck_assert_uint_eq(c->token_expiry_sec, 30 * 86400);
        ck_assert_uint_eq(c->token_expiry_max_sec, 365 * 86400);
        ck_assert_uint_eq(c->client_token_expiry_sec, 3600);
        c = config_free(c);

        ck_assert_int_eq(config_parse("{\"ClientTokenExpiry\": \"0:00:15:00\"}", NULL, &c, &err), 0);
        ck_assert_uint_eq(c->client_token_expiry_sec, 900);
        c = config_free(c);
        ck_assert_int_eq(config_parse("{\"ClientTokenExpiry\": 2}", NULL, &c, &err), 0);
        ck_assert_uint_eq(c->client_token_expiry_sec, 2);
        c = config_free(c);

        ck_assert_int_eq(config_parse("{\"Listen\": {\"tcp\": \"127.0.0.1:8080\", \"tls\": \"[::]:8443\"},"
                                      " \"TLS\": {\"certificate\": \"/c.pem\", \"key\": \"/k.pem\"},"
                                      " \"AnonymousRoutes\": [], \"Admins\": [\"alice\", \"@wheel\"],"
                                      " \"ConnectionsPerAddress\": 3, \"TokenExpiry\": \"1:00:00:00\"}",
                                      NULL, &c, &err), 0);
        ck_assert_str_eq(c->listen_tcp, "127.0.0.1:8080");
        ck_assert_str_eq(c->tls_key, "/k.pem");
        ck_assert_ptr_null(c->anonymous_routes[0]);
        ck_assert_str_eq(c->admins[1], "@wheel");
        ck_assert_uint_eq(c->connections_per_address, 3);
        ck_assert_uint_eq(c->token_expiry_sec, 86400);
        c = config_free(c);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err = mfree(err);
                c = config_free(c);
                if (strstr(bad[i], "udp")) {
                        ck_assert_int_eq(config_parse(bad[i], NULL, &c, &err), 0);
                        ck_assert_str_eq(c->unknown_keys[0], "Listen.udp");
                        continue;
                }
                ck_assert_msg(config_parse(bad[i], NULL, &c, &err) < 0, "accepted: %s", bad[i]);
        }

        ck_assert_int_eq(config_parse_listen_address("127.0.0.1:8080", &ss, &len), 0);
        ck_assert_int_eq(ss.ss_family, AF_INET);
        ck_assert_int_eq(config_parse_listen_address("[::1]:8443", &ss, &len), 0);
        ck_assert_int_eq(ss.ss_family, AF_INET6);
        ck_assert_int_eq(config_parse_listen_address("::1:8443", &ss, &len), 0);  /* the last colon separates */
        ck_assert_int_lt(config_parse_listen_address("127.0.0.1:", NULL, NULL), 0);
        ck_assert_int_lt(config_parse_listen_address("127.0.0.1:8x", NULL, NULL), 0);
        ck_assert_int_lt(config_parse_listen_address("[::1]8443", NULL, NULL), 0);
}
END_TEST

START_TEST(test_authentication_oidc) {
        static const char *const bad[] = {
                "{\"Authentication\": {\"oidc\": {\"audience\": \"gw\"}}}",
                "{\"Authentication\": {\"oidc\": {\"issuer\": \"https://idp.example/realms/x\"}}}",
                "{\"Authentication\": {\"oidc\": {\"issuer\": \"ftp://idp\", \"audience\": \"gw\"}}}",
                "{\"Authentication\": {\"oidc\": {\"issuer\": \"https://idp\", \"audience\": \"\"}}}",
                "{\"Authentication\": {\"oidc\": []}}",
                "{\"Authentication\": 3}",
        };
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;

        ck_assert_int_eq(config_parse("{}", NULL, &c, &err), 0);
        ck_assert_ptr_null(c->oidc_issuer);
        c = config_free(c);
        /* Shifter's own value stays accepted (its munge machinery is not ours). */
        ck_assert_int_eq(config_parse("{\"Authentication\": \"munge\"}", NULL, &c, &err), 0);
        ck_assert_ptr_null(c->oidc_issuer);
        c = config_free(c);

        ck_assert_int_eq(config_parse("{\"Authentication\": {\"oidc\": {\"issuer\": \"https://idp.example/realms/x\","
                                      " \"audience\": \"gw\", \"userClaim\": \"email\", \"localUser\": \"svc\"}}}",
                                      NULL, &c, &err), 0);
        ck_assert_str_eq(c->oidc_issuer, "https://idp.example/realms/x");
        ck_assert_str_eq(c->oidc_audience, "gw");
        ck_assert_str_eq(c->oidc_user_claim, "email");
        ck_assert_str_eq(c->oidc_local_user, "svc");
        c = config_free(c);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err = mfree(err);
                ck_assert_msg(config_parse(bad[i], NULL, &c, &err) < 0, "accepted: %s", bad[i]);
                ck_assert_ptr_nonnull(err);
                c = config_free(c);
        }
}
END_TEST

/* NodeLostTimeout: a duration, 10 minutes by default, 0 = never. */
START_TEST(test_node_lost_timeout) {
        static const struct { const char *text; uint64_t sec; } forms[] = {
                { "{}", 600 },
                { "{\"NodeLostTimeout\": 3}", 3 },
                { "{\"NodeLostTimeout\": \"0:00:30:00\"}", 1800 },
                { "{\"NodeLostTimeout\": 0}", 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *err = NULL;

                ck_assert_msg(config_parse(forms[i].text, NULL, &c, &err) == 0, "%s: %s", forms[i].text, strna(err));
                ck_assert_uint_eq(c->node_lost_timeout_sec, forms[i].sec);
        }

        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;
        ck_assert_int_eq(config_parse("{\"NodeLostTimeout\": \"soon\"}", NULL, &c, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "NodeLostTimeout: expected a duration"));
}
END_TEST

/* Limits.OutputMax / OutputFiles: a job's result files, 64 MiB and 1000 by default, 0 = none. */
START_TEST(test_output_limits) {
        static const struct { const char *text; uint64_t max, files; } forms[] = {
                { "{}", 64 * 1024 * 1024, 1000 },
                { "{\"Limits\": {\"OutputMax\": \"1M\", \"OutputFiles\": 3}}", 1024 * 1024, 3 },
                { "{\"Limits\": {\"OutputMax\": 0, \"OutputFiles\": 0}}", 0, 0 },
                { "{\"Limits\": {\"OutputFiles\": 1000000}}", 64 * 1024 * 1024, 1000000 },
        };
        static const struct { const char *text, *error; } bad[] = {
                { "{\"Limits\": {\"OutputFiles\": 1000001}}", "Limits.OutputFiles: out of range (maximum 1000000)" },
                { "{\"Limits\": {\"OutputFiles\": -1}}", "Limits.OutputFiles: must not be negative" },
                { "{\"Limits\": {\"OutputMax\": \"lots\"}}", "Limits.OutputMax:" },
        };

        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *err = NULL;

                ck_assert_msg(config_parse(forms[i].text, NULL, &c, &err) == 0, "%s: %s", forms[i].text, strna(err));
                ck_assert_uint_eq(c->output_max, forms[i].max);
                ck_assert_uint_eq(c->output_files, forms[i].files);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *err = NULL;

                ck_assert_int_eq(config_parse(bad[i].text, NULL, &c, &err), -EINVAL);
                ck_assert_msg(strstr(err, bad[i].error), "%s: %s", bad[i].text, err);
        }
}
END_TEST

START_TEST(test_duration_valid) {
        uint64_t sec = 12345;

        ck_assert_msg(config_parse_duration(good_durations[_i].text, &sec) == 0, "%s", good_durations[_i].text);
        ck_assert_uint_eq(sec, good_durations[_i].sec);
}
END_TEST

static const char * const bad_durations[] = {
        "", ":", "1:", ":1", "1::2", "1:2:3:4:5", "a", "1d", "-1", " 1", "1 ", "1.5",
        "1:60", "1:60:00", "1:24:00:00", "1:00:60:00", "1:00:00:60", "1:00:00:005", "1:000:00",
        "+1", "0x10", "99999999999999999999", "9999999999999999:00:00:00",
};

START_TEST(test_duration_invalid) {
        uint64_t sec = 12345;

        ck_assert_msg(config_parse_duration(bad_durations[_i], &sec) < 0, "\"%s\" accepted", bad_durations[_i]);
        ck_assert_uint_eq(sec, 12345);
}
END_TEST

START_TEST(test_size) {
        uint64_t n;

        ck_assert_int_eq(parse_size("0", &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_int_eq(parse_size("1048576", &n), 0);
        ck_assert_uint_eq(n, 1048576);
        ck_assert_int_eq(parse_size("512K", &n), 0);
        ck_assert_uint_eq(n, 512 * 1024);
        ck_assert_int_eq(parse_size("16MiB", &n), 0);
        ck_assert_uint_eq(n, 16 * 1024 * 1024);
        ck_assert_int_eq(parse_size("3T", &n), 0);
        ck_assert_uint_eq(n, UINT64_C(3) << 40);
        ck_assert_int_eq(parse_size("100B", &n), 0);
        ck_assert_uint_eq(n, 100);

        ck_assert_int_eq(parse_size("", &n), -EINVAL);
        ck_assert_int_eq(parse_size("M", &n), -EINVAL);
        ck_assert_int_eq(parse_size("1.5M", &n), -EINVAL);
        ck_assert_int_eq(parse_size("16m", &n), -EINVAL);
        ck_assert_int_eq(parse_size("-1", &n), -EINVAL);
        ck_assert_int_eq(parse_size("16 M", &n), -EINVAL);
        ck_assert_int_eq(parse_size("9000000T", &n), -ERANGE);
        ck_assert_int_eq(parse_size("99999999999999999999", &n), -ERANGE);
}
END_TEST

/* Every class of invalid value, with the exact message: the key path is what an administrator
 * needs to find the mistake. */
static const struct {
        const char *text;
        const char *error;
} bad_configs[] = {
        /* not JSON / not an object */
        { "{ \"MaxClusters\": 4,\n  \"JobsPerUser\": }", "line 2, column 18: invalid JSON: unexpected character" },
        { "{ \"MaxClusters\": 4", "line 1, column 19: invalid JSON: unexpected end of input" },
        { "{} {}", "line 1, column 4: invalid JSON: unexpected character" },
        { "", "line 1, column 1: invalid JSON: unexpected end of input" },
        { "[]", "(top level): expected an object, got an array" },
        /* wrong type */
        { "{\"CacheDirectory\": 5}", "CacheDirectory: expected a string, got an integer" },
        { "{\"Platforms\":{\"cluster\":{\"accesstype\":\"remote\",\"host\":\"h\",\"ssh\":{\"username\":\"u\",\"imageDir\":\"/i\",\"key\":[\"/k\"]}}}}",
          "Platforms.cluster.ssh.key: expected a string, got an array" },
        { "{\"Platforms\":{\"cluster\":{\"accesstype\":\"local\",\"local\":\"/images\"}}}",
          "Platforms.cluster.local: expected an object, got a string" },
        { "{\"Platforms\": []}", "Platforms: expected an object, got an array" },
        { "{\"Platforms\":{\"c\":{\"accesstype\":\"local\",\"admins\":[\"root\",5]}}}",
          "Platforms.c.admins[1]: expected a string, got an integer" },
        { "{\"Platforms\":{\"c\":{\"accesstype\":\"local\",\"admins\":{}}}}",
          "Platforms.c.admins: expected a list of user names, got an object" },
        { "{\"Locations\": {\"r.example\": 1}}", "Locations.r.example: expected an object, got an integer" },
        { "{\"Locations\": {\"r.example\": {\"insecure\": \"yes\"}}}",
          "Locations.r.example.insecure: expected true or false, got a string" },
        { "{\"MaxRequestBody\": 1.5}", "MaxRequestBody: expected an integer, got a number" },
        { "{\"JobsPerUser\": true}", "JobsPerUser: expected an integer, got a boolean" },
        { "{\"JobsPerUser\": \"many\"}", "JobsPerUser: expected a non-negative integer, got \"many\"" },
        { "{\"Limits\": []}", "Limits: expected an object, got an array" },
        { "{\"LogLevel\": 7}", "LogLevel: expected a string, got an integer" },
        { "{\"DefaultPlatform\": \"\"}", "DefaultPlatform: must not be empty" },
        { "{\"CacheDirectory\": \"/a\\u0000b\"}", "CacheDirectory: must not contain NUL characters" },
        /* negative / out of range */
        { "{\"PullUpdateTimeout\": -1}", "PullUpdateTimeout: must not be negative" },
        { "{\"Limits\": {\"InterimCount\": -5}}", "Limits.InterimCount: must not be negative" },
        { "{\"ActiveJobsPerUser\": 4294967296}", "ActiveJobsPerUser: out of range (maximum 4294967295)" },
        { "{\"Limits\": {\"TasksMax\": 18446744073709551615}}", "Limits.TasksMax: out of range (maximum 9223372036854775807)" },
        { "{\"MaxClusters\": 0}", "MaxClusters: must be at least 1" },
        { "{\"MaxRequestBody\": 0}", "MaxRequestBody: must be at least 1" },
        { "{\"ConnectionsPerUser\": 0}", "ConnectionsPerUser: must be at least 1" },
        { "{\"ConnectionsMax\": -1}", "ConnectionsMax: must not be negative" },
        { "{\"ConnectionTimeout\": 0}", "ConnectionTimeout: must be between 1 second and 1 day" },
        { "{\"ConnectionTimeout\": \"1:00:00:01\"}", "ConnectionTimeout: must be between 1 second and 1 day" },
        { "{\"Limits\": {\"ResultMax\": \"0\"}}", "Limits.ResultMax: must be at least 1" },
        { "{\"Limits\": {\"LogMax\": \"lots\"}}",
          "Limits.LogMax: expected a byte count such as 1048576 or \"16M\", got \"lots\"" },
        { "{\"Limits\": {\"MemoryMax\": \"99999999T\"}}", "Limits.MemoryMax: out of range" },
        { "{\"Platforms\":{\"c\":{\"accesstype\":\"remote\",\"host\":\"h\",\"ssh\":{\"username\":\"u\",\"imageDir\":\"/i\",\"port\":70000}}}}",
          "Platforms.c.ssh.port: out of range (maximum 65535)" },
        { "{\"Platforms\":{\"c\":{\"accesstype\":\"remote\",\"host\":\"h\",\"ssh\":{\"username\":\"u\",\"imageDir\":\"/i\",\"port\":0}}}}",
          "Platforms.c.ssh.port: must be a port number between 1 and 65535" },
        { "{\"Compression\": {\"algorithm\": \"zstd\", \"level\": 23}}", "Compression.level: 23 is out of range for zstd (1..22)" },
        { "{\"Compression\": {\"algorithm\": \"gzip\", \"level\": 0}}", "Compression.level: 0 is out of range for gzip (1..9)" },
        { "{\"Compression\": {\"level\": -3}}", "Compression.level: must not be negative" },
        /* durations */
        { "{\"ImageExpirationTimeout\": \"90 days\"}",
          "ImageExpirationTimeout: expected a duration \"D:HH:MM:SS\" (or seconds), got \"90 days\"" },
        { "{\"ImageExpirationTimeout\": \"1:25:00:00\"}",
          "ImageExpirationTimeout: expected a duration \"D:HH:MM:SS\" (or seconds), got \"1:25:00:00\"" },
        { "{\"Limits\": {\"RuntimeMax\": \"1:60\"}}",
          "Limits.RuntimeMax: expected a duration \"D:HH:MM:SS\" (or seconds), got \"1:60\"" },
        { "{\"ImageExpirationTimeout\": -60}", "ImageExpirationTimeout: must not be negative" },
        /* durations beyond 100 years would overflow as microseconds past now */
        { "{\"ImageExpirationTimeout\": \"36501:00:00:00\"}",
          "ImageExpirationTimeout: \"36501:00:00:00\" is out of range (at most \"36500:00:00:00\", 100 years)" },
        { "{\"ImageExpirationTimeout\": \"213503982334:00:00:00\"}",
          "ImageExpirationTimeout: \"213503982334:00:00:00\" is out of range (at most \"36500:00:00:00\", 100 years)" },
        { "{\"ImageExpirationTimeout\": \"99999999999999999999\"}",
          "ImageExpirationTimeout: \"99999999999999999999\" is out of range (at most \"36500:00:00:00\", 100 years)" },
        { "{\"ImageExpirationTimeout\": 18446744073709}", "ImageExpirationTimeout: out of range (maximum 3153600000)" },
        { "{\"Limits\": {\"RuntimeMax\": 9223372036854775807}}", "Limits.RuntimeMax: out of range (maximum 3153600000)" },
        { "{\"PullUpdateTimeout\": 18446744073709552}", "PullUpdateTimeout: out of range (maximum 3153600000)" },
        /* enums */
        { "{\"DefaultImageFormat\": \"ext4\"}", "DefaultImageFormat: unsupported value \"ext4\" (expected \"squashfs\")" },
        { "{\"Compression\": {\"algorithm\": \"lzo\"}}",
          "Compression.algorithm: unsupported value \"lzo\" (expected \"zstd\", \"lz4\", \"gzip\" or \"xz\")" },
        { "{\"Locations\": {\"r.example\": {\"remotetype\": \"s3\"}}}",
          "Locations.r.example.remotetype: unsupported value \"s3\" (expected \"dockerv2\" or \"dockerhub\")" },
        { "{\"Locations\": {\"r.example\": {\"authentication\": \"munge\"}}}",
          "Locations.r.example.authentication: unsupported value \"munge\" (expected \"http\", \"basic\" or \"none\")" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"cloud\"}}}",
          "Platforms.c.accesstype: unsupported value \"cloud\" (expected \"local\" or \"remote\")" },
        { "{\"LogLevel\": \"loud\"}",
          "LogLevel: unsupported value \"loud\" (expected \"debug\", \"info\", \"warn\", \"error\" or \"critical\")" },
        /* platforms: required keys and names */
        { "{\"Platforms\": {\"c\": {\"local\": {\"imageDir\": \"/i\"}}}}",
          "Platforms.c.accesstype: missing (expected \"local\" or \"remote\")" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"remote\", \"ssh\": {\"username\": \"u\", \"imageDir\": \"/i\"}}}}",
          "Platforms.c.host: required when accesstype is \"remote\"" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"remote\", \"host\": [\"h\"], \"ssh\": {\"imageDir\": \"/i\"}}}}",
          "Platforms.c.ssh.username: required when accesstype is \"remote\"" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"remote\", \"host\": [\"h\"], \"ssh\": {\"username\": \"u\"}}}}",
          "Platforms.c.ssh.imageDir: required when accesstype is \"remote\"" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"remote\", \"host\": []}}}", "Platforms.c.host: must list at least one host" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"remote\", \"host\": [\"h\", 3]}}}",
          "Platforms.c.host[1]: expected a string, got an integer" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"remote\", \"host\": [\"-oProxyCommand=x\"]}}}",
          "Platforms.c.host[0]: invalid name \"-oProxyCommand=x\"" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"remote\", \"host\": \"a b\"}}}",
          "Platforms.c.host: invalid name \"a b\"" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"remote\", \"host\": null, \"ssh\": {\"username\": \"u\", \"imageDir\": \"/i\"}}}}",
          "Platforms.c.host: required when accesstype is \"remote\"" },
        { "{\"Platforms\":{\"c\":{\"accesstype\":\"remote\",\"host\":\"h\",\"ssh\":{\"username\":\"u@h\",\"imageDir\":\"/i\"}}}}",
          "Platforms.c.ssh.username: invalid name \"u@h\"" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"remote\", \"host\": {}}}}",
          "Platforms.c.host: expected a string or a list of strings, got an object" },
        { "{\"Platforms\": {\"my cluster\": {\"accesstype\": \"local\"}}}",
          "Platforms.my cluster: invalid platform name (use letters, digits, \".\", \"_\", \"-\")" },
        { "{\"Platforms\": {\"\": {\"accesstype\": \"local\"}}}",
          "Platforms.: invalid platform name (use letters, digits, \".\", \"_\", \"-\")" },
        { "{\"Locations\": {\"http://r.example\": {}}}",
          "Locations.http://r.example: invalid registry name (expected host or host:port)" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"local\", \"slurm\": {\"partition\": \"debug\"}}}}",
          "Platforms.c.slurm.url: required when \"slurm\" is set" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"local\", \"slurm\": {\"url\": \"slurm.example:6820\"}}}}",
          "Platforms.c.slurm.url: expected an http://, https:// or unix:/PATH URL, got \"slurm.example:6820\"" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"local\", \"slurm\": {\"url\": \"unix:/s\"}}}}",
          "Platforms.c.slurm.jwtKey: required (or \"tokenFile\" with \"user\")" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"local\", \"slurm\": {\"url\": \"unix:/s\", \"jwtKey\": \"/k\","
          " \"tokenFile\": \"/t\", \"user\": \"slurm\"}}}}",
          "Platforms.c.slurm.tokenFile: conflicts with \"jwtKey\": set one of the two" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"local\", \"slurm\": {\"url\": \"unix:/s\", \"tokenFile\": \"/t\"}}}}",
          "Platforms.c.slurm.user: required with \"tokenFile\"" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"local\", \"slurm\": {\"url\": \"unix:/s\", \"jwtKey\": \"k\"}}}}",
          "Platforms.c.slurm.jwtKey: expected an absolute path, got \"k\"" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"local\", \"slurm\": {\"url\": \"unix:/s\", \"jwtKey\": \"/k\","
          " \"launcher\": \"gateway-slurm-launch\"}}}}",
          "Platforms.c.slurm.launcher: expected an absolute path, got \"gateway-slurm-launch\"" },
        { "{\"Platforms\": {\"c\": {\"accesstype\": \"local\", \"slurm\": {\"url\": \"unix:/s\", \"jwtKey\": \"/k\","
          " \"spoolWatch\": \"fanotify\"}}}}",
          "Platforms.c.slurm.spoolWatch: expected \"auto\", \"inotify\" or \"poll\", got \"fanotify\"" },
        { "{\"LabNetworkPool\": \"10.250.0.0\"}",
          "LabNetworkPool: expected an IPv4 network \"A.B.C.D/N\" with N between 8 and 28, got \"10.250.0.0\"" },
        { "{\"LabNetworkPool\": \"10.250.0.0/30\"}",
          "LabNetworkPool: expected an IPv4 network \"A.B.C.D/N\" with N between 8 and 28, got \"10.250.0.0/30\"" },
        { "{\"LabNetworkPool\": \"10.250.0.0/16 \"}",
          "LabNetworkPool: expected an IPv4 network \"A.B.C.D/N\" with N between 8 and 28, got \"10.250.0.0/16 \"" },
        { "{\"LabNetworkPool\": \"10.256.0.0/16\"}",
          "LabNetworkPool: expected an IPv4 network \"A.B.C.D/N\" with N between 8 and 28, got \"10.256.0.0/16\"" },
        { "{\"LabNetworkPool\": \"10.250.0.1/16\"}", "LabNetworkPool: \"10.250.0.1/16\" has host bits set" },
        { "{\"LabNetworkPool\": \"8.8.0.0/16\"}",
          "LabNetworkPool: \"8.8.0.0/16\" is not inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10" },
        { "{\"LabNetworkPool\": \"172.0.0.0/8\"}",
          "LabNetworkPool: \"172.0.0.0/8\" is not inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10" },
        { "{\"LabNetworkPool\": 10}", "LabNetworkPool: expected a string \"A.B.C.D/N\"" },
        { "{\"LabWritableMax\": \"8M\"}", "LabWritableMax: must be 0 (a plain directory) or between 16M and 1T" },
        { "{\"LabWritableMax\": \"2T\"}", "LabWritableMax: must be 0 (a plain directory) or between 16M and 1T" },
        { "{\"LabWritableMax\": \"lots\"}", "LabWritableMax: expected a byte count such as 1048576 or \"16M\", got \"lots\"" },
        { "{\"LabNameServers\": \"192.0.2.53\"}", "LabNameServers: expected an array of strings, got a string" },
        { "{\"LabNameServers\": []}", "LabNameServers: expected 1 to 3 name servers (resolvers ask no more), got 0" },
        { "{\"LabNameServers\": [\"192.0.2.1\", \"192.0.2.2\", \"192.0.2.3\", \"192.0.2.4\"]}",
          "LabNameServers: expected 1 to 3 name servers (resolvers ask no more), got 4" },
        { "{\"LabNameServers\": [\"192.0.2.1\", \"127.0.0.53\"]}",
          "LabNameServers: entry 1: expected an IPv4 address that is not loopback, 0.0.0.0/8 or multicast (e.g. \"192.0.2.53\")" },
        { "{\"LabNameServers\": [\"192.0.2.1\", \"0.0.0.0\"]}",
          "LabNameServers: entry 1: expected an IPv4 address that is not loopback, 0.0.0.0/8 or multicast (e.g. \"192.0.2.53\")" },
        { "{\"LabNameServers\": [\"192.0.2.1\", \"224.0.0.251\"]}",
          "LabNameServers: entry 1: expected an IPv4 address that is not loopback, 0.0.0.0/8 or multicast (e.g. \"192.0.2.53\")" },
        { "{\"LabNameServers\": [\"192.0.2.1\", \"255.255.255.255\"]}",
          "LabNameServers: entry 1: expected an IPv4 address that is not loopback, 0.0.0.0/8 or multicast (e.g. \"192.0.2.53\")" },
        { "{\"LabNameServers\": [\"192.0.2.1\", \"2001:db8::53\"]}",
          "LabNameServers: entry 1: expected an IPv4 address that is not loopback, 0.0.0.0/8 or multicast (e.g. \"192.0.2.53\")" },
        { "{\"LabNameServers\": [\"192.0.2.1\", \"dns.example.org\"]}",
          "LabNameServers: entry 1: expected an IPv4 address that is not loopback, 0.0.0.0/8 or multicast (e.g. \"192.0.2.53\")" },
        { "{\"LabNameServers\": [\"192.0.2.1\", \"192.0.2\"]}",
          "LabNameServers: entry 1: expected an IPv4 address that is not loopback, 0.0.0.0/8 or multicast (e.g. \"192.0.2.53\")" },
        { "{\"LabNameServers\": [\"192.0.2.1\", \"192.0.2.053\"]}",
          "LabNameServers: entry 1: expected an IPv4 address that is not loopback, 0.0.0.0/8 or multicast (e.g. \"192.0.2.53\")" },
        { "{\"LabNameServers\": [\"192.0.2.1\", \" 192.0.2.53\"]}",
          "LabNameServers: entry 1: expected an IPv4 address that is not loopback, 0.0.0.0/8 or multicast (e.g. \"192.0.2.53\")" },
        { "{\"LabNameServers\": [53]}",
          "LabNameServers: entry 0: expected an IPv4 address that is not loopback, 0.0.0.0/8 or multicast (e.g. \"192.0.2.53\")" },
        { "{\"LabProxyURL\": \"labs.example.org:8443\"}",
          "LabProxyURL: expected an http:// or https:// URL, got \"labs.example.org:8443\"" },
        { "{\"Locations\": {\"r.example\": {\"url\": \"ftp://r.example\"}}}",
          "Locations.r.example.url: expected an http:// or https:// URL, got \"ftp://r.example\"" },
        /* paths */
        { "{\"CacheDirectory\": \"images/cache\"}", "CacheDirectory: expected an absolute path, got \"images/cache\"" },
        { "{\"Platforms\":{\"c\":{\"accesstype\":\"local\",\"local\":{\"imageDir\":\"images\"}}}}",
          "Platforms.c.local.imageDir: expected an absolute path, got \"images\"" },
        /* relative CA file without a config file to be relative to */
        { "{\"Locations\": {\"r.example\": {\"sslcacert\": \"ca.pem\"}}}",
          "Locations.r.example.sslcacert: expected an absolute path, got \"ca.pem\"" },
        /* cross references */
        { "{\"DefaultImageLocation\": \"https://r.example/v2\"}",
          "DefaultImageLocation: invalid registry name \"https://r.example/v2\" (expected host or host:port)" },
        { "{\"DefaultPlatform\": \"nope\"}", "DefaultPlatform: \"nope\" is not defined in Platforms" },
        { "{\"DefaultImageLocation\": \"index.docker.io\", \"Locations\": {\"registry-1.docker.io\": {}}}",
          "DefaultImageLocation: \"index.docker.io\" is not defined in Locations" },
};

START_TEST(test_invalid_values) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        r = config_parse(bad_configs[_i].text, NULL, &c, &err);
        ck_assert_msg(r < 0, "accepted: %s", bad_configs[_i].text);
        ck_assert_int_eq(r, strneq(bad_configs[_i].error, "line ", 5) ? -EBADMSG : -EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_ptr_nonnull(err);
        ck_assert_str_eq(err, bad_configs[_i].error);

        /* a NULL ret_error is fine too */
        ck_assert_int_eq(config_parse(bad_configs[_i].text, NULL, &c, NULL), r);
}
END_TEST

/* Runs config_parse() with stderr captured, returning what was logged. */
static char *parse_capturing_stderr(const char *text, Config **ret, int *ret_r) {
        char tmpl[] = "/tmp/test-config-XXXXXX";
        _cleanup_close_ int fd = -1, saved = -1;
        char *buf;
        ssize_t n;

        fd = mkstemp(tmpl);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(unlink(tmpl), 0);
        saved = dup(STDERR_FILENO);
        ck_assert_int_ge(saved, 0);
        fflush(stderr);
        ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);

        *ret_r = config_parse(text, NULL, ret, NULL);

        fflush(stderr);
        ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);

        buf = calloc(1, 65536);
        ck_assert_ptr_nonnull(buf);
        n = pread(fd, buf, 65535, 0);
        ck_assert_int_ge(n, 0);
        return buf;
}

START_TEST(test_unknown_keys) {
        static const char text[] =
                "{ \"Frobnicate\": 1,"
                "  \"MongoDBURI\": \"mongodb://localhost/\","
                "  \"Limits\": { \"ResultMax\": 10, \"ResultMaxx\": 20 },"
                "  \"Locations\": { \"r.example\": { \"remotetype\": \"dockerv2\", \"proxy\": \"x\" } },"
                "  \"Platforms\": { \"c\": { \"accesstype\": \"local\", \"policy_file\": \"/p\","
                "                           \"local\": { \"imageDir\": \"/i\", \"flavour\": {} } } } }";
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *log = NULL;
        int r;

        log_set_max_level(LOG_INFO);
        log = parse_capturing_stderr(text, &c, &r);
        ck_assert_int_eq(r, 0);

        /* accepted, and the known keys around them still count */
        ck_assert_uint_eq(c->result_max, 10);
        ck_assert_str_eq(c->platforms[0].local_image_dir, "/i");

        ck_assert_uint_eq(strv_length(c->unknown_keys), 4);
        ck_assert_str_eq(c->unknown_keys[0], "Frobnicate");
        ck_assert_str_eq(c->unknown_keys[1], "Limits.ResultMaxx");
        ck_assert_str_eq(c->unknown_keys[2], "Locations.r.example.proxy");
        ck_assert_str_eq(c->unknown_keys[3], "Platforms.c.local.flavour");

        ck_assert_msg(strstr(log, "Frobnicate: unknown key, ignored."), "log: %s", log);
        ck_assert_msg(strstr(log, "Limits.ResultMaxx: unknown key, ignored."), "log: %s", log);
        ck_assert_msg(strstr(log, "Platforms.c.local.flavour: unknown key, ignored."), "log: %s", log);
        /* Shifter's own keys are noted, not reported as unknown */
        ck_assert_msg(strstr(log, "MongoDBURI: ignored (Shifter key not used by gatewayd)."), "log: %s", log);
        ck_assert_msg(strstr(log, "Platforms.c.policy_file: ignored (Shifter key not used by gatewayd)."), "log: %s", log);
        ck_assert_ptr_null(strstr(log, "MongoDBURI: unknown"));
}
END_TEST

static char *write_temp(const char *dir, const char *name, const void *data, size_t size) {
        char *p;
        FILE *f;

        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        f = fopen(p, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, size, f), size);
        ck_assert_int_eq(fclose(f), 0);
        return p;
}

START_TEST(test_duration_limit) {
        _cleanup_(config_freep) Config *c = NULL;

        /* exactly 100 years is fine, in either form */
        ck_assert_int_eq(config_parse("{\"ImageExpirationTimeout\": \"36500:00:00:00\", \"PullUpdateTimeout\": 3153600000}",
                                      NULL, &c, NULL), 0);
        ck_assert_uint_eq(c->image_expiration_sec, UINT64_C(3153600000));
        ck_assert_uint_eq(c->pull_update_timeout_sec, UINT64_C(3153600000));
}
END_TEST

static char *prepare_dirs(const char *json, const char *state, int *ret_r) {
        _cleanup_(config_freep) Config *c = NULL;
        char *err = NULL;

        ck_assert_int_eq(config_parse(json, "/etc/gw.json", &c, NULL), 0);
        *ret_r = config_prepare_directories(c, state, &err);
        return err;
}

/* A configuration with the directory key number i (see keys[] below) set to path. */
static char *dir_config(size_t i, const char *path) {
        char *j = NULL;
        int r;

        if (i == 0)
                r = asprintf(&j, "{\"CacheDirectory\": \"%s\"}", path);
        else if (i == 1)
                r = asprintf(&j, "{\"ExpandDirectory\": \"%s\"}", path);
        else
                r = asprintf(&j, "{\"Platforms\": {\"p\": {\"accesstype\": \"local\", \"local\": {\"imageDir\": \"%s\"}}}}", path);
        ck_assert_int_ge(r, 0);
        return j;
}

static bool is_dir(const char *dir, const char *sub) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        ck_assert_int_ge(asprintf(&p, "%s%s", dir, sub), 0);
        return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

START_TEST(test_prepare_directories) {
        char dir[] = "/tmp/test-config-XXXXXX";
        _cleanup_free_ char *json = NULL, *state = NULL, *file = NULL, *err = NULL;
        int r;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_ge(asprintf(&state, "%s/state", dir), 0);
        free(write_temp(dir, "file", "x", 1));
        ck_assert_int_ge(asprintf(&file, "%s/file", dir), 0);

        /* defaults: created under the state directory */
        err = prepare_dirs("{}", state, &r);
        ck_assert_msg(r == 0, "%s", strna(err));
        ck_assert(is_dir(dir, "/state/cache") && is_dir(dir, "/state/expand") && is_dir(dir, "/state/images"));

        /* configured and missing (nested): created; present: fine, twice */
        ck_assert_int_ge(asprintf(&json, "{\"CacheDirectory\": \"%s/c/1\", \"ExpandDirectory\": \"%s/e\", "
                                  "\"Platforms\": {\"p\": {\"accesstype\": \"local\", \"local\": {\"imageDir\": \"%s/i/2\"}}}}",
                                  dir, dir, dir), 0);
        for (int i = 0; i < 2; i++) {
                err = mfree(err);
                err = prepare_dirs(json, state, &r);
                ck_assert_msg(r == 0, "%s", strna(err));
        }
        ck_assert(is_dir(dir, "/c/1") && is_dir(dir, "/e") && is_dir(dir, "/i/2"));

        /* a regular file: refused with the file, the key's path and the directory */
        static const char * const keys[] = { "CacheDirectory", "ExpandDirectory", "Platforms.p.local.imageDir" };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *j = NULL, *want = NULL, *sub = NULL;

                j = dir_config(i, file);
                err = mfree(err);
                err = prepare_dirs(j, state, &r);
                ck_assert_int_eq(r, -ENOTDIR);
                ck_assert_int_ge(asprintf(&want, "/etc/gw.json: %s: %s is not a directory", keys[i], file), 0);
                ck_assert_str_eq(err, want);

                /* below a file: cannot be created */
                ck_assert_int_ge(asprintf(&sub, "%s/sub", file), 0);
                free(j);
                j = dir_config(i, sub);
                err = mfree(err);
                err = prepare_dirs(j, state, &r);
                ck_assert_int_eq(r, -ENOTDIR);
                ck_assert_msg(strstr(err, keys[i]) && strstr(err, sub) && strstr(err, "cannot be created"), "%s", err);
        }

        /* the default state subdirectory a file: named as the default */
        ck_assert_int_eq(rm_rf(state), 0);
        ck_assert_int_eq(mkdir(state, 0755), 0);
        free(write_temp(state, "cache", "x", 1));
        err = mfree(err);
        err = prepare_dirs("{}", state, &r);
        ck_assert_int_eq(r, -ENOTDIR);
        ck_assert_msg(strstr(err, "CacheDirectory (default)") && strstr(err, "/state/cache is not a directory"), "%s", err);

        ck_assert_int_eq(rm_rf(dir), 0);
}
END_TEST

START_TEST(test_load_files) {
        char dir[] = "/tmp/test-config-XXXXXX";
        _cleanup_free_ char *good = NULL, *nul = NULL, *bad = NULL, *missing = NULL, *err = NULL;
        _cleanup_(config_freep) Config *c = NULL;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        good = write_temp(dir, "good.json", shifter_example, strlen(shifter_example));
        nul = write_temp(dir, "nul.json", "{}\0{}", 5);
        bad = write_temp(dir, "bad.json", "{\"MaxClusters\": \"x\"}", 20);
        ck_assert_int_ge(asprintf(&missing, "%s/missing.json", dir), 0);

        ck_assert_int_eq(config_load(good, false, &c, &err), 0);
        ck_assert_ptr_null(err);
        ck_assert_str_eq(c->path, good);
        ck_assert_uint_eq(c->n_platforms, 2);
        ck_assert_str_eq(c->locations[1].name, "registry.example.org");
        ck_assert(strneq(c->locations[1].sslcacert, dir, strlen(dir)));
        ck_assert_str_eq(c->locations[1].sslcacert + strlen(dir), "/certs/site.pem");
        c = config_free(c);

        /* missing, tolerated: defaults */
        ck_assert_int_eq(config_load(missing, true, &c, &err), 0);
        ck_assert_ptr_null(err);
        ck_assert_ptr_null(c->path);
        check_defaults(c);
        c = config_free(c);

        /* missing, required */
        ck_assert_int_eq(config_load(missing, false, &c, &err), -ENOENT);
        ck_assert_ptr_null(c);
        ck_assert_ptr_nonnull(strstr(err, missing));
        ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
        err = mfree(err);

        /* a directory is not a config file, even when missing ones are fine */
        ck_assert_int_lt(config_load(dir, true, &c, &err), 0);
        ck_assert_ptr_null(c);
        ck_assert_ptr_nonnull(err);
        err = mfree(err);

        ck_assert_int_eq(config_load(nul, false, &c, &err), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(err, "NUL"));
        err = mfree(err);

        ck_assert_int_eq(config_load(bad, true, &c, &err), -EINVAL);
        ck_assert_ptr_nonnull(err);
        ck_assert(strneq(err, bad, strlen(bad)));
        ck_assert_str_eq(err + strlen(bad), ": MaxClusters: expected a non-negative integer, got \"x\"");

        ck_assert_int_eq(unlink(good), 0);
        ck_assert_int_eq(unlink(nul), 0);
        ck_assert_int_eq(unlink(bad), 0);
        ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* url, sslcacert and authentication reach the worker; a CA file must exist when gatewayd starts. */
START_TEST(test_location_worker_args) {
        char dir[] = "/tmp/test-config-XXXXXX";
        static const char text[] =
                "{\"Locations\": {\"mirror.example:5000\": {\"url\": \"https://10.0.0.1:443/\", \"sslcacert\": \"ca.pem\","
                "                  \"authentication\": \"none\"},"
                "                \"localhost:5000\": {\"insecure\": true},"
                "                \"hub\": {\"remotetype\": \"dockerhub\", \"authentication\": \"basic\"}}}";
        _cleanup_free_ char *cfg = NULL, *ca = NULL, *err = NULL, *expect = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **a = NULL, **b = NULL, **h = NULL;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        cfg = write_temp(dir, "gatewayd.json", text, strlen(text));
        ck_assert_int_ge(asprintf(&ca, "%s/ca.pem", dir), 0);
        ck_assert_int_eq(config_load(cfg, false, &c, &err), 0);
        ck_assert_str_eq(c->locations[0].sslcacert, ca);

        ck_assert_int_eq(config_location_worker_args(&c->locations[0], &a), 0);
        ck_assert_int_ge(asprintf(&expect, "--registry-cacert=mirror.example:5000=%s", ca), 0);
        ck_assert_str_eq(a[0], "--registry-url=mirror.example:5000=https://10.0.0.1:443");
        ck_assert_str_eq(a[1], expect);
        ck_assert_str_eq(a[2], "--registry-auth=mirror.example:5000=none");
        ck_assert_ptr_null(a[3]);
        /* no url: the worker derives it (loopback and --insecure-registry rules) */
        ck_assert_int_eq(config_location_worker_args(&c->locations[1], &b), 0);
        ck_assert_str_eq(b[0], "--registry-auth=localhost:5000=http");
        ck_assert_ptr_null(b[1]);
        ck_assert_int_eq(config_location_worker_args(&c->locations[2], &h), 0);
        ck_assert_str_eq(h[0], "--registry-url=hub=https://registry-1.docker.io");
        ck_assert_str_eq(h[1], "--registry-auth=hub=basic");
        ck_assert_ptr_null(h[2]);

        /* missing, a directory, then there */
        ck_assert_int_eq(config_verify_files(c, &err), -ENOENT);
        ck_assert_msg(strstr(err, "Locations.mirror.example:5000.sslcacert: cannot read \"") == err, "%s", err);
        ck_assert_ptr_nonnull(strstr(err, ca));
        ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
        err = mfree(err);
        ck_assert_int_eq(mkdir(ca, 0755), 0);
        ck_assert_int_eq(config_verify_files(c, &err), -EISDIR);
        err = mfree(err);
        ck_assert_int_eq(rmdir(ca), 0);
        free(write_temp(dir, "ca.pem", "x", 1));
        ck_assert_int_eq(config_verify_files(c, &err), 0);
        ck_assert_ptr_null(err);

        ck_assert_int_eq(unlink(ca), 0);
        ck_assert_int_eq(unlink(cfg), 0);
        ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_example_file) {
        const char *src = getenv("GATEWAYD_SOURCE_DIR");
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *path = NULL, *err = NULL;

        ck_assert_msg(src, "GATEWAYD_SOURCE_DIR is not set (run through meson test)");
        ck_assert_int_ge(asprintf(&path, "%s/docs/gatewayd.json.example", src), 0);

        ck_assert_msg(config_load(path, false, &c, &err) == 0, "%s", strna(err));
        /* the example documents every key, so none may be unknown */
        ck_assert_ptr_null(c->unknown_keys);
        ck_assert_uint_ge(c->n_platforms, 2);
        ck_assert_ptr_nonnull(config_platform_default(c));
        ck_assert_ptr_nonnull(config_location_find(c, NULL));
}
END_TEST

/* The examples in docs/configuration.md must stay loadable too. */
START_TEST(test_documentation_examples) {
        const char *src = getenv("GATEWAYD_SOURCE_DIR");
        _cleanup_free_ char *path = NULL, *doc = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        unsigned n = 0;
        size_t size;
        char *p;

        ck_assert_ptr_nonnull(src);
        ck_assert_int_ge(asprintf(&path, "%s/docs/configuration.md", src), 0);
        f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        doc = calloc(1, 256 * 1024);
        ck_assert_ptr_nonnull(doc);
        size = fread(doc, 1, 256 * 1024 - 1, f);
        ck_assert_uint_gt(size, 0);

        for (p = doc; (p = strstr(p, "```json\n")); n++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *err = NULL;
                char *end;

                p += strlen("```json\n");
                end = strstr(p, "```");
                ck_assert_ptr_nonnull(end);
                *end = 0;
                ck_assert_msg(config_parse(p, NULL, &c, &err) == 0, "example %u: %s", n, strna(err));
                ck_assert_ptr_null(c->unknown_keys);
                p = end + 3;
        }
        ck_assert_uint_ge(n, 2);
}
END_TEST

START_TEST(test_state_directory_and_log_level) {
        _cleanup_(config_freep) Config *c = NULL, *d = NULL;

        /* --state-dir over "StateDirectory" over the built-in default; likewise the log level. */
        ck_assert_int_eq(config_parse("{\"StateDirectory\": \"/srv/gw\", \"LogLevel\": \"warn\"}", NULL, &c, NULL), 0);
        ck_assert_str_eq(config_state_directory(c, NULL, "/var/lib/gatewayd"), "/srv/gw");
        ck_assert_str_eq(config_state_directory(c, "/tmp/st", "/var/lib/gatewayd"), "/tmp/st");
        ck_assert_int_eq(config_log_level(c, -1, LOG_DEBUG), LOG_WARNING);
        ck_assert_int_eq(config_log_level(c, LOG_ERR, LOG_DEBUG), LOG_ERR);

        ck_assert_int_eq(config_parse("{}", NULL, &d, NULL), 0);
        ck_assert_str_eq(config_state_directory(d, NULL, "/var/lib/gatewayd"), "/var/lib/gatewayd");
        ck_assert_str_eq(config_state_directory(d, "/tmp/st", "/var/lib/gatewayd"), "/tmp/st");
        ck_assert_int_eq(config_log_level(d, -1, LOG_DEBUG), LOG_DEBUG);
}
END_TEST

START_TEST(test_unsupported_platforms) {
        _cleanup_(config_freep) Config *c = NULL;

        ck_assert_int_eq(config_parse("{\"Platforms\": {\"here\": {\"accesstype\": \"local\"},"
                                      " \"cluster\": {\"accesstype\": \"remote\", \"host\": \"n1\","
                                      "  \"ssh\": {\"username\": \"u\", \"imageDir\": \"/images\"}},"
                                      " \"batch\": {\"accesstype\": \"local\", \"slurm\": {\"url\": \"http://s:6820\", \"jwtKey\": \"/k\"}}}}",
                                      NULL, &c, NULL), 0);
        ck_assert_ptr_null(platform_config_unsupported(config_platform_find(c, "here"), false));
        ck_assert_ptr_null(platform_config_unsupported(config_platform_find(c, "here"), true));
        /* SSH nodes: implemented (platform-ssh.c), for images and jobs */
        ck_assert_ptr_null(platform_config_unsupported(config_platform_find(c, "cluster"), false));
        ck_assert_ptr_null(platform_config_unsupported(config_platform_find(c, "cluster"), true));
        /* Slurm runs jobs (through slurmrestd); its images are local */
        ck_assert_ptr_null(platform_config_unsupported(config_platform_find(c, "batch"), false));
        ck_assert_ptr_null(platform_config_unsupported(config_platform_find(c, "batch"), true));
}
END_TEST

/* ImageSizeMax / ImageFilesMax (issue 8 §4): defaults, size syntax, refusals with the key path. */
START_TEST(test_image_limits) {
        static const struct { const char *text, *error; } bad[] = {
                { "{\"ImageSizeMax\": 0}", "ImageSizeMax: must be at least 1" },
                { "{\"ImageSizeMax\": \"big\"}", "ImageSizeMax: expected a byte count such as 1048576 or \"16M\", got \"big\"" },
                { "{\"ImageFilesMax\": 0}", "ImageFilesMax: must be at least 1" },
                { "{\"ImageFilesMax\": \"1M\"}", "ImageFilesMax: expected a non-negative integer, got \"1M\"" },
        };
        _cleanup_(config_freep) Config *d = NULL, *c = NULL;

        ck_assert_int_eq(config_parse("{}", NULL, &d, NULL), 0);
        ck_assert_uint_eq(d->image_size_max, UINT64_C(64) * 1024 * 1024 * 1024);
        ck_assert_uint_eq(d->image_files_max, 2000000);
        ck_assert_int_eq(config_parse("{\"ImageSizeMax\": \"512M\", \"ImageFilesMax\": 1000}", NULL, &c, NULL), 0);
        ck_assert_uint_eq(c->image_size_max, 512 * 1024 * 1024);
        ck_assert_uint_eq(c->image_files_max, 1000);
        ck_assert_ptr_null(c->unknown_keys);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_refused(bad[i].text, bad[i].error);
}
END_TEST

/* ProgramImages: which images a program may name (docs/programs.md, "Images of programs"). */
START_TEST(test_program_images) {
        static const char *config =
                "{\"Locations\": {\"registry-1.docker.io\": {}, \"reg.example.org:5000\": {}},"
                " \"ProgramImages\": [\"reg.example.org:5000/quantum/*\", \"python\", \"docker.io/team/tool:1.0\","
                " \"reg.example.org:5000/solo\"]}";
        static const struct { const char *reference; bool permitted; } cases[] = {
                { "reg.example.org:5000/quantum/app", true },
                { "REG.example.org:5000/quantum/deep/app:2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true },
                { "reg.example.org:5000/quantumx/app", false },     /* a path boundary, not a string prefix */
                { "reg.example.org:5000/quantum", false },
                { "reg.example.org:5000/solo:any", true },
                { "reg.example.org:5000/solo/sub", false },
                { "python", true },                                  /* docker.io/library/python:latest */
                { "index.docker.io/library/python:3.12", true },    /* no tag in the entry: every tag */
                { "team/tool:1.0", true },
                { "docker.io/team/tool:1.1", false },                /* a tag in the entry: only that */
                { "other.example.org/quantum/app", false },
                { "not a reference", false },
        };
        static const struct { const char *text, *error; } bad[] = {
                { "{\"ProgramImages\": \"*\"}", "ProgramImages: expected an array of strings, got a string" },
                { "{\"ProgramImages\": [\"\"]}", "ProgramImages: entry 0: expected an image reference, \"PREFIX/*\" or \"*\"" },
                { "{\"ProgramImages\": [\"*\", 3]}", "ProgramImages: entry 1: expected an image reference, \"PREFIX/*\" or \"*\"" },
                { "{\"ProgramImages\": [\"Bad Ref\"]}", "ProgramImages: entry 0: \"Bad Ref\" is not an image reference, \"PREFIX/*\" or \"*\"" },
                { "{\"ProgramImages\": [\"a/*/b\"]}", "ProgramImages: entry 0: \"a/*/b\" is not an image reference, \"PREFIX/*\" or \"*\"" },
                { "{\"ProgramImages\": [\"/*\"]}", "ProgramImages: entry 0: \"/*\" is not an image reference, \"PREFIX/*\" or \"*\"" },
                { "{\"ProgramImages\": [\"elsewhere.example.org/x/*\"]}",
                  "ProgramImages: entry 0: registry \"elsewhere.example.org\" is not defined in Locations" },
        };
        _cleanup_(config_freep) Config *d = NULL, *c = NULL, *any = NULL, *hub = NULL;

        /* default: none, so nothing is permitted */
        ck_assert_int_eq(config_parse("{}", NULL, &d, NULL), 0);
        ck_assert_ptr_null(d->program_images);
        ck_assert(!config_program_image_permitted(d, "python"));
        ck_assert_int_eq(config_parse(config, NULL, &c, NULL), 0);
        ck_assert_ptr_null(c->unknown_keys);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                ck_assert_msg(config_program_image_permitted(c, cases[i].reference) == cases[i].permitted,
                              "%s: expected %s", cases[i].reference, cases[i].permitted ? "permitted" : "refused");
        ck_assert_int_eq(config_parse("{\"ProgramImages\": [\"*\"]}", NULL, &any, NULL), 0);
        ck_assert(config_program_image_permitted(any, "anything.example.org/x:1"));
        ck_assert(!config_program_image_permitted(any, "Not A Reference"));
        /* a whole registry; Docker Hub's single components are under library/ */
        ck_assert_int_eq(config_parse("{\"ProgramImages\": [\"docker.io/*\"]}", NULL, &hub, NULL), 0);
        ck_assert(config_program_image_permitted(hub, "alpine"));
        ck_assert(config_program_image_permitted(hub, "someone/tool:3"));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_refused(bad[i].text, bad[i].error);
}
END_TEST

/* ProgramImage / ProgramArtifactMax (issue 14, docs/programs.md). */
START_TEST(test_program_keys) {
        static const struct { const char *text, *error; } bad[] = {
                { "{\"ProgramImage\": \"\"}", "ProgramImage: must not be empty" },
                { "{\"ProgramImage\": 3}", "ProgramImage: expected a string, got an integer" },
                { "{\"ProgramArtifactMax\": 0}", "ProgramArtifactMax: must be at least 1" },
                { "{\"ProgramArtifactMax\": \"lots\"}", "ProgramArtifactMax: expected a byte count such as 1048576 or \"16M\", got \"lots\"" },
        };
        _cleanup_(config_freep) Config *d = NULL, *c = NULL;

        ck_assert_int_eq(config_parse("{}", NULL, &d, NULL), 0);
        ck_assert_ptr_null(d->program_image);
        ck_assert_uint_eq(d->program_artifact_max, 64 * 1024 * 1024);
        ck_assert_int_eq(config_parse("{\"ProgramImage\": \"python:3.12-slim\", \"ProgramArtifactMax\": \"8M\"}", NULL, &c, NULL), 0);
        ck_assert_str_eq(c->program_image, "python:3.12-slim");
        ck_assert_uint_eq(c->program_artifact_max, 8 * 1024 * 1024);
        ck_assert_ptr_null(c->unknown_keys);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_refused(bad[i].text, bad[i].error);
}
END_TEST

/* "ProgramProviders": provider name -> {"admins", "users"}, lists parsed as "Admins" is. */
START_TEST(test_program_providers) {
        static const struct { const char *text, *error; } bad[] = {
                { "{\"ProgramProviders\": []}", "ProgramProviders: expected an object of providers, got an array" },
                { "{\"ProgramProviders\": {\"a b\": {}}}", "ProgramProviders.a b: invalid provider name (1-64 of A-Z a-z 0-9 _ -)" },
                { "{\"ProgramProviders\": {\"acme/x\": {}}}", "ProgramProviders.acme/x: invalid provider name (1-64 of A-Z a-z 0-9 _ -)" },
                { "{\"ProgramProviders\": {\"\": {}}}", "ProgramProviders.: invalid provider name (1-64 of A-Z a-z 0-9 _ -)" },
                { "{\"ProgramProviders\": {\"acme\": []}}", "ProgramProviders.acme: expected an object, got an array" },
                { "{\"ProgramProviders\": {\"acme\": {\"admins\": \"alice\"}}}",
                  "ProgramProviders.acme.admins: expected an array of strings, got a string" },
                { "{\"ProgramProviders\": {\"acme\": {\"users\": [\"bob\", \"\"]}}}",
                  "ProgramProviders.acme.users: entry 1: expected a user name or \"@group\"" },
                { "{\"ProgramProviders\": {\"acme\": {\"users\": [3]}}}",
                  "ProgramProviders.acme.users: entry 0: expected a user name or \"@group\"" },
        };
        _cleanup_(config_freep) Config *d = NULL, *c = NULL, *u = NULL;
        _cleanup_free_ char *long_name = NULL;
        const ConfigProgramProvider *p;

        ck_assert_int_eq(config_parse("{}", NULL, &d, NULL), 0);
        ck_assert_uint_eq(d->n_program_providers, 0);
        ck_assert_ptr_null(config_program_provider_find(d, "acme"));
        ck_assert_int_eq(config_parse("{\"ProgramProviders\": {\"acme\": {\"admins\": [\"alice\", \"@acme-dev\"],"
                                      " \"users\": [\"@quantum\"]}, \"ibm_Q-1\": {\"users\": [\"bob\"]}}}", NULL, &c, NULL), 0);
        ck_assert_ptr_null(c->unknown_keys);
        ck_assert_uint_eq(c->n_program_providers, 2);
        p = config_program_provider_find(c, "acme");
        ck_assert_ptr_nonnull(p);
        ck_assert_str_eq(p->admins[0], "alice");
        ck_assert_str_eq(p->admins[1], "@acme-dev");
        ck_assert_ptr_null(p->admins[2]);
        ck_assert_str_eq(p->users[0], "@quantum");
        ck_assert_ptr_null(p->users[1]);
        p = config_program_provider_find(c, "ibm_Q-1");
        ck_assert_ptr_nonnull(p);
        ck_assert_ptr_null(p->admins);   /* nobody may upload: its programs stay as they are */
        ck_assert_str_eq(p->users[0], "bob");
        ck_assert_ptr_null(config_program_provider_find(c, "ACME"));   /* names are exact */
        ck_assert_ptr_null(config_program_provider_find(c, NULL));
        /* an unknown key inside a provider is noted like any other */
        ck_assert_int_eq(config_parse("{\"ProgramProviders\": {\"acme\": {\"admin\": [\"alice\"]}}}", NULL, &u, NULL), 0);
        ck_assert_str_eq(u->unknown_keys[0], "ProgramProviders.acme.admin");
        ck_assert(config_program_provider_name_is_valid("a"));
        ck_assert(!config_program_provider_name_is_valid("a.b"));
        long_name = malloc(66);
        ck_assert_ptr_nonnull(long_name);
        memset(long_name, 'a', 65);
        long_name[65] = 0;
        ck_assert(!config_program_provider_name_is_valid(long_name));
        long_name[64] = 0;
        ck_assert(config_program_provider_name_is_valid(long_name));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_refused(bad[i].text, bad[i].error);
}
END_TEST

static Suite *config_suite(void) {
        Suite *s = suite_create("config");
        TCase *tc;

        tc = tcase_create("parse");
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_empty_object_is_defaults);
        tcase_add_test(tc, test_shifter_example);
        tcase_add_test(tc, test_gatewayd_keys);
        tcase_add_test(tc, test_slurm_jwt_key_and_launcher);
        tcase_add_test(tc, test_default_location_without_locations);
        tcase_add_test(tc, test_compression_forms);
        tcase_add_test(tc, test_location_for_registry);
        tcase_add_test(tc, test_memory_max_zero_is_quarter_of_ram);
        tcase_add_test(tc, test_null_means_default);
        tcase_add_test(tc, test_lab_name_servers);
        tcase_add_test(tc, test_unknown_keys);
        tcase_add_test(tc, test_job_retention);
        tcase_add_test(tc, test_state_directory_and_log_level);
        tcase_add_test(tc, test_unsupported_platforms);
        tcase_add_test(tc, test_remote_access);
        tcase_add_test(tc, test_node_lost_timeout);
        tcase_add_test(tc, test_authentication_oidc);
        tcase_add_test(tc, test_munge_authentication);
        tcase_add_test(tc, test_custom_token);
        suite_add_tcase(s, tc);

        tc = tcase_create("values");
        tcase_add_loop_test(tc, test_duration_valid, 0, ELEMENTSOF(good_durations));
        tcase_add_loop_test(tc, test_duration_invalid, 0, ELEMENTSOF(bad_durations));
        tcase_add_test(tc, test_size);
        tcase_add_loop_test(tc, test_invalid_values, 0, ELEMENTSOF(bad_configs));
        suite_add_tcase(s, tc);

        tc = tcase_create("files");
        tcase_add_test(tc, test_load_files);
        tcase_add_test(tc, test_duration_limit);
        tcase_add_test(tc, test_prepare_directories);
        tcase_add_test(tc, test_location_worker_args);
        tcase_add_test(tc, test_example_file);
        tcase_add_test(tc, test_documentation_examples);
        tcase_add_test(tc, test_image_limits);
        tcase_add_test(tc, test_program_keys);
        tcase_add_test(tc, test_program_images);
        tcase_add_test(tc, test_program_providers);
        tcase_add_test(tc, test_output_limits);
        suite_add_tcase(s, tc);

        return s;
}

int main(void) {
        SRunner *sr = srunner_create(config_suite());
        int failed;

        /* Parsing is quiet by default; only test_unknown_keys looks at the log. */
        log_set_max_level(LOG_ERR);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
