/*
 * sched_model.c - the cluster model: cell types, physical cells, nodes, VCs,
 * and buddy binding of virtual cells to physical cells.
 *
 * Buddy binding: a virtual cell of type T binds to a free physical cell of
 * type T (free: neither it, an ancestor nor a descendant is bound).  Among
 * free cells we take the one whose nearest partly-bound ancestor is deepest,
 * i.e. we split an already split parent before splitting a fresh one, which is
 * what a buddy allocator's free lists do.  With the start-up check that all
 * VCs' cells can be bound at once, this keeps every VC's guarantee bindable
 * whatever the others hold (HiveD's sharing safety).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strmap.h"
#include "common/util.h"
#include "common/vec.h"
#include "sched/sched_int.h"

/* ---- string map ------------------------------------------------------ */

/* An index is stored as a pointer-sized index + 1: strmap values are never
 * NULL, and index 0 is valid. */
static void *idx_val(int i)
{
    return (void *)(intptr_t)(i + 1);
}

void sched_strmap_free(strmap_t **m)
{
    strmap_free(*m);
    *m = NULL;
}

int sched_strmap_get(strmap_t *const *m, const char *key)
{
    void *v = *m ? strmap_get(*m, key) : NULL;
    return v ? (int)((intptr_t)v - 1) : SCHED_NONE;
}

pai_err_t sched_strmap_put(strmap_t **m, const char *key, int val)
{
    if (!*m)
        *m = strmap_new(NULL);
    return strmap_put(*m, key, idx_val(val));
}

void sched_strmap_del(strmap_t **m, const char *key)
{
    if (*m)
        strmap_del(*m, key);
}

/* ---- types and SKUs -------------------------------------------------- */

sched_t *sched_model_alloc(const sched_opts_t *opts)
{
    sched_t *s = xcalloc(1, sizeof(*s));
    if (opts)
        s->opts = *opts;
    if (s->opts.starvation_ms == 0)
        s->opts.starvation_ms = 10 * 60 * 1000;
    s->chk_doomed = -1;
    return s;
}

int sched_model_find_type(const sched_t *s, const char *name)
{
    for (int i = 0; i < s->n_types; i++)
        if (strcmp(s->types[i].name, name) == 0)
            return i;
    return SCHED_NONE;
}

int sched_model_find_sku(const sched_t *s, const char *name)
{
    for (int i = 0; i < s->n_skus; i++)
        if (strcmp(s->skus[i].name, name) == 0)
            return i;
    return SCHED_NONE;
}

int sched_model_find_vc(const sched_t *s, const char *name)
{
    for (int i = 0; i < s->n_vcs; i++)
        if (strcmp(s->vcs[i].name, name) == 0)
            return i;
    return SCHED_NONE;
}

int sched_model_add_type(sched_t *s, const char *name)
{
    int t = sched_model_find_type(s, name);
    if (t == SCHED_NONE) {
        s->types = xrealloc(s->types, (size_t)(s->n_types + 1) * sizeof(*s->types));
        t = s->n_types++;
        s->types[t] = (ctype_t){.child = SCHED_NONE, .sku = SCHED_NONE};
        str_copy(s->types[t].name, name, sizeof(s->types[t].name));
    }
    return t;
}

static int add_sku(sched_t *s, const char *name)
{
    int k = sched_model_find_sku(s, name);
    if (k == SCHED_NONE) {
        s->skus = xrealloc(s->skus, (size_t)(s->n_skus + 1) * sizeof(*s->skus));
        k = s->n_skus++;
        s->skus[k] = (sku_t){0};
        str_copy(s->skus[k].name, name, sizeof(s->skus[k].name));
    }
    return k;
}

