/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "gw-error.h"

typedef struct Manager Manager;

/* A service: a named job template (image + how to run it). */
typedef struct Service {
        Manager *manager;

        char *name;             /* lowercase DNS label; also the primary key */
        char *image;            /* registry reference */
        char *description;
        char **command;         /* argv overriding the image's entrypoint+cmd; NULL = image default */
        char **env;             /* KEY=value, sorted by key; NULL = none */
        uint64_t memory;        /* bytes, 0 = unset */
        double cpus;            /* 0 = unset */
        uint64_t timeout_sec;   /* 0 = unset */
        bool network;

        /* Only in the transient service a program's job runs as (program_job_service()): the
         * program's squashfs, mounted read-only at /program, and the working directory. */
        char *program_layer;
        char *program_layer_id; /* its id (Program.layer): platforms that copy it name it so */
        char *workdir;

        uint64_t created_usec;
        uint64_t updated_usec;

        char *object_path;
        char *json;             /* cached record as JSON text: reads are the hot path */
} Service;

Service *service_free(Service *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Service *, service_free);

bool service_name_is_valid(const char *name);
bool env_name_is_valid(const char *name);

/* Spec pieces shared with labs (lab.c): a plausible registry reference; a JSON array of strings
 * (errors name field). */
bool image_reference_is_plausible(const char *s);
int strv_from_json_array(json_object *a, const char *field, char ***ret, GwError *e);

/* Validates a spec and builds an unattached Service from it. If expected_name is set the spec's
 * "name" may be omitted but must match when present (PUT /v1/services/NAME). "createdAt" and
 * "updatedAt" are accepted and ignored, so a GET result can be edited and sent back. On failure
 * sets e (InvalidArgument, message naming the field). */
int service_from_spec(json_object *spec, const char *expected_name, Service **ret, GwError *e);

/* The spec part (what a client sends) and the full record (spec + timestamps). */
json_object *service_spec_to_json(const Service *s);
json_object *service_to_json(const Service *s);

/* Returns the cached JSON record, building it on first use. */
const char *service_json(Service *s);
void service_invalidate_json(Service *s);

/* RFC 3339 UTC with milliseconds: "2026-11-21T18:30:00.123Z". buf must hold 32 bytes. */
char *format_timestamp_iso(char *buf, size_t size, uint64_t usec);
