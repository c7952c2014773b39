/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <gnutls/crypto.h>
#include <pwd.h>
#include <sys/random.h>
#include <time.h>

#include <systemd/sd-event.h>

#include "auth-token.h"
#include "db.h"
#include "hashmap.h"
#include "http-server.h"
#include "log.h"
#include "manager.h"
#include "service.h"

#define TOKEN_SOURCE "token"   /* AuthSource.name, Identity.source */
#define TOKEN_PREFIX "gwt_"
#define TOKEN_ID_BYTES 8        /* 16 hex digits: the row's key, not secret */
#define TOKEN_SECRET_BYTES 32   /* 256 bits */

/* Verified tokens are remembered (by id: hash, owner, scope, expiry, the owner's name), so that a
 * request costs a hash and a compare instead of a database query and a passwd lookup (which
 * dominated a request over TLS). gatewayd is the only writer of the table: revoking drops the
 * entry at once. An entry is reread after TOKEN_CACHE_USEC anyway, so that rows changed behind
 * gatewayd's back (an administrator's sqlite3 shell) or a renamed account take effect soon. */
#define TOKEN_CACHE_USEC (60 * USEC_PER_SEC)
#define TOKEN_CACHE_MAX 4096U

typedef struct TokenCacheEntry {
        char id[2 * TOKEN_ID_BYTES + 1];
        uint8_t hash[32];
        uid_t uid;
        gid_t gid;
        unsigned scopes;
        uint64_t expires_usec;  /* CLOCK_REALTIME */
        usec_t cached_usec;     /* CLOCK_MONOTONIC */
        char *name;
} TokenCacheEntry;

static void token_cache_entry_free(TokenCacheEntry *e) {
        if (!e)
                return;
        free(e->name);
        free(e);
}

static void token_cache_forget(Manager *m, const char *id) {
        if (m->token_cache)
                token_cache_entry_free(hashmap_remove(m->token_cache, id));
}

static void token_cache_clear(Manager *m) {
        TokenCacheEntry *e;

        if (!m->token_cache)
                return;
        HASHMAP_FOREACH(e, m->token_cache)
                token_cache_entry_free(e);
        m->token_cache = hashmap_free(m->token_cache);
}

static uint64_t realtime_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void hex_encode(const uint8_t *b, size_t n, char *out) {
        static const char hex[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = hex[b[i] >> 4];
                out[2 * i + 1] = hex[b[i] & 15];
        }
        out[2 * n] = 0;
}

/* base64url without padding: the secret stays one word in headers and shells. */
static void base64url_encode(const uint8_t *b, size_t n, char *out) {
        static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t o = 0;
        uint32_t acc = 0;
        int bits = 0;

        for (size_t i = 0; i < n; i++) {
                acc = acc << 8 | b[i];
                bits += 8;
                while (bits >= 6) {
                        bits -= 6;
                        out[o++] = t[(acc >> bits) & 63];
                }
        }
        if (bits > 0)
                out[o++] = t[(acc << (6 - bits)) & 63];
        out[o] = 0;
}

/* GnuTLS's one-shot hash (gatewayd links GnuTLS for the TLS listener anyway): no algorithm
 * lookup per call, unlike OpenSSL 3's EVP_Digest(), which showed in the per-request cost. */
static int sha256(const char *s, size_t n, uint8_t out[32]) {
        return gnutls_hash_fast(GNUTLS_DIG_SHA256, s, n, out) < 0 ? -EIO : 0;
}

/* Compares in time independent of where the bytes differ. */
static bool memeq_const_time(const uint8_t *a, const uint8_t *b, size_t n) {
        volatile uint8_t d = 0;

        for (size_t i = 0; i < n; i++)
                d |= a[i] ^ b[i];
        return d == 0;
}

int token_secret_generate(char *id, size_t id_bytes, char secret[static TOKEN_SECRET_LEN + 1], uint8_t hash[static 32]) {
        uint8_t id_raw[32], secret_raw[TOKEN_SECRET_BYTES];

        assert(id_bytes <= sizeof(id_raw));
        if (getrandom(id_raw, id_bytes, 0) != (ssize_t) id_bytes ||
            getrandom(secret_raw, sizeof(secret_raw), 0) != sizeof(secret_raw))
                return -EIO;
        hex_encode(id_raw, id_bytes, id);
        base64url_encode(secret_raw, sizeof(secret_raw), secret);
        explicit_bzero(secret_raw, sizeof(secret_raw));
        return sha256(secret, strlen(secret), hash);
}

