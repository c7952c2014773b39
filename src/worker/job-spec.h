/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* SPOOLDIR/job.json, written by gatewayd, read by "gateway-worker run". Schema (docs/worker-run.md
 * has the prose):
 *
 *   {
 *     "id": "j-123",                         optional, informational (logs, hostname)
 *     "image": {
 *       "path": "/var/lib/gatewayd/images/ID.squashfs",     required, absolute
 *       "meta": { "env": ["K=V", ...], "entrypoint": [...], "cmd": [...], "workdir": "/app",
 *                 "user": "...", "labels": {...} },          the pull worker's ID.meta.json,
 *       "metaPath": "/var/lib/gatewayd/images/ID.meta.json"  inline or by path (not both);
 *     },                                                      "user" and "labels" are ignored
 *     "command": ["python", "main.py"],      optional: replaces entrypoint + cmd as a whole
 *     "env": { "K": "V" },                   optional: set over the image's env
 *     "workdir": "/app",                     optional: replaces the image's workdir (default /)
 *     "network": false,                      optional: true keeps the host's network (and
 *                                            gets its /etc/resolv.conf and /etc/hosts)
 *     "resources": {                         optional, every key optional, 0 = no limit
 *       "memory": 536870912,                 bytes
 *       "cpus": 1.5,                         CPU bandwidth in CPUs
 *       "timeout": 3600,                     seconds of wall-clock time (may be fractional)
 *       "pids": 512,                         processes/threads of the job
 *       "outputMax": 67108864,               bytes of result files (/var/runtime/output), absent:
 *       "outputFiles": 1000                  64 MiB and 1000 files; either 0: no such directory
 *     },
 *     "uid": 1000, "gid": 1000,              whom to run as; default and uid 0 → nobody (65534)
 *     "program": {                           optional: a user's program (docs/programs.md)
 *       "path": "/var/lib/gatewayd/programs/ID/program.squashfs"   required, absolute; mounted
 *       "token": "..."                        optional: the job's save_result token; with it the
 *                                             job gets the result endpoint (job-result-endpoint.h)
 *     }                                       read-only at /program, and the spool's
 *                                             input/arguments.json bound at /var/input/
 *     "lab": {                               optional: the job is a member of a lab instance
 *       "netns": "/run/gatewayd/labs/ID/netns",  joins this network namespace (implies network)
 *       "hostname": "web",                   the sandbox's host name
 *       "hosts": "/var/lib/.../hosts",       bound read-only at /etc/hosts
 *       "resolv": "/var/lib/.../resolv.conf", optional: bound read-only at /etc/resolv.conf (the
 *                                            image's is never used: without it there is none)
 *       "writable": "/var/lib/.../web",      bound read-write at /var/lab (the member's layer)
 *       "writableImage": "/var/lib/.../web.img", optional, all three: the layer is an ext4 file
 *       "writableTemplate": "/var/lib/.../labs/.writable-1073741824.img",  system of writableMax
 *       "writableMax": 1073741824,           bytes in writableImage, at the first start a copy of
 *                                            writableTemplate (made if missing), loop-mounted on
 *                                            "writable" (lab-disk.h): the member cannot fill the
 *                                            host's disk
 *       "group": "gatewayd-lab-ID",          optional: the instance's cgroup, made (or shared)
 *       "groupMemory": 536870912,            below the worker's own, limited to these for all
 *       "groupPids": 260                     members together (sandboxes' own 2 each included);
 *     }                                      the member's job cgroup goes below it. Every path
 *                                            absolute; netns, hostname, hosts and writable
 *                                            required
 *   }
 *
 * Unknown keys are rejected, so a typo in gatewayd cannot silently drop a limit. */

#define JOB_NOBODY_ID 65534

typedef struct JobSpec {
        char *id;
        char *image_path;
        char *program_path;     /* NULL: no program layer */
        char *program_token;    /* program.token: serve save_result (job-result-endpoint.h); NULL: not */
        char **argv;            /* entrypoint + cmd, or command */
        char **env;             /* "K=V", merged */
        char *workdir;
        bool network;
        uint64_t memory;
        double cpus;
        uint64_t timeout_usec;
        uint64_t pids;
        uint64_t output_max;    /* result files (result-files.h); 0: none */
        uint64_t output_files;
        uid_t uid;
        gid_t gid;
        /* lab members (docs/labs.md): NULL for jobs */
        char *netns;
        char *hostname;
        char *hosts;
        char *resolv;           /* NULL: the member has no /etc/resolv.conf */
        char *writable;
        char *writable_image;   /* NULL: the layer is the directory itself (lab-disk.h) */
        char *writable_template;
        uint64_t writable_max;  /* its size, with writable_image */
        char *group;            /* the instance's cgroup (job-limits.h), NULL: none */
        uint64_t group_memory, group_pids;
} JobSpec;

JobSpec *job_spec_free(JobSpec *s);
static inline void job_spec_freep(JobSpec **s) {
        job_spec_free(*s);
}
#define _cleanup_job_spec_ __attribute__((cleanup(job_spec_freep)))

/* Parses a job.json document. On bad input returns -EINVAL and a message naming the key in
 * *ret_error (caller frees). metaPath files are read here. */
int job_spec_from_json(json_object *o, JobSpec **ret, char **ret_error);
/* Reads and parses SPOOLDIR/job.json given the spool directory fd. */
int job_spec_load(int dir_fd, JobSpec **ret, char **ret_error);
