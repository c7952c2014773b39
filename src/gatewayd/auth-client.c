/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "auth-client.h"
#include "auth-token.h"
#include "db.h"
#include "log.h"
#include "manager.h"
#include "service.h"
#include "time-util.h"

void client_infos_free(ClientInfo *l, size_t n) {
        for (size_t i = 0; l && i < n; i++)
                free(l[i].name);
        free(l);
}

/* Names are labels for people ("my laptop"): printable, one line. */
static bool client_name_is_valid(const char *s) {
        if (!*s || strlen(s) > CLIENT_NAME_MAX)
                return false;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

int client_parse_request(json_object *o, unsigned *ret_scopes, char **ret_name, GwError *e) {
        json_object *v;
        int r;

        *ret_scopes = 0;
        *ret_name = NULL;
        if (!json_object_is_type(o, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "Expected a JSON object.");
        json_object_object_foreach(o, key, val) {
                if (!streq(key, "scope") && !streq(key, "name"))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "Unknown field '%s'.", key);
                (void) val;
        }
        if (json_object_object_get_ex(o, "scope", &v)) {
                r = token_parse_scope(v, ret_scopes, e);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(o, "name", &v)) {
                if (!json_object_is_type(v, json_type_string) || !client_name_is_valid(json_object_get_string(v)))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                            "name: expected a non-empty string of at most %u printable characters.",
                                            CLIENT_NAME_MAX);
                *ret_name = strdup(json_object_get_string(v));
                if (!*ret_name)
                        return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        }
        return 0;
}

static int client_count(Manager *m, uid_t uid, unsigned *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        r = db_prepare(m->db, "SELECT COUNT(*) FROM clients WHERE uid = ?", &s);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, uid);
        if (sqlite3_step(s) != SQLITE_ROW)
                return -EIO;
        *ret = (unsigned) sqlite3_column_int64(s, 0);
        return 0;
}

static void json_add_time(json_object *o, const char *key, uint64_t usec) {
        char buf[32];

        if (usec == 0)
                json_object_object_add(o, key, NULL);
        else
                json_object_object_add(o, key, json_object_new_string(format_timestamp_iso(buf, sizeof(buf), usec)));
}

static json_object *client_info_to_json(const ClientInfo *c) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "clientId", json_object_new_string(c->id));
        json_object_object_add(o, "name", c->name ? json_object_new_string(c->name) : NULL);
        json_object_object_add(o, "scope", token_scope_to_json(c->scopes));
        json_add_time(o, "createdAt", c->created_usec);
        json_add_time(o, "lastUsedAt", c->last_used_usec);
        return o;
}

int client_create(Manager *m, const Caller *c, unsigned scopes, const char *name, json_object **ret, GwError *e) {
        char hex[2 * CLIENT_ID_BYTES + 1], secret[TOKEN_SECRET_LEN + 1];
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        ClientInfo info = { .uid = c->uid, .gid = c->gid, .name = (char *) name, .created_usec = now_realtime_usec() };
        uint8_t hash[32];
        unsigned n;
        json_object *o;
        int r;

        if (caller_is_network(c))
                return gw_error_set(e, GW_ERROR_ACCESS_DENIED, "Clients can only be created by local users.");
        info.scopes = scopes ?: AUTH_SCOPE_ALL;
        r = client_count(m, c->uid, &n);
        if (r < 0)
                return gw_error_set_errno(e, r, "Failed to count clients.");
        if (n >= CLIENTS_PER_USER_MAX)
                return gw_error_set(e, GW_ERROR_LIMIT_EXCEEDED, "At most %u clients per user; remove some first.",
                                    CLIENTS_PER_USER_MAX);
        if (token_secret_generate(hex, CLIENT_ID_BYTES, secret, hash) < 0)
                return gw_error_set_errno(e, -EIO, "Failed to make a secret.");
        snprintf(info.id, sizeof(info.id), CLIENT_PREFIX "%s", hex);

        r = db_prepare(m->db, "INSERT INTO clients (id, uid, gid, name, hash, scope, created_usec) VALUES (?, ?, ?, ?, ?, ?, ?)", &s);
        if (r < 0) {
                explicit_bzero(secret, sizeof(secret));
                return gw_error_set_errno(e, r, "Failed to store the client.");
        }
        sqlite3_bind_text(s, 1, info.id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, c->uid);
        sqlite3_bind_int64(s, 3, c->gid);
        if (name)
                sqlite3_bind_text(s, 4, name, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(s, 4);
        sqlite3_bind_blob(s, 5, hash, sizeof(hash), SQLITE_STATIC);
        sqlite3_bind_int64(s, 6, info.scopes);
        sqlite3_bind_int64(s, 7, (sqlite3_int64) info.created_usec);
        r = sqlite3_step(s);
        if (r != SQLITE_DONE) {
                explicit_bzero(secret, sizeof(secret));
                return gw_error_set_errno(e, db_errno(r), "Failed to store the client: %s", sqlite3_errmsg(m->db));
        }

        log_info("UID %u created client %s.", (unsigned) c->uid, info.id);
        o = client_info_to_json(&info);
        if (o)
                json_object_object_add(o, "clientSecret", json_object_new_string(secret));
        explicit_bzero(secret, sizeof(secret));
        if (!o)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        *ret = o;
        return 0;
}

static int client_read_row(sqlite3_stmt *s, ClientInfo *c) {
        *c = (ClientInfo) {
                .uid = (uid_t) sqlite3_column_int64(s, 1),
                .gid = (gid_t) sqlite3_column_int64(s, 2),
                .scopes = (unsigned) sqlite3_column_int64(s, 4) & AUTH_SCOPE_ALL,
                .created_usec = (uint64_t) sqlite3_column_int64(s, 5),
                .last_used_usec = (uint64_t) sqlite3_column_int64(s, 6),
        };
        snprintf(c->id, sizeof(c->id), "%s", (const char *) sqlite3_column_text(s, 0));
        if (sqlite3_column_type(s, 3) == SQLITE_TEXT && !(c->name = strdup((const char *) sqlite3_column_text(s, 3))))
                return -ENOMEM;
        return 0;
}

#define CLIENT_COLUMNS "id, uid, gid, name, scope, created_usec, last_used_usec"

int client_list_infos(Manager *m, uid_t uid, ClientInfo **ret, size_t *ret_n, GwError *e) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        ClientInfo *l = NULL;
        size_t n = 0;
        int r;

        r = db_prepare(m->db, "SELECT " CLIENT_COLUMNS " FROM clients WHERE uid = ? ORDER BY created_usec", &s);
        if (r < 0)
                return gw_error_set_errno(e, r, "Failed to list clients.");
        sqlite3_bind_int64(s, 1, uid);
        while ((r = sqlite3_step(s)) == SQLITE_ROW) {
                ClientInfo *t = reallocarray(l, n + 1, sizeof(ClientInfo));

                if (!t) {
                        client_infos_free(l, n);
                        return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
                }
                l = t;
                if (client_read_row(s, &l[n++]) < 0) {
                        client_infos_free(l, n);
                        return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
                }
        }
        if (r != SQLITE_DONE) {
                client_infos_free(l, n);
                return gw_error_set_errno(e, db_errno(r), "Failed to list clients.");
        }
        *ret = l;
        *ret_n = n;
        return 0;
}

