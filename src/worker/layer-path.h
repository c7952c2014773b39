/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Names inside layer tarballs are untrusted. layer_path_normalize() turns "./usr//bin/./sh" into
 * "usr/bin/sh" and the root ("./", ".") into "", and refuses absolute names, any ".."
 * component and over-long names with -EINVAL / -ENAMETOOLONG. This is only the first line of
 * defence: the applier also resolves every parent with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), so symlinks planted by earlier entries cannot redirect a write. */
int layer_path_normalize(const char *name, char **ret);

typedef enum WhiteoutKind {
        WHITEOUT_NONE,
        WHITEOUT_FILE,   /* ".wh.NAME": delete NAME from lower layers */
        WHITEOUT_OPAQUE, /* ".wh..wh..opq": hide the lower layers' content of this directory */
        WHITEOUT_META,   /* other ".wh..wh.*" (aufs bookkeeping): ignored */
} WhiteoutKind;

/* Classifies a base name; for WHITEOUT_FILE *ret_target is the name that is deleted. Returns
 * -EINVAL for whiteouts of "", "." or "..". */
int layer_whiteout_kind(const char *base, WhiteoutKind *ret_kind, const char **ret_target);

/* Splits a normalized path into a new parent string ("" for the root) and a pointer to the base. */
int layer_path_split(const char *path, char **ret_parent, const char **ret_base);
