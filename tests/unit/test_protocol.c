/* test_protocol.c - job protocol: parsing, defaults, rendering, JSON/YAML out. */
#include <stdlib.h>
#include <string.h>

#include "protocol/exitspec.h"
#include "protocol/job.h"
#include "test.h"

static const char hello[] = "protocolVersion: 2\n"
                            "name: hello-world\n"
                            "type: job\n"
                            "prerequisites:\n"
                            "  - name: img\n"
                            "    type: dockerimage\n"
                            "    uri: ubuntu:22.04\n"
                            "taskRoles:\n"
                            "  worker:\n"
                            "    dockerImage: img\n"
                            "    resourcePerInstance: {gpu: 1}\n"
                            "    commands:\n"
                            "      - echo hello\n";

static job_spec_t *parse_ok(const char *yaml)
{
    job_spec_t *spec = NULL;
    job_errors_t errs;
    job_errors_init(&errs);
    pai_err_t rc = job_parse(yaml, strlen(yaml), "t.yaml", &spec, &errs);
    if (rc != PAI_OK) {
        char *m = job_errors_format(&errs, "t.yaml");
        fprintf(stderr, "  unexpected errors:\n%s", m);
        free(m);
    }
    CHECK_INT_EQ(rc, PAI_OK);
    job_errors_free(&errs);
    return spec;
}

/* The formatted errors of an invalid document (malloc'ed). */
static char *parse_errors(const char *yaml)
{
    job_spec_t *spec = NULL;
    job_errors_t errs;
    job_errors_init(&errs);
    pai_err_t rc = job_parse(yaml, strlen(yaml), "t.yaml", &spec, &errs);
    CHECK(rc != PAI_OK);
    CHECK(spec == NULL);
    char *m = job_errors_format(&errs, "t.yaml");
    job_errors_free(&errs);
    return m;
}

TEST(hello_world_gets_openpai_defaults)
{
    job_spec_t *s = parse_ok(hello);
    if (!s)
        return;
    CHECK_STR_EQ(s->name, "hello-world");
    CHECK_INT_EQ(s->n_roles, 1);
    const job_role_t *r = job_role_find(s, "worker");
    CHECK(r != NULL);
    CHECK_INT_EQ(r->instances, 1);
    CHECK_INT_EQ(r->min_failed, 1);
    CHECK_INT_EQ(r->min_succeeded, 1);
    CHECK_INT_EQ(r->shm_mb, 512);
    CHECK_INT_EQ(r->gpu, 1);
    CHECK_INT_EQ(job_role_ports(r, "ssh"), 1);
    CHECK_INT_EQ(job_role_ports(r, "http"), 1);
    CHECK_STR_EQ(r->docker_image->uri, "ubuntu:22.04");
    CHECK_STR_EQ(s->virtual_cluster, "default");
    CHECK_INT_EQ(s->job_retry_count, 0);
    CHECK(job_gang(s));
    CHECK_INT_EQ(job_spec_priority(s), 10);
    job_spec_free(s);
}

TEST(min_succeeded_defaults_to_instances)
{
    const char *y = "protocolVersion: '2'\nname: j\ntype: job\n"
                    "prerequisites: [{name: i, type: dockerimage, uri: u}]\n"
                    "taskRoles:\n  w:\n    instances: 4\n    dockerImage: i\n"
                    "    resourcePerInstance: {}\n    commands: [x]\n";
    job_spec_t *s = parse_ok(y);
    if (!s)
        return;
    CHECK_INT_EQ(s->roles[0].instances, 4);
    CHECK_INT_EQ(s->roles[0].min_succeeded, 4);
    job_spec_free(s);
}

TEST(renders_parameters_secrets_and_prerequisites)
{
    const char *y = "protocolVersion: 2\nname: j\ntype: job\n"
                    "parameters: {model: resnet, lr: 0.1}\n"
                    "secrets: {token: s3cr3t}\n"
                    "prerequisites:\n"
                    "  - {name: i, type: dockerimage, uri: u}\n"
                    "  - {name: d, type: data, uri: [http://a, http://b]}\n"
                    "  - {name: sc, type: script, uri: github.com/x, contributor: me}\n"
                    "taskRoles:\n  w:\n    dockerImage: i\n    data: d\n    script: sc\n"
                    "    resourcePerInstance: {}\n"
                    "    commands:\n"
                    "      - run <% $parameters.model %> --lr=<%$parameters.lr%>\n"
                    "      - get <% $data.uri[0] %> <% $data.uri %> <% $script.contributor %>\n"
                    "      - login <% $secrets.token %> <% $parameters.nope %> <% $output.uri %>\n";
    job_spec_t *s = parse_ok(y);
    if (!s)
        return;
    char *out = NULL;
    CHECK_INT_EQ(job_render_commands(s, "w", 0, true, &out), PAI_OK);
    CHECK_STR_EQ(out, "run resnet --lr=0.1 &&\n"
                      "get http://a http://a,http://b me &&\n"
                      "login s3cr3t <% $parameters.nope %> <% $output.uri %>\n");
    free(out);
    CHECK_INT_EQ(job_render_commands(s, "w", 0, false, &out), PAI_OK);
    CHECK_STR_CONTAINS(out, "login ****** <%");
    CHECK(strstr(out, "s3cr3t") == NULL);
    free(out);
    CHECK_INT_EQ(job_render_commands(s, "w", 1, false, &out), PAI_E_INVALID);
    CHECK_INT_EQ(job_render_commands(s, "nope", 0, false, &out), PAI_E_NOT_FOUND);
    job_spec_free(s);
}

