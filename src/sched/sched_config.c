/*
 * sched_config.c - load a HiveD scheduler config into the model.
 *
 * Read: physicalCluster.{skuTypes,cellTypes,physicalCells} and
 * virtualClusters.  Everything else (kubeApiServerAddress, waitingPodSchedulingBlockMilliSec,
 * ...) only means something on Kubernetes and is ignored.  Refused with a
 * "line L: what" message: unknown child or cell types (when skuTypes is
 * given), more children than childCellNumber, node cells without an address,
 * duplicate addresses or pinnedCellIds, unknown pinned ids, virtual cell paths
 * that do not follow the type tree, and VCs asking more than exists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/yamltree.h"
#include "sched/sched_int.h"

typedef struct {
    sched_t *s;
    char *err;
    size_t errlen;
    bool has_skus;
    bool *sub_chain; /* per type: a chain with virtual cells below node level */
} loader_t;

static pai_err_t fail(loader_t *l, const ynode_t *at, const char *fmt, const char *a, const char *b)
{
    char msg[SCHED_REASON_MAX];
    snprintf(msg, sizeof(msg), fmt, a ? a : "", b ? b : "");
    if (at)
        snprintf(l->err, l->errlen, "line %d: %s", at->line, msg);
    else
        snprintf(l->err, l->errlen, "%s", msg);
    return PAI_E_BAD_CONFIG;
}

static const char *scalar(const ynode_t *n)
{
    return n && n->kind == YNODE_SCALAR ? n->str : NULL;
}

/* "8192Mi", "16Gi", "1024" (MiB) -> MiB */
static int64_t parse_mem_mb(const ynode_t *n)
{
    const char *v = scalar(n);
    if (!v)
        return 0;
    char *end;
    double x = strtod(v, &end);
    if (end == v || x < 0)
        return 0;
    static const struct {
        const char *suf;
        double mb;
    } units[] = {{"Ki", 1.0 / 1024},       {"Mi", 1}, {"Gi", 1024}, {"Ti", 1024.0 * 1024},
                 {"K", 1.0 / 1000},        {"M", 1},  {"G", 1000},  {"T", 1000.0 * 1000},
                 {"", 1.0 / (1024 * 1024)}};
    for (size_t i = 0; i < ARRAY_LEN(units); i++)
        if (strcmp(end, units[i].suf) == 0)
            return (int64_t)(x * units[i].mb);
    return 0;
}

static pai_err_t load_skus(loader_t *l, const ynode_t *skus)
{
    if (!skus || ynode_is_null(skus))
        return PAI_OK;
    if (skus->kind != YNODE_MAP)
        return fail(l, skus, "skuTypes must be a map", NULL, NULL);
    l->has_skus = skus->n > 0;
    for (size_t i = 0; i < skus->n; i++) {
        int t = sched_model_add_type(l->s, skus->pairs[i].key->str);
        l->s->types[t].defined = true;
        const ynode_t *v = skus->pairs[i].val;
        int64_t cpu = 0;
        ynode_as_i64(ynode_get(v, "cpu"), &cpu);
        /* a leaf type's SKU is created in sched_model_finish_types(); keep the figures on the type
         */
        l->s->types[t].cpus = (int)cpu;
        l->s->types[t].memory_mb = parse_mem_mb(ynode_get(v, "memory"));
    }
    return PAI_OK;
}

static pai_err_t load_cell_type(loader_t *l, const ypair_t *p)
{
    sched_t *s = l->s;
    const ynode_t *v = p->val;
    if (v->kind != YNODE_MAP)
        return fail(l, v, "cellType %s must be a map", p->key->str, NULL);
    const char *child = scalar(ynode_get(v, "childCellType"));
    int64_t n = 0;
    if (!child || !ynode_as_i64(ynode_get(v, "childCellNumber"), &n) || n < 1 || n > 4096)
        return fail(l, v, "cellType %s needs childCellType and childCellNumber (1..4096)",
                    p->key->str, NULL);
    int t = sched_model_add_type(s, p->key->str), c = sched_model_add_type(s, child);
    if (s->types[t].child != SCHED_NONE)
        return fail(l, p->key, "cellType %s defined twice", p->key->str, NULL);
    s->types[t].child = c;
    s->types[t].child_n = (int)n;
    s->types[t].defined = true;
    bool nl = false;
    ynode_as_bool(ynode_get(v, "isNodeLevel"), &nl);
    s->types[t].node_level = nl;
    return PAI_OK;
}

