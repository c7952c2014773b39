/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STAND-IN for the image registry while the real one (image-registry.c) is being written: lets
 * the job side be built and tested. meson.build compiles this file only if image-registry.c does
 * not exist. An image is READY if $GATEWAYD_STANDIN_IMAGE_DIR/<reference with '/' and ':' as '_'>
 * .squashfs exists (with an optional .meta.json beside it); anything else fails like a pull. */
#include <systemd/sd-event.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "manager.h"

typedef struct StandinCall {
        Manager *manager;
        Image image;
        GwError error;
        ImageReadyCallback done;
        void *userdata;
} StandinCall;

static int on_defer(sd_event_source *s, void *userdata) {
        StandinCall *c = userdata;

        c->done(c->manager, gw_error_is_set(&c->error) ? NULL : &c->image,
                gw_error_is_set(&c->error) ? &c->error : NULL, c->userdata);
        manager_busy_unref(c->manager);
        free(c->image.squashfs_path);
        free(c->image.meta_path);
        free(c->image.reference);
        gw_error_free(&c->error);
        free(c);
        sd_event_source_disable_unref(s);
        return 0;
}

int image_registry_ensure_ready(Manager *m, const char *reference, uid_t uid, ImageReadyCallback done, void *userdata) {
        const char *dir = getenv("GATEWAYD_STANDIN_IMAGE_DIR");
        _cleanup_free_ char *name = strdup(reference);
        StandinCall *c;
        int r;

        if (!name)
                return -ENOMEM;
        for (char *p = name; *p; p++)
                if (*p == '/' || *p == ':' || *p == '@')
                        *p = '_';
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (StandinCall) { .manager = m, .done = done, .userdata = userdata };
        c->image.status = IMAGE_READY;
        c->image.reference = strdup(reference);
        if (!dir)
                gw_error_set(&c->error, GW_ERROR_UNAVAILABLE, "Image registry not available (stand-in without GATEWAYD_STANDIN_IMAGE_DIR).");
        else if (asprintf(&c->image.squashfs_path, "%s/%s.squashfs", dir, name) < 0 ||
                 asprintf(&c->image.meta_path, "%s/%s.meta.json", dir, name) < 0)
                gw_error_set(&c->error, GW_ERROR_INTERNAL, "Out of memory.");
        else if (access(c->image.squashfs_path, R_OK) < 0)
                gw_error_set(&c->error, GW_ERROR_NO_SUCH_IMAGE, "Pull of %s failed: manifest unknown.", reference);
        else if (access(c->image.meta_path, R_OK) < 0)
                c->image.meta_path = mfree(c->image.meta_path);

        r = sd_event_add_defer(m->event, NULL, on_defer, c);
        if (r < 0) {
                free(c->image.squashfs_path);
                free(c->image.meta_path);
                free(c->image.reference);
                gw_error_free(&c->error);
                free(c);
                return r;
        }
        manager_busy_ref(m);
        return 0;
}

void image_mark_used(Image *image) {
}
