/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "platform.h"

#include "caller.h"
#include "image.h"

/* Image records: committed to the database first, then changed in memory, then announced. */

int image_registry_load(Manager *m);
void image_registry_free(Manager *m);

/* Records are per platform, as Shifter's are per system: the same image (id) pulled for two
 * platforms is two records. */
Image *image_registry_get(Manager *m, const char *platform, const char *id);
/* By id or "sha256:<id>" on the platform, or a reference it was pulled as there. platform NULL:
 * by id the default platform's record, else another platform's (the only one, usually); by
 * reference on the default platform. */
Image *image_registry_lookup(Manager *m, const char *platform, const char *id_or_reference);
/* By a reference it was pulled as (or its canonical spelling) on the given platform. */
Image *image_registry_lookup_on(Manager *m, const char *platform, const char *reference);
/* The references that point at the image on its platform, unsorted (strv, caller frees). */
char **image_registry_tags(Image *i);
bool image_is_visible(const Image *i, const Caller *c);

/* Creates the record if needed (status PENDING) and returns it; a new record is announced on the
 * bus by bus_image_emit_added() once its ACL is set. */
int image_registry_add(Manager *m, const char *id, const char *digest, const char *reference, const char *platform,
                       Image **ret);
int image_registry_save(Image *i);
int image_registry_set_status(Image *i, ImageStatus status, const char *message);
int image_registry_tag(Image *i, const char *reference);
int image_registry_clear_acl(Image *i);
int image_registry_set_acl(Image *i, const uid_t *uids, size_t n_uids, const gid_t *gids, size_t n_gids);

int image_registry_remove(Image *i, GwError *e);
int image_registry_expire(Image *i, GwError *e);
int image_registry_start_expiry(Manager *m);

/* The end of a TRANSFER that no pull waits for (one resumed at start): READY, or FAILURE with
 * message when r < 0. */
void image_registry_transfer_done(Image *i, int r, const char *message);
/* What every platform is given to report deployments and learn its READY images. */
extern const PlatformImageHooks image_platform_hooks;

/* Visible images sorted by reference (borrowed pointers, NULL-terminated). */
Image **image_registry_list(Manager *m, const Caller *c);
