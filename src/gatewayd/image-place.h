/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A converted image's file placed in another platform's image directory (dir/name), so that
 * an image id is converted once however many platforms pull it: a hard link where both are on
 * one file system, else a reflink; -EXDEV where neither can be made (another file system
 * without reflinks: the caller converts the image for that platform itself rather than copy it
 * on the event loop). Always a file of its own name, which the
 * other platform's removal or expiry (an unlink of its name) leaves alone. Written under a
 * temporary name and renamed: readers never see a partial file, and an old file of that name
 * (an expired record's) is replaced whole. ret_path: dir/name. */
int image_place_file(const char *source, const char *dir, const char *name, char **ret_path);
