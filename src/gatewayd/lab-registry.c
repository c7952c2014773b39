/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <systemd/sd-bus.h>

#include "bus-lab.h"
#include "db.h"
#include "json-util.h"
#include "lab-registry.h"
#include "log.h"
#include "manager.h"
#include "reference.h"
#include "time-util.h"

static int lab_attach(Manager *m, Lab *l) {
        int r;

        l->manager = m;
        r = sd_bus_path_encode("/org/gatewayd/Gateway1/lab", l->name, &l->object_path);
        if (r < 0)
                return r;
        return hashmap_put(m->labs, l->name, l);
}

static int lab_from_row(sqlite3_stmt *st, Lab **ret) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *name = (const char *) sqlite3_column_text(st, 0);
        json_object *spec;
        Lab *l = NULL;
        int r;

        spec = json_tokener_parse((const char *) sqlite3_column_text(st, 1));
        if (!spec)
                return log_error_errno(EBADMSG, "Lab '%s' in the database has an unparsable spec; skipping it.", name);
        r = lab_from_spec(spec, name, &l, &e);
        json_object_put(spec);
        if (r < 0)
                return log_error_errno(r, "Lab '%s' in the database is invalid (%s); skipping it.", name, strna(e.message));
        l->created_usec = (uint64_t) sqlite3_column_int64(st, 2);
        l->updated_usec = (uint64_t) sqlite3_column_int64(st, 3);
        *ret = l;
        return 0;
}

int lab_registry_load(Manager *m) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc, r;

        if (!m->labs) {
                m->labs = hashmap_new();
                if (!m->labs)
                        return log_oom();
        }
        r = db_prepare(m->db, "SELECT name, spec, created_usec, updated_usec FROM labs", &st);
        if (r < 0)
                return r;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                Lab *l = NULL;

                if (lab_from_row(st, &l) < 0)
                        continue; /* one bad row must not take the whole gateway down */
                r = lab_attach(m, l);
                if (r < 0) {
                        lab_free(l);
                        return log_error_errno(r, "Failed to register lab: %m");
                }
        }
        if (rc != SQLITE_DONE)
                return log_error_errno(db_errno(rc), "Failed to read labs: %s", sqlite3_errmsg(m->db));

        log_info("Loaded %zu labs.", hashmap_size(m->labs));
        return 0;
}

void lab_registry_free(Manager *m) {
        Lab *l;

        HASHMAP_FOREACH(l, m->labs)
                lab_free(l);
        m->labs = hashmap_free(m->labs);
}

Lab *lab_registry_get(Manager *m, const char *name) {
        return m->labs ? hashmap_get(m->labs, name) : NULL;
}

static int lab_store(Manager *m, const Lab *l, GwError *e) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        json_object *spec;
        int rc, r;

        r = db_prepare(m->db,
                       "INSERT INTO labs (name, spec, created_usec, updated_usec) VALUES (?, ?, ?, ?)"
                       " ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_usec = excluded.updated_usec",
                       &st);
        if (r < 0)
                return gw_error_set_errno(e, r, "Database error");

        spec = lab_spec_to_json(l);
        if (!spec)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory");
        sqlite3_bind_text(st, 1, l->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, json_text(spec), -1, SQLITE_TRANSIENT);
        json_object_put(spec);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) l->created_usec);
        sqlite3_bind_int64(st, 4, (sqlite3_int64) l->updated_usec);

        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
                log_error("Failed to store lab '%s': %s", l->name, sqlite3_errmsg(m->db));
                return gw_error_set_errno(e, db_errno(rc), "Database error while storing lab '%s'.", l->name);
        }
        return 0;
}

/* Every member must name an image the worker can pull: refused now (400), not when the first
 * instance fails to start. */
static int lab_check_images(Manager *m, const Lab *l, GwError *e) {
        for (size_t i = 0; i < l->n_members; i++) {
                _cleanup_(image_reference_freep) ImageReference *ref = NULL;
                int r;

                r = image_reference_parse(l->members[i].image, m->config->default_image_location, &ref);
                if (r == -ENOMEM)
                        return gw_error_set_errno(e, r, "Out of memory");
                if (r < 0)
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                            "members[%zu].image: '%s' is not a valid image reference (repository in lower case, ASCII only)",
                                            i, l->members[i].image);
        }
        return 0;
}

/* Moves the definition of src into dst, keeping dst's identity (name, object path, created). */
static void lab_take_spec(Lab *dst, Lab *src) {
#define SWAP(f) do { __typeof__(dst->f) _t = dst->f; dst->f = src->f; src->f = _t; } while (0)
        SWAP(description);
        SWAP(instructions);
        SWAP(lifetime_sec);
        SWAP(memory);
        SWAP(tasks);
        SWAP(members);
        SWAP(n_members);
        SWAP(updated_usec);
#undef SWAP
        lab_invalidate_json(dst);
}

int lab_registry_put(Manager *m, const char *name, json_object *spec, Lab **ret, bool *ret_created, GwError *e) {
        _cleanup_(lab_freep) Lab *n = NULL;
        Lab *old, *added;
        int r;

        r = lab_from_spec(spec, name, &n, e);
        if (r >= 0)
                r = lab_check_images(m, n, e);
        if (r < 0)
                return r;

        old = lab_registry_get(m, name);
        n->created_usec = old ? old->created_usec : now_realtime_usec();
        n->updated_usec = old ? MAX(now_realtime_usec(), old->updated_usec + 1) : n->created_usec;
        r = lab_store(m, n, e);
        if (r < 0)
                return r;

        if (old) {
                lab_take_spec(old, n);
                log_info("Updated lab '%s'.", old->name);
                bus_lab_emit_changed(old);
                added = old;
        } else {
                added = n;
                r = lab_attach(m, TAKE_PTR(n));
                if (r < 0) {
                        lab_free(added);
                        return gw_error_set_errno(e, r, "Failed to register lab.");
                }
                log_info("Created lab '%s' (%zu members).", added->name, added->n_members);
                bus_lab_emit_added(added);
        }
        if (ret)
                *ret = added;
        if (ret_created)
                *ret_created = !old;
        return 0;
}

int lab_registry_remove(Manager *m, const char *name, GwError *e) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        Lab *l;
        int r;

        l = lab_registry_get(m, name);
        if (!l)
                return gw_error_set(e, GW_ERROR_NOT_FOUND, "No lab '%s'.", name);

        r = db_prepare(m->db, "DELETE FROM labs WHERE name = ?", &st);
        if (r < 0)
                return gw_error_set_errno(e, r, "Database error");
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
                return gw_error_set_errno(e, -EIO, "Database error while removing lab '%s': %s", name,
                                          sqlite3_errmsg(m->db));

        hashmap_remove(m->labs, l->name);
        log_info("Removed lab '%s'.", l->name);
        bus_lab_emit_removed(l);
        lab_free(l);
        return 0;
}

static int compare_labs(const void *a, const void *b) {
        return strcmp((*(Lab * const *) a)->name, (*(Lab * const *) b)->name);
}

Lab **lab_registry_list(Manager *m, size_t *ret_n) {
        size_t n = m->labs ? hashmap_size(m->labs) : 0, i = 0;
        Lab **v = calloc(n + 1, sizeof(Lab *)), *l;

        if (!v)
                return NULL;
        if (m->labs)
                HASHMAP_FOREACH(l, m->labs)
                        v[i++] = l;
        qsort(v, n, sizeof(Lab *), compare_labs);
        if (ret_n)
                *ret_n = n;
        return v;
}
