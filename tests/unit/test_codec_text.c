/*
 * test_codec_text.c - a job's stored record spliced from its parts' texts
 * (codec_job_text, written without a tree, the parts that never change
 * kept) is byte for byte the record jansson dumps from the whole tree
 * (codec_job_encode), for random jobs, as they change and after a decode;
 * the tree's record is the one the encoder wrote before it was split into
 * parts (a fixed job's bytes); the commands record likewise
 * (codec_cmds_text, codec_cmds_encode).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine/codec.h"
#include "engine/lifecycle.h"
#include "test.h"

static unsigned rnd_state;

static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 16) % n;
}

static lc_reaction_t react(int code)
{
    return code == 0 ? LC_NEVER_RETRY : code == 137 ? LC_ALWAYS_RETRY : LC_RETRY_TO_MAX;
}

/* A string with characters JSON must escape now and then. */
static char *rnd_text(const char *base)
{
    static const char *const odd[] = {"", "\"q\"", "a\\b", "tab\tnl\n", "é ü", "\x01"};
    /* one rnd() per statement: the order of a call's arguments is unspecified */
    const char *o = odd[rnd(6)];
    unsigned k = rnd(1000);
    return str_printf("%s%s%u", base, o, k);
}

static void rnd_role(lc_role_t *r, int k)
{
    r->name = str_printf("role%d", k);
    r->instances = 1 + (int)rnd(3);
    r->gpu = (int)rnd(5);
    r->cpu = 1 + (int)rnd(8);
    r->mem_mb = 256 * (1 + (int)rnd(8));
    r->shm_mb = (int)rnd(2) * 64;
    r->min_failed = rnd(3) ? 1 : -1;
    r->min_succeeded = rnd(2) ? -1 : 1;
    r->nports = (int)rnd(3);
    r->ports = r->nports ? xcalloc((size_t)r->nports, sizeof(*r->ports)) : NULL;
    for (int p = 0; p < r->nports; p++) {
        r->ports[p].label = str_printf("p%d", p);
        r->ports[p].count = 1 + (int)rnd(2);
    }
    r->sku = rnd(2) ? rnd_text("sku") : NULL;
    r->pinned = rnd(4) == 0 ? rnd_text("pin") : NULL;
    r->group = rnd(4) == 0 ? rnd_text("grp") : NULL;
    r->within = rnd(4) == 0 ? rnd_text("cell") : NULL;
    r->command = xstrdup("echo hi");
}

/* A new attempt with every task placed on a random node. */
static void rnd_begin(lc_job_t *j, int64_t now)
{
    lc_place_t *rows[4] = {0};
    int ports[64];
    for (int k = 0; k < 64; k++)
        ports[k] = 20000 + k;
    for (int r = 0; r < j->nroles; r++) {
        rows[r] = xcalloc((size_t)j->roles[r].instances, sizeof(lc_place_t));
        for (int i = 0; i < j->roles[r].instances; i++) {
            int np = 0;
            for (int p = 0; p < j->roles[r].nports; p++)
                np += j->roles[r].ports[p].count;
            static const char *const nodes[] = {"n1", "n2", "n\"3"};
            const char *node = nodes[rnd(3)];
            uint64_t gpus = rnd(256);
            const int *pp = ports + rnd(32);
            const char *cell = rnd(2) ? "RACK@n1" : NULL;
            rows[r][i] = (lc_place_t){node, "10.0.0.1", gpus, pp, np, cell};
        }
    }
    lc_effects_t fx = {0};
    lc_attempt_begin(j, (const lc_place_t *const *)rows, now, &fx);
    for (int r = 0; r < j->nroles; r++)
        free(rows[r]);
}

static lc_job_t *rnd_job(unsigned seed)
{
    rnd_state = seed;
    lc_job_t *j = xcalloc(1, sizeof(*j));
    j->name = str_printf("alice~job%u", seed);
    j->user_len = 5;
    j->vc = xstrdup(rnd(2) ? "default" : "vc\"x");
    j->task_uid = rnd(2) ? -1 : (int32_t)rnd(100); /* sequenced: ?: */
    j->seq = rnd(100000);
    j->prio = (uint8_t)rnd(4);
    j->gang = rnd(2);
    j->lazy = rnd(3) == 0;
    j->job_retry_count = (int)rnd(3);
    j->submit_ms = 1700000000000LL + rnd(1000);
    j->nroles = 1 + (int)rnd(3);
    j->roles = xcalloc((size_t)j->nroles, sizeof(lc_role_t));
    for (int r = 0; r < j->nroles; r++) {
        rnd_role(&j->roles[r], r);
        j->total_tasks += (uint32_t)j->roles[r].instances;
        j->total_gpus += (uint32_t)(j->roles[r].instances * j->roles[r].gpu);
    }
    for (int t = (int)rnd(3); t > 0; t--) {
        char *tag = rnd_text("tag");
        lc_add_tag(j, tag);
        free(tag);
    }
    if (rnd(2))
        j->waiting_reason = rnd_text("waiting for resources: ");
    j->ev_next = rnd(40);
    if (rnd(4) == 0) {
        const char *url = "http://hook.example/x";
        j->notify = xcalloc(1, sizeof(*j->notify) + strlen(url) + 1);
        j->notify->email = (uint8_t)rnd(8);
        j->notify->hook = (uint8_t)rnd(8);
        memcpy(j->notify->url, url, strlen(url) + 1);
    }
    return j;
}

