/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "json-util.h"
#include "http-api.h"
#include "lab-access.h"
#include "lab-instance.h"
#include "lab-registry.h"
#include "laborch-id.h"
#include "log.h"
#include "manager.h"
#include "polkit.h"

/* LabOrchestrator's REST API (Django REST framework) over our labs, so that its web front-end and
 * scripts work against gatewayd (docs/labs.md "LabOrchestrator-compatible API",
 * docs/openapi-laborch.yaml). Everything here is a view of the native objects: a docker image
 * is an image reference used by a lab member, a lab_docker_image is a member, a lab is a lab
 * (namespace_prefix = its name), a lab instance is an instance. Integer ids come from
 * laborch-id.c. Errors have DRF's shapes ({"detail": ...}, {"field": [...]}), not ours. */

#define ACTION_MANAGE_LABS "org.gatewayd.manage-labs"

static void reply_detail(HttpRequest *req, unsigned status, const char *detail) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "detail", json_object_new_string(detail));
        http_request_reply_json(req, status, o);
}

static void reply_not_found(HttpRequest *req) {
        reply_detail(req, MHD_HTTP_NOT_FOUND, "Not found.");
}

static void reply_internal(HttpRequest *req, int r) {
        log_warning_errno(r, "LabOrchestrator API: %s %s: %m", req->method, req->url);
        reply_detail(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "A server error occurred.");
}

static void reply_field_error(HttpRequest *req, const char *field, const char *message) {
        json_object *o = json_object_new_object(), *a = json_object_new_array();

        json_object_array_add(a, json_object_new_string(message));
        json_object_object_add(o, field, a);
        http_request_reply_json(req, MHD_HTTP_BAD_REQUEST, o);
}

/* A primary key in a URL: digits only, as Django's integer lookup; anything else is 404. */
static int parse_pk(const char *s, int64_t *ret) {
        char *end;
        long long v;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || *end != 0 || v <= 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int compare_by_id(const void *a, const void *b) {
        json_object *x = *(json_object * const *) a, *y = *(json_object * const *) b, *vx, *vy;
        int64_t ix, iy;

        json_object_object_get_ex(x, "id", &vx);
        json_object_object_get_ex(y, "id", &vy);
        ix = json_object_get_int64(vx);
        iy = json_object_get_int64(vy);
        return ix < iy ? -1 : ix > iy;
}

/* Lists as DRF without pagination gives them: a bare array, in id order. */
static void reply_list(HttpRequest *req, json_object *a) {
        json_object_array_sort(a, compare_by_id);
        http_request_reply_json(req, MHD_HTTP_OK, a);
}

/* ---- docker_images, lab_docker_images, labs ---- */

static int docker_image_json(Manager *m, const char *reference, json_object **ret) {
        json_object *o = NULL;
        int64_t id;
        int r;

        r = laborch_id_get(m, LABORCH_DOCKER_IMAGE, reference, &id);
        if (r < 0)
                return r;
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "id", json_object_new_int64(id));
        json_object_object_add(o, "name", json_object_new_string(reference));
        json_object_object_add(o, "description", json_object_new_string(""));
        json_object_object_add(o, "url", json_object_new_string(reference));
        *ret = o;
        return 0;
}

static int member_ids(Manager *m, const Lab *l, const LabMember *mb, int64_t *ret_id, int64_t *ret_image) {
        _cleanup_free_ char *key = NULL;
        int r;

        if (asprintf(&key, "%s/%s", l->name, mb->name) < 0)
                return -ENOMEM;
        r = laborch_id_get(m, LABORCH_LAB_DOCKER_IMAGE, key, ret_id);
        if (r < 0)
                return r;
        return laborch_id_get(m, LABORCH_DOCKER_IMAGE, mb->image, ret_image);
}

/* {"id", "docker_image_name", "lab", "docker_image"}: a member. */
static int lab_docker_image_json(Manager *m, const Lab *l, const LabMember *mb, int64_t lab_id, json_object **ret) {
        int64_t id, image;
        json_object *o = NULL;
        int r;

        r = member_ids(m, l, mb, &id, &image);
        if (r < 0)
                return r;
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "id", json_object_new_int64(id));
        json_object_object_add(o, "docker_image_name", json_object_new_string(mb->name));
        json_object_object_add(o, "lab", json_object_new_int64(lab_id));
        json_object_object_add(o, "docker_image", json_object_new_int64(image));
        *ret = o;
        return 0;
}

