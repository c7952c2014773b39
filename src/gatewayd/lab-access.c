/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json-util.h"
#include "lab-access.h"
#include "lab-token.h"
#include "log.h"
#include "manager.h"
#include "service.h"
#include "time-util.h"

static int lab_access_key(Manager *m, const uint8_t **ret) {
        int r;

        if (!m->lab_token_key) {
                uint8_t *key = malloc(LAB_TOKEN_KEY_SIZE);

                if (!key)
                        return -ENOMEM;
                /* Made on first use: a site without labs has no key lying around. */
                r = lab_token_key_load(m->state_dir, /* create= */ true, key);
                if (r < 0) {
                        free(key);
                        return log_error_errno(r, "Cannot read or make %s/%s: %m", m->state_dir, LAB_TOKEN_KEY_FILE);
                }
                m->lab_token_key = key;
        }
        *ret = m->lab_token_key;
        return 0;
}

static bool instance_is_over(const LabInstance *i) {
        return i->state == LAB_INSTANCE_STOPPING || i->state == LAB_INSTANCE_STOPPED || i->state == LAB_INSTANCE_FAILED;
}

int lab_access_token(Manager *m, const LabInstance *i, json_object **ret, GwError *e) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *token = NULL;
        _cleanup_free_ char **members = NULL;
        uint64_t now = now_realtime_usec() / USEC_PER_SEC, lifetime = m->config->lab_token_lifetime_sec;
        const uint8_t *key = NULL;
        json_object *paths;
        char buf[32];
        int r;

        if (instance_is_over(i))
                return gw_error_set(e, GW_ERROR_CONFLICT, "Lab instance %s is %s: it cannot be reached any more.", i->id,
                                    lab_instance_state_to_string(i->state));
        r = lab_access_key(m, &key);
        if (r < 0)
                return gw_error_set_errno(e, r, "Cannot make lab access tokens.");
        members = calloc(i->n_members + 1, sizeof(char *));
        if (!members)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        for (size_t k = 0; k < i->n_members; k++)
                members[k] = (char *) i->members[k].spec->name;
        r = lab_token_mint(key, i->id, i->uid, members, now, lifetime, &token);
        if (r < 0)
                return gw_error_set_errno(e, r, "Cannot make a lab access token.");

        o = json_object_new_object();
        paths = json_object_new_object();
        if (!o || !paths) {
                json_object_put(paths);
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        }
        for (size_t k = 0; k < i->n_members; k++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "/%s/%s/", token, members[k]) < 0)
                        return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
                json_object_object_add(paths, members[k], json_object_new_string(p));
        }
        json_object_object_add(o, "token", json_object_new_string(token));
        json_object_object_add(o, "expiresAt",
                               json_object_new_string(format_timestamp_iso(buf, sizeof(buf), (now + lifetime) * USEC_PER_SEC)));
        json_object_object_add(o, "members", paths);
        *ret = TAKE_PTR(o);
        return 0;
}

json_object *lab_access_record(const LabInstance *i) {
        json_object *o = lab_instance_to_json(i);

        if (o) {
                json_object_object_add(o, "uid", json_object_new_int64(i->uid));
                /* Where the proxy finds networkNamespace when gatewayd has a mount namespace of
                 * its own (its unit's PrivateMounts=yes): /proc/PID/root. */
                json_object_object_add(o, "gatewaydPid", json_object_new_int64(getpid()));
        }
        return o;
}

void lab_access_done(Manager *m) {
        if (m->lab_token_key)
                explicit_bzero(m->lab_token_key, LAB_TOKEN_KEY_SIZE);
        m->lab_token_key = mfree(m->lab_token_key);
}
