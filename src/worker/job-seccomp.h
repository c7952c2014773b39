/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The seccomp filter of a job's sandbox, in the style of the container runtimes' default profiles
 * (Docker's and Podman's): what an unprivileged container process is refused there, a job is
 * refused here, with EPERM (ENOSYS for clone3, as the profiles do). Every other system call is
 * allowed. See docs/worker-run.md for the list and the reasons.
 *
 * The rules are in job-seccomp-rules.c. libseccomp compiles them at build time (gen-job-seccomp)
 * for the target architecture and every other ABI the kernel lets a process of it use (x86-64:
 * i386 and x32; arm64: arm; s390x: s390), each with the same rules; a system call of any other
 * ABI kills the process. bwrap installs the program (--seccomp FD) as the last step before it
 * executes our init, after its own namespace and mount setup, which the filter would otherwise
 * forbid. */

/* Returns the BPF program in a sealed memfd positioned at 0 (O_CLOEXEC): what bwrap --seccomp
 * reads. */
int job_seccomp_memfd(int *ret_fd);
