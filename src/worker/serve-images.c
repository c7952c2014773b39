/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The node's image directory: <ID>.squashfs and <ID>.meta (Shifter's names), uploaded by gatewayd
 * over SFTP as <ID>.squashfs.partial / <ID>.meta.partial. OpenSSH's SFTP rename cannot replace a
 * file, and the directory belongs to the unprivileged SSH account, so installing is done here:
 * the partial file is opened without following symlinks, checked (a regular file with one link,
 * the size gatewayd announced, a complete squashfs), fsynced, and exactly that inode — linked
 * to a temporary name from the open descriptor, never re-looked-up by name — is renamed over the
 * final name. A torn or swapped file never appears under the final name. The squashfs goes first
 * and the meta file last: an image with its .meta present is complete. */
#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "json-util.h"
#include "log.h"
#include "serve-internal.h"

#define SQUASHFS_MAGIC 0x73717368U     /* "hsqs" little-endian */
#define IMAGE_LIST_MAX 100000

static const char *request_image_id(Serve *s, json_object *req, int *ret_r) {
        const char *id = json_get_string(req, "image");

        *ret_r = 0;
        if (!serve_image_id_is_valid(id)) {
                *ret_r = serve_send_error(s, req, "BAD_NAME", "\"image\": expected an image id (64 lowercase hex digits).");
                return NULL;
        }
        return id;
}

/* The superblock says how many bytes the image uses: a file shorter than that is torn. */
static int check_squashfs(int fd, const struct stat *st, char *err, size_t errsize) {
        uint8_t sb[96];
        uint64_t used;

        if (pread(fd, sb, sizeof(sb), 0) != (ssize_t) sizeof(sb)) {
                snprintf(err, errsize, "too short for a squashfs superblock");
                return -EINVAL;
        }
        if (le32toh(*(uint32_t *) sb) != SQUASHFS_MAGIC) {
                snprintf(err, errsize, "not a squashfs image (bad magic)");
                return -EINVAL;
        }
        memcpy(&used, sb + 40, sizeof(used));
        used = le64toh(used);
        if (used > (uint64_t) st->st_size) {
                snprintf(err, errsize, "incomplete: the superblock says %" PRIu64 " bytes, the file has %" PRIu64,
                         used, (uint64_t) st->st_size);
                return -EINVAL;
        }
        return 0;
}

/* Installs <final>.partial as <final>. Returns 1 if installed, 0 if there was no partial file,
 * negative with a message in err otherwise. */
static int install_one(Serve *s, const char *final, bool squashfs, int64_t want_size, char *err, size_t errsize) {
        _cleanup_free_ char *partial = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st, st2;
        char proc[64];

        if (asprintf(&partial, "%s.partial", final) < 0 || asprintf(&tmp, ".%s.install-%d", final, (int) getpid()) < 0)
                return -ENOMEM;
        fd = openat(s->image_fd, partial, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                snprintf(err, errsize, "%s: %s", partial, errno == ELOOP ? "is a symbolic link" : strerror(errno));
                return -errno;
        }
        if (fstat(fd, &st) < 0)
                return snprintf(err, errsize, "%s: %s", partial, strerror(errno)), -errno;
        if (!S_ISREG(st.st_mode))
                return snprintf(err, errsize, "%s: not a regular file", partial), -EINVAL;
        if (st.st_nlink != 1)
                return snprintf(err, errsize, "%s: has %ju links; expected a file of its own", partial, (uintmax_t) st.st_nlink), -EINVAL;
        if (want_size >= 0 && st.st_size != want_size)
                return snprintf(err, errsize, "%s: %jd bytes, expected %jd (incomplete upload?)", partial,
                                (intmax_t) st.st_size, (intmax_t) want_size), -EINVAL;
        if (squashfs) {
                char why[160];
                if (check_squashfs(fd, &st, why, sizeof(why)) < 0)
                        return snprintf(err, errsize, "%s: %s", partial, why), -EINVAL;
        }
        if (fsync(fd) < 0)
                return snprintf(err, errsize, "%s: fsync: %s", partial, strerror(errno)), -errno;

        (void) unlinkat(s->image_fd, tmp, 0);
        if (linkat(fd, "", s->image_fd, tmp, AT_EMPTY_PATH) < 0) {
                /* Without CAP_DAC_READ_SEARCH: the same through /proc (still this inode). */
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
                if (linkat(AT_FDCWD, proc, s->image_fd, tmp, AT_SYMLINK_FOLLOW) < 0)
                        return snprintf(err, errsize, "%s: link: %s", partial, strerror(errno)), -errno;
        }
        if (renameat(s->image_fd, tmp, s->image_fd, final) < 0) {
                int e = errno;
                (void) unlinkat(s->image_fd, tmp, 0);
                return snprintf(err, errsize, "%s: rename: %s", final, strerror(e)), -e;
        }
        /* The partial name goes too, if it still is the file we installed. */
        if (fstatat(s->image_fd, partial, &st2, AT_SYMLINK_NOFOLLOW) >= 0 && st2.st_ino == st.st_ino && st2.st_dev == st.st_dev)
                (void) unlinkat(s->image_fd, partial, 0);
        if (fsync(s->image_fd) < 0)
                return snprintf(err, errsize, "fsync of the image directory: %s", strerror(errno)), -errno;
        return 1;
}

static int get_size(Serve *s, json_object *req, const char *key, int64_t *ret) {
        json_object *v;

        *ret = -1;
        if (!json_object_object_get_ex(req, key, &v) || !v)
                return 0;
        if (!json_object_is_type(v, json_type_int) || (*ret = json_object_get_int64(v)) < 0) {
                (void) serve_send_error(s, req, "BAD_REQUEST", "\"%s\": expected a non-negative integer.", key);
                return -EINVAL;
        }
        return 0;
}