/* Resolve level, GPU count and SKU of type t (depth-limited against cycles). */
static pai_err_t finish_type(sched_t *s, int t, int depth, char *err, size_t errlen)
{
    ctype_t *ct = &s->types[t];
    if (ct->level)
        return PAI_OK;
    if (depth > 16) {
        snprintf(err, errlen, "cellType %s: childCellType chain too deep or cyclic", ct->name);
        return PAI_E_BAD_CONFIG;
    }
    if (ct->child == SCHED_NONE) {
        int k = add_sku(s, ct->name);
        ct = &s->types[t];
        ct->level = 1;
        ct->gpus = 1;
        ct->sku = k;
        s->skus[k].cpus_per_gpu = ct->cpus;
        s->skus[k].mem_per_gpu_mb = ct->memory_mb;
        return PAI_OK;
    }
    pai_err_t rc = finish_type(s, ct->child, depth + 1, err, errlen);
    if (rc != PAI_OK)
        return rc;
    ct = &s->types[t];
    const ctype_t *ch = &s->types[ct->child];
    ct->level = ch->level + 1;
    ct->gpus = ch->gpus * ct->child_n;
    ct->sku = ch->sku;
    ct->cpus = ch->cpus * ct->child_n;
    ct->memory_mb = ch->memory_mb * ct->child_n;
    return PAI_OK;
}

pai_err_t sched_model_finish_types(sched_t *s, char *err, size_t errlen)
{
    for (int t = 0; t < s->n_types; t++) {
        pai_err_t rc = finish_type(s, t, 0, err, errlen);
        if (rc != PAI_OK)
            return rc;
    }
    return PAI_OK;
}

/* ---- cells and nodes ------------------------------------------------- */

static pai_err_t add_node(sched_t *s, int cell, const char *address, char *err, size_t errlen)
{
    const ctype_t *ct = &s->types[s->cells[cell].type];
    int first = sched_strmap_get(&s->node_map, address), last = first;
    for (int x = first; x != SCHED_NONE; last = x, x = s->nodes[x].twin)
        if (s->derived || s->cells[s->nodes[x].cell].chain == s->cells[cell].chain) {
            snprintf(err, errlen, "node address %s appears twice in chain %s", address,
                     s->types[s->cells[cell].chain].name);
            return PAI_E_BAD_CONFIG;
        }
    if (ct->gpus > SCHED_MAX_GPUS_PER_NODE) {
        snprintf(err, errlen, "cellType %s: %d GPUs in one node (at most %d)", ct->name, ct->gpus,
                 SCHED_MAX_GPUS_PER_NODE);
        return PAI_E_BAD_CONFIG;
    }
    if ((size_t)s->n_nodes == s->cap_nodes) {
        /* nfree grows in step with nodes: reserve it on a copy of the capacity */
        size_t capf = s->cap_nodes;
        VEC_XRESERVE(s->nfree, capf, capf + 1);
        /* the node map copies its keys: moving nodes is fine */
        VEC_XRESERVE(s->nodes, s->cap_nodes, s->cap_nodes + 1);
    }
    sched_mnode_t *n = &s->nodes[s->n_nodes];
    *n = (sched_mnode_t){.cell = cell,
                         .twin = SCHED_NONE,
                         .is_twin = first != SCHED_NONE,
                         .sku = ct->sku,
                         .ngpu = ct->gpus,
                         .cpus = ct->cpus,
                         .mem = ct->memory_mb,
                         .healthy = s->opts.assume_healthy};
    if (ct->gpus == 0)
        n->sku = SCHED_NONE;
    s->nfree[s->n_nodes] = (uint8_t)ct->gpus;
    str_copy(n->key, address, sizeof(n->key));
    str_copy(n->name, address, sizeof(n->name));
    str_copy(n->address, address, sizeof(n->address));
    size_t g = (size_t)(ct->gpus ? ct->gpus : 1);
    n->owner = xmalloc(g * sizeof(int));
    n->res = xmalloc(g * sizeof(int));
    n->claim = xcalloc(g, sizeof(uint32_t));
    for (size_t i = 0; i < g; i++)
        n->owner[i] = n->res[i] = SCHED_NONE;
    s->n_nodes++;
    if (!n->healthy)
        sched_model_health_changed(s, s->n_nodes - 1, false);
    if (first != SCHED_NONE) { /* another chain's cell of the same machine */
        s->nodes[last].twin = s->n_nodes - 1;
        return PAI_OK;
    }
    return sched_strmap_put(&s->node_map, n->key, s->n_nodes - 1);
}

