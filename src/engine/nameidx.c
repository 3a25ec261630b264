/*
 * nameidx.c - the published jobs in name order (nameidx.h).
 *
 * Invariants: blocks[0..nb) hold every job once, each block sorted and
 * every job of a block ordered before every job of the next; no block is
 * empty or full (a block that fills splits in two halves); a block that
 * falls under a quarter of NAMEIDX_BLOCK merges with a neighbour that has
 * room for it, so the block table stays small next to the jobs.
 */
#include "engine/nameidx.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/vec.h"

typedef struct {
    lc_job_t **v; /* NAMEIDX_BLOCK slots */
    size_t n;
} block_t;

struct nameidx {
    block_t *b;
    size_t nb, capb;
    size_t count;
};

int nameidx_cmp(const lc_job_t *a, const lc_job_t *b)
{
    int c = strcmp(a->name + a->user_len + 1, b->name + b->user_len + 1);
    if (c == 0)
        c = a->seq < b->seq ? -1 : a->seq > b->seq;
    return c;
}

nameidx_t *nameidx_new(void)
{
    return xcalloc(1, sizeof(nameidx_t));
}

void nameidx_free(nameidx_t *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->nb; i++)
        free(x->b[i].v);
    free(x->b);
    free(x);
}

size_t nameidx_count(const nameidx_t *x)
{
    return x ? x->count : 0;
}

/* The first block whose last job is not before job (nb when none). */
static size_t find_block(const nameidx_t *x, const lc_job_t *job)
{
    size_t lo = 0, hi = x->nb;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const block_t *b = &x->b[mid];
        if (nameidx_cmp(b->v[b->n - 1], job) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The first slot of b whose job is not before job (b->n when none). */
static size_t find_pos(const block_t *b, const lc_job_t *job)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (nameidx_cmp(b->v[mid], job) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Open a new empty block at index at of the table. */
static block_t *block_insert(nameidx_t *x, size_t at)
{
    VEC_XRESERVE(x->b, x->capb, x->nb + 1);
    memmove(&x->b[at + 1], &x->b[at], (x->nb - at) * sizeof(*x->b));
    x->nb++;
    x->b[at] = (block_t){.v = xmalloc(NAMEIDX_BLOCK * sizeof(lc_job_t *)), .n = 0};
    return &x->b[at];
}

static void block_remove(nameidx_t *x, size_t at)
{
    free(x->b[at].v);
    memmove(&x->b[at], &x->b[at + 1], (x->nb - at - 1) * sizeof(*x->b));
    x->nb--;
}

void nameidx_add(nameidx_t *x, lc_job_t *job)
{
    size_t bi = find_block(x, job);
    if (bi == x->nb)
        bi = x->nb ? x->nb - 1 : 0; /* after every job: the last block */
    block_t *b = bi < x->nb ? &x->b[bi] : block_insert(x, 0);
    size_t pos = find_pos(b, job);
    memmove(&b->v[pos + 1], &b->v[pos], (b->n - pos) * sizeof(*b->v));
    b->v[pos] = job;
    b->n++;
    x->count++;
    if (b->n < NAMEIDX_BLOCK)
        return;
    /* full: its upper half into a new block after it */
    block_t *nb = block_insert(x, bi + 1);
    b = &x->b[bi]; /* the table may have moved */
    nb->n = b->n / 2;
    b->n -= nb->n;
    memcpy(nb->v, &b->v[b->n], nb->n * sizeof(*b->v));
}

/* Merge block bi into block bi + 1's front or bi - 1's back when it fell
 * under a quarter and the neighbour has room (the result stays not full). */
static void maybe_merge(nameidx_t *x, size_t bi)
{
    block_t *b = &x->b[bi];
    if (b->n >= NAMEIDX_BLOCK / 4)
        return;
    if (bi + 1 < x->nb && b->n + x->b[bi + 1].n < NAMEIDX_BLOCK) {
        block_t *next = &x->b[bi + 1];
        memmove(&next->v[b->n], next->v, next->n * sizeof(*next->v));
        memcpy(next->v, b->v, b->n * sizeof(*b->v));
        next->n += b->n;
        block_remove(x, bi);
    } else if (bi > 0 && b->n + x->b[bi - 1].n < NAMEIDX_BLOCK) {
        block_t *prev = &x->b[bi - 1];
        memcpy(&prev->v[prev->n], b->v, b->n * sizeof(*b->v));
        prev->n += b->n;
        block_remove(x, bi);
    }
}

bool nameidx_del(nameidx_t *x, const lc_job_t *job)
{
    size_t bi = x ? find_block(x, job) : 0;
    if (!x || bi == x->nb)
        return false;
    block_t *b = &x->b[bi];
    size_t pos = find_pos(b, job);
    if (pos == b->n || b->v[pos] != job)
        return false;
    memmove(&b->v[pos], &b->v[pos + 1], (b->n - pos - 1) * sizeof(*b->v));
    b->n--;
    x->count--;
    if (b->n == 0)
        block_remove(x, bi);
    else
        maybe_merge(x, bi);
    return true;
}

lc_job_t *nameidx_walk(const nameidx_t *x, nameidx_it_t *it, bool desc)
{
    while (x && it->block < x->nb) {
        const block_t *b = &x->b[desc ? x->nb - 1 - it->block : it->block];
        if (it->pos < b->n)
            return b->v[desc ? b->n - 1 - it->pos++ : it->pos++];
        it->block++;
        it->pos = 0;
    }
    return NULL;
}
