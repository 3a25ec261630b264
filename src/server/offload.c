/*
 * offload.c - the bounded worker set (see offload.h).  One FIFO of jobs per
 * class under one mutex; a free worker takes the oldest job of the next
 * class in turn that has one and is under its bound, and runs it unlocked.
 * Invariants (under mu): pending[c] = queued[c] + running[c];
 * running[c] <= most[c].
 */
#include "server/offload.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/util.h"

typedef struct job {
    struct job *next;
    offload_fn fn;
    void *ud;
} job_t;

typedef struct {
    job_t *head, *tail;
    uint64_t pending;
    unsigned running, most;
} queue_t;

struct offload {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    queue_t q[OFFLOAD_MAX_CLASSES];
    unsigned nclasses;
    unsigned turn; /* the class whose job is taken first next */
    bool stopping;
    pthread_t *threads;
    unsigned nthreads;
};

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
        q->running++;
        o->turn = (c + 1) % o->nclasses;
        *cls = c;
        return jb;
    }
    return NULL;
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
    offload_t *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        unsigned c = 0;
        job_t *jb = take(o, &c);
        if (!jb && o->stopping && !queued(o))
            break;
        if (!jb) { /* nothing, or only classes at their bound: a finishing worker takes it */
            pthread_cond_wait(&o->cv, &o->mu);
            continue;
        }
        pthread_mutex_unlock(&o->mu);
        jb->fn(jb->ud);
        free(jb);
        pthread_mutex_lock(&o->mu);
        o->q[c].running--;
        o->q[c].pending--;
    }
    pthread_mutex_unlock(&o->mu);
    pthread_cond_broadcast(&o->cv); /* the others may be waiting on a bound */
    return NULL;
}

pai_err_t offload_new_classes(unsigned nthreads, unsigned nclasses, const unsigned *most,
                              offload_t **out)
{
    *out = NULL;
    if (nclasses < 1 || nclasses > OFFLOAD_MAX_CLASSES)
        return PAI_E_INVALID;
    nthreads = nthreads ? nthreads : 1;
    offload_t *o = xcalloc(1, sizeof(*o));
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    o->nclasses = nclasses;
    for (unsigned c = 0; c < nclasses; c++) {
        unsigned m = most ? most[c] : 0;
        o->q[c].most = m && m < nthreads ? m : nthreads;
    }
    o->threads = xcalloc(nthreads, sizeof(*o->threads));
    for (unsigned i = 0; i < nthreads; i++) {
        if (pthread_create(&o->threads[i], NULL, worker, o) != 0)
            break;
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

pai_err_t offload_new(unsigned nthreads, offload_t **out)
{
    return offload_new_classes(nthreads, 1, NULL, out);
}

void offload_run_in(offload_t *o, unsigned cls, offload_fn fn, void *ud)
{
    pthread_mutex_lock(&o->mu);
    if (o->stopping) {
        pthread_mutex_unlock(&o->mu);
        fn(ud);
        return;
    }
    queue_t *q = &o->q[cls < o->nclasses ? cls : 0];
    job_t *jb = xmalloc(sizeof(*jb));
    *jb = (job_t){.fn = fn, .ud = ud};
    if (q->tail)
        q->tail->next = jb;
    else
        q->head = jb;
    q->tail = jb;
    q->pending++;
    pthread_mutex_unlock(&o->mu);
    pthread_cond_signal(&o->cv);
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
    pthread_cond_broadcast(&o->cv);
    for (unsigned i = 0; join && i < o->nthreads; i++)
        pthread_join(o->threads[i], NULL);
}

void offload_free(offload_t *o)
{
    if (!o)
        return;
    offload_stop(o);
    free(o->threads);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}