/* One random step of a job's life: placed, a task running or exited. */
static void rnd_step(lc_job_t *j, int64_t now)
{
    if (lc_job_state_final(j->state))
        return;
    if (j->state == JOB_WAITING) {
        if (j->retry_at_ms <= now)
            rnd_begin(j, now);
        return;
    }
    int r = (int)rnd((unsigned)j->nroles);
    int i = (int)rnd((unsigned)j->roles[r].instances);
    lc_task_attempt_t *ta = lc_task_current(j, r, i);
    lc_effects_t fx = {0};
    if (ta && ta->state == TASK_WAITING && rnd(2))
        lc_task_running(j, r, i, now, &fx);
    else if (ta && !lc_task_state_final(ta->state)) {
        static const int codes[] = {0, 1, 137, -1001};
        char *diag = rnd(2) ? rnd_text("diag ") : NULL;
        lc_task_exited(j, r, i, codes[rnd(4)], diag, now, react, &fx);
        free(diag);
    }
    j->oppo = rnd(8) == 0;
    j->ev_next += rnd(2);
    ta = lc_task_current(j, r, i); /* an exit may have begun a task retry (a new array) */
    if (ta && rnd(3) == 0)
        ta->used_gpu_ms += rnd(5000);
}

/* codec_job_encode(golden_job()) dumped compact by the encoder before the split (main at
 * e6a9978). */
#define GOLDEN_7                                                                                   \
    "{\"v\":1,\"name\":\"alice~job7\",\"vc\":\"vc\\\"x\",\"seq\":22674,\"state\":1,\"prio"         \
    "\":3,\"stop\":false,\"gang\":true,\"retries\":0,\"accRetries\":0,\"jobRetryCount\":2"         \
    ",\"taskRetryCount\":0,\"submitMs\":1700000000985,\"launchMs\":1700000001005,\"comple"         \
    "teMs\":0,\"exit\":null,\"totalTasks\":5,\"totalGpus\":11,\"tags\":[\"taga\\\\b533\"]"         \
    ",\"roles\":[{\"name\":\"role0\",\"instances\":3,\"gpu\":1,\"cpu\":7,\"mem\":768,\"sh"         \
    "m\":64,\"minFailed\":1,\"minSucceeded\":-1,\"ports\":[[\"p0\",1],[\"p1\",1]],\"sku\""         \
    ":null,\"pinned\":null},{\"name\":\"role1\",\"instances\":2,\"gpu\":4,\"cpu\":8,\"mem"         \
    "\":512,\"shm\":0,\"minFailed\":1,\"minSucceeded\":-1,\"ports\":[[\"p0\",1]],\"sku\":"         \
    "null,\"pinned\":\"pintab\\tnl\\n523\",\"group\":\"grp676\"}],\"attempts\":[{\"index"          \
    "\":0,\"state\":5,\"completing\":true,\"c\":1700000000995,\"l\":1700000001005,\"f\":0"         \
    ",\"exit\":1,\"triggerRole\":\"role0\",\"triggerIndex\":1,\"triggerMsg\":\"FailedTask"         \
    "Count 1 has reached MinFailedTaskCount 1 in TaskRole role0\",\"diag\":\"exit \\\"1\\"         \
    "\"\",\"tasks\":[[{\"retries\":0,\"atts\":[{\"i\":0,\"s\":2,\"exit\":null,\"node\":\""         \
    "n1\",\"ip\":\"10.0.0.1\",\"gpus\":74,\"ports\":[20017,20018],\"c\":1700000000995,\"l"         \
    "\":0,\"f\":0,\"diag\":null,\"cell\":\"RACK@n1\"}]},{\"retries\":0,\"atts\":[{\"i\":0"         \
    ",\"s\":4,\"exit\":1,\"node\":\"n2\",\"ip\":\"10.0.0.1\",\"gpus\":93,\"ports\":[20027"         \
    ",20028],\"c\":1700000000995,\"l\":1700000001005,\"f\":1700000001015,\"diag\":\"exit "         \
    "\\\"1\\\"\",\"cell\":\"RACK@n1\"}]},{\"retries\":0,\"atts\":[{\"i\":0,\"s\":2,\"exit"         \
    "\":null,\"node\":\"n\\\"3\",\"ip\":\"10.0.0.1\",\"gpus\":194,\"ports\":[20019,20020]"         \
    ",\"c\":1700000000995,\"l\":0,\"f\":0,\"diag\":null}]}],[{\"retries\":0,\"atts\":[{\""         \
    "i\":0,\"s\":2,\"exit\":null,\"node\":\"n2\",\"ip\":\"10.0.0.1\",\"gpus\":173,\"ports"         \
    "\":[20014],\"c\":1700000000995,\"l\":0,\"f\":0,\"diag\":null,\"u\":1234,\"cell\":\"R"         \
    "ACK@n1\"}]},{\"retries\":0,\"atts\":[{\"i\":0,\"s\":2,\"exit\":null,\"node\":\"n2\","         \
    "\"ip\":\"10.0.0.1\",\"gpus\":148,\"ports\":[20017],\"c\":1700000000995,\"l\":0,\"f\""         \
    ":0,\"diag\":null}]}]]}],\"waitingReason\":\"none\",\"retryAtMs\":0,\"evNext\":6,\"la"         \
    "zy\":true,\"oppo\":true,\"taskUid\":68,\"notify\":{\"email\":3,\"hook\":0,\"sent\":1"         \
    ",\"url\":\"http://hook.example/x\"}}"

