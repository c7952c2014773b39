/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STAND-IN, weak: image_registry_ensure_ready() for the job side until the image registry
 * defines its own (a strong definition there replaces this one at link time; then delete this
 * file). A READY image is returned at once (from the loop), anything else is pulled. */
#include <systemd/sd-event.h>

#include "image-pull.h"
#include "image-registry.h"
#include "log.h"
#include "manager.h"

typedef struct ReadyCall {
        Manager *manager;
        char *image_id;
        ImageReadyCallback done;
        void *userdata;
} ReadyCall;

static int on_ready_defer(sd_event_source *s, void *userdata) {
        ReadyCall *c = userdata;
        Image *i = image_registry_get(c->manager, c->image_id);
        GwError e = { .code = GW_ERROR_NO_SUCH_IMAGE, .message = (char *) "The image was removed." };

        if (i && i->status == IMAGE_READY)
                c->done(c->manager, i, NULL, c->userdata);
        else
                c->done(c->manager, NULL, &e, c->userdata);
        free(c->image_id);
        free(c);
        sd_event_source_disable_unref(s);
        return 0;
}

static void on_pull_finished(Manager *m, Image *image, const GwError *error, void *userdata) {
        ReadyCall *c = userdata;
        GwError e = { .code = GW_ERROR_INTERNAL, .message = (char *) "The image could not be pulled." };

        if (image && image->status == IMAGE_READY)
                c->done(m, image, NULL, c->userdata);
        else if (error && gw_error_is_set(error))
                c->done(m, NULL, error, c->userdata);
        else {
                if (image && image->status_message)
                        e.message = image->status_message;
                c->done(m, NULL, &e, c->userdata);
        }
        free(c);
}

__attribute__((weak)) int image_registry_ensure_ready(Manager *m, const char *reference, uid_t uid,
                                                      ImageReadyCallback done, void *userdata) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Image *i = image_registry_lookup(m, reference);
        ReadyCall *c;
        int r;

        c = calloc(1, sizeof(ReadyCall));
        if (!c)
                return -ENOMEM;
        *c = (ReadyCall) { .manager = m, .done = done, .userdata = userdata };

        if (i && i->status == IMAGE_READY) {
                c->image_id = strdup(i->id);
                if (!c->image_id || sd_event_add_defer(m->event, NULL, on_ready_defer, c) < 0) {
                        free(c->image_id);
                        free(c);
                        return -ENOMEM;
                }
                return 0;
        }

        ImagePullRequest req = {
                .reference = reference,
                .caller = { .uid = uid, .gid = (gid_t) -1, .pidfd = -1 },
        };
        r = image_pull_start(m, &req, NULL, on_pull_finished, c, &e);
        if (r < 0) {
                free(c);
                return log_warning_errno(r, "Cannot pull %s: %s", reference, strna(e.message));
        }
        return 0;
}
