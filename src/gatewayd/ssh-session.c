/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <fcntl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "ssh-session.h"

typedef enum Phase {
        PHASE_IDLE,        /* not started, or waiting for the retry timer */
        PHASE_RESOLVING,
        PHASE_TCP,
        PHASE_HANDSHAKE,
        PHASE_AUTH,
        PHASE_CHANNEL,
        PHASE_EXEC,
        PHASE_UP,
} Phase;

/* Bytes kept in flight ahead of the acknowledged point (sshd's channel window is 2 MiB), and the
 * buffer that holds them. */
#define UPLOAD_WINDOW (2U * 1024U * 1024U)
#define UPLOAD_BUFFER (2U * UPLOAD_WINDOW)
_Static_assert(UPLOAD_WINDOW >= SSH_UPLOAD_CHUNK, "every sftp_write call carries at least SSH_UPLOAD_CHUNK");

typedef enum Sender {
        SENDER_NONE,
        SENDER_SERVE_WRITE,
        SENDER_SERVE_READ,
        SENDER_UPLOAD,
        SENDER_FLUSH,
} Sender;

/* While a large upload runs, a second SFTP channel (a second sftp-server on the node) fsyncs the
 * partial file every UPLOAD_FLUSH_EVERY bytes: the node's disk writes while the rest is still
 * coming, instead of all of it in the final fsync (which alone took ~20% of a 300 MiB deploy).
 * The first server keeps taking writes meanwhile; the final fsync finds little left. */
#define UPLOAD_FLUSH_EVERY (32U * 1024U * 1024U)

typedef enum FlushStep {
        FLUSH_NONE,        /* not (yet) wanted */
        FLUSH_OPEN,
        FLUSH_IDLE,
        FLUSH_SYNC,
        FLUSH_CLOSE,
        FLUSH_CLOSED,
} FlushStep;

typedef enum UploadStep {
        UPLOAD_OPEN,
        UPLOAD_WRITE,
        UPLOAD_FSYNC,
        UPLOAD_CLOSE,
        UPLOAD_FAIL_CLOSE,   /* the failure path: close the handle, look at the disk, unlink */
        UPLOAD_FAIL_STATVFS,
        UPLOAD_FAIL_UNLINK,
        UPLOAD_DONE,
} UploadStep;

typedef struct Upload Upload;
struct Upload {
        Upload *next;
        char *local_path;
        char *remote;        /* "<name>.partial" */
        int fd;
        LIBSSH2_SFTP_HANDLE *handle;
        UploadStep step;
        LIBSSH2_SFTP_HANDLE *flush_handle;
        FlushStep flush_step;
        uint64_t flushed_at;
        char *buf;
        size_t buf_len, buf_off;
        bool eof;
        uint64_t size, sent;
        int error;
        char *message;
        SshUploadDone done;
        void *userdata;
};

struct SshSession {
        sd_event *event;
        char *host_entry;   /* as configured: the node's name in logs and surfaces */
        char *name;         /* host part, as known_hosts lists it */
        unsigned port;
        char *user, *key, *known_hosts, *command;
        usec_t connect_timeout, keepalive_interval, backoff_min, backoff_max, backoff;
        int send_buffer;
        SshSessionCallbacks cb;
        void *userdata;

        SshNodeState state;
        bool state_reported;
        Phase phase;
        int fd;
        sd_event_source *io, *timer, *kick;
        sd_event_source *resolve_source;
        int resolve_fd;
        struct addrinfo *addrs, *addr_cur;

        LIBSSH2_SESSION *ssh;
        LIBSSH2_CHANNEL *channel;
        LIBSSH2_SFTP *sftp;
        LIBSSH2_SFTP *sftp_flush;

        Sender send_owner;   /* whose packet libssh2 still has to finish sending */

        char *out;
        size_t out_len, out_size;
        usec_t last_rx, last_rx_realtime, next_keepalive;

        Upload *uploads;     /* FIFO; the head is the one in progress */
        Upload *finished;    /* uploads whose done callback is due */
};

static const char *const state_table[_SSH_NODE_STATE_MAX] = {
        [SSH_NODE_CONNECTING] = "connecting",
        [SSH_NODE_UP] = "up",
        [SSH_NODE_UNREACHABLE] = "unreachable",
        [SSH_NODE_REFUSED] = "refused",
};

const char *ssh_node_state_to_string(SshNodeState s) {
        return s >= 0 && s < _SSH_NODE_STATE_MAX ? state_table[s] : NULL;
}

static usec_t now_usec(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

static char *strstrip_newline(char *p) {
        size_t n = strlen(p);

        while (n > 0 && strchr(" \t\r\n", p[n - 1]))
                p[--n] = 0;
        return p;
}

/* ---- the key check (configuration time) ---- */

static int read_small_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t n;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        buf = malloc(64 * 1024 + 1);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, 64 * 1024, f);
        if (ferror(f))
                return -EIO;
        if (!feof(f))
                return -EFBIG;
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

