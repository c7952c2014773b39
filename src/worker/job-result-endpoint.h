/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* The in-job end of the serverless gateway's save_result, for program jobs (docs/programs.md).
 *
 * The Qiskit client's save_result() POSTs to "$ENV_JOB_GATEWAY_HOST/api/v1/jobs/$ENV_JOB_ID_GATEWAY
 * /result/" with requests, i.e. HTTP over TCP. A job has no network, and opening it (or binding
 * gatewayd's socket, whose peer credentials would be ours: root) is not what we want. So the
 * worker makes the job's network namespace itself: a child process (the endpoint) unshares a new
 * one, brings up its loopback, listens on 127.0.0.1:80 in it and serves that one route; bwrap
 * then joins that namespace instead of creating one (setns before exec, no --unshare-net). The
 * job still reaches nothing but its own loopback; on it, the endpoint, whose port it could not
 * have taken (below 1024, no capabilities).
 *
 * The endpoint checks the bearer token gatewayd minted for this job (job.json program.token;
 * also the job's ENV_JOB_GATEWAY_TOKEN) and the job id in the path, and stores the result in the
 * spool as saved-result.json (atomically; the last save wins). It lives until the worker stops
 * it, before the job's outcome is written: after that, there is nothing to connect to. One
 * connection at a time, each bounded in size and time. */

#define RESULT_ENDPOINT_HOST "http://127.0.0.1:80"

typedef struct ResultEndpoint ResultEndpoint;

/* Forks the endpoint; it sets itself up while the caller goes on (mounts, cgroups). */
int result_endpoint_start(int spool_fd, const char *job_id, const char *token, size_t result_max,
                          ResultEndpoint **ret);
/* Waits until it listens, and opens its network namespace. */
int result_endpoint_wait(ResultEndpoint *e);
/* Its network namespace, for the sandbox to join (setns(fd, CLONE_NEWNET)). */
int result_endpoint_netns_fd(const ResultEndpoint *e);
/* Kills and reaps the endpoint. Accepts NULL. */
ResultEndpoint *result_endpoint_stop(ResultEndpoint *e);

/* The result the job saved, if any (NUL-terminated; *ret NULL: none); the file is removed. */
int result_endpoint_take_result(int spool_fd, size_t result_max, char **ret, size_t *ret_len);
