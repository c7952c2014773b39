/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "caller.h"
#include "gw-error.h"
#include "program.h"

/* Who may do what with a program (docs/programs.md "Providers"). A user's own program is its
 * owner's alone. A provider's program ("ProgramProviders") is managed (uploaded, replaced,
 * removed) by the provider's admins and seen and run by its admins and users; for anyone else
 * it does not exist, as another user's program does not. Membership is by the caller's account
 * name and groups, matched as "Admins" is (auth_user_list_matches()); root is no exception. */
typedef enum ProgramRole {
        PROGRAM_ROLE_NONE,      /* not found: 404 */
        PROGRAM_ROLE_USER,      /* sees and runs; managing is 403 */
        PROGRAM_ROLE_ADMIN,     /* the owner of an own program, an admin of a provider's */
} ProgramRole;

/* The caller's role in the provider of that name (NONE for an unknown provider). */
ProgramRole program_provider_role(Manager *m, const Caller *c, const char *provider);
/* The caller's role for program p. */
ProgramRole program_role(Manager *m, const Caller *c, const Program *p);

/* Whether the caller may upload to provider (NULL: their own programs, always). Otherwise sets
 * e: NotFound for an unknown provider or a non-member (as the serverless gateway does: "Provider
 * [P] was not found."), AccessDenied for a provider's user. */
int program_provider_check_upload(Manager *m, const Caller *c, const char *provider, GwError *e);
/* The same for replacing or removing p: AccessDenied for a user of its provider. */
int program_check_manage(Manager *m, const Caller *c, const Program *p, GwError *e);