static uint32_t get_u32(const unsigned char *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* Reads one SSH "string" at *off of blob; returns false when it does not fit. */
static bool ssh_string(const unsigned char *blob, size_t size, size_t *off, const unsigned char **ret, uint32_t *ret_len) {
        uint32_t len;

        if (size - *off < 4)
                return false;
        len = get_u32(blob + *off);
        if (size - *off - 4 < len)
                return false;
        *ret = blob + *off + 4;
        *ret_len = len;
        *off += 4 + (size_t) len;
        return true;
}

/* The key type of an "openssh-key-v1" private key (the first string of its public key). */
static int openssh_key_type(const char *text, char **ret_type, bool *ret_encrypted) {
        const char *begin = "-----BEGIN OPENSSH PRIVATE KEY-----", *end = "-----END OPENSSH PRIVATE KEY-----";
        const char *b, *e;
        _cleanup_free_ char *b64 = NULL;
        _cleanup_free_ unsigned char *blob = NULL;
        const unsigned char *p, *cipher;
        uint32_t len, cipher_len;
        size_t n = 0, off, size;
        int r;

        b = strstr(text, begin);
        e = b ? strstr(b, end) : NULL;
        if (!b || !e)
                return -EBADMSG;
        b += strlen(begin);
        b64 = malloc(e - b + 1);
        blob = malloc(e - b + 1);
        if (!b64 || !blob)
                return -ENOMEM;
        for (const char *c = b; c < e; c++)
                if (!strchr(" \t\r\n", *c))
                        b64[n++] = *c;
        if (n == 0 || n % 4 != 0)
                return -EBADMSG;
        r = EVP_DecodeBlock(blob, (const unsigned char *) b64, (int) n);
        if (r < 0)
                return -EBADMSG;
        size = (size_t) r;
        if (size < 15 || memcmp(blob, "openssh-key-v1\0", 15) != 0)
                return -EBADMSG;
        off = 15;
        if (!ssh_string(blob, size, &off, &cipher, &cipher_len) ||   /* ciphername */
            !ssh_string(blob, size, &off, &p, &len) ||                /* kdfname */
            !ssh_string(blob, size, &off, &p, &len) ||                /* kdfoptions */
            size - off < 4)
                return -EBADMSG;
        off += 4;                                                     /* number of keys */
        if (!ssh_string(blob, size, &off, &p, &len))                 /* public key blob */
                return -EBADMSG;
        off = 0;
        size = len;
        if (!ssh_string(p, size, &off, &p, &len))
                return -EBADMSG;
        *ret_type = strndup((const char *) p, len);
        if (!*ret_type)
                return -ENOMEM;
        *ret_encrypted = !(cipher_len == 4 && memcmp(cipher, "none", 4) == 0);
        return 0;
}

int ssh_key_check(const char *path, char **ret_error) {
        static const char rsa_reason[] =
                "RSA keys cannot be used: Debian's libssh2 1.10 signs RSA only with SHA-1 (ssh-rsa), "
                "which OpenSSH refuses; use an ed25519 or ECDSA key (ssh-keygen -t ed25519)";
        _cleanup_free_ char *text = NULL, *type = NULL;
        bool encrypted = false;
        size_t size;
        int r;

        r = read_small_file(path, &text, &size);
        if (r < 0)
                return asprintf(ret_error, "cannot read the key %s: %s", path, strerror(-r)) < 0 ? -ENOMEM : r;

        if (strstr(text, "-----BEGIN RSA PRIVATE KEY-----"))
                return asprintf(ret_error, "%s is an RSA key. %s", path, rsa_reason) < 0 ? -ENOMEM : -EINVAL;
        if (strstr(text, "-----BEGIN DSA PRIVATE KEY-----"))
                return asprintf(ret_error, "%s is a DSA key, which OpenSSH no longer accepts; use an ed25519 or ECDSA key",
                                path) < 0 ? -ENOMEM : -EINVAL;
        if (strstr(text, "-----BEGIN EC PRIVATE KEY-----")) {
                if (strstr(text, "ENCRYPTED"))
                        goto encrypted;
                return 0;
        }

        r = openssh_key_type(text, &type, &encrypted);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return asprintf(ret_error, "%s is not an OpenSSH private key (ed25519 or ECDSA expected)", path) < 0 ? -ENOMEM : -EINVAL;
        if (streq(type, "ssh-rsa") || strneq(type, "rsa-", 4))
                return asprintf(ret_error, "%s is an RSA key. %s", path, rsa_reason) < 0 ? -ENOMEM : -EINVAL;
        if (!streq(type, "ssh-ed25519") && !strneq(type, "ecdsa-sha2-", 11))
                return asprintf(ret_error, "%s is a key of type %s; use an ed25519 or ECDSA key", path, type) < 0 ? -ENOMEM : -EINVAL;
        if (encrypted)
                goto encrypted;
        return 0;

encrypted:
        return asprintf(ret_error, "%s is protected by a passphrase; gatewayd needs a key without one", path) < 0 ? -ENOMEM : -EINVAL;
}

/* ---- host entries ---- */

/* "name", "name:port", "[v6]" or "[v6]:port". A bare IPv6 address (several colons) is a name. */
static int parse_host_entry(const char *entry, unsigned default_port, char **ret_name, unsigned *ret_port) {
        const char *colon = NULL, *name_end;
        const char *name = entry;
        unsigned long port = default_port ?: 22;

        if (entry[0] == '[') {
                name = entry + 1;
                name_end = strchr(name, ']');
                if (!name_end)
                        return -EINVAL;
                if (name_end[1] == ':')
                        colon = name_end + 1;
                else if (name_end[1] != 0)
                        return -EINVAL;
        } else {
                colon = strchr(entry, ':');
                if (colon && strchr(colon + 1, ':'))
                        colon = NULL;    /* an IPv6 address */
                name_end = colon ?: entry + strlen(entry);
        }
        if (colon) {
                char *end;

                errno = 0;
                port = strtoul(colon + 1, &end, 10);
                if (errno != 0 || *end != 0 || end == colon + 1 || port < 1 || port > 65535)
                        return -EINVAL;
        }
        if (name_end == name)
                return -EINVAL;
        *ret_name = strndup(name, name_end - name);
        if (!*ret_name)
                return -ENOMEM;
        *ret_port = (unsigned) port;
        return 0;
}

/* ---- teardown and state ---- */

static void upload_free(Upload *u) {
        if (!u)
                return;
        safe_close(u->fd);
        free(u->local_path);
        free(u->remote);
        free(u->buf);
        free(u->message);
        free(u);
}

static void session_kick(SshSession *s) {
        if (s->kick)
                (void) sd_event_source_set_enabled(s->kick, SD_EVENT_ONESHOT);
}

static void upload_finish(SshSession *s, Upload *u, int error, char *message) {
        Upload **tail;

        u->next = NULL;
        u->error = error;
        if (message) {
                free(u->message);
                u->message = message;
        }
        u->step = UPLOAD_DONE;
        /* Callbacks run from the kick handler, outside of libssh2 and of our callers. */
        for (tail = &s->finished; *tail; tail = &(*tail)->next)
                ;
        *tail = u;
        session_kick(s);
}

static void session_drop_connection(SshSession *s) {
        /* Shut the socket down first: every close libssh2 then tries fails at once (recv sees
         * EOF, send EPIPE) instead of waiting for the peer, so nothing here can block or leak
         * on EAGAIN. */
        if (s->fd >= 0)
                (void) shutdown(s->fd, SHUT_RDWR);
        while (s->uploads) {
                Upload *u = s->uploads;

                s->uploads = u->next;
                u->next = NULL;
                if (u->handle && s->sftp)
                        (void) libssh2_sftp_close_handle(u->handle);
                u->handle = NULL;
                if (u->flush_handle && s->sftp_flush)
                        (void) libssh2_sftp_close_handle(u->flush_handle);
                u->flush_handle = NULL;
                upload_finish(s, u, -ECONNRESET,
                              strdup("the connection to the node was lost during the upload"));
        }
        if (s->sftp)
                (void) libssh2_sftp_shutdown(s->sftp);
        s->sftp = NULL;
        if (s->sftp_flush)
                (void) libssh2_sftp_shutdown(s->sftp_flush);
        s->sftp_flush = NULL;
        if (s->channel)
                (void) libssh2_channel_free(s->channel);
        s->channel = NULL;
        if (s->ssh)
                (void) libssh2_session_free(s->ssh);
        s->ssh = NULL;
        s->io = sd_event_source_disable_unref(s->io);
        s->fd = safe_close(s->fd);
        s->resolve_source = sd_event_source_disable_unref(s->resolve_source);
        s->resolve_fd = safe_close(s->resolve_fd);
        if (s->addrs)
                freeaddrinfo(s->addrs);
        s->addrs = s->addr_cur = NULL;
        s->out_len = 0;
        s->send_owner = SENDER_NONE;
}

static void session_set_state(SshSession *s, SshNodeState state, const char *reason) {
        if (s->state == state && s->state_reported)
                return;
        s->state = state;
        s->state_reported = true;
        if (s->cb.state_changed)
                s->cb.state_changed(s, state, reason, s->userdata);
}

static int arm_timer(SshSession *s, usec_t when) {
        int r;

        r = sd_event_source_set_time(s->timer, when);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

/* An attempt failed or a connection was lost: drop it, report, and retry later. A refused node
 * is retried only at the backoff cap (someone has to fix known_hosts or authorized_keys). */
_printf_(3, 4)
static void session_fail(SshSession *s, SshNodeState state, const char *format, ...) {
        _cleanup_free_ char *reason = NULL;
        bool was_up = s->phase == PHASE_UP;
        usec_t delay;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&reason, format, ap) < 0)
                reason = NULL;
        va_end(ap);

        session_drop_connection(s);
        s->phase = PHASE_IDLE;

        if (state == SSH_NODE_REFUSED) {
                log_error("Node %s refused: %s", s->host_entry, strna(reason));
                delay = s->backoff_max;
        } else if (was_up) {
                /* A connection that worked is tried again at once; backoff only after that. */
                log_warning("Node %s: connection lost: %s; reconnecting", s->host_entry, strna(reason));
                s->backoff = s->backoff_min;
                delay = 0;
        } else {
                log_warning("Node %s unreachable: %s; next attempt in %.1f s", s->host_entry, strna(reason),
                            (double) s->backoff / USEC_PER_SEC);
                delay = s->backoff;
                s->backoff = MIN(s->backoff * 2, s->backoff_max);
        }
        session_set_state(s, state, reason);
        if (arm_timer(s, now_usec(CLOCK_MONOTONIC) + delay) < 0)
                log_error("Node %s: cannot arm the retry timer", s->host_entry);
}