static int laborch_lab_json(Manager *m, const Lab *l, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *a = json_object_new_array();
        int64_t id;
        int r;

        if (!o || !a) {
                json_object_put(a);
                return -ENOMEM;
        }
        json_object_object_add(o, "lab_docker_images", a);
        r = laborch_id_get(m, LABORCH_LAB, l->name, &id);
        if (r < 0)
                return r;
        for (size_t k = 0; k < l->n_members; k++) {
                json_object *d;

                r = lab_docker_image_json(m, l, &l->members[k], id, &d);
                if (r < 0)
                        return r;
                json_object_array_add(a, d);
        }
        json_object_object_add(o, "id", json_object_new_int64(id));
        json_object_object_add(o, "name", json_object_new_string(l->name));
        json_object_object_add(o, "namespace_prefix", json_object_new_string(l->name));
        json_object_object_add(o, "description", json_object_new_string(l->description ?: ""));
        *ret = TAKE_PTR(o);
        return 0;
}

static bool array_has_string(json_object *a, const char *s) {
        for (size_t k = 0; k < json_object_array_length(a); k++)
                if (streq(json_object_get_string(json_object_array_get_idx(a, k)), s))
                        return true;
        return false;
}

/* The image references of every lab, each once. */
static json_object *lab_references(Manager *m) {
        _cleanup_free_ Lab **labs = lab_registry_list(m, NULL);
        json_object *a;

        if (!labs)
                return NULL;
        a = json_object_new_array();
        for (Lab **l = labs; a && *l; l++)
                for (size_t k = 0; k < (*l)->n_members; k++)
                        if (!array_has_string(a, (*l)->members[k].image))
                                json_object_array_add(a, json_object_new_string((*l)->members[k].image));
        return a;
}

void http_laborch_list_docker_images(HttpRequest *req, char **captures) {
        _cleanup_(json_object_putp) json_object *refs = lab_references(req->manager), *a = json_object_new_array();
        int r;

        if (!refs || !a)
                return reply_internal(req, -ENOMEM);
        for (size_t k = 0; k < json_object_array_length(refs); k++) {
                json_object *o;

                r = docker_image_json(req->manager, json_object_get_string(json_object_array_get_idx(refs, k)), &o);
                if (r < 0)
                        return reply_internal(req, r);
                json_object_array_add(a, o);
        }
        reply_list(req, TAKE_PTR(a));
}

