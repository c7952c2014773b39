/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <archive_entry.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>

#include "events.h"
#include "hashmap.h"
#include "layer-merge.h"
#include "layer-path.h"
#include "log.h"
#include "macro.h"

/* What the layers merged so far (all above the current one, and the current one) say about a
 * path. Layers are numbered from the top: 0 is the top-most. -1: never. */
typedef struct Node {
        char *path;          /* the key */
        int given;           /* layer whose entry decides this path (emitted, or dropped) */
        int gone;            /* layer that whited it out */
        int opaque;          /* layer that made this directory opaque */
        int implied;         /* top-most layer with entries below this path */
        bool nondir, symlink, regular, dropped;
} Node;

struct LayerMerger {
        struct archive *out;
        Hashmap *nodes;
        int layer;
        const char *subject;
        uint64_t size_max, files_max;
        bool set_owner;
        bool shared;         /* with set_owner: readable by all, no write but the owner's */
        uid_t uid;
        gid_t gid;
        LayerApplyStats stats;
};

typedef enum Prefix {
        PREFIX_OK,
        PREFIX_HIDDEN,   /* an upper layer hides everything below */
        PREFIX_SYMLINK,  /* goes through a symlink of this layer: refused */
        PREFIX_AGAIN,    /* goes through a non-directory of this layer: the applier decides */
} Prefix;

static Node *node_free(Node *n) {
        if (n) {
                free(n->path);
                free(n);
        }
        return NULL;
}

LayerMerger *layer_merger_free(LayerMerger *m) {
        Node *n;

        if (!m)
                return NULL;
        if (m->out)
                archive_write_free(m->out);
        if (m->nodes) {
                HASHMAP_FOREACH(n, m->nodes)
                        node_free(n);
                hashmap_free(m->nodes);
        }
        free(m);
        return NULL;
}

int layer_merger_new(int out_fd, LayerMerger **ret) {
        _cleanup_(layer_merger_freep) LayerMerger *m = NULL;

        m = calloc(1, sizeof(LayerMerger));
        if (!m)
                return -ENOMEM;
        m->layer = -1;
        m->size_max = m->files_max = UINT64_MAX;
        m->nodes = hashmap_new();
        m->out = archive_write_new();
        if (!m->nodes || !m->out)
                return -ENOMEM;
        /* pax: long names, xattrs (SCHILY.xattr) and exact owners go through unchanged */
        if (archive_write_set_format_pax_restricted(m->out) != ARCHIVE_OK ||
            archive_write_add_filter_none(m->out) != ARCHIVE_OK ||
            archive_write_set_bytes_per_block(m->out, 64 * 1024) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(m->out, 1) != ARCHIVE_OK ||
            archive_write_open_fd(m->out, out_fd) != ARCHIVE_OK)
                return worker_error_errno(EIO, "Cannot start the merged tar stream: %s", strna(archive_error_string(m->out)));
        *ret = TAKE_PTR(m);
        return 0;
}

void layer_merger_set_limits(LayerMerger *m, uint64_t size_max, uint64_t files_max) {
        m->size_max = size_max ?: UINT64_MAX;
        m->files_max = files_max ?: UINT64_MAX;
}

void layer_merger_set_owner(LayerMerger *m, uid_t uid, gid_t gid) {
        m->set_owner = true;
        m->uid = uid;
        m->gid = gid;
}

void layer_merger_set_shared(LayerMerger *m) {
        m->shared = true;
}

const LayerApplyStats *layer_merger_stats(LayerMerger *m) {
        return &m->stats;
}

static int refuse(LayerMerger *m, int error, const char *what, const char *name) {
        return worker_error_errno(error, "Refusing layer %s: %s: %s", m->subject, what, name);
}

static Node *node_get(LayerMerger *m, const char *path) {
        return hashmap_get(m->nodes, path);
}

static int node_make(LayerMerger *m, const char *path, Node **ret) {
        Node *n = node_get(m, path);
        int r;

        if (!n) {
                n = calloc(1, sizeof(Node));
                if (!n)
                        return -ENOMEM;
                n->path = strdup(path);
                n->given = n->gone = n->opaque = n->implied = -1;
                if (!n->path)
                        return node_free(n), -ENOMEM;
                r = hashmap_put(m->nodes, n->path, n);
                if (r < 0)
                        return node_free(n), r;
        }
        *ret = n;
        return 0;
}