/* ---- driving libssh2 ---- */

static int session_update_io(SshSession *s) {
        uint32_t events = 0;
        int dirs;

        if (!s->io)
                return 0;
        if (s->phase == PHASE_TCP)
                events = EPOLLOUT;
        else if (s->ssh) {
                dirs = libssh2_session_block_directions(s->ssh);
                if (dirs & LIBSSH2_SESSION_BLOCK_INBOUND)
                        events |= EPOLLIN;
                if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
                        events |= EPOLLOUT;
                /* Up, we always listen: the node may speak at any time. */
                if (s->phase == PHASE_UP)
                        events |= EPOLLIN;
                if (events == 0)
                        events = EPOLLIN;
        }
        return sd_event_source_set_io_events(s->io, events);
}

static const char *ssh_error(SshSession *s) {
        char *msg = NULL;

        if (!s->ssh)
                return "no session";
        libssh2_session_last_error(s->ssh, &msg, NULL, 0);
        return msg ?: "unknown error";
}

static int hostkey_mask(int type) {
        switch (type) {
        case LIBSSH2_HOSTKEY_TYPE_ED25519:
                return LIBSSH2_KNOWNHOST_KEY_ED25519;
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
                return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
                return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
                return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
        case LIBSSH2_HOSTKEY_TYPE_RSA:
                return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
        default:
                return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
        }
}

static const char *hostkey_type_name(int type) {
        switch (type) {
        case LIBSSH2_HOSTKEY_TYPE_ED25519:   return "ssh-ed25519";
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return "ecdsa-sha2-nistp256";
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return "ecdsa-sha2-nistp384";
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ecdsa-sha2-nistp521";
        case LIBSSH2_HOSTKEY_TYPE_RSA:       return "ssh-rsa";
        default:                             return "unknown";
        }
}

/* Verifies the node's host key against known_hosts, as OpenSSH would for "host" or "[host]:port".
 * Returns 0 when it matches; otherwise the node has been failed as refused. */
