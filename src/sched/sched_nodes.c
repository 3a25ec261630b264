/*
 * sched_nodes.c - the scheduler's construction (from a HiveD config, from
 * reported nodes, a uniform cluster) and its nodes (added, updated, their
 * health); out of sched.c, which keeps the decisions and the pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "common/vec.h"
#include "sched/sched_place.h"

/* ---- construction ----------------------------------------------------- */

static void ensure_scratch(sched_t *s)
{
    if (s->cap_scratch >= s->n_cells)
        return;
    int cap = s->n_cells * 2 + 16;
    s->scratch = xrealloc(s->scratch, (size_t)cap * sizeof(int));
    s->scratch_stamp = xrealloc(s->scratch_stamp, (size_t)cap * sizeof(uint32_t));
    memset(s->scratch_stamp, 0, (size_t)cap * sizeof(uint32_t));
    s->cap_scratch = cap;
}

pai_err_t sched_new_config(const char *yaml, size_t len, const sched_opts_t *opts, sched_t **out,
                           char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    sched_t *s = sched_model_alloc(opts);
    pai_err_t rc = sched_config_load(s, yaml ? yaml : "", yaml ? len : 0, err, errlen);
    if (rc == PAI_OK && s->n_cells == 0 && s->n_vcs == 0) {
        /* an empty config (HiveD's default.yaml): nodes come from reports */
        s->derived = true;
        sched_model_add_vc(s, "default");
    }
    if (rc != PAI_OK) {
        sched_free(s);
        return rc;
    }
    ensure_scratch(s);
    *out = s;
    return PAI_OK;
}

pai_err_t sched_new_nodes(const sched_opts_t *opts, sched_t **out)
{
    return sched_new_config(NULL, 0, opts, out, NULL, 0);
}

static pai_err_t uniform_types(sched_t *s, int gpus, int rack_nodes, int *ntype, int *rack_t)
{
    int leaf = sched_model_add_type(s, "GPU");
    *ntype = sched_model_add_type(s, "NODE");
    s->types[leaf].defined = true;
    s->types[*ntype] = (ctype_t){
        .child = leaf, .child_n = gpus, .node_level = true, .defined = true, .sku = SCHED_NONE};
    str_copy(s->types[*ntype].name, "NODE", SCHED_NAME_MAX);
    *rack_t = SCHED_NONE;
    if (rack_nodes > 0) {
        *rack_t = sched_model_add_type(s, "RACK");
        s->types[*rack_t].child = *ntype;
        s->types[*rack_t].child_n = rack_nodes;
        s->types[*rack_t].defined = true;
    }
    return sched_model_finish_types(s, NULL, 0);
}

static pai_err_t uniform_cells(sched_t *s, int nodes, int rack_nodes, int ntype, int rack_t)
{
    char name[32];
    int rack = SCHED_NONE, c;
    pai_err_t rc = PAI_OK;
    for (int i = 0; rc == PAI_OK && i < nodes; i++) {
        if (rack_t != SCHED_NONE && i % rack_nodes == 0)
            rc = sched_model_add_cell(s, rack_t, SCHED_NONE, NULL, NULL, &rack, NULL, 0);
        snprintf(name, sizeof(name), "node-%05d", i);
        if (rc == PAI_OK)
            rc = sched_model_add_cell(s, ntype, rack, name, NULL, &c, NULL, 0);
    }
    return rc;
}

pai_err_t sched_new_uniform(int nodes, int gpus_per_node, int rack_nodes,
                            const char *const *vc_names, const int *vc_nodes, size_t n_vcs,
                            const sched_opts_t *opts, sched_t **out, char *err, size_t errlen)
{
    *out = NULL;
    char scratch[8];
    if (!err || !errlen)
        err = scratch, errlen = sizeof(scratch);
    if (nodes < 1 || nodes > 1000000 || gpus_per_node < 1 ||
        gpus_per_node > SCHED_MAX_GPUS_PER_NODE || rack_nodes < 0) {
        snprintf(err, errlen, "bad cluster shape: %d nodes x %d GPUs", nodes, gpus_per_node);
        return PAI_E_BAD_CONFIG;
    }
    sched_t *s = sched_model_alloc(opts);
    s->opts.assume_healthy = true; /* a synthetic cluster has no agents */
    int ntype, rack_t;
    pai_err_t rc = uniform_types(s, gpus_per_node, rack_nodes, &ntype, &rack_t);
    if (rc == PAI_OK)
        rc = uniform_cells(s, nodes, rack_nodes, ntype, rack_t);
    for (size_t i = 0; rc == PAI_OK && i < n_vcs; i++)
        sched_model_vc_add_cells(s, sched_model_add_vc(s, vc_names[i]), ntype,
                                 rack_t != SCHED_NONE ? rack_t : ntype, vc_nodes[i], false,
                                 SCHED_NONE);
    if (rc == PAI_OK)
        rc = sched_model_check(s, err, errlen);
    if (rc != PAI_OK) {
        sched_free(s);
        return rc;
    }
    ensure_scratch(s);
    *out = s;
    return PAI_OK;
}

/* ---- nodes ------------------------------------------------------------ */

int sched_find_node(const sched_t *s, const char *name)
{
    return name ? sched_strmap_get(&s->node_map, name) : SCHED_NONE;
}

