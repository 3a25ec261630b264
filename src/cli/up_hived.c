/*
 * up_hived.c - which agents `pai up --hived-config FILE` must start.
 *
 * A HiveD config names its nodes: the cellAddress of every node-level cell
 * (cellTypes[T].isNodeLevel) under physicalClusters.physicalCells.  pai up
 * starts one simulated agent per such node, named after the address, with
 * as many GPUs as the cell has leaf cells and the leaf type as GPU model,
 * so that the scheduler sees exactly the cluster the file describes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/up.h"
#include "common/buf.h"
#include "common/limits.h"
#include "common/util.h"
#include "common/yamltree.h"

typedef struct {
    const char *path;
    const ynode_t *types; /* physicalCluster.cellTypes */
    up_node_t *out;
    int n, max;
} walk_t;

/* Leaf model and number of leaf cells of cell type `type`. */
static int leaf_count(const walk_t *w, const char *type, const char **model, int depth)
{
    const ynode_t *t = ynode_get(w->types, type);
    if (!t || depth > 16) {
        *model = type;
        return 1;
    }
    const ynode_t *child = ynode_get(t, "childCellType");
    int64_t num = 1;
    if (!child || child->kind != YNODE_SCALAR ||
        !ynode_as_i64(ynode_get(t, "childCellNumber"), &num))
        return 1;
    return (int)num * leaf_count(w, child->str, model, depth + 1);
}

static bool is_node_level(const walk_t *w, const char *type)
{
    bool b = false;
    return ynode_as_bool(ynode_get(ynode_get(w->types, type), "isNodeLevel"), &b) && b;
}

static int add_node(walk_t *w, const ynode_t *cell, const char *type)
{
    const ynode_t *addr = ynode_get(cell, "cellAddress");
    if (!addr || addr->kind != YNODE_SCALAR) {
        fprintf(stderr, "%s:%d:%d: cellAddress: a node-level cell needs one (the node name)\n",
                w->path, cell->line, cell->col);
        return -1;
    }
    if (w->n >= w->max) {
        fprintf(stderr, "%s: more than %d nodes; pai up simulates at most that many\n", w->path,
                w->max);
        return -1;
    }
    up_node_t *n = &w->out[w->n++];
    const char *model = "";
    str_copy(n->name, addr->str, sizeof(n->name));
    n->gpus = leaf_count(w, type, &model, 0);
    str_copy(n->gpu_model, model, sizeof(n->gpu_model));
    return 0;
}

static int walk_cell(walk_t *w, const ynode_t *cell, const char *type, int depth)
{
    if (cell->kind != YNODE_MAP || depth > 16)
        return 0;
    const ynode_t *ct = ynode_get(cell, "cellType");
    if (ct && ct->kind == YNODE_SCALAR)
        type = ct->str;
    if (!type) {
        fprintf(stderr, "%s:%d:%d: cellType: missing\n", w->path, cell->line, cell->col);
        return -1;
    }
    if (is_node_level(w, type))
        return add_node(w, cell, type);
    const ynode_t *kids = ynode_get(cell, "cellChildren");
    const ynode_t *t = ynode_get(w->types, type);
    const ynode_t *child = ynode_get(t, "childCellType");
    for (size_t i = 0; kids && kids->kind == YNODE_SEQ && i < kids->n; i++)
        if (walk_cell(w, kids->items[i], child ? child->str : NULL, depth + 1) != 0)
            return -1;
    return 0;
}

static int walk_doc(walk_t *w, const ynode_t *root)
{
    const ynode_t *pc = ynode_get(root, "physicalCluster");
    w->types = ynode_get(pc, "cellTypes");
    const ynode_t *cells = ynode_get(pc, "physicalCells");
    if (!w->types || !cells || cells->kind != YNODE_SEQ) {
        fprintf(stderr,
                "%s: physicalCluster.cellTypes and physicalCluster.physicalCells are "
                "required\n",
                w->path);
        return -1;
    }
    for (size_t i = 0; i < cells->n; i++)
        if (walk_cell(w, cells->items[i], NULL, 0) != 0)
            return -1;
    if (w->n == 0) {
        fprintf(stderr, "%s: no node-level cell (isNodeLevel: true) with a cellAddress\n", w->path);
        return -1;
    }
    return w->n;
}