pai_err_t sched_model_add_cell(sched_t *s, int type, int parent, const char *address,
                               const char *pinned, int *out, char *err, size_t errlen)
{
    VEC_XRESERVE(s->cells, s->cap_cells, (size_t)s->n_cells + 1);
    int c = s->n_cells++;
    cell_t *cell = &s->cells[c];
    *cell = (cell_t){.type = type,
                     .parent = parent,
                     .node_lo = s->n_nodes,
                     .node_hi = s->n_nodes,
                     .bound_vc = SCHED_NONE,
                     .bound_vcell = SCHED_NONE};
    cell->depth = parent == SCHED_NONE ? 0 : s->cells[parent].depth + 1;
    cell->chain = parent == SCHED_NONE ? type : s->cells[parent].chain;
    if (pinned)
        str_copy(cell->pinned, pinned, sizeof(cell->pinned));
    *out = c;
    if (!address)
        return PAI_OK;
    pai_err_t rc = add_node(s, c, address, err, errlen);
    if (rc == PAI_OK) {
        s->cells[c].node_hi = s->n_nodes;
        for (int p = parent; p != SCHED_NONE; p = s->cells[p].parent)
            s->cells[p].node_hi = s->n_nodes;
    }
    return rc;
}

void sched_model_add_subcell(sched_t *s, int type, int parent, int node, int gpu_lo, int *out)
{
    VEC_XRESERVE(s->cells, s->cap_cells, (size_t)s->n_cells + 1);
    int c = s->n_cells++;
    const cell_t *p = &s->cells[parent];
    s->cells[c] = (cell_t){.type = type,
                           .parent = parent,
                           .depth = p->depth + 1,
                           .node_lo = node,
                           .node_hi = node + 1,
                           .chain = p->chain,
                           .bound_vc = SCHED_NONE,
                           .bound_vcell = SCHED_NONE,
                           .bad_below = s->nodes[node].healthy ? 0 : 1,
                           .sub = true,
                           .gpu_lo = (uint8_t)gpu_lo,
                           .gpu_hi = (uint8_t)(gpu_lo + s->types[type].gpus)};
    sched_mnode_t *n = &s->nodes[node];
    if (n->sub_hi <= n->sub_lo)
        n->sub_lo = c;
    n->sub_hi = c + 1;
    *out = c;
}

void sched_cell_gpu_range(const sched_t *s, int c, int n, int *lo, int *hi)
{
    const cell_t *cl = &s->cells[c];
    *lo = cl->sub ? cl->gpu_lo : 0;
    *hi = cl->sub ? cl->gpu_hi : s->nodes[n].ngpu;
}

int sched_cell_gpus(const sched_t *s, int c)
{
    if (s->cells[c].sub)
        return s->cells[c].gpu_hi - s->cells[c].gpu_lo;
    int g = 0;
    for (int n = s->cells[c].node_lo; n < s->cells[c].node_hi; n++)
        g += s->nodes[n].ngpu;
    return g;
}

int sched_cell_used_gpus(const sched_t *s, int c)
{
    const cell_t *cl = &s->cells[c];
    int g = 0;
    if (cl->sub) {
        for (int k = cl->gpu_lo; k < cl->gpu_hi; k++)
            g += s->nodes[cl->node_lo].owner[k] != SCHED_NONE;
        return g;
    }
    for (int n = cl->node_lo; n < cl->node_hi; n++)
        g += s->nodes[n].used;
    return g;
}

int sched_model_bound_cell_at(const sched_t *s, int n, int g)
{
    const sched_mnode_t *nd = &s->nodes[n];
    for (int c = nd->sub_lo; g >= 0 && c < nd->sub_hi; c++) {
        const cell_t *cl = &s->cells[c];
        if (cl->bound_vc != SCHED_NONE && g >= cl->gpu_lo && g < cl->gpu_hi)
            return c;
    }
    for (int c = nd->cell; c != SCHED_NONE; c = s->cells[c].parent)
        if (s->cells[c].bound_vc != SCHED_NONE)
            return c;
    return SCHED_NONE;
}

bool sched_type_below_node(const sched_t *s, int k)
{
    for (int n = 0; n < s->n_types; n++)
        for (int c = s->types[n].node_level ? s->types[n].child : SCHED_NONE; c != SCHED_NONE;
             c = s->types[c].child)
            if (c == k)
                return true;
    return false;
}

int sched_node_block(const sched_t *s, int n, int t)
{
    if (s->nodes[n].cell == SCHED_NONE)
        return 0;
    for (int c = s->types[s->cells[s->nodes[n].cell].type].child; c != SCHED_NONE;
         c = s->types[c].child)
        if (c == t)
            return s->types[t].gpus;
    return 0;
}