int token_secret_check(const char *secret, const uint8_t hash[static 32]) {
        uint8_t h[32];

        if (sha256(secret, strlen(secret), h) < 0)
                return -EIO;
        return memeq_const_time(h, hash, sizeof(h)) ? 0 : -EACCES;
}

json_object *token_scope_to_json(unsigned scopes) {
        json_object *a = json_object_new_array();

        for (unsigned bit = 1; a && bit & AUTH_SCOPE_ALL; bit <<= 1)
                if (scopes & bit)
                        json_object_array_add(a, json_object_new_string(auth_scope_to_string(bit)));
        return a;
}

static void json_add_time(json_object *o, const char *key, uint64_t usec) {
        char buf[32];

        json_object_object_add(o, key, json_object_new_string(format_timestamp_iso(buf, sizeof(buf), usec)));
}

/* Expired tokens are useless: forget them (and their hashes) rather than keep them forever. */
static void token_prune(Manager *m) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;

        if (db_prepare(m->db, "DELETE FROM tokens WHERE expires_usec <= ?", &s) < 0)
                return;
        sqlite3_bind_int64(s, 1, (sqlite3_int64) realtime_usec());
        (void) sqlite3_step(s);
}

int token_parse_request(json_object *o, uint64_t *ret_expires_in, unsigned *ret_scopes, GwError *e) {
        json_object *v;

        *ret_expires_in = 0;
        *ret_scopes = 0;
        if (!json_object_is_type(o, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "Expected a JSON object.");
        json_object_object_foreach(o, key, val) {
                if (!streq(key, "expiresIn") && !streq(key, "scope"))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "Unknown field '%s'.", key);
                (void) val;
        }
        if (json_object_object_get_ex(o, "expiresIn", &v)) {
                int64_t n = json_object_get_int64(v);

                if (!json_object_is_type(v, json_type_int) || n <= 0)
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "expiresIn: expected a positive number of seconds.");
                *ret_expires_in = (uint64_t) n;
        }
        if (json_object_object_get_ex(o, "scope", &v))
                return token_parse_scope(v, ret_scopes, e);
        return 0;
}

int token_parse_scope(json_object *v, unsigned *ret_scopes, GwError *e) {
        *ret_scopes = 0;
        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                    "scope: expected a non-empty list of \"read\", \"submit\", \"pull\".");
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *s = json_object_array_get_idx(v, i);
                unsigned bit;

                if (!json_object_is_type(s, json_type_string) ||
                    auth_scope_from_string(json_object_get_string(s), &bit) < 0)
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                            "scope: unknown scope '%s' (expected \"read\", \"submit\" or \"pull\").",
                                            json_object_get_string(s));
                *ret_scopes |= bit;
        }
        return 0;
}

static int token_count(Manager *m, uid_t uid, unsigned *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        r = db_prepare(m->db, "SELECT COUNT(*) FROM tokens WHERE uid = ? AND client_id IS NULL", &s);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, uid);
        if (sqlite3_step(s) != SQLITE_ROW)
                return -EIO;
        *ret = (unsigned) sqlite3_column_int64(s, 0);
        return 0;
}

/* A client keeps at most this many live tokens: each fetch mints one (an SDK fetches one per
 * process and hour), the oldest make room. */
#define CLIENT_TOKENS_MAX 100

static void token_evict_client_tokens(Manager *m, const char *client_id) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;

        if (db_prepare(m->db, "DELETE FROM tokens WHERE id IN (SELECT id FROM tokens WHERE client_id = ?"
                              " ORDER BY created_usec DESC LIMIT -1 OFFSET ?)", &s) < 0)
                return;
        sqlite3_bind_text(s, 1, client_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, CLIENT_TOKENS_MAX - 1);
        if (sqlite3_step(s) == SQLITE_DONE && sqlite3_changes(m->db) > 0)
                token_cache_clear(m);
}