void http_laborch_get_docker_image(HttpRequest *req, char **captures) {
        _cleanup_(json_object_putp) json_object *refs = NULL;
        _cleanup_free_ char *reference = NULL;
        json_object *o = NULL;
        int64_t id;
        int r;

        if (parse_pk(captures[0], &id) < 0)
                return reply_not_found(req);
        r = laborch_id_lookup(req->manager, LABORCH_DOCKER_IMAGE, id, &reference);
        if (r == -ENOENT)
                return reply_not_found(req);
        if (r < 0)
                return reply_internal(req, r);
        /* An image no lab uses any more is gone from this view. */
        refs = lab_references(req->manager);
        if (!refs)
                return reply_internal(req, -ENOMEM);
        if (!array_has_string(refs, reference))
                return reply_not_found(req);
        r = docker_image_json(req->manager, reference, &o);
        if (r < 0)
                return reply_internal(req, r);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_laborch_list_lab_docker_images(HttpRequest *req, char **captures) {
        _cleanup_free_ Lab **labs = lab_registry_list(req->manager, NULL);
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        int r;

        if (!labs || !a)
                return reply_internal(req, -ENOMEM);
        for (Lab **l = labs; *l; l++) {
                int64_t lab_id;

                r = laborch_id_get(req->manager, LABORCH_LAB, (*l)->name, &lab_id);
                if (r < 0)
                        return reply_internal(req, r);
                for (size_t k = 0; k < (*l)->n_members; k++) {
                        json_object *o;

                        r = lab_docker_image_json(req->manager, *l, &(*l)->members[k], lab_id, &o);
                        if (r < 0)
                                return reply_internal(req, r);
                        json_object_array_add(a, o);
                }
        }
        reply_list(req, TAKE_PTR(a));
}

void http_laborch_get_lab_docker_image(HttpRequest *req, char **captures) {
        _cleanup_free_ char *key = NULL;
        const char *member;
        json_object *o = NULL;
        int64_t id, lab_id;
        Lab *l;
        int r;

        if (parse_pk(captures[0], &id) < 0)
                return reply_not_found(req);
        r = laborch_id_lookup(req->manager, LABORCH_LAB_DOCKER_IMAGE, id, &key);
        if (r == -ENOENT)
                return reply_not_found(req);
        if (r < 0)
                return reply_internal(req, r);
        member = strchr(key, '/');
        if (!member)
                return reply_not_found(req);
        key[member++ - key] = 0;
        l = lab_registry_get(req->manager, key);
        if (!l)
                return reply_not_found(req);
        r = laborch_id_get(req->manager, LABORCH_LAB, l->name, &lab_id);
        if (r < 0)
                return reply_internal(req, r);
        for (size_t k = 0; k < l->n_members; k++)
                if (streq(l->members[k].name, member)) {
                        r = lab_docker_image_json(req->manager, l, &l->members[k], lab_id, &o);
                        if (r < 0)
                                return reply_internal(req, r);
                        return http_request_reply_json(req, MHD_HTTP_OK, o);
                }
        reply_not_found(req);
}

void http_laborch_list_labs(HttpRequest *req, char **captures) {
        _cleanup_free_ Lab **labs = lab_registry_list(req->manager, NULL);
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        int r;

        if (!labs || !a)
                return reply_internal(req, -ENOMEM);
        for (Lab **l = labs; *l; l++) {
                json_object *o;

                r = laborch_lab_json(req->manager, *l, &o);
                if (r < 0)
                        return reply_internal(req, r);
                json_object_array_add(a, o);
        }
        reply_list(req, TAKE_PTR(a));
}

/* The lab behind a LabOrchestrator id, if it still exists. */
static int lab_by_pk(Manager *m, int64_t id, Lab **ret) {
        _cleanup_free_ char *name = NULL;
        int r;

        r = laborch_id_lookup(m, LABORCH_LAB, id, &name);
        if (r < 0)
                return r;
        *ret = lab_registry_get(m, name);
        return *ret ? 0 : -ENOENT;
}

void http_laborch_get_lab(HttpRequest *req, char **captures) {
        json_object *o = NULL;
        int64_t id;
        Lab *l;
        int r;

        if (parse_pk(captures[0], &id) < 0)
                return reply_not_found(req);
        r = lab_by_pk(req->manager, id, &l);
        if (r == -ENOENT)
                return reply_not_found(req);
        if (r < 0)
                return reply_internal(req, r);
        r = laborch_lab_json(req->manager, l, &o);
        if (r < 0)
                return reply_internal(req, r);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

/* ---- lab_instances ---- */

/* LabOrchestrator's users are e-mail addresses; ours are local accounts: "email" is the account's
 * name (the uid's digits if it has none). */
static json_object *user_json(uid_t uid) {
        json_object *o = json_object_new_object();
        struct passwd *pw = getpwuid(uid);
        char buf[16];

        snprintf(buf, sizeof(buf), "%u", (unsigned) uid);
        json_object_object_add(o, "id", json_object_new_int64(uid));
        json_object_object_add(o, "email", json_object_new_string(pw ? pw->pw_name : buf));
        return o;
}

/* list/retrieve: {"id", "lab": <lab>, "user": {"id", "email"}}. The lab is the definition the
 * instance was made from. */
static int instance_json(Manager *m, const LabInstance *i, json_object **ret) {
        json_object *o, *lab;
        int64_t id;
        int r;

        r = laborch_id_get(m, LABORCH_LAB_INSTANCE, i->id, &id);
        if (r < 0)
                return r;
        r = laborch_lab_json(m, i->spec, &lab);
        if (r < 0)
                return r;
        o = json_object_new_object();
        if (!o) {
                json_object_put(lab);
                return -ENOMEM;
        }
        json_object_object_add(o, "id", json_object_new_int64(id));
        json_object_object_add(o, "lab", lab);
        json_object_object_add(o, "user", user_json(i->uid));
        *ret = o;
        return 0;
}

/* The console of the lab: the proxy's path of the first member with a "vnc" port (its noVNC
 * page, which connects by itself), else of the first member, as LabOrchestrator takes the first
 * image. "<member>:<port>" when the vnc port is not the member's first. Prefixed with LabProxyURL
 * when the site says where browsers reach gateway-proxy (LabOrchestrator's is an absolute URL). */
static char *vnc_path(const LabInstance *i, const char *token, const char *proxy_url) {
        const Lab *l = i->spec;
        const LabMember *mb = NULL;
        unsigned port = 0;      /* 0: the member's first port, the proxy's default */
        size_t n = proxy_url ? strlen(proxy_url) : 0;
        char *p = NULL;

        for (size_t k = 0; k < l->n_members && !mb; k++)
                for (size_t q = 0; q < l->members[k].n_ports; q++)
                        if (l->members[k].ports[q].kind == LAB_PORT_VNC) {
                                mb = &l->members[k];
                                port = q == 0 ? 0 : l->members[k].ports[q].port;
                                break;
                        }
        if (!mb)
                mb = &l->members[0];
        while (n > 0 && proxy_url[n - 1] == '/')
                n--;
        if (port > 0)
                return asprintf(&p, "%.*s/%s/%s:%u/", (int) n, strempty(proxy_url), token, mb->name, port) < 0 ? NULL : p;
        return asprintf(&p, "%.*s/%s/%s/", (int) n, strempty(proxy_url), token, mb->name) < 0 ? NULL : p;
}

/* create and token: {"id", "lab": {"id", "name", "docker_images": [...]}, "lab_id", "user",
 * "user_id", "jwt_token", "lab_vnc_path"} with a fresh access token. */
static int instance_access_json(Manager *m, const LabInstance *i, json_object **ret, GwError *e) {
        _cleanup_(json_object_putp) json_object *o = NULL, *access = NULL;
        _cleanup_free_ char *path = NULL;
        json_object *lab, *images, *token;
        int64_t id, lab_id;
        int r;

        r = lab_access_token(m, i, &access, e);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(access, "token", &token))
                return gw_error_set_errno(e, -EINVAL, "No token.");
        path = vnc_path(i, json_object_get_string(token), m->config->lab_proxy_url);
        r = laborch_id_get(m, LABORCH_LAB_INSTANCE, i->id, &id);
        if (r >= 0)
                r = laborch_id_get(m, LABORCH_LAB, i->spec->name, &lab_id);
        if (r < 0 || !path)
                return gw_error_set_errno(e, r < 0 ? r : -ENOMEM, "Cannot describe lab instance %s.", i->id);

        o = json_object_new_object();
        lab = json_object_new_object();
        images = json_object_new_array();
        json_object_object_add(o, "id", json_object_new_int64(id));
        json_object_object_add(o, "lab", lab);
        json_object_object_add(lab, "id", json_object_new_int64(lab_id));
        json_object_object_add(lab, "name", json_object_new_string(i->spec->name));
        json_object_object_add(lab, "docker_images", images);
        for (size_t k = 0; k < i->spec->n_members; k++) {
                json_object *d = json_object_new_object();
                int64_t member_id, image_id;

                r = member_ids(m, i->spec, &i->spec->members[k], &member_id, &image_id);
                if (r < 0) {
                        json_object_put(d);
                        return gw_error_set_errno(e, r, "Cannot describe lab instance %s.", i->id);
                }
                json_object_object_add(d, "id", json_object_new_int64(member_id));
                json_object_object_add(d, "docker_image_id", json_object_new_int64(image_id));
                json_object_object_add(d, "docker_image_name", json_object_new_string(i->spec->members[k].name));
                json_object_array_add(images, d);
        }
        json_object_object_add(o, "lab_id", json_object_new_int64(lab_id));
        json_object_object_add(o, "user", user_json(i->uid));
        json_object_object_add(o, "user_id", json_object_new_int64(i->uid));
        json_object_object_add(o, "jwt_token", json_object_get(token));
        json_object_object_add(o, "lab_vnc_path", json_object_new_string(path));
        *ret = TAKE_PTR(o);
        return 0;
}

static void reply_gw_error(HttpRequest *req, const GwError *e) {
        reply_detail(req, gw_error_http_status(e->code), e->message ?: "Error.");
}

static void reply_instance_access(HttpRequest *req, unsigned status, const LabInstance *i) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *o = NULL;

        if (instance_access_json(req->manager, i, &o, &e) < 0)
                return reply_gw_error(req, &e);
        http_request_reply_json(req, status, o);
}