static pai_err_t load_cell_types(loader_t *l, const ynode_t *types)
{
    if (!types || types->kind != YNODE_MAP)
        return fail(l, types, "physicalCluster.cellTypes must be a map", NULL, NULL);
    for (size_t i = 0; i < types->n; i++) {
        pai_err_t rc = load_cell_type(l, &types->pairs[i]);
        if (rc != PAI_OK)
            return rc;
    }
    sched_t *s = l->s;
    for (int t = 0; t < s->n_types; t++) {
        if (s->types[t].defined || !l->has_skus)
            continue;
        for (size_t i = 0; i < types->n; i++) {
            const ynode_t *ch = ynode_get(types->pairs[i].val, "childCellType");
            if (ch && strcmp(ch->str, s->types[t].name) == 0)
                return fail(l, ch, "unknown childCellType %s (not a cellType or skuType)",
                            s->types[t].name, NULL);
        }
    }
    return sched_model_finish_types(s, l->err, l->errlen);
}

static bool node_level_below(const sched_t *s, int t)
{
    for (t = s->types[t].child; t != SCHED_NONE; t = s->types[t].child)
        if (s->types[t].node_level)
            return true;
    return false;
}

static pai_err_t load_pcell(loader_t *l, const ynode_t *y, int type, int parent);

/* A node's GPUs in topology order: the device index of each position. */
typedef struct {
    int idx[SCHED_MAX_GPUS_PER_NODE];
    int n;
} gpumap_t;

/* A cell below node level (HiveD: sockets, PCIe switches, GPUs): its leaves
 * in order, each leaf's cellAddress its device index (default: its
 * position in the node).  Children not given follow the type's shape.
 * With parent (not SCHED_NONE) the cells are added to the model below it
 * (a chain whose VCs own cells below node level, or a pinned one here). */
static pai_err_t load_subnode(loader_t *l, const ynode_t *y, int type, gpumap_t *m, int parent,
                              int node)
{
    sched_t *s = l->s;
    const ctype_t *ct = &s->types[type];
    if (y && y->kind != YNODE_MAP && !ynode_is_null(y))
        return fail(l, y, "a cell below node level must be a map", NULL, NULL);
    const char *pin = y ? scalar(ynode_get(y, "pinnedCellId")) : NULL;
    int c = SCHED_NONE;
    if (parent != SCHED_NONE) {
        sched_model_add_subcell(s, type, parent, node, m->n, &c);
        if (pin) {
            for (int k = 0; k < s->n_cells; k++)
                if (strcmp(s->cells[k].pinned, pin) == 0)
                    return fail(l, y, "pinnedCellId %s used twice", pin, NULL);
            str_copy(s->cells[c].pinned, pin, sizeof(s->cells[c].pinned));
            s->nodes[node].pin_mask |= sched_cell_mask(&s->cells[c]);
        }
    }
    if (s->types[type].level <= 1) {
        const char *addr = y ? scalar(ynode_get(y, "cellAddress")) : NULL;
        char *end = NULL;
        long v = addr ? strtol(addr, &end, 10) : m->n;
        if (addr && (end == addr || *end || v < 0 || v >= SCHED_MAX_GPUS_PER_NODE))
            return fail(l, y, "GPU cellAddress %s: a device index 0..63 is expected", addr, NULL);
        if (m->n < SCHED_MAX_GPUS_PER_NODE)
            m->idx[m->n] = (int)v;
        m->n++;
        return PAI_OK;
    }
    const ynode_t *kids = y ? ynode_get(y, "cellChildren") : NULL;
    if (kids && !ynode_is_null(kids) && (kids->kind != YNODE_SEQ || kids->n != 0) &&
        (kids->kind != YNODE_SEQ || kids->n != (size_t)ct->child_n))
        return fail(l, kids,
                    "cell of type %s below node level: give all or none of its "
                    "cellChildren",
                    ct->name, NULL);
    bool given = kids && kids->kind == YNODE_SEQ && kids->n > 0;
    for (int i = 0; i < ct->child_n; i++) {
        pai_err_t rc = load_subnode(l, given ? kids->items[i] : NULL, ct->child, m, c, node);
        if (rc != PAI_OK)
            return rc;
    }
    return PAI_OK;
}

/* Does y's subtree name a pinnedCellId? */
static bool has_pin(const ynode_t *y, int depth)
{
    if (!y || y->kind != YNODE_MAP || depth > 32)
        return false;
    if (depth > 0 && scalar(ynode_get(y, "pinnedCellId")))
        return true;
    const ynode_t *kids = ynode_get(y, "cellChildren");
    for (size_t i = 0; kids && kids->kind == YNODE_SEQ && i < kids->n; i++)
        if (has_pin(kids->items[i], depth + 1))
            return true;
    return false;
}

