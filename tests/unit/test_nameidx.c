/*
 * test_nameidx.c - the published jobs in name order (src/engine/nameidx.c),
 * against a sort of everything: random additions and removals of jobs
 * whose names share long prefixes and repeat across users (ties broken by
 * seq), enough of them to split, merge and empty blocks; after each step
 * the walk from either end is the sorted set, its reverse for DESC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/nameidx.h"
#include "test.h"

#define POOL 3000

static lc_job_t jobs[POOL];
static bool in[POOL];
static uint64_t rnd = 0x2545f4914f6cdd1dull;

static uint64_t next_rnd(void)
{
    rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
    return rnd;
}

/* Job k: user "u<k % 4>" (lengths differ: u, uu, ...), a name from a small
 * set of long shared prefixes and numbers (repeats across users), seq k. */
static void make_job(int k)
{
    static const char *const users[] = {"u", "uu", "alice", "al"};
    static const char *const stems[] = {"experiment-run-", "experiment-", "exp", ""};
    const char *user = users[k % 4];
    char name[96];
    snprintf(name, sizeof name, "%s~%s%d", user, stems[(k / 4) % 4], (int)(next_rnd() % 500));
    jobs[k].name = strdup(name);
    jobs[k].user_len = (uint16_t)strlen(user);
    jobs[k].seq = k;
}

static int cmp_ptrs(const void *a, const void *b)
{
    return nameidx_cmp(*(lc_job_t *const *)a, *(lc_job_t *const *)b);
}

/* The walk both ways equals the sorted live set; returns the count. */
static size_t check_walks(const nameidx_t *x)
{
    static lc_job_t *want[POOL];
    size_t n = 0;
    for (int k = 0; k < POOL; k++)
        if (in[k])
            want[n++] = &jobs[k];
    qsort(want, n, sizeof(*want), cmp_ptrs);
    CHECK_INT_EQ(nameidx_count(x), n);
    for (int desc = 0; desc < 2; desc++) {
        nameidx_it_t it = {0};
        size_t i = 0, bad = 0;
        lc_job_t *job;
        while ((job = nameidx_walk(x, &it, desc)) != NULL) {
            bad += i >= n || job != want[desc ? n - 1 - i : i];
            i++;
        }
        CHECK_INT_EQ(i, n);
        CHECK_INT_EQ(bad, 0);
    }
    return n;
}

TEST(walks_in_name_then_seq_order_through_random_additions_and_removals)
{
    for (int k = 0; k < POOL; k++)
        make_job(k);
    nameidx_t *x = nameidx_new();
    check_walks(x); /* empty */
    size_t most = 0, steps = 0;
    for (int round = 0; round < 6; round++) {
        /* grow (more additions than removals), then shrink to a few */
        int add_pct = round % 2 ? 20 : 85;
        for (int op = 0; op < 4000; op++) {
            int k = (int)(next_rnd() % POOL);
            bool add = (int)(next_rnd() % 100) < add_pct;
            if (add && !in[k]) {
                nameidx_add(x, &jobs[k]);
                in[k] = true;
            } else if (!add) {
                CHECK(nameidx_del(x, &jobs[k]) == in[k]); /* false when absent */
                in[k] = false;
            }
            if (op % 500 == 499) {
                size_t n = check_walks(x);
                most = n > most ? n : most;
                steps++;
            }
        }
        check_walks(x);
    }
    CHECK(most > 4 * NAMEIDX_BLOCK); /* blocks split, and merged on the way down */
    for (int k = 0; k < POOL; k++)
        if (in[k]) {
            CHECK(nameidx_del(x, &jobs[k]));
            in[k] = false;
        }
    CHECK_INT_EQ(check_walks(x), 0);
    printf("# %zu checks, up to %zu jobs\n", steps, most);
    nameidx_free(x);
    for (int k = 0; k < POOL; k++)
        free(jobs[k].name);
}

TEST(a_job_is_found_by_its_place_not_by_its_name_alone)
{
    /* two jobs of the same name part (two users) and seq order between them */
    lc_job_t a = {.name = "bob~train", .user_len = 3, .seq = 2};
    lc_job_t b = {.name = "al~train", .user_len = 2, .seq = 1};
    lc_job_t c = {.name = "al~tra", .user_len = 2, .seq = 3};
    nameidx_t *x = nameidx_new();
    CHECK(!nameidx_del(x, &a));
    nameidx_add(x, &a);
    nameidx_add(x, &b);
    nameidx_add(x, &c);
    nameidx_it_t it = {0};
    CHECK(nameidx_walk(x, &it, false) == &c); /* "tra" < "train" */
    CHECK(nameidx_walk(x, &it, false) == &b); /* seq 1 before seq 2 */
    CHECK(nameidx_walk(x, &it, false) == &a);
    CHECK(nameidx_walk(x, &it, false) == NULL);
    lc_job_t twin = a; /* the same key, another job: not in x */
    CHECK(!nameidx_del(x, &twin));
    CHECK(nameidx_del(x, &a));
    CHECK(!nameidx_del(x, &a));
    CHECK_INT_EQ(nameidx_count(x), 2);
    nameidx_free(x);
}

RUN_TESTS(walks_in_name_then_seq_order_through_random_additions_and_removals,
          a_job_is_found_by_its_place_not_by_its_name_alone)
