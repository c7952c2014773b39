/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>

#include <curl/curl.h>

#include "blob-cache.h"
#include "cancel.h"
#include "events.h"
#include "fs-util.h"
#include "image-meta.h"
#include "json-util.h"
#include "layer-apply.h"
#include "log.h"
#include "manifest.h"
#include "pull-job.h"
#include "pull.h"
#include "reference.h"
#include "registry.h"
#include "size-util.h"
#include "squashfs.h"
#include "staging.h"
#include "writeback.h"

/* gatewayd's ImageSizeMax and ImageFilesMax defaults (docs/configuration.md) */
#define IMAGE_SIZE_MAX_DEFAULT (64ULL * 1024ULL * 1024ULL * 1024ULL)
#define IMAGE_FILES_MAX_DEFAULT 2000000ULL
/* Below this share of memory, staging on tmpfs is not worth trying. */
#define MEMORY_STAGING_MIN (64ULL * 1024ULL * 1024ULL)

static void help(void) {
        printf("NAME\n"
               "    gateway-worker pull - pull a container image and convert it to squashfs\n"
               "\n"
               "SYNOPSIS\n"
               "    gateway-worker pull [OPTIONS...] REFERENCE\n"
               "\n"
               "DESCRIPTION\n"
               "    Resolves REFERENCE against a Docker Registry v2 / OCI distribution registry,\n"
               "    selects the manifest for the requested platform, downloads the layers in\n"
               "    parallel into a content-addressed blob cache (verifying each SHA-256 digest\n"
               "    while it streams), applies the layers in order to a staging tree and packs the\n"
               "    tree into <IMAGE-DIR>/<ID>.squashfs with <ID>.meta.json beside it. <ID> is the\n"
               "    hex part of the platform manifest's sha256 digest.\n"
               "\n"
               "    REFERENCE is read as docker does: 'alpine' is docker.io/library/alpine:latest,\n"
               "    'host:5000/team/app:1.2' names a registry, 'app@sha256:HEX' pins a digest and\n"
               "    'app:tag@sha256:HEX' keeps the tag for display while the digest decides.\n"
               "\n"
               "    Layers are untrusted input: entries that would leave the staging tree (absolute\n"
               "    names, '..', writes through symlinks, hardlinks to outside) fail the pull, device\n"
               "    nodes are dropped. Nothing is written to IMAGE-DIR unless every blob verified.\n"
               "\n"
               "OPTIONS\n"
               "    --image-dir=DIR          Where <ID>.squashfs and <ID>.meta.json are written\n"
               "                             (required unless --resolve-only).\n"
               "    --cache-dir=DIR          Blob cache shared by pulls (default: IMAGE-DIR/.cache).\n"
               "    --expand-dir=DIR         Staging area for unpacked layers (default: /var/tmp).\n"
               "    --convert=stream|staged  stream (default, when tar2sqfs is installed): merge the\n"
               "                             layers top-first into one tar stream that tar2sqfs\n"
               "                             writes as the image while they download, no tree on\n"
               "                             disk; layers that need it (an entry given twice in a\n"
               "                             layer, hardlinks across layers, sparse files, ...) are\n"
               "                             staged instead. staged: always apply the layers to a\n"
               "                             staging tree and run mksquashfs on it.\n"
               "    --memory-expand-dir=DIR  A tmpfs to stage on instead while the image fits in\n"
               "                             half the available memory (default: /dev/shm; empty:\n"
               "                             always stage in EXPAND-DIR). An image that outgrows it\n"
               "                             is staged again in EXPAND-DIR.\n"
               "    --memory-expand-max=SIZE At most this much of MEMORY-EXPAND-DIR (default: no cap\n"
               "                             beyond half the available memory and its free space).\n"
               "    --default-location=HOST  Registry for references without one (default: docker.io).\n"
               "    --platform=OS/ARCH[/VARIANT]\n"
               "                             Platform to select from an image index (default: this\n"
               "                             host, e.g. linux/amd64).\n"
               "    --credentials-file=FILE  JSON {\"username\":…,\"password\":…} or {\"token\":…} used\n"
               "                             for basic or bearer authentication; \"-\" reads stdin\n"
               "                             (gatewayd passes them so). Credentials are never\n"
               "                             accepted on the command line.\n"
               "    --insecure-registry=HOST[:PORT]\n"
               "                             Talk plain HTTP to this registry (repeatable).\n"
               "                             localhost and 127.0.0.0/8 always use plain HTTP.\n"
               "    --allowed-registry=HOST[:PORT]\n"
               "                             Contact only these registries (repeatable; Docker Hub's\n"
               "                             names count as one). A reference naming another one\n"
               "                             fails before any connection. Default: any.\n"
               "    --registry-url=HOST[:PORT]=URL\n"
               "                             Reach this registry at URL (http:// or https://) instead\n"
               "                             of https://HOST[:PORT]; HOST itself is never looked up.\n"
               "    --registry-cacert=HOST[:PORT]=FILE\n"
               "                             CA bundle for TLS to this registry (its token service and\n"
               "                             redirects too) instead of the system trust store.\n"
               "    --registry-auth=HOST[:PORT]=http|basic|none\n"
               "                             http (default): answer the registry's challenge, a bearer\n"
               "                             token (anonymous without credentials) or basic; basic:\n"
               "                             send the credentials as HTTP basic from the first request;\n"
               "                             none: never send credentials or ask a token service.\n"
               "                             (All three repeatable, one per registry.)\n"
               "    --compressor=NAME        squashfs compressor: zstd (default), lz4, gzip, xz.\n"
               "    --compression-level=N    zstd 1-22 (default 3), gzip 1-9 (default 6),\n"
               "                             lz4 1 = fast, 2-12 = high compression; xz ignores it.\n"
               "    --processors=N           Threads for mksquashfs (default: all online).\n"
               "    --jobs=N                 Parallel layer downloads (default: 3, max 32).\n"
               "    --retries=N              Retries of transient registry errors (default: 4).\n"
               "    --image-size-max=BYTES   Fail once the layers unpack to more than this many bytes\n"
               "                             in total (K, M, G, T suffixes; default: 64G).\n"
               "    --image-files-max=N      Fail once the layers hold more than N entries in total\n"
               "                             (default: 2000000).\n"
               "    --events-fd=FD           Write JSON-line events to FD instead of stdout.\n"
               "    --resolve-only, --id-only\n"
               "                             Only resolve REFERENCE to the platform manifest digest:\n"
               "                             emit it in the 'done' event and, with --events-fd, also\n"
               "                             print it on stdout. Nothing is downloaded or written.\n"
               "    --force                  Convert again even if IMAGE-DIR already has the image.\n"
               "    -h, --help               Show this help.\n"
               "\n"
               "EVENTS\n"
               "    One JSON object per line, each with \"event\" and \"time\" (µs since the epoch):\n"
               "      {\"event\":\"status\",\"status\":\"PULLING\"|\"CONVERSION\"|\"READY\"|\"FAILURE\",\"message\":…}\n"
               "      {\"event\":\"progress\",\"bytesDone\":N,\"bytesTotal\":N,\"layersDone\":N,\n"
               "       \"layersApplied\":N,\"layersTotal\":N}\n"
               "      {\"event\":\"log\",\"level\":…,\"message\":…}\n"
               "      {\"event\":\"done\",\"id\":…,\"digest\":…,\"size\":N,\"squashfs\":PATH,\"meta\":PATH,\n"
               "       \"timings\":{…}}\n"
               "\n"
               "FILES\n"
               "    CACHE-DIR/blobs/sha256/HEX      verified blobs, safe to share between pulls\n"
               "    EXPAND-DIR/gateway-pull-XXXXXX  staging tree, removed when the pull ends\n"
               "    MEMORY-EXPAND-DIR/gateway-pull.UID/gateway-pull-XXXXXX  the same, in memory\n"
               "\n"
               "ENVIRONMENT\n"
               "    GATEWAYD_MKSQUASHFS  mksquashfs binary to run (default: mksquashfs in PATH)\n"
               "    GATEWAYD_TAR2SQFS    tar2sqfs binary to stream into (default: tar2sqfs in PATH;\n"
               "                         none there: the staged conversion)\n"
               "    GATEWAYD_LOG_LEVEL   stderr log level (err, warning, info, debug)\n"
               "\n"
               "EXIT STATUS\n"
               "    0 on success; 1 on failure, after a FAILURE status event and a message on stderr.\n"
               "\n"
               "EXAMPLES\n"
               "    gateway-worker pull --image-dir=/var/lib/gatewayd/images alpine:3.19\n"
               "    gateway-worker pull --resolve-only --events-fd=3 127.0.0.1:5000/app:latest\n");
}

