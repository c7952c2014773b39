/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The bubblewrap command line for one job.
 *
 * Root file system: bwrap's new root is a tmpfs; every top-level entry of the image is bound
 * into it read-only (directories and files) or recreated (symlinks), /proc, /dev, a private
 * /tmp and a private /dev/shm (tmpfs, mode 1777) are mounted fresh, and at the end the tmpfs
 * itself is remounted read-only. Binding entries one by one instead of the whole image at / is
 * what lets /var/input exist even when the image has no such directory (a squashfs cannot
 * grow a mount point): /var is rebuilt the same way one level down. The job's input files are bound read-only at /var/input/{data,params}.json.
 * With network, /etc is rebuilt likewise so that the hosts and resolver files given (the host's,
 * or a lab instance's) take the place of the image's, whether or not it has them.
 *
 * A root built once per image mount (sandbox-root.h; p->root) takes the place of all those
 * binds: one read-only bind of it at /, then the same per-job mounts on the mount points it
 * holds. What the job sees is the same either way.
 *
 * Privileges: bwrap runs as root without a user namespace (we are root: no setuid bit, no
 * unprivileged user namespace for the job to attack), with its own mount, pid, ipc, uts (and,
 * unless the service asks for network, net) namespaces, and sets NO_NEW_PRIVS. bwrap only
 * switches uid/gid inside a user namespace, so it starts our own static init (SANDBOX_INIT_PATH,
 * bound from the host) as pid 1 of the sandbox; the init drops to the job's uid/gid (clearing
 * every capability), forks the job, forwards termination signals to it and reports how it ended
 * on a status fd. Dropping to the user before bwrap would instead need a user namespace in which
 * the image's root-owned files appear as "nobody", and could not bind root-only input files.
 * The init also watches a lifeline pipe from the worker, so the sandbox ends if the worker is
 * killed outright (see job-init.c).
 *
 * Seal: bwrap installs the job's seccomp filter (--seccomp, see job-seccomp.h) right before it
 * executes the init, after its own namespace and mount setup, so the init and the job run under
 * it. */

#define SANDBOX_INIT_PATH "/.gatewayd-init"
#define SANDBOX_WRITABLE_PATH "/var/lab"

typedef struct SandboxParams {
        const char *bwrap;              /* path of bwrap */
        const char *image_root;         /* where the image's squashfs is mounted */
        const char *init;               /* host path of gateway-job-init */
        const char *data_path;          /* host paths of the input files */
        const char *params_path;
        const char *program_root;       /* a program's squashfs mount, bound read-only at
                                         * /program; NULL: none */
        const char *arguments_path;     /* with it: /var/input/arguments.json */
        const char *output_path;        /* host directory bound writable at /var/runtime/output
                                         * (result-files.h); NULL: none */
        const char *workdir;
        const char *hostname;
        const char *hosts_path;         /* bound read-only at /etc/hosts: the instance's for lab
                                         * members, the host's for other jobs with network (NULL:
                                         * none) */
        const char *resolv_path;        /* bound read-only at /etc/resolv.conf, likewise (NULL:
                                         * none; a job with network never gets the image's) */
        const char *writable_path;      /* lab members: bound read-write at SANDBOX_WRITABLE_PATH */
        const char *root;               /* the image's sandbox root for these parameters
                                         * (sandbox-root.h); NULL: the image's entries are
                                         * bound one by one */
        bool network;                   /* no --unshare-net; /etc rebuilt entry by entry without
                                         * the image's hosts and resolv.conf */
        bool netns_given;               /* bwrap runs in a network namespace made for the job
                                         * (job-result-endpoint.h): no --unshare-net */
        uint64_t tmp_size;              /* bytes of /tmp; 0: tmpfs's default */
        uint64_t shm_size;              /* bytes of /dev/shm; 0: tmpfs's default */
        int json_status_fd;             /* fd numbers as the bwrap process will see them */
        int init_status_fd;
        int lifeline_fd;
        int seccomp_fd;                 /* the job's BPF program (job-seccomp.h); < 3: none */
        uid_t uid;
        gid_t gid;
        char * const *command;
} SandboxParams;

/* Builds the argv for execve(). Without p->root, reads the image's top-level and /var (and /etc)
 * directories. */
int sandbox_build_argv(const SandboxParams *p, char ***ret);

/* What in a sandbox root depends on the job (the rest is the image's). */
typedef enum SandboxRootFlags {
        SANDBOX_ROOT_OWN_ETC = 1 << 0,  /* /etc holds the job's hosts and resolver files, never the image's */
        SANDBOX_ROOT_HOSTS   = 1 << 1,  /* a mount point at /etc/hosts */
        SANDBOX_ROOT_RESOLV  = 1 << 2,  /* a mount point at /etc/resolv.conf */
        SANDBOX_ROOT_LAB     = 1 << 3,  /* one at SANDBOX_WRITABLE_PATH */
        SANDBOX_ROOT_PROGRAM = 1 << 4,  /* at /program and /var/input/arguments.json */
        SANDBOX_ROOT_OUTPUT  = 1 << 5,  /* at RESULT_FILES_PATH */
        _SANDBOX_ROOT_FLAGS_MAX = 1 << 6,
} SandboxRootFlags;

SandboxRootFlags sandbox_root_flags(const SandboxParams *p);