static json_object *detail_json(const char *detail) {
        json_object *o = json_object_new_object();

        if (o)
                json_object_object_add(o, "detail", json_object_new_string(detail));
        return o;
}

static json_object *field_error_json(const char *field, const char *message) {
        json_object *o = json_object_new_object(), *a = json_object_new_array();

        if (!o || !a) {
                json_object_put(o);
                json_object_put(a);
                return NULL;
        }
        json_object_array_add(a, json_object_new_string(message));
        json_object_object_add(o, field, a);
        return o;
}

/* The "lab" field, as DRF's PrimaryKeyRelatedField judges it before looking the lab up: 0 and
 * the id, or -EINVAL and DRF's answer. */
static int check_lab_field(json_object *body, int64_t *ret, json_object **ret_answer) {
        _cleanup_free_ char *msg = NULL;
        json_object *v;
        const char *type;

        if (!json_object_is_type(body, json_type_object))
                *ret_answer = field_error_json("non_field_errors", json_object_is_type(body, json_type_array) ?
                                               "Invalid data. Expected a dictionary, but got list." :
                                               "Invalid data. Expected a dictionary, but got a value.");
        else if (!json_object_object_get_ex(body, "lab", &v))
                *ret_answer = field_error_json("lab", "This field is required.");
        else if (!v)
                *ret_answer = field_error_json("lab", "This field may not be null.");
        else if (json_object_is_type(v, json_type_int)) {
                *ret = json_object_get_int64(v);
                return 0;
        } else if (json_object_is_type(v, json_type_string) && parse_pk(json_object_get_string(v), ret) >= 0)
                return 0;
        else {
                type = json_object_is_type(v, json_type_string) ? "str" :
                       json_object_is_type(v, json_type_boolean) ? "bool" :
                       json_object_is_type(v, json_type_double) ? "float" :
                       json_object_is_type(v, json_type_array) ? "list" : "dict";
                if (asprintf(&msg, "Incorrect type. Expected pk value, received %s.", type) < 0)
                        return -ENOMEM;
                *ret_answer = field_error_json("lab", msg);
        }
        return *ret_answer ? -EINVAL : -ENOMEM;
}