int token_issue(Manager *m, uid_t uid, gid_t gid, uint64_t expires_in_sec, unsigned scopes, const char *client_id,
                char **ret_token, char ret_id[static 2 * TOKEN_ID_BYTES + 1], uint64_t *ret_expires, GwError *e) {
        uint8_t id_bytes[TOKEN_ID_BYTES], secret_bytes[TOKEN_SECRET_BYTES], hash[32];
        char id[2 * TOKEN_ID_BYTES + 1], secret[(TOKEN_SECRET_BYTES * 4 + 2) / 3 + 1];
        _cleanup_free_ char *token = NULL;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        uint64_t now = realtime_usec(), expires;
        int r;

        if (client_id) {
                /* Clients fetch often (token_create() and token_list() prune for users). */
                token_prune(m);
                token_evict_client_tokens(m, client_id);
        }
        if (getrandom(id_bytes, sizeof(id_bytes), 0) != sizeof(id_bytes) ||
            getrandom(secret_bytes, sizeof(secret_bytes), 0) != sizeof(secret_bytes))
                return gw_error_set_errno(e, -EIO, "Failed to get random bytes.");
        hex_encode(id_bytes, sizeof(id_bytes), id);
        base64url_encode(secret_bytes, sizeof(secret_bytes), secret);
        explicit_bzero(secret_bytes, sizeof(secret_bytes));
        if (sha256(secret, strlen(secret), hash) < 0)
                return gw_error_set_errno(e, -EIO, "Failed to hash the token.");
        if (asprintf(&token, TOKEN_PREFIX "%s_%s", id, secret) < 0)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        explicit_bzero(secret, sizeof(secret));

        expires = now + expires_in_sec * 1000000;
        r = db_prepare(m->db, "INSERT INTO tokens (id, uid, gid, hash, scope, created_usec, expires_usec, client_id)"
                              " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", &s);
        if (r < 0)
                return gw_error_set_errno(e, r, "Failed to store the token.");
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, uid);
        sqlite3_bind_int64(s, 3, gid);
        sqlite3_bind_blob(s, 4, hash, sizeof(hash), SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, scopes);
        sqlite3_bind_int64(s, 6, (sqlite3_int64) now);
        sqlite3_bind_int64(s, 7, (sqlite3_int64) expires);
        if (client_id)
                sqlite3_bind_text(s, 8, client_id, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(s, 8);
        r = sqlite3_step(s);
        if (r != SQLITE_DONE) {
                explicit_bzero(token, strlen(token));
                return gw_error_set_errno(e, db_errno(r), "Failed to store the token: %s", sqlite3_errmsg(m->db));
        }
        memcpy(ret_id, id, sizeof(id));
        *ret_token = TAKE_PTR(token);
        *ret_expires = expires;
        return 0;
}

int token_create(Manager *m, const Caller *c, uint64_t expires_in_sec, unsigned scopes, json_object **ret, GwError *e) {
        char id[2 * TOKEN_ID_BYTES + 1];
        _cleanup_free_ char *token = NULL;
        uint64_t expires;
        unsigned n;
        json_object *o;
        int r;

        if (caller_is_network(c))
                return gw_error_set(e, GW_ERROR_ACCESS_DENIED, "Tokens can only be created by local users.");
        if (expires_in_sec == 0)
                expires_in_sec = m->config->token_expiry_sec;
        if (expires_in_sec > m->config->token_expiry_max_sec)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "expiresIn: at most %llu seconds (TokenExpiryMax).",
                                    (unsigned long long) m->config->token_expiry_max_sec);
        if (scopes == 0)
                scopes = AUTH_SCOPE_ALL;

        token_prune(m);
        r = token_count(m, c->uid, &n);
        if (r < 0)
                return gw_error_set_errno(e, r, "Failed to count tokens.");
        if (n >= TOKENS_PER_USER_MAX)
                return gw_error_set(e, GW_ERROR_LIMIT_EXCEEDED, "At most %u tokens per user; revoke some first.",
                                    TOKENS_PER_USER_MAX);
        r = token_issue(m, c->uid, c->gid, expires_in_sec, scopes, NULL, &token, id, &expires, e);
        if (r < 0)
                return r;

        log_info("UID %u created token %s (expires in %llu s).", (unsigned) c->uid, id, (unsigned long long) expires_in_sec);
        o = json_object_new_object();
        if (!o) {
                explicit_bzero(token, strlen(token));
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        }
        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "token", json_object_new_string(token));
        json_add_time(o, "expiresAt", expires);
        json_object_object_add(o, "scope", token_scope_to_json(scopes));
        explicit_bzero(token, strlen(token));
        *ret = o;
        return 0;
}

int token_revoke_client(Manager *m, const char *client_id) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        r = db_prepare(m->db, "DELETE FROM tokens WHERE client_id = ?", &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, client_id, -1, SQLITE_STATIC);
        r = sqlite3_step(s);
        if (r != SQLITE_DONE)
                return db_errno(r);
        /* Rare (a client removed): forgetting every cached token is simpler than finding its. */
        token_cache_clear(m);
        return 0;
}