static bool regular_at(int dir_fd, const char *name, struct stat *st) {
        return fstatat(dir_fd, name, st, AT_SYMLINK_NOFOLLOW) >= 0 && S_ISREG(st->st_mode);
}

int serve_image_install(Serve *s, json_object *req) {
        _cleanup_free_ char *sq = NULL, *meta = NULL;
        int64_t sq_size, meta_size;
        char err[512] = "";
        json_object *o;
        struct stat st;
        const char *id;
        int r, r_sq, r_meta;

        id = request_image_id(s, req, &r);
        if (!id)
                return r;
        if (get_size(s, req, "size", &sq_size) < 0 || get_size(s, req, "metaSize", &meta_size) < 0)
                return 0;
        if (asprintf(&sq, "%s.squashfs", id) < 0 || asprintf(&meta, "%s.meta", id) < 0)
                return -ENOMEM;

        r_sq = install_one(s, sq, true, sq_size, err, sizeof(err));
        if (r_sq == -ENOMEM)
                return r_sq;
        if (r_sq < 0)
                return serve_send_error(s, req, "BAD_FILE", "Cannot install image %s: %s.", id, err);
        if (r_sq == 0 && !regular_at(s->image_fd, sq, &st))
                return serve_send_error(s, req, "NOT_FOUND", "Neither %s.partial nor %s exists in the image directory.", sq, sq);
        r_meta = install_one(s, meta, false, meta_size, err, sizeof(err));
        if (r_meta == -ENOMEM)
                return r_meta;
        if (r_meta < 0)
                return serve_send_error(s, req, "BAD_FILE", "Cannot install image %s: %s.", id, err);

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "image", json_object_new_string(id));
        json_object_object_add(o, "installed", json_object_new_boolean(r_sq > 0 || r_meta > 0));
        if (regular_at(s->image_fd, sq, &st))
                json_object_object_add(o, "size", json_object_new_int64(st.st_size));
        json_object_object_add(o, "meta", json_object_new_boolean(regular_at(s->image_fd, meta, &st)));
        return serve_send(s, "image-installed", req, o);
}

int serve_image_remove(Serve *s, json_object *req) {
        static const char * const suffixes[] = { ".meta", ".meta.partial", ".squashfs", ".squashfs.partial", NULL };
        json_object *o;
        const char *id;
        bool removed = false;
        int r;

        id = request_image_id(s, req, &r);
        if (!id)
                return r;
        /* meta first: without it the image no longer counts as complete. Running jobs keep their
         * mount (it holds the inode). */
        for (size_t i = 0; suffixes[i]; i++) {
                char name[128];
                snprintf(name, sizeof(name), "%s%s", id, suffixes[i]);
                if (unlinkat(s->image_fd, name, 0) >= 0)
                        removed = true;
                else if (errno != ENOENT)
                        return serve_send_error(s, req, "IO_ERROR", "Cannot remove %s: %m.", name);
        }
        (void) fsync(s->image_fd);
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "image", json_object_new_string(id));
        json_object_object_add(o, "removed", json_object_new_boolean(removed));
        return serve_send(s, "image-removed", req, o);
}

int serve_image_list(Serve *s, json_object *req) {
        json_object *images = json_object_new_array(), *partial = json_object_new_array(), *o;
        _cleanup_close_ int fd = dup(s->image_fd);
        struct dirent *de;
        size_t n = 0;
        DIR *d;

        if (!images || !partial || fd < 0) {
                json_object_put(images);
                json_object_put(partial);
                return fd < 0 ? serve_send_error(s, req, "IO_ERROR", "Cannot read the image directory: %m.") : -ENOMEM;
        }
        d = fdopendir(TAKE_FD(fd));
        if (!d) {
                json_object_put(images);
                json_object_put(partial);
                return serve_send_error(s, req, "IO_ERROR", "Cannot read the image directory: %m.");
        }
        rewinddir(d);
        while ((de = readdir(d)) && n < IMAGE_LIST_MAX) {
                char id[65], meta[80];
                const char *rest;
                struct stat st;

                if (strlen(de->d_name) < 64)
                        continue;
                memcpy(id, de->d_name, 64);
                id[64] = 0;
                rest = de->d_name + 64;
                if (!serve_image_id_is_valid(id) || !regular_at(s->image_fd, de->d_name, &st))
                        continue;
                if (streq(rest, ".squashfs")) {
                        json_object *i = json_object_new_object();
                        struct stat mst;
                        if (!i)
                                continue;
                        snprintf(meta, sizeof(meta), "%s.meta", id);
                        json_object_object_add(i, "image", json_object_new_string(id));
                        json_object_object_add(i, "size", json_object_new_int64(st.st_size));
                        json_object_object_add(i, "meta", json_object_new_boolean(regular_at(s->image_fd, meta, &mst)));
                        json_object_array_add(images, i);
                        n++;
                } else if (streq(rest, ".squashfs.partial") || streq(rest, ".meta.partial")) {
                        json_object_array_add(partial, json_object_new_string(de->d_name));
                        n++;
                }
        }
        closedir(d);
        o = json_object_new_object();
        if (!o) {
                json_object_put(images);
                json_object_put(partial);
                return -ENOMEM;
        }
        json_object_object_add(o, "images", images);
        json_object_object_add(o, "partial", partial);
        return serve_send(s, "images", req, o);
}
