/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "platform-local.h"
#include "spool-exit.h"

static const char *get_string(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

int spool_exit_parse(const char *text, SpoolExit *ret) {
        json_object *o, *v, *err;

        *ret = (SpoolExit) { .state = JOB_UNKNOWN, .exit_code = -1 };
        o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        ret->json = o;
        ret->state = job_state_from_string(get_string(o, "status"));
        if (!job_state_is_terminal(ret->state))
                ret->state = JOB_UNKNOWN;
        if (json_object_object_get_ex(o, "exitCode", &v) && json_object_is_type(v, json_type_int))
                ret->exit_code = json_object_get_int(v);
        if (json_object_object_get_ex(o, "error", &err) && json_object_is_type(err, json_type_object)) {
                ret->code = get_string(err, "code");
                ret->detail = get_string(err, "detail");
        }
        ret->started_usec = parse_timestamp_iso(get_string(o, "startedAt"));
        ret->ended_usec = parse_timestamp_iso(get_string(o, "endedAt"));
        return 0;
}

void spool_exit_done(SpoolExit *e) {
        json_object_put(e->json);
        e->json = NULL;
}
