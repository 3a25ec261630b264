/* test_lifecycle_codec.c - job records round-trip and REST views render. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine/codec.h"
#include "engine/env.h"
#include "engine/lifecycle.h"
#include "test.h"

static lc_reaction_t react(int code)
{
    return code == 0 ? LC_NEVER_RETRY : LC_RETRY_TO_MAX;
}

static lc_job_t *two_role_job(void)
{
    lc_job_t *j = xcalloc(1, sizeof(*j));
    j->name = xstrdup("bob~dist");
    j->user_len = 3;
    j->vc = xstrdup("default");
    j->gang = true;
    j->prio = 2;
    j->nroles = 2;
    j->roles = xcalloc(2, sizeof(lc_role_t));
    const char *names[2] = {"ps", "worker"};
    for (int r = 0; r < 2; r++) {
        j->roles[r].name = xstrdup(names[r]);
        j->roles[r].instances = r + 1;
        j->roles[r].gpu = r;
        j->roles[r].cpu = 1;
        j->roles[r].mem_mb = 100;
        j->roles[r].min_failed = 1;
        j->roles[r].min_succeeded = -1;
        j->roles[r].nports = 1;
        j->roles[r].ports = xcalloc(1, sizeof(lc_port_spec_t));
        j->roles[r].ports[0].label = xstrdup("ssh");
        j->roles[r].ports[0].count = 1;
        j->roles[r].command = xstrdup("echo hi");
    }
    j->total_tasks = 3;
    j->total_gpus = 2;
    int p0[] = {20000}, p1[] = {20001}, p2[] = {20002};
    lc_place_t ps[1] = {{"n1", "10.0.0.1", 0, p0, 1, NULL}};
    lc_place_t wk[2] = {{"n1", "10.0.0.1", 1, p1, 1, "RACK@n1"},
                        {"n2", "10.0.0.2", 2, p2, 1, NULL}};
    const lc_place_t *rows[2] = {ps, wk};
    lc_effects_t fx = {0};
    lc_attempt_begin(j, rows, 1000, &fx);
    return j;
}

static char *dump(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

TEST(record_round_trips)
{
    lc_job_t *j = two_role_job();
    lc_add_tag(j, "t1");
    lc_effects_t fx = {0};
    lc_task_exited(j, 1, 1, 3, "oops", 2000, react, &fx);
    char *a = dump(codec_job_encode(j));
    json_t *rec = json_loads(a, 0, NULL);
    lc_job_t *k = NULL;
    CHECK(codec_job_decode(rec, &k) == PAI_OK);
    json_decref(rec);
    char *b = k ? dump(codec_job_encode(k)) : NULL;
    CHECK_STR_EQ(a, b);
    CHECK_STR_CONTAINS(a, "\"cell\":\"RACK@n1\""); /* the scheduler's cell of worker/0 */
    lc_task_attempt_t *w0 = k ? lc_task_current(k, 1, 0) : NULL;
    CHECK(w0 && w0->cell && strcmp(w0->cell, "RACK@n1") == 0);
    free(a);
    free(b);
    lc_job_free(j);
    lc_job_free(k);
}

TEST(detail_renders_task_roles_and_exit)
{
    lc_job_t *j = two_role_job();
    lc_effects_t fx = {0};
    lc_task_exited(j, 1, 1, 3, "oops", 2000, react, &fx);
    char *s = dump(codec_render_detail(j, -1));
    CHECK(s != NULL);
    CHECK_STR_CONTAINS(s, "\"taskRoles\"");
    CHECK_STR_CONTAINS(s, "\"appExitTriggerTaskRoleName\":\"worker\"");
    CHECK_STR_CONTAINS(s, "\"containerExitCode\":3");
    free(s);
    s = dump(codec_render_summary(j));
    CHECK_STR_CONTAINS(s, "\"username\":\"bob\"");
    CHECK_STR_CONTAINS(s, "\"name\":\"dist\"");
    free(s);
    s = dump(codec_render_attempt(j, 0));
    CHECK(s != NULL);
    free(s);
    s = dump(codec_render_task(j, 0, 1, 1));
    CHECK_STR_CONTAINS(s, "\"attempts\"");
    free(s);
    lc_job_free(j);
}

TEST(env_names_peers_and_gpus)
{
    lc_job_t *j = two_role_job();
    json_t *env = engine_task_env(j, 1, 1);
    CHECK_STR_EQ(json_string_value(json_object_get(env, "PAI_HOST_IP_ps_0")), "10.0.0.1");
    CHECK_STR_EQ(json_string_value(json_object_get(env, "PAI_HOST_IP_worker_1")), "10.0.0.2");
    CHECK_STR_EQ(json_string_value(json_object_get(env, "PAI_PORT_LIST_worker_1_ssh")), "20002");
    CHECK_STR_EQ(json_string_value(json_object_get(env, "PAI_TASK_ROLE_LIST")), "ps,worker");
    CHECK_STR_EQ(json_string_value(json_object_get(env, "PAI_TASK_ROLE_TASK_COUNT_worker")), "2");
    CHECK_STR_EQ(json_string_value(json_object_get(env, "CUDA_VISIBLE_DEVICES")), "1");
    CHECK_STR_EQ(json_string_value(json_object_get(env, "PAI_USER_NAME")), "bob");
    json_decref(env);
    env = engine_task_env(j, 0, 0);
    CHECK_STR_EQ(json_string_value(json_object_get(env, "NVIDIA_VISIBLE_DEVICES")), "none");
    json_decref(env);
    lc_job_free(j);
}

TEST(attempt_ids_parse)
{
    char name[64], role[64];
    int ja, idx, ta;
    CHECK(codec_attempt_id_parse("bob~dist/2/worker/1/3", name, sizeof name, &ja, role, sizeof role,
                                 &idx, &ta) == PAI_OK);
    CHECK_STR_EQ(name, "bob~dist");
    CHECK_STR_EQ(role, "worker");
    CHECK_INT_EQ(ja * 100 + idx * 10 + ta, 213);
    CHECK(codec_attempt_id_parse("bob~dist/x/worker/1/3", name, sizeof name, &ja, role, sizeof role,
                                 &idx, &ta) != PAI_OK);
    CHECK(codec_attempt_id_parse("bob~dist/0/worker/1", name, sizeof name, &ja, role, sizeof role,
                                 &idx, &ta) != PAI_OK);
}

RUN_TESTS(record_round_trips, detail_renders_task_roles_and_exit, env_names_peers_and_gpus,
          attempt_ids_parse)