static int session_check_hostkey(SshSession *s) {
        LIBSSH2_KNOWNHOSTS *kh = NULL;
        struct libssh2_knownhost *found = NULL;
        const char *key, *hash;
        char fingerprint[64] = "?";
        size_t len;
        int type, r, check;

        key = libssh2_session_hostkey(s->ssh, &len, &type);
        if (!key) {
                session_fail(s, SSH_NODE_REFUSED, "the node sent no host key");
                return -EPROTO;
        }
        hash = libssh2_hostkey_hash(s->ssh, LIBSSH2_HOSTKEY_HASH_SHA256);
        if (hash) {
                int n = EVP_EncodeBlock((unsigned char *) fingerprint, (const unsigned char *) hash, 32);

                while (n > 0 && fingerprint[n - 1] == '=')
                        fingerprint[--n] = 0;
        }

        kh = libssh2_knownhost_init(s->ssh);
        if (!kh) {
                session_fail(s, SSH_NODE_UNREACHABLE, "out of memory");
                return -ENOMEM;
        }
        r = libssh2_knownhost_readfile(kh, s->known_hosts, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
        if (r < 0) {
                libssh2_knownhost_free(kh);
                session_fail(s, SSH_NODE_REFUSED,
                             "cannot read ssh.knownHosts %s, so the host key %s SHA256:%s cannot be verified; not logging in",
                             s->known_hosts, hostkey_type_name(type), fingerprint);
                return -ENOENT;
        }
        check = libssh2_knownhost_checkp(kh, s->name, (int) s->port, key, len,
                                         LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | hostkey_mask(type),
                                         &found);
        libssh2_knownhost_free(kh);
        switch (check) {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH:
                return 0;
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
                session_fail(s, SSH_NODE_REFUSED,
                             "HOST KEY MISMATCH: the node presented %s SHA256:%s, which does not match its entry in %s "
                             "(a changed key, or someone in between); not logging in",
                             hostkey_type_name(type), fingerprint, s->known_hosts);
                return -EPERM;
        case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
                session_fail(s, SSH_NODE_REFUSED,
                             "unknown host key: %s%s%s%.0u is not listed in %s (the node presented %s SHA256:%s); not logging in",
                             s->port == 22 ? "" : "[", s->name, s->port == 22 ? "" : "]:", s->port == 22 ? 0 : s->port,
                             s->known_hosts, hostkey_type_name(type), fingerprint);
                return -EPERM;
        default:
                session_fail(s, SSH_NODE_REFUSED, "cannot check the host key against %s: %s",
                             s->known_hosts, ssh_error(s));
                return -EPERM;
        }
}

static void session_up(SshSession *s) {
        s->phase = PHASE_UP;
        s->backoff = s->backoff_min;
        s->last_rx = now_usec(CLOCK_MONOTONIC);
        s->last_rx_realtime = now_usec(CLOCK_REALTIME);
        s->next_keepalive = s->last_rx + s->keepalive_interval;
        (void) arm_timer(s, s->next_keepalive);
        log_info("Node %s is up", s->host_entry);
        session_set_state(s, SSH_NODE_UP, NULL);
}

/* One step of connecting after the TCP connection is there. Returns 1 to go on, 0 when blocked. */
static int session_step_connecting(SshSession *s) {
        int r;

        switch (s->phase) {
        case PHASE_HANDSHAKE:
                r = libssh2_session_handshake(s->ssh, s->fd);
                if (r == LIBSSH2_ERROR_EAGAIN)
                        return 0;
                if (r < 0) {
                        session_fail(s, SSH_NODE_UNREACHABLE, "SSH handshake failed: %s", ssh_error(s));
                        return -EPROTO;
                }
                if (session_check_hostkey(s) < 0)
                        return -EPERM;
                s->phase = PHASE_AUTH;
                return 1;

        case PHASE_AUTH:
                r = libssh2_userauth_publickey_fromfile_ex(s->ssh, s->user, strlen(s->user), NULL, s->key, NULL);
                if (r == LIBSSH2_ERROR_EAGAIN)
                        return 0;
                if (r == LIBSSH2_ERROR_AUTHENTICATION_FAILED || r == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED ||
                    r == LIBSSH2_ERROR_FILE || r == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED) {
                        session_fail(s, SSH_NODE_REFUSED, "the node did not accept the key %s for user %s: %s",
                                     s->key, s->user, ssh_error(s));
                        return -EPERM;
                }
                if (r < 0) {
                        session_fail(s, SSH_NODE_UNREACHABLE, "authentication: %s", ssh_error(s));
                        return -EPROTO;
                }
                s->phase = PHASE_CHANNEL;
                return 1;

        case PHASE_CHANNEL:
                s->channel = libssh2_channel_open_session(s->ssh);
                if (!s->channel) {
                        if (libssh2_session_last_errno(s->ssh) == LIBSSH2_ERROR_EAGAIN)
                                return 0;
                        session_fail(s, SSH_NODE_UNREACHABLE, "cannot open a channel: %s", ssh_error(s));
                        return -EPROTO;
                }
                s->phase = PHASE_EXEC;
                return 1;

        case PHASE_EXEC:
                r = libssh2_channel_exec(s->channel, s->command);
                if (r == LIBSSH2_ERROR_EAGAIN)
                        return 0;
                if (r < 0) {
                        session_fail(s, SSH_NODE_UNREACHABLE, "cannot start \"%s\" on the node: %s", s->command, ssh_error(s));
                        return -EPROTO;
                }
                session_up(s);
                return 1;

        default:
                return 0;
        }
}

static int upload_step(SshSession *s, Upload *u);
static int upload_flush_step(SshSession *s, Upload *u);

/* libssh2 1.10 encrypts a packet once; when the socket takes only part of it, the rest must be
 * sent by the very call that made it (same channel, same buffer): any other call that sends in
 * the meantime (another channel's write, a window adjustment in a read, a keepalive) fails with
 * LIBSSH2_ERROR_BAD_USE. libssh2 says a packet is pending by LIBSSH2_SESSION_BLOCK_OUTBOUND
 * (set when it is saved, cleared once it is out), so the sender that left it is remembered and
 * the others wait for it. */
static bool may_send(SshSession *s, Sender who) {
        return s->send_owner == SENDER_NONE || s->send_owner == who;
}

static void sent(SshSession *s, Sender who) {
        if (libssh2_session_block_directions(s->ssh) & LIBSSH2_SESSION_BLOCK_OUTBOUND)
                s->send_owner = who;
        else if (s->send_owner == who)
                s->send_owner = SENDER_NONE;
}

static int pump_write(SshSession *s) {
        int progress = 0;
        ssize_t n;

        while (s->out_len > 0 && may_send(s, SENDER_SERVE_WRITE)) {
                n = libssh2_channel_write(s->channel, s->out, s->out_len);
                sent(s, SENDER_SERVE_WRITE);
                if (n == LIBSSH2_ERROR_EAGAIN)
                        break;
                if (n < 0) {
                        session_fail(s, SSH_NODE_UNREACHABLE, "writing to the node: %s", ssh_error(s));
                        return -EIO;
                }
                memmove(s->out, s->out + n, s->out_len - n);
                s->out_len -= n;
                progress = 1;
        }
        return progress;
}

static int pump_read(SshSession *s) {
        char buf[64 * 1024];
        int progress = 0;
        ssize_t n;

        /* A read may send a window adjustment. */
        if (!may_send(s, SENDER_SERVE_READ))
                return 0;
        for (;;) {
                n = libssh2_channel_read(s->channel, buf, sizeof buf);
                sent(s, SENDER_SERVE_READ);
                if (n == LIBSSH2_ERROR_EAGAIN || n == 0)
                        break;
                if (n < 0) {
                        session_fail(s, SSH_NODE_UNREACHABLE, "reading from the node: %s", ssh_error(s));
                        return -EIO;
                }
                progress = 1;
                if (s->cb.data)
                        s->cb.data(s, buf, n, s->userdata);
                if (s->phase != PHASE_UP)
                        return -ECONNRESET;
                if (!may_send(s, SENDER_SERVE_READ))
                        return progress;
        }
        /* The forced command's stderr: logged, and read so that its window never fills. */
        while (may_send(s, SENDER_SERVE_READ)) {
                n = libssh2_channel_read_stderr(s->channel, buf, sizeof buf - 1);
                sent(s, SENDER_SERVE_READ);
                if (n <= 0)
                        break;
                buf[n] = 0;
                log_warning("Node %s: %s", s->host_entry, strstrip_newline(buf));
                progress = 1;
        }
        if (libssh2_channel_eof(s->channel)) {
                session_fail(s, SSH_NODE_UNREACHABLE, "the node closed the serve channel");
                return -ECONNRESET;
        }
        return progress;
}

/* While up: write what is queued, read what came, move the upload on; until nothing moves. */
static void session_pump(SshSession *s) {
        int progress;

        do {
                int r;

                progress = 0;
                r = pump_write(s);
                if (r < 0)
                        return;
                progress |= r;
                r = pump_read(s);
                if (r < 0)
                        return;
                progress |= r;
                if (s->uploads && may_send(s, SENDER_FLUSH)) {
                        r = upload_flush_step(s, s->uploads);
                        sent(s, SENDER_FLUSH);
                        progress |= r;
                }
                if (s->uploads && may_send(s, SENDER_UPLOAD)) {
                        r = upload_step(s, s->uploads);
                        if (s->phase != PHASE_UP)
                                return;
                        sent(s, SENDER_UPLOAD);
                        progress |= r > 0;
                }
        } while (progress);
}

/* ---- connecting ---- */

static int session_start_handshake(SshSession *s) {
        s->ssh = libssh2_session_init_ex(NULL, NULL, NULL, s);
        if (!s->ssh)
                return -ENOMEM;
        libssh2_session_set_blocking(s->ssh, 0);
        /* want_reply: OpenSSH answers every keepalive, which is how a silent node is noticed. */
        libssh2_keepalive_config(s->ssh, 1, (unsigned) MAX(s->keepalive_interval / USEC_PER_SEC, 2));
        s->phase = PHASE_HANDSHAKE;
        return 0;
}

static void session_process(SshSession *s);

static int session_connect_next(SshSession *s);

static int on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        SshSession *s = userdata;

        if (s->phase == PHASE_TCP) {
                int error = 0;
                socklen_t l = sizeof error;

                if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &l) < 0)
                        error = errno;
                if (error != 0) {
                        s->io = sd_event_source_disable_unref(s->io);
                        s->fd = safe_close(s->fd);
                        log_debug("Node %s: connect: %s", s->host_entry, strerror(error));
                        s->addr_cur = s->addr_cur->ai_next;
                        if (!s->addr_cur) {
                                session_fail(s, SSH_NODE_UNREACHABLE, "cannot connect to %s port %u: %s",
                                             s->name, s->port, strerror(error));
                                return 0;
                        }
                        (void) session_connect_next(s);
                        return 0;
                }
                if (session_start_handshake(s) < 0) {
                        session_fail(s, SSH_NODE_UNREACHABLE, "out of memory");
                        return 0;
                }
        } else if (revents & EPOLLIN) {
                s->last_rx = now_usec(CLOCK_MONOTONIC);
                s->last_rx_realtime = now_usec(CLOCK_REALTIME);
        }
        session_process(s);
        return 0;
}

