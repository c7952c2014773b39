/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "job.h"
#include "manager.h"
#include "status.h"

json_object *status_to_json(Manager *m) {
        json_object *o = json_object_new_object();
        usec_t now = 0;
        size_t unfinished = 0;
        Job *j;

        if (!o)
                return NULL;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        json_object_object_add(o, "version", json_object_new_string(GATEWAYD_VERSION));
        json_object_object_add(o, "stateDirectory", json_object_new_string(m->state_dir));
        json_object_object_add(o, "runtimeDirectory", json_object_new_string(m->runtime_dir));
        json_object_object_add(o, "configFile", m->config->path ? json_object_new_string(m->config->path) : NULL);
        json_object_object_add(o, "uptimeSec", json_object_new_int64((int64_t) ((now - m->start_usec) / 1000000)));
        json_object_object_add(o, "services", json_object_new_int64((int64_t) hashmap_size(m->services)));
        HASHMAP_FOREACH(j, m->jobs)
                if (!job_state_is_terminal(j->state))
                        unfinished++;
        json_object_object_add(o, "jobs", json_object_new_int64((int64_t) hashmap_size(m->jobs)));
        json_object_object_add(o, "unfinishedJobs", json_object_new_int64((int64_t) unfinished));
        json_object_object_add(o, "idleTimeoutSec", json_object_new_int64((int64_t) (m->idle_timeout_usec / 1000000)));
        return o;
}
