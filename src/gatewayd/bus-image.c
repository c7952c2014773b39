/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-image.h"
#include "bus-util.h"
#include "image-pull.h"
#include "image-registry.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"

#define IMAGE_INTERFACE "org.gatewayd.Gateway1.Image"
#define ACTION_PULL_IMAGE "org.gatewayd.pull-image"
#define ACTION_MANAGE_IMAGES "org.gatewayd.manage-images"

/* Private images are invisible to those outside their ACL, on the bus as over HTTP. The object
 * is looked up for incoming calls (then the caller is checked) and when we emit its signals
 * (then there is no call being handled, and the signal goes out). */
static bool bus_caller_may_see(sd_bus *bus, Image *i) {
        sd_bus_message *m = sd_bus_get_current_message(bus);
        Caller c;

        if (!i->private_image || !m || !sd_bus_message_is_method_call(m, NULL, NULL))
                return true;
        return bus_get_caller(m, &c) >= 0 && image_is_visible(i, &c);
}

/* "<id>" is the default platform's record, "<id>@<platform>" another platform's (image_attach()). */
static int image_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                             void **found, sd_bus_error *error) {
        _cleanup_free_ char *id = NULL;
        Manager *m = userdata;
        const char *default_platform = config_platform_default(m->config)->name;
        char *at;
        Image *i;
        int r;

        r = sd_bus_path_decode(path, IMAGE_OBJECT_PREFIX, &id);
        if (r <= 0)
                return r;
        at = strchr(id, '@');
        if (at) {
                *at = '\0';
                if (streq(at + 1, default_platform))   /* that one is at "<id>" alone */
                        return 0;
        }
        i = image_registry_get(m, at ? at + 1 : default_platform, id);
        if (!i || !bus_caller_may_see(bus, i))
                return 0;
        *found = i;
        return 1;
}

static int image_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_strv_free_ char **l = calloc(hashmap_size(m->images) + 1, sizeof(char *));
        size_t n = 0;
        Image *i;

        if (!l)
                return -ENOMEM;
        HASHMAP_FOREACH(i, m->images) {
                if (!bus_caller_may_see(bus, i))
                        continue;
                if (!(l[n++] = strdup(i->object_path)))
                        return -ENOMEM;
        }
        *nodes = TAKE_PTR(l);
        return 1;
}

static int property_get_status(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Image *i = userdata;
        return sd_bus_message_append(reply, "s", image_status_to_string(i->status));
}

static int property_get_progress(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Image *i = userdata;
        return sd_bus_message_append(reply, "d", image_progress(i));
}

static const sd_bus_vtable image_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "s", bus_property_get_string, offsetof(Image, id), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Digest", "s", bus_property_get_string, offsetof(Image, digest), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Reference", "s", bus_property_get_string, offsetof(Image, reference), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Platform", "s", bus_property_get_string, offsetof(Image, platform), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Status", "s", property_get_status, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StatusMessage", "s", bus_property_get_string, offsetof(Image, status_message), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Progress", "d", property_get_progress, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BytesDone", "t", NULL, offsetof(Image, bytes_done), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BytesTotal", "t", NULL, offsetof(Image, bytes_total), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LayersDone", "u", NULL, offsetof(Image, layers_done), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LayersTotal", "u", NULL, offsetof(Image, layers_total), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Size", "t", NULL, offsetof(Image, size), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Private", "b", NULL, offsetof(Image, private_image), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastUsedTimestamp", "t", NULL, offsetof(Image, last_used_usec), 0),
        SD_BUS_VTABLE_END
};

int bus_image_register(Manager *m) {
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, NULL, IMAGE_OBJECT_PREFIX, IMAGE_INTERFACE, image_vtable, image_object_find, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add image object vtable: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, IMAGE_OBJECT_PREFIX, image_node_enumerator, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add image node enumerator: %m");
        return 0;
}

/* Signals are broadcast to the whole bus, so for a private image they carry only what an outsider
 * may see anyway: that some image (named by its digest) changes state. Its reference and status
 * message (which names the repository) are read with calls, which are ACL-checked. */

void bus_image_emit_added(Image *i) {
        Manager *m = i->manager;
        if (m->bus && !i->private_image && sd_bus_emit_object_added(m->bus, i->object_path) < 0)
                log_debug("Failed to announce image %s.", i->id);
}

void bus_image_emit_changed(Image *i) {
        Manager *m = i->manager;
        int r;

        if (!m->bus)
                return;
        if (i->private_image)
                r = sd_bus_emit_properties_changed(m->bus, i->object_path, IMAGE_INTERFACE, "Status", "Progress", "Size",
                                                   "Private", NULL);
        else
                r = sd_bus_emit_properties_changed(m->bus, i->object_path, IMAGE_INTERFACE, "Status", "StatusMessage",
                                                   "Progress", "Size", "Private", "Reference", NULL);
        if (r < 0)
                log_debug("Failed to announce change of image %s.", i->id);
}

void bus_image_emit_progress(Image *i) {
        Manager *m = i->manager;
        if (m->bus && sd_bus_emit_properties_changed(m->bus, i->object_path, IMAGE_INTERFACE, "Progress", "BytesDone",
                                                     "BytesTotal", "LayersDone", "LayersTotal", NULL) < 0)
                log_debug("Failed to announce progress of image %s.", i->id);
}

void bus_image_emit_removed(Image *i) {
        Manager *m = i->manager;
        if (m->bus && !i->private_image && sd_bus_emit_interfaces_removed(m->bus, i->object_path, IMAGE_INTERFACE, NULL) < 0)
                log_debug("Failed to announce removal of image %s.", i->id);
}

