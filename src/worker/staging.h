/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Staging trees live in EXPAND-DIR/gateway-pull-XXXXXX and are removed when a pull ends. A pull
 * that was killed (SIGKILL, a crash, a reboot) cannot clean up, so each pull holds a flock on its
 * staging directory and, before starting, removes directories of this pattern that are unlocked
 * and older than ten minutes: nobody owns those any more. */
int staging_create(const char *expand_dir, char **ret_path, int *ret_lock_fd);
void staging_remove_stale(const char *expand_dir);
