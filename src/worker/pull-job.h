/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "blob-cache.h"
#include "layer-apply.h"
#include "layer-decode.h"
#include "layer-merge.h"
#include "layer-stream.h"
#include "manifest.h"
#include "reference.h"
#include "registry.h"
#include "squashfs.h"

/* The state of one "gateway-worker pull", shared by pull.c (command line, resolving, conversion)
 * and pull-layers.c (the download → decode → apply pipeline). */

typedef struct PullArgs {
        const char *reference;
        const char *image_dir;
        char *cache_dir;
        const char *expand_dir;
        const char *memory_dir;    /* --memory-expand-dir: tmpfs to stage on while the image fits, or NULL */
        uint64_t memory_max;       /* --memory-expand-max: at most this much of it (0: no cap of our own) */
        const char *default_location;
        const char *platform;
        const char *credentials_file;
        char **insecure;
        char **allowed;            /* --allowed-registry: if any, the only registries to contact */
        char **registry_urls;      /* --registry-url=NAME=URL, likewise --registry-cacert, */
        char **registry_cacerts;   /* --registry-auth: per registry, "NAME=VALUE" */
        char **registry_auths;
        SquashfsCompressor compressor;
        int level;
        unsigned jobs;
        unsigned processors;
        unsigned retries;
        uint64_t image_size_max;   /* decompressed bytes of all layers (ImageSizeMax) */
        uint64_t image_files_max;  /* tar entries of all layers (ImageFilesMax) */
        int events_fd;
        bool resolve_only;
        bool force;
        bool staged;               /* --convert=staged: never the streaming writer */
} PullArgs;

typedef enum LayerState {
        LAYER_PENDING,
        LAYER_DOWNLOADING,
        LAYER_DOWNLOADED,
        LAYER_FAILED,
} LayerState;

typedef struct Pull {
        const PullArgs *args;
        ImageReference *ref;
        char *ref_string;
        Platform platform;
        RegistryClient *client;
        BlobCache *cache;

        char *digest, *index_digest, *id;
        ImageManifest *manifest;
        ImageConfig *config;

        pthread_mutex_t lock;
        pthread_cond_t cond;
        LayerState *states;
        bool *fresh;            /* verified while downloading: no need to hash again */
        int *blob_fds;          /* blob per layer, handed from download to decoder: verified, or */
        bool *feeding;          /* still downloading: the decoder reads it as it arrives */
        uint64_t *written;      /* bytes of a feeding blob in its file so far (under lock) */
        BlobFeed *feeds;
        void *layer_feeds;      /* pull-layers.c's, what feeds point to */
        pthread_cond_t feed_cond;  /* a feeding blob grew or ended */
        unsigned feed_waiters;
        LayerStream **streams;  /* decoded tar per layer, from decoder to applier */
        size_t next_layer, next_decode;
        size_t max_ahead;       /* how many layers decoders may be ahead of the applier */
        bool reverse;           /* top-most layer first (merging), else bottom-most first (applying) */
        atomic_bool abort;
        UnpackBudget budget;

        uint64_t bytes_total;
        atomic_uint_fast64_t bytes_done;
        atomic_uint layers_downloaded, layers_applied;
        int64_t last_progress;

        char *staging;
        int staging_lock;
        char *squashfs_tmp;

        int64_t t_start, t_resolved, t_downloaded, t_applied, t_squashfs;
} Pull;

static inline int64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A progress event, at most every 200 ms unless forced. */
void pull_progress(Pull *p, bool force);

/* Makes sure a blob is in the cache; for layer >= 0 also hands it to that layer's decoder. */
int pull_fetch_blob(Pull *p, const char *digest, uint64_t size, ssize_t layer);

/* Reads a small cached blob (the image config), verifying its digest. */
int pull_read_blob(Pull *p, const char *digest, size_t max, char **ret);

/* Downloads (--jobs in parallel), decodes (one thread per CPU) and applies (in order) all layers,
 * or with a merger merges them top-most first. */
int pull_download_and_apply(Pull *p, LayerApplier *applier, LayerMerger *merger);
/* Undoes pull_download_and_apply() after it failed, so that it can run again (blobs already in
 * the cache are not downloaded again). */
void pull_layers_reset(Pull *p);
