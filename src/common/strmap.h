/*
 * strmap.h - a hash map from strings to pointers: open addressing with
 * linear probing, FNV-1a (common/hash.h), grown at 3/4 load, deletion by
 * backward shift (no tombstones, so lookups stay short after many deletes).
 *
 * Ownership: the map copies every key it stores and frees the copies.  It
 * owns its values when a destructor is given at creation: strmap_put over an
 * existing key, strmap_del, strmap_clear and strmap_free run it on the
 * values they drop; strmap_take hands a value back without it.  Values are
 * never NULL (strmap_get returns NULL for "absent").
 *
 * Memory comes from the x* allocators (common/util.h): running out aborts.
 * Not thread-safe: callers lock.
 */
#ifndef PAI_COMMON_STRMAP_H
#define PAI_COMMON_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

typedef struct strmap strmap_t;
typedef void (*strmap_free_fn)(void *val);

/* A new empty map; free_val (may be NULL: values not owned) destroys values. */
strmap_t *strmap_new(strmap_free_fn free_val);
/* Destroy every value (through free_val), the keys and the map.  NULL is fine. */
void strmap_free(strmap_t *m);

size_t strmap_count(const strmap_t *m);
/* The value stored under key, or NULL. */
void *strmap_get(const strmap_t *m, const char *key);
/* Store val (not NULL) under a copy of key; an old value under the same key
 * is destroyed.  PAI_E_INVALID for a NULL val (not stored). */
PAI_MUST_CHECK pai_err_t strmap_put(strmap_t *m, const char *key, void *val);
/* Remove key and return its value, not destroyed (NULL when absent). */
void *strmap_take(strmap_t *m, const char *key);
/* Remove key and destroy its value; false when absent. */
bool strmap_del(strmap_t *m, const char *key);
/* Remove everything (values destroyed); the map stays usable. */
void strmap_clear(strmap_t *m);

/* Iterate: size_t it = 0; while (strmap_next(m, &it, &key, &val)) ...
 * In no particular order; the map must not change during the walk.  key and
 * val may be NULL when not wanted. */
bool strmap_next(const strmap_t *m, size_t *it, const char **key, void **val);

#endif
