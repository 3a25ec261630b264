/* test_agentsync_batch.c - agent syncs batched under one engine lock
 * (src/engine/combine.c, agentsync.c): a batch answers each sync as the
 * same syncs one by one do; a refused sync in a batch fails alone; syncs
 * from many threads at once are all answered, in batches. */
#include <pthread.h>

#include "engine_fixture.h"

/* The scenario both ways: three nodes of 2 GPUs, three running jobs. */
typedef struct {
    rig_t r;
    agent_t a[3];
    char *ids[3];
} scene_t;

static bool scene_open(scene_t *s)
{
    static const char *names[3] = {"n1", "n2", "n3"};
    memset(s, 0, sizeof(*s));
    if (!rig_open(&s->r))
        return false;
    for (int i = 0; i < 3; i++) {
        s->a[i] = (agent_t){.name = names[i], .address = "10.0.0.1", .ngpus = 2};
        sync_quiet(&s->r, &s->a[i], NULL);
    }
    for (int i = 0; i < 3; i++) { /* one job per node: n1's GPUs go first, then n2's... */
        char name[16];
        snprintf(name, sizeof name, "job%d", i);
        s->ids[i] = xstrdup("");
        CHECK(submit(&s->r, name, 2, 0));
        tick(&s->r);
        for (int k = 0; k < 3; k++) {
            sync_quiet(&s->r, &s->a[k], NULL);
            for (size_t d = 0; d < ndesired(&s->a[k]); d++)
                if (strstr(desired_id(&s->a[k], d), name)) {
                    free(s->ids[i]);
                    s->ids[i] = xstrdup(desired_id(&s->a[k], d));
                    sync_quiet(&s->r, &s->a[k], one(report(s->ids[i], "running", 0)));
                }
        }
        CHECK(*s->ids[i]);
    }
    return true;
}

static void scene_close(scene_t *s)
{
    for (int i = 0; i < 3; i++) {
        agent_free(&s->a[i]);
        free(s->ids[i]);
    }
    rig_close(&s->r);
}

/* The node whose desired set holds id (the scene's jobs: one node each). */
static agent_t *holder(scene_t *s, const char *id)
{
    for (int k = 0; k < 3; k++)
        for (size_t d = 0; d < ndesired(&s->a[k]); d++)
            if (strcmp(desired_id(&s->a[k], d), id) == 0)
                return &s->a[k];
    return &s->a[0];
}

static json_t *sync_req(const agent_t *a, json_t *tasks)
{
    return json_pack("{si so sI si so}", "version", 1, "node", node_json(a), "known_seq",
                     (json_int_t)a->seq, "wait_ms", 0, "tasks", tasks ? tasks : json_array());
}

/* An answer as text with every 5-digit number (task ports: each engine
 * draws its pools' start at random) masked. */
static char *masked_json(const json_t *resp)
{
    char *t = json_dumps(resp, JSON_SORT_KEYS);
    for (char *p = t; p && *p; p++) {
        size_t n = strspn(p, "0123456789");
        if (n == 5)
            memset(p, '#', n);
        p += n ? n - 1 : 0;
    }
    return t;
}

static char *masked(const char *text)
{
    json_t *j = answer_json(xstrdup(text));
    char *t = masked_json(j);
    json_decref(j);
    return t;
}

#define NCALLS 6

/* The compared syncs: a running report, an exit (acked once stored), an
 * empty sync, a new node, a credential that is not the node's (refused),
 * and the same node again in the same batch. */
static void scene_calls(scene_t *s, engine_sync_call_t *c, agent_t *fresh)
{
    agent_t *h0 = holder(s, s->ids[0]), *h1 = holder(s, s->ids[1]), *h2 = holder(s, s->ids[2]);
    memset(c, 0, NCALLS * sizeof(*c));
    c[0].req = sync_req(h0, one(report(s->ids[0], "running", 0)));
    c[1].req = sync_req(h1, one(report(s->ids[1], "exited", 0)));
    c[2].req = sync_req(h2, NULL);
    c[3].req = sync_req(fresh, NULL);
    c[4].req = sync_req(h2, NULL);
    c[4].credential = "pai-node-0000000000000000000000000000000000000000000000000000000000000000";
    c[5].req = sync_req(h0, one(report(s->ids[0], "running", 0)));
}

static void calls_free(engine_sync_call_t *c)
{
    for (int i = 0; i < NCALLS; i++) {
        json_decref(c[i].req);
        free(c[i].resp);
        engine_poll_free(c[i].held);
        pai_error_free(&c[i].err);
    }
}

