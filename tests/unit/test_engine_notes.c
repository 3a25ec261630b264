/* test_engine_notes.c - the engine's side of notifications (engine/notices.c):
 * the events a job asked for are handed to ops.note where the job changes,
 * with the engine lock held and no store I/O, each state change once; a
 * job waiting past note_waiting_ms and a job flagged gpuIdle are handed
 * over once, and a restart does not repeat them; a job asking nothing is
 * never handed over.  The rig is engine_fixture.h's, with the two
 * notification ops added. */
#include "engine_fixture.h"

#define MAX_SEEN 32

typedef struct {
    engine_note_kind_t kind;
    char job[64], message[160], webhook[64];
    bool email, locked;
} seen_t;

static seen_t seen[MAX_SEEN];
static int nseen;
static engine_t *const *engine_of_rig;
static int64_t note_idle_ms; /* the rig's opts.note_idle_ms */

static void note_op(void *ud, const engine_notice_t *n)
{
    (void)ud;
    if (nseen >= MAX_SEEN)
        return;
    seen_t *s = &seen[nseen++];
    s->kind = n->kind;
    snprintf(s->job, sizeof s->job, "%s", n->job);
    snprintf(s->message, sizeof s->message, "%s", n->message ? n->message : "");
    snprintf(s->webhook, sizeof s->webhook, "%s", n->webhook ? n->webhook : "");
    s->email = n->email;
    s->locked = engine_of_rig && engine_holds_lock(*engine_of_rig);
}

/* Jobs named "quiet*" ask nothing; the others e-mail every event and POST
 * waiting and idle. */
static pai_err_t spec_op(void *ud, const char *user, const json_t *extras, engine_note_spec_t *out,
                         pai_error_t *e)
{
    (void)ud, (void)user, (void)extras, (void)e;
    memset(out, 0, sizeof(*out));
    out->email = 0x7f;
    out->hook = (1u << ENGINE_NOTE_WAITING) | (1u << ENGINE_NOTE_IDLE);
    out->url = xstrdup("http://hooks.example/h");
    return PAI_OK;
}

static pai_err_t quiet_spec_op(void *ud, const char *user, const json_t *extras,
                               engine_note_spec_t *out, pai_error_t *e)
{
    (void)ud, (void)user, (void)extras, (void)e;
    memset(out, 0, sizeof(*out));
    return PAI_OK;
}

static bool notes_start(rig_t *r, bool quiet)
{
    engine_free(r->e);
    r->e = NULL;
    engine_opts_t o = {.node_lost_timeout_s = LOST_S,
                       .starvation_ms = -1,
                       .no_threads = true,
                       .hived_config = r->hived,
                       .idle_gpu_util_pct = 10,
                       .idle_gpu_ms = 60000,
                       .note_waiting_ms = 5000,
                       .note_idle_ms = note_idle_ms};
    engine_ops_t ops = {
        .ud = r, .now_ms = fake_now, .note = note_op, .note_spec = quiet ? quiet_spec_op : spec_op};
    engine_of_rig = &r->e;
    return engine_new(r->st, &o, &ops, &r->e, NULL) == PAI_OK;
}

static int count(engine_note_kind_t k, const char *job)
{
    int n = 0;
    for (int i = 0; i < nseen; i++)
        n += seen[i].kind == k && strcmp(seen[i].job, job) == 0;
    return n;
}

static const seen_t *find(engine_note_kind_t k, const char *job)
{
    for (int i = 0; i < nseen; i++)
        if (seen[i].kind == k && strcmp(seen[i].job, job) == 0)
            return &seen[i];
    return NULL;
}

TEST(state_changes_are_handed_over_once_under_the_lock)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open(&r) || !notes_start(&r, false)) {
        CHECK(!"rig");
        return;
    }
    sync_quiet(&r, &a, NULL);
    char *id = submit_running(&r, &a, "fails", 0);
    CHECK_INT_EQ(count(ENGINE_NOTE_RUNNING, "alice~fails"), 1);
    sync_quiet(&r, &a, one(report(id, "exited", 1)));
    tick(&r);
    sync_quiet(&r, &a, NULL);
    CHECK_STR_EQ(state_of(&r, "alice~fails"), "FAILED");
    CHECK_INT_EQ(count(ENGINE_NOTE_FAILED, "alice~fails"), 1);
    const seen_t *s = find(ENGINE_NOTE_FAILED, "alice~fails");
    CHECK(s && s->email && s->webhook[0] == '\0'); /* the hook asks waiting and idle only */
    for (int i = 0; i < nseen; i++)
        CHECK(seen[i].locked);
    CHECK_INT_EQ(count(ENGINE_NOTE_SUCCEEDED, "alice~fails"), 0);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