int http_laborch_parse_create(const char *content_type, const char *body, size_t size, int64_t *ret_lab,
                              unsigned *ret_status, json_object **ret_answer) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *msg = NULL;
        const char *ct = content_type;
        int64_t id = 0;
        int r;

        /* DRF's parsers: JSON (forms are for its browsable pages, which we do not have). */
        if (!ct || strncasecmp(ct, "application/json", 16) != 0 || (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
                if (asprintf(&msg, "Unsupported media type \"%s\" in request.", ct ?: "") < 0)
                        return -ENOMEM;
                *ret_status = MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
                *ret_answer = detail_json(msg);
                return *ret_answer ? -EINVAL : -ENOMEM;
        }
        /* DRF reads an empty body as no fields at all. */
        if (size == 0)
                o = json_object_new_object();
        else if (http_json_body_parse(body, size, &o, &e) < 0) {
                if (asprintf(&msg, "JSON parse error - %s", e.message ?: "invalid JSON") < 0)
                        return -ENOMEM;
                *ret_status = MHD_HTTP_BAD_REQUEST;
                *ret_answer = detail_json(msg);
                return *ret_answer ? -EINVAL : -ENOMEM;
        }
        if (!o)
                return -ENOMEM;
        r = check_lab_field(o, &id, ret_answer);
        if (r == -EINVAL)
                *ret_status = MHD_HTTP_BAD_REQUEST;
        if (r < 0)
                return r;
        *ret_lab = id;
        return 0;
}

void http_laborch_create_instance(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_free_ char *msg = NULL;
        json_object *answer = NULL;
        unsigned status = 0;
        LabInstance *i;
        int64_t id = 0;
        Lab *l = NULL;
        int r;

        r = http_laborch_parse_create(http_request_header(req, "Content-Type"), req->body, req->body_size, &id,
                                      &status, &answer);
        if (r == -EINVAL)
                return http_request_reply_json(req, status, answer);
        if (r < 0)
                return reply_internal(req, r);
        r = id > 0 ? lab_by_pk(req->manager, id, &l) : -ENOENT;
        if (r == -ENOENT) {
                if (asprintf(&msg, "Invalid pk \"%" PRIi64 "\" - object does not exist.", id) < 0)
                        return reply_internal(req, -ENOMEM);
                return reply_field_error(req, "lab", msg);
        }
        if (r < 0)
                return reply_internal(req, r);

        if (lab_instance_create(req->manager, l->name, http_request_caller(req), &i, &e) < 0)
                return reply_gw_error(req, &e);
        reply_instance_access(req, MHD_HTTP_CREATED, i);
}