int sched_model_cell_around(const sched_t *s, int n, const int *gpus, int k)
{
    const sched_mnode_t *nd = &s->nodes[n];
    int best = nd->cell;
    for (int c = nd->sub_lo; k > 0 && c < nd->sub_hi; c++) {
        const cell_t *cl = &s->cells[c];
        bool all = true;
        for (int i = 0; i < k && all; i++)
            all = gpus[i] >= cl->gpu_lo && gpus[i] < cl->gpu_hi;
        if (all && cl->depth > s->cells[best].depth)
            best = c;
    }
    return best;
}

bool sched_cell_healthy(const sched_t *s, int c)
{
    return s->cells[c].bad_below == 0 && s->cells[c].node_hi > s->cells[c].node_lo;
}

void sched_model_health_changed(sched_t *s, int node, bool healthy)
{
    s->health_ver++;
    s->n_bad_nodes += healthy ? -1 : 1;
    for (int c = s->nodes[node].cell; c != SCHED_NONE; c = s->cells[c].parent)
        s->cells[c].bad_below += healthy ? -1 : 1;
    for (int c = s->nodes[node].sub_lo; c < s->nodes[node].sub_hi; c++)
        s->cells[c].bad_below = healthy ? 0 : 1;
}

/* ---- virtual clusters and binding ------------------------------------ */

int sched_model_add_vc(sched_t *s, const char *name)
{
    int v = sched_model_find_vc(s, name);
    if (v == SCHED_NONE) {
        s->vcs = xrealloc(s->vcs, (size_t)(s->n_vcs + 1) * sizeof(*s->vcs));
        v = s->n_vcs++;
        s->vcs[v] = (vc_t){.reserver = SCHED_NONE};
        str_copy(s->vcs[v].name, name, sizeof(s->vcs[v].name));
    }
    return v;
}

void sched_model_vc_add_cells(sched_t *s, int v, int type, int chain, int count, bool pinned,
                              int pinned_cell)
{
    vc_t *vc = &s->vcs[v];
    vc->vcells = xrealloc(vc->vcells, (size_t)(vc->n_vcells + count) * sizeof(*vc->vcells));
    for (int i = 0; i < count; i++) {
        vc->vcells[vc->n_vcells] = (vcell_t){type, chain, SCHED_NONE, pinned};
        vc->n_vcells++;
        vc->quota_gpus += s->types[type].gpus;
        if (pinned)
            sched_model_bind(s, v, vc->n_vcells - 1, pinned_cell);
    }
}

int sched_gpu_position(const sched_mnode_t *n, int index)
{
    for (int p = 0; p < n->ngpu; p++)
        if (sched_gpu_index(n, p) == index)
            return p;
    return SCHED_NONE;
}

void sched_cell_name(const sched_t *s, int c, char *buf, size_t len)
{
    const cell_t *cl = &s->cells[c];
    if (cl->sub) /* below node level: the node and the cell's first GPU position */
        snprintf(buf, len, "%s@%s/%d", s->types[cl->type].name, s->nodes[cl->node_lo].key,
                 cl->gpu_lo);
    else
        snprintf(buf, len, "%s@%s", s->types[cl->type].name, s->nodes[cl->node_lo].key);
}

/* "NODE/P" names the cell of type t below node level at GPU position P. */
static int sub_cell_find(const sched_t *s, int t, const char *where)
{
    const char *sl = strrchr(where, '/');
    if (!sl || (size_t)(sl - where) >= SCHED_NAME_MAX)
        return SCHED_NONE;
    char key[SCHED_NAME_MAX];
    memcpy(key, where, (size_t)(sl - where));
    key[sl - where] = '\0';
    char *end;
    long p = strtol(sl + 1, &end, 10);
    int n = sched_find_node(s, key);
    if (end == sl + 1 || *end || n == SCHED_NONE || strcmp(s->nodes[n].key, key) != 0)
        return SCHED_NONE;
    for (; n != SCHED_NONE; n = s->nodes[n].twin)
        for (int c = s->nodes[n].sub_lo; c < s->nodes[n].sub_hi; c++)
            if (s->cells[c].type == t && s->cells[c].gpu_lo == p)
                return c;
    return SCHED_NONE;
}