/* Node-derived mode: a new node becomes a top-level cell owned by VC default. */
static pai_err_t derived_add_node(sched_t *s, const sched_node_t *nd)
{
    char tname[SCHED_NAME_MAX];
    const char *sku = nd->sku && nd->sku[0] && nd->gpus > 0 ? nd->sku : NULL;
    if (sku)
        snprintf(tname, sizeof(tname), "%s-%d-NODE", sku, nd->gpus);
    else
        str_copy(tname, "CPU-NODE", sizeof(tname));
    int t = sched_model_find_type(s, tname);
    if (t == SCHED_NONE) {
        int leaf = sku ? sched_model_add_type(s, sku) : SCHED_NONE;
        t = sched_model_add_type(s, tname);
        ctype_t *ct = &s->types[t];
        ct->defined = ct->node_level = true;
        ct->child = leaf;
        ct->child_n = sku ? nd->gpus : 0;
        if (!sku)
            ct->level = 2, ct->sku = SCHED_NONE;
        char err[128];
        pai_err_t rc = sched_model_finish_types(s, err, sizeof(err));
        if (rc != PAI_OK)
            return rc;
    }
    int c;
    char err[8];
    /* keyed by agent name: several agents may share an address (one host) */
    pai_err_t rc = sched_model_add_cell(s, t, SCHED_NONE, nd->name, NULL, &c, err, sizeof(err));
    if (rc != PAI_OK)
        return rc == PAI_E_BAD_CONFIG ? PAI_E_EXISTS : rc;
    int v = sched_model_find_vc(s, "default");
    if (s->types[t].gpus > 0 && v != SCHED_NONE)
        sched_model_vc_add_cells(s, v, t, t, 1, false, SCHED_NONE);
    ensure_scratch(s);
    return PAI_OK;
}

pai_err_t sched_node_update(sched_t *s, const sched_node_t *nd)
{
    if (!nd || !nd->name || !nd->name[0] || strlen(nd->name) >= SCHED_NAME_MAX ||
        (nd->address && strlen(nd->address) >= SCHED_NAME_MAX) || nd->gpus < 0 ||
        nd->gpus > SCHED_MAX_GPUS_PER_NODE)
        return PAI_E_INVALID;
    int i = sched_find_node(s, nd->name);
    if (i == SCHED_NONE && !s->derived)
        i = sched_find_node(s, nd->address);
    if (i == SCHED_NONE) {
        if (!s->derived)
            return PAI_E_NOT_FOUND;
        pai_err_t rc = derived_add_node(s, nd);
        if (rc != PAI_OK)
            return rc;
        i = s->n_nodes - 1;
    } else if (s->derived && nd->gpus != s->nodes[i].ngpu) {
        return PAI_E_INVALID; /* a node changing its GPU count must be re-added */
    }
    sched_mnode_t *n = &s->nodes[i];
    if (strcmp(n->name, nd->name) != 0) {
        if (strcmp(n->name, n->key) != 0)
            sched_strmap_del(&s->node_map, n->name);
        pai_err_t rc =
            strcmp(nd->name, n->key) != 0 ? sched_strmap_put(&s->node_map, nd->name, i) : PAI_OK;
        if (rc != PAI_OK)
            return rc;
    }
    /* a machine with cells of several chains: each cell's share of its CPUs
     * and memory, by GPUs */
    int gpus = 0;
    for (int x = i; x != SCHED_NONE; x = s->nodes[x].twin)
        gpus += s->nodes[x].ngpu;
    for (int x = i; x != SCHED_NONE; x = s->nodes[x].twin) {
        sched_mnode_t *m = &s->nodes[x];
        bool whole = x == i && m->twin == SCHED_NONE;
        str_copy(m->name, nd->name, sizeof(m->name));
        if (nd->address && nd->address[0])
            str_copy(m->address, nd->address, sizeof(m->address));
        if (nd->cpus > 0)
            m->cpus = whole || !gpus ? nd->cpus : (int)((int64_t)nd->cpus * m->ngpu / gpus);
        if (nd->memory_mb > 0)
            m->mem = whole || !gpus ? nd->memory_mb : nd->memory_mb * m->ngpu / gpus;
        if (nd->gpus_per_group > 0)
            m->group = nd->gpus_per_group;
    }
    s->topo_ver++;
    return sched_node_set_health(s, nd->name, nd->healthy);
}

pai_err_t sched_node_set_health(sched_t *s, const char *name, bool healthy)
{
    int i = sched_find_node(s, name);
    if (i == SCHED_NONE)
        return PAI_E_NOT_FOUND;
    for (; i != SCHED_NONE; i = s->nodes[i].twin) { /* the machine's cells of every chain */
        sched_mnode_t *n = &s->nodes[i];
        if (n->healthy != healthy)
            sched_model_health_changed(s, i, healthy);
        n->healthy = healthy;
        if (!healthy)
            for (int g = 0; g < n->ngpu; g++)
                if (n->res[g] != SCHED_NONE)
                    sched_jobs_clear_reservation(s, n->res[g]);
    }
    s->topo_ver++;
    s->post_pass = false;
    sched_check_after(s, healthy ? "a node turned healthy" : "a node turned unhealthy", SCHED_NONE,
                      false);
    return PAI_OK;
}

/* ---- decisions ----------------------------------------------------------- */
