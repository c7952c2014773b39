/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <systemd/sd-bus.h>

#include "db.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "registry-events.h"
#include "reference.h"
#include "service-registry.h"
#include "time-util.h"

static int service_attach(Manager *m, Service *s) {
        int r;

        s->manager = m;
        r = sd_bus_path_encode("/org/gatewayd/Gateway1/service", s->name, &s->object_path);
        if (r < 0)
                return r;
        return hashmap_put(m->services, s->name, s);
}

static int service_from_row(sqlite3_stmt *st, Service **ret) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *spec;
        Service *s = NULL;
        const char *name = (const char *) sqlite3_column_text(st, 0);
        int r;

        spec = json_tokener_parse((const char *) sqlite3_column_text(st, 1));
        if (!spec)
                return log_error_errno(EBADMSG, "Service '%s' in the database has an unparsable spec; skipping it.", name);
        r = service_from_spec(spec, name, &s, &e);
        json_object_put(spec);
        if (r < 0)
                return log_error_errno(r, "Service '%s' in the database is invalid (%s); skipping it.",
                                       name, strna(e.message));
        s->created_usec = (uint64_t) sqlite3_column_int64(st, 2);
        s->updated_usec = (uint64_t) sqlite3_column_int64(st, 3);
        *ret = s;
        return 0;
}

int service_registry_load(Manager *m) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc, r;

        r = db_prepare(m->db, "SELECT name, spec, created_usec, updated_usec FROM services", &st);
        if (r < 0)
                return r;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                Service *s = NULL;

                if (service_from_row(st, &s) < 0)
                        continue; /* one bad row must not take the whole gateway down */
                r = service_attach(m, s);
                if (r < 0) {
                        service_free(s);
                        return log_error_errno(r, "Failed to register service: %m");
                }
        }
        if (rc != SQLITE_DONE)
                return log_error_errno(db_errno(rc), "Failed to read services: %s", sqlite3_errmsg(m->db));

        log_info("Loaded %zu services.", hashmap_size(m->services));
        return 0;
}

void service_registry_free(Manager *m) {
        Service *s;

        HASHMAP_FOREACH(s, m->services)
                service_free(s);
        m->services = hashmap_free(m->services);
}

Service *service_registry_get(Manager *m, const char *name) {
        return hashmap_get(m->services, name);
}

static int service_store(Manager *m, const Service *s, bool create, GwError *e) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        json_object *spec;
        int rc, r;

        r = db_prepare(m->db,
                       create ? "INSERT INTO services (spec, created_usec, updated_usec, name) VALUES (?, ?, ?, ?)"
                              : "UPDATE services SET spec = ?, created_usec = ?, updated_usec = ? WHERE name = ?",
                       &st);
        if (r < 0)
                return gw_error_set_errno(e, r, "Database error");

        spec = service_spec_to_json(s);
        if (!spec)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory");
        sqlite3_bind_text(st, 1, json_text(spec), -1, SQLITE_TRANSIENT);
        json_object_put(spec);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) s->created_usec);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) s->updated_usec);
        sqlite3_bind_text(st, 4, s->name, -1, SQLITE_STATIC);

        rc = sqlite3_step(st);
        if ((rc & 0xff) == SQLITE_CONSTRAINT)
                return gw_error_set(e, GW_ERROR_ALREADY_EXISTS, "Service '%s' already exists.", s->name);
        if (rc != SQLITE_DONE) {
                log_error("Failed to store service '%s': %s", s->name, sqlite3_errmsg(m->db));
                return gw_error_set_errno(e, db_errno(rc), "Database error while storing service '%s'.", s->name);
        }
        return 0;
}

/* A new or changed spec must name an image the worker can pull: refused now (400), not when its
 * first job fails. (Services stored by older versions were checked more loosely; they still
 * load.) */
static int service_check_image(Manager *m, const Service *s, GwError *e) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        int r;

        r = image_reference_parse(s->image, m->config->default_image_location, &ref);
        if (r == -ENOMEM)
                return gw_error_set_errno(e, r, "Out of memory");
        if (r < 0)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                    "image: '%s' is not a valid image reference (repository in lower case, ASCII only)",
                                    s->image);
        return 0;
}

