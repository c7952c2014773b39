/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* Compiles the job's seccomp filter (see job-seccomp.h) for arch (a libseccomp SCMP_ARCH_*
 * token: the machine the worker will run on) and the other ABIs a process of it can use, and
 * writes the BPF program to fd. Needs libseccomp: used at build time by gen-job-seccomp. */
int job_seccomp_export(uint32_t arch, int fd);
