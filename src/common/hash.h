/*
 * hash.h - FNV-1a, the one string hash of the project (hash maps, short
 * stable names).  Not for anything an attacker could aim at: no seed.
 *
 *   uint64_t h = hash_fnv1a(FNV1A_INIT, name);
 *   h = hash_fnv1a(h, other);          (a hash of the concatenation)
 */
#ifndef PAI_COMMON_HASH_H
#define PAI_COMMON_HASH_H

#include <stdint.h>

/* The published 64-bit offset basis.  The three copies this replaces had
 * lost its last digit (1469598103934665603); nothing kept their values. */
#define FNV1A_INIT 14695981039346656037ull

/* Continue the 64-bit FNV-1a hash h over the NUL-terminated string s. */
static inline uint64_t hash_fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

#endif