TEST(deployment_commands_are_applied_once)
{
    const char *y = "protocolVersion: 2\nname: j\ntype: job\n"
                    "prerequisites: [{name: i, type: dockerimage, uri: u}]\n"
                    "taskRoles:\n  w:\n    dockerImage: i\n    resourcePerInstance: {}\n"
                    "    commands: [main]\n"
                    "deployments:\n  - name: prod\n    taskRoles:\n      w:\n"
                    "        preCommands: [pre]\n        postCommands: [post]\n"
                    "defaults: {deployment: prod}\n";
    job_spec_t *s = parse_ok(y);
    if (!s)
        return;
    char *out = NULL;
    CHECK_INT_EQ(job_render_commands(s, "w", 0, false, &out), PAI_OK);
    CHECK_STR_EQ(out, "pre &&\nmain &&\npost\n");
    free(out);
    job_spec_free(s);
}

TEST(json_and_yaml_mask_secrets)
{
    const char *y = "protocolVersion: 2\nname: j\ntype: job\nsecrets: {pw: hunter2}\n"
                    "prerequisites: [{name: i, type: dockerimage, uri: u}]\n"
                    "taskRoles:\n  w:\n    dockerImage: i\n    resourcePerInstance: {}\n"
                    "    commands: [x]\n";
    job_spec_t *s = parse_ok(y);
    if (!s)
        return;
    json_t *j = job_to_json(s, true);
    char *txt = json_dumps(j, JSON_COMPACT);
    CHECK(strstr(txt, "hunter2") == NULL);
    CHECK_STR_CONTAINS(txt, "\"pw\":\"******\"");
    CHECK_STR_CONTAINS(txt, "\"shmMB\":512");
    free(txt);
    json_decref(j);
    j = job_to_json(s, false);
    txt = json_dumps(j, JSON_COMPACT);
    CHECK_STR_CONTAINS(txt, "hunter2");
    free(txt);
    json_decref(j);
    char *yaml = NULL;
    CHECK_INT_EQ(job_to_yaml(s, true, &yaml), PAI_OK);
    CHECK(yaml && strstr(yaml, "hunter2") == NULL);
    job_spec_t *again = parse_ok(yaml);
    CHECK(again != NULL);
    job_spec_free(again);
    free(yaml);
    job_spec_free(s);
}

TEST(errors_carry_line_column_and_path)
{
    const char *y = "protocolVersion: 2\nname: j\ntype: job\n"
                    "prerequisites: [{name: i, type: dockerimage, uri: u}]\n"
                    "taskRoles:\n  w:\n    dockerImage: i\n"
                    "    resourcePerInstance: {gpu: two}\n"
                    "    commands: [x]\n";
    char *m = parse_errors(y);
    CHECK_STR_EQ(m, "t.yaml:8:32: taskRoles.w.resourcePerInstance.gpu: expected an integer, got "
                    "string\n");
    free(m);
}

TEST(priority_classes_map_to_numbers)
{
    CHECK_INT_EQ(job_priority_value(JOB_PRIO_CRIT), 120);
    CHECK_INT_EQ(job_priority_value(JOB_PRIO_PROD), 100);
    CHECK_INT_EQ(job_priority_value(JOB_PRIO_TEST), 10);
    CHECK_INT_EQ(job_priority_value(JOB_PRIO_OPPO), -1);
    job_priority_t p;
    CHECK(job_priority_parse("prod", &p) && p == JOB_PRIO_PROD);
    CHECK(!job_priority_parse("urgent", &p));
}

TEST(exitspec_knows_openpai_codes)
{
    CHECK(exitspec_count() >= 60);
    const exitspec_t *e = exitspec_lookup(EXIT_NODE_LOST);
    CHECK(e != NULL);
    if (e) {
        CHECK_STR_EQ(e->phrase, "PodNodeLost");
        CHECK_INT_EQ(e->type, EXIT_TYPE_PLATFORM_FAILURE);
        CHECK_INT_EQ(e->reaction, EXIT_REACTION_ALWAYS_RETRY);
    }
    e = exitspec_lookup(EXIT_OOM_KILLED);
    CHECK(e && strcmp(e->phrase, "UserContainerDockerOOMKilled") == 0);
    CHECK_STR_EQ(exitspec_for(-4242)->phrase, "ContainerUndefinedNegativeExitCode");
    CHECK_STR_EQ(exitspec_for(77)->phrase, "PAIRuntimeExitAbnormally");
    CHECK_STR_EQ(exitspec_for(0)->phrase, "Succeeded");
    CHECK(!exitspec_should_retry(0, 0, 3));
    CHECK(exitspec_should_retry(EXIT_NODE_LOST, 5, 0));
    CHECK(!exitspec_should_retry(EXIT_IMAGE_NOT_EXISTS, 0, 3));
    CHECK(exitspec_should_retry(EXIT_RUNTIME_UNKNOWN, 1, 3));
    CHECK(!exitspec_should_retry(EXIT_RUNTIME_UNKNOWN, 3, 3));
    json_t *j = exitspec_to_json(exitspec_for(EXIT_SIGKILL));
    CHECK_STR_EQ(json_string_value(json_object_get(j, "phrase")), "ContainerSigKillReceived");
    json_decref(j);
}

RUN_TESTS(hello_world_gets_openpai_defaults, min_succeeded_defaults_to_instances,
          renders_parameters_secrets_and_prerequisites, deployment_commands_are_applied_once,
          json_and_yaml_mask_secrets, errors_carry_line_column_and_path,
          priority_classes_map_to_numbers, exitspec_knows_openpai_codes)
