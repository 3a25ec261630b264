/*
 * yamltree.c - libyaml event stream -> ynode_t tree.
 *
 * Procedure:
 *  1. Pull events from libyaml; keep a stack of open collections.
 *  2. Each scalar/collection start creates a node, records its anchor.
 *  3. An alias looks the anchor up and links the same node again; its
 *     expanded weight is added to the document's total, which is capped.
 *  4. At mapping end, `<<` merge keys are resolved.
 */
#include "common/vec.h"
#include "common/yamltree.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common/limits.h"
#include "common/util.h"

typedef struct anchor {
    char *name;
    ynode_t *node;
    struct anchor *next;
} anchor_t;

/* Every node is one allocation (a scalar's text follows it), listed in
 * nodes[] for ydoc_free: a job document of ~50 nodes costs ~50 mallocs,
 * not ~130 (node, list cell and text each). */
struct ydoc {
    ynode_t *root;
    ynode_t **nodes;
    size_t nnodes, capnodes;
    anchor_t *anchors;
    uint64_t total;                     /* expanded node count */
    const ynode_t *dups[YDOC_MAX_DUPS]; /* keys a map already had */
    size_t ndups;
};

static void node_destroy(ynode_t *n)
{
    free(n->items);
    free(n->pairs);
    free(n);
}

void ydoc_free(ydoc_t *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->nnodes; i++)
        node_destroy(doc->nodes[i]);
    free(doc->nodes);
    for (anchor_t *a = doc->anchors, *next; a; a = next) {
        next = a->next;
        free(a->name);
        free(a);
    }
    free(doc);
}

const ynode_t *ydoc_root(const ydoc_t *doc)
{
    return doc ? doc->root : NULL;
}

size_t ydoc_dups(const ydoc_t *doc, const ynode_t *const **keys)
{
    *keys = doc ? doc->dups : NULL;
    return doc ? doc->ndups : 0;
}

/* A node with room for a text of len bytes after it (scalars; 0 and no
 * text for collections). */
static ynode_t *node_new(ydoc_t *doc, ynode_kind_t kind, const yaml_mark_t *m, size_t len)
{
    VEC_XRESERVE(doc->nodes, doc->capnodes, doc->nnodes + 1);
    ynode_t *n = xcalloc(1, sizeof(*n) + (kind == YNODE_SCALAR ? len + 1 : 0));
    n->kind = kind;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    n->weight = 1;
    if (kind == YNODE_SCALAR)
        n->str = (char *)(n + 1);
    doc->nodes[doc->nnodes++] = n;
    return n;
}

static pai_err_t set_err(yerr_t *err, int line, int col, const char *msg)
{
    if (err) {
        err->line = line;
        err->col = col;
        str_copy(err->msg, msg, sizeof(err->msg));
    }
    return PAI_E_INVALID;
}

static void add_child(ynode_t *parent, ynode_t *child, ynode_t **pending_key)
{
    if (parent->kind == YNODE_SEQ) {
        VEC_XRESERVE(parent->items, parent->cap, parent->n + 1);
        parent->items[parent->n++] = child;
    } else if (!*pending_key) {
        *pending_key = child;
        return;
    } else {
        VEC_XRESERVE(parent->pairs, parent->cap, parent->n + 1);
        parent->pairs[parent->n].key = *pending_key;
        parent->pairs[parent->n].val = child;
        parent->n++;
        parent->weight += (*pending_key)->weight;
        *pending_key = NULL;
    }
    parent->weight += child->weight;
}

static bool key_is(const ynode_t *k, const char *s)
{
    /* the first bytes first: most keys of a map differ there */
    return k && k->kind == YNODE_SCALAR && k->str[0] == s[0] && strcmp(k->str, s) == 0;
}

/* Copy pairs of src not already in map (merge key semantics). */
static int merge_from(ynode_t *map, const ynode_t *src)
{
    if (!src || src->kind != YNODE_MAP)
        return -1;
    for (size_t i = 0; i < src->n; i++) {
        /* keys that are collections cannot be looked up: dropped */
        if (src->pairs[i].key->kind != YNODE_SCALAR || ynode_get(map, src->pairs[i].key->str))
            continue;
        ynode_t *pk = NULL;
        add_child(map, src->pairs[i].key, &pk);
        add_child(map, src->pairs[i].val, &pk);
    }
    return 0;
}

static int apply_merges(ynode_t *map)
{
    for (size_t i = 0; i < map->n; i++) {
        if (!key_is(map->pairs[i].key, "<<") || !map->pairs[i].key->plain)
            continue;
        ynode_t *v = map->pairs[i].val;
        memmove(&map->pairs[i], &map->pairs[i + 1], (map->n - i - 1) * sizeof(ypair_t));
        map->n--;
        if (v->kind == YNODE_SEQ) {
            for (size_t j = 0; j < v->n; j++)
                if (merge_from(map, v->items[j]) < 0)
                    return -1;
        } else if (merge_from(map, v) < 0) {
            return -1;
        }
        i--;
    }
    return 0;
}