/* ---- credentials ---- */

static int read_credentials(const char *path, char **ret_user, char **ret_password, char **ret_token) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        const char *u, *pw, *t;

        /* "-": stdin, a pipe gatewayd filled (secrets never on a command line or in a file). */
        o = streq(path, "-") ? json_object_from_fd(STDIN_FILENO) : json_object_from_file(path);
        if (!o || !json_object_is_type(o, json_type_object))
                return worker_error_errno(EINVAL, "Cannot read credentials file %s: expected a JSON object", path);
        u = json_get_string(o, "username");
        pw = json_get_string(o, "password");
        t = json_get_string(o, "token") ?: json_get_string(o, "registrytoken");
        if (!t && !u)
                return worker_error_errno(EINVAL, "Credentials file %s has neither \"username\" nor \"token\"", path);
        if ((u && !(*ret_user = strdup(u))) || (pw && !(*ret_password = strdup(pw))) ||
            (t && !(*ret_token = strdup(t))))
                return -ENOMEM;
        return 0;
}

/* ---- resolving ---- */

static int resolve(Pull *p) {
        _cleanup_free_ char *body = NULL, *media_type = NULL, *digest = NULL;
        size_t size;
        ManifestKind kind;
        int r;

        r = registry_get_manifest(p->client, image_reference_manifest_ref(p->ref), &body, &size, &media_type, &digest);
        if (r < 0)
                return r;
        r = manifest_kind(media_type, body, &kind);
        if (r < 0)
                return worker_error_errno(r, "Unsupported manifest for %s (media type %s)", p->ref_string, strna(media_type));

        if (kind == MANIFEST_INDEX) {
                _cleanup_free_ char *pdigest = NULL, *platform = platform_to_string(&p->platform);

                r = manifest_index_select(body, &p->platform, &pdigest);
                if (r == -ENOENT)
                        return worker_error_errno(r, "no manifest for platform %s in %s", strna(platform), p->ref_string);
                if (r < 0)
                        return worker_error_errno(r, "Malformed image index for %s", p->ref_string);
                p->index_digest = TAKE_PTR(digest);
                body = mfree(body);
                media_type = mfree(media_type);
                r = registry_get_manifest(p->client, pdigest, &body, &size, &media_type, &digest);
                if (r < 0)
                        return r;
                r = manifest_kind(media_type, body, &kind);
                if (r < 0 || kind != MANIFEST_IMAGE)
                        return worker_error_errno(EBADMSG, "Index entry %s of %s is not an image manifest", pdigest, p->ref_string);
        }

        r = image_manifest_parse(body, &p->manifest);
        if (r == -E2BIG)
                return worker_error_errno(r, "Image %s has more than %d layers, the limit", p->ref_string, MAX_LAYERS);
        if (r == -EPROTONOSUPPORT)
                return worker_error_errno(r, "Image %s has a layer of an unsupported media type", p->ref_string);
        if (r < 0)
                return worker_error_errno(r, "Malformed image manifest for %s", p->ref_string);

        p->digest = TAKE_PTR(digest);
        p->id = strdup(p->digest + 7);
        return p->id ? 0 : -ENOMEM;
}

/* ---- converting ---- */

