/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "gw-error.h"

typedef struct Manager Manager;
typedef struct Job Job;
typedef struct Service Service;

/* Where a program's files appear in its jobs, and the spool files of a program's job. */
#define PROGRAM_MOUNT_POINT "/program"
/* Uploads arrive here (under the state directory) before the registry takes them. */
#define PROGRAM_UPLOAD_DIR "programs/.uploads"
#define PROGRAM_ARGUMENTS_FILE "arguments.json"  /* in SPOOL_INPUT_DIR; also /var/input/ */
#define PROGRAM_ENV_FILE "env.json"              /* in SPOOL_INPUT_DIR: the run's env */
/* Arguments travel in the environment too (ENV_JOB_ARGUMENTS), where execve() takes at most
 * 128 KiB per string. */
#define PROGRAM_ARGUMENTS_MAX (100 * 1024)
/* A program's squashfs stays mounted this long after its last job on the local platform
 * (lingering-mounts.h): the program's next job finds it mounted. */
#define PROGRAM_MOUNT_LINGER_SEC 60

/* A user's program (docs/programs.md): their code as a squashfs, run on ProgramImage. It belongs
 * to its uploader; the title is unique per user. */
typedef struct Program {
        Manager *manager;

        char *id;               /* UUID: the directory STATE/programs/ID and the primary key */
        uid_t uid;
        gid_t gid;
        char *title;
        /* A provider's shared program ("ProgramProviders", program-provider.h): the title is
         * unique per provider, uid/gid are its last uploader's; NULL: the uploader's own. */
        char *provider;
        char *entrypoint;       /* relative path inside the artifact; NULL: the image's own (with image) */
        bool entrypoint_executable;  /* run directly; otherwise with python3 */
        json_object *arguments; /* default arguments (object), merged under a run's */
        json_object *env;       /* {"K": "V"} */
        json_object *dependencies;   /* array of strings, recorded */
        char *description;
        char *version;
        char *image;            /* its own image (ProgramImages), normalised; NULL: ProgramImage */
        uint64_t size;          /* unpacked bytes of regular files */
        uint64_t files;         /* entries */
        uint64_t created_usec;

        char *dir;              /* STATE/programs/ID */
        /* The upload's squashfs: each upload has its own (a re-upload replaces the program while
         * its running jobs keep theirs), named by LAYER, 64 hex digits — also its name where a
         * platform keeps copies (SSH nodes keep it beside their images, as LAYER.squashfs). */
        char *layer;
        char *squashfs_path;    /* DIR/LAYER.squashfs (DIR/program.squashfs before layers had ids) */
        bool old_layers;        /* earlier uploads' layers may be left (after a re-upload, a restart) */
} Program;

Program *program_free(Program *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Program *, program_free);

/* A new layer id (random), and whether a text is one. */
int program_layer_new(char **ret);
bool program_layer_is_valid(const char *layer);

/* 1–64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool program_title_is_valid(const char *title);

/* The metadata a client gives with an upload (title, entrypoint, arguments, env, dependencies,
 * description, version), validated into an unattached Program. On failure sets e
 * (InvalidArgument naming the field). */
int program_from_metadata(json_object *meta, Program **ret, GwError *e);

/* The image the program's jobs run on: its own, else ProgramImage (NULL if neither). */
const char *program_image(const Program *p, const char *program_image_default);

/* What is stored in the database's spec column, and the record clients see. */
json_object *program_spec_to_json(const Program *p);
int program_spec_apply(Program *p, json_object *spec, GwError *e);
json_object *program_to_json(const Program *p);

/* Checks a run's arguments (an object or NULL) and env (an object of strings or NULL; names
 * ENV_JOB_* are the gateway's) and returns the merged arguments; InvalidArgument naming the
 * field, or PayloadTooLarge past PROGRAM_ARGUMENTS_MAX. */
int program_run_arguments(const Program *p, json_object *arguments, json_object *env, json_object **ret, GwError *e);

/* The job's arguments: the program's defaults with the run's keys over them. */
json_object *program_merge_arguments(const Program *p, json_object *run_arguments);

/* The transient service a program's job runs as: image on the base image, the program's
 * squashfs at /program, the entrypoint as the command, env with ENV_JOB_ARGUMENTS and
 * ENV_JOB_ID_GATEWAY (read from the job's spool). */
int program_job_service(const Program *p, const Job *j, const char *image, Service **ret);
