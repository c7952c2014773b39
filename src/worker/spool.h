/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Files of a job's spool directory (DESIGN.md §3):
 *
 *   job.json, input/data.json, input/params.json     written by gatewayd
 *   worker.pid                                       pid of the worker, flock()ed while it runs
 *   log, interim.jsonl, result.json                  written while/after the job runs
 *   .exit.json.reserve                               space for exit.json (spool-reserve.h)
 *   exit.json                                        written last: the commit point
 *
 * A reader that sees exit.json sees every other file complete. */

/* Writes name atomically (temporary file, fsync, rename). */
int spool_write_atomic(int dir_fd, const char *name, const char *data, size_t len);
/* The same without the fsync of the directory: for a file written just before another
 * spool_write_atomic() in the same directory (result.json before exit.json), whose fsync of
 * the directory makes both renames durable. Saves a disk flush per job. */
int spool_write_atomic_deferred(int dir_fd, const char *name, const char *data, size_t len);

/* Creates or takes over the pid file (path relative to dir_fd or absolute) and holds an
 * exclusive flock on it for the life of the process. Returns the fd, -EBUSY with *ret_holder
 * set if a live worker holds it. When the disk is too full to write the pid, the file is left
 * empty (and locked). */
int spool_lock_pid_file(int dir_fd, const char *path, pid_t *ret_holder);

/* Makes input/data.json and input/params.json exist ("{}" if gatewayd gave none) as regular
 * files (no symlinks), readable by uid/gid only. */
int spool_prepare_input(int dir_fd, uid_t uid, gid_t gid);
