/*
 * dirpool.h - the node's attempt dirs, named by slot and kept for reuse
 * (docs/agent.md, "State on disk").
 *
 * An attempt's dir is a slot of the node's tasks dir, <tasks>/<n>/: its
 * record (`monitor`, whose "id" line names the attempt) and the task's
 * working dir (`cwd`).  The attempt is known by its record, not by the
 * dir's name, so a slot is never renamed: when the agent forgets an
 * attempt, its slot is emptied where it is (cwd given back to the agent
 * with mode 0700, then the task's files under it removed, anything else
 * removed; the record kept as it is until the take cuts it and writes the
 * next attempt's id line), and the next attempt takes it.  No new inode
 * (on ext4 without a journal the dearest part of a short task's
 * bookkeeping: each new inode skips the recently deleted ones) and no
 * rename (two a task, ~17 us, when the pool was a dir of its own,
 * docs/benchmarks-history.md).
 *
 * A restarted agent tells a free slot from an attempt's by its record
 * (attempt.c node_recover): an id the journal of acked attempts names,
 * or no whole "id" line (a slot made for the pool, a take cut short by a
 * crash, a slot whose acked attempt was forgotten: dirpool_forget), and
 * the slot is free; any other id is an attempt of the node's.
 *
 * Emptying never blocks the caller (the agent's loop) for long: a put
 * removes at most DIRPOOL_INLINE files itself, none of them a dir; a task
 * that left more (a subdir, or 100,000 files) has its slot emptied by the
 * pool's worker thread, after which it is ready to be taken.  The same
 * thread empties the free slots a restart finds and removes the slots the
 * pool has no room for.  The thread starts when first needed, does
 * nothing but file system calls (no log, no lock but the pool's own), and
 * stops at dirpool_free (mid-dir: what is left is found by the next
 * agent's scan).
 *
 * The pool is owned by one thread (the agent's loop): every function but
 * the worker's runs there.
 */
#ifndef PAI_AGENT_DIRPOOL_H
#define PAI_AGENT_DIRPOOL_H

#include <stdbool.h>
#include <stddef.h>

#define DIRPOOL_MAX      256 /* dirs kept; past it a forgotten one is removed */
#define DIRPOOL_INLINE   32  /* files a put may remove itself; past it, the worker */
#define DIRPOOL_FD_SLOTS 64  /* slots whose cwd and record stay open (dirpool_put, _take) */

typedef struct dirpool_worker dirpool_worker_t;

typedef struct {
    char dir[1100]; /* the tasks dir, whose entries <n> are the slots; "" (zeroed): no pool */
    int *ids;       /* ready slots, the last freed first */
    size_t n, cap;
    int next;            /* the next new slot's number */
    size_t deferred;     /* slots the worker empties, then ready */
    unsigned *gen;       /* per slot: its takes so far (dirpool_forget) */
    size_t ngen;         /* gen's capacity */
    int (*fds)[3];       /* per slot below DIRPOOL_FD_SLOTS: its kept fds + 1 (0: none):
                          * cwd, the record for writes, the record for appends */
    dirpool_worker_t *w; /* NULL until a put or a reclaim needs it */
} dirpool_t;

/* Use dir (the node's tasks dir, already made) for the slots; new ones
 * are numbered after the highest there.  False when it cannot be read:
 * the pool is then off (takes find nothing, puts remove). */
bool dirpool_init(dirpool_t *p, const char *dir);

/* The slot an entry's name is (its number), -1 when it is none. */
int dirpool_slot(const char *name);

/* The path of a slot, <dir>/<slot>. */
void dirpool_path(const dirpool_t *p, int slot, char *out, size_t n);

