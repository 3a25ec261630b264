/*
 * test_env.c - a task's environment (engine_task_env): every name, value
 * and their order for each task of a two-role job with several port
 * labels and GPUs, as the printf-built environment wrote them (golden
 * text), and a name that two roles both claim set once, at the first one's
 * place, with the last value.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine/env.h"
#include "engine/lifecycle.h"
#include "env_fixture.h"
#include "test.h"

static char *env_text(const lc_job_t *j, int r, int i)
{
    json_t *env = engine_task_env(j, r, i);
    char *s = env ? json_dumps(env, JSON_COMPACT) : NULL;
    json_decref(env);
    return s;
}

/* engine_task_env's text for every task of job_of("ps", "worker_x"), and
 * for worker w_HOST_LIST/0 of job_of("TASK_COUNT_w", "w_HOST_LIST"), as the
 * printf-built environment wrote them (main at 9c5e734). */
static const char *const golden[] = {
    "{\"PAI_JOB_NAME\":\"carol~env1\",\"PAI_USER_NAME\":\"carol\",\"PAI_JOB_VC_NAME\":\"vcA\""
    ",\"PAI_CURRENT_TASK_ROLE_NAME\":\"ps\",\"PAI_TASK_ROLE_NAME\":\"ps\",\"PAI_CURRENT_TASK_"
    "ROLE_CURRENT_TASK_INDEX\":\"0\",\"PAI_TASK_INDEX\":\"0\",\"PAI_TASK_ROLE_INDEX\":\"0\",\""
    "PAI_TASK_ROLE_COUNT\":\"2\",\"PAI_TASK_ROLE_TASK_COUNT_ps\":\"1\",\"PAI_RESOURCE_ps\":\""
    "0,2,1024,64\",\"PAI_HOST_IP_ps_0\":\"10.0.0.1\",\"PAI_PORT_LIST_ps_0_ssh\":\"30000\",\"P"
    "AI_PORT_LIST_ps_0_http\":\"30001,30002\",\"PAI_PORT_LIST_ps_0_tb\":\"30003,30004,30005\""
    ",\"PAI_TASK_ROLE_ps_HOST_LIST\":\"10.0.0.1:30000\",\"PAI_TASK_ROLE_TASK_COUNT_worker_x\""
    ":\"2\",\"PAI_RESOURCE_worker_x\":\"3,3,1024,64\",\"PAI_HOST_IP_worker_x_0\":\"10.0.0.2\""
    ",\"PAI_PORT_LIST_worker_x_0_ssh\":\"31000\",\"PAI_PORT_LIST_worker_x_0_http\":\"31001,31"
    "002\",\"PAI_PORT_LIST_worker_x_0_tb\":\"\",\"PAI_HOST_IP_worker_x_1\":\"10.0.0.3\",\"PAI"
    "_PORT_LIST_worker_x_1_ssh\":\"32000\",\"PAI_PORT_LIST_worker_x_1_http\":\"32001\",\"PAI_"
    "PORT_LIST_worker_x_1_tb\":\"\",\"PAI_TASK_ROLE_worker_x_HOST_LIST\":\"10.0.0.2:31000,10."
    "0.0.3:32000\",\"PAI_TASK_ROLE_LIST\":\"ps,worker_x\",\"PAI_CONTAINER_HOST_IP\":\"10.0.0."
    "1\",\"PAI_CURRENT_CONTAINER_IP\":\"10.0.0.1\",\"PAI_CONTAINER_HOST_ssh_PORT_LIST\":\"300"
    "00\",\"PAI_CONTAINER_SSH_PORT\":\"30000\",\"PAI_CONTAINER_HOST_http_PORT_LIST\":\"30001,"
    "30002\",\"PAI_CONTAINER_HOST_tb_PORT_LIST\":\"30003,30004,30005\",\"PAI_CONTAINER_HOST_P"
    "ORT_LIST\":\"ssh:30000;http:30001,30002;tb:30003,30004,30005\",\"PAI_CONTAINER_HOST_PORT"
    "\":\"30000\",\"PAI_CURRENT_CONTAINER_PORT\":\"30000\",\"NVIDIA_VISIBLE_DEVICES\":\"none\""
    ",\"CUDA_VISIBLE_DEVICES\":\"\",\"PAI_GPU_COUNT\":\"0\"}",
    "{\"PAI_JOB_NAME\":\"carol~env1\",\"PAI_USER_NAME\":\"carol\",\"PAI_JOB_VC_NAME\":\"vcA\""
    ",\"PAI_CURRENT_TASK_ROLE_NAME\":\"worker_x\",\"PAI_TASK_ROLE_NAME\":\"worker_x\",\"PAI_C"
    "URRENT_TASK_ROLE_CURRENT_TASK_INDEX\":\"0\",\"PAI_TASK_INDEX\":\"0\",\"PAI_TASK_ROLE_IND"
    "EX\":\"0\",\"PAI_TASK_ROLE_COUNT\":\"2\",\"PAI_TASK_ROLE_TASK_COUNT_ps\":\"1\",\"PAI_RES"
    "OURCE_ps\":\"0,2,1024,64\",\"PAI_HOST_IP_ps_0\":\"10.0.0.1\",\"PAI_PORT_LIST_ps_0_ssh\":"
    "\"30000\",\"PAI_PORT_LIST_ps_0_http\":\"30001,30002\",\"PAI_PORT_LIST_ps_0_tb\":\"30003,"
    "30004,30005\",\"PAI_TASK_ROLE_ps_HOST_LIST\":\"10.0.0.1:30000\",\"PAI_TASK_ROLE_TASK_COU"
    "NT_worker_x\":\"2\",\"PAI_RESOURCE_worker_x\":\"3,3,1024,64\",\"PAI_HOST_IP_worker_x_0\""
    ":\"10.0.0.2\",\"PAI_PORT_LIST_worker_x_0_ssh\":\"31000\",\"PAI_PORT_LIST_worker_x_0_http"
    "\":\"31001,31002\",\"PAI_PORT_LIST_worker_x_0_tb\":\"\",\"PAI_HOST_IP_worker_x_1\":\"10."
    "0.0.3\",\"PAI_PORT_LIST_worker_x_1_ssh\":\"32000\",\"PAI_PORT_LIST_worker_x_1_http\":\"3"
    "2001\",\"PAI_PORT_LIST_worker_x_1_tb\":\"\",\"PAI_TASK_ROLE_worker_x_HOST_LIST\":\"10.0."
    "0.2:31000,10.0.0.3:32000\",\"PAI_TASK_ROLE_LIST\":\"ps,worker_x\",\"PAI_CONTAINER_HOST_I"
    "P\":\"10.0.0.2\",\"PAI_CURRENT_CONTAINER_IP\":\"10.0.0.2\",\"PAI_CONTAINER_HOST_ssh_PORT"
    "_LIST\":\"31000\",\"PAI_CONTAINER_SSH_PORT\":\"31000\",\"PAI_CONTAINER_HOST_http_PORT_LI"
    "ST\":\"31001,31002\",\"PAI_CONTAINER_HOST_tb_PORT_LIST\":\"\",\"PAI_CONTAINER_HOST_PORT_"
    "LIST\":\"ssh:31000;http:31001,31002;tb:\",\"PAI_CONTAINER_HOST_PORT\":\"31000\",\"PAI_CU"
    "RRENT_CONTAINER_PORT\":\"31000\",\"NVIDIA_VISIBLE_DEVICES\":\"0,2,5\",\"CUDA_VISIBLE_DEV"
    "ICES\":\"0,2,5\",\"PAI_GPU_COUNT\":\"3\"}",
    "{\"PAI_JOB_NAME\":\"carol~env1\",\"PAI_USER_NAME\":\"carol\",\"PAI_JOB_VC_NAME\":\"vcA\""
    ",\"PAI_CURRENT_TASK_ROLE_NAME\":\"worker_x\",\"PAI_TASK_ROLE_NAME\":\"worker_x\",\"PAI_C"
    "URRENT_TASK_ROLE_CURRENT_TASK_INDEX\":\"1\",\"PAI_TASK_INDEX\":\"1\",\"PAI_TASK_ROLE_IND"
    "EX\":\"1\",\"PAI_TASK_ROLE_COUNT\":\"2\",\"PAI_TASK_ROLE_TASK_COUNT_ps\":\"1\",\"PAI_RES"
    "OURCE_ps\":\"0,2,1024,64\",\"PAI_HOST_IP_ps_0\":\"10.0.0.1\",\"PAI_PORT_LIST_ps_0_ssh\":"
    "\"30000\",\"PAI_PORT_LIST_ps_0_http\":\"30001,30002\",\"PAI_PORT_LIST_ps_0_tb\":\"30003,"
    "30004,30005\",\"PAI_TASK_ROLE_ps_HOST_LIST\":\"10.0.0.1:30000\",\"PAI_TASK_ROLE_TASK_COU"
    "NT_worker_x\":\"2\",\"PAI_RESOURCE_worker_x\":\"3,3,1024,64\",\"PAI_HOST_IP_worker_x_0\""
    ":\"10.0.0.2\",\"PAI_PORT_LIST_worker_x_0_ssh\":\"31000\",\"PAI_PORT_LIST_worker_x_0_http"
    "\":\"31001,31002\",\"PAI_PORT_LIST_worker_x_0_tb\":\"\",\"PAI_HOST_IP_worker_x_1\":\"10."
    "0.0.3\",\"PAI_PORT_LIST_worker_x_1_ssh\":\"32000\",\"PAI_PORT_LIST_worker_x_1_http\":\"3"
    "2001\",\"PAI_PORT_LIST_worker_x_1_tb\":\"\",\"PAI_TASK_ROLE_worker_x_HOST_LIST\":\"10.0."
    "0.2:31000,10.0.0.3:32000\",\"PAI_TASK_ROLE_LIST\":\"ps,worker_x\",\"PAI_CONTAINER_HOST_I"
    "P\":\"10.0.0.3\",\"PAI_CURRENT_CONTAINER_IP\":\"10.0.0.3\",\"PAI_CONTAINER_HOST_ssh_PORT"
    "_LIST\":\"32000\",\"PAI_CONTAINER_SSH_PORT\":\"32000\",\"PAI_CONTAINER_HOST_http_PORT_LI"
    "ST\":\"32001\",\"PAI_CONTAINER_HOST_tb_PORT_LIST\":\"\",\"PAI_CONTAINER_HOST_PORT_LIST\""
    ":\"ssh:32000;http:32001;tb:\",\"PAI_CONTAINER_HOST_PORT\":\"32000\",\"PAI_CURRENT_CONTAI"
    "NER_PORT\":\"32000\",\"NVIDIA_VISIBLE_DEVICES\":\"0,31\",\"CUDA_VISIBLE_DEVICES\":\"0,31"
    "\",\"PAI_GPU_COUNT\":\"2\"}",
    "{\"PAI_JOB_NAME\":\"carol~env1\",\"PAI_USER_NAME\":\"carol\",\"PAI_JOB_VC_NAME\":\"vcA\""
    ",\"PAI_CURRENT_TASK_ROLE_NAME\":\"w_HOST_LIST\",\"PAI_TASK_ROLE_NAME\":\"w_HOST_LIST\",\""
    "PAI_CURRENT_TASK_ROLE_CURRENT_TASK_INDEX\":\"0\",\"PAI_TASK_INDEX\":\"0\",\"PAI_TASK_ROL"
    "E_INDEX\":\"0\",\"PAI_TASK_ROLE_COUNT\":\"2\",\"PAI_TASK_ROLE_TASK_COUNT_TASK_COUNT_w\":"
    "\"1\",\"PAI_RESOURCE_TASK_COUNT_w\":\"0,2,1024,64\",\"PAI_HOST_IP_TASK_COUNT_w_0\":\"10."
    "0.0.1\",\"PAI_PORT_LIST_TASK_COUNT_w_0_ssh\":\"30000\",\"PAI_PORT_LIST_TASK_COUNT_w_0_ht"
    "tp\":\"30001,30002\",\"PAI_PORT_LIST_TASK_COUNT_w_0_tb\":\"30003,30004,30005\",\"PAI_TAS"
    "K_ROLE_TASK_COUNT_w_HOST_LIST\":\"2\",\"PAI_RESOURCE_w_HOST_LIST\":\"3,3,1024,64\",\"PAI"
    "_HOST_IP_w_HOST_LIST_0\":\"10.0.0.2\",\"PAI_PORT_LIST_w_HOST_LIST_0_ssh\":\"31000\",\"PA"
    "I_PORT_LIST_w_HOST_LIST_0_http\":\"31001,31002\",\"PAI_PORT_LIST_w_HOST_LIST_0_tb\":\"\""
    ",\"PAI_HOST_IP_w_HOST_LIST_1\":\"10.0.0.3\",\"PAI_PORT_LIST_w_HOST_LIST_1_ssh\":\"32000\""
    ",\"PAI_PORT_LIST_w_HOST_LIST_1_http\":\"32001\",\"PAI_PORT_LIST_w_HOST_LIST_1_tb\":\"\","
    "\"PAI_TASK_ROLE_w_HOST_LIST_HOST_LIST\":\"10.0.0.2:31000,10.0.0.3:32000\",\"PAI_TASK_ROL"
    "E_LIST\":\"TASK_COUNT_w,w_HOST_LIST\",\"PAI_CONTAINER_HOST_IP\":\"10.0.0.2\",\"PAI_CURRE"
    "NT_CONTAINER_IP\":\"10.0.0.2\",\"PAI_CONTAINER_HOST_ssh_PORT_LIST\":\"31000\",\"PAI_CONT"
    "AINER_SSH_PORT\":\"31000\",\"PAI_CONTAINER_HOST_http_PORT_LIST\":\"31001,31002\",\"PAI_C"
    "ONTAINER_HOST_tb_PORT_LIST\":\"\",\"PAI_CONTAINER_HOST_PORT_LIST\":\"ssh:31000;http:3100"
    "1,31002;tb:\",\"PAI_CONTAINER_HOST_PORT\":\"31000\",\"PAI_CURRENT_CONTAINER_PORT\":\"310"
    "00\",\"NVIDIA_VISIBLE_DEVICES\":\"0,2,5\",\"CUDA_VISIBLE_DEVICES\":\"0,2,5\",\"PAI_GPU_C"
    "OUNT\":\"3\"}",
};

