/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "fs-util.h"
#include "log.h"
#include "macro.h"
#include "staging.h"

#define STAGING_PREFIX "gateway-pull-"
#define STALE_AFTER_SEC (10 * 60)

int staging_create(const char *expand_dir, char **ret_path, int *ret_lock_fd) {
        _cleanup_free_ char *path = NULL;
        int fd;

        if (asprintf(&path, "%s/" STAGING_PREFIX "XXXXXX", expand_dir) < 0)
                return -ENOMEM;
        if (!mkdtemp(path))
                return -errno;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = -errno;
                safe_close(fd);
                (void) rm_rf(path);
                return r;
        }
        *ret_path = TAKE_PTR(path);
        *ret_lock_fd = fd;
        return 0;
}

void staging_remove_stale(const char *expand_dir) {
        DIR *d = opendir(expand_dir);
        struct dirent *de;
        time_t now = time(NULL);

        if (!d)
                return;
        while ((de = readdir(d))) {
                struct stat st;
                int fd;

                if (!strneq(de->d_name, STAGING_PREFIX, strlen(STAGING_PREFIX)))
                        continue;
                fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        continue;
                if (fstat(fd, &st) >= 0 && now - st.st_mtime > STALE_AFTER_SEC &&
                    flock(fd, LOCK_EX | LOCK_NB) >= 0) {
                        int r = rm_rf_at(dirfd(d), de->d_name);
                        if (r < 0)
                                log_warning("Cannot remove stale staging directory %s/%s: %s", expand_dir, de->d_name, strerror(-r));
                        else
                                log_info("Removed stale staging directory %s/%s", expand_dir, de->d_name);
                }
                close(fd);
        }
        closedir(d);
}