/* The attempt in `slot` is forgotten: the slot is emptied where it is and
 * ready for the next take; removed instead when the pool is full, off, or
 * it is not an attempt dir (no `monitor` file or `cwd` dir); by the worker
 * past DIRPOOL_INLINE files or a subdir.  cwd_only: nothing but its record
 * and its cwd can be in the slot (the attempt ran as an unprivileged uid,
 * which cannot write in the agent's 0711 slot, and neither the agent nor
 * a container engine wrote a file of its own there), so only its cwd is
 * read and emptied (the take finds a record that is no longer a regular
 * file, and removes the slot).  Such a put keeps the cwd it emptied open
 * (slots below DIRPOOL_FD_SLOTS, O_CLOEXEC; a monitor closes what it
 * inherits) and the slot's next cwd-only put reads it through that fd,
 * rewound, instead of opening it by path again: between two such puts
 * only the agent and an attempt that cannot write in the slot had it, so
 * `cwd` is still that dir.  Any other put, a removal or dirpool_free
 * closes it.  The take keeps the record open likewise (one fd for its
 * writes, one for appends, dup'ed for the monitor), until the same.  The
 * fds kept by all pools together stay under a quarter of RLIMIT_NOFILE
 * (past it nothing more is kept: the paths are used). */
void dirpool_put(dirpool_t *p, int slot, bool cwd_only);

/* As dirpool_put for an attempt dir that is no slot (an older agent's,
 * named by its attempt): renamed to a new slot first. */
void dirpool_put_path(dirpool_t *p, const char *path);

/* A free slot a restart found (dirpool.h's head): emptied by the worker
 * (it may be half emptied), then ready. */
void dirpool_reclaim(dirpool_t *p, int slot);

/* Remove the dir `path` (renamed to a new slot first, then removed by
 * the worker): an older agent's pool dir. */
void dirpool_discard(dirpool_t *p, const char *path);

/* Make new slots, ready to be taken, until `want` (at most DIRPOOL_MAX)
 * are ready or being emptied: the agent's start does it, so that a node's
 * first tasks and its busiest moments take slots made before the node ran
 * anything (a new inode is the dearest part of a short task's bookkeeping
 * on ext4, ~0.1-1 ms cold: docs/benchmarks-history.md) instead of making their own.
 * Returns how many were made. */
size_t dirpool_fill(dirpool_t *p, size_t want);

/* A record at most this long is made the next attempt's by one write
 * of its id line and a pad line over the rest (no cut: the cut was ~60% of
 * a take's CPU); a longer one is cut first.  A record then holds at most
 * this much before an attempt's own lines, which keeps it well under what
 * its readers read (RECORD_MAX). */
#define DIRPOOL_PAD_MAX 1024

/* A slot for attempt_id: a ready one, else a new one.  Its record's
 * first line is then the attempt's "id" line, and nothing of the last
 * attempt's lines is left: written over by a pad line ("#" and blanks,
 * which no reader takes for a line of its own) in the same write while the
 * record is at most DIRPOOL_PAD_MAX bytes (one write of one page at offset
 * 0, which a signal does not cut: a crash leaves either the last
 * attempt's record or the new id and the pad); a longer record is cut to
 * the line's length first and then holds that line alone (cut first: a
 * crash leaves either no whole line, a free slot, or the last attempt's
 * own id line, never the new id with the last attempt's lines).  Returns
 * the record's fd, open for appends (the caller's to close), and the slot
 * in *slot; -1 when none can be had (pool off, no space, an id that
 * cannot be a line: errno EINVAL): the caller makes a dir of its own. */
int dirpool_take(dirpool_t *p, const char *attempt_id, int *slot);

/* The slot's takes so far. */
unsigned dirpool_gen(dirpool_t *p, int slot);

/* The attempt taken as `gen` of `slot` is being forgotten by the journal
 * (its tombstone dropped): when no attempt took the slot since, its
 * record's "id" line is spoiled ("#d ..."), so that a restart finds the
 * slot free instead of an attempt it no longer knows as acked. */
void dirpool_forget(dirpool_t *p, int slot, unsigned gen);

/* Wait until the worker has done everything queued (tests, benches). */
void dirpool_settle(dirpool_t *p);

/* Tests: hold the worker before its next job (true) or let it go on. */
void dirpool_hold(dirpool_t *p, bool hold);

/* Stop the worker and free the list (the slots stay on disk, found by the
 * next agent's scan). */
void dirpool_free(dirpool_t *p);

#endif
