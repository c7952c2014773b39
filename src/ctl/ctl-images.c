/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-bus.h"
#include "ctl-images.h"
#include "ctl-polkit-agent.h"
#include "ctl-show.h"
#include "ctl-table.h"
#include "ctl-util.h"
#include "ctl.h"
#include "json-util.h"
#include "log.h"

/* The verbs that look at and remove images: images, image show, rmi, image expire. "pull"
 * lives in ctl-pull.c. */

#define IMAGE_ID_LENGTH 64
#define IMAGE_SHORT_ID_LENGTH 12

typedef struct ImageListEntry {
        char *id, *reference, *status, *platform;
        uint64_t size;
} ImageListEntry;

static void image_list_free(ImageListEntry *l, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(l[i].id);
                free(l[i].reference);
                free(l[i].status);
                free(l[i].platform);
        }
        free(l);
}

/* By reference, then by id: the same content under two platforms stays together. */
static int image_list_entry_compare(const void *a, const void *b) {
        const ImageListEntry *x = a, *y = b;
        int c = strcmp(x->reference, y->reference);
        return c != 0 ? c : strcmp(x->id, y->id);
}

static int image_list_append(ImageListEntry **l, size_t *n, const char *id, const char *reference,
                             const char *status, uint64_t size, const char *platform) {
        ImageListEntry *t = reallocarray(*l, *n + 1, sizeof(ImageListEntry));

        if (!t)
                return -ENOMEM;
        *l = t;
        t[*n] = (ImageListEntry) { strdup(id), strdup(reference), strdup(status), strdup(platform), size };
        (*n)++;
        if (!t[*n - 1].id || !t[*n - 1].reference || !t[*n - 1].status || !t[*n - 1].platform)
                return -ENOMEM;
        return 0;
}

/* ListImages(): the images the caller may see, sorted. */
static int list_images(sd_bus *bus, ImageListEntry **ret, size_t *ret_n) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        const char *id, *reference, *status, *platform, *path;
        ImageListEntry *l = NULL;
        uint64_t size;
        size_t n = 0;
        int r;

        r = ctl_call_manager(bus, "ListImages", &error, &reply, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to list images: %s", ctl_bus_error_message(&error, r));

        r = sd_bus_message_enter_container(reply, 'a', "(ssstso)");
        while (r >= 0 &&
               (r = sd_bus_message_read(reply, "(ssstso)", &id, &reference, &status, &size, &platform, &path)) > 0)
                if (image_list_append(&l, &n, id, reference, status, size, platform) < 0) {
                        image_list_free(l, n);
                        return log_oom();
                }
        if (r < 0) {
                image_list_free(l, n);
                return log_error_errno(r, "Failed to parse reply of ListImages(): %m");
        }

        if (n > 0)
                qsort(l, n, sizeof(ImageListEntry), image_list_entry_compare);
        *ret = l;
        *ret_n = n;
        return 0;
}

/* What "images" prints as ID, and what a user will type back: hex digits only. */
static bool looks_like_id_prefix(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n >= IMAGE_ID_LENGTH)
                return false;
        for (; *s; s++)
                if (!isxdigit((unsigned char) *s) || isupper((unsigned char) *s))
                        return false;
        return true;
}

/* The full id of the one visible image whose id starts with prefix. Returns 1 and the id, 0
 * if none matches, or an error set in *error if several do. */
