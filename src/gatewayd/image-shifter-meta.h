/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "image.h"

/* Shifter's image metadata file, <id>.meta beside <id>.squashfs: what Shifter's runtime on a
 * compute node reads before it mounts an image (facts/shifter.md, "Meta file format"). gatewayd
 * writes it from the worker's <id>.meta.json and the image's ACL when an image goes to a
 * platform's nodes (TRANSFER). */

/* <directory of the squashfs>/<id>.meta; -EINVAL when the image has no squashfs yet. */
int image_shifter_meta_path(const Image *i, char **ret);
/* The file's text: KEY: value lines (FORMAT, ENTRY, CMD, WORKDIR, USERACL/GROUPACL when
 * private, one ENV per variable, USER). meta is the worker's meta.json object. */
int image_shifter_meta_format(const Image *i, json_object *meta, char **ret);
/* Writes the file (atomically, 0644) from i->meta_path. */
int image_shifter_meta_write(const Image *i);