static int session_connect_next(SshSession *s) {
        int r;

        for (; s->addr_cur; s->addr_cur = s->addr_cur->ai_next) {
                struct addrinfo *a = s->addr_cur;

                s->fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (s->fd < 0)
                        continue;
                (void) setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &(int) { 1 }, sizeof(int));
                if (s->send_buffer > 0)
                        (void) setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &s->send_buffer, sizeof(int));
                if (connect(s->fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
                        log_debug("Node %s: connect: %m", s->host_entry);
                        s->fd = safe_close(s->fd);
                        continue;
                }
                r = sd_event_add_io(s->event, &s->io, s->fd, EPOLLOUT, on_io, s);
                if (r < 0) {
                        session_fail(s, SSH_NODE_UNREACHABLE, "cannot watch the socket: %s", strerror(-r));
                        return r;
                }
                (void) sd_event_source_set_description(s->io, "ssh-session");
                s->phase = PHASE_TCP;
                return 0;
        }
        session_fail(s, SSH_NODE_UNREACHABLE, "cannot connect to %s port %u", s->name, s->port);
        return -ECONNREFUSED;
}

/* Name resolution that cannot be done numerically runs in a thread of its own, so that a slow
 * resolver never stalls the loop; the answer comes back over a datagram socket. */
typedef struct ResolveQuery {
        char *name, *port;
        int fd;
} ResolveQuery;

typedef struct ResolveAnswer {
        int error;
        struct addrinfo *ai;
} ResolveAnswer;

static void *resolve_thread(void *p) {
        ResolveQuery *q = p;
        ResolveAnswer a = {};
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };

        a.error = getaddrinfo(q->name, q->port, &hints, &a.ai);
        if (send(q->fd, &a, sizeof a, MSG_NOSIGNAL) != (ssize_t) sizeof a && a.ai)
                freeaddrinfo(a.ai);   /* the session is gone */
        close(q->fd);
        free(q->name);
        free(q->port);
        free(q);
        return NULL;
}

static int on_resolved(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        SshSession *s = userdata;
        ResolveAnswer a = {};

        if (recv(fd, &a, sizeof a, MSG_DONTWAIT) != (ssize_t) sizeof a)
                a.error = EAI_SYSTEM;
        s->resolve_source = sd_event_source_disable_unref(s->resolve_source);
        s->resolve_fd = safe_close(s->resolve_fd);
        if (a.error != 0) {
                session_fail(s, SSH_NODE_UNREACHABLE, "cannot resolve %s: %s", s->name, gai_strerror(a.error));
                return 0;
        }
        s->addrs = s->addr_cur = a.ai;
        (void) session_connect_next(s);
        return 0;
}

