/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "hashmap.h"
#include "macro.h"
#include "manager.h"
#include "polkit-grants.h"

/* A burst of distinct subjects (a client per request) must not grow the map without end. */
#define POLKIT_GRANTS_MAX 1024U

typedef struct PolkitGrant {
        char *key;
        uint64_t until;         /* CLOCK_MONOTONIC */
} PolkitGrant;

static uint64_t now_monotonic_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void polkit_grant_free(PolkitGrant *g) {
        if (!g)
                return;
        free(g->key);
        free(g);
}

char *polkit_grant_key(const char *action, const char *bus_sender, int pid, uint64_t start_time, unsigned uid) {
        char *k;
        int r;

        if (bus_sender)
                r = asprintf(&k, "%s bus:%s", action, bus_sender);
        else
                r = asprintf(&k, "%s pid:%d:%" PRIu64 ":%u", action, pid, start_time, uid);
        return r < 0 ? NULL : k;
}

bool polkit_grants_has(Manager *m, const char *key) {
        PolkitGrant *g;

        if (!m->polkit_grants || !key)
                return false;
        g = hashmap_get(m->polkit_grants, key);
        if (!g)
                return false;
        if (g->until > now_monotonic_usec())
                return true;
        hashmap_remove(m->polkit_grants, key);
        polkit_grant_free(g);
        return false;
}

static void polkit_grants_expire(Manager *m, uint64_t now) {
        _cleanup_free_ PolkitGrant **old = NULL;
        size_t n = 0;
        PolkitGrant *g;

        old = calloc(hashmap_size(m->polkit_grants) + 1, sizeof(PolkitGrant *));
        if (!old)
                return;
        HASHMAP_FOREACH(g, m->polkit_grants)
                if (g->until <= now)
                        old[n++] = g;
        for (size_t i = 0; i < n; i++) {
                hashmap_remove(m->polkit_grants, old[i]->key);
                polkit_grant_free(old[i]);
        }
}

void polkit_grants_add(Manager *m, const char *key) {
        uint64_t now = now_monotonic_usec();
        PolkitGrant *g;

        if (!key)
                return;
        if (!m->polkit_grants && !(m->polkit_grants = hashmap_new()))
                return;
        g = hashmap_get(m->polkit_grants, key);
        if (g) {
                g->until = now + POLKIT_GRANT_USEC;
                return;
        }
        if (hashmap_size(m->polkit_grants) >= POLKIT_GRANTS_MAX) {
                polkit_grants_expire(m, now);
                if (hashmap_size(m->polkit_grants) >= POLKIT_GRANTS_MAX)
                        return;  /* asked again next time: only a cost */
        }
        g = calloc(1, sizeof(PolkitGrant));
        if (!g || !(g->key = strdup(key))) {
                free(g);
                return;
        }
        g->until = now + POLKIT_GRANT_USEC;
        if (hashmap_put(m->polkit_grants, g->key, g) < 0)
                polkit_grant_free(g);
}

void polkit_grants_free(Manager *m) {
        PolkitGrant *g;

        if (!m->polkit_grants)
                return;
        HASHMAP_FOREACH(g, m->polkit_grants)
                polkit_grant_free(g);
        m->polkit_grants = hashmap_free(m->polkit_grants);
}
