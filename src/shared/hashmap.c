/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"

/* Open addressing with linear probing and backward-shift deletion: no tombstones, so lookups stay
 * short however many entries come and go (jobs are created and removed all day long). */

typedef struct Entry {
        const char *key;
        void *value;
        uint32_t hash;
} Entry;

struct Hashmap {
        Entry *entries;
        size_t n_buckets; /* power of two */
        size_t n_entries;
};

static uint32_t hash_string(const char *s) {
        uint32_t h = 2166136261u; /* FNV-1a */
        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= 16777619u;
        }
        return h;
}

Hashmap *hashmap_new(void) {
        return calloc(1, sizeof(Hashmap));
}

Hashmap *hashmap_free(Hashmap *h) {
        if (!h)
                return NULL;
        free(h->entries);
        free(h);
        return NULL;
}

size_t hashmap_size(Hashmap *h) {
        return h ? h->n_entries : 0;
}

static size_t find_slot(Hashmap *h, const char *key, uint32_t hash) {
        size_t mask = h->n_buckets - 1;
        for (size_t i = hash & mask;; i = (i + 1) & mask) {
                Entry *e = &h->entries[i];
                if (!e->key || (e->hash == hash && strcmp(e->key, key) == 0))
                        return i;
        }
}

static int resize(Hashmap *h, size_t n) {
        Entry *old = h->entries;
        size_t old_n = h->n_buckets;

        h->entries = calloc(n, sizeof(Entry));
        if (!h->entries) {
                h->entries = old;
                return -ENOMEM;
        }
        h->n_buckets = n;
        for (size_t i = 0; i < old_n; i++)
                if (old[i].key)
                        h->entries[find_slot(h, old[i].key, old[i].hash)] = old[i];
        free(old);
        return 0;
}

int hashmap_put(Hashmap *h, const char *key, void *value) {
        uint32_t hash = hash_string(key);
        size_t i;

        if ((h->n_entries + 1) * 4 > h->n_buckets * 3) {
                int r = resize(h, h->n_buckets ? h->n_buckets * 2 : 16);
                if (r < 0)
                        return r;
        }
        i = find_slot(h, key, hash);
        if (h->entries[i].key)
                return -EEXIST;
        h->entries[i] = (Entry) { .key = key, .value = value, .hash = hash };
        h->n_entries++;
        return 0;
}

void *hashmap_get(Hashmap *h, const char *key) {
        size_t i;

        if (!h || h->n_entries == 0)
                return NULL;
        i = find_slot(h, key, hash_string(key));
        return h->entries[i].key ? h->entries[i].value : NULL;
}

void *hashmap_remove(Hashmap *h, const char *key) {
        size_t mask, i, j;
        void *value;

        if (!h || h->n_entries == 0)
                return NULL;
        mask = h->n_buckets - 1;
        i = find_slot(h, key, hash_string(key));
        if (!h->entries[i].key)
                return NULL;
        value = h->entries[i].value;

        /* Shift later members of the probe run back so that no lookup stops early at the hole. */
        for (j = (i + 1) & mask; h->entries[j].key; j = (j + 1) & mask) {
                size_t home = h->entries[j].hash & mask;
                bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
                if (movable) {
                        h->entries[i] = h->entries[j];
                        i = j;
                }
        }
        h->entries[i] = (Entry) {};
        h->n_entries--;
        return value;
}

bool hashmap_iterate(Hashmap *h, size_t *cursor, void **value, const char **key) {
        if (!h)
                return false;
        for (; *cursor < h->n_buckets; (*cursor)++) {
                Entry *e = &h->entries[*cursor];
                if (e->key) {
                        if (value)
                                *value = e->value;
                        if (key)
                                *key = e->key;
                        (*cursor)++;
                        return true;
                }
        }
        return false;
}