static int reply_image(sd_bus_message *message, Image *image, const GwError *e) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        if (gw_error_is_set(e) || !image) {
                gw_error_to_bus(e, &error);
                return sd_bus_reply_method_error(message, &error);
        }
        return sd_bus_reply_method_return(message, "o", image->object_path);
}

static void on_pull_resolved(Manager *m, Image *image, const GwError *e, void *userdata) {
        sd_bus_message *message = userdata;

        (void) reply_image(message, image, e);
        sd_bus_message_unref(message);
}

static int parse_pull_options(sd_bus_message *message, const char *text, ImagePullRequest *req, json_object **ret,
                              sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *o, *v;

        *ret = NULL;
        if (!text[0])
                return 0;
        if (bus_parse_json_argument(text, "options", &o, &e) < 0)
                return gw_error_to_bus(&e, error);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                gw_error_set(&e, GW_ERROR_BAD_REQUEST, "options: expected a JSON object");
                return gw_error_to_bus(&e, error);
        }
        json_object_object_foreach(o, k, val) {
                if (!streq(k, "platform") && !streq(k, "credentials") && !streq(k, "force")) {
                        gw_error_set(&e, GW_ERROR_INVALID_ARGUMENT, "%s: unknown option", k);
                        json_object_put(o);
                        return gw_error_to_bus(&e, error);
                }
        }
        if (json_object_object_get_ex(o, "platform", &v)) {
                if (!json_object_is_type(v, json_type_string))
                        gw_error_set(&e, GW_ERROR_INVALID_ARGUMENT, "platform: expected a string");
                req->platform = json_object_get_string(v);
        }
        if (json_object_object_get_ex(o, "credentials", &v))
                req->credentials = v; /* shape checked by image_pull_start() */
        if (json_object_object_get_ex(o, "force", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        gw_error_set(&e, GW_ERROR_INVALID_ARGUMENT, "force: expected true or false");
                req->force = json_object_get_boolean(v);
        }
        if (gw_error_is_set(&e)) {
                json_object_put(o);
                return gw_error_to_bus(&e, error);
        }
        *ret = o;
        return 0;
}

static int pull_image_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        ImagePullRequest req = {};
        json_object *options = NULL;
        const char *reference, *text;
        int r;

        r = sd_bus_message_read(message, "ss", &reference, &text);
        if (r < 0)
                return r;
        r = bus_get_caller(message, &req.caller);
        if (r < 0)
                return r;
        req.reference = reference;
        r = parse_pull_options(message, text, &req, &options, error);
        if (r < 0)
                return r;

        sd_bus_message_ref(message);
        r = image_pull_start(m, &req, on_pull_resolved, NULL, message, &e);
        json_object_put(options);
        if (r < 0) {
                sd_bus_message_unref(message);
                return gw_error_to_bus(&e, error);
        }
        return 1;
}

int method_pull_image(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, ACTION_PULL_IMAGE, pull_image_authorized, error);
}

int method_list_images(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Image **l = NULL;
        Caller c;
        int r;

        r = bus_get_caller(message, &c);
        if (r < 0)
                return r;
        l = image_registry_list(userdata, &c);
        if (!l)
                return -ENOMEM;
        r = sd_bus_message_new_method_return(message, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssstso)");
        for (Image **i = l; r >= 0 && *i; i++)
                r = sd_bus_message_append(reply, "(ssstso)", (*i)->id, (*i)->reference, image_status_to_string((*i)->status),
                                          (*i)->size, (*i)->platform, (*i)->object_path);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* Get/Remove/ExpireImage(s name): the default platform's record (or the only one); their *On
 * variants (s platform, s name): that platform's, "" as without. */
static Image *lookup_visible(Manager *m, sd_bus_message *message, sd_bus_error *error, int *ret) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *platform = "", *name;
        Image *i;
        Caller c;

        *ret = sd_bus_message_has_signature(message, "ss") ? sd_bus_message_read(message, "ss", &platform, &name) :
                sd_bus_message_read(message, "s", &name);
        if (*ret < 0)
                return NULL;
        if (platform[0] && !config_platform_find(m->config, platform)) {
                gw_error_set(&e, GW_ERROR_INVALID_ARGUMENT, "platform: unknown platform '%s'", platform);
                *ret = gw_error_to_bus(&e, error);
                return NULL;
        }
        *ret = bus_get_caller(message, &c);
        if (*ret < 0)
                return NULL;
        i = image_registry_lookup(m, platform[0] ? platform : NULL, name);
        if (!i || !image_is_visible(i, &c)) {
                gw_error_set(&e, GW_ERROR_NO_SUCH_IMAGE, "No image '%s'.", name);
                *ret = gw_error_to_bus(&e, error);
                return NULL;
        }
        return i;
}

int method_get_image(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Image *i;
        int r;

        i = lookup_visible(userdata, message, error, &r);
        if (!i)
                return r;
        return bus_reply_json(message, image_to_json(i));
}

static int change_image_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error, bool expire) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Image *i;
        int r;

        i = lookup_visible(m, message, error, &r);
        if (!i)
                return r;
        r = expire ? image_registry_expire(i, &e) : image_registry_remove(i, &e);
        if (r < 0)
                return gw_error_to_bus(&e, error);
        return sd_bus_reply_method_return(message, NULL);
}

static int remove_image_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        return change_image_authorized(m, message, error, false);
}

static int expire_image_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        return change_image_authorized(m, message, error, true);
}

int method_remove_image(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, ACTION_MANAGE_IMAGES, remove_image_authorized, error);
}

int method_expire_image(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, ACTION_MANAGE_IMAGES, expire_image_authorized, error);
}
