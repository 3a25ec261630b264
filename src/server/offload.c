/*
 * offload.c - the bounded worker set (see offload.h).  One FIFO of jobs per
 * class under one mutex; a free worker takes the oldest job of the next
 * class in turn that has one and is under its bound, and runs it unlocked;
 * a batch item takes the class's other items of its batch function with
 * it.  Invariants (under mu): pending[c] = queued[c] + the items the
 * workers of c run; running[c] (workers) <= most[c].
 *
 * Wake-ups: a plain item signals one worker.  A batch item signals one
 * only when no other batch item of its class was queued (else a worker was
 * signalled for those already, or every worker the class may use is busy
 * and the first to finish takes them), and a worker that leaves batch
 * items queued (more than one batch) signals the next: one wake-up per
 * batch, not per item, since a worker woken for an item another batch took
 * finds nothing to do (a context switch for nothing).
 *
 * Which worker: the one idle since the shortest time (a stack of the idle
 * workers, each waiting on a condition variable of its own), not any of
 * them as one shared condition variable does (glibc wakes its waiters in
 * about the order they came).  So a burst runs on the few workers it
 * needs, whose stacks, allocator caches and CPU caches are warm, however
 * many the pool holds: the 32 write workers woken in turn cost bench-e2e's
 * server ~8% more CPU a job (docs/benchmarks.md, "The write workers woken
 * last-idle first").
 */
#include "server/offload.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/util.h"

/* Items of one class a batch looks at at most, past its first (a class
 * may hold other items too: they keep their places). */
#define OFFLOAD_BATCH_SCAN (4 * OFFLOAD_BATCH_MAX)

typedef struct job {
    struct job *next;
    offload_fn fn;
    offload_batch_fn bfn; /* a batch item (fn NULL) */
    void *ud;
} job_t;

typedef struct {
    job_t *head, *tail;
    uint64_t pending;
    uint64_t nbatch; /* batch items queued */
    unsigned running, most;
    unsigned batches; /* batches running now */
    bool serial;      /* batch items wake a worker only while no batch runs */
} queue_t;

typedef struct {
    pthread_cond_t cv;
    bool listed;       /* on the idle stack */
    struct offload *o; /* its set */
} waiter_t;

struct offload {
    pthread_mutex_t mu;
    waiter_t *ws;   /* one per thread asked for (nws) */
    unsigned *idle; /* the idle workers' indices; the last idled on top */
    unsigned nws, nidle;
    queue_t q[OFFLOAD_MAX_CLASSES];
    unsigned nclasses;
    unsigned turn; /* the class whose job is taken first next */
    bool stopping;
    pthread_t *threads;
    unsigned nthreads;
};

/* The batch this thread runs now (worker), until offload_batch_answered
 * or its end: counted in its class's batches while counted. */
static _Thread_local struct {
    offload_t *o;
    unsigned c;
    bool counted;
} cur_batch;

/* The next job to run (mu held), its class in *cls; NULL when none may run. */
static job_t *take(offload_t *o, unsigned *cls)
{
    for (unsigned k = 0; k < o->nclasses; k++) {
        unsigned c = (o->turn + k) % o->nclasses;
        queue_t *q = &o->q[c];
        job_t *jb = q->head;
        if (!jb || q->running >= q->most)
            continue;
        q->head = jb->next;
        if (!q->head)
            q->tail = NULL;
        q->nbatch -= jb->bfn != NULL;
        q->batches += jb->bfn != NULL;
        q->running++;
        o->turn = (c + 1) % o->nclasses;
        *cls = c;
        return jb;
    }
    return NULL;
}

/* With first (a batch item just taken from class c): the items of c
 * queued with the same batch function, oldest first, into uds[1..]
 * (first's ud in uds[0]); how many in all.  mu held. */
static size_t take_batch(offload_t *o, unsigned c, const job_t *first, void **uds)
{
    queue_t *q = &o->q[c];
    size_t n = 0;
    uds[n++] = first->ud;
    job_t *prev = NULL, *jb = q->head;
    for (unsigned seen = 0; jb && n < OFFLOAD_BATCH_MAX && seen < OFFLOAD_BATCH_SCAN; seen++) {
        job_t *next = jb->next;
        if (jb->bfn == first->bfn) {
            uds[n++] = jb->ud;
            if (prev)
                prev->next = next;
            else
                q->head = next;
            if (q->tail == jb)
                q->tail = prev;
            free(jb);
            q->nbatch--;
        } else {
            prev = jb;
        }
        jb = next;
    }
    return n;
}