static int session_resolve(SshSession *s) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
        char port[8];
        int pair[2], r;
        ResolveQuery *q;
        pthread_attr_t attr;
        pthread_t t;

        snprintf(port, sizeof port, "%u", s->port);
        r = getaddrinfo(s->name, port, &hints, &s->addrs);
        if (r == 0) {
                s->addr_cur = s->addrs;
                return session_connect_next(s);
        }
        if (r != EAI_NONAME) {
                session_fail(s, SSH_NODE_UNREACHABLE, "cannot resolve %s: %s", s->name, gai_strerror(r));
                return -EINVAL;
        }

        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) < 0)
                goto fail;
        q = calloc(1, sizeof *q);
        if (!q || !(q->name = strdup(s->name)) || !(q->port = strdup(port))) {
                if (q) {
                        free(q->name);
                        free(q);
                }
                safe_close(pair[0]);
                safe_close(pair[1]);
                errno = ENOMEM;
                goto fail;
        }
        q->fd = pair[1];
        s->resolve_fd = pair[0];
        r = sd_event_add_io(s->event, &s->resolve_source, s->resolve_fd, EPOLLIN, on_resolved, s);
        if (r < 0) {
                close(q->fd);
                free(q->name);
                free(q->port);
                free(q);
                errno = -r;
                goto fail;
        }
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        r = pthread_create(&t, &attr, resolve_thread, q);
        pthread_attr_destroy(&attr);
        if (r != 0) {
                close(q->fd);
                free(q->name);
                free(q->port);
                free(q);
                errno = r;
                goto fail;
        }
        s->phase = PHASE_RESOLVING;
        return 0;

fail:
        session_fail(s, SSH_NODE_UNREACHABLE, "cannot resolve %s: %m", s->name);
        return -errno;
}

static void session_attempt(SshSession *s) {
        if (s->state != SSH_NODE_UNREACHABLE && s->state != SSH_NODE_REFUSED)
                session_set_state(s, SSH_NODE_CONNECTING, NULL);
        (void) arm_timer(s, now_usec(CLOCK_MONOTONIC) + s->connect_timeout);
        (void) session_resolve(s);
}

static void session_process(SshSession *s) {
        int r;

        while (s->phase >= PHASE_HANDSHAKE && s->phase < PHASE_UP) {
                r = session_step_connecting(s);
                if (r <= 0)
                        break;
        }
        if (s->phase == PHASE_UP)
                session_pump(s);
        if (s->phase >= PHASE_HANDSHAKE)
                (void) session_update_io(s);
}

static void session_keepalive(SshSession *s) {
        usec_t now = now_usec(CLOCK_MONOTONIC);
        int next = 0, r;

        if (now > s->last_rx + 3 * s->keepalive_interval) {
                session_fail(s, SSH_NODE_UNREACHABLE, "no answer from the node for %.0f s",
                             (double) (now - s->last_rx) / USEC_PER_SEC);
                return;
        }
        /* libssh2 sends keepalives from a buffer on its stack: one that the socket did not take
         * whole could never be finished (see may_send()). So only into an idle socket; while
         * anything else is sent, the node's answers to it show that it is there. */
        if (s->send_owner == SENDER_NONE && !s->uploads && s->out_len == 0 &&
            !(libssh2_session_block_directions(s->ssh) & LIBSSH2_SESSION_BLOCK_OUTBOUND)) {
                r = libssh2_keepalive_send(s->ssh, &next);
                if (r < 0 && r != LIBSSH2_ERROR_EAGAIN) {
                        session_fail(s, SSH_NODE_UNREACHABLE, "keepalive: %s", ssh_error(s));
                        return;
                }
                if (libssh2_session_block_directions(s->ssh) & LIBSSH2_SESSION_BLOCK_OUTBOUND) {
                        session_fail(s, SSH_NODE_UNREACHABLE, "the connection to the node is stuck");
                        return;
                }
        }
        s->next_keepalive = now + s->keepalive_interval;
        (void) arm_timer(s, s->next_keepalive);
        session_process(s);
}

static int on_timer(sd_event_source *source, usec_t usec, void *userdata) {
        SshSession *s = userdata;

        switch (s->phase) {
        case PHASE_IDLE:
                session_attempt(s);
                break;
        case PHASE_UP:
                session_keepalive(s);
                break;
        default:
                session_fail(s, SSH_NODE_UNREACHABLE, "no connection within %.0f s",
                             (double) s->connect_timeout / USEC_PER_SEC);
                break;
        }
        return 0;
}

static int on_kick(sd_event_source *source, void *userdata) {
        SshSession *s = userdata;

        if (s->phase == PHASE_UP) {
                session_pump(s);
                if (s->phase == PHASE_UP)
                        (void) session_update_io(s);
        }
        /* Done callbacks last: they may queue more work (which kicks again). */
        while (s->finished) {
                Upload *u = s->finished;

                s->finished = u->next;
                if (u->done)
                        u->done(s, u->error, u->message, u->size, u->userdata);
                upload_free(u);
        }
        return 0;
}

/* ---- uploads ---- */

static char *sftp_error_message(SshSession *s, const char *what) {
        char *m = NULL;
        unsigned long e = s->sftp ? libssh2_sftp_last_error(s->sftp) : 0;
        int rc = s->ssh ? libssh2_session_last_errno(s->ssh) : 0, k;

        if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL)
                k = asprintf(&m, "%s: the node's SFTP server answered status %lu%s", what, e,
                             e == LIBSSH2_FX_PERMISSION_DENIED ? " (permission denied)" :
                             e == LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM ? " (no space)" : "");
        else
                k = asprintf(&m, "%s: %s", what, ssh_error(s));
        return k < 0 ? NULL : m;
}

static void upload_fail(Upload *u, char *message) {
        free(u->message);
        u->message = message;
        if (u->error == 0)
                u->error = -EIO;
        u->step = u->handle ? UPLOAD_FAIL_CLOSE : UPLOAD_FAIL_UNLINK;
}

/* The flusher of an upload (see UPLOAD_FLUSH_EVERY); it never fails the upload: without it
 * only the final fsync does the work. Returns 1 when it moved. */
