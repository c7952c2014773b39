/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

#include "macro.h"

/* One SSH connection to one node (a `host` entry of a remote platform), driven by an sd-event
 * loop: libssh2 in non-blocking mode, a non-blocking connect(2), names that are not numeric
 * resolved off the loop. Once up, the session holds one exec channel on which the node's forced
 * command (`gateway-worker connect`) relays the serve protocol, and at most one SFTP channel
 * for uploads: two of sshd's ten session channels per connection.
 *
 * States (as the platform reports a node):
 *   connecting  — first attempt (resolve, connect, handshake, host key, auth, channel)
 *   up          — the serve channel is open
 *   unreachable — the connection failed or was lost; retried with exponential backoff
 *   refused     — the node's host key is not in, or does not match, ssh.knownHosts, or it
 *                 refused our key: nothing is sent to it (no auth after a bad host key); retried
 *                 at the backoff cap, so that fixing known_hosts is picked up
 */

typedef struct SshSession SshSession;

typedef enum SshNodeState {
        SSH_NODE_CONNECTING,
        SSH_NODE_UP,
        SSH_NODE_UNREACHABLE,
        SSH_NODE_REFUSED,
        _SSH_NODE_STATE_MAX,
} SshNodeState;

const char *ssh_node_state_to_string(SshNodeState s);

typedef struct SshSessionOptions {
        const char *host;           /* "name" or "name:port" ("[v6]:port"), as configured */
        unsigned default_port;      /* ssh.port; 0 = 22 */
        const char *user;           /* ssh.username */
        const char *key;            /* ssh.key: OpenSSH private key, ed25519 or ECDSA */
        const char *known_hosts;    /* ssh.knownHosts; NULL = /etc/ssh/ssh_known_hosts */
        const char *command;        /* exec'd on the serve channel; NULL = "gateway-worker connect" */
        usec_t connect_timeout;     /* one attempt, TCP to channel open; 0 = 15 s */
        usec_t keepalive_interval;  /* 0 = 15 s; the node is lost after 3 silent intervals */
        usec_t backoff_min;         /* first retry after a failed attempt; 0 = 1 s */
        usec_t backoff_max;         /* cap of the doubling; 0 = 60 s */
        int send_buffer;            /* SO_SNDBUF of the socket; 0 = the kernel's (tests make it small
                                     * so that libssh2 often has a packet only partly sent) */
} SshSessionOptions;

typedef struct SshSessionCallbacks {
        /* Every change of state; reason is a human readable sentence for unreachable/refused. */
        void (*state_changed)(SshSession *s, SshNodeState state, const char *reason, void *userdata);
        /* Bytes from the serve channel (stdout of the forced command); only while up. */
        void (*data)(SshSession *s, const void *p, size_t n, void *userdata);
} SshSessionCallbacks;

/* Checks an ssh.key file at configuration time: an OpenSSH (or PEM EC) ed25519/ECDSA private key
 * without a passphrase. RSA (and DSA) keys are refused with an explanation: Debian's libssh2 1.10
 * signs RSA only with SHA-1, which OpenSSH ≥ 8.8 does not accept. Returns 0, or a negative errno
 * and a sentence in *ret_error (to be freed). */
int ssh_key_check(const char *path, char **ret_error);

int ssh_session_new(SshSession **ret, sd_event *event, const SshSessionOptions *options,
                    const SshSessionCallbacks *callbacks, void *userdata);
SshSession *ssh_session_free(SshSession *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(SshSession *, ssh_session_free);

/* Starts connecting (and keeps the connection: reconnects until freed). */
int ssh_session_start(SshSession *s);

SshNodeState ssh_session_get_state(SshSession *s);
const char *ssh_session_get_host(SshSession *s);
/* When the node last sent something (CLOCK_MONOTONIC), 0 = never. */
usec_t ssh_session_get_last_contact(SshSession *s);
/* CLOCK_REALTIME of the last contact, for surfaces; 0 = never. */
usec_t ssh_session_get_last_contact_realtime(SshSession *s);

/* Queues bytes for the serve channel. -ENOTCONN unless up: what was queued when the connection
 * is lost is dropped (the caller resends its requests on the next connection). */
int ssh_session_send(SshSession *s, const void *p, size_t n);

/* Uploads local_path over SFTP to `<remote_name>.partial` (mode 0600, relative to the SFTP
 * server's directory — the node's imageDir): every sftp_write call carries at least
 * SSH_UPLOAD_CHUNK bytes and 2 MiB stay in flight; a file over 64 MiB is also fsynced every
 * 32 MiB on a second SFTP channel while it goes up; then it is fsynced and closed. On failure the
 * partial file is removed and error says why (a full disk on the node is named as such, -ENOSPC).
 * Uploads run one after the other; all fail with -ECONNRESET when the connection is lost (the
 * partial file then stays on the node: serve's image-list names it). done is called exactly
 * once, never from within this call, and not at all once the session is freed. */
typedef void (*SshUploadDone)(SshSession *s, int r, const char *error, uint64_t size, void *userdata);
int ssh_session_upload(SshSession *s, const char *local_path, const char *remote_name,
                       SshUploadDone done, void *userdata);

/* Least bytes per SFTP write call: libssh2 pipelines within one call; ≥ 256 KiB per call keeps
 * up with scp, 32 KiB calls fall behind. */
#define SSH_UPLOAD_CHUNK (1024U * 1024U)