TEST(a_batch_answers_each_sync_as_the_same_syncs_one_by_one)
{
    scene_t one_by_one, batched;
    agent_t fresh = {.name = "n4", .address = "10.0.0.4", .ngpus = 2};
    if (!scene_open(&one_by_one) || !scene_open(&batched)) {
        CHECK(!"scene_open");
        return;
    }
    engine_sync_call_t a[NCALLS], b[NCALLS];
    scene_calls(&one_by_one, a, &fresh);
    scene_calls(&batched, b, &fresh);
    uint64_t one_batches = one_by_one.r.e->combine.batches;
    for (int i = 0; i < NCALLS; i++) {
        a[i].err = (pai_error_t)PAI_ERROR_INIT;
        a[i].rc = engine_agent_sync_begin(one_by_one.r.e, a[i].req, a[i].credential, &a[i].resp,
                                          &a[i].held, &a[i].wait_ms, &a[i].err);
    }
    uint64_t batches = batched.r.e->combine.batches;
    engine_agent_sync_batch(batched.r.e, b, NCALLS);
    /* one lock for the 6 syncs' steps 1-3 instead of 6, and one more for
     * the step 4 of those with changes to store (the exit's, the new
     * node's), after one flush, instead of one each */
    one_batches = one_by_one.r.e->combine.batches - one_batches;
    batches = batched.r.e->combine.batches - batches;
    CHECK_INT_EQ((int)one_batches, NCALLS + 2);
    CHECK_INT_EQ((int)batches, 2);
    for (int i = 0; i < NCALLS; i++) {
        CHECK_INT_EQ(b[i].rc, a[i].rc);
        CHECK(!a[i].held && !b[i].held);
        CHECK((a[i].resp == NULL) == (b[i].resp == NULL));
        char *x = a[i].resp ? masked(a[i].resp) : NULL, *y = b[i].resp ? masked(b[i].resp) : NULL;
        if (x && y && strcmp(x, y) != 0) {
            fprintf(stderr, "  sync %d: one by one %s\n  batched %s\n", i, x, y);
            CHECK(!"the same answer");
        }
        free(x);
        free(y);
    }
    /* the refused one alone: 403, the others answered */
    CHECK_INT_EQ(b[4].rc, PAI_E_FORBIDDEN);
    for (int i = 0; i < NCALLS; i++)
        CHECK(i == 4 || (b[i].rc == PAI_OK && b[i].resp));
    json_t *b1 = answer_json(xstrdup(b[1].resp));
    CHECK(acked(json_object_get(b1, "ack"), batched.ids[1]));
    json_decref(b1);
    CHECK_STR_EQ(state_of(&batched.r, "alice~job1"), "SUCCEEDED");
    CHECK_STR_EQ(state_of(&one_by_one.r, "alice~job1"), "SUCCEEDED");
    CHECK_STR_EQ(state_of(&batched.r, "alice~job0"), "RUNNING");
    calls_free(a);
    calls_free(b);
    scene_close(&one_by_one);
    scene_close(&batched);
}

TEST(an_undecodable_sync_in_a_batch_fails_alone)
{
    scene_t s;
    if (!scene_open(&s)) {
        CHECK(!"scene_open");
        return;
    }
    engine_sync_call_t c[3] = {0};
    c[0].req = sync_req(&s.a[0], NULL);
    c[1].req = json_pack("{si}", "version", 99); /* no node, unknown version */
    c[2].req = sync_req(&s.a[1], NULL);
    engine_agent_sync_batch(s.r.e, c, 3);
    CHECK_INT_EQ(c[0].rc, PAI_OK);
    CHECK(c[1].rc != PAI_OK && !c[1].resp && !c[1].held);
    CHECK_INT_EQ(c[2].rc, PAI_OK);
    CHECK(c[0].resp && c[2].resp);
    for (int i = 0; i < 3; i++) {
        json_decref(c[i].req);
        free(c[i].resp);
        engine_poll_free(c[i].held);
        pai_error_free(&c[i].err);
    }
    scene_close(&s);
}

/* Holds the engine's flush lock (a flush another thread runs) for 300 ms. */
static void *flush_holder(void *arg)
{
    engine_t *e = arg;
    engine_flush_lock(e);
    usleep(300 * 1000);
    engine_flush_unlock(e);
    return NULL;
}