typedef struct {
    ynode_t *node;
    ynode_t *pending_key;
} frame_t;

typedef struct {
    ydoc_t *doc;
    frame_t stack[PAI_MAX_YAML_DEPTH + 1];
    size_t depth;
    int docs;
    yerr_t *err;
} builder_t;

static pai_err_t attach(builder_t *b, ynode_t *n, const yaml_mark_t *m)
{
    if (b->doc->total > PAI_MAX_YAML_NODES) {
        set_err(b->err, (int)m->line + 1, (int)m->column + 1,
                "document too large: more than 200000 YAML nodes (after alias expansion)");
        return PAI_E_TOO_LARGE;
    }
    if (b->depth == 0) {
        b->doc->root = n;
        return PAI_OK;
    }
    frame_t *f = &b->stack[b->depth - 1];
    add_child(f->node, n, &f->pending_key);
    return PAI_OK;
}

static void remember_anchor(builder_t *b, const yaml_char_t *name, ynode_t *n)
{
    if (!name)
        return;
    anchor_t *a = xcalloc(1, sizeof(*a));
    a->name = xstrdup((const char *)name);
    a->node = n;
    a->next = b->doc->anchors;
    b->doc->anchors = a;
}

static pai_err_t on_scalar(builder_t *b, const yaml_event_t *ev)
{
    ynode_t *n = node_new(b->doc, YNODE_SCALAR, &ev->start_mark, ev->data.scalar.length);
    n->len = ev->data.scalar.length;
    memcpy(n->str, ev->data.scalar.value, n->len);
    n->str[n->len] = '\0';
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    b->doc->total++;
    remember_anchor(b, ev->data.scalar.anchor, n);
    return attach(b, n, &ev->start_mark);
}

static pai_err_t on_start(builder_t *b, const yaml_event_t *ev, ynode_kind_t kind)
{
    if (b->depth >= PAI_MAX_YAML_DEPTH)
        return set_err(b->err, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                       "document nested too deeply (more than 64 levels)");
    ynode_t *n = node_new(b->doc, kind, &ev->start_mark, 0);
    b->doc->total++;
    const yaml_char_t *anchor =
        kind == YNODE_MAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    remember_anchor(b, anchor, n);
    b->stack[b->depth].node = n;
    b->stack[b->depth].pending_key = NULL;
    b->depth++;
    return PAI_OK;
}

/* A key to compare: a scalar, not the merge key (its pairs are merged
 * below, and they never override a key of the map's own). */
static const char *dup_key(const ypair_t *p)
{
    const ynode_t *k = p->key;
    return k->kind == YNODE_SCALAR && !(k->plain && strcmp(k->str, "<<") == 0) ? k->str : NULL;
}

static int cmp_pair_key(const void *a, const void *b)
{
    const ypair_t *x = *(const ypair_t *const *)a, *y = *(const ypair_t *const *)b;
    int r = strcmp(dup_key(x), dup_key(y));
    return r ? r : (x > y) - (x < y); /* the later one of two equal keys sorts after */
}

static void note_dup(ydoc_t *doc, const ynode_t *key)
{
    if (doc->ndups < YDOC_MAX_DUPS)
        doc->dups[doc->ndups++] = key;
}

/* Keys a map's own pairs repeat (before its merges): the later ones are
 * noted, in the order of the map (a small map compared pairwise, a large
 * one sorted). */
static void find_dups(ydoc_t *doc, const ynode_t *map)
{
    if (map->n <= 16) {
        for (size_t i = 1; i < map->n; i++)
            for (size_t j = 0; j < i && dup_key(&map->pairs[i]); j++)
                if (dup_key(&map->pairs[j]) &&
                    strcmp(dup_key(&map->pairs[i]), dup_key(&map->pairs[j])) == 0) {
                    note_dup(doc, map->pairs[i].key);
                    break;
                }
        return;
    }
    const ypair_t **v = xcalloc(map->n, sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; i < map->n; i++)
        if (dup_key(&map->pairs[i]))
            v[n++] = &map->pairs[i];
    qsort(v, n, sizeof(*v), cmp_pair_key);
    for (size_t i = 1; i < n; i++)
        if (strcmp(dup_key(v[i]), dup_key(v[i - 1])) == 0)
            note_dup(doc, v[i]->key);
    free(v);
}

static pai_err_t on_end(builder_t *b, const yaml_event_t *ev)
{
    ynode_t *n = b->stack[--b->depth].node;
    if (n->kind == YNODE_MAP && n->n > 1)
        find_dups(b->doc, n);
    if (n->kind == YNODE_MAP && apply_merges(n) < 0)
        return set_err(b->err, n->line, n->col, "merge key '<<' must refer to a mapping");
    return attach(b, n, &ev->start_mark);
}