/* mksquashfs stores a block as is when compressing it does not pay, so the image is at most the
 * file data plus metadata (well under 256 bytes an entry) and its tables. Checked before the
 * conversion starts rather than found out by a full disk halfway through it. */
static int check_free_space(Pull *p, const LayerApplyStats *st, bool replace) {
        uint64_t need = st->bytes + st->entries * 256 + 1024 * 1024, avail;
        struct statvfs sv;
        struct stat tmp;

        if (statvfs(p->args->image_dir, &sv) < 0)
                return worker_error_errno(errno, "Cannot check the free space in %s: %m", p->args->image_dir);
        avail = (uint64_t) sv.f_bavail * sv.f_frsize;
        /* what the streaming writer has written so far counts as available */
        if (p->squashfs_tmp && stat(p->squashfs_tmp, &tmp) >= 0)
                avail += (uint64_t) tmp.st_blocks * 512;
        if (avail < need)
                return (replace ? worker_error_replace_errno : worker_error_errno)(ENOSPC, "Not enough free space in %s for the image: it may take up to %" PRIu64
                                          " bytes, %" PRIu64 " are available", p->args->image_dir, need, avail);
        return 0;
}

static const char * const mount_points[] = { "proc", "sys", "dev", "tmp", "var", "var/input" };

static int image_into_place(Pull *p, char *dest_taken, char **ret_path, uint64_t *ret_size);

static int convert(Pull *p, const char *rootfs, LayerApplier *applier, bool privileged, char **ret_path, uint64_t *ret_size) {
        _cleanup_free_ char *pseudo = NULL, *dest = NULL;
        SquashfsOptions so = {
                .compressor = p->args->compressor,
                .level = p->args->level,
                .processors = p->args->processors,
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(mount_points); i++) {
                r = layer_applier_ensure_dir(applier, mount_points[i], streq(mount_points[i], "tmp") ? 01777 : 0755);
                if (r < 0)
                        log_warning("Cannot create mount point /%s in the image: %s", mount_points[i], strerror(-r));
        }

        if (!privileged) {
                _cleanup_fclose_ FILE *f = NULL;

                if (asprintf(&pseudo, "%s/pseudo", p->staging) < 0)
                        return -ENOMEM;
                f = fopen(pseudo, "we");
                if (!f)
                        return worker_error_errno(errno, "Cannot create %s: %m", pseudo);
                r = layer_applier_write_pseudo_file(applier, f, &so.root_mode, &so.root_uid, &so.root_gid);
                if (r < 0)
                        return worker_error_errno(r, "Cannot write the owner list for mksquashfs: %m");
                so.pseudo_file = pseudo;
                so.set_root = true;
        }

        if (asprintf(&p->squashfs_tmp, "%s/.%s.squashfs.tmp-%d", p->args->image_dir, p->id, (int) getpid()) < 0 ||
            asprintf(&dest, "%s/%s.squashfs", p->args->image_dir, p->id) < 0) {
                p->squashfs_tmp = dest = NULL;
                return -ENOMEM;
        }
        r = squashfs_build(rootfs, p->squashfs_tmp, &so);
        if (r < 0)
                return r;
        return image_into_place(p, TAKE_PTR(dest), ret_path, ret_size);
}

/* fsync and rename the finished squashfs_tmp to dest (taken). */
static int image_into_place(Pull *p, char *dest_taken, char **ret_path, uint64_t *ret_size) {
        _cleanup_free_ char *dest = dest_taken;
        struct stat st;
        int fd, r;

        fd = open(p->squashfs_tmp, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return worker_error_errno(errno, "Cannot open %s: %m", p->squashfs_tmp);
        if (fsync(fd) < 0 || fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                return worker_error_errno(r, "Cannot sync %s: %m", p->squashfs_tmp);
        }
        close(fd);
        if (rename(p->squashfs_tmp, dest) < 0)
                return worker_error_errno(errno, "Cannot move the image into place as %s: %m", dest);
        p->squashfs_tmp = mfree(p->squashfs_tmp);

        *ret_size = (uint64_t) st.st_size;
        *ret_path = TAKE_PTR(dest);
        return 0;
}

/* ---- streaming: no tree on disk ---- */

/* Layers merged top-first into one tar stream that tar2sqfs turns into the image as it arrives:
 * no staging tree, and the squashfs is written while layers still download and inflate. Every
 * layer is verified (digest, diff_id) before the image is moved into place. -EAGAIN (nothing
 * recorded, nothing left behind): the layers need the staged conversion; -EPIPE: tar2sqfs failed
 * (not for want of space), which the staged conversion may not. */
static int convert_streaming(Pull *p, char **ret_path, uint64_t *ret_size) {
        _cleanup_(layer_merger_freep) LayerMerger *merger = NULL;
        _cleanup_free_ char *dest = NULL;
        _cleanup_close_ int fd = -1;
        SquashfsOptions so = {
                .compressor = p->args->compressor,
                .level = p->args->level,
                .processors = p->args->processors,
        };
        LayerApplyStats stats = {};
        _cleanup_close_ int image_fd = -1;
        Writeback *writeback;
        pid_t pid;
        int r;

        if (asprintf(&p->squashfs_tmp, "%s/.%s.squashfs.tmp-%d", p->args->image_dir, p->id, (int) getpid()) < 0 ||
            asprintf(&dest, "%s/%s.squashfs", p->args->image_dir, p->id) < 0) {
                p->squashfs_tmp = dest = NULL;
                return -ENOMEM;
        }
        /* Created here, so that the worker holds the file tar2sqfs writes (it truncates, not
         * replaces, what it is given with --force) and can start its writeback early. */
        image_fd = open(p->squashfs_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (image_fd < 0) {
                r = worker_error_errno(errno, "Cannot create %s: %m", p->squashfs_tmp);
                p->squashfs_tmp = mfree(p->squashfs_tmp);
                return r;
        }
        r = squashfs_stream_start(p->squashfs_tmp, &so, &fd, &pid);
        if (r < 0) {
                (void) unlink(p->squashfs_tmp);
                p->squashfs_tmp = mfree(p->squashfs_tmp);
                return r;
        }
        writeback = writeback_start(image_fd);
        events_emit_log("info", "converting while streaming the layers into tar2sqfs");
        r = layer_merger_new(fd, &merger);
        if (r >= 0) {
                layer_merger_set_limits(merger, p->args->image_size_max, p->args->image_files_max);
                p->budget.max = p->args->image_size_max;
                r = pull_download_and_apply(p, NULL, merger);
                if (r >= 0)
                        r = layer_merger_finish(merger, mount_points, ELEMENTSOF(mount_points));
                stats = *layer_merger_stats(merger);
        }
        merger = layer_merger_free(merger);
        fd = safe_close(fd);   /* the end of the stream for tar2sqfs */
        if (r >= 0) {
                p->t_applied = now_usec();
                if (stats.dropped > 0)
                        events_emit_log("info", "dropped %" PRIu64 " device nodes or sockets", stats.dropped);
                r = check_free_space(p, &stats, false);
                if (r >= 0) {
                        events_emit_status("CONVERSION", NULL);
                        r = squashfs_stream_wait(pid);
                        pid = 0;
                        if (r < 0 && !cancelled())
                                r = -EPIPE;
                }
        }
        writeback_stop(writeback);
        if (r < 0) {
                if (pid > 0) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, NULL, 0);
                }
                /* a writer that stopped because the disk is full shows up as a failed write */
                stats.bytes = MAX(stats.bytes, stats.apparent); /* as far as it got, and the rest of that file */
                if (r != -EAGAIN && r != -ENOSPC && !cancelled() && check_free_space(p, &stats, true) < 0)
                        r = -ENOSPC;
                (void) unlink(p->squashfs_tmp);
                p->squashfs_tmp = mfree(p->squashfs_tmp);
                return r;
        }
        return image_into_place(p, TAKE_PTR(dest), ret_path, ret_size);
}

