/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <grp.h>
#include <pwd.h>

#include "http-api.h"
#include "http-auth.h"
#include "image-pull.h"
#include "image-registry.h"
#include "json-util.h"
#include "manager.h"
#include "registry-events.h"

#define ACTION_PULL_IMAGE "org.gatewayd.pull-image"
#define ACTION_MANAGE_IMAGES "org.gatewayd.manage-images"

/* ?platform=: the records are per platform; without it, the default platform's (or the only one's). */
static bool query_platform(HttpRequest *req, const char **ret) {
        const char *platform = http_request_query(req, "platform");

        if (platform && !config_platform_find(req->manager->config, platform)) {
                http_request_reply_errorf(req, GW_ERROR_INVALID_ARGUMENT, "platform: unknown platform '%s'", platform);
                return false;
        }
        *ret = platform;
        return true;
}

static Image *lookup_visible(HttpRequest *req, const char *name) {
        const char *platform;
        Image *i;

        if (!query_platform(req, &platform))
                return NULL;
        i = image_registry_lookup(req->manager, platform, name);
        /* Someone else's private image does not exist for this caller. */
        if (!i || !image_is_visible(i, http_request_caller(req))) {
                http_request_reply_errorf(req, GW_ERROR_NO_SUCH_IMAGE, "No image '%s'.", name);
                return NULL;
        }
        return i;
}

