/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STAND-IN, weak: image_registry_ensure_ready() for the job side until the image registry
 * defines its own (a strong definition there replaces this one at link time; then delete this
 * file). A READY image is returned at once (from the loop), anything else is pulled. */
#include <assert.h>
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

static void ready_call_free(void *userdata) {
        ReadyCall *c = userdata;

        free(c->image_id);
        free(c);
}

static int on_ready_defer(sd_event_source *s, void *userdata) {
        ReadyCall *c = userdata;
        Image *i = image_registry_get(c->manager, c->image_id);
        GwError e = { .code = GW_ERROR_NO_SUCH_IMAGE, .message = (char *) "The image was removed." };

        if (i && i->status == IMAGE_READY)
                c->done(c->manager, i, NULL, c->userdata);
        else
                c->done(c->manager, NULL, &e, c->userdata);
        /* The loop holds the only reference (floating); giving it up frees the source, and
         * with it c. */
        (void) sd_event_source_set_floating(s, false);
        return 0;
}

/* A pull's userdata cannot be freed by anyone if gatewayd exits before the pull ends, so it is
 * the caller's own (the job owns it); the callback is remembered here instead. */
static ImageReadyCallback pull_done;

static void on_pull_finished(Manager *m, Image *image, const GwError *error, void *userdata) {
        GwError e = { .code = GW_ERROR_INTERNAL, .message = (char *) "The image could not be pulled." };

        if (image && image->status == IMAGE_READY)
                pull_done(m, image, NULL, userdata);
        else if (error && gw_error_is_set(error))
                pull_done(m, NULL, error, userdata);
        else {
                if (image && image->status_message)
                        e.message = image->status_message;
                pull_done(m, NULL, &e, userdata);
        }
}

__attribute__((weak)) int image_registry_ensure_ready(Manager *m, const char *reference, uid_t uid,
                                                      ImageReadyCallback done, void *userdata) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Image *i = image_registry_lookup(m, reference);
        sd_event_source *s = NULL;
        ReadyCall *c;
        int r;

        if (i && i->status == IMAGE_READY) {
                c = calloc(1, sizeof(ReadyCall));
                if (!c)
                        return -ENOMEM;
                *c = (ReadyCall) { .manager = m, .done = done, .userdata = userdata, .image_id = strdup(i->id) };
                if (!c->image_id || sd_event_add_defer(m->event, &s, on_ready_defer, c) < 0) {
                        ready_call_free(c);
                        return -ENOMEM;
                }
                (void) sd_event_source_set_destroy_callback(s, ready_call_free);
                (void) sd_event_source_set_floating(s, true);
                sd_event_source_unref(s);
                return 0;
        }

        assert(!pull_done || pull_done == done);
        pull_done = done;
        ImagePullRequest req = {
                .reference = reference,
                .caller = { .uid = uid, .gid = (gid_t) -1, .pidfd = -1 },
        };
        r = image_pull_start(m, &req, NULL, on_pull_finished, userdata, &e);
        if (r < 0)
                return log_warning_errno(r, "Cannot pull %s: %s", reference, strna(e.message));
        return 0;
}