/* ---- staging ---- */

static uint64_t meminfo_available(void) {
        _cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
        char line[256];
        unsigned long long kb;

        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
                        return (uint64_t) kb * 1024;
        return 0;
}

/* Staging on tmpfs instead of disk: creating a file there costs a tenth of what it costs on ext4
 * and mksquashfs reads it without I/O. It is used while the image fits in a share of memory: at
 * most half of what the kernel reports available, what the tmpfs has free and --memory-expand-max.
 * The decoders and the applier hold the pull to that share (like ImageSizeMax); an image that
 * outgrows it is staged again on disk. Returns that share, 0 to stage on disk, and the private
 * directory on the tmpfs (<dir>/gateway-pull.<uid>: the tmpfs may be world-writable /dev/shm). */
static uint64_t memory_staging_budget(const PullArgs *a, char **ret_dir) {
        _cleanup_free_ char *dir = NULL;
        struct statfs sf;
        struct statvfs sv;
        struct stat st;
        uint64_t share;

        if (!a->memory_dir || !*a->memory_dir)
                return 0;
        if (statfs(a->memory_dir, &sf) < 0 || sf.f_type != TMPFS_MAGIC) {
                log_debug("%s is not a tmpfs, staging on disk", a->memory_dir);
                return 0;
        }
        if (asprintf(&dir, "%s/gateway-pull.%u", a->memory_dir, (unsigned) geteuid()) < 0)
                return 0;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                log_debug("Cannot create %s, staging on disk: %m", dir);
                return 0;
        }
        if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0077)) {
                log_warning("%s is not a private directory of ours, staging on disk", dir);
                return 0;
        }
        if (statvfs(dir, &sv) < 0)
                return 0;
        share = MIN((uint64_t) sv.f_bavail * sv.f_frsize, meminfo_available() / 2);
        if (a->memory_max > 0)
                share = MIN(share, a->memory_max);
        /* an explicit small cap is taken at its word (the tests stage a few MiB in memory) */
        if (share == 0 || (share < MEMORY_STAGING_MIN && share != a->memory_max))
                return 0;
        *ret_dir = TAKE_PTR(dir);
        return share;
}

static int stage_create(Pull *p, const char *dir, char **ret_rootfs, int *ret_root_fd) {
        _cleanup_free_ char *rootfs = NULL;
        int r, fd;

        r = mkdir_p(dir, 0755);
        if (r < 0)
                return worker_error_errno(r, "Cannot create expand directory %s: %m", dir);
        if (!streq(dir, p->args->expand_dir))
                staging_remove_stale(dir);
        r = staging_create(dir, &p->staging, &p->staging_lock);
        if (r < 0)
                return worker_error_errno(r, "Cannot create a staging directory in %s: %m", dir);
        if (asprintf(&rootfs, "%s/rootfs", p->staging) < 0)
                return -ENOMEM;
        if (mkdir(rootfs, 0755) < 0)
                return worker_error_errno(errno, "Cannot create %s: %m", rootfs);
        fd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return worker_error_errno(errno, "Cannot open %s: %m", rootfs);
        *ret_rootfs = TAKE_PTR(rootfs);
        *ret_root_fd = fd;
        return 0;
}

static void stage_remove(Pull *p) {
        if (p->staging) {
                int r = rm_rf(p->staging);
                if (r < 0)
                        log_warning("Cannot remove staging directory %s: %s", p->staging, strerror(-r));
                p->staging = mfree(p->staging);
        }
        p->staging_lock = safe_close(p->staging_lock);
}

/* ---- the verb ---- */

