/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "ssh-session.h"

/* The client side of `gateway-worker serve`'s JSON-lines protocol (docs/worker-serve.md) over
 * the serve channel of one SshSession.
 *
 * Requests carry an integer "req" and are answered by the first event with the same "req";
 * a request that has been sent but not answered when the connection is lost is sent again on
 * the next one (every op is idempotent on the node: a second start of a job id answers with the
 * job's state, it never runs the job twice). Followed jobs are attached again after a reconnect
 * from the last sequence number delivered, and events with a sequence number already delivered
 * are dropped: each event reaches the job's callback exactly once, `finished` last.
 *
 * The node is reported up only after it has answered hello (slots, free disk, running jobs). */

typedef struct NodeClient NodeClient;

typedef struct NodeClientCallbacks {
        /* State changes of the node; hello is the node's hello event when state is up. */
        void (*state_changed)(NodeClient *c, SshNodeState state, const char *reason, json_object *hello, void *userdata);
} NodeClientCallbacks;

/* The answer to a request: the event (an "error" event is an answer too), or NULL with r < 0
 * when there will be none (the node was refused, the client freed its requests). */
typedef void (*NodeReplyHandler)(NodeClient *c, int r, json_object *event, void *userdata);

/* An event of a followed job (status, log, interim, done, finished — with "seq"), or an "error"
 * event when the node cannot attach (NOT_FOUND). After `finished` or an error the job is no
 * longer followed. */
typedef void (*NodeJobHandler)(NodeClient *c, const char *job, json_object *event, void *userdata);

int node_client_new(NodeClient **ret, sd_event *event, const SshSessionOptions *options,
                    const NodeClientCallbacks *callbacks, void *userdata);
NodeClient *node_client_free(NodeClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeClient *, node_client_free);

int node_client_start(NodeClient *c);

SshSession *node_client_get_session(NodeClient *c);
SshNodeState node_client_get_state(NodeClient *c);
/* The last hello of the node (NULL before the first), owned by the client. */
json_object *node_client_get_hello(NodeClient *c);

/* Sends a request (an object with "op"; "req" is set here). Takes a reference on request. */
int node_client_request(NodeClient *c, json_object *request, NodeReplyHandler handler, void *userdata);

int node_client_start_job(NodeClient *c, const char *job, json_object *spec, json_object *input,
                          NodeReplyHandler handler, void *userdata);
int node_client_cancel_job(NodeClient *c, const char *job, NodeReplyHandler handler, void *userdata);
int node_client_remove_job(NodeClient *c, const char *job, NodeReplyHandler handler, void *userdata);
int node_client_list_jobs(NodeClient *c, NodeReplyHandler handler, void *userdata);
int node_client_remove_image(NodeClient *c, const char *image, NodeReplyHandler handler, void *userdata);
int node_client_list_images(NodeClient *c, NodeReplyHandler handler, void *userdata);

/* Follows a job's events from sequence number from (0: all). One follower per job id. */
int node_client_follow(NodeClient *c, const char *job, uint64_t from, NodeJobHandler handler, void *userdata);
void node_client_unfollow(NodeClient *c, const char *job);
/* The last sequence number delivered for a followed job (0 = none, or not followed). */
uint64_t node_client_get_seq(NodeClient *c, const char *job);

/* Deploys an image: uploads squashfs_path as <image>.squashfs.partial and meta_path (may be
 * NULL) as <image>.meta.partial over SFTP, then asks serve to install them (image-install with
 * the sizes, renamed into place by the root serve: never a torn file under the final names).
 * Needs the session up (-ENOTCONN otherwise); an upload that cannot start is returned here.
 * Later, handler gets the image-installed event, an error event from serve, or r < 0 with a
 * synthetic error event ({"event":"error","op":"deploy","code":"NO_SPACE"|"UPLOAD_FAILED",
 * "message":…}); not at all if the client is freed first. */
int node_client_deploy_image(NodeClient *c, const char *image, const char *squashfs_path, const char *meta_path,
                             NodeReplyHandler handler, void *userdata);