static int upload_flush_step(SshSession *s, Upload *u) {
        bool writing = u->step == UPLOAD_WRITE;
        int r;

        switch (u->flush_step) {
        case FLUSH_NONE:
                if (!writing || u->size < 2 * UPLOAD_FLUSH_EVERY || u->sent < UPLOAD_FLUSH_EVERY)
                        return 0;
                if (!s->sftp_flush) {
                        s->sftp_flush = libssh2_sftp_init(s->ssh);
                        if (!s->sftp_flush) {
                                if (libssh2_session_last_errno(s->ssh) != LIBSSH2_ERROR_EAGAIN)
                                        u->flush_step = FLUSH_CLOSED;
                                return 0;
                        }
                }
                u->flush_step = FLUSH_OPEN;
                return 1;

        case FLUSH_OPEN:
                u->flush_handle = libssh2_sftp_open_ex(s->sftp_flush, u->remote, strlen(u->remote),
                                                       LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
                if (!u->flush_handle) {
                        if (libssh2_session_last_errno(s->ssh) == LIBSSH2_ERROR_EAGAIN)
                                return 0;
                        u->flush_step = FLUSH_CLOSED;
                        return 1;
                }
                u->flush_step = FLUSH_IDLE;
                return 1;

        case FLUSH_IDLE:
                if (!writing) {
                        u->flush_step = FLUSH_CLOSE;
                        return 1;
                }
                if (u->sent - u->flushed_at < UPLOAD_FLUSH_EVERY)
                        return 0;
                u->flushed_at = u->sent;
                u->flush_step = FLUSH_SYNC;
                return 1;

        case FLUSH_SYNC:
                r = libssh2_sftp_fsync(u->flush_handle);
                if (r == LIBSSH2_ERROR_EAGAIN)
                        return 0;
                u->flush_step = FLUSH_IDLE;
                return 1;

        case FLUSH_CLOSE:
                r = libssh2_sftp_close_handle(u->flush_handle);
                if (r == LIBSSH2_ERROR_EAGAIN)
                        return 0;
                u->flush_handle = NULL;
                u->flush_step = FLUSH_CLOSED;
                return 1;

        default:
                return 0;
        }
}

static bool upload_flush_busy(Upload *u) {
        return u->flush_step != FLUSH_NONE && u->flush_step != FLUSH_CLOSED;
}

/* Returns 1 when the upload moved, 0 when blocked or finished (and popped). */
static int upload_step(SshSession *s, Upload *u) {
        ssize_t n;
        int r;

        if (!s->sftp) {
                s->sftp = libssh2_sftp_init(s->ssh);
                if (!s->sftp) {
                        if (libssh2_session_last_errno(s->ssh) == LIBSSH2_ERROR_EAGAIN)
                                return 0;
                        u->error = -EPROTO;
                        u->message = sftp_error_message(s, "cannot start SFTP on the node");
                        s->uploads = u->next;
                        upload_finish(s, u, u->error, NULL);
                        return 1;
                }
        }

        /* Past the writes, the flusher finishes (its fsync, its handle) before the rest. */
        if (u->step > UPLOAD_WRITE && upload_flush_busy(u))
                return 0;

        switch (u->step) {
        case UPLOAD_OPEN:
                u->handle = libssh2_sftp_open_ex(s->sftp, u->remote, strlen(u->remote),
                                                 LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC,
                                                 0600, LIBSSH2_SFTP_OPENFILE);
                if (!u->handle) {
                        if (libssh2_session_last_errno(s->ssh) == LIBSSH2_ERROR_EAGAIN)
                                return 0;
                        u->error = -EACCES;
                        upload_fail(u, sftp_error_message(s, "cannot create the partial file on the node"));
                        return 1;
                }
                u->step = UPLOAD_WRITE;
                return 1;

        case UPLOAD_WRITE:
                /* libssh2 returns from sftp_write as soon as the first of its 30000-byte packets
                 * is acknowledged and wants the rest of the same buffer next time; only bytes
                 * beyond what it has sent become new packets. So keep UPLOAD_WINDOW bytes past the
                 * acknowledged point in every call (topped up from the file, compacted once per
                 * window): the pipeline stays full, like OpenSSH's 64 × 32 KiB requests, instead
                 * of draining at the end of each buffer. */
                if (!u->eof && u->buf_len - u->buf_off < UPLOAD_WINDOW) {
                        if (u->buf_off >= UPLOAD_WINDOW) {
                                memmove(u->buf, u->buf + u->buf_off, u->buf_len - u->buf_off);
                                u->buf_len -= u->buf_off;
                                u->buf_off = 0;
                        }
                        n = read(u->fd, u->buf + u->buf_len, UPLOAD_BUFFER - u->buf_len);
                        if (n < 0) {
                                u->error = -errno;
                                upload_fail(u, strdup("reading the local file failed"));
                                return 1;
                        }
                        if (n == 0)
                                u->eof = true;
                        u->buf_len += n;
                }
                if (u->buf_off == u->buf_len) {
                        if (!u->eof)
                                return 1;
                        if (u->sent != u->size) {
                                u->error = -EIO;
                                upload_fail(u, strdup("the local file changed size during the upload"));
                                return 1;
                        }
                        u->step = UPLOAD_FSYNC;
                        return 1;
                }
                n = libssh2_sftp_write(u->handle, u->buf + u->buf_off, u->buf_len - u->buf_off);
                if (n == LIBSSH2_ERROR_EAGAIN)
                        return 0;
                if (n < 0) {
                        u->error = -EIO;
                        upload_fail(u, sftp_error_message(s, "writing to the node failed"));
                        return 1;
                }
                u->buf_off += n;
                u->sent += n;
                return 1;

        case UPLOAD_FSYNC:
                r = libssh2_sftp_fsync(u->handle);
                if (r == LIBSSH2_ERROR_EAGAIN)
                        return 0;
                if (r < 0) {
                        u->error = -EIO;
                        upload_fail(u, sftp_error_message(s, "syncing the partial file on the node failed"));
                        return 1;
                }
                u->step = UPLOAD_CLOSE;
                return 1;

        case UPLOAD_CLOSE:
                r = libssh2_sftp_close_handle(u->handle);
                if (r == LIBSSH2_ERROR_EAGAIN)
                        return 0;
                u->handle = NULL;
                if (r < 0) {
                        u->error = -EIO;
                        upload_fail(u, sftp_error_message(s, "closing the partial file on the node failed"));
                        return 1;
                }
                s->uploads = u->next;
                upload_finish(s, u, 0, NULL);
                return 1;

        case UPLOAD_FAIL_CLOSE:
                r = libssh2_sftp_close_handle(u->handle);
                if (r == LIBSSH2_ERROR_EAGAIN)
                        return 0;
                u->handle = NULL;
                u->step = UPLOAD_FAIL_STATVFS;
                return 1;

        case UPLOAD_FAIL_STATVFS: {
                LIBSSH2_SFTP_STATVFS st;

                /* sftp-server (SFTP v3) reports ENOSPC as a plain FAILURE: look at the disk. */
                r = libssh2_sftp_statvfs(s->sftp, ".", 1, &st);
                if (r == LIBSSH2_ERROR_EAGAIN)
                        return 0;
                if (r == 0 && st.f_bavail * st.f_frsize < u->size - u->sent + SSH_UPLOAD_CHUNK) {
                        char *m = NULL;

                        u->error = -ENOSPC;
                        if (asprintf(&m, "the node's image directory is full: %llu bytes free, %llu of %llu bytes "
                                     "were written (%s)",
                                     (unsigned long long) (st.f_bavail * st.f_frsize),
                                     (unsigned long long) u->sent, (unsigned long long) u->size,
                                     strna(u->message)) >= 0) {
                                free(u->message);
                                u->message = m;
                        }
                }
                u->step = UPLOAD_FAIL_UNLINK;
                return 1;
        }

        case UPLOAD_FAIL_UNLINK:
                r = libssh2_sftp_unlink_ex(s->sftp, u->remote, strlen(u->remote));
                if (r == LIBSSH2_ERROR_EAGAIN)
                        return 0;
                s->uploads = u->next;
                upload_finish(s, u, u->error, NULL);
                return 1;

        default:
                return 0;
        }
}

int ssh_session_upload(SshSession *s, const char *local_path, const char *remote_name,
                       SshUploadDone done, void *userdata) {
        Upload *u, **tail;
        struct stat st;

        if (s->phase != PHASE_UP)
                return -ENOTCONN;
        if (!remote_name[0] || strchr(remote_name, '/'))
                return -EINVAL;
        u = calloc(1, sizeof *u);
        if (!u)
                return -ENOMEM;
        u->fd = open(local_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (u->fd < 0 || fstat(u->fd, &st) < 0) {
                int r = -errno;

                upload_free(u);
                return r;
        }
        u->size = st.st_size;
        u->local_path = strdup(local_path);
        u->buf = malloc(UPLOAD_BUFFER);
        if (!u->local_path || !u->buf || asprintf(&u->remote, "%s.partial", remote_name) < 0) {
                u->remote = NULL;
                upload_free(u);
                return -ENOMEM;
        }
        (void) posix_fadvise(u->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        u->done = done;
        u->userdata = userdata;
        for (tail = &s->uploads; *tail; tail = &(*tail)->next)
                ;
        *tail = u;
        session_kick(s);
        return 0;
}

/* ---- object ---- */

int ssh_session_new(SshSession **ret, sd_event *event, const SshSessionOptions *o,
                    const SshSessionCallbacks *callbacks, void *userdata) {
        static bool initialized = false;
        _cleanup_(ssh_session_freep) SshSession *s = NULL;
        int r;

        if (!o->host || !o->user || !o->key)
                return -EINVAL;
        if (!initialized) {
                if (libssh2_init(0) != 0)
                        return -EIO;
                initialized = true;
        }
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->fd = s->resolve_fd = -1;
        s->event = sd_event_ref(event);
        s->cb = *callbacks;
        s->userdata = userdata;
        r = parse_host_entry(o->host, o->default_port, &s->name, &s->port);
        if (r < 0)
                return r;
        s->host_entry = strdup(o->host);
        s->user = strdup(o->user);
        s->key = strdup(o->key);
        s->known_hosts = strdup(o->known_hosts ?: "/etc/ssh/ssh_known_hosts");
        s->command = strdup(o->command ?: "gateway-worker connect");
        if (!s->host_entry || !s->user || !s->key || !s->known_hosts || !s->command)
                return -ENOMEM;
        s->connect_timeout = o->connect_timeout ?: 15 * USEC_PER_SEC;
        s->keepalive_interval = o->keepalive_interval ?: 15 * USEC_PER_SEC;
        s->backoff_min = o->backoff_min ?: USEC_PER_SEC;
        s->backoff_max = MAX(o->backoff_max ?: 60 * USEC_PER_SEC, s->backoff_min);
        s->backoff = s->backoff_min;
        s->send_buffer = o->send_buffer;
        s->state = SSH_NODE_CONNECTING;

        /* 1 ms accuracy: sd-event's default (250 ms) would delay every reconnect by up to that. */
        r = sd_event_add_time(event, &s->timer, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_timer, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        r = sd_event_add_defer(event, &s->kick, on_kick, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(s->kick, SD_EVENT_OFF);
        *ret = TAKE_PTR(s);
        return 0;
}

SshSession *ssh_session_free(SshSession *s) {
        if (!s)
                return NULL;
        session_drop_connection(s);
        while (s->finished) {
                Upload *u = s->finished;

                s->finished = u->next;
                upload_free(u);
        }
        sd_event_source_disable_unref(s->timer);
        sd_event_source_disable_unref(s->kick);
        sd_event_unref(s->event);
        free(s->host_entry);
        free(s->name);
        free(s->user);
        free(s->key);
        free(s->known_hosts);
        free(s->command);
        free(s->out);
        return mfree(s);
}

int ssh_session_start(SshSession *s) {
        if (s->phase != PHASE_IDLE)
                return -EBUSY;
        return arm_timer(s, 0);   /* on the loop, not from within the caller */
}

SshNodeState ssh_session_get_state(SshSession *s) {
        return s->state;
}

const char *ssh_session_get_host(SshSession *s) {
        return s->host_entry;
}

usec_t ssh_session_get_last_contact(SshSession *s) {
        return s->last_rx;
}

usec_t ssh_session_get_last_contact_realtime(SshSession *s) {
        return s->last_rx_realtime;
}

int ssh_session_send(SshSession *s, const void *p, size_t n) {
        if (s->phase != PHASE_UP)
                return -ENOTCONN;
        if (s->out_len + n > s->out_size) {
                size_t want = MAX(s->out_len + n, s->out_size * 2);
                char *q = realloc(s->out, want);

                if (!q)
                        return -ENOMEM;
                s->out = q;
                s->out_size = want;
        }
        memcpy(s->out + s->out_len, p, n);
        s->out_len += n;
        session_kick(s);
        return 0;
}
