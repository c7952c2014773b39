/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "caller.h"
#include "gw-error.h"
#include "platform.h"
#include "program.h"

/* The program registry (docs/programs.md): users' uploaded programs. A program's directory
 * STATE/programs/ID holds its squashfs, built by "gateway-worker program" from the artifact
 * (gatewayd never parses the archive itself); its row is committed once the squashfs is in
 * place, and only then is the upload answered. A directory without a row (a crash in between)
 * is removed at the next start. Authorization is the surfaces' job: a program is only ever
 * found for its owner (program_registry_find()). */

int program_registry_load(Manager *m);
void program_registry_free(Manager *m);

Program *program_registry_get(Manager *m, const char *id);
/* The caller's own program of that title, or NULL: another user's program does not exist for them. */
Program *program_registry_find(Manager *m, uid_t uid, const char *title);
/* Provider's program of that title, whoever asks (check program_role()). */
Program *program_registry_find_provider(Manager *m, const char *provider, const char *title);
/* What the surfaces look up: the caller's own program (provider NULL) or provider's program if
 * the caller is one of its admins or users; NULL otherwise (404). */
Program *program_registry_lookup(Manager *m, const Caller *c, const char *provider, const char *title);
/* The programs the caller sees: their own, then those of the providers they belong to, by
 * provider and title (borrowed, NULL-terminated; free the array only). */
Program **program_registry_list(Manager *m, const Caller *c, size_t *ret_n);

/* Where uploads are received before they are handed to a worker: STATE/programs/.uploads. */
int program_registry_upload_dir(Manager *m, char **ret);

/* A program's own image: InvalidArgument if reference is none, AccessDenied unless ProgramImages
 * permits it and its registry is one of Locations (as for a pull: refused before anything
 * connects). *ret_normalized (may be NULL): the reference normalised (reference.h). */
int program_registry_check_image(Manager *m, const char *reference, char **ret_normalized, GwError *e);

/* Takes meta (a validated, unattached Program; meta->provider set for a provider's program, which
 * only the provider's admins may upload: program_provider_check_upload()) and the artifact file
 * (renamed into the program's directory, or removed on failure). Returns 0 if cb will be called
 * (with the program or with NULL and an error), < 0 with e set if refused at once (the title exists
 * and !replace, or an upload of it is under way: AlreadyExists; meta's image refused:
 * program_registry_check_image()). artifact_path NULL: no artifact, allowed for a program on an
 * image of its own (without an entrypoint: the image's runs), which gets an empty layer. With
 * replace, an upload of a title the caller has updates that program once the new squashfs is built
 * (same id; jobs that run keep the layer they started with, removed once none of the program's
 * jobs is unfinished). */
typedef void (*ProgramUploaded)(Manager *m, Program *p, const GwError *e, void *userdata);
int program_registry_upload(Manager *m, const Caller *c, Program *meta, const char *artifact_path, bool replace,
                            ProgramUploaded cb, void *userdata, GwError *e);

/* A program job ended (its platform let go of it): earlier layers nobody uses go. */
void program_registry_job_ended(Manager *m, const Job *j);

/* PlatformLayerHooks.foreach_layer: the current layer of every program, and earlier ones still
 * kept for their jobs. */
int program_registry_foreach_layer(Platform *pl, int (*fn)(Platform *pl, const char *layer, const char *squashfs_path, void *userdata),
                                   void *userdata);
extern const PlatformLayerHooks program_layer_hooks;

/* Removes the row (committed first), then the directory. Conflict while one of its jobs has not
 * finished: it runs from the squashfs. */
int program_registry_remove(Manager *m, Program *p, GwError *e);