int sched_cell_find(const sched_t *s, const char *name)
{
    const char *at = name ? strrchr(name, '@') : NULL;
    if (!at || (size_t)(at - name) >= SCHED_NAME_MAX)
        return SCHED_NONE;
    char tname[SCHED_NAME_MAX];
    memcpy(tname, name, (size_t)(at - name));
    tname[at - name] = '\0';
    int t = sched_model_find_type(s, tname), n = sched_find_node(s, at + 1);
    if (t != SCHED_NONE && n == SCHED_NONE)
        return sub_cell_find(s, t, at + 1);
    if (t == SCHED_NONE || n == SCHED_NONE || strcmp(s->nodes[n].key, at + 1) != 0)
        return SCHED_NONE;
    for (; n != SCHED_NONE; n = s->nodes[n].twin)
        for (int c = s->nodes[n].cell; c != SCHED_NONE && s->cells[c].node_lo == n;
             c = s->cells[c].parent)
            if (s->cells[c].type == t)
                return c;
    return SCHED_NONE;
}

int sched_model_bound_ancestor(const sched_t *s, int c)
{
    for (int p = c; p != SCHED_NONE; p = s->cells[p].parent)
        if (s->cells[p].bound_vc != SCHED_NONE)
            return p;
    return SCHED_NONE;
}

void sched_model_bind(sched_t *s, int v, int vcell, int c)
{
    s->bind_ver++;
    s->vcs[v].dom_valid = false;
    s->vcs[v].bind_pass = s->passes;
    s->cells[c].bound_vc = v;
    s->cells[c].bound_vcell = vcell;
    s->cells[c].vc_used = 0;
    s->vcs[v].vcells[vcell].cell = c;
    for (int p = c; p != SCHED_NONE; p = s->cells[p].parent)
        s->cells[p].bound_below++;
}

void sched_model_unbind(sched_t *s, int c)
{
    cell_t *cell = &s->cells[c];
    if (cell->bound_vc == SCHED_NONE)
        return;
    s->bind_ver++;
    s->vcs[cell->bound_vc].vcells[cell->bound_vcell].cell = SCHED_NONE;
    s->vcs[cell->bound_vc].dom_valid = false;
    s->vcs[cell->bound_vc].bind_pass = s->passes;
    cell->bound_vc = cell->bound_vcell = SCHED_NONE;
    for (int p = c; p != SCHED_NONE; p = s->cells[p].parent)
        s->cells[p].bound_below--;
}

/* For a candidate cell c: *split gets the depth of the nearest ancestor that
 * is partly bound (-1: none), *worn the depth of the nearest ancestor that is
 * partly bound or holds an unhealthy node (-1: none).  False when an
 * ancestor is bound itself (c is not free). */
static bool ancestry(const sched_t *s, int c, int *split, int *worn)
{
    *split = *worn = -1;
    for (int p = s->cells[c].parent; p != SCHED_NONE; p = s->cells[p].parent) {
        const cell_t *pc = &s->cells[p];
        if (pc->bound_vc != SCHED_NONE)
            return false;
        if (pc->bound_below > 0 && *split < 0)
            *split = pc->depth;
        if ((pc->bound_below > 0 || pc->bad_below > 0) && *worn < 0)
            *worn = pc->depth;
    }
    return true;
}

/* Buddy order with health (HiveD's safe relaxed buddy allocation, health
 * aware): a fully healthy cell first; among those the one whose nearest
 * split-or-damaged ancestor is deepest (use up a rack that is already split
 * or damaged before a whole healthy one), then the deepest split ancestor
 * (plain buddy order), then the idlest.  Without a healthy cell: the one
 * with the fewest unhealthy nodes, in buddy order. */
static long pick_score(const sched_t *s, int c, int split, int worn, int used, unsigned flags)
{
    const cell_t *cl = &s->cells[c];
    if (cl->bad_below == 0 && (flags & SCHED_PICK_BUDDY)) /* plain buddy order first */
        return 1000000000000L + (long)(split + 2) * 100000000L + (long)(worn + 2) * 1000000L - used;
    if (cl->bad_below == 0)
        return 1000000000000L + (long)(worn + 2) * 100000000L + (long)(split + 2) * 1000000L - used;
    return (long)(split + 2) * 100000000L - (long)cl->bad_below * 1000000L - used;
}