/* Checks the directories above path (and path itself with self) from the root down. */
static Prefix check_prefixes(LayerMerger *m, const char *path, bool self) {
        _cleanup_free_ char *copy = strdup(path);
        char *slash = copy;

        if (!copy)
                return PREFIX_AGAIN;
        for (;;) {
                Node *n;

                slash = strchr(slash, '/');
                if (slash)
                        *slash = 0;
                else if (!self)
                        return PREFIX_OK;
                n = node_get(m, copy);
                if (n) {
                        if ((n->gone >= 0 && n->gone < m->layer) || (n->opaque >= 0 && n->opaque < m->layer))
                                return PREFIX_HIDDEN;
                        if (n->given >= 0 && n->nondir)
                                return n->given < m->layer ? PREFIX_HIDDEN : n->symlink ? PREFIX_SYMLINK : PREFIX_AGAIN;
                }
                if (!slash)
                        return PREFIX_OK;
                *slash++ = '/';
        }
}

/* check_prefixes() as an entry's verdict: 1 to go on, 0 when the entry is hidden (skipped),
 * negative when it is refused (through a symlink) or must wait (-EAGAIN). */
static int prefixes_admit(LayerMerger *m, const char *path, bool self, const char *name) {
        switch (check_prefixes(m, path, self)) {
        case PREFIX_HIDDEN:
                return 0;
        case PREFIX_SYMLINK:
                return refuse(m, ELOOP, "path goes through a symlink", name);
        case PREFIX_AGAIN:
                return -EAGAIN;
        case PREFIX_OK:
                break;
        }
        return 1;
}

/* Notes that layer has entries below the directories above path (and path, with self). */
static int mark_implied(LayerMerger *m, const char *path, bool self) {
        _cleanup_free_ char *copy = strdup(path);
        char *slash = copy;
        int r;

        if (!copy)
                return -ENOMEM;
        for (;;) {
                Node *n;

                slash = strchr(slash, '/');
                if (slash)
                        *slash = 0;
                else if (!self)
                        return 0;
                r = node_make(m, copy, &n);
                if (r < 0)
                        return r;
                if (n->implied < 0)
                        n->implied = m->layer;
                if (!slash)
                        return 0;
                *slash++ = '/';
        }
}

static int write_entry(LayerMerger *m, struct archive *ar, struct archive_entry *e, const char *path, bool data) {
        if (m->set_owner) {
                archive_entry_set_uid(e, m->uid);
                archive_entry_set_gid(e, m->gid);
                archive_entry_set_uname(e, NULL);
                archive_entry_set_gname(e, NULL);
                archive_entry_set_perm(e, archive_entry_perm(e) & 0777);
                if (m->shared) {
                        mode_t p = archive_entry_perm(e) & 0755;
                        archive_entry_set_perm(e, p | 0444 | (p & 0100 ? 0111 : 0));
                }
        }
        if (archive_write_header(m->out, e) != ARCHIVE_OK)
                return worker_error_errno(EPIPE, "Layer %s: cannot write %s to the squashfs writer: %s", m->subject, path,
                                          strna(archive_error_string(m->out)));
        while (data) {
                const void *buf;
                size_t size;
                la_int64_t offset;
                int k = archive_read_data_block(ar, &buf, &size, &offset);

                if (k == ARCHIVE_EOF)
                        break;
                if (k < ARCHIVE_WARN)
                        return worker_error_errno(EBADMSG, "Layer %s is corrupt: %s", m->subject, strna(archive_error_string(ar)));
                if (size > 0 && archive_write_data(m->out, buf, size) < 0)
                        return worker_error_errno(EPIPE, "Layer %s: cannot write %s to the squashfs writer: %s", m->subject,
                                                  path, strna(archive_error_string(m->out)));
                m->stats.bytes += size;
        }
        return 0;
}