/* The worker idle since the shortest time, taken off the idle stack (mu
 * held); NULL when none is idle.  Signal it once mu is released: it waits
 * on its own condition variable until then (it was listed under mu). */
static waiter_t *pop_idle(offload_t *o)
{
    if (o->nidle == 0)
        return NULL;
    waiter_t *w = &o->ws[o->idle[--o->nidle]];
    w->listed = false;
    return w;
}

static void wake(waiter_t *w)
{
    if (w)
        pthread_cond_signal(&w->cv);
}

/* Every idle worker (at a stop, or a worker's exit: rare, so signalled
 * with mu held). */
static void wake_all(offload_t *o)
{
    pthread_mutex_lock(&o->mu);
    for (waiter_t *w; (w = pop_idle(o));)
        wake(w);
    pthread_mutex_unlock(&o->mu);
}

/* Wait on w's own condition variable, listed as the last idle (mu held). */
static void wait_idle(offload_t *o, waiter_t *w)
{
    w->listed = true;
    o->idle[o->nidle++] = (unsigned)(w - o->ws);
    pthread_cond_wait(&w->cv, &o->mu);
    if (w->listed) { /* woken by no one: off the stack again */
        unsigned me = (unsigned)(w - o->ws), k = 0;
        while (k < o->nidle && o->idle[k] != me)
            k++;
        for (; k + 1 < o->nidle; k++)
            o->idle[k] = o->idle[k + 1];
        o->nidle--;
        w->listed = false;
    }
}

/* Anything queued at all (mu held)? */
static bool queued(const offload_t *o)
{
    for (unsigned c = 0; c < o->nclasses; c++)
        if (o->q[c].head)
            return true;
    return false;
}

static void *worker(void *arg)
{
    waiter_t *me = arg;
    offload_t *o = me->o;
    void *uds[OFFLOAD_BATCH_MAX];
    pthread_mutex_lock(&o->mu);
    for (;;) {
        unsigned c = 0;
        job_t *jb = take(o, &c);
        if (!jb && o->stopping && !queued(o))
            break;
        if (!jb) { /* nothing, or only classes at their bound: a finishing worker takes it */
            wait_idle(o, me);
            continue;
        }
        size_t n = jb->bfn ? take_batch(o, c, jb, uds) : 1;
        /* batch items left (more than one batch, or this worker was
         * signalled for them but took a plain item first): wake the next */
        waiter_t *next = NULL;
        if (o->q[c].nbatch && o->q[c].running < o->q[c].most)
            next = pop_idle(o);
        pthread_mutex_unlock(&o->mu);
        wake(next);
        bool batch = jb->bfn != NULL;
        if (batch) {
            cur_batch.o = o, cur_batch.c = c, cur_batch.counted = true;
            jb->bfn(uds, n);
        } else {
            jb->fn(jb->ud);
        }
        free(jb);
        pthread_mutex_lock(&o->mu);
        o->q[c].running--;
        o->q[c].batches -= batch && cur_batch.counted;
        cur_batch.o = NULL;
        o->q[c].pending -= n;
    }
    pthread_mutex_unlock(&o->mu);
    wake_all(o); /* the others may be waiting on a bound */
    return NULL;
}

pai_err_t offload_new_classes(const char *name, unsigned nthreads, unsigned nclasses,
                              const unsigned *most, offload_t **out)
{
    *out = NULL;
    if (nclasses < 1 || nclasses > OFFLOAD_MAX_CLASSES)
        return PAI_E_INVALID;
    nthreads = nthreads ? nthreads : 1;
    offload_t *o = xcalloc(1, sizeof(*o));
    pthread_mutex_init(&o->mu, NULL);
    o->ws = xcalloc(nthreads, sizeof(*o->ws));
    o->idle = xcalloc(nthreads, sizeof(*o->idle));
    for (o->nws = 0; o->nws < nthreads; o->nws++) {
        pthread_cond_init(&o->ws[o->nws].cv, NULL);
        o->ws[o->nws].o = o;
    }
    o->nclasses = nclasses;
    for (unsigned c = 0; c < nclasses; c++) {
        unsigned m = most ? most[c] : 0;
        o->q[c].most = m && m < nthreads ? m : nthreads;
    }
    o->threads = xcalloc(nthreads, sizeof(*o->threads));
    for (unsigned i = 0; i < nthreads; i++) {
        if (pthread_create(&o->threads[i], NULL, worker, &o->ws[i]) != 0)
            break;
        pthread_setname_np(o->threads[i], name); /* longer than 15: left unnamed */
        o->nthreads++;
    }
    if (o->nthreads == 0) {
        offload_free(o);
        return PAI_E_IO;
    }
    for (unsigned c = 0; c < nclasses; c++) /* fewer threads started than asked */
        o->q[c].most = o->q[c].most < o->nthreads ? o->q[c].most : o->nthreads;
    *out = o;
    return PAI_OK;
}