/* A fixed job with every optional field of the record set. */
static lc_job_t *golden_job(void)
{
    lc_job_t *j = rnd_job(7);
    rnd_begin(j, j->submit_ms + 10);
    lc_effects_t fx = {0};
    lc_task_running(j, 0, 1, j->submit_ms + 20, &fx);
    lc_task_exited(j, 0, 1, 1, "exit \"1\"", j->submit_ms + 30, react, &fx);
    j->oppo = true;
    j->waiting_reason = xstrdup("none");
    const char *url = "http://hook.example/x";
    j->notify = xcalloc(1, sizeof(*j->notify) + strlen(url) + 1);
    j->notify->email = 3;
    j->notify->sent = 1;
    memcpy(j->notify->url, url, strlen(url) + 1);
    lc_task_current(j, 1, 0)->used_gpu_ms = 1234;
    return j;
}

/* The spliced text equals the tree's dump, and decodes to the same job. */
static void check_same(lc_job_t *j)
{
    json_t *tree = codec_job_encode(j);
    char *want = json_dumps(tree, JSON_COMPACT), *got = codec_job_text(j);
    CHECK_STR_EQ(got, want);
    json_t *back = json_loads(got, 0, NULL);
    CHECK(back && json_equal(back, tree));
    lc_job_t *k = NULL;
    CHECK(back && codec_job_decode(back, &k) == PAI_OK);
    char *again = k ? codec_job_text(k) : NULL;
    CHECK_STR_EQ(again, want); /* a restored job encodes the same */
    free(again);
    lc_job_free(k);
    json_decref(back);
    json_decref(tree);
    free(want);
    free(got);
}

TEST(spliced_record_is_the_trees_bytes_for_random_jobs_as_they_change)
{
    for (unsigned seed = 1; seed <= 300; seed++) {
        lc_job_t *j = rnd_job(seed);
        check_same(j); /* never placed */
        int64_t now = j->submit_ms;
        for (int step = 0; step < 12; step++) {
            now += 100 + rnd(1000);
            rnd_step(j, now);
            check_same(j); /* roles kept from the first text, the rest anew */
        }
        lc_job_free(j);
    }
}

/* The record of a fixed job as the encoder wrote it before the record was
 * split into parts (one tree, one json_pack): codec_job_encode keeps the
 * same keys in the same order. */
TEST(record_keeps_the_bytes_the_single_tree_encoder_wrote)
{
    lc_job_t *j = golden_job();
    char *got = codec_job_text(j);
    CHECK_STR_EQ(got, GOLDEN_7);
    free(got);
    lc_job_free(j);
}

/* The commands record ("jobcmd") written without a tree is the tree's dump:
 * commands, images, registry auth and mounts set or not, odd characters. */
TEST(commands_record_is_the_trees_bytes)
{
    for (unsigned seed = 1; seed <= 100; seed++) {
        lc_job_t *j = rnd_job(seed);
        for (int r = 0; r < j->nroles; r++) {
            lc_role_t *role = &j->roles[r];
            free(role->command);
            role->command = rnd(5) ? rnd_text("run \"$X\"\n") : NULL;
            role->image = rnd(2) ? rnd_text("img:") : NULL;
            role->image_auth = rnd(3) ? NULL : xstrdup("{\"username\":\"u\",\"password\":\"p\"}");
            role->mounts = rnd(3) ? NULL : rnd_text("[{\"source\":\"/a\"}]");
        }
        json_t *tree = codec_cmds_encode(j);
        char *want = json_dumps(tree, JSON_COMPACT), *got = codec_cmds_text(j);
        CHECK_STR_EQ(got, want);
        free(want);
        free(got);
        json_decref(tree);
        lc_job_free(j);
    }
}

RUN_TESTS(spliced_record_is_the_trees_bytes_for_random_jobs_as_they_change,
          record_keeps_the_bytes_the_single_tree_encoder_wrote, commands_record_is_the_trees_bytes)
