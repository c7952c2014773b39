/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stddef.h>

/* Registry credentials a network caller carries with a request: `shifterimg login` stores a
 * "user:password" per location and sends them, munge-encoded with every request, as the payload
 * {"authorized_locations": {"<location>|default": "user:password", …}} (Shifter's
 * doc/api/authentication.rst). They are used for a pull from that location's registry and
 * nowhere else, never logged, and wiped when the request ends. */

#define REGISTRY_LOGINS_MAX 64U

typedef struct RegistryLogin {
        char *location;
        char *username;
        char *password;
} RegistryLogin;

typedef struct RegistryLogins {
        RegistryLogin *logins;
        size_t n;
        /* The payload carried logins that are not usable (not "user:password"): said by a pull
         * that would have used them, rather than silently pulling without. */
        char *error;
} RegistryLogins;

/* A munge credential's payload. An empty payload, or one that is not a JSON object with
 * "authorized_locations" (Shifter ignores those too), gives *ret = NULL and 0; a malformed
 * "authorized_locations" gives logins with error set. -ENOMEM only. */
int registry_logins_from_munge_payload(const void *payload, size_t size, RegistryLogins **ret);

/* The login for location (a Locations name), else the "default" one, else NULL. */
const RegistryLogin *registry_logins_find(const RegistryLogins *l, const char *location);

/* {"username", "password"} as image_pull_start() takes them. */
json_object *registry_login_to_json(const RegistryLogin *login);

/* Wipes the secrets. */
RegistryLogins *registry_logins_free(RegistryLogins *l);

static inline void registry_logins_freep(RegistryLogins **l) {
        registry_logins_free(*l);
}
