/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What gatewayd reads from slurmrestd (src/gatewayd/slurm-rest.c): the first byte picks the HTTP
 * status, the rest is the body. The answer is classified as the client does, then every typed
 * parser reads it (submit job id, job, find by name, partitions, ping, nodes). Checks: a message exactly when the
 * outcome is not OK, an error exactly then too, and phases in range. */
#include "fuzz.h"
#include "macro.h"
#include "slurm-rest.h"

static const long statuses[] = { 200, 200, 200, 400, 401, 404, 500, 500, 502, 503 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SlurmAnswer a = {};
        long status;

        if (size < 1)
                return 0;
        fuzz_quiet();
        status = statuses[data[0] % ELEMENTSOF(statuses)];
        if (slurm_answer_parse(status, (const char *) data + 1, size - 1, &a) < 0)
                return 0;
        if ((a.outcome == SLURM_OUTCOME_OK) != (a.message == NULL) || (a.outcome == SLURM_OUTCOME_OK) != (a.error == 0))
                abort();

        if (a.json) {
                uint32_t id;
                SlurmJobInfo j = {};
                SlurmPartition *p = NULL;
                size_t n = 0;
                SlurmPing ping = {};

                if (slurm_submit_job_id(a.json, &id) >= 0 && id == 0)
                        abort();
                if (slurm_job_info_from_json(a.json, &j) >= 0) {
                        if (!j.state || j.job_id == 0 ||
                            (j.phase != _SLURM_JOB_PHASE_INVALID && !slurm_job_phase_to_string(j.phase)))
                                abort();
                        (void) slurm_job_state_reason(j.state);
                        slurm_job_info_done(&j);
                }
                if (slurm_partitions_from_json(a.json, &p, &n) >= 0) {
                        for (size_t i = 0; i < n; i++)
                                if (!p[i].name)
                                        abort();
                        slurm_partitions_free(p, n);
                }
                unsigned matches = 0;
                if (slurm_jobs_find_by_name(a.json, "gatewayd-rec", "gwtest-user", &j, &matches) >= 0) {
                        if (matches == 0 || !j.state)
                                abort();
                        slurm_job_info_done(&j);
                }
                if (slurm_ping_from_json(a.json, &ping) >= 0)
                        slurm_ping_done(&ping);
                json_object *nodes = NULL;
                if (slurm_nodes_from_json(a.json, &nodes) >= 0) {
                        if (!json_object_is_type(nodes, json_type_array))
                                abort();
                        /* every node has one of the surfaces' states */
                        for (size_t i = 0; i < json_object_array_length(nodes); i++) {
                                json_object *st;
                                const char *v;
                                if (!json_object_object_get_ex(json_object_array_get_idx(nodes, i), "state", &st) ||
                                    !(v = json_object_get_string(st)) ||
                                    (strcmp(v, "up") != 0 && strcmp(v, "draining") != 0 && strcmp(v, "unreachable") != 0))
                                        abort();
                        }
                        json_object_put(nodes);
                }
        }
        slurm_answer_done(&a);
        return 0;
}
