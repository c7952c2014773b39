/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* A program's declared dependencies (pip requirement strings) against what its base image has
 * installed: the serverless gateway installs them with pip; we never install anything (no network
 * installs), so an upload whose dependencies the image does not satisfy is refused.
 *
 * Installed distributions are read from the directory names of *.dist-info and *.egg-info entries
 * in the image's site directories (usr/lib/python3/dist-packages, {usr,usr/local}/lib{,64}/
 * python3.X/{site,dist}-packages, opt/conda/lib/python3.X/site-packages): "numpy-1.26.4.dist-info"
 * is numpy 1.26.4. Nothing of the image is executed or parsed beyond those names.
 *
 * Requirements, a subset of PEP 508/440: NAME[extras] followed by comma-separated specifiers
 * (==, !=, <=, >=, <, >, ~=, ===, "==1.2.*"), optionally in parentheses; environment markers after
 * ';' are ignored (the requirement is checked); URL requirements ("NAME @ URL") are refused. Names
 * compare normalized (PEP 503: case-insensitive, runs of -_. equal). Versions compare by their
 * numeric release segments, then dev < a < b < rc < final < post. */

/* Name and version of a "*.dist-info" / "*.egg-info" directory name; false if it is none. Both
 * normalized/allocated (caller frees). */
bool program_dist_parse(const char *entry, char **ret_name, char **ret_version);

/* <0, 0, >0 like strcmp, by PEP 440's order as far as described above. */
int program_version_compare(const char *a, const char *b);

/* Whether an installed version satisfies a requirement string. -EINVAL: not a requirement we
 * understand (with *ret_error); 0: no; 1: yes. *ret_name: the normalized name (caller frees). */
int program_requirement_parse(const char *req, char **ret_name, const char **ret_error);
int program_requirement_satisfied(const char *req, const char *version);

/* Checks every requirement against the image mounted at root. 0: all satisfied; -ENOENT with a
 * message listing the unsatisfied ones (caller frees); -EINVAL: a requirement we cannot read. */
int program_deps_check(const char *root, char * const *requirements, char **ret_message);
