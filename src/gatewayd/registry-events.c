/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "manager.h"
#include "registry-events.h"

struct RegistrySubscriber {
        RegistryEventKind kind;
        RegistryEventCallback callback;
        void *userdata;
        RegistrySubscriber *next;
};

int registry_subscribe(Manager *m, RegistryEventKind kind, RegistryEventCallback cb, void *userdata) {
        RegistrySubscriber *s, **tail;

        if (kind < 0 || kind >= _REGISTRY_EVENT_KIND_MAX || !cb)
                return -EINVAL;
        s = calloc(1, sizeof(RegistrySubscriber));
        if (!s)
                return -ENOMEM;
        *s = (RegistrySubscriber) { .kind = kind, .callback = cb, .userdata = userdata };
        for (tail = &m->registry_subscribers; *tail; tail = &(*tail)->next)
                ;
        *tail = s;
        return 0;
}

void registry_subscribers_free(Manager *m) {
        while (m->registry_subscribers) {
                RegistrySubscriber *s = m->registry_subscribers;
                m->registry_subscribers = s->next;
                free(s);
        }
}

void registry_publish(Manager *m, const RegistryEvent *e) {
        for (RegistrySubscriber *s = m->registry_subscribers; s; s = s->next)
                if (s->kind == e->kind)
                        s->callback(m, e, s->userdata);
}