TEST(every_name_value_and_order_is_the_printf_built_ones)
{
    lc_job_t *j = job_of("ps", "worker_x");
    size_t g = 0;
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < j->roles[r].instances; i++, g++) {
            char *s = env_text(j, r, i);
            CHECK_STR_EQ(s, golden[g]);
            free(s);
        }
    lc_job_free(j);
}

/* Role "TASK_COUNT_w"'s host list and role "w_HOST_LIST"'s task count have
 * one name: set once, where the first put it, with the last value. */
TEST(a_name_two_roles_claim_is_set_once_with_the_last_value)
{
    lc_job_t *j = job_of("TASK_COUNT_w", "w_HOST_LIST");
    char *s = env_text(j, 1, 0);
    CHECK_STR_EQ(s, golden[3]);
    json_t *env = engine_task_env(j, 1, 0);
    CHECK_STR_EQ(json_string_value(json_object_get(env, "PAI_TASK_ROLE_TASK_COUNT_w_HOST_LIST")),
                 "2");
    json_decref(env);
    free(s);
    lc_job_free(j);
}

/* The pairs (the sync answer's source) set in order into an object, as the
 * answer's env object is built (agentwire.c), make the same object as
 * engine_task_env: every task of both jobs, the clashing name included. */
static char *pairs_as_object(const lc_job_t *j, int r, int i, size_t *n)
{
    json_t *pairs = engine_task_env_pairs(j, r, i, n), *o = json_object();
    const char *p = json_string_value(pairs), *end = p + json_string_length(pairs);
    size_t k = 0;
    while (p < end) {
        const char *name = p;
        p += strlen(p) + 1;
        json_object_set_new(o, name, json_string(p));
        p += strlen(p) + 1;
        k++;
    }
    CHECK(k == *n);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    json_decref(pairs);
    return s;
}

TEST(the_pairs_make_the_same_object_in_the_order_they_are_set)
{
    static const char *const roles[2][2] = {{"ps", "worker_x"}, {"TASK_COUNT_w", "w_HOST_LIST"}};
    for (int k = 0; k < 2; k++) {
        lc_job_t *j = job_of(roles[k][0], roles[k][1]);
        for (int r = 0; r < 2; r++)
            for (int i = 0; i < j->roles[r].instances; i++) {
                size_t n = 0;
                char *want = env_text(j, r, i), *got = pairs_as_object(j, r, i, &n);
                CHECK_STR_EQ(got, want);
                json_t *env = engine_task_env(j, r, i);
                /* the clash is listed twice: one pair more than the object has */
                CHECK(n == json_object_size(env) + (k == 1 ? 1 : 0));
                json_decref(env);
                free(want);
                free(got);
            }
        lc_job_free(j);
    }
}

RUN_TESTS(every_name_value_and_order_is_the_printf_built_ones,
          a_name_two_roles_claim_is_set_once_with_the_last_value,
          the_pairs_make_the_same_object_in_the_order_they_are_set)