static int merge_whiteout(LayerMerger *m, const char *parent, WhiteoutKind wk, const char *target, const char *name) {
        _cleanup_free_ char *path = NULL;
        Node *n;
        int r;

        if (wk == WHITEOUT_OPAQUE)
                path = strdup(parent);
        else if (asprintf(&path, "%s%s%s", parent, *parent ? "/" : "", target) < 0)
                path = NULL;
        if (!path)
                return -ENOMEM;
        r = prefixes_admit(m, path, wk == WHITEOUT_OPAQUE, name);
        if (r <= 0)
                return r;
        r = node_make(m, path, &n);
        if (r < 0)
                return r;
        if (wk == WHITEOUT_OPAQUE) {
                if (n->opaque < 0)
                        n->opaque = m->layer;
                return mark_implied(m, path, true);
        }
        if (n->given == m->layer)
                return -EAGAIN; /* deletes an entry of its own layer: order matters */
        if (n->gone < 0)
                n->gone = m->layer;
        return mark_implied(m, path, false);
}

static int merge_hardlink(LayerMerger *m, struct archive_entry *e, const char *path, Node *n) {
        _cleanup_free_ char *target = NULL;
        Node *t;
        int r;

        r = layer_path_normalize(archive_entry_hardlink(e), &target);
        if (r < 0 || !*target)
                return refuse(m, EINVAL, "hardlink target outside the image", archive_entry_hardlink(e));
        t = node_get(m, target);
        if (t && t->given == m->layer && t->dropped) {
                m->stats.dropped++;
                n->given = m->layer;
                n->nondir = n->dropped = true;
                return 0;
        }
        if (!t || t->given != m->layer || !t->regular) {
                if (check_prefixes(m, target, false) == PREFIX_SYMLINK)
                        return refuse(m, ELOOP, "path goes through a symlink", target);
                return -EAGAIN; /* hidden, in another layer, not a file or missing: the applier knows */
        }
        archive_entry_set_hardlink(e, target);
        archive_entry_set_size(e, 0);
        return 1;
}

static int merge_entry(LayerMerger *m, struct archive *ar, struct archive_entry *e) {
        _cleanup_free_ char *path = NULL, *parent = NULL;
        const char *name = archive_entry_pathname(e), *base, *target;
        mode_t type = archive_entry_filetype(e);
        bool hardlink = archive_entry_hardlink(e), dir = type == AE_IFDIR && !hardlink;
        WhiteoutKind wk;
        Node *n;
        int r;

        if (!name)
                return refuse(m, EINVAL, "entry without a name", "(null)");
        r = layer_path_normalize(name, &path);
        if (r < 0)
                return refuse(m, r, "path outside the image", name);
        if (++m->stats.entries > m->files_max)
                return worker_error_errno(EFBIG, "Image has more than ImageFilesMax (%" PRIu64 ") entries; "
                                          "stopped in layer %s at %s", m->files_max, m->subject, name);

        if (!*path) {
                if (type != AE_IFDIR)
                        return refuse(m, EINVAL, "root entry is not a directory", name);
                r = node_make(m, "", &n);
                if (r < 0)
                        return r;
                if (n->given >= 0)
                        return n->given < m->layer ? 0 : -EAGAIN;
                n->given = m->layer;
                archive_entry_set_pathname(e, "./");
                return write_entry(m, ar, e, "/", false);
        }

        r = layer_path_split(path, &parent, &base);
        if (r < 0)
                return r;
        r = layer_whiteout_kind(base, &wk, &target);
        if (r < 0)
                return refuse(m, r, "invalid whiteout", name);
        if (wk == WHITEOUT_META)
                return 0;
        if (wk != WHITEOUT_NONE)
                return merge_whiteout(m, parent, wk, target, name);

        if (!hardlink && type != AE_IFREG && type != AE_IFCHR && type != AE_IFBLK && type != AE_IFSOCK &&
            type != AE_IFDIR && type != AE_IFLNK && type != AE_IFIFO)
                return refuse(m, EINVAL, "unsupported entry type", name);
        if (!hardlink && type == AE_IFLNK && (!archive_entry_symlink(e) || !*archive_entry_symlink(e)))
                return refuse(m, EINVAL, "symlink without target", name);

        r = prefixes_admit(m, path, false, name);
        if (r <= 0)
                return r;

        r = node_make(m, path, &n);
        if (r < 0)
                return r;
        if (n->gone >= 0 || n->given >= 0)
                /* whited out or given above: hidden; by this layer itself: order matters */
                return (n->gone >= 0 && n->gone < m->layer) || (n->given >= 0 && n->given < m->layer) ? 0 : -EAGAIN;
        if (!dir && n->implied >= 0) {
                /* a layer has entries below what this one makes a non-directory */
                if (n->implied < m->layer && type == AE_IFLNK && !hardlink)
                        return refuse(m, ELOOP, "path goes through a symlink", name);
                return -EAGAIN;
        }

        if (!hardlink && (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK)) {
                /* what it replaces is gone, the node itself is not created */
                m->stats.dropped++;
                n->given = m->layer;
                n->nondir = n->dropped = true;
                return 0;
        }
        if (hardlink) {
                r = merge_hardlink(m, e, path, n);
                if (r <= 0)
                        return r;
        } else if (type == AE_IFREG) {
                if (archive_entry_sparse_count(e) > 0)
                        return -EAGAIN;
                m->stats.apparent += (uint64_t) MAX(archive_entry_size(e), (la_int64_t) 0);
                if (m->stats.apparent > m->size_max)
                        return worker_error_errno(EFBIG, "Image is larger than ImageSizeMax (%" PRIu64 " bytes unpacked); "
                                                  "stopped in layer %s at %s", m->size_max, m->subject, name);
        }

        n->given = m->layer;
        n->nondir = !dir;
        n->symlink = type == AE_IFLNK && !hardlink;
        n->regular = (type == AE_IFREG && !hardlink) || (hardlink && node_get(m, archive_entry_hardlink(e))->regular);
        r = mark_implied(m, path, false);
        if (r < 0)
                return r;
        archive_entry_set_pathname(e, path);
        return write_entry(m, ar, e, path, type == AE_IFREG && !hardlink);
}