int sched_model_pick_free_cell(sched_t *s, int type, int chain, unsigned flags)
{
    bool need_healthy = flags & SCHED_PICK_HEALTHY, need_idle = flags & SCHED_PICK_IDLE;
    int best = SCHED_NONE;
    long best_score = 0;
    int start = s->pick_hint >= 0 && s->pick_hint < s->n_cells ? s->pick_hint : 0;
    for (int k = 0; k < s->n_cells; k++) {
        int c = start + k < s->n_cells ? start + k : start + k - s->n_cells;
        const cell_t *cell = &s->cells[c];
        if (cell->type != type || cell->chain != chain || cell->bound_below)
            continue;
        int split, worn;
        if (!ancestry(s, c, &split, &worn))
            continue;
        bool healthy = sched_cell_healthy(s, c);
        int used = sched_cell_used_gpus(s, c);
        if ((need_healthy && !healthy) || (need_idle && used))
            continue;
        long score = pick_score(s, c, split, worn, used, flags);
        if (best == SCHED_NONE || score > best_score) {
            best = c;
            best_score = score;
            /* healthy and idle, the parent split (or a top cell): nothing beats it */
            int pd = cell->parent == SCHED_NONE ? -1 : s->cells[cell->parent].depth;
            if (healthy && !used && split == pd && worn == pd)
                break;
        }
    }
    if (best != SCHED_NONE)
        s->pick_hint = best;
    return best;
}

/* Both deficits of the model as it is, cached until a binding or a node's
 * health changes. */
static void deficits(sched_t *s, int *any, int *healthy)
{
    uint64_t ver = s->bind_ver * 1000003u + s->health_ver;
    if (!s->def_valid || s->def_ver != ver) {
        s->def_any = sched_check_deficit(s, false, NULL, 0);
        s->def_healthy = s->n_bad_nodes > 0 ? sched_check_deficit(s, true, NULL, 0) : 0;
        s->def_ver = ver;
        s->def_valid = true;
    }
    *any = s->def_any;
    *healthy = s->def_healthy;
}

bool sched_model_bind_safe(sched_t *s, int v, int i, int c, bool health)
{
    const cell_t *cl = &s->cells[c];
    if (cl->bad_below == 0 && (cl->parent == SCHED_NONE || s->cells[cl->parent].bound_below > 0)) {
        /* a healthy free cell whose parent is split (or a top cell) is a
         * whole free cell of its level with or without health: taking it for
         * a virtual cell of that level changes neither count */
        sched_model_bind(s, v, i, c);
        return true;
    }
    int before, before_h, after, after_h;
    deficits(s, &before, &before_h);
    sched_model_bind(s, v, i, c);
    deficits(s, &after, &after_h);
    if (after > before || (health && after_h > before_h)) {
        sched_model_unbind(s, c);
        return false;
    }
    return true;
}

/* Start-up check: every VC's cells can be bound at the same time.  Binds all
 * (largest types first), then unbinds all but pinned cells. */
pai_err_t sched_model_check(sched_t *s, char *err, size_t errlen)
{
    pai_err_t rc = PAI_OK;
    for (int lvl = 64; lvl >= 1 && rc == PAI_OK; lvl--) {
        for (int v = 0; v < s->n_vcs && rc == PAI_OK; v++) {
            vc_t *vc = &s->vcs[v];
            for (int i = 0; i < vc->n_vcells; i++) {
                vcell_t *vcl = &vc->vcells[i];
                if (vcl->cell != SCHED_NONE || s->types[vcl->type].level != lvl)
                    continue;
                int c = sched_model_pick_free_cell(s, vcl->type, vcl->chain, SCHED_PICK_BUDDY);
                if (c == SCHED_NONE) {
                    snprintf(err, errlen,
                             "virtual cluster %s asks more %s cells (chain %s) than the physical "
                             "cluster has free",
                             vc->name, s->types[vcl->type].name, s->types[vcl->chain].name);
                    rc = PAI_E_BAD_CONFIG;
                    break;
                }
                sched_model_bind(s, v, i, c);
            }
        }
    }
    for (int v = 0; v < s->n_vcs; v++)
        for (int i = 0; i < s->vcs[v].n_vcells; i++)
            if (!s->vcs[v].vcells[i].pinned && s->vcs[v].vcells[i].cell != SCHED_NONE)
                sched_model_unbind(s, s->vcs[v].vcells[i].cell);
    s->pick_hint = 0;
    return rc;
}
