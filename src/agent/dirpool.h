/*
 * dirpool.h - emptied attempt dirs kept for reuse (docs/agent.md, "State on
 * disk").
 *
 * An attempt's dir <node dir>/tasks/<id>/ holds its record (`monitor`) and
 * the task's working dir (`cwd`).  When the agent forgets an attempt, the
 * dir is renamed into the pool (<pool dir>/<n>, 0700) and emptied there:
 * cwd given back to the agent with mode 0700, the task's files under it
 * removed, anything else removed; the record stays as it is until the
 * take writes the next attempt's id over it (its page and block kept).  A
 * new attempt then renames a pooled dir to its own: no new inode, where making the two dirs
 * and the record costs three (on ext4 without a journal, the dearest part
 * of a short task's bookkeeping: each new inode skips the recently deleted
 * ones, docs/benchmarks.md).  A pooled dir holds nothing of its attempt
 * but its record's lines (the pool is the agent's alone, 0700).
 *
 * Emptying never blocks the caller (the agent's loop) for long: a put
 * removes at most DIRPOOL_INLINE files itself, none of them a dir; a task
 * that left more (a subdir, or 100,000 files) has its dir emptied by the
 * pool's worker thread, after which the dir is ready to be taken.  The
 * same thread removes whatever an earlier process left in the pool dir (a
 * killed agent may have left an entry half emptied) and the dirs the pool
 * has no room for.  The thread starts when first needed, does nothing but
 * file system calls (no log, no lock but the pool's own), and stops at
 * dirpool_free (mid-dir: what is left is removed by the next init).
 *
 * The pool is owned by one thread (the agent's loop): every function but
 * the worker's runs there.
 */
#ifndef PAI_AGENT_DIRPOOL_H
#define PAI_AGENT_DIRPOOL_H

#include <stdbool.h>
#include <stddef.h>

#define DIRPOOL_MAX    256 /* dirs kept; past it a forgotten one is removed */
#define DIRPOOL_INLINE 32  /* files a put may remove itself; past it, the worker */

typedef struct dirpool_worker dirpool_worker_t;

typedef struct {
    char dir[1100]; /* the pool dir; "" (zeroed struct): no pool */
    int *ids;       /* ready entries <dir>/<id>, the last taken first */
    size_t n, cap;
    int next;            /* the next entry's name */
    size_t deferred;     /* entries the worker empties, then ready */
    dirpool_worker_t *w; /* NULL until a put or the init needs it */
} dirpool_t;

/* Use dir as the pool (made 0700; what an earlier process left in it is
 * removed by the worker).  False when it cannot be made: the pool is then
 * off (puts remove, takes find nothing). */
bool dirpool_init(dirpool_t *p, const char *dir);

/* Forget the attempt dir `path`: renamed into the pool and emptied, else
 * (pool full, off, or not an attempt dir: no `monitor` file or `cwd`
 * dir) removed; by the worker past DIRPOOL_INLINE files or a subdir. */
void dirpool_put(dirpool_t *p, const char *path);

/* Make new entries, ready to be taken, until `want` (at most DIRPOOL_MAX)
 * are ready or being emptied: the agent's start does it, so that a node's
 * first tasks and its busiest moments take dirs made before the node ran
 * anything (a new inode is the dearest part of a short task's bookkeeping
 * on ext4, ~0.1-1 ms cold: docs/benchmarks.md) instead of making their own.
 * Returns how many were made. */
size_t dirpool_fill(dirpool_t *p, size_t want);

/* Rename a ready pooled dir to `path` (its record and empty working dir
 * with it), its record first rewritten to hold the "id" line of
 * attempt_id alone (rt_record_rewrite, before the rename: a crash never
 * leaves the last attempt's lines under the new attempt's name).  Returns
 * the record's fd, open for appends (the caller's to close), or -1 when
 * none is ready or `path` exists: the caller makes the dirs. */
int dirpool_take(dirpool_t *p, const char *path, const char *attempt_id);

/* Wait until the worker has done everything queued (tests, benches). */
void dirpool_settle(dirpool_t *p);

/* Tests: hold the worker before its next job (true) or let it go on. */
void dirpool_hold(dirpool_t *p, bool hold);

/* Stop the worker and free the list (the pooled dirs stay on disk until
 * the next init). */
void dirpool_free(dirpool_t *p);

#endif