int token_list(Manager *m, uid_t uid, bool all, json_object **ret, GwError *e) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        json_object *a;
        int r;

        token_prune(m);
        r = db_prepare(m->db, all ? "SELECT id, uid, scope, created_usec, expires_usec, client_id FROM tokens ORDER BY created_usec"
                                  : "SELECT id, uid, scope, created_usec, expires_usec, client_id FROM tokens WHERE uid = ? ORDER BY created_usec",
                       &s);
        if (r < 0)
                return gw_error_set_errno(e, r, "Failed to list tokens.");
        if (!all)
                sqlite3_bind_int64(s, 1, uid);
        a = json_object_new_array();
        if (!a)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        while ((r = sqlite3_step(s)) == SQLITE_ROW) {
                json_object *o = json_object_new_object();

                json_object_object_add(o, "id", json_object_new_string((const char *) sqlite3_column_text(s, 0)));
                json_object_object_add(o, "uid", json_object_new_int64(sqlite3_column_int64(s, 1)));
                json_object_object_add(o, "scope", token_scope_to_json((unsigned) sqlite3_column_int64(s, 2)));
                json_add_time(o, "createdAt", (uint64_t) sqlite3_column_int64(s, 3));
                json_add_time(o, "expiresAt", (uint64_t) sqlite3_column_int64(s, 4));
                if (sqlite3_column_type(s, 5) == SQLITE_TEXT)
                        json_object_object_add(o, "clientId", json_object_new_string((const char *) sqlite3_column_text(s, 5)));
                json_object_array_add(a, o);
        }
        if (r != SQLITE_DONE) {
                json_object_put(a);
                return gw_error_set_errno(e, db_errno(r), "Failed to list tokens.");
        }
        *ret = a;
        return 0;
}

int token_list_infos(Manager *m, uid_t uid, TokenInfo **ret, size_t *ret_n, GwError *e) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        _cleanup_free_ TokenInfo *l = NULL;
        size_t n = 0;
        int r;

        token_prune(m);
        r = db_prepare(m->db, "SELECT id, scope, created_usec, expires_usec FROM tokens WHERE uid = ? ORDER BY created_usec", &s);
        if (r < 0)
                return gw_error_set_errno(e, r, "Failed to list tokens.");
        sqlite3_bind_int64(s, 1, uid);
        while ((r = sqlite3_step(s)) == SQLITE_ROW) {
                TokenInfo *t = reallocarray(l, n + 1, sizeof(TokenInfo));

                if (!t)
                        return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
                l = t;
                snprintf(l[n].id, sizeof(l[n].id), "%s", (const char *) sqlite3_column_text(s, 0));
                l[n].scopes = (unsigned) sqlite3_column_int64(s, 1);
                l[n].created_usec = (uint64_t) sqlite3_column_int64(s, 2);
                l[n].expires_usec = (uint64_t) sqlite3_column_int64(s, 3);
                n++;
        }
        if (r != SQLITE_DONE)
                return gw_error_set_errno(e, db_errno(r), "Failed to list tokens.");
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}

int token_owner(Manager *m, const char *id, uid_t *ret_uid) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        r = db_prepare(m->db, "SELECT uid FROM tokens WHERE id = ? AND expires_usec > ?", &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64) realtime_usec());
        r = sqlite3_step(s);
        if (r == SQLITE_DONE)
                return -ENOENT;
        if (r != SQLITE_ROW)
                return db_errno(r);
        *ret_uid = (uid_t) sqlite3_column_int64(s, 0);
        return 0;
}

int token_revoke(Manager *m, const char *id, GwError *e) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        r = db_prepare(m->db, "DELETE FROM tokens WHERE id = ?", &s);
        if (r < 0)
                return gw_error_set_errno(e, r, "Failed to revoke the token.");
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        r = sqlite3_step(s);
        if (r != SQLITE_DONE)
                return gw_error_set_errno(e, db_errno(r), "Failed to revoke the token.");
        token_cache_forget(m, id);
        if (sqlite3_changes(m->db) == 0)
                return gw_error_set(e, GW_ERROR_NOT_FOUND, "No token '%s'.", id);
        log_info("Token %s revoked.", id);
        return 0;
}

/* ---- the identity source ---- */

static bool token_match(HttpRequest *req) {
        const char *t = auth_bearer_token(req);

        return t && strneq(t, TOKEN_PREFIX, strlen(TOKEN_PREFIX));
}

