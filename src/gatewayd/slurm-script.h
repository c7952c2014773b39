/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The batch script of a Slurm job: it only hands the job's spool directory (on the file system
 * shared with the compute nodes) to the launcher on the node, which checks it and runs
 * `gateway-worker run SPOOLDIR` (docs/slurm.md says why through a launcher). Everything else
 * the job needs (image, command, limits, uid) is in SPOOLDIR/job.json, written by gatewayd; the
 * Slurm-side settings (time limit, memory, name) go in the submit request, not in #SBATCH
 * lines. Pure, so the quoting is unit-tested. */

typedef struct SlurmScriptParams {
        const char *job_id;     /* gatewayd's job id, for the comment line: [A-Za-z0-9._-]+ */
        const char *launcher;   /* absolute path of the node's launcher (gateway-slurm-launch) */
        const char *spool_dir;  /* absolute path of the job's spool directory */
} SlurmScriptParams;

/* Writes the script into *ret (malloc'd). -EINVAL for a relative path, a control character in
 * a path, or a job id with other characters. */
int slurm_script_generate(const SlurmScriptParams *p, char **ret);

/* s in single quotes for sh, every ' written as '\''. NULL on OOM. */
char *shell_quote(const char *s);
