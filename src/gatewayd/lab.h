/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "gw-error.h"

typedef struct Manager Manager;

/* Bounds of a lab definition: a definition is admin input, but it is stored, listed to every
 * user and later turned into processes, so nothing in it may be unbounded. */
#define LAB_MEMBERS_MAX           16
#define LAB_PORTS_MAX             16            /* per member */
#define LAB_ARGS_MAX              256           /* command arguments, env entries per member */
#define LAB_STRING_MAX            4096          /* one argument, env value */
#define LAB_DESCRIPTION_MAX       1024
#define LAB_INSTRUCTIONS_MAX      (64U * 1024U) /* Markdown */
#define LAB_LIFETIME_DEFAULT_SEC  (4U * 3600U)
#define LAB_LIFETIME_MAX_SEC      (30U * 86400U)
#define LAB_MEMORY_MIN            (4ULL << 20)
#define LAB_MEMORY_MAX            (1ULL << 40)
#define LAB_TASKS_MAX             65536

typedef enum LabPortKind {
        LAB_PORT_HTTP,
        LAB_PORT_VNC,
        LAB_PORT_TCP,
        _LAB_PORT_KIND_MAX,
} LabPortKind;

/* What the members reach besides each other (docs/labs.md "Network"). */
typedef enum LabNetwork {
        LAB_NETWORK_NONE,       /* nothing: loopback only */
        LAB_NETWORK_OUTBOUND,   /* connections out through the host (masqueraded), not to it */
        _LAB_NETWORK_MAX,
} LabNetwork;

typedef struct LabPort {
        uint16_t port;
        LabPortKind kind;
} LabPort;

/* One image started as part of each instance; its name is also its host name inside the
 * instance's network namespace. */
typedef struct LabMember {
        char *name;             /* lowercase DNS label, unique within the lab */
        char *image;            /* registry reference */
        char **command;         /* NULL = the image's entrypoint + cmd */
        char **env;             /* KEY=value sorted by key; NULL = none */
        LabPort *ports;
        size_t n_ports;
} LabMember;

/* A lab: a named set of members started together as one instance per request. */
typedef struct Lab {
        Manager *manager;

        char *name;             /* lowercase DNS label; primary key */
        char *description;
        char *instructions;     /* Markdown, shown to the user */
        uint64_t lifetime_sec;  /* an instance ends this long after it was started */
        uint64_t memory;        /* bytes for the whole instance, 0 = unset (site defaults) */
        uint64_t tasks;         /* processes of the whole instance, 0 = unset */
        LabNetwork network;
        LabMember *members;
        size_t n_members;

        uint64_t created_usec;
        uint64_t updated_usec;

        char *object_path;
        char *json;             /* cached record */
} Lab;

Lab *lab_free(Lab *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Lab *, lab_free);

const char *lab_port_kind_to_string(LabPortKind k);
LabPortKind lab_port_kind_from_string(const char *s);
const char *lab_network_to_string(LabNetwork n);

/* Validates a spec and builds an unattached Lab (like service_from_spec(): expected_name from the
 * path of a PUT; "createdAt"/"updatedAt" accepted and ignored). On failure sets e
 * (InvalidArgument, the message names the field, e.g. "members[1].ports[0].port: ..."). */
int lab_from_spec(json_object *spec, const char *expected_name, Lab **ret, GwError *e);

json_object *lab_spec_to_json(const Lab *l);
json_object *lab_to_json(const Lab *l);
const char *lab_json(Lab *l);
void lab_invalidate_json(Lab *l);
