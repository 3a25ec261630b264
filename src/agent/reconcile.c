/*
 * reconcile.c - see reconcile.h.  Sizes are small (tens of attempts per
 * node, plus tombstones), so the sets are matched through one sorted index
 * of the actual ids: O((nd + na) log na).
 */
#include "agent/reconcile.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static int cmp_actual(const void *a, const void *b)
{
    const rc_actual_t *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

static const rc_actual_t *find(const rc_actual_t **sorted, size_t n, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(sorted[mid]->id, id);
        if (c == 0)
            return sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool desired_has(const char **sorted, size_t n, const char *id)
{
    return n && bsearch(&id, sorted, n, sizeof(*sorted), cmp_str) != NULL;
}

size_t reconcile(const char *const *desired, size_t nd, const rc_actual_t *actual, size_t na,
                 rc_action_t *out)
{
    size_t n = 0;
    const rc_actual_t **act = xcalloc(na ? na : 1, sizeof(*act));
    const char **des = xcalloc(nd ? nd : 1, sizeof(*des));
    for (size_t i = 0; i < na; i++)
        act[i] = &actual[i];
    qsort(act, na, sizeof(*act), cmp_actual);
    if (nd)
        memcpy(des, desired, nd * sizeof(*des));
    qsort(des, nd, sizeof(*des), cmp_str);
    for (size_t i = 0; i < nd; i++) {
        /* a repeated id in the desired set is started once */
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = out[k].kind == RC_START && strcmp(desired[out[k].index], desired[i]) == 0;
        if (!dup && !find(act, na, desired[i]))
            out[n++] = (rc_action_t){RC_START, i};
    }
    for (size_t i = 0; i < na; i++)
        if (actual[i].phase == RC_ACTIVE && !desired_has(des, nd, actual[i].id))
            out[n++] = (rc_action_t){RC_STOP, i};
    free(act);
    free(des);
    return n;
}
