/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "macro.h"
#include "slurm-script.h"

char *shell_quote(const char *s) {
        size_t n = 2 + 1;
        char *out, *o;

        for (const char *c = s; *c; c++)
                n += *c == '\'' ? 4 : 1;
        out = o = malloc(n);
        if (!out)
                return NULL;
        *o++ = '\'';
        for (const char *c = s; *c; c++) {
                if (*c == '\'') {
                        memcpy(o, "'\\''", 4);
                        o += 4;
                } else
                        *o++ = *c;
        }
        *o++ = '\'';
        *o = 0;
        return out;
}

static bool path_ok(const char *p) {
        if (!p || p[0] != '/')
                return false;
        /* Quoting would cope with a newline, but no path gatewayd makes has one, and a script
         * that a human reads in squeue/scontrol should have one command per line. */
        for (const char *c = p; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        return false;
        return true;
}

static bool job_id_ok(const char *id) {
        if (!id || !*id || strlen(id) > 128)
                return false;
        for (const char *c = id; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      *c == '.' || *c == '_' || *c == '-'))
                        return false;
        return true;
}

int slurm_script_generate(const SlurmScriptParams *p, char **ret) {
        _cleanup_free_ char *launcher = NULL, *spool = NULL;
        char *s;

        if (!p || !job_id_ok(p->job_id) || !path_ok(p->launcher) || !path_ok(p->spool_dir))
                return -EINVAL;
        launcher = shell_quote(p->launcher);
        spool = shell_quote(p->spool_dir);
        if (!launcher || !spool)
                return -ENOMEM;
        /* exec: the launcher (and then the worker) is the step's process, so Slurm's signals
         * (scancel, the time limit) reach it directly and no shell waits in between. */
        if (asprintf(&s,
                     "#!/bin/sh\n"
                     "# gatewayd job %s: runs gateway-worker on its spool directory (docs/slurm.md)\n"
                     "exec %s %s\n",
                     p->job_id, launcher, spool) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}
