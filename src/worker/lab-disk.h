/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* A lab member's writable layer with a size of its own (docs/labs.md, "Members"): an ext4 file
 * system in a sparse file (image), at the member's first start a copy of template (an empty ext4
 * of that size, made with mkfs.ext4 once: the first member to need it makes it), loop-mounted
 * nosuid,nodev on dir, its root directory then owned by uid:gid, mode 0700. The member can fill
 * it, not the file system of the state directory. Already mounted (gatewayd restarted a member of
 * a running instance, say): nothing to do. The mount lives in the worker's mount namespace, which
 * is gatewayd's; gatewayd unmounts it when the instance goes, and the loop device detaches once
 * the last sandbox holding it has ended. On failure returns -errno and a message for the job's
 * error detail in *ret_error (caller frees). */
int lab_disk_mount(const char *image, const char *template, uint64_t size, const char *dir, uid_t uid, gid_t gid,
                   char **ret_error);
