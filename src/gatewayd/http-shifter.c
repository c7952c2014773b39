/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shifter's image gateway API (imagegw/shifter_imagegw/api.py) under /api/, so that an unchanged
 * shifterimg can talk to gatewayd: its routes, record fields, states and error shapes (see
 * docs/shifter-api.md). The caller is whoever http_request_caller() says (peer credentials on the
 * unix socket), never a name from the request; Shifter's per-platform "admins" and polkit decide
 * who administers images. */
#include <pwd.h>

#include "http-api.h"
#include "http-shifter.h"
#include "image-pull.h"
#include "image-registry.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "polkit.h"
#include "reference.h"
#include "registry-logins.h"
#include "time-util.h"

#define ACTION_MANAGE_IMAGES "org.gatewayd.manage-images"
#define SHIFTER_TAG_MAX 512
/* Shifter fills every key its record lacks with this string (api.py create_response). */
#define SHIFTER_MISSING "MISSING"

/* What a handler keeps across a polkit check. */
typedef struct ShifterCall {
        char *system;
        char *tag;
        bool admin;
} ShifterCall;

static void shifter_call_free(void *p) {
        ShifterCall *c = p;

        if (c) {
                free(c->system);
                free(c->tag);
                free(c);
        }
}

/* Shifter's not_found(): {"status":404,"error":…,"message":"Not Found: <url>"}, HTTP 404, for
 * every refusal: shifterimg only tells 200 from anything else. */
static void shifter_reply_error(HttpRequest *req, const char *error) {
        const char *host = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        _cleanup_free_ char *message = NULL;
        json_object *o = json_object_new_object();

        if (!o || asprintf(&message, "Not Found: http://%s%s", host ?: "localhost", req->url) < 0) {
                json_object_put(o);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        json_object_object_add(o, "status", json_object_new_int(404));
        json_object_object_add(o, "error", json_object_new_string(error));
        json_object_object_add(o, "message", json_object_new_string(message));
        http_request_reply_json(req, MHD_HTTP_NOT_FOUND, o);
}

static void shifter_reply_errorf(HttpRequest *req, const char *format, ...) _printf_(2, 3);
static void shifter_reply_errorf(HttpRequest *req, const char *format, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        shifter_reply_error(req, s);
}

static ConfigPlatform *shifter_system(HttpRequest *req, const char *system) {
        ConfigPlatform *pl = config_platform_find(req->manager->config, system);

        if (!pl)
                shifter_reply_errorf(req, "Unknown system '%s'", system);
        return pl;
}

/* shifterimg sends only [A-Za-z0-9_:.+@-] and '/' (ImageData.c); anything else is not a tag. */
static bool shifter_tag_is_valid(const char *tag) {
        size_t n = strlen(tag);

        if (n == 0 || n > SHIFTER_TAG_MAX || tag[0] == '/' || tag[n - 1] == '/' || strstr(tag, "//"))
                return false;
        for (const char *p = tag; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("_:.+@-/", *p)))
                        return false;
        return true;
}

/* Checks system, type and tag of /api/<mode>/<system>/<type>/<tag>/; returns the tag as Shifter
 * stores it (a docker tag without one gets ":latest", api.py) or NULL after replying. */
static char *shifter_image_tag(HttpRequest *req, char **captures, ConfigPlatform **ret_platform) {
        ConfigPlatform *pl = shifter_system(req, captures[0]);
        const char *type = captures[1], *tag = captures[2], *slash;
        char *s;

        if (!pl)
                return NULL;
        if (!streq(type, "docker")) {
                shifter_reply_errorf(req, "Unsupported image type '%s' (only docker images are served)", type);
                return NULL;
        }
        if (!shifter_tag_is_valid(tag)) {
                shifter_reply_error(req, "Invalid image tag");
                return NULL;
        }
        slash = strrchr(tag, '/');
        if (!strchr(slash ?: tag, ':') && !strchr(tag, '@')) {
                if (asprintf(&s, "%s:latest", tag) < 0)
                        s = NULL;
        } else
                s = strdup(tag);
        if (!s)
                http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        *ret_platform = pl;
        return s;
}