int client_list(Manager *m, uid_t uid, json_object **ret, GwError *e) {
        ClientInfo *l = NULL;
        size_t n = 0;
        json_object *a;
        int r;

        r = client_list_infos(m, uid, &l, &n, e);
        if (r < 0)
                return r;
        a = json_object_new_array();
        for (size_t i = 0; a && i < n; i++)
                json_object_array_add(a, client_info_to_json(&l[i]));
        client_infos_free(l, n);
        if (!a)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        *ret = a;
        return 0;
}

int client_owner(Manager *m, const char *id, uid_t *ret_uid) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        r = db_prepare(m->db, "SELECT uid FROM clients WHERE id = ?", &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        r = sqlite3_step(s);
        if (r == SQLITE_DONE)
                return -ENOENT;
        if (r != SQLITE_ROW)
                return db_errno(r);
        *ret_uid = (uid_t) sqlite3_column_int64(s, 0);
        return 0;
}

int client_remove(Manager *m, const char *id, GwError *e) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r;

        r = db_prepare(m->db, "DELETE FROM clients WHERE id = ?", &s);
        if (r < 0)
                return gw_error_set_errno(e, r, "Failed to remove the client.");
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        r = sqlite3_step(s);
        if (r != SQLITE_DONE)
                return gw_error_set_errno(e, db_errno(r), "Failed to remove the client.");
        if (sqlite3_changes(m->db) == 0)
                return gw_error_set(e, GW_ERROR_NOT_FOUND, "No client '%s'.", id);
        /* What it was given goes with it: a leaked secret is dealt with by removing its client. */
        r = token_revoke_client(m, id);
        if (r < 0)
                return gw_error_set_errno(e, r, "Client removed, but its tokens could not be revoked.");
        log_info("Client %s removed.", id);
        return 0;
}

static void client_touch(Manager *m, const char *id, uint64_t now) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;

        if (db_prepare(m->db, "UPDATE clients SET last_used_usec = ? WHERE id = ?", &s) < 0)
                return;
        sqlite3_bind_int64(s, 1, (sqlite3_int64) now);
        sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
        (void) sqlite3_step(s);
}

int client_authenticate(Manager *m, const char *id, const char *secret, ClientInfo *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        const void *hash;
        int r;

        r = db_prepare(m->db, "SELECT " CLIENT_COLUMNS ", hash FROM clients WHERE id = ?", &s);
        if (r < 0)
                return r;
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        r = sqlite3_step(s);
        if (r == SQLITE_DONE)
                return -EACCES;
        if (r != SQLITE_ROW)
                return db_errno(r);
        hash = sqlite3_column_blob(s, 7);
        if (!hash || sqlite3_column_bytes(s, 7) != 32)
                return -EACCES;   /* not a row gatewayd wrote */
        r = token_secret_check(secret, hash);
        if (r < 0)
                return r;
        r = client_read_row(s, ret);
        if (r < 0)
                return r;
        free(TAKE_PTR(ret->name));
        client_touch(m, id, now_realtime_usec());
        return 0;
}