/* The GPU layout a node cell y gives below it (cellChildren), on node n,
 * and its cells below node level where the chain or a pinned cell needs
 * them. */
static pai_err_t load_gpu_indices(loader_t *l, const ynode_t *y, int type, int n)
{
    const ynode_t *kids = ynode_get(y, "cellChildren");
    bool none = !kids || ynode_is_null(kids) || (kids->kind == YNODE_SEQ && kids->n == 0);
    const ctype_t *ct = &l->s->types[type];
    sched_mnode_t *nd = &l->s->nodes[n];
    bool sub = ct->child != SCHED_NONE && ct->gpus > 0 &&
               (l->sub_chain[l->s->cells[nd->cell].chain] || (!none && has_pin(y, 0)));
    if (none && !sub)
        return PAI_OK;
    if (!none && (kids->kind != YNODE_SEQ || kids->n != (size_t)ct->child_n))
        return fail(l, kids, "node cell of type %s: give all or none of its cellChildren", ct->name,
                    NULL);
    gpumap_t m = {.n = 0};
    int parent = sub ? nd->cell : SCHED_NONE;
    for (int i = 0; i < ct->child_n; i++) {
        pai_err_t rc = load_subnode(l, none ? NULL : kids->items[i], ct->child, &m, parent, n);
        if (rc != PAI_OK)
            return rc;
    }
    nd = &l->s->nodes[n];
    if (m.n != nd->ngpu)
        return fail(l, kids, "node %s: its cellChildren do not give its GPUs", nd->key, NULL);
    bool seen[SCHED_MAX_GPUS_PER_NODE] = {false}, identity = true;
    for (int p = 0; p < m.n; p++) {
        if (seen[m.idx[p]]) {
            char g[16];
            snprintf(g, sizeof(g), "%d", m.idx[p]);
            return fail(l, kids, "node %s: GPU index %s given twice", nd->key, g);
        }
        seen[m.idx[p]] = true;
        identity &= m.idx[p] == p;
    }
    if (identity)
        return PAI_OK;
    nd->index = xmalloc((size_t)m.n);
    for (int p = 0; p < m.n; p++)
        nd->index[p] = (uint8_t)m.idx[p];
    return PAI_OK;
}

static pai_err_t load_children(loader_t *l, const ynode_t *y, int c)
{
    sched_t *s = l->s;
    const ctype_t *ct = &s->types[s->cells[c].type];
    const ynode_t *kids = ynode_get(y, "cellChildren");
    if (!kids || kids->kind != YNODE_SEQ || kids->n == 0)
        return fail(l, y, "cell of type %s above node level needs cellChildren", ct->name, NULL);
    if (kids->n > (size_t)ct->child_n)
        return fail(l, kids, "cell of type %s has more cellChildren than childCellNumber", ct->name,
                    NULL);
    int child = ct->child;
    for (size_t i = 0; i < kids->n; i++) {
        pai_err_t rc = load_pcell(l, kids->items[i], child, c);
        if (rc != PAI_OK)
            return rc;
    }
    return PAI_OK;
}

static pai_err_t load_pcell(loader_t *l, const ynode_t *y, int type, int parent)
{
    sched_t *s = l->s;
    if (y->kind != YNODE_MAP)
        return fail(l, y, "a physical cell must be a map", NULL, NULL);
    const ctype_t *ct = &s->types[type];
    if (ct->level <= 1)
        return fail(l, y, "physical cell of leaf type %s: cells stop at node level", ct->name,
                    NULL);
    const char *addr = scalar(ynode_get(y, "cellAddress"));
    const char *pin = scalar(ynode_get(y, "pinnedCellId"));
    if (pin) {
        for (int c = 0; c < s->n_cells; c++)
            if (strcmp(s->cells[c].pinned, pin) == 0)
                return fail(l, y, "pinnedCellId %s used twice", pin, NULL);
    }
    bool is_node = ct->node_level || (addr && !node_level_below(s, type));
    if (is_node && !addr)
        return fail(l, y, "node-level cell of type %s has no cellAddress", ct->name, NULL);
    int c;
    pai_err_t rc =
        sched_model_add_cell(s, type, parent, is_node ? addr : NULL, pin, &c, l->err, l->errlen);
    if (rc == PAI_E_BAD_CONFIG) {
        char msg[SCHED_REASON_MAX];
        str_copy(msg, l->err, sizeof(msg));
        return fail(l, y, "%s", msg, NULL);
    }
    if (rc == PAI_OK && is_node)
        return load_gpu_indices(l, y, type, l->s->n_nodes - 1);
    if (rc != PAI_OK)
        return rc;
    return load_children(l, y, c);
}

