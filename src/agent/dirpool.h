/*
 * dirpool.h - emptied attempt dirs kept for reuse (docs/agent.md, "State on
 * disk").
 *
 * An attempt's dir <node dir>/tasks/<id>/ holds its record (`monitor`) and
 * the task's working dir (`cwd`).  When the agent forgets an attempt, the
 * dir is renamed into the pool (<pool dir>/<n>, 0700) and emptied there:
 * the record truncated, the task's files under cwd removed, cwd given back
 * to the agent with mode 0700, anything else removed.  A new attempt then
 * renames a pooled dir to its own: no new inode, where making the two dirs
 * and the record costs three (on ext4 without a journal, the dearest part
 * of a short task's bookkeeping: each new inode skips the recently deleted
 * ones, docs/benchmarks.md).  A pooled dir holds nothing of its attempt.
 *
 * The pool's list is in memory; dirpool_init removes whatever an earlier
 * process left in the pool dir (a killed agent may have left an entry half
 * emptied).  Not thread-safe: one owner (the agent's loop).
 */
#ifndef PAI_AGENT_DIRPOOL_H
#define PAI_AGENT_DIRPOOL_H

#include <stdbool.h>
#include <stddef.h>

#define DIRPOOL_MAX 256 /* dirs kept; past it a forgotten one is removed */

typedef struct {
    char dir[1100]; /* the pool dir; "" (zeroed struct): no pool */
    int *ids;       /* pooled entries <dir>/<id>, the last taken first */
    size_t n, cap;
    int next; /* the next entry's name */
} dirpool_t;

/* Use dir as the pool (made 0700, emptied).  False when it cannot be made:
 * the pool is then off (puts remove, takes find nothing). */
bool dirpool_init(dirpool_t *p, const char *dir);

/* Forget the attempt dir `path`: renamed into the pool and emptied, else
 * (pool full, off, or not an attempt dir: no `monitor` file or `cwd`
 * dir) removed. */
void dirpool_put(dirpool_t *p, const char *path);

/* Rename a pooled dir to `path` (its empty record and working dir with
 * it).  False when the pool is empty or `path` exists: the caller makes
 * the dirs. */
bool dirpool_take(dirpool_t *p, const char *path);

/* Free the list (the pooled dirs stay on disk until the next init). */
void dirpool_free(dirpool_t *p);

#endif
