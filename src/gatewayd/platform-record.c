/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "platform-record.h"

static int platform_compare(const void *a, const void *b) {
        return strcmp((*(Platform * const *) a)->name, (*(Platform * const *) b)->name);
}

/* A hashmap's order is no order to show. */
Platform **platforms_sorted(Manager *m) {
        Platform **l = calloc(hashmap_size(m->platforms) + 1, sizeof(Platform *)), *p;
        size_t n = 0;

        if (!l)
                return NULL;
        HASHMAP_FOREACH(p, m->platforms)
                l[n++] = p;
        qsort(l, n, sizeof(Platform *), platform_compare);
        return l;
}

char *platform_image_dir(Platform *p) {
        char *images;

        if (p->config->local_image_dir)
                return strdup(p->config->local_image_dir);
        return asprintf(&images, "%s/images", p->manager->state_dir) < 0 ? NULL : images;
}

json_object *platform_nodes_json(Platform *p) {
        json_object *a = platform_report_nodes(p);

        /* An implementation that answers something other than an array is a bug there; the
         * surfaces still answer with what they document. */
        if (a && !json_object_is_type(a, json_type_array)) {
                log_warning("Platform '%s': its nodes are not a JSON array; shown as none.", p->name);
                json_object_put(a);
                a = NULL;
        }
        return a ?: json_object_new_array();
}

static json_object *strv_json(char **l) {
        json_object *a = json_object_new_array();

        for (char **s = l; a && s && *s; s++)
                json_object_array_add(a, json_object_new_string(*s));
        return a;
}

/* Where converted images of the platform are kept on the gateway host, and, for a remote
 * platform, where its nodes keep them. */
static void add_image_dirs(json_object *o, Platform *p) {
        const ConfigPlatform *c = p->config;
        _cleanup_free_ char *images = platform_image_dir(p);

        if (images)
                json_object_object_add(o, "imageDir", json_object_new_string(images));
        if (c->access == CONFIG_ACCESS_REMOTE)
                json_object_object_add(o, "nodeImageDir", c->ssh_image_dir ? json_object_new_string(c->ssh_image_dir) : NULL);
}

json_object *platform_to_json(Platform *p) {
        const ConfigPlatform *c = p->config, *d = config_platform_default(p->manager->config);
        const char *why_jobs = platform_unsupported(p, /* jobs= */ true);
        const char *why_images = platform_unsupported(p, /* jobs= */ false);
        json_object *o = json_object_new_object(), *state;

        if (!o)
                return NULL;
        json_object_object_add(o, "name", json_object_new_string(p->name));
        json_object_object_add(o, "kind", json_object_new_string(p->kind));
        json_object_object_add(o, "accesstype", json_object_new_string(c->accesstype ?: "local"));
        json_object_object_add(o, "default", json_object_new_boolean(d && streq(d->name, p->name)));
        json_object_object_add(o, "runsJobs", json_object_new_boolean(!why_jobs));
        json_object_object_add(o, "holdsImages", json_object_new_boolean(!why_images));
        if (why_jobs)
                json_object_object_add(o, "unsupported", json_object_new_string(why_jobs));
        add_image_dirs(o, p);
        if (c->access == CONFIG_ACCESS_REMOTE)
                json_object_object_add(o, "hosts", strv_json(c->hosts));

        /* The platform's own state (a cluster's reachability, queue, …) adds fields; the ones
         * above are the surfaces' and are not overridden. */
        state = platform_report_state(p);
        if (state && json_object_is_type(state, json_type_object)) {
                json_object_object_foreach(state, k, v)
                        if (!json_object_object_get_ex(o, k, NULL) && !streq(k, "nodes"))
                                json_object_object_add(o, k, json_object_get(v));
        }
        json_object_put(state);

        json_object_object_add(o, "nodes", platform_nodes_json(p));
        return o;
}

Platform *platform_lookup(Manager *m, const char *name, GwError *e) {
        Platform *p = platform_get(m, name);

        if (!p)
                gw_error_set(e, GW_ERROR_NO_SUCH_PLATFORM, "No platform '%s'.", name);
        return p;
}

static json_object *node_find(Platform *p, const char *node) {
        _cleanup_(json_object_putp) json_object *a = platform_nodes_json(p);

        for (size_t i = 0; a && i < json_object_array_length(a); i++) {
                json_object *n = json_object_array_get_idx(a, i);
                const char *name = json_get_string(n, "name");

                if (name && streq(name, node))
                        return json_object_get(n);
        }
        return NULL;
}

int platform_set_node_drain(Manager *m, const char *platform, const char *node, bool drain,
                            json_object **ret_node, GwError *e) {
        Platform *p = platform_lookup(m, platform, e);
        json_object *n;
        int r;

        if (!p)
                return -ENOENT;
        r = platform_drain_node(p, node, drain);
        if (r == -EOPNOTSUPP) {
                /* A node the platform does not show is unknown, as on a platform that drains. */
                _cleanup_(json_object_putp) json_object *known = node_find(p, node);

                if (!known)
                        return gw_error_set(e, GW_ERROR_NO_SUCH_NODE, "Platform '%s' has no node '%s'.", p->name, node);
                return gw_error_set(e, GW_ERROR_CONFLICT, "Platform '%s' has no nodes of its own to %s: %s.", p->name,
                                    drain ? "drain" : "resume",
                                    platform_unsupported(p, true) ?:
                                    streq(p->kind, "local") ? "its jobs run on the gateway host" :
                                    "its kind does not drain nodes through gatewayd");
        }
        if (r == -ENOENT)
                return gw_error_set(e, GW_ERROR_NO_SUCH_NODE, "Platform '%s' has no node '%s'.", p->name, node);
        if (r < 0)
                return gw_error_set_errno(e, r, "Cannot %s node '%s' of platform '%s': %s", drain ? "drain" : "resume",
                                          node, p->name, strerror(-r));
        log_info("Platform '%s': node '%s' %s.", p->name, node, drain ? "draining" : "resumed");

        n = node_find(p, node);
        if (!n) {
                /* The platform knew the node a moment ago; answer with what was asked. */
                n = json_object_new_object();
                if (!n)
                        return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
                json_object_object_add(n, "name", json_object_new_string(node));
        }
        if (ret_node)
                *ret_node = n;
        else
                json_object_put(n);
        return 0;
}
