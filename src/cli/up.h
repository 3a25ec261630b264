/*
 * up.h - `pai up` internals shared by up.c and up_hived.c.
 */
#ifndef PAI_CLI_UP_H
#define PAI_CLI_UP_H

#include <stddef.h>

#define UP_MAX_NODES 64

typedef struct {
    char name[128];
    char gpu_model[64];
    int gpus;
} up_node_t;

/* Nodes named by a HiveD-format config: every node-level cell under
 * physicalCells, its address as the name, its leaf cell type as the GPU
 * model and the product of childCellNumber below it as the GPU count.
 * Prints "FILE:LINE:COL: reason" and returns -1 on a problem, else the
 * number of nodes written to out (at most max). */
int up_hived_nodes(const char *path, up_node_t *out, int max);

#define UP_CELL_TYPE_MAX 96

/* The node-level cell type of the generated config: "<model>-<gpus>-NODE"
 * (the name a server without a config derives for such a node). */
void up_hived_cell_type(const up_node_t *nd, char *out, size_t n);

/* Writes (atomically) a HiveD-format config describing exactly nodes[0..n)
 * (all alike: nodes[0]'s model and GPU count), with one VC "default" that
 * owns every node.  -1 (after a message) when it cannot, or when the nodes
 * have no GPUs (HiveD cells cannot describe CPU-only nodes). */
int up_hived_generate(const char *path, const up_node_t *nodes, int n);

/* `pai down --stop-jobs`: log in as admin (the password and URL `pai up`
 * left in dir), stop every job that is not final and wait (bounded) until
 * they are.  Prints progress; CLI_OK or CLI_FAIL. */
int up_stop_jobs(const char *dir);

#endif
