/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/* Field 22 of /proc/PID/stat: the process start time in clock ticks since boot. With the pid it
 * names one process for good: a recycled pid has a later start time. */
int process_start_time(pid_t pid, uint64_t *ret);

/* Thin wrappers of the pidfd system calls (glibc 2.36 has no wrappers for all of them). Return
 * a file descriptor or 0 on success, -errno on failure. */
int pidfd_open_fd(pid_t pid);
int pidfd_signal(int pidfd, int sig);
/* waitid(P_PIDFD, …): reaps the child the pidfd refers to. */
int pidfd_wait(int pidfd, siginfo_t *si, int options);