static const char *shifter_status_message(const Image *i) {
        if (i->status_message)
                return i->status_message;
        switch (i->status) {
        case IMAGE_PENDING:     return "Pull queued";
        case IMAGE_PULLING:     return "Pulling image";
        case IMAGE_CONVERSION:  return "Converting image";
        case IMAGE_TRANSFER:    return "Transferring image";
        case IMAGE_READY:       return "Image ready";
        case IMAGE_FAILURE:     return "Pull failed";
        case IMAGE_EXPIRED:     return "Image expired";
        default:                return "";
        }
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

/* ENV, ENTRY, WORKDIR as Shifter keeps them (Docker's config), from the image's metadata. */
static void shifter_add_meta(json_object *o, const Image *i) {
        json_object *meta = i->meta_path && i->status == IMAGE_READY ? json_object_from_file(i->meta_path) : NULL;
        json_object *env = NULL, *entry = NULL, *workdir = NULL, *a;

        if (meta) {
                (void) json_object_object_get_ex(meta, "env", &env);
                (void) json_object_object_get_ex(meta, "entrypoint", &entry);
                (void) json_object_object_get_ex(meta, "workdir", &workdir);
        }
        /* ENV: a list of "K=V" strings, the only thing the client accepts. */
        a = json_object_new_array();
        for (size_t k = 0; json_object_is_type(env, json_type_array) && k < json_object_array_length(env); k++) {
                json_object *v = json_object_array_get_idx(env, k);
                if (json_object_is_type(v, json_type_string))
                        json_object_array_add(a, json_object_get(v));
        }
        json_object_object_add(o, "ENV", meta ? a : json_object_new_string(SHIFTER_MISSING));
        if (!meta)
                json_object_put(a);
        /* ENTRY: Docker's Entrypoint as stored, a list or null. */
        if (!meta)
                json_object_object_add(o, "ENTRY", json_object_new_string(SHIFTER_MISSING));
        else if (json_object_is_type(entry, json_type_array) && json_object_array_length(entry) > 0)
                json_object_object_add(o, "ENTRY", json_object_get(entry));
        else
                json_object_object_add(o, "ENTRY", NULL);
        /* WORKDIR: absent (so "MISSING") when the image has none. */
        if (json_object_is_type(workdir, json_type_string) && json_object_get_string_len(workdir) > 0)
                json_object_object_add(o, "WORKDIR", json_object_get(workdir));
        else
                json_object_object_add(o, "WORKDIR", json_object_new_string(SHIFTER_MISSING));
        json_object_put(meta);
}

/* Shifter's record (api.py create_response): exactly these 13 keys. */
static json_object *shifter_record(Image *i) {
        json_object *o = json_object_new_object(), *tags = json_object_new_array(), *u = json_object_new_array(),
                    *g = json_object_new_array();
        _cleanup_strv_free_ char **l = NULL;

        if (!o || !tags || !u || !g) {
                json_object_put(o), json_object_put(tags), json_object_put(u), json_object_put(g);
                return NULL;
        }
        /* Tags point at an image once it is READY (Shifter: "[]" on a pull in flight). */
        if (i->status == IMAGE_READY) {
                size_t n;

                l = image_registry_tags(i);
                n = strv_length(l);
                if (n > 0)
                        qsort(l, n, sizeof(char *), compare_strings);
                for (char **t = l; t && *t; t++)
                        json_object_array_add(tags, json_object_new_string(*t));
        }
        for (size_t k = 0; i->private_image && k < i->n_acl_uids; k++)
                json_object_array_add(u, json_object_new_int64(i->acl_uids[k]));
        for (size_t k = 0; i->private_image && k < i->n_acl_gids; k++)
                json_object_array_add(g, json_object_new_int64(i->acl_gids[k]));

        json_object_object_add(o, "id", json_object_new_string(i->id));
        json_object_object_add(o, "system", json_object_new_string(i->platform));
        json_object_object_add(o, "itype", json_object_new_string("docker"));
        json_object_object_add(o, "tag", tags);
        json_object_object_add(o, "status", json_object_new_string(image_status_to_string(i->status)));
        json_object_object_add(o, "userACL", u);
        json_object_object_add(o, "groupACL", g);
        shifter_add_meta(o, i);
        json_object_object_add(o, "LABELS", json_object_new_string(SHIFTER_MISSING));
        /* A JSON double (json-c prints "1.0" for integral values): shifterimg ignores integers. */
        json_object_object_add(o, "last_pull", json_object_new_double((double) i->updated_usec / (double) USEC_PER_SEC));
        json_object_object_add(o, "status_message", json_object_new_string(shifter_status_message(i)));
        return o;
}

static void shifter_reply_record(HttpRequest *req, Image *i) {
        json_object *o = shifter_record(i);

        if (!o)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

/* GET /api/list/<system>/: {"list": [record…]}, the READY images the caller may read. */
void http_shifter_list(HttpRequest *req, char **captures) {
        ConfigPlatform *pl = shifter_system(req, captures[0]);
        _cleanup_free_ Image **l = NULL;
        json_object *o, *a;

        if (!pl)
                return;
        l = image_registry_list(req->manager, http_request_caller(req));
        a = json_object_new_array();
        if (!l || !a) {
                json_object_put(a);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        for (Image **i = l; *i; i++)
                if ((*i)->status == IMAGE_READY && streq((*i)->platform, pl->name)) {
                        json_object *r = shifter_record(*i);
                        if (r)
                                json_object_array_add(a, r);
                }
        o = json_object_new_object();
        if (!o) {
                json_object_put(a);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        json_object_object_add(o, "list", a);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

static Image *shifter_find(HttpRequest *req, ConfigPlatform *pl, const char *tag) {
        Image *i = image_registry_lookup_on(req->manager, pl->name, tag);

        /* Someone else's private image does not exist for this caller (Shifter: 404). */
        return i && image_is_visible(i, http_request_caller(req)) ? i : NULL;
}

/* GET /api/lookup/<system>/<type>/<tag>/: the READY record, or 404. */
void http_shifter_lookup(HttpRequest *req, char **captures) {
        ConfigPlatform *pl = NULL;
        _cleanup_free_ char *tag = shifter_image_tag(req, captures, &pl);
        Image *i;

        if (!tag)
                return;
        i = shifter_find(req, pl, tag);
        if (!i || i->status != IMAGE_READY)
                return shifter_reply_errorf(req, "image not found: %s", tag);
        /* A lookup is a use: it keeps the image from expiring (imagemngr.py). */
        image_mark_used(i);
        shifter_reply_record(req, i);
}

/* "1000,1001" as shifterimg sends it (a list of integers is taken too); ids <= 0 are dropped, as
 * the client drops them. */
static int parse_id_list(json_object *v, const char *field, uint32_t **ret, size_t *ret_n, char **error) {
        _cleanup_free_ uint32_t *l = NULL;
        size_t n = 0;

        if (json_object_is_type(v, json_type_null))
                return 0;
        if (json_object_is_type(v, json_type_string)) {
                const char *s = json_object_get_string(v);
                size_t len = json_object_get_string_len(v);

                l = calloc(len / 2 + 2, sizeof(uint32_t));
                if (!l)
                        return -ENOMEM;
                while (len > 0 && *s) {
                        char *end;
                        unsigned long long x;

                        while (*s == ' ')
                                s++;
                        /* a digit first: strtoull() would skip other white space and take a
                         * sign, and read "\t-18446744073709551615" as 1 */
                        if (*s < '0' || *s > '9')
                                return asprintf(error, "%s: expected comma-separated numeric ids", field) < 0 ? -ENOMEM : -EINVAL;
                        errno = 0;
                        x = strtoull(s, &end, 10);
                        while (*end == ' ')
                                end++;
                        if (errno != 0 || x >= UINT32_MAX || (*end != ',' && *end != 0))
                                return asprintf(error, "%s: expected comma-separated numeric ids", field) < 0 ? -ENOMEM : -EINVAL;
                        if (x > 0)
                                l[n++] = (uint32_t) x;
                        s = *end == ',' ? end + 1 : end;
                }
        } else if (json_object_is_type(v, json_type_array)) {
                size_t len = json_object_array_length(v);

                l = calloc(len + 1, sizeof(uint32_t));
                if (!l)
                        return -ENOMEM;
                for (size_t k = 0; k < len; k++) {
                        json_object *item = json_object_array_get_idx(v, k);
                        int64_t x = json_object_get_int64(item);

                        if (!json_object_is_type(item, json_type_int) || x < 0 || x >= UINT32_MAX)
                                return asprintf(error, "%s: expected numeric ids", field) < 0 ? -ENOMEM : -EINVAL;
                        if (x > 0)
                                l[n++] = (uint32_t) x;
                }
        } else
                return asprintf(error, "%s: expected a string of comma-separated ids", field) < 0 ? -ENOMEM : -EINVAL;
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}

void shifter_pull_body_done(ShifterPullBody *b) {
        b->uids = mfree(b->uids);
        b->gids = mfree(b->gids);
        b->n_uids = b->n_gids = 0;
        b->acl = false;
}

int shifter_pull_body_parse(const char *body, size_t size, ShifterPullBody *ret, char **ret_error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_(shifter_pull_body_done) ShifterPullBody b = {};
        int r;

        /* The body is optional (shifterimg sends none without ACLs); when there is one it is JSON,
         * whatever Content-Type says. Keys Shifter does not read are ignored, as Shifter does. */
        if (size > 0 && strspn(body, " \t\r\n") < size) {
                if (http_json_body_parse(body, size, &o, &e) < 0) {
                        *ret_error = strdup(e.message ?: "Malformed request body");
                        return *ret_error ? -EINVAL : -ENOMEM;
                }
                if (!json_object_is_type(o, json_type_object)) {
                        *ret_error = strdup("Request body must be a JSON object");
                        return *ret_error ? -EINVAL : -ENOMEM;
                }
                json_object_object_foreach(o, k, v) {
                        if (streq(k, "allowed_uids"))
                                r = parse_id_list(v, k, &b.uids, &b.n_uids, ret_error);
                        else if (streq(k, "allowed_gids"))
                                r = parse_id_list(v, k, &b.gids, &b.n_gids, ret_error);
                        else
                                continue;
                        if (r < 0)
                                return r;
                        b.acl = b.acl || b.n_uids > 0 || b.n_gids > 0;
                }
        }
        *ret = b;
        b = (ShifterPullBody) {};
        return 0;
}

static void on_shifter_pull_resolved(Manager *m, Image *image, const GwError *e, void *userdata) {
        HttpRequest *req = userdata;

        if (gw_error_is_set(e) || !image)
                return shifter_reply_errorf(req, "%s", e && e->message ? e->message : "Pull failed");
        shifter_reply_record(req, image);
}

/* The login (registry-logins.h) for the registry of reference as {"username", "password"}, or
 * NULL: none carried, or none for that registry. Replies itself and returns < 0 when the
 * logins are unusable. */
static int shifter_login_credentials(HttpRequest *req, const char *reference, json_object **ret) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        const RegistryLogins *logins = req->registry_logins;
        const RegistryLogin *login;
        ConfigLocation *l;

        *ret = NULL;
        if (!logins)
                return 0;
        if (logins->error) {
                shifter_reply_errorf(req, "Unusable login credentials in the munge payload: %s", logins->error);
                return -EINVAL;
        }
        /* A reference gatewayd will refuse anyway gets no credentials (image_pull_start() says
         * why); one outside Locations never gets any. */
        if (image_reference_parse(reference, req->manager->config->default_image_location, &ref) < 0 ||
            !(l = config_location_for_registry(req->manager->config, ref->registry)))
                return 0;
        login = registry_logins_find(logins, l->name);
        if (!login)
                return 0;
        *ret = registry_login_to_json(login);
        if (!*ret) {
                http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
                return -ENOMEM;
        }
        return 0;
}

/* POST /api/pull/<system>/<type>/<tag>/, body empty or {"allowed_uids":"1000","allowed_gids":"5"}:
 * starts (or joins) the pull and answers with the record once the image id is known. shifterimg
 * re-POSTs every 0.5 s until the status is terminal. */
void http_shifter_pull(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(shifter_pull_body_done) ShifterPullBody b = {};
        _cleanup_free_ char *error = NULL;
        _cleanup_(json_object_putp) json_object *credentials = NULL;
        ConfigPlatform *pl = NULL;
        _cleanup_free_ char *tag = shifter_image_tag(req, captures, &pl);
        Image *i;
        int r;

        if (!tag)
                return;

        r = shifter_pull_body_parse(req->body, req->body_size, &b, &error);
        if (r == -ENOMEM)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        if (r < 0)
                return shifter_reply_error(req, error);

        /* A pull of this image in flight: its record, as Shifter answers the client's re-POSTs
         * (no second resolve against the registry every half second). */
        i = shifter_find(req, pl, tag);
        if (i && i->pull)
                return shifter_reply_record(req, i);

        /* shifterimg login: the credentials for this reference's registry (or the "default"
         * ones), carried in the munge credential's payload. Only over TCP/TLS: the unix socket
         * has no munge payload. */
        r = shifter_login_credentials(req, tag, &credentials);
        if (r < 0)
                return;

        ImagePullRequest p = {
                .reference = tag,
                .platform = pl->name,
                .caller = *http_request_caller(req),
                .credentials = credentials,
                .private_acl = b.acl,
                .acl_uids = b.uids,
                .n_acl_uids = b.n_uids,
                .acl_gids = b.gids,
                .n_acl_gids = b.n_gids,
        };
        if (image_pull_start(req->manager, &p, on_shifter_pull_resolved, NULL, req, &e) < 0)
                return shifter_reply_errorf(req, "%s", e.message ?: "Pull failed");
        /* The pull outlives this request; the request only waits for the record. */
        http_request_suspend(req);
}

/* Admins of a platform: the user names in its "admins" (Shifter), or whoever polkit lets manage
 * images. Non-admins are told {"status": false} with 200, as Shifter tells them. */
typedef void (*ShifterAdminHandler)(HttpRequest *req);

typedef struct ShifterAdminCheck {
        HttpRequest *req;
        ShifterAdminHandler next;
} ShifterAdminCheck;

static void on_shifter_polkit_done(int r, const char *message, void *userdata) {
        ShifterAdminCheck *c = userdata;
        ShifterCall *call = c->req->userdata;

        call->admin = r > 0;
        c->next(c->req);
        free(c);
}

static void shifter_check_admin(HttpRequest *req, ConfigPlatform *pl, char *tag, ShifterAdminHandler next) {
        const Caller *caller = http_request_caller(req);
        struct passwd *pw = getpwuid(caller->uid);
        ShifterCall *call = calloc(1, sizeof(ShifterCall));
        ShifterAdminCheck *c;
        int r;

        if (!call || !(call->system = strdup(pl->name))) {
                shifter_call_free(call);
                free(tag);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        call->tag = tag;
        req->userdata = call;
        req->free_userdata = shifter_call_free;

        if (pw && config_platform_is_admin(pl, pw->pw_name)) {
                call->admin = true;
                return next(req);
        }
        c = calloc(1, sizeof(ShifterAdminCheck));
        if (!c)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        *c = (ShifterAdminCheck) { .req = req, .next = next };
        /* A suspended request cannot be torn down by libmicrohttpd, so req outlives the check. */
        r = polkit_check(req->manager, caller, ACTION_MANAGE_IMAGES, false, on_shifter_polkit_done, c);
        if (r == 0)
                return http_request_suspend(req);
        free(c);
        if (r < 0)
                log_debug_errno(r, "polkit could not be asked about %s: %m", ACTION_MANAGE_IMAGES);
        call->admin = r > 0;
        next(req);
}

static void shifter_reply_status(HttpRequest *req, json_object *status) {
        json_object *o = json_object_new_object();

        if (!o) {
                json_object_put(status);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        json_object_object_add(o, "status", status);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

static void shifter_expire_checked(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        ShifterCall *call = req->userdata;
        Image *i;

        if (!call->admin)
                return shifter_reply_status(req, json_object_new_boolean(false));
        /* Admins administer the platform's images, private ones included. */
        i = image_registry_lookup_on(req->manager, call->system, call->tag);
        if (!i || i->status == IMAGE_EXPIRED)
                return shifter_reply_status(req, NULL);
        if (image_registry_expire(i, &e) < 0)
                return shifter_reply_errorf(req, "%s", e.message ?: "Expiring the image failed");
        shifter_reply_status(req, json_object_new_boolean(true));
}

/* GET (what shifterimg sends) or POST /api/expire/<system>/<type>/<tag>/: {"status": true}
 * expired, false not an admin, null no such image. */
void http_shifter_expire(HttpRequest *req, char **captures) {
        ConfigPlatform *pl = NULL;
        char *tag = shifter_image_tag(req, captures, &pl);

        if (tag)
                shifter_check_admin(req, pl, tag, shifter_expire_checked);
}

static void shifter_autoexpire_checked(HttpRequest *req) {
        ShifterCall *call = req->userdata;
        Manager *m = req->manager;
        uint64_t limit = m->config->image_expiration_sec * USEC_PER_SEC, now = now_realtime_usec();
        _cleanup_free_ Image **l = NULL;
        json_object *ids;
        size_t n = 0;
        Image *i;

        if (!call->admin)
                return shifter_reply_status(req, json_object_new_boolean(false));
        ids = json_object_new_array();
        l = calloc(hashmap_size(m->images) + 1, sizeof(Image *));
        if (!ids || !l) {
                json_object_put(ids);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        /* What the expiry timer would expire on this platform next (ImageExpirationTimeout 0:
         * nothing). Collected first: expiring changes the map being walked. */
        HASHMAP_FOREACH(i, m->images)
                if (limit > 0 && streq(i->platform, call->system) && i->status == IMAGE_READY && !i->pull &&
                    i->last_used_usec + limit <= now)
                        l[n++] = i;
        for (size_t k = 0; k < n; k++) {
                _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

                if (image_registry_expire(l[k], &e) >= 0)
                        json_object_array_add(ids, json_object_new_string(l[k]->id));
                else
                        log_warning("Autoexpire of image %s failed: %s", l[k]->id, strna(e.message));
        }
        shifter_reply_status(req, ids);
}

/* GET /api/autoexpire/<system>/: {"status": [expired ids]}, or false for non-admins. */
void http_shifter_autoexpire(HttpRequest *req, char **captures) {
        ConfigPlatform *pl = shifter_system(req, captures[0]);

        if (pl)
                shifter_check_admin(req, pl, NULL, shifter_autoexpire_checked);
}

/* GET /api/queue/<system>/: {"list": [{"status", "image"}]} for images not READY nor EXPIRED.
 * Shifter shows every user's; here only those the caller may see (a private image's name is
 * not for others). */
void http_shifter_queue(HttpRequest *req, char **captures) {
        ConfigPlatform *pl = shifter_system(req, captures[0]);
        _cleanup_free_ Image **l = NULL;
        json_object *o, *a;

        if (!pl)
                return;
        l = image_registry_list(req->manager, http_request_caller(req));
        a = json_object_new_array();
        if (!l || !a) {
                json_object_put(a);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        for (Image **i = l; *i; i++) {
                json_object *e;

                if ((*i)->status == IMAGE_READY || (*i)->status == IMAGE_EXPIRED || !streq((*i)->platform, pl->name))
                        continue;
                e = json_object_new_object();
                if (!e)
                        continue;
                json_object_object_add(e, "status", json_object_new_string(image_status_to_string((*i)->status)));
                json_object_object_add(e, "image", json_object_new_string((*i)->reference));
                json_object_array_add(a, e);
        }
        o = json_object_new_object();
        if (!o) {
                json_object_put(a);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        json_object_object_add(o, "list", a);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}