static void emit_done(Pull *p, const char *squashfs, const char *meta, uint64_t size, bool cached) {
        json_object *o = json_object_new_object(), *t;

        if (!o)
                return;
        json_object_object_add(o, "id", json_object_new_string(p->id));
        json_object_object_add(o, "digest", json_object_new_string(p->digest));
        if (p->index_digest)
                json_object_object_add(o, "indexDigest", json_object_new_string(p->index_digest));
        json_object_object_add(o, "reference", json_object_new_string(p->ref_string));
        if (squashfs) {
                json_object_object_add(o, "size", json_object_new_int64((int64_t) size));
                json_object_object_add(o, "squashfs", json_object_new_string(squashfs));
                json_object_object_add(o, "meta", json_object_new_string(meta));
                json_object_object_add(o, "cached", json_object_new_boolean(cached));
        } else
                json_object_object_add(o, "resolveOnly", json_object_new_boolean(true));

        t = json_object_new_object();
        if (t) {
                int64_t end = now_usec();
                json_object_object_add(t, "resolveMs", json_object_new_int64((p->t_resolved - p->t_start) / 1000));
                if (p->t_applied) {
                        json_object_object_add(t, "downloadMs", json_object_new_int64((p->t_downloaded - p->t_resolved) / 1000));
                        json_object_object_add(t, "applyMs", json_object_new_int64((p->t_applied - p->t_resolved) / 1000));
                        json_object_object_add(t, "squashfsMs", json_object_new_int64((p->t_squashfs - p->t_applied) / 1000));
                }
                json_object_object_add(t, "totalMs", json_object_new_int64((end - p->t_start) / 1000));
                json_object_object_add(o, "timings", t);
        }
        (void) events_emit(WORKER_EVENT_DONE, o);
}

static int image_present(const PullArgs *args, const char *id, char **ret_squashfs, char **ret_meta, uint64_t *ret_size) {
        _cleanup_free_ char *s = NULL, *m = NULL;
        struct stat st;

        if (asprintf(&s, "%s/%s.squashfs", args->image_dir, id) < 0 || asprintf(&m, "%s/%s.meta.json", args->image_dir, id) < 0) {
                free(s);
                s = NULL;
                return -ENOMEM;
        }
        if (stat(s, &st) < 0 || !S_ISREG(st.st_mode) || access(m, F_OK) < 0)
                return 0;
        *ret_size = (uint64_t) st.st_size;
        *ret_squashfs = TAKE_PTR(s);
        *ret_meta = TAKE_PTR(m);
        return 1;
}

/* The value of a "NAME=VALUE" option for this registry, or NULL; the last one given wins. */
static const char *registry_setting(char **l, const char *registry) {
        const char *found = NULL;

        for (char **i = l; i && *i; i++) {
                const char *eq = strchr(*i, '=');
                _cleanup_free_ char *name = strndup(*i, eq - *i);

                if (name && registry_name_equal(name, registry))
                        found = eq + 1;
        }
        return found;
}

