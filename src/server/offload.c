/*
 * offload.c - the bounded worker set (see offload.h).  A FIFO of jobs
 * under one mutex; each worker takes the oldest, runs it unlocked.
 * Invariant (under mu): pending = queued + running.
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

struct offload {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *head, *tail;
    uint64_t pending;
    bool stopping;
    pthread_t *threads;
    unsigned nthreads;
};

static void *worker(void *arg)
{
    offload_t *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        job_t *jb = o->head;
        if (!jb && o->stopping)
            break;
        if (!jb) {
            pthread_cond_wait(&o->cv, &o->mu);
            continue;
        }
        o->head = jb->next;
        if (!o->head)
            o->tail = NULL;
        pthread_mutex_unlock(&o->mu);
        jb->fn(jb->ud);
        free(jb);
        pthread_mutex_lock(&o->mu);
        o->pending--;
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

pai_err_t offload_new(unsigned nthreads, offload_t **out)
{
    offload_t *o = xcalloc(1, sizeof(*o));
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    o->threads = xcalloc(nthreads ? nthreads : 1, sizeof(*o->threads));
    for (unsigned i = 0; i < (nthreads ? nthreads : 1); i++) {
        if (pthread_create(&o->threads[i], NULL, worker, o) != 0)
            break;
        o->nthreads++;
    }
    if (o->nthreads == 0) {
        offload_free(o);
        *out = NULL;
        return PAI_E_IO;
    }
    *out = o;
    return PAI_OK;
}

void offload_run(offload_t *o, offload_fn fn, void *ud)
{
    pthread_mutex_lock(&o->mu);
    if (o->stopping) {
        pthread_mutex_unlock(&o->mu);
        fn(ud);
        return;
    }
    job_t *jb = xmalloc(sizeof(*jb));
    *jb = (job_t){.fn = fn, .ud = ud};
    if (o->tail)
        o->tail->next = jb;
    else
        o->head = jb;
    o->tail = jb;
    o->pending++;
    pthread_mutex_unlock(&o->mu);
    pthread_cond_signal(&o->cv);
}

uint64_t offload_pending(offload_t *o)
{
    pthread_mutex_lock(&o->mu);
    uint64_t n = o->pending;
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