static pai_err_t on_alias(builder_t *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    for (anchor_t *a = b->doc->anchors; a; a = a->next) {
        if (strcmp(a->name, name) != 0)
            continue;
        b->doc->total += a->node->weight;
        return attach(b, a->node, &ev->start_mark);
    }
    return set_err(b->err, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                   "unknown YAML alias");
}

static pai_err_t on_event(builder_t *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->docs > 1)
            return set_err(b->err, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                           "expected a single YAML document, found several");
        return PAI_OK;
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(b, ev, YNODE_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_start(b, ev, YNODE_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(b, ev);
    case YAML_ALIAS_EVENT:
        return on_alias(b, ev);
    default:
        return PAI_OK;
    }
}

/* Where a byte offset falls (reader errors carry an offset, not a mark). */
static yaml_mark_t offset_mark(const char *data, size_t len, size_t offset)
{
    yaml_mark_t m = {.index = offset};
    size_t line_start = 0;
    for (size_t i = 0; i < offset && i < len; i++)
        if (data[i] == '\n') {
            m.line++;
            line_start = i + 1;
        }
    m.column = offset - line_start;
    return m;
}

static pai_err_t parse_error(const yaml_parser_t *p, const char *data, size_t len, yerr_t *err)
{
    char msg[256];
    const char *problem = p->problem ? p->problem : "unknown problem";
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR) {
        m = offset_mark(data, len, p->problem_offset);
        snprintf(msg, sizeof(msg), "invalid text (not UTF-8?): %s", problem);
    } else {
        snprintf(msg, sizeof(msg), "YAML syntax error: %s%s%s", problem, p->context ? " " : "",
                 p->context ? p->context : "");
    }
    return set_err(err, (int)m.line + 1, (int)m.column + 1, msg);
}

pai_err_t ydoc_parse(const char *data, size_t len, ydoc_t **out, yerr_t *err)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    builder_t b = {.err = err};
    pai_err_t rc = PAI_OK;
    int done = 0;

    *out = NULL;
    if (err)
        memset(err, 0, sizeof(*err));
    b.doc = xcalloc(1, sizeof(*b.doc));
    if (!yaml_parser_initialize(&parser))
        util_oom(); /* libyaml allocates with its own malloc */
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    while (!done && rc == PAI_OK) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = parse_error(&parser, data, len, err);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (rc != PAI_OK) {
        ydoc_free(b.doc);
        return rc;
    }
    *out = b.doc;
    return PAI_OK;
}

pai_err_t ydoc_parse_unique(const char *data, size_t len, ydoc_t **out, yerr_t *err)
{
    pai_err_t rc = ydoc_parse(data, len, out, err);
    if (rc != PAI_OK || !(*out)->ndups)
        return rc;
    const ynode_t *k = (*out)->dups[0];
    char msg[sizeof(err->msg)];
    snprintf(msg, sizeof(msg), "duplicate key '%.200s'", k->str);
    rc = set_err(err, k->line, k->col, msg);
    ydoc_free(*out);
    *out = NULL;
    return rc;
}

const ynode_t *ynode_get(const ynode_t *map, const char *key)
{
    if (!map || map->kind != YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (key_is(map->pairs[i].key, key))
            return map->pairs[i].val;
    return NULL;
}

bool ynode_is_null(const ynode_t *n)
{
    if (!n)
        return true;
    if (n->kind != YNODE_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcasecmp(n->str, "null") == 0;
}

bool ynode_as_i64(const ynode_t *n, int64_t *out)
{
    if (!n || n->kind != YNODE_SCALAR || n->len == 0)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(n->str, &end, 0);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool ynode_as_double(const ynode_t *n, double *out)
{
    if (!n || n->kind != YNODE_SCALAR || n->len == 0)
        return false;
    char *end;
    errno = 0;
    double v = strtod(n->str, &end);
    if (errno || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

bool ynode_as_bool(const ynode_t *n, bool *out)
{
    if (!n || n->kind != YNODE_SCALAR)
        return false;
    if (strcasecmp(n->str, "true") == 0) {
        *out = true;
        return true;
    }
    if (strcasecmp(n->str, "false") == 0) {
        *out = false;
        return true;
    }
    return false;
}

const char *ynode_kind_name(const ynode_t *n)
{
    int64_t i;
    double d;
    bool b;
    if (!n || ynode_is_null(n))
        return "null";
    if (n->kind == YNODE_MAP)
        return "map";
    if (n->kind == YNODE_SEQ)
        return "list";
    if (n->plain && ynode_as_i64(n, &i))
        return "integer";
    if (n->plain && ynode_as_double(n, &d))
        return "number";
    if (n->plain && ynode_as_bool(n, &b))
        return "boolean";
    return "string";
}