static int resolve_id_prefix(sd_bus *bus, const char *prefix, char **ret, sd_bus_error *error) {
        ImageListEntry *l = NULL;
        size_t n = 0, matches = 0;
        const char *found = NULL;
        int r;

        r = list_images(bus, &l, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (strneq(l[i].id, prefix, strlen(prefix)) && (!found || !streq(found, l[i].id))) {
                        found = l[i].id;
                        matches++;
                }
        if (matches > 1) {
                image_list_free(l, n);
                return sd_bus_error_setf(error, "org.gatewayd.Gateway1.Error.InvalidArgument",
                                         "'%s' is ambiguous: %zu image IDs start with it; give more digits.",
                                         prefix, matches);
        }
        if (matches == 0) {
                image_list_free(l, n);
                return 0;
        }
        *ret = strdup(found);
        image_list_free(l, n);
        return *ret ? 1 : -ENOMEM;
}

/* With --platform, the record of that platform: GetImageOn(), RemoveImageOn(), ExpireImageOn(). */
static int image_call_named(sd_bus *bus, const char *method, const char *name, sd_bus_error *error,
                            sd_bus_message **reply) {
        char on[64];

        if (!arg_pull_platform)
                return ctl_call_manager(bus, method, error, reply, "s", name);
        snprintf(on, sizeof(on), "%sOn", method);
        return ctl_call_manager(bus, on, error, reply, "ss", arg_pull_platform, name);
}

int image_call(sd_bus *bus, const char *method, const char *name, sd_bus_error *error, sd_bus_message **reply) {
        _cleanup_bus_error_free_ sd_bus_error prefix_error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *id = NULL;
        int r, k;

        /* The daemon knows full ids and references; the short ids of "images" are resolved
         * here, but only when nothing is known by that exact name (a reference may be hex). */
        r = image_call_named(bus, method, name, error, reply);
        if (r != -ENOENT || !looks_like_id_prefix(name))
                return r;

        k = resolve_id_prefix(bus, name, &id, &prefix_error);
        if (k == 0)
                return r;
        sd_bus_error_free(error);
        if (k < 0)
                return sd_bus_error_is_set(&prefix_error) ? (sd_bus_error_move(error, &prefix_error), k)
                                                          : sd_bus_error_set_errno(error, k);
        return image_call_named(bus, method, id, error, reply);
}

int image_get_json(sd_bus *bus, const char *name, json_object **ret) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        _cleanup_free_ char *msg = NULL;
        const char *text;
        int r;

        r = image_call(bus, "GetImage", name, &error, &reply);
        if (r < 0)
                return log_error_errno(r, "Failed to get image '%s': %s", name, ctl_bus_error_message(&error, r));
        r = sd_bus_message_read(reply, "s", &text);
        if (r < 0)
                return log_error_errno(r, "Failed to parse reply of GetImage(): %m");
        r = json_parse_text(text, ret, &msg);
        if (r < 0)
                return log_error_errno(r, "gatewayd sent invalid JSON from GetImage(): %s", strna(msg));
        return 0;
}

static int verb_images_json(sd_bus *bus, ImageListEntry *l, size_t n) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();

        if (!a)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
                _cleanup_free_ char *msg = NULL;
                const char *text;
                json_object *o;
                int r;

                /* By full id: an image removed since ListImages() is simply left out. */
                r = ctl_call_manager(bus, "GetImage", &error, &reply, "s", l[i].id);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return log_error_errno(r, "Failed to get image '%s': %s", l[i].id,
                                               ctl_bus_error_message(&error, r));
                r = sd_bus_message_read(reply, "s", &text);
                if (r < 0)
                        return log_error_errno(r, "Failed to parse reply of GetImage(): %m");
                r = json_parse_text(text, &o, &msg);
                if (r < 0)
                        return log_error_errno(r, "gatewayd sent invalid JSON from GetImage(): %s", strna(msg));
                if (json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        return log_oom();
                }
        }
        return json_print(a, arg_json == JSON_PRETTY, stdout);
}

static int images_table(ImageListEntry *l, size_t n) {
        _cleanup_table_free_ Table *t = NULL;
        int r = 0;

        t = table_new("ID", "REFERENCE", "STATUS", "SIZE", "PLATFORM", NULL);
        if (!t)
                return log_oom();
        table_set_header(t, arg_legend);
        table_set_shrinkable(t, 1, 24);
        for (size_t i = 0; i < n && r >= 0; i++) {
                char size[FORMAT_BYTES_MAX], id[IMAGE_SHORT_ID_LENGTH + 1];

                snprintf(id, sizeof(id), "%s", l[i].id);
                /* A size is known only once the squashfs exists. */
                r = table_add_row(t, id, l[i].reference, l[i].status,
                                  l[i].size > 0 ? format_bytes(size, sizeof(size), l[i].size) : "-", l[i].platform);
        }
        if (r < 0)
                return log_oom();
        return table_print_listing(t, arg_legend, "image", "images");
}

int verb_images(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        ImageListEntry *l = NULL;
        size_t n = 0;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        r = list_images(bus, &l, &n);
        if (r < 0)
                return r;
        r = arg_json != JSON_OFF ? verb_images_json(bus, l, n) : images_table(l, n);
        image_list_free(l, n);
        return r;
}