static pai_err_t load_pcells(loader_t *l, const ynode_t *cells)
{
    if (!cells || ynode_is_null(cells))
        return PAI_OK;
    if (cells->kind != YNODE_SEQ)
        return fail(l, cells, "physicalCells must be a list", NULL, NULL);
    for (size_t i = 0; i < cells->n; i++) {
        const ynode_t *y = cells->items[i];
        const char *tn = scalar(ynode_get(y, "cellType"));
        int t = tn ? sched_model_find_type(l->s, tn) : SCHED_NONE;
        if (t == SCHED_NONE || !l->s->types[t].defined)
            return fail(l, y, "physical cell with unknown cellType %s", tn ? tn : "(none)", NULL);
        pai_err_t rc = load_pcell(l, y, t, SCHED_NONE);
        if (rc != PAI_OK)
            return rc;
    }
    return PAI_OK;
}

/* A machine with node-level cells of several chains: each cell names its
 * GPUs' device indices, and no index twice (they are one machine's GPUs). */
static pai_err_t check_twins(loader_t *l)
{
    const sched_t *s = l->s;
    for (int i = 0; i < s->n_nodes; i++) {
        if (s->nodes[i].is_twin || s->nodes[i].twin == SCHED_NONE)
            continue;
        bool seen[SCHED_MAX_GPUS_PER_NODE] = {false};
        for (int x = i; x != SCHED_NONE; x = s->nodes[x].twin)
            for (int p = 0; p < s->nodes[x].ngpu; p++) {
                int g = sched_gpu_index(&s->nodes[x], p);
                if (seen[g]) {
                    char gs[16];
                    snprintf(gs, sizeof(gs), "%d", g);
                    return fail(l, NULL,
                                "node %s hosts cells of several chains and GPU index %s is in "
                                "two of them: give each cell its GPUs' indices (cellAddress "
                                "below node level)",
                                s->nodes[i].key, gs);
                }
                seen[g] = true;
            }
    }
    return PAI_OK;
}

/* "CHAIN.T1.T2" -> type and chain; each step must be the child of the last.
 * *below gets whether the type lies below node level. */
static pai_err_t resolve_vcell_type(loader_t *l, const ynode_t *at, const char *path, int *type,
                                    int *chain, bool *below)
{
    sched_t *s = l->s;
    char buf[4 * SCHED_NAME_MAX];
    str_copy(buf, path, sizeof(buf));
    char *save = NULL, *tok = strtok_r(buf, ".", &save);
    int t = tok ? sched_model_find_type(s, tok) : SCHED_NONE;
    if (t == SCHED_NONE || !s->types[t].defined || s->types[t].level <= 1)
        return fail(l, at, "virtual cell type %s: unknown cellType", path, NULL);
    *chain = t;
    *below = false;
    while ((tok = strtok_r(NULL, ".", &save))) {
        if (s->types[t].node_level)
            *below = true;
        int next = sched_model_find_type(s, tok);
        if (next == SCHED_NONE || s->types[t].child != next)
            return fail(l, at, "virtual cell type %s: %s is not a child type there", path, tok);
        t = next;
    }
    *type = t;
    return PAI_OK;
}

/* Before the physical cells: the chains where a VC owns cells below node
 * level (their nodes get cells below node level in the model). */
static void scan_sub_chains(loader_t *l, const ynode_t *vcs)
{
    for (size_t i = 0; vcs && vcs->kind == YNODE_MAP && i < vcs->n; i++) {
        const ynode_t *cells = ynode_get(vcs->pairs[i].val, "virtualCells");
        for (size_t k = 0; cells && cells->kind == YNODE_SEQ && k < cells->n; k++) {
            const char *tn = scalar(ynode_get(cells->items[k], "cellType"));
            int t = 0, chain = 0;
            bool below = false;
            char scratch[8];
            loader_t quiet = *l;
            quiet.err = scratch, quiet.errlen = sizeof(scratch);
            if (tn && resolve_vcell_type(&quiet, NULL, tn, &t, &chain, &below) == PAI_OK && below)
                l->sub_chain[chain] = true;
        }
    }
}

