/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The seccomp filter of a job's sandbox, in the style of the container runtimes' default profiles
 * (Docker's and Podman's): what an unprivileged container process is refused there, a job is
 * refused here, with EPERM (ENOSYS for clone3, as the profiles do). Every other system call is
 * allowed. See docs/worker-run.md for the list and the reasons.
 *
 * The filter is generated with libseccomp for the native architecture and every other ABI the
 * kernel lets a process of it use (x86-64: i386 and x32; arm64: arm), each with the same rules;
 * a system call of any other ABI kills the process. bwrap installs it (--seccomp FD) as the last
 * step before it executes our init, after its own namespace and mount setup, which the filter
 * would otherwise forbid. */

/* Builds the filter and returns its BPF program in a sealed memfd positioned at 0 (O_CLOEXEC):
 * what bwrap --seccomp reads. */
int job_seccomp_memfd(int *ret_fd);