pai_err_t offload_new(const char *name, unsigned nthreads, offload_t **out)
{
    return offload_new_classes(name, nthreads, 1, NULL, out);
}

/* Queue an item; false (nothing queued) once offload_stop has begun. */
static bool push(offload_t *o, unsigned cls, offload_fn fn, offload_batch_fn bfn, void *ud)
{
    job_t *jb = xmalloc(sizeof(*jb));
    *jb = (job_t){.fn = fn, .bfn = bfn, .ud = ud};
    pthread_mutex_lock(&o->mu);
    if (o->stopping) {
        pthread_mutex_unlock(&o->mu);
        free(jb);
        return false;
    }
    queue_t *q = &o->q[cls < o->nclasses ? cls : 0];
    /* a batch item wakes a worker only when it is the first queued (the
     * woken worker takes those queued after it too); in a serial class
     * only when no batch runs either: the worker that runs one takes the
     * items queued meanwhile as its next batch when it ends, without a
     * sleep and a wake-up */
    bool signal = !bfn || (q->nbatch++ == 0 && !(q->serial && q->batches > 0));
    if (q->tail)
        q->tail->next = jb;
    else
        q->head = jb;
    q->tail = jb;
    q->pending++;
    waiter_t *w = signal ? pop_idle(o) : NULL;
    pthread_mutex_unlock(&o->mu);
    wake(w);
    return true;
}

void offload_batch_answered(void)
{
    offload_t *o = cur_batch.o;
    if (!o || !cur_batch.counted)
        return;
    pthread_mutex_lock(&o->mu);
    queue_t *q = &o->q[cur_batch.c];
    q->batches--;
    cur_batch.counted = false;
    /* what came meanwhile: a free worker takes it now, not this one once
     * it has sent its answers (it may wait for a CPU behind the threads
     * and clients its answers wake) */
    waiter_t *w = q->serial && q->nbatch > 0 ? pop_idle(o) : NULL;
    pthread_mutex_unlock(&o->mu);
    wake(w);
}

void offload_serial_batches(offload_t *o, unsigned cls)
{
    pthread_mutex_lock(&o->mu);
    if (cls < o->nclasses)
        o->q[cls].serial = true;
    pthread_mutex_unlock(&o->mu);
}

void offload_run_in(offload_t *o, unsigned cls, offload_fn fn, void *ud)
{
    if (!push(o, cls, fn, NULL, ud))
        fn(ud);
}

void offload_run_batch_in(offload_t *o, unsigned cls, offload_batch_fn fn, void *ud)
{
    if (!push(o, cls, NULL, fn, ud))
        fn(&ud, 1);
}

void offload_run(offload_t *o, offload_fn fn, void *ud)
{
    offload_run_in(o, 0, fn, ud);
}

uint64_t offload_pending_in(offload_t *o, unsigned cls)
{
    pthread_mutex_lock(&o->mu);
    uint64_t n = cls < o->nclasses ? o->q[cls].pending : 0;
    pthread_mutex_unlock(&o->mu);
    return n;
}

uint64_t offload_pending(offload_t *o)
{
    pthread_mutex_lock(&o->mu);
    uint64_t n = 0;
    for (unsigned c = 0; c < o->nclasses; c++)
        n += o->q[c].pending;
    pthread_mutex_unlock(&o->mu);
    return n;
}

void offload_stop(offload_t *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    bool join = !o->stopping;
    o->stopping = true;
    pthread_mutex_unlock(&o->mu);
    wake_all(o);
    for (unsigned i = 0; join && i < o->nthreads; i++)
        pthread_join(o->threads[i], NULL);
}

void offload_free(offload_t *o)
{
    if (!o)
        return;
    offload_stop(o);
    free(o->threads);
    for (unsigned i = 0; i < o->nws; i++)
        pthread_cond_destroy(&o->ws[i].cv);
    free(o->ws);
    free(o->idle);
    pthread_mutex_destroy(&o->mu);
    free(o);
}