static pai_err_t load_vc_cells(loader_t *l, int v, const ynode_t *cells)
{
    if (!cells || ynode_is_null(cells))
        return PAI_OK;
    if (cells->kind != YNODE_SEQ)
        return fail(l, cells, "virtualCells must be a list", NULL, NULL);
    for (size_t i = 0; i < cells->n; i++) {
        const ynode_t *y = cells->items[i];
        const char *tn = scalar(ynode_get(y, "cellType"));
        int64_t n = 0;
        if (!tn || !ynode_as_i64(ynode_get(y, "cellNumber"), &n) || n < 0 || n > 1000000)
            return fail(l, y, "virtual cell needs cellType and cellNumber >= 0", NULL, NULL);
        int t = 0, chain = 0;
        bool below = false;
        pai_err_t rc = resolve_vcell_type(l, y, tn, &t, &chain, &below);
        if (rc != PAI_OK)
            return rc;
        sched_model_vc_add_cells(l->s, v, t, chain, (int)n, false, SCHED_NONE);
    }
    return PAI_OK;
}

static pai_err_t load_vc_pins(loader_t *l, int v, const ynode_t *pins)
{
    sched_t *s = l->s;
    if (!pins || ynode_is_null(pins))
        return PAI_OK;
    if (pins->kind != YNODE_SEQ)
        return fail(l, pins, "pinnedCells must be a list", NULL, NULL);
    for (size_t i = 0; i < pins->n; i++) {
        const char *id = scalar(ynode_get(pins->items[i], "pinnedCellId"));
        int c = SCHED_NONE;
        for (int k = 0; id && k < s->n_cells; k++)
            if (strcmp(s->cells[k].pinned, id) == 0)
                c = k;
        if (c == SCHED_NONE)
            return fail(l, pins->items[i], "pinnedCellId %s is not a physical cell", id, NULL);
        if (s->cells[c].bound_vc != SCHED_NONE || s->cells[c].bound_below)
            return fail(l, pins->items[i], "pinnedCellId %s used twice", id, NULL);
        sched_model_vc_add_cells(s, v, s->cells[c].type, s->cells[c].chain, 1, true, c);
    }
    return PAI_OK;
}

static pai_err_t load_vcs(loader_t *l, const ynode_t *vcs)
{
    if (!vcs || ynode_is_null(vcs))
        return PAI_OK;
    if (vcs->kind != YNODE_MAP)
        return fail(l, vcs, "virtualClusters must be a map", NULL, NULL);
    /* pinned cells first so that they are taken before the check binds the rest */
    for (size_t i = 0; i < vcs->n; i++) {
        int v = sched_model_add_vc(l->s, vcs->pairs[i].key->str);
        pai_err_t rc = load_vc_pins(l, v, ynode_get(vcs->pairs[i].val, "pinnedCells"));
        if (rc != PAI_OK)
            return rc;
    }
    for (size_t i = 0; i < vcs->n; i++) {
        int v = sched_model_find_vc(l->s, vcs->pairs[i].key->str);
        pai_err_t rc = load_vc_cells(l, v, ynode_get(vcs->pairs[i].val, "virtualCells"));
        if (rc != PAI_OK)
            return rc;
    }
    return PAI_OK;
}

pai_err_t sched_config_load(sched_t *s, const char *yaml, size_t len, char *err, size_t errlen)
{
    char scratch[8];
    loader_t l = {s, err ? err : scratch, err ? errlen : sizeof(scratch), false, NULL};
    ydoc_t *doc = NULL;
    yerr_t yerr;
    if (ydoc_parse_unique(yaml, len, &doc, &yerr) != PAI_OK) {
        snprintf(l.err, l.errlen, "line %d: %s", yerr.line, yerr.msg);
        return PAI_E_BAD_CONFIG;
    }
    const ynode_t *root = ydoc_root(doc);
    pai_err_t rc = PAI_OK;
    const ynode_t *pc = root ? ynode_get(root, "physicalCluster") : NULL;
    if (root && root->kind != YNODE_MAP)
        rc = fail(&l, root, "the config must be a map", NULL, NULL);
    else if (pc) {
        rc = load_skus(&l, ynode_get(pc, "skuTypes"));
        if (rc == PAI_OK)
            rc = load_cell_types(&l, ynode_get(pc, "cellTypes"));
        if (rc == PAI_OK) {
            l.sub_chain = xcalloc((size_t)s->n_types + 1, sizeof(bool));
            scan_sub_chains(&l, ynode_get(root, "virtualClusters"));
            rc = load_pcells(&l, ynode_get(pc, "physicalCells"));
        }
        if (rc == PAI_OK)
            rc = check_twins(&l);
    }
    if (rc == PAI_OK)
        rc = load_vcs(&l, root ? ynode_get(root, "virtualClusters") : NULL);
    if (rc == PAI_OK)
        rc = sched_model_check(s, l.err, l.errlen);
    ydoc_free(doc);
    free(l.sub_chain);
    return rc;
}