int service_registry_create(Manager *m, json_object *spec, Service **ret, GwError *e) {
        _cleanup_(service_freep) Service *s = NULL;
        Service *added;
        int r;

        r = service_from_spec(spec, NULL, &s, e);
        if (r >= 0)
                r = service_check_image(m, s, e);
        if (r < 0)
                return r;
        if (hashmap_get(m->services, s->name))
                return gw_error_set(e, GW_ERROR_ALREADY_EXISTS, "Service '%s' already exists.", s->name);

        s->created_usec = s->updated_usec = now_realtime_usec();
        r = service_store(m, s, true, e);
        if (r < 0)
                return r;

        added = s;
        r = service_attach(m, TAKE_PTR(s));
        if (r < 0) {
                service_free(added);
                return gw_error_set_errno(e, r, "Failed to register service.");
        }
        log_info("Created service '%s' (image %s).", added->name, added->image);
        registry_publish_service(m, REGISTRY_SERVICE_ADDED, added);
        manager_update_status(m);
        if (ret)
                *ret = added;
        return 0;
}

/* Moves the spec fields of src into dst, keeping dst's identity (name, object path, created). */
static void service_take_spec(Service *dst, Service *src) {
#define SWAP(f) do { __typeof__(dst->f) _t = dst->f; dst->f = src->f; src->f = _t; } while (0)
        SWAP(image);
        SWAP(description);
        SWAP(command);
        SWAP(env);
        SWAP(memory);
        SWAP(cpus);
        SWAP(timeout_sec);
        SWAP(network);
        SWAP(updated_usec);
#undef SWAP
        service_invalidate_json(dst);
}

int service_registry_update(Manager *m, const char *name, json_object *spec, Service **ret, GwError *e) {
        _cleanup_(service_freep) Service *n = NULL;
        Service *s;
        int r;

        s = hashmap_get(m->services, name);
        if (!s)
                return gw_error_set(e, GW_ERROR_NO_SUCH_SERVICE, "No service '%s'.", name);

        r = service_from_spec(spec, name, &n, e);
        if (r >= 0)
                r = service_check_image(m, n, e);
        if (r < 0)
                return r;
        n->created_usec = s->created_usec;
        n->updated_usec = MAX(now_realtime_usec(), s->updated_usec + 1);

        r = service_store(m, n, false, e);
        if (r < 0)
                return r;

        service_take_spec(s, n);
        log_info("Updated service '%s'.", s->name);
        registry_publish_service(m, REGISTRY_SERVICE_CHANGED, s);
        if (ret)
                *ret = s;
        return 0;
}

int service_registry_remove(Manager *m, const char *name, GwError *e) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        Service *s;
        int r;

        s = hashmap_get(m->services, name);
        if (!s)
                return gw_error_set(e, GW_ERROR_NO_SUCH_SERVICE, "No service '%s'.", name);

        r = db_prepare(m->db, "DELETE FROM services WHERE name = ?", &st);
        if (r < 0)
                return gw_error_set_errno(e, r, "Database error");
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
                return gw_error_set_errno(e, -EIO, "Database error while removing service '%s': %s", name,
                                          sqlite3_errmsg(m->db));

        hashmap_remove(m->services, s->name);
        log_info("Removed service '%s'.", s->name);
        registry_publish_service(m, REGISTRY_SERVICE_REMOVED, s);
        service_free(s);
        manager_update_status(m);
        return 0;
}

static int compare_services(const void *a, const void *b) {
        return strcmp((*(Service * const *) a)->name, (*(Service * const *) b)->name);
}

Service **service_registry_list(Manager *m, size_t *ret_n) {
        size_t n = hashmap_size(m->services), i = 0;
        Service **l = calloc(n + 1, sizeof(Service *)), *s;

        if (!l)
                return NULL;
        HASHMAP_FOREACH(s, m->services)
                l[i++] = s;
        qsort(l, n, sizeof(Service *), compare_services);
        if (ret_n)
                *ret_n = n;
        return l;
}
