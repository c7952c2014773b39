/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Starts the kernel's writeback of a file while another process (the squashfs writer) still
 * writes it: every 100 ms, sync_file_range(SYNC_FILE_RANGE_WRITE) of whatever is dirty, from a
 * thread of its own. The fsync() that must come before the file is renamed into place then finds
 * little left to write, instead of the whole image at the very end (0.2 s of 130 MiB on the
 * development VM's disk, after everything else was done). */
typedef struct Writeback Writeback;

/* fd is borrowed and must stay open until writeback_stop(). NULL when no thread could be started
 * (then the final fsync() does it all, as before). */
Writeback *writeback_start(int fd);
/* Stops the thread (waiting for it); NULL is fine. */
void writeback_stop(Writeback *w);