static int pull_run(Pull *p) {
        const PullArgs *args = p->args;
        _cleanup_(layer_applier_freep) LayerApplier *applier = NULL;
        _cleanup_free_ char *rootfs = NULL, *squashfs = NULL, *meta = NULL, *config_body = NULL;
        _cleanup_free_ char *user = NULL, *password = NULL, *token = NULL;
        _cleanup_close_ int root_fd = -1;
        const char *auth = registry_setting(args->registry_auths, p->ref->registry);
        RegistryOptions ro = {
                .insecure_registries = args->insecure,
                .base_url = registry_setting(args->registry_urls, p->ref->registry),
                .ca_file = registry_setting(args->registry_cacerts, p->ref->registry),
                .retries = args->retries,
        };
        bool privileged = geteuid() == 0;
        _cleanup_free_ char *memory_dir = NULL;
        uint64_t size = 0, memory_max;
        int r;

        p->t_start = now_usec();
        events_emit_status("PULLING", p->ref_string);

        if (auth)
                (void) registry_auth_from_string(auth, &ro.auth); /* checked in parse_argv() */
        if (args->credentials_file && ro.auth != REGISTRY_AUTH_NONE) {
                r = read_credentials(args->credentials_file, &user, &password, &token);
                if (r < 0)
                        return r;
                ro.username = user;
                ro.password = password;
                ro.token = token;
        }
        r = registry_client_new(p->ref, &ro, &p->client);
        if (r < 0)
                return r;

        r = resolve(p);
        if (r < 0)
                return r;
        p->t_resolved = now_usec();

        if (args->resolve_only) {
                if (args->events_fd != STDOUT_FILENO)
                        printf("%s\n", p->digest);
                emit_done(p, NULL, NULL, 0, false);
                return 0;
        }

        if (!args->force) {
                r = image_present(args, p->id, &squashfs, &meta, &size);
                if (r < 0)
                        return r;
                if (r > 0) {
                        events_emit_status("READY", "image already present");
                        emit_done(p, squashfs, meta, size, true);
                        return 0;
                }
        }

        r = mkdir_p(args->image_dir, 0755);
        if (r < 0)
                return worker_error_errno(r, "Cannot create image directory %s: %m", args->image_dir);
        r = blob_cache_open(args->cache_dir, &p->cache);
        if (r < 0)
                return r;

        /* The manifest's word bounds the download (the blob writer stops at the promised size). */
        if (p->manifest->config_size > CONFIG_SIZE_MAX)
                return worker_error_errno(EFBIG, "Image configuration %s of %s is %" PRIu64 " bytes, more than the limit of %u",
                                          p->manifest->config_digest, p->ref_string, p->manifest->config_size, CONFIG_SIZE_MAX);
        r = pull_fetch_blob(p, p->manifest->config_digest, p->manifest->config_size, -1);
        if (r < 0)
                return r;
        r = pull_read_blob(p, p->manifest->config_digest, CONFIG_SIZE_MAX, &config_body);
        if (r < 0)
                return r;
        r = image_config_parse(config_body, &p->config);
        if (r < 0)
                return worker_error_errno(r, "Malformed image configuration %s for %s", p->manifest->config_digest, p->ref_string);
        /* Every layer is checked against what it must unpack to: without that list it cannot be. */
        if (p->config->n_diff_ids != p->manifest->n_layers)
                return worker_error_errno(EBADMSG, "Image configuration %s of %s lists %zu diff_ids for %zu layers",
                                          p->manifest->config_digest, p->ref_string, p->config->n_diff_ids,
                                          p->manifest->n_layers);
        if (p->config->platform.os && p->config->platform.architecture &&
            (!streq(p->config->platform.os, p->platform.os) || !streq(p->config->platform.architecture, p->platform.architecture)))
                log_warning("Image %s is for %s/%s, not %s/%s", p->ref_string, p->config->platform.os,
                            p->config->platform.architecture, p->platform.os, p->platform.architecture);

        /* left behind by killed pulls, on disk even when this one stages in memory */
        staging_remove_stale(args->expand_dir);

        if (!args->staged && squashfs_stream_available()) {
                r = convert_streaming(p, &squashfs, &size);
                if (r >= 0)
                        goto converted;
                if (r == -EPIPE && !cancelled())
                        events_emit_log("warning", "tar2sqfs failed (%s); converting staged instead",
                                        strna(worker_error_message()));
                else if (r == -EAGAIN)
                        events_emit_log("info", "The layers need the staged conversion (an entry they hold cannot be merged "
                                        "in one pass); staging them");
                else
                        return r;
                worker_error_clear();
                pull_layers_reset(p);
        }

        memory_max = memory_staging_budget(args, &memory_dir);
        for (;;) {
                bool in_memory = memory_max > 0;
                const char *dir = in_memory ? memory_dir : args->expand_dir;
                uint64_t size_max = in_memory ? MIN(memory_max, args->image_size_max) : args->image_size_max;

                r = stage_create(p, dir, &rootfs, &root_fd);
                if (r < 0)
                        return r;
                if (in_memory)
                        events_emit_log("info", "staging in memory in %s (up to %" PRIu64 " bytes)", dir, size_max);
                r = layer_applier_new(root_fd, privileged, &applier);
                if (r < 0)
                        return r;
                layer_applier_set_limits(applier, size_max, args->image_files_max);
                p->budget.max = size_max;

                r = pull_download_and_apply(p, applier, NULL);
                if (r >= 0)
                        break;
                /* Staged in memory, the image outgrew the share it may take there (or the tmpfs
                 * filled up under it): start over on disk. The verified blobs are in the cache. */
                if (!in_memory || cancelled() ||
                    (r != -ENOSPC && (size_max >= args->image_size_max ||
                                      (atomic_load(&p->budget.used) <= size_max &&
                                       layer_applier_stats(applier)->apparent <= size_max))))
                        return r;
                events_emit_log("info", "The image is larger than its share of memory (%" PRIu64 " bytes) for staging in %s; "
                                "staging it on disk in %s instead", size_max, dir, args->expand_dir);
                worker_error_clear();
                applier = layer_applier_free(applier);
                root_fd = safe_close(root_fd);
                rootfs = mfree(rootfs);
                stage_remove(p);
                pull_layers_reset(p);
                memory_max = 0;
        }
        p->t_applied = now_usec();
        if (layer_applier_stats(applier)->dropped > 0)
                events_emit_log("info", "dropped %" PRIu64 " device nodes or sockets",
                                layer_applier_stats(applier)->dropped);

        r = check_free_space(p, layer_applier_stats(applier), false);
        if (r < 0)
                return r;
        events_emit_status("CONVERSION", NULL);
        r = convert(p, rootfs, applier, privileged, &squashfs, &size);
        if (r < 0)
                return r;
converted:
        p->t_squashfs = now_usec();

        {
                ImageMeta m = {
                        .id = p->id,
                        .reference = p->ref_string,
                        .digest = p->digest,
                        .index_digest = p->index_digest,
                        .compressor = squashfs_compressor_to_string(args->compressor),
                        .size = size,
                        .manifest = p->manifest,
                        .config = p->config,
                };
                _cleanup_free_ char *name = NULL;

                if (asprintf(&name, "%s.squashfs", p->id) < 0 || asprintf(&meta, "%s/%s.meta.json", args->image_dir, p->id) < 0) {
                        name = meta = NULL;
                        return -ENOMEM;
                }
                m.squashfs = name;
                r = image_meta_write(args->image_dir, &m);
                if (r < 0)
                        return worker_error_errno(r, "Cannot write %s: %m", meta);
        }

        events_emit_status("READY", NULL);
        emit_done(p, squashfs, meta, size, false);
        return 0;
}

static void pull_done(Pull *p) {
        if (p->squashfs_tmp) {
                (void) unlink(p->squashfs_tmp);
                free(p->squashfs_tmp);
        }
        stage_remove(p);
        registry_client_free(p->client);
        blob_cache_free(p->cache);
        image_reference_free(p->ref);
        free(p->ref_string);
        platform_done(&p->platform);
        free(p->digest);
        free(p->index_digest);
        free(p->id);
        image_config_free(p->config);
        free(p->states);
        for (size_t i = 0; p->manifest && i < p->manifest->n_layers; i++) {
                if (p->blob_fds)
                        safe_close(p->blob_fds[i]);
                if (p->streams)
                        layer_stream_free(p->streams[i]);
        }
        free(p->blob_fds);
        free(p->fresh);
        free(p->feeding);
        free(p->written);
        free(p->feeds);
        free(p->layer_feeds);
        free(p->streams);
        image_manifest_free(p->manifest);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
        pthread_cond_destroy(&p->feed_cond);
}

static int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || *s == '-' || v < min || v > max)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

static int strv_push(char ***l, const char *s) {
        size_t n = strv_length(*l);
        char **t = realloc(*l, (n + 2) * sizeof(char *));

        if (!t)
                return -ENOMEM;
        *l = t;
        t[n] = strdup(s);
        if (!t[n])
                return -ENOMEM;
        t[n + 1] = NULL;
        return 0;
}