void http_list_images(HttpRequest *req, char **captures) {
        _cleanup_free_ Image **l = NULL;
        const char *platform;
        json_object *o, *a;

        if (!query_platform(req, &platform))
                return;
        l = image_registry_list(req->manager, http_request_caller(req));
        if (!l)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        a = json_object_new_array();
        for (Image **i = l; *i; i++)
                if (!platform || streq((*i)->platform, platform))
                        json_object_array_add(a, image_to_json(*i));
        o = json_object_new_object();
        json_object_object_add(o, "images", a);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_get_image(HttpRequest *req, char **captures) {
        Image *i = lookup_visible(req, captures[0]);

        if (!i)
                return;
        /* A lookup is a use, as in Shifter: it keeps the image from expiring. */
        if (i->status == IMAGE_READY)
                image_mark_used(i);
        http_request_reply_json(req, MHD_HTTP_OK, image_to_json(i));
}

/* ---- progress streams: JSON lines of the image record while its pull runs ---- */

typedef struct ImageStreams {
        char *image_id;         /* the record's key, "<platform>\n<id>" */
        HttpStream **streams;
        size_t n_streams;
} ImageStreams;

static ImageStreams *image_streams_free(ImageStreams *l) {
        if (!l)
                return NULL;
        for (size_t k = 0; k < l->n_streams; k++) {
                http_stream_finish(l->streams[k]);
                http_stream_unref(l->streams[k]);
        }
        free(l->streams);
        free(l->image_id);
        free(l);
        return NULL;
}

static int write_image_line(HttpStream *s, Image *i) {
        json_object *o = image_to_json(i);
        const char *t;
        int r;

        if (!o)
                return -ENOMEM;
        t = json_text(o);
        r = http_stream_write(s, t, strlen(t));
        if (r >= 0)
                r = http_stream_write(s, "\n", 1);
        json_object_put(o);
        return r;
}

/* One line to every stream of the image; streams whose client is gone are dropped. */
static void image_streams_broadcast(ImageStreams *l, Image *i) {
        json_object *o = image_to_json(i);
        const char *t;
        size_t n = 0;

        if (!o)
                return;
        t = json_text(o);
        for (size_t k = 0; k < l->n_streams; k++) {
                HttpStream *s = l->streams[k];
                if (http_stream_is_closed(s) || http_stream_write(s, t, strlen(t)) < 0 || http_stream_write(s, "\n", 1) < 0) {
                        http_stream_unref(s);
                        continue;
                }
                l->streams[n++] = s;
        }
        l->n_streams = n;
        json_object_put(o);
}

static void on_image_event(Manager *m, const RegistryEvent *e, void *userdata) {
        ImageStreams *l = m->image_streams ? hashmap_get(m->image_streams, e->image->key) : NULL;

        if (!l)
                return;
        if (e->kind == REGISTRY_IMAGE_PROGRESS)
                image_streams_broadcast(l, e->image);
        else {
                /* The pull ended (or the image went): so do its streams. */
                hashmap_remove(m->image_streams, l->image_id);
                image_streams_free(l);
        }
}

int http_images_subscribe(Manager *m) {
        int r;

        m->image_streams = hashmap_new();
        if (!m->image_streams)
                return -ENOMEM;
        r = registry_subscribe(m, REGISTRY_IMAGE_PROGRESS, on_image_event, NULL);
        if (r >= 0)
                r = registry_subscribe(m, REGISTRY_IMAGE_PULL_ENDED, on_image_event, NULL);
        if (r >= 0)
                r = registry_subscribe(m, REGISTRY_IMAGE_REMOVED, on_image_event, NULL);
        return r;
}

void http_image_streams_free(Manager *m) {
        ImageStreams *l;

        HASHMAP_FOREACH(l, m->image_streams)
                image_streams_free(l);
        m->image_streams = hashmap_free(m->image_streams);
}

/* Streams the image's progress as JSON lines until its pull ends (one line at once if none). */
static int image_stream_progress(Manager *m, Image *i, HttpStream *s) {
        ImageStreams *l;
        HttpStream **a;
        int r;

        r = write_image_line(s, i);
        if (r < 0 || !i->pull || !m->image_streams) {
                http_stream_finish(s);
                return r;
        }
        l = hashmap_get(m->image_streams, i->key);
        if (!l) {
                l = calloc(1, sizeof(ImageStreams));
                if (!l || !(l->image_id = strdup(i->key)) || hashmap_put(m->image_streams, l->image_id, l) < 0) {
                        image_streams_free(l);
                        http_stream_finish(s);
                        return -ENOMEM;
                }
        }
        a = realloc(l->streams, (l->n_streams + 1) * sizeof(HttpStream *));
        if (!a) {
                http_stream_finish(s);
                return -ENOMEM;
        }
        l->streams = a;
        a[l->n_streams++] = http_stream_ref(s);
        return 0;
}

void http_get_image_progress(HttpRequest *req, char **captures) {
        Image *i = lookup_visible(req, captures[0]);
        HttpStream *s;

        if (!i)
                return;
        s = http_request_reply_stream(req, "application/jsonl");
        if (!s)
                return;
        (void) image_stream_progress(req->manager, i, s);
        http_stream_unref(s);
}

static void on_pull_resolved(Manager *m, Image *image, const GwError *e, void *userdata) {
        HttpRequest *req = userdata;

        if (gw_error_is_set(e))
                return http_request_reply_error(req, e);
        http_request_reply_json(req, image->status == IMAGE_READY ? MHD_HTTP_OK : MHD_HTTP_ACCEPTED, image_to_json(image));
}

/* A uid or gid as a JSON integer: 0..2^32-2 (uid_t is 32 bits; (uid_t) -1 means "none"). */
static bool id_is_valid(json_object *item) {
        int64_t x = json_object_get_int64(item);

        return x >= 0 && x < (int64_t) UINT32_MAX;
}

/* "acl": {"users": [name or uid, …], "groups": [name or gid, …]} */
static int parse_acl(json_object *acl, uid_t **uids, size_t *n_uids, gid_t **gids, size_t *n_gids, GwError *e) {
        json_object *users = NULL, *groups = NULL;

        if (!json_object_is_type(acl, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "acl: expected an object");
        json_object_object_foreach(acl, k, v) {
                if (streq(k, "users"))
                        users = v;
                else if (streq(k, "groups"))
                        groups = v;
                else
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "acl.%s: unknown field", k);
                /* json-c asserts on array calls on anything else. */
                if (!json_object_is_type(v, json_type_array))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "acl.%s: expected an array", k);
        }
        *n_uids = users ? json_object_array_length(users) : 0;
        *n_gids = groups ? json_object_array_length(groups) : 0;
        *uids = calloc(*n_uids + 1, sizeof(uid_t));
        *gids = calloc(*n_gids + 1, sizeof(gid_t));
        if (!*uids || !*gids)
                return gw_error_set(e, GW_ERROR_INTERNAL, "Out of memory.");

        for (size_t idx = 0; idx < *n_uids; idx++) {
                json_object *item = json_object_array_get_idx(users, idx);
                struct passwd *pw = json_object_is_type(item, json_type_string) ? getpwnam(json_object_get_string(item)) : NULL;
                if (json_object_is_type(item, json_type_int) && !id_is_valid(item))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "acl.users[%zu]: not a uid", idx);
                if (json_object_is_type(item, json_type_int))
                        (*uids)[idx] = (uid_t) json_object_get_int64(item);
                else if (pw)
                        (*uids)[idx] = pw->pw_uid;
                else
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "acl.users[%zu]: unknown user", idx);
        }
        for (size_t idx = 0; idx < *n_gids; idx++) {
                json_object *item = json_object_array_get_idx(groups, idx);
                struct group *gr = json_object_is_type(item, json_type_string) ? getgrnam(json_object_get_string(item)) : NULL;
                if (json_object_is_type(item, json_type_int) && !id_is_valid(item))
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "acl.groups[%zu]: not a gid", idx);
                if (json_object_is_type(item, json_type_int))
                        (*gids)[idx] = (gid_t) json_object_get_int64(item);
                else if (gr)
                        (*gids)[idx] = gr->gr_gid;
                else
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "acl.groups[%zu]: unknown group", idx);
        }
        return 0;
}