/* Splits "gwt_<id>_<secret>"; id is 16 hex digits. */
static int token_split(const char *t, char id[static 2 * TOKEN_ID_BYTES + 1], const char **ret_secret) {
        const char *p = t + strlen(TOKEN_PREFIX);

        if (strlen(p) < 2 * TOKEN_ID_BYTES + 2 || p[2 * TOKEN_ID_BYTES] != '_')
                return -EINVAL;
        for (size_t i = 0; i < 2 * TOKEN_ID_BYTES; i++)
                if (!strchr("0123456789abcdef", p[i]) || !p[i])
                        return -EINVAL;
        memcpy(id, p, 2 * TOKEN_ID_BYTES);
        id[2 * TOKEN_ID_BYTES] = 0;
        *ret_secret = p + 2 * TOKEN_ID_BYTES + 1;
        return 0;
}

/* Reads token id from the database into a new cache entry: 0, -ENOENT, or another error. */
static int token_load(Manager *m, const char *id, TokenCacheEntry **ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        TokenCacheEntry *e;
        struct passwd *pw;
        const void *hash;
        int r;

        r = db_prepare(m->db, "SELECT uid, gid, hash, scope, expires_usec FROM tokens WHERE id = ?", &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        r = sqlite3_step(s);
        if (r == SQLITE_DONE)
                return -ENOENT;
        if (r != SQLITE_ROW)
                return db_errno(r);
        hash = sqlite3_column_blob(s, 2);
        if (!hash || sqlite3_column_bytes(s, 2) != 32)
                return -ENOENT;   /* not a row gatewayd wrote: no token matches it */

        e = calloc(1, sizeof(TokenCacheEntry));
        if (!e)
                return -ENOMEM;
        snprintf(e->id, sizeof(e->id), "%s", id);
        memcpy(e->hash, hash, sizeof(e->hash));
        e->uid = (uid_t) sqlite3_column_int64(s, 0);
        e->gid = (gid_t) sqlite3_column_int64(s, 1);
        e->scopes = (unsigned) sqlite3_column_int64(s, 3) & AUTH_SCOPE_ALL;
        e->expires_usec = (uint64_t) sqlite3_column_int64(s, 4);
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &e->cached_usec);
        /* The name serves the Admins list; an account deleted since keeps acting by uid only. */
        pw = getpwuid(e->uid);
        if (pw)
                e->name = strdup(pw->pw_name);
        else if (asprintf(&e->name, "%u", (unsigned) e->uid) < 0)
                e->name = NULL;
        if (!e->name) {
                token_cache_entry_free(e);
                return -ENOMEM;
        }
        *ret = e;
        return 0;
}

static int token_lookup(Manager *m, const char *id, TokenCacheEntry **ret) {
        TokenCacheEntry *e = m->token_cache ? hashmap_get(m->token_cache, id) : NULL;
        usec_t now;
        int r;

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (e && now < e->cached_usec + TOKEN_CACHE_USEC) {
                *ret = e;
                return 0;
        }
        token_cache_forget(m, id);
        r = token_load(m, id, &e);
        if (r < 0)
                return r;
        if (!m->token_cache || hashmap_size(m->token_cache) >= TOKEN_CACHE_MAX) {
                token_cache_clear(m);
                m->token_cache = hashmap_new();
        }
        if (!m->token_cache || hashmap_put(m->token_cache, e->id, e) < 0) {
                token_cache_entry_free(e);
                return -ENOMEM;
        }
        *ret = e;
        return 0;
}

static void token_verify(HttpRequest *req, AuthVerified done) {
        char id[2 * TOKEN_ID_BYTES + 1];
        TokenCacheEntry *e;
        uint8_t hash[32];
        const char *secret;
        int r;

        if (token_split(auth_bearer_token(req), id, &secret) < 0)
                return done(req, -EACCES, NULL, "Malformed token.");
        if (sha256(secret, strlen(secret), hash) < 0)
                return done(req, -EIO, NULL, "Failed to hash the token.");

        r = token_lookup(req->manager, id, &e);
        if (r == -ENOENT)
                return done(req, -EACCES, NULL, "Invalid or revoked token.");
        if (r < 0)
                return done(req, r, NULL, "Token database unavailable.");
        if (!memeq_const_time(e->hash, hash, sizeof(hash)))
                return done(req, -EACCES, NULL, "Invalid or revoked token.");
        if (e->expires_usec <= realtime_usec())
                return done(req, -EACCES, NULL, "Token expired.");

        done(req, 0, &(Identity) {
                .uid = e->uid,
                .gid = e->gid,
                .name = e->name,
                .source = TOKEN_SOURCE,
                .scopes = e->scopes,
        }, NULL);
}

static void token_source_done(Manager *m) {
        token_cache_clear(m);
}

const AuthSource auth_source_token = {
        .name = TOKEN_SOURCE,
        .challenge = "Bearer realm=\"gatewayd\"",
        .match = token_match,
        .verify = token_verify,
        .done = token_source_done,
};