static int parse_argv(int argc, char *argv[], PullArgs *a) {
        enum {
                ARG_IMAGE_DIR = 0x100,
                ARG_CACHE_DIR,
                ARG_EXPAND_DIR,
                ARG_DEFAULT_LOCATION,
                ARG_PLATFORM,
                ARG_CREDENTIALS_FILE,
                ARG_INSECURE,
                ARG_ALLOWED,
                ARG_REGISTRY_URL,
                ARG_REGISTRY_CACERT,
                ARG_REGISTRY_AUTH,
                ARG_COMPRESSOR,
                ARG_LEVEL,
                ARG_JOBS,
                ARG_PROCESSORS,
                ARG_RETRIES,
                ARG_IMAGE_SIZE_MAX,
                ARG_IMAGE_FILES_MAX,
                ARG_EVENTS_FD,
                ARG_RESOLVE_ONLY,
                ARG_FORCE,
                ARG_MEMORY_EXPAND_DIR,
                ARG_CONVERT,
                ARG_MEMORY_EXPAND_MAX,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "image-dir", required_argument, NULL, ARG_IMAGE_DIR },
                { "cache-dir", required_argument, NULL, ARG_CACHE_DIR },
                { "expand-dir", required_argument, NULL, ARG_EXPAND_DIR },
                { "memory-expand-dir", required_argument, NULL, ARG_MEMORY_EXPAND_DIR },
                { "convert", required_argument, NULL, ARG_CONVERT },
                { "memory-expand-max", required_argument, NULL, ARG_MEMORY_EXPAND_MAX },
                { "default-location", required_argument, NULL, ARG_DEFAULT_LOCATION },
                { "platform", required_argument, NULL, ARG_PLATFORM },
                { "credentials-file", required_argument, NULL, ARG_CREDENTIALS_FILE },
                { "insecure-registry", required_argument, NULL, ARG_INSECURE },
                { "allowed-registry", required_argument, NULL, ARG_ALLOWED },
                { "registry-url", required_argument, NULL, ARG_REGISTRY_URL },
                { "registry-cacert", required_argument, NULL, ARG_REGISTRY_CACERT },
                { "registry-auth", required_argument, NULL, ARG_REGISTRY_AUTH },
                { "compressor", required_argument, NULL, ARG_COMPRESSOR },
                { "compression-level", required_argument, NULL, ARG_LEVEL },
                { "jobs", required_argument, NULL, ARG_JOBS },
                { "processors", required_argument, NULL, ARG_PROCESSORS },
                { "retries", required_argument, NULL, ARG_RETRIES },
                { "image-size-max", required_argument, NULL, ARG_IMAGE_SIZE_MAX },
                { "image-files-max", required_argument, NULL, ARG_IMAGE_FILES_MAX },
                { "events-fd", required_argument, NULL, ARG_EVENTS_FD },
                { "resolve-only", no_argument, NULL, ARG_RESOLVE_ONLY },
                { "id-only", no_argument, NULL, ARG_RESOLVE_ONLY },
                { "force", no_argument, NULL, ARG_FORCE },
                {}
        };
        const char *level = NULL;
        unsigned u;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_IMAGE_DIR:
                        a->image_dir = optarg;
                        break;
                case ARG_CACHE_DIR:
                        r = free_and_strdup(&a->cache_dir, optarg);
                        if (r < 0)
                                return log_oom();
                        break;
                case ARG_EXPAND_DIR:
                        a->expand_dir = optarg;
                        break;
                case ARG_DEFAULT_LOCATION:
                        a->default_location = optarg;
                        break;
                case ARG_PLATFORM:
                        a->platform = optarg;
                        break;
                case ARG_CREDENTIALS_FILE:
                        a->credentials_file = optarg;
                        break;
                case ARG_INSECURE:
                        if (strv_push(&a->insecure, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_ALLOWED:
                        if (strv_push(&a->allowed, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_REGISTRY_URL:
                case ARG_REGISTRY_CACERT:
                case ARG_REGISTRY_AUTH: {
                        const char *eq = strchr(optarg, '=');
                        RegistryAuth auth;

                        if (!eq || eq == optarg || !eq[1] ||
                            (c == ARG_REGISTRY_URL && !strneq(eq + 1, "http://", 7) && !strneq(eq + 1, "https://", 8)) ||
                            (c == ARG_REGISTRY_AUTH && registry_auth_from_string(eq + 1, &auth) < 0))
                                return worker_error_errno(EINVAL, "Invalid --registry-%s '%s'.",
                                                          c == ARG_REGISTRY_URL ? "url" : c == ARG_REGISTRY_CACERT ? "cacert" : "auth",
                                                          optarg);
                        if (strv_push(c == ARG_REGISTRY_URL ? &a->registry_urls :
                                      c == ARG_REGISTRY_CACERT ? &a->registry_cacerts : &a->registry_auths, optarg) < 0)
                                return log_oom();
                        break;
                }
                case ARG_COMPRESSOR:
                        if (squashfs_compressor_from_string(optarg, &a->compressor) < 0)
                                return worker_error_errno(EINVAL, "Unknown compressor '%s' (expected zstd, lz4, gzip or xz).", optarg);
                        break;
                case ARG_LEVEL:
                        level = optarg;
                        break;
                case ARG_JOBS:
                        if (parse_unsigned(optarg, 1, 32, &a->jobs) < 0)
                                return worker_error_errno(EINVAL, "Invalid --jobs '%s' (expected 1-32).", optarg);
                        break;
                case ARG_PROCESSORS:
                        if (parse_unsigned(optarg, 1, 1024, &a->processors) < 0)
                                return worker_error_errno(EINVAL, "Invalid --processors '%s' (expected 1-1024).", optarg);
                        break;
                case ARG_RETRIES:
                        if (parse_unsigned(optarg, 0, 20, &a->retries) < 0)
                                return worker_error_errno(EINVAL, "Invalid --retries '%s' (expected 0-20).", optarg);
                        break;
                case ARG_IMAGE_SIZE_MAX:
                        if (parse_size(optarg, &a->image_size_max) < 0 || a->image_size_max == 0)
                                return worker_error_errno(EINVAL, "Invalid --image-size-max '%s' (expected bytes, e.g. 64G).", optarg);
                        break;
                case ARG_IMAGE_FILES_MAX:
                        if (parse_size(optarg, &a->image_files_max) < 0 || a->image_files_max == 0 || optarg[strspn(optarg, "0123456789")])
                                return worker_error_errno(EINVAL, "Invalid --image-files-max '%s' (expected a number > 0).", optarg);
                        break;
                case ARG_EVENTS_FD:
                        if (parse_unsigned(optarg, 0, INT32_MAX, &u) < 0 || fcntl((int) u, F_GETFD) < 0)
                                return worker_error_errno(EBADF, "Invalid --events-fd '%s': not an open file descriptor.", optarg);
                        a->events_fd = (int) u;
                        break;
                case ARG_RESOLVE_ONLY:
                        a->resolve_only = true;
                        break;
                case ARG_FORCE:
                        a->force = true;
                        break;
                case ARG_CONVERT:
                        if (streq(optarg, "staged"))
                                a->staged = true;
                        else if (streq(optarg, "stream"))
                                a->staged = false;
                        else
                                return worker_error_errno(EINVAL, "Invalid --convert '%s' (expected stream or staged).", optarg);
                        break;
                case ARG_MEMORY_EXPAND_DIR:
                        a->memory_dir = optarg;
                        break;
                case ARG_MEMORY_EXPAND_MAX:
                        if (parse_size(optarg, &a->memory_max) < 0 || a->memory_max == 0)
                                return worker_error_errno(EINVAL, "Invalid --memory-expand-max '%s' (expected bytes, e.g. 8G).", optarg);
                        break;
                case '?':
                        return worker_error_errno(EINVAL, "Invalid command line. See 'gateway-worker pull --help'.");
                default:
                        return -EINVAL;
                }
        }

        if (level) {
                unsigned l;
                if (parse_unsigned(level, 0, 22, &l) < 0 || squashfs_level_check(a->compressor, (int) l) < 0)
                        return worker_error_errno(EINVAL, "Invalid --compression-level '%s' for %s.", level,
                                               squashfs_compressor_to_string(a->compressor));
                a->level = (int) l;
        }

        if (optind + 1 != argc)
                return worker_error_errno(EINVAL, "Expected exactly one REFERENCE. See 'gateway-worker pull --help'.");
        a->reference = argv[optind];

        if (!a->image_dir && !a->resolve_only)
                return worker_error_errno(EINVAL, "--image-dir= is required.");
        if (!a->cache_dir && a->image_dir && asprintf(&a->cache_dir, "%s/.cache", a->image_dir) < 0) {
                a->cache_dir = NULL;
                return log_oom();
        }
        return 1;
}

/* gatewayd checks the registry against its Locations before it starts us; checking again here
 * keeps a root process from being pointed anywhere should that check ever be bypassed. */
static int check_allowed_registry(const PullArgs *a, const ImageReference *ref) {
        if (!a->allowed)
                return 0;
        for (char **i = a->allowed; *i; i++)
                if (registry_name_equal(*i, ref->registry))
                        return 0;
        return worker_error_errno(EACCES, "Registry %s is not an allowed location (--allowed-registry); not contacting it.",
                                  ref->registry);
}

int verb_pull(int argc, char *argv[]) {
        PullArgs args = {
                .expand_dir = "/var/tmp",
                .memory_dir = "/dev/shm",
                .default_location = "docker.io",
                .compressor = SQUASHFS_ZSTD,
                .level = -1,
                .jobs = 3,
                .retries = 4,
                .image_size_max = IMAGE_SIZE_MAX_DEFAULT,
                .image_files_max = IMAGE_FILES_MAX_DEFAULT,
                .events_fd = STDOUT_FILENO,
        };
        Pull p = {
                .args = &args,
                .lock = PTHREAD_MUTEX_INITIALIZER,
                .cond = PTHREAD_COND_INITIALIZER,
                .feed_cond = PTHREAD_COND_INITIALIZER,
                .staging_lock = -1,
        };
        int r;

        r = parse_argv(argc, argv, &args);
        if (r < 0) {
                /* the caller reads events: say why even when the command line was wrong */
                events_set_fd(args.events_fd);
                events_emit_status("FAILURE", worker_error_message() ?: "Invalid command line");
        }
        if (r <= 0)
                goto finish_args;

        if (args.events_fd != STDOUT_FILENO)
                (void) fcntl(args.events_fd, F_SETFD, FD_CLOEXEC);
        events_set_fd(args.events_fd);
        cancel_setup();
        signal(SIGPIPE, SIG_IGN);

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                r = worker_error_errno(EIO, "Cannot initialize libcurl");
                goto finish;
        }

        r = image_reference_parse(args.reference, args.default_location, &p.ref);
        if (r < 0) {
                r = worker_error_errno(r, "Invalid image reference '%s'", args.reference);
                goto finish;
        }
        r = check_allowed_registry(&args, p.ref);
        if (r < 0)
                goto finish;
        p.ref_string = image_reference_to_string(p.ref);
        if (!p.ref_string) {
                r = log_oom();
                goto finish;
        }
        r = args.platform ? platform_parse(args.platform, &p.platform) : platform_host(&p.platform);
        if (r < 0) {
                r = worker_error_errno(r, "Invalid platform '%s' (expected OS/ARCH[/VARIANT])", strna(args.platform));
                goto finish;
        }

        r = pull_run(&p);
        if (r < 0 && cancelled())
                r = worker_error_replace_errno(EINTR, "Pull of %s interrupted by a signal", args.reference);

finish:
        if (r < 0) {
                const char *m = worker_error_message();
                char buf[256];

                if (!m) {
                        snprintf(buf, sizeof(buf), "Pull of %s failed: %s", args.reference, strerror(-r));
                        log_error("%s", buf);
                        m = buf;
                }
                events_emit_status("FAILURE", m);
        }
        pull_done(&p);
        curl_global_cleanup();
finish_args:
        strv_free(args.insecure);
        strv_free(args.allowed);
        strv_free(args.registry_urls);
        strv_free(args.registry_cacerts);
        strv_free(args.registry_auths);
        free(args.cache_dir);
        return r < 0 ? 1 : 0;
}
