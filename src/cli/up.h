/*
 * up.h - `pai up` internals shared by up.c (options, preflight, banner),
 * up_proc.c (the supervisor: children, pidfile), up_hived.c and up_stop.c.
 */
#ifndef PAI_CLI_UP_H
#define PAI_CLI_UP_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define UP_MAX_NODES 64

/* What a simulated node's accelerators are (the agent's backend). */
typedef enum { UP_NVIDIA = 0, UP_AMD, UP_FPGA } up_kind_t;

typedef struct {
    char name[128];
    char gpu_model[64];
    int gpus;
    up_kind_t kind;
} up_node_t;

#define UP_GRACE_MS 15000 /* SIGTERM to SIGKILL, per group of children */

/* up_start_all: a child died while the nodes registered (supervise, then stop). */
enum { UP_CHILD_DIED = 10 };

/* One `pai up`: its options (filled by up.c) and its children's pids
 * (written by up_proc.c; 0 once reaped). */
typedef struct {
    char dir[PATH_MAX];
    char self[PATH_MAX];
    char listen[64];
    char url[128];
    const char *runtime, *hived;
    char gen_config[PATH_MAX + 32];
    char examples[PATH_MAX]; /* the repository's examples/ (template_examples), "" if none */
    int port, cpus, memory_mb;
    bool as_root; /* --tasks-as-root */
    char admin_pw[65], agent_token[65];
    up_node_t node[UP_MAX_NODES];
    int nnodes;
    pid_t server, agent[UP_MAX_NODES];
} up_t;

/* Sleeps ms milliseconds. */
void up_sleep_ms(long ms);

/* The pid in dir's pidfile, or 0 when there is none. */
pid_t up_read_pidfile(const char *dir);

/* True when pid is a live `pai up` (a pidfile left by a crash may name a
 * pid that the kernel has since given to another program). */
bool up_alive(pid_t pid);

/* Writes the pidfile, starts the server and one agent per node and waits
 * until they answer: CLI_OK, UP_CHILD_DIED, or CLI_FAIL (after a message). */
int up_start_all(up_t *u);

/* Waits (signals in set blocked) for one of them or a child's death;
 * returns the exit status that ends the run. */
int up_supervise(up_t *u, const sigset_t *set);

/* Stops the agents, then the server, and removes the pidfile. */
void up_stop_all(up_t *u);

/* --detach: forks; the parent exits once the child calls
 * up_detached_ready (or dies).  0 in the child, with *ready_fd set. */
int up_detach(int *ready_fd);

/* The detached child is up: its output goes to logs/up.log, then the
 * parent is told through fd (closed). */
void up_detached_ready(const up_t *u, int fd);

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
 * (a node-level cell type per model and GPU count: the NVIDIA nodes and
 * the AMD or FPGA ones), with one VC "default" that owns every node.  -1 (after a message) when it
 * cannot, or when the nodes have no GPUs (HiveD cells cannot describe CPU-only nodes). */
int up_hived_generate(const char *path, const up_node_t *nodes, int n);

/* `pai down --stop-jobs`: log in as admin (the password and URL `pai up`
 * left in dir), stop every job that is not final and wait (bounded) until
 * they are.  Prints progress; CLI_OK or CLI_FAIL. */
int up_stop_jobs(const char *dir);

#endif
