/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* A string-keyed hash map. Keys are borrowed: they must live as long as the entry (normally the
 * key is a field of the value). Iteration order is unspecified. */
typedef struct Hashmap Hashmap;

Hashmap *hashmap_new(void);
Hashmap *hashmap_free(Hashmap *h);
int hashmap_put(Hashmap *h, const char *key, void *value);   /* -EEXIST if present */
void *hashmap_get(Hashmap *h, const char *key);
void *hashmap_remove(Hashmap *h, const char *key);
size_t hashmap_size(Hashmap *h);

/* Iterates with a cursor that starts at 0; returns false at the end. The map must not change
 * while it is iterated: collect what to remove first. */
bool hashmap_iterate(Hashmap *h, size_t *cursor, void **value, const char **key);

#define HASHMAP_FOREACH(v, h)                                                   \
        for (size_t _i_ = 0; hashmap_iterate((h), &_i_, (void **) &(v), NULL);)

static inline void hashmap_freep(Hashmap **h) {
        hashmap_free(*h);
}