int up_hived_nodes(const char *path, up_node_t *out, int max)
{
    buf_t text;
    buf_init(&text, PAI_MAX_CONFIG_FILE);
    ydoc_t *doc = NULL;
    yerr_t yerr;
    int rc = -1;
    if (buf_read_file(&text, path) != PAI_OK) {
        fprintf(stderr, "pai up: cannot read %s\n", path);
        goto out;
    }
    if (ydoc_parse_unique(buf_str(&text), text.len, &doc, &yerr) != PAI_OK) {
        fprintf(stderr, "%s:%d:%d: invalid YAML: %s\n", path, yerr.line, yerr.col, yerr.msg);
        goto out;
    }
    walk_t w = {path, NULL, out, 0, max};
    rc = walk_doc(&w, ydoc_root(doc));
out:
    ydoc_free(doc);
    buf_free(&text);
    return rc;
}

/* ---- the generated config (no --hived-config) ---- */

void up_hived_cell_type(const up_node_t *nd, char *out, size_t n)
{
    snprintf(out, n, "%s-%d-NODE", nd->gpu_model, nd->gpus);
}

/* The first node of each distinct cell type (model and GPU count): the
 * NVIDIA nodes and, with --amd-nodes / --fpga-nodes, those others. */
static int distinct_types(const up_node_t *nodes, int n, int *first)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        bool seen = false;
        for (int j = 0; j < k && !seen; j++)
            seen = strcmp(nodes[first[j]].gpu_model, nodes[i].gpu_model) == 0 &&
                   nodes[first[j]].gpus == nodes[i].gpus;
        if (!seen && nodes[i].gpus > 0)
            first[k++] = i;
    }
    return k;
}

static void write_config(FILE *f, const up_node_t *nodes, int n)
{
    char type[UP_CELL_TYPE_MAX];
    int first[UP_MAX_NODES], nt = distinct_types(nodes, n, first);
    fprintf(f,
            "# Generated by `pai up` for %d node(s) x %d %s GPU(s)%s; rewritten when --nodes,\n"
            "# --gpus, --gpu-model, --amd-nodes or --fpga-nodes change.  Pass your own with\n"
            "# --hived-config FILE.\n"
            "physicalCluster:\n"
            "  cellTypes:\n",
            n, nodes[0].gpus, nodes[0].gpu_model, nt > 1 ? " and other accelerators" : "");
    for (int t = 0; t < nt; t++) {
        const up_node_t *nd = &nodes[first[t]];
        up_hived_cell_type(nd, type, sizeof(type));
        fprintf(f,
                "    \"%s\":\n"
                "      childCellType: \"%s\"\n"
                "      childCellNumber: %d\n"
                "      isNodeLevel: true\n",
                type, nd->gpu_model, nd->gpus);
    }
    fprintf(f, "  physicalCells:\n");
    for (int i = 0; i < n; i++) {
        up_hived_cell_type(&nodes[i], type, sizeof(type));
        if (nodes[i].gpus > 0)
            fprintf(f, "  - cellType: \"%s\"\n    cellAddress: \"%s\"\n", type, nodes[i].name);
    }
    fprintf(f, "virtualClusters:\n"
               "  default:\n"
               "    virtualCells:\n");
    for (int t = 0; t < nt; t++) {
        int count = 0;
        for (int i = 0; i < n; i++)
            count += strcmp(nodes[i].gpu_model, nodes[first[t]].gpu_model) == 0 &&
                     nodes[i].gpus == nodes[first[t]].gpus;
        up_hived_cell_type(&nodes[first[t]], type, sizeof(type));
        fprintf(f, "    - cellType: \"%s\"\n      cellNumber: %d\n", type, count);
    }
}

int up_hived_generate(const char *path, const up_node_t *nodes, int n)
{
    if (n <= 0 || nodes[0].gpus <= 0)
        return -1;
    char *tmp = str_printf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (f) {
        write_config(f, nodes, n);
        rc = fclose(f) == 0 && rename(tmp, path) == 0 ? 0 : -1;
    }
    if (rc != 0) {
        fprintf(stderr, "pai up: cannot write %s\n", path);
        remove(tmp);
    }
    free(tmp);
    return rc;
}
