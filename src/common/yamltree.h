/*
 * yamltree.h - a YAML document (parsed by libyaml) as a tree with positions.
 *
 * Every node keeps its 1-based line and column so that callers can report
 * "file:line:col: field: reason".  Limits: at most PAI_MAX_YAML_NODES nodes
 * after alias expansion (alias bombs are refused, not expanded), depth at
 * most PAI_MAX_YAML_DEPTH, one document per stream.  Aliases share the
 * anchored node (the tree is a DAG; weight counts the expanded size).
 * Merge keys (`<<: *base`) are applied at parse time.
 * All nodes are owned by the ydoc_t and freed with it.
 */
#ifndef PAI_COMMON_YAMLTREE_H
#define PAI_COMMON_YAMLTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef enum { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP } ynode_kind_t;

typedef struct ynode ynode_t;
typedef struct {
    ynode_t *key;
    ynode_t *val;
} ypair_t;

struct ynode {
    ynode_kind_t kind;
    int line, col;   /* 1-based position of the node's start */
    bool plain;      /* scalar written without quotes (may be a number, bool, null) */
    char *str;       /* scalar text, NUL-terminated */
    size_t len;      /* scalar length */
    ynode_t **items; /* sequence items */
    ypair_t *pairs;  /* mapping pairs, in document order */
    size_t n;        /* number of items or pairs */
    size_t cap;
    uint64_t weight; /* nodes in the expanded subtree, this one included */
};

typedef struct ydoc ydoc_t;

typedef struct {
    int line, col;
    char msg[256];
} yerr_t;

/* Parse len bytes.  On success *out owns the tree (root may be NULL for an
 * empty document).  On failure returns PAI_E_INVALID (or PAI_E_TOO_LARGE)
 * with err filled in. */
PAI_MUST_CHECK pai_err_t ydoc_parse(const char *data, size_t len, ydoc_t **out, yerr_t *err);
void ydoc_free(ydoc_t *doc);
const ynode_t *ydoc_root(const ydoc_t *doc);

/* Keys that repeat a key of their own map (scalar keys, compared as text;
 * the merge key `<<` left out), in document order, the later of each two:
 * at most YDOC_MAX_DUPS of them are kept.  A reader that refuses
 * duplicate keys (the job protocol does, as js-yaml does) reports them;
 * the tree keeps every pair, and ynode_get finds the first. */
#define YDOC_MAX_DUPS 16
size_t ydoc_dups(const ydoc_t *doc, const ynode_t *const **keys);

/* ydoc_parse, and a duplicate key is an error there too ("duplicate key
 * 'name'" at the later one): for configuration files, where the second of
 * two values would otherwise be silently ignored. */
PAI_MUST_CHECK pai_err_t ydoc_parse_unique(const char *data, size_t len, ydoc_t **out, yerr_t *err);

/* Map lookup by key (NULL when n is not a map or has no such key). */
const ynode_t *ynode_get(const ynode_t *map, const char *key);
bool ynode_is_null(const ynode_t *n);
/* Typed reads of plain or quoted scalars; false when not that type. */
bool ynode_as_i64(const ynode_t *n, int64_t *out);
bool ynode_as_double(const ynode_t *n, double *out);
bool ynode_as_bool(const ynode_t *n, bool *out);
/* Name of the node kind for messages: "string", "number", "map", ... */
const char *ynode_kind_name(const ynode_t *n);

#endif