int image_pull_body_parse(json_object *body, ImagePullRequest *p, uid_t **uids, gid_t **gids, GwError *e) {
        if (!json_object_is_type(body, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "body: expected a JSON object");
        json_object_object_foreach(body, k, v) {
                if (streq(k, "reference")) {
                        if (!json_object_is_type(v, json_type_string))
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "reference: expected a string");
                        p->reference = json_object_get_string(v);
                } else if (streq(k, "platform")) {
                        if (!json_object_is_type(v, json_type_string))
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "platform: expected a string");
                        p->platform = json_object_get_string(v);
                } else if (streq(k, "credentials")) {
                        if (!json_object_is_type(v, json_type_object))
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "credentials: expected an object");
                        p->credentials = v;
                } else if (streq(k, "force")) {
                        if (!json_object_is_type(v, json_type_boolean))
                                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "force: expected true or false");
                        p->force = json_object_get_boolean(v);
                } else if (streq(k, "acl")) {
                        if (parse_acl(v, uids, &p->n_acl_uids, gids, &p->n_acl_gids, e) < 0)
                                return -EINVAL;
                        p->acl_uids = *uids;
                        p->acl_gids = *gids;
                } else
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: unknown field", k);
        }
        if (!p->reference)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "reference: missing");
        return 0;
}

static void pull_image_authorized(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_free_ uid_t *uids = NULL;
        _cleanup_free_ gid_t *gids = NULL;
        ImagePullRequest p = { .caller = *http_request_caller(req) };
        json_object *body;

        body = http_request_json_body(req);
        if (!body)
                return;
        if (image_pull_body_parse(body, &p, &uids, &gids, &e) < 0)
                http_request_reply_error(req, &e);
        else {
                /* The pull outlives this request; the request only waits for the record. */
                if (image_pull_start(req->manager, &p, on_pull_resolved, NULL, req, &e) < 0)
                        http_request_reply_error(req, &e);
                else
                        http_request_suspend(req);
        }
        json_object_put(body);
}

void http_pull_image(HttpRequest *req, char **captures) {
        http_request_authorize(req, ACTION_PULL_IMAGE, pull_image_authorized);
}

static void remove_image_authorized(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Image *i = lookup_visible(req, req->userdata);

        if (!i)
                return;
        if (image_registry_remove(i, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_empty(req, MHD_HTTP_NO_CONTENT);
}

void http_remove_image(HttpRequest *req, char **captures) {
        if (http_request_keep_string(req, captures[0]) >= 0)
                http_request_authorize(req, ACTION_MANAGE_IMAGES, remove_image_authorized);
}

static void expire_image_authorized(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Image *i = lookup_visible(req, req->userdata);

        if (!i)
                return;
        if (image_registry_expire(i, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_json(req, MHD_HTTP_OK, image_to_json(i));
}

void http_expire_image(HttpRequest *req, char **captures) {
        if (http_request_keep_string(req, captures[0]) >= 0)
                http_request_authorize(req, ACTION_MANAGE_IMAGES, expire_image_authorized);
}