TEST(a_batch_waits_once_for_a_running_flush_and_answers_every_sync_after_its_commit)
{
    rig_t r;
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    agent_t a[4] = {{.name = "f1", .address = "10.0.0.1", .ngpus = 1},
                    {.name = "f2", .address = "10.0.0.1", .ngpus = 1},
                    {.name = "f3", .address = "10.0.0.1", .ngpus = 1},
                    {.name = "f4", .address = "10.0.0.1", .ngpus = 1}};
    engine_sync_call_t c[4] = {0};
    for (int i = 0; i < 4; i++) /* registrations: each must be stored before its answer */
        c[i].req = sync_req(&a[i], NULL);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, flush_holder, r.e) == 0);
    usleep(50 * 1000); /* the holder has the lock by now */
    int64_t t0 = time_mono_ms();
    uint64_t batches = r.e->combine.batches;
    engine_agent_sync_batch(r.e, c, 4);
    int64_t took = time_mono_ms() - t0;
    pthread_join(th, NULL);
    for (int i = 0; i < 4; i++) { /* answered, none held for a flush's wake-up */
        CHECK_INT_EQ(c[i].rc, PAI_OK);
        CHECK(c[i].resp && !c[i].held);
    }
    CHECK(took >= 150); /* it waited for the running flush, then stored its own */
    CHECK_INT_EQ((int)(r.e->combine.batches - batches), 2);
    CHECK(r.e->persist.durable >= 1);
    for (int i = 0; i < 4; i++) {
        json_decref(c[i].req);
        free(c[i].resp);
        pai_error_free(&c[i].err);
    }
    /* stored before they were answered: a restart reads the 4 nodes back */
    CHECK(rig_restart(&r));
    json_t *nodes = engine_nodes_json(r.e);
    CHECK_INT_EQ((int)json_array_size(json_object_get(nodes, "items")), 4);
    json_decref(nodes);
    rig_close(&r);
}

/* ---------------------------------------------------------------- threads */

#define NTHREADS 8
#define NSYNCS   150

typedef struct {
    rig_t *r;
    agent_t a;
    char name[16];
    int answered, failed;
} worker_t;

static void *sync_loop(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < NSYNCS; i++) {
        json_t *req = sync_req(&w->a, NULL), *resp = NULL;
        char *text = NULL;
        engine_poll_t *held = NULL;
        int64_t wait_ms = 0;
        pai_error_t err = PAI_ERROR_INIT;
        pai_err_t rc = engine_agent_sync_begin(w->r->e, req, NULL, &text, &held, &wait_ms, &err);
        if (rc == PAI_OK && held) { /* its registration waits for a flush another runs */
            if (engine_flush(w->r->e) == PAI_OK)
                rc = engine_poll_resume(held, &text, &wait_ms, &err);
            engine_poll_free(held);
        }
        resp = answer_json(text);
        if (rc == PAI_OK && resp && json_integer_value(json_object_get(resp, "seq")) > 0) {
            w->a.seq = json_integer_value(json_object_get(resp, "seq"));
            w->answered++;
        } else {
            w->failed++;
        }
        json_decref(req);
        json_decref(resp);
        pai_error_free(&err);
    }
    return NULL;
}

TEST(syncs_from_many_threads_are_all_answered_in_batches)
{
    rig_t r;
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    static worker_t w[NTHREADS];
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker_t){.r = &r};
        snprintf(w[i].name, sizeof w[i].name, "t%d", i);
        w[i].a = (agent_t){.name = w[i].name, .address = "10.0.0.1", .ngpus = 1};
        CHECK(pthread_create(&th[i], NULL, sync_loop, &w[i]) == 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    int answered = 0, failed = 0;
    for (int i = 0; i < NTHREADS; i++) {
        answered += w[i].answered;
        failed += w[i].failed;
    }
    CHECK_INT_EQ(answered, NTHREADS * NSYNCS);
    CHECK_INT_EQ(failed, 0);
    CHECK(r.e->combine.ops >= (uint64_t)NTHREADS * NSYNCS);
    CHECK(r.e->combine.batches <= r.e->combine.ops);
    fprintf(stderr, "  %llu sections in %llu batches\n", (unsigned long long)r.e->combine.ops,
            (unsigned long long)r.e->combine.batches);
    json_t *nodes = engine_nodes_json(r.e);
    CHECK_INT_EQ((int)json_array_size(json_object_get(nodes, "items")), NTHREADS);
    json_decref(nodes);
    rig_close(&r);
}

RUN_TESTS(a_batch_answers_each_sync_as_the_same_syncs_one_by_one,
          an_undecodable_sync_in_a_batch_fails_alone,
          a_batch_waits_once_for_a_running_flush_and_answers_every_sync_after_its_commit,
          syncs_from_many_threads_are_all_answered_in_batches)