/* Members of the image record shown with a label of their own, in this order; the rest of the
 * record follows under its JSON names so that a newer daemon's additions still appear. */
static const char * const image_shown[] = {
        "id", "digest", "reference", "platform", "status", "message", "size", "private", "progress",
        "createdAt", "updatedAt", "lastUsedAt", NULL,
};

static void show_record_string(json_object *o, const char *key, const char *label) {
        show_field(label, json_get_string(o, key));
}

static void show_progress(json_object *p) {
        char done[FORMAT_BYTES_MAX], total[FORMAT_BYTES_MAX], v[128];
        json_object *f = json_get_typed(p, "fraction", json_type_double);
        uint64_t bytes_total = json_get_u64(p, "bytesTotal"), layers_total = json_get_u64(p, "layersTotal");
        size_t l;

        l = (size_t) snprintf(v, sizeof(v), "%.0f%%", f ? json_object_get_double(f) * 100 : 0.0);
        if (bytes_total > 0 && l < sizeof(v))
                l += (size_t) snprintf(v + l, sizeof(v) - l, ", %s/%s",
                                       format_bytes(done, sizeof(done), json_get_u64(p, "bytesDone")),
                                       format_bytes(total, sizeof(total), bytes_total));
        if (layers_total > 0 && l < sizeof(v))
                (void) snprintf(v + l, sizeof(v) - l, ", layers %" PRIu64 "/%" PRIu64,
                                json_get_u64(p, "layersDone"), layers_total);
        show_field("Progress", v);
}

static void show_image_record(json_object *o) {
        char buf[FORMAT_BYTES_MAX];
        json_object *v;
        const char *status = json_get_string(o, "status");
        uint64_t size = json_get_u64(o, "size");
        size_t width = MAX((size_t) SHOW_LABEL_WIDTH, show_json_fields_label_width(o, image_shown));

        show_set_label_width(width);
        show_record_string(o, "id", "Id");
        show_record_string(o, "digest", "Digest");
        show_record_string(o, "reference", "Reference");
        show_record_string(o, "platform", "Platform");
        show_field("Status", status);
        if (json_get_string(o, "message"))
                show_record_string(o, "message", "Message");
        show_field("Size", size > 0 ? format_bytes(buf, sizeof(buf), size) : NULL);
        v = json_get_typed(o, "private", json_type_boolean);
        show_field("Private", v && json_object_get_boolean(v) ? "yes" : "no");
        /* Progress means something only while a pull is under way. */
        v = json_get_typed(o, "progress", json_type_object);
        if (v && status && (streq(status, "PENDING") || streq(status, "PULLING") || streq(status, "CONVERSION") ||
                            streq(status, "TRANSFER")))
                show_progress(v);
        show_record_string(o, "createdAt", "Created");
        show_record_string(o, "updatedAt", "Updated");
        show_record_string(o, "lastUsedAt", "Last used");
        show_json_fields(o, image_shown);
}

int verb_image_show(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *record = NULL;
        int r;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        r = image_get_json(bus, argv[0], &record);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF)
                return json_print(record, arg_json == JSON_PRETTY, stdout);
        show_image_record(record);
        return 0;
}

/* RemoveImage() or ExpireImage() on every name; like "service rm", every name is tried and
 * the first error is returned after all were. */
static int change_images(int argc, char *argv[], const char *method, const char *what) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_polkit_agent_ pid_t agent = 0;
        int r, ret = 0;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        agent = ctl_polkit_agent_open();

        for (int i = 0; i < argc; i++) {
                _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;

                r = image_call(bus, method, argv[i], &error, NULL);
                if (r < 0) {
                        log_error_errno(r, "Failed to %s image '%s': %s", what, argv[i],
                                        ctl_bus_error_message(&error, r));
                        if (ret == 0)
                                ret = r;
                }
        }
        return ret;
}

int verb_image_remove(int argc, char *argv[], char *tail[]) {
        return change_images(argc, argv, "RemoveImage", "remove");
}

int verb_image_expire(int argc, char *argv[], char *tail[]) {
        return change_images(argc, argv, "ExpireImage", "expire");
}
