/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hashmap.h"
#include "log.h"
#include "manager.h"
#include "platform.h"

/* The kinds of platform, each with its implementation; adding one is a file and a line here. A
 * kind without one is known to the configuration but refused (Unavailable) when asked to act. */
typedef struct PlatformKind {
        const char *kind;
        const PlatformVTable *vtable;
        /* Without an implementation: why, and whether its images still live on this host. */
        const char *unsupported;
        bool images_local;
} PlatformKind;

static const PlatformKind platform_kinds[] = {
        { "local", &platform_local_vtable, NULL, true },
        { "ssh",   &platform_ssh_vtable, NULL, false },
        { "slurm", &platform_slurm_vtable, NULL, true },
};

static const PlatformKind *platform_kind_of(const ConfigPlatform *c) {
        const char *kind = c->access == CONFIG_ACCESS_REMOTE ? "ssh" : config_platform_is_slurm(c) ? "slurm" : "local";

        for (size_t i = 0; i < ELEMENTSOF(platform_kinds); i++)
                if (streq(platform_kinds[i].kind, kind))
                        return &platform_kinds[i];
        return NULL;
}

const char *platform_config_unsupported(const ConfigPlatform *c, bool jobs) {
        const PlatformKind *k = platform_kind_of(c);

        if (!k)
                return "this kind of platform is not implemented by this gatewayd";
        if (k->vtable || (!jobs && k->images_local))
                return NULL;
        return k->unsupported;
}

const char *platform_unsupported(const Platform *p, bool jobs) {
        if (!p)
                return "the platform is not configured";
        return platform_config_unsupported(p->config, jobs);
}

static Platform *platform_free(Platform *p) {
        if (!p)
                return NULL;
        if (p->vtable && p->vtable->done)
                p->vtable->done(p);
        free(p->name);
        free(p);
        return NULL;
}

static int platform_new(Manager *m, const ConfigPlatform *c, const PlatformImageHooks *hooks, Platform **ret) {
        const PlatformKind *k = platform_kind_of(c);
        Platform *p;
        int r;

        p = calloc(1, sizeof(Platform));
        if (!p)
                return -ENOMEM;
        *p = (Platform) {
                .manager = m,
                .name = strdup(c->name),
                .config = c,
                .kind = k ? k->kind : "unknown",
                .vtable = k ? k->vtable : NULL,
                .image_hooks = hooks,
        };
        if (!p->name) {
                free(p);
                return -ENOMEM;
        }
        if (p->vtable && p->vtable->init) {
                r = p->vtable->init(p);
                if (r < 0) {
                        p->vtable = NULL;  /* nothing to undo */
                        platform_free(p);
                        return r;
                }
        }
        *ret = p;
        return 0;
}

int platforms_load(Manager *m, const PlatformImageHooks *image_hooks) {
        int r;

        m->platforms = hashmap_new();
        if (!m->platforms)
                return log_oom();
        for (size_t i = 0; i < m->config->n_platforms; i++) {
                const ConfigPlatform *c = &m->config->platforms[i];
                Platform *p;

                r = platform_new(m, c, image_hooks, &p);
                if (r < 0)
                        return log_error_errno(r, "Platforms.%s: cannot set it up: %m", c->name);
                r = hashmap_put(m->platforms, p->name, p);
                if (r < 0) {
                        platform_free(p);
                        return log_error_errno(r, "Platforms.%s: cannot register it: %m", c->name);
                }
                if (platform_unsupported(p, /* jobs= */ true))
                        log_warning("Platforms.%s: %s; %s for it are refused.", p->name,
                                    platform_unsupported(p, true),
                                    platform_unsupported(p, false) ? "pulls and jobs" : "jobs");
        }
        return 0;
}

void platforms_free(Manager *m) {
        Platform *p;

        HASHMAP_FOREACH(p, m->platforms)
                platform_free(p);
        m->platforms = hashmap_free(m->platforms);
}

Platform *platform_get(Manager *m, const char *name) {
        return name ? hashmap_get(m->platforms, name) : NULL;
}

Platform *platform_default(Manager *m) {
        const ConfigPlatform *c = config_platform_default(m->config);

        return c ? platform_get(m, c->name) : NULL;
}

static int platform_refuse(const Platform *p, bool jobs, GwError *e) {
        return gw_error_set(e, GW_ERROR_UNAVAILABLE, "Platform '%s': %s.", p->name, platform_unsupported(p, jobs));
}

int platform_start_job(Platform *p, Job *j, const Service *s, const Image *image,
                       const PlatformJobCallbacks *cb, GwError *e) {
        if (!p)
                return gw_error_set(e, GW_ERROR_INTERNAL, "The job's platform is not configured.");
        if (!p->vtable || !p->vtable->start_job)
                return platform_refuse(p, true, e);
        j->platform_callbacks = cb;
        return p->vtable->start_job(p, j, s, image, e);
}

int platform_cancel_job(Platform *p, Job *j) {
        if (!p || !p->vtable || !p->vtable->cancel_job)
                return -EOPNOTSUPP;
        return p->vtable->cancel_job(p, j);
}

int platform_save_result(Platform *p, Job *j, const char *json_text, PlatformResultSaved done, void *userdata) {
        if (!p || !p->vtable || !p->vtable->save_result)
                return -EOPNOTSUPP;
        return p->vtable->save_result(p, j, json_text, done, userdata);
}

int platform_reattach_job(Platform *p, Job *j, const PlatformJobCallbacks *cb) {
        if (!p || !p->vtable || !p->vtable->reattach_job)
                return 0;
        j->platform_callbacks = cb;
        return p->vtable->reattach_job(p, j);
}

int platform_deploy_image(Platform *p, Image *i, GwError *e) {
        if (!p->vtable)
                return platform_unsupported(p, false) ? platform_refuse(p, false, e) : 0;
        return p->vtable->deploy_image ? p->vtable->deploy_image(p, i, e) : 0;
}

int platform_remove_image(Platform *p, Image *i) {
        if (!p || !p->vtable || !p->vtable->remove_image)
                return 0;
        return p->vtable->remove_image(p, i);
}

void platforms_set_layer_hooks(Manager *m, const PlatformLayerHooks *hooks) {
        Platform *p;

        HASHMAP_FOREACH(p, m->platforms)
                p->layer_hooks = hooks;
}

int platform_deploy_layer(Platform *p, const char *layer, const char *squashfs_path) {
        if (!p || !p->vtable || !p->vtable->deploy_layer)
                return 0;
        return p->vtable->deploy_layer(p, layer, squashfs_path);
}

int platform_remove_layer(Platform *p, const char *layer) {
        if (!p || !p->vtable || !p->vtable->remove_layer)
                return 0;
        return p->vtable->remove_layer(p, layer);
}

json_object *platform_report_nodes(Platform *p) {
        if (!p->vtable || !p->vtable->report_nodes)
                return json_object_new_array();
        return p->vtable->report_nodes(p);
}

int platform_drain_node(Platform *p, const char *node, bool drain) {
        if (!p->vtable || !p->vtable->drain_node)
                return -EOPNOTSUPP;
        return p->vtable->drain_node(p, node, drain);
}

json_object *platform_report_state(Platform *p) {
        if (!p->vtable || !p->vtable->report_state)
                return json_object_new_object();
        return p->vtable->report_state(p);
}
