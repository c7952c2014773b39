/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json-util.h"
#include "macro.h"
#include "registry-logins.h"

static void free_secret(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

RegistryLogins *registry_logins_free(RegistryLogins *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n; i++) {
                free(l->logins[i].location);
                free_secret(l->logins[i].username);
                free_secret(l->logins[i].password);
        }
        free(l->logins);
        free(l->error);
        free(l);
        return NULL;
}

static int logins_fail(RegistryLogins *l, const char *format, ...) _printf_(2, 3);
static int logins_fail(RegistryLogins *l, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&l->error, format, ap);
        va_end(ap);
        if (r < 0) {
                l->error = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* One "location": "user:password" entry. Split at the first ':': user names have none, passwords
 * may (Shifter's worker drops every further ':' of a password; that is its bug, not a format). */
static int logins_add(RegistryLogins *l, const char *location, json_object *v) {
        const char *s = json_object_get_string(v), *colon;
        RegistryLogin *login;

        if (!*location)
                return logins_fail(l, "authorized_locations: a location name must not be empty");
        if (!json_object_is_type(v, json_type_string) || !(colon = strchr(s, ':')) || colon == s)
                return logins_fail(l, "authorized_locations.%s: expected \"user:password\"", location);
        if (l->n >= REGISTRY_LOGINS_MAX)
                return logins_fail(l, "authorized_locations: more than 64 locations (at %s)", location);

        login = &l->logins[l->n];
        *login = (RegistryLogin) {
                .location = strdup(location),
                .username = strndup(s, colon - s),
                .password = strdup(colon + 1),
        };
        l->n++;         /* counted at once: registry_logins_free() cleans up after a failure */
        return login->location && login->username && login->password ? 0 : -ENOMEM;
}

int registry_logins_from_munge_payload(const void *payload, size_t size, RegistryLogins **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_(registry_logins_freep) RegistryLogins *l = NULL;
        json_object *locations;
        const char *reason;
        size_t offset;
        int r;

        *ret = NULL;
        if (size == 0)
                return 0;
        r = json_parse_untrusted(payload, size, &o, &offset, &reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || !json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, "authorized_locations", &locations))
                return 0;

        l = calloc(1, sizeof(RegistryLogins));
        if (!l)
                return -ENOMEM;
        if (!json_object_is_type(locations, json_type_object)) {
                r = logins_fail(l, "authorized_locations: expected an object of \"location\": \"user:password\"");
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(l);
                return 0;
        }
        l->logins = calloc(MIN((size_t) json_object_object_length(locations), (size_t) REGISTRY_LOGINS_MAX) + 1,
                           sizeof(RegistryLogin));
        if (!l->logins)
                return -ENOMEM;
        json_object_object_foreach(locations, location, v) {
                r = logins_add(l, location, v);
                if (r < 0)
                        return r;
                if (l->error)
                        break;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

const RegistryLogin *registry_logins_find(const RegistryLogins *l, const char *location) {
        const RegistryLogin *fallback = NULL;

        for (size_t i = 0; l && i < l->n; i++) {
                if (location && strcasecmp(l->logins[i].location, location) == 0)
                        return &l->logins[i];
                if (streq(l->logins[i].location, "default"))
                        fallback = &l->logins[i];
        }
        return fallback;
}

json_object *registry_login_to_json(const RegistryLogin *login) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (json_object_object_add(o, "username", json_object_new_string(login->username)) < 0 ||
            json_object_object_add(o, "password", json_object_new_string(login->password)) < 0)
                return json_object_put(o), NULL;
        return o;
}