/* Who may see and delete which instance: LabOrchestrator's staff see every one; we ask polkit for
 * org.gatewayd.manage-labs (without interaction: a refusal only narrows the view to the
 * caller's own). */
typedef void (*LaborchNext)(HttpRequest *req, bool admin);

typedef struct AdminCheck {
        HttpRequest *req;
        LaborchNext next;
} AdminCheck;

static void on_admin_checked(int r, const char *message, void *userdata) {
        AdminCheck *a = userdata;

        a->next(a->req, r > 0);
        free(a);
}

static void with_admin(HttpRequest *req, LaborchNext next) {
        AdminCheck *a = calloc(1, sizeof(AdminCheck));
        int r;

        if (!a)
                return reply_internal(req, -ENOMEM);
        *a = (AdminCheck) { .req = req, .next = next };
        r = polkit_check(req->manager, http_request_caller(req), ACTION_MANAGE_LABS, false, on_admin_checked, a);
        if (r == 0)
                return http_request_suspend(req);
        free(a);
        next(req, r > 0);
}

/* A deleted instance is gone for LabOrchestrator's clients at once, as its row is there; the
 * native API shows it STOPPING until everything of it is gone. */
static bool instance_visible(HttpRequest *req, const LabInstance *i, bool admin) {
        return !i->remove_when_stopped && (admin || i->uid == http_request_caller(req)->uid);
}

static void list_instances(HttpRequest *req, bool admin) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        LabInstance *i;
        int r;

        if (!a)
                return reply_internal(req, -ENOMEM);
        HASHMAP_FOREACH(i, req->manager->lab_instances) {
                json_object *o;

                if (!instance_visible(req, i, admin))
                        continue;
                r = instance_json(req->manager, i, &o);
                if (r < 0)
                        return reply_internal(req, r);
                json_object_array_add(a, o);
        }
        reply_list(req, TAKE_PTR(a));
}

void http_laborch_list_instances(HttpRequest *req, char **captures) {
        with_admin(req, list_instances);
}

/* The instance named by the kept capture, if the caller may see it. */
static LabInstance *instance_by_pk(HttpRequest *req, bool admin) {
        _cleanup_free_ char *name = NULL;
        LabInstance *i;
        int64_t id;

        if (parse_pk(req->userdata, &id) < 0 ||
            laborch_id_lookup(req->manager, LABORCH_LAB_INSTANCE, id, &name) < 0 ||
            !req->manager->lab_instances)
                return NULL;
        i = hashmap_get(req->manager->lab_instances, name);
        return i && instance_visible(req, i, admin) ? i : NULL;
}

static void get_instance(HttpRequest *req, bool admin) {
        LabInstance *i = instance_by_pk(req, admin);
        json_object *o = NULL;
        int r;

        if (!i)
                return reply_not_found(req);
        r = instance_json(req->manager, i, &o);
        if (r < 0)
                return reply_internal(req, r);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_laborch_get_instance(HttpRequest *req, char **captures) {
        if (http_request_keep_string(req, captures[0]) < 0)
                return;
        with_admin(req, get_instance);
}

static void remove_instance(HttpRequest *req, bool admin) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        LabInstance *i = instance_by_pk(req, admin);

        if (!i)
                return reply_not_found(req);
        if (lab_instance_remove(i, &e) < 0)
                return reply_gw_error(req, &e);
        http_request_reply_empty(req, MHD_HTTP_NO_CONTENT);
}

void http_laborch_remove_instance(HttpRequest *req, char **captures) {
        if (http_request_keep_string(req, captures[0]) < 0)
                return;
        with_admin(req, remove_instance);
}

/* A token is only for the owner, staff or not (LabOrchestrator: 404 for others, 500 for staff). */
void http_laborch_instance_token(HttpRequest *req, char **captures) {
        LabInstance *i;

        if (http_request_keep_string(req, captures[0]) < 0)
                return;
        i = instance_by_pk(req, false);
        if (!i)
                return reply_not_found(req);
        reply_instance_access(req, MHD_HTTP_OK, i);
}