int layer_merger_merge(LayerMerger *m, struct archive *ar, const char *subject) {
        struct archive_entry *e;
        int r;

        m->subject = subject;
        m->layer++;
        for (;;) {
                int k = archive_read_next_header(ar, &e);
                if (k == ARCHIVE_EOF)
                        return 0;
                if (k < ARCHIVE_WARN)
                        return worker_error_errno(EBADMSG, "Layer %s is corrupt: %s", subject, strna(archive_error_string(ar)));
                r = merge_entry(m, ar, e);
                if (r == -EAGAIN)
                        log_debug("Layer %s: %s needs the staged conversion", subject, strna(archive_entry_pathname(e)));
                if (r < 0)
                        return r;
        }
}

static void entry_freep(struct archive_entry **e) {
        if (*e)
                archive_entry_free(*e);
}

int layer_merger_finish(LayerMerger *m, const char * const *dirs, size_t n_dirs) {
        _cleanup_(entry_freep) struct archive_entry *e = archive_entry_new();
        time_t now = time(NULL);

        if (!e)
                return -ENOMEM;
        m->layer++;
        m->subject = "(mount points)";
        for (size_t i = 0; i < n_dirs; i++) {
                Node *n = node_get(m, dirs[i]);
                int r;

                if (n && n->given >= 0 && !n->dropped)
                        continue;
                if (check_prefixes(m, dirs[i], false) != PREFIX_OK) {
                        log_warning("Cannot create mount point /%s in the image: a parent is not a directory", dirs[i]);
                        continue;
                }
                archive_entry_clear(e);
                archive_entry_set_pathname(e, dirs[i]);
                archive_entry_set_filetype(e, AE_IFDIR);
                archive_entry_set_perm(e, streq(dirs[i], "tmp") ? 01777 : 0755);
                archive_entry_set_mtime(e, now, 0);
                r = node_make(m, dirs[i], &n);
                if (r < 0)
                        return r;
                n->given = m->layer;
                r = write_entry(m, NULL, e, dirs[i], false);
                if (r < 0)
                        return r;
        }
        if (archive_write_close(m->out) != ARCHIVE_OK)
                return worker_error_errno(EPIPE, "Cannot end the merged tar stream: %s", strna(archive_error_string(m->out)));
        return 0;
}