TEST(a_long_wait_is_handed_over_once_and_not_again_after_a_restart)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open(&r) || !notes_start(&r, false)) {
        CHECK(!"rig");
        return;
    }
    sync_quiet(&r, &a, NULL);
    char *id = submit_running(&r, &a, "first", 0);
    CHECK(submit(&r, "second", 1, 0)); /* the only GPU is taken: it waits */
    r.now += 4000;
    tick(&r);
    CHECK_INT_EQ(count(ENGINE_NOTE_WAITING, "alice~second"), 0);
    r.now += 2000;
    tick(&r);
    CHECK_INT_EQ(count(ENGINE_NOTE_WAITING, "alice~second"), 1);
    const seen_t *s = find(ENGINE_NOTE_WAITING, "alice~second");
    CHECK(s && strcmp(s->webhook, "http://hooks.example/h") == 0 && s->email);
    CHECK(s && strstr(s->message, "waiting for resources") != NULL);
    r.now += 10000;
    tick(&r);
    CHECK_INT_EQ(count(ENGINE_NOTE_WAITING, "alice~second"), 1);
    CHECK_INT_EQ(count(ENGINE_NOTE_WAITING, "alice~first"), 0);
    /* the fact is stored with the job: a restarted server does not repeat it */
    CHECK(notes_start(&r, false));
    r.now += 10000;
    tick(&r);
    tick(&r);
    CHECK_INT_EQ(count(ENGINE_NOTE_WAITING, "alice~second"), 1);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

TEST(idle_gpus_are_handed_over_once)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1, .util = 5, .has_util = true};
    if (!rig_open(&r) || !notes_start(&r, false)) {
        CHECK(!"rig");
        return;
    }
    sync_quiet(&r, &a, NULL);
    char *id = submit_running(&r, &a, "idle", 0);
    for (int i = 0; i < 2; i++) { /* idle since 0 s: 0 and 30 s, under idle_gpu_ms */
        sync_quiet(&r, &a, one(report(id, "running", 0)));
        tick(&r);
        r.now += 30000;
    }
    CHECK_INT_EQ(count(ENGINE_NOTE_IDLE, "alice~idle"), 0);
    sync_quiet(&r, &a, one(report(id, "running", 0))); /* 60 s: flagged gpuIdle */
    tick(&r);
    CHECK_INT_EQ(count(ENGINE_NOTE_IDLE, "alice~idle"), 1);
    const seen_t *s = find(ENGINE_NOTE_IDLE, "alice~idle");
    CHECK(s && strcmp(s->message, "its GPUs have been under 10% utilization for 60 s") == 0);
    for (int i = 0; i < 3; i++) {
        r.now += 30000;
        sync_quiet(&r, &a, one(report(id, "running", 0)));
        tick(&r);
    }
    CHECK_INT_EQ(count(ENGINE_NOTE_IDLE, "alice~idle"), 1);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

/* note_idle_ms: told only once flagged that much longer. */
TEST(idle_gpus_are_told_after_note_idle_ms_more)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1, .util = 0, .has_util = true};
    note_idle_ms = 30000;
    if (!rig_open(&r) || !notes_start(&r, false)) {
        CHECK(!"rig");
        return;
    }
    sync_quiet(&r, &a, NULL);
    char *id = submit_running(&r, &a, "idle", 0);
    for (int i = 0; i < 3; i++) { /* 0, 30, 60 s: flagged at 60, not told yet */
        sync_quiet(&r, &a, one(report(id, "running", 0)));
        tick(&r);
        if (i < 2)
            r.now += 30000;
    }
    CHECK_INT_EQ(count(ENGINE_NOTE_IDLE, "alice~idle"), 0);
    r.now += 30000;
    sync_quiet(&r, &a, one(report(id, "running", 0))); /* 90 s: flagged for 30 s */
    tick(&r);
    CHECK_INT_EQ(count(ENGINE_NOTE_IDLE, "alice~idle"), 1);
    const seen_t *s = find(ENGINE_NOTE_IDLE, "alice~idle");
    CHECK(s && strcmp(s->message, "its GPUs have been under 10% utilization for 90 s") == 0);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

TEST(a_job_asking_nothing_is_never_handed_over)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1, .util = 0, .has_util = true};
    if (!rig_open(&r) || !notes_start(&r, true)) {
        CHECK(!"rig");
        return;
    }
    sync_quiet(&r, &a, NULL);
    char *id = submit_running(&r, &a, "quiet", 0);
    CHECK(submit(&r, "waits", 1, 0));
    for (int i = 0; i < 5; i++) {
        r.now += 30000;
        sync_quiet(&r, &a, one(report(id, "running", 0)));
        tick(&r);
    }
    sync_quiet(&r, &a, one(report(id, "exited", 0)));
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~quiet"), "SUCCEEDED");
    CHECK_INT_EQ(nseen, 0);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

RUN_TESTS(state_changes_are_handed_over_once_under_the_lock,
          a_long_wait_is_handed_over_once_and_not_again_after_a_restart,
          idle_gpus_are_handed_over_once, idle_gpus_are_told_after_note_idle_ms_more,
          a_job_asking_nothing_is_never_handed_over)
