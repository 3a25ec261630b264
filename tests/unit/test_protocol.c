/* test_protocol.c - job protocol: parsing, defaults, rendering, JSON/YAML out. */
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
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

/* Every code exitcodes.h names is a row of the table, with the phrase its
 * comment gives; the shell's and the signal base are not rows. */
TEST(named_exit_codes_are_rows_of_the_table)
{
    static const struct {
        int code;
        const char *phrase;
    } named[] = {
        {EXIT_SUCCEEDED, "Succeeded"},
        {EXIT_POD_EXTERNAL_DELETED, "PodExternalDeleted"},
        {EXIT_CREATION_TRANSIENT, "PodCreationTransientError"},
        {EXIT_CREATION_PERMANENT, "PodCreationPermanentError"},
        {EXIT_STOP_REQUESTED, "StopFrameworkRequested"},
        {EXIT_ATTEMPT_COMPLETION, "FrameworkAttemptCompletion"},
        {EXIT_DELETE_TASK_REQUESTED, "DeleteTaskRequested"},
        {EXIT_FAILED_NO_CONTAINER, "PodFailedWithoutFailedContainer"},
        {EXIT_CREATION_UNKNOWN, "PodCreationUnknownError"},
        {EXIT_EVICTED, "PodEvicted"},
        {EXIT_NODE_LOST, "PodNodeLost"},
        {EXIT_INSUFFICIENT_RESOURCE, "PodScheduledToInsufficientResourceNode"},
        {EXIT_PREEMPTED, "PodPreemptedForCriticalPod"},
        {EXIT_DEADLINE_EXCEEDED, "PodDeadlineExceeded"},
        {EXIT_ADMISSION_FORBIDDEN, "PodNodeAdmissionForbidden"},
        {EXIT_CREATE_FRAMEWORK_FAILED, "CreateFrameworkPermanentFailed"},
        {EXIT_OOM_KILLED, "UserContainerDockerOOMKilled"},
        {EXIT_CONTAINER_CREATION, "ContainerDockerCreationError"},
        {EXIT_CMD_PERMISSION_DENIED, "ContainerDockerStartCmdPermissionDenied"},
        {EXIT_CMD_NOT_FOUND, "ContainerDockerStartCmdNotFound"},
        {EXIT_CONTAINER_START_UNKNOWN, "ContainerDockerStartUnknownError"},
        {EXIT_GPU_NOT_FOUND, "ContainerGpuDeviceNotFoundError"},
        {EXIT_INIT_OOM_KILLED, "InitContainerDockerOOMKilled"},
        {EXIT_SIGKILL, "ContainerSigKillReceived"},
        {EXIT_SIGTERM, "ContainerSigTermReceived"},
        {EXIT_USER_ERROR, "UserCommandExitWithError"},
        {EXIT_SSH_BARRIER_TIMEOUT, "PAIRuntimeSSHBarrierTimeout"},
        {EXIT_BARRIER_TRANSIENT, "FrameworkBarrierTransientFailed"},
        {EXIT_GANG_TIMEOUT, "JobGangAllocationTimeout"},
        {EXIT_BARRIER_PERMANENT, "FrameworkBarrierPermanentFailed"},
        {EXIT_PORT_CONFLICT, "ContainerPortConflict"},
        {EXIT_IMAGE_NOT_EXISTS, "ContainerImageNotExists"},
        {EXIT_RUNTIME_UNKNOWN, "PAIRuntimeUnknownFailed"},
        {EXIT_UNDEFINED_NEGATIVE, "ContainerUndefinedNegativeExitCode"},
        {EXIT_UNDEFINED_POSITIVE, "PAIRuntimeExitAbnormally"},
    };
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        const exitspec_t *e = exitspec_lookup(named[i].code);
        CHECK(e != NULL);
        if (e)
            CHECK_STR_EQ(e->phrase, named[i].phrase);
    }
    CHECK(exitspec_lookup(EXIT_SHELL_CANNOT_EXECUTE) == NULL);
    CHECK(exitspec_lookup(EXIT_SHELL_NOT_FOUND) == NULL);
    CHECK_STR_EQ(exitspec_lookup(EXIT_SIGNAL_BASE + 9)->phrase, "ContainerSigKillReceived");
    CHECK_STR_EQ(exitspec_lookup(EXIT_SIGNAL_BASE + 15)->phrase, "ContainerSigTermReceived");
}

static const char base_head[] = "protocolVersion: 2\nname: j\ntype: job\n"
                                "prerequisites: [{name: i, type: dockerimage, uri: u}]\n";

/* A one-role job whose role "w" has the given extra role lines. */
static char *job_with(const char *top, const char *role_lines)
{
    return str_printf("%s%staskRoles:\n  w:\n    dockerImage: i\n    resourcePerInstance: {}\n"
                      "%s",
                      base_head, top, role_lines);
}

static char *render_w(const job_spec_t *s, bool secrets)
{
    char *out = NULL;
    CHECK_INT_EQ(job_render_commands(s, "w", 0, secrets, &out), PAI_OK);
    return out;
}

TEST(unresolvable_references_are_left_as_written)
{
    char *y =
        job_with("parameters: {a: 1}\n",
                 "    commands:\n"
                 "      - 'x <% parameters.a %> <% $nope.a %> <% $parameters %> <% $data.uri %>'\n"
                 "      - 'y <% $parameters.a.b %> <% $parameters.a %> <% $parameters.a'\n");
    job_spec_t *s = parse_ok(y);
    free(y);
    if (!s)
        return;
    char *out = render_w(s, false);
    CHECK_STR_EQ(out, "x <% parameters.a %> <% $nope.a %> <% $parameters %> <% $data.uri %> &&\n"
                      "y <% $parameters.a.b %> 1 <% $parameters.a\n");
    free(out);
    job_spec_free(s);
}

TEST(template_paths_index_lists_and_maps)
{
    char *y =
        job_with("parameters:\n  lr: 0.10\n  l: [a, b, c]\n  m: {k: v, n: [1, 2]}\n"
                 "  e: ''\n",
                 "    commands:\n"
                 "      - '<%$parameters.lr%> <% $parameters.l[2] %> <% $parameters.l.1 %>'\n"
                 "      - '<% $parameters.m.n[1] %> <% $parameters.m %> <% $parameters.l %>'\n"
                 "      - 'e=[<% $parameters.e %>] <% $parameters.l[3] %>'\n");
    job_spec_t *s = parse_ok(y);
    free(y);
    if (!s)
        return;
    char *out = render_w(s, false);
    CHECK_STR_EQ(out, "0.10 c b &&\n2 {\"k\":\"v\",\"n\":[1,2]} a,b,c &&\n"
                      "e=[] <% $parameters.l[3] %>\n");
    free(out);
    CHECK_STR_EQ(job_parameter(s, "lr"), "0.10");
    CHECK_STR_EQ(job_parameter(s, "l"), "[\"a\",\"b\",\"c\"]");
    job_spec_free(s);
}

TEST(render_string_masks_secrets_outside_tasks)
{
    char *y = job_with("secrets: {pw: hunter2}\nparameters: {user: bob}\n", "    commands: [x]\n");
    job_spec_t *s = parse_ok(y);
    free(y);
    if (!s)
        return;
    char *out = NULL;
    CHECK_INT_EQ(
        job_render_string(s, NULL, "<% $parameters.user %>:<% $secrets.pw %>", false, &out),
        PAI_OK);
    CHECK_STR_EQ(out, "bob:******");
    free(out);
    CHECK_INT_EQ(job_render_string(s, NULL, "<% $secrets.pw %>", true, &out), PAI_OK);
    CHECK_STR_EQ(out, "hunter2");
    free(out);
    CHECK_INT_EQ(job_render_string(s, NULL, "", true, &out), PAI_OK);
    CHECK_STR_EQ(out, "");
    free(out);
    CHECK_INT_EQ(job_render_string(s, "nope", "x", true, &out), PAI_E_NOT_FOUND);
    CHECK_STR_EQ(job_secret(s, "pw"), "hunter2");
    job_spec_free(s);
}

TEST(extras_hived_plugins_and_ports_are_read)
{
    const char *y = "protocolVersion: 2\nname: j\ntype: job\nversion: 1.0\n"
                    "prerequisites: [{name: i, type: dockerimage, uri: u}]\n"
                    "taskRoles:\n  w:\n    instances: 2\n    dockerImage: i\n"
                    "    extraContainerOptions: {shmMB: 64, infiniband: true}\n"
                    "    resourcePerInstance: {gpu: 8, cpu: 4, memoryMB: 8192,"
                    " ports: {ssh: 0, tb: 2}}\n"
                    "    commands: [x]\n"
                    "defaults: {virtualCluster: vc1}\n"
                    "extras:\n"
                    "  gangAllocation: false\n"
                    "  submitFrom: cli\n"
                    "  hivedScheduler:\n"
                    "    jobPriorityClass: prod\n"
                    "    lazyPreemptionEnable: true\n"
                    "    taskRoles:\n"
                    "      w: {skuType: DGX2-V100, skuNum: 8, affinityGroupName: ag}\n"
                    "  com.microsoft.pai.runtimeplugin:\n"
                    "    - plugin: ssh\n      parameters: {jobssh: true}\n"
                    "    - plugin: tensorboard\n"
                    "  storages: [{name: nfs, mountPath: /mnt/nfs}]\n"
                    "  jobStatusChangeNotification: {running: true}\n"
                    "  someOtherPlugin: {anything: [1, 2]}\n";
    job_spec_t *s = parse_ok(y);
    if (!s)
        return;
    const job_role_t *r = &s->roles[0];
    CHECK_STR_EQ(s->version, "1.0");
    CHECK_INT_EQ(r->shm_mb, 64);
    CHECK(r->infiniband);
    CHECK_INT_EQ(r->cpu, 4);
    CHECK_INT_EQ(r->memory_mb, 8192);
    CHECK_INT_EQ(job_role_ports(r, "ssh"), 0);
    CHECK_INT_EQ(job_role_ports(r, "tb"), 2);
    CHECK_INT_EQ(job_role_ports(r, "http"), 1);
    CHECK_INT_EQ(r->n_ports, 3);
    CHECK_STR_EQ(s->virtual_cluster, "vc1");
    CHECK(!job_gang(s));
    CHECK_STR_EQ(s->extras.submit_from, "cli");
    CHECK(s->extras.has_hived);
    CHECK_INT_EQ(job_spec_priority(s), 100);
    CHECK(s->extras.lazy_preemption);
    CHECK(!s->extras.gang_release);
    CHECK_STR_EQ(r->sku_type, "DGX2-V100");
    CHECK_INT_EQ(r->sku_number, 8);
    CHECK_STR_EQ(r->affinity_group_name, "ag");
    CHECK(r->pinned_cell_id == NULL);
    CHECK_INT_EQ(s->extras.n_plugins, 2);
    CHECK_STR_EQ(s->extras.plugins[1].plugin, "tensorboard");
    CHECK(json_is_object(s->extras.plugins[1].parameters));
    CHECK(json_is_true(json_object_get(s->extras.plugins[0].parameters, "jobssh")));
    CHECK_INT_EQ(json_array_size(s->extras.storages), 1);
    CHECK(json_object_get(s->extras.json, "someOtherPlugin") != NULL);
    CHECK_INT_EQ(job_total_tasks(s), 2);
    CHECK_INT_EQ(job_total_gpus(s), 16);
    job_spec_free(s);
}

TEST(prerequisite_fields_and_lookup)
{
    const char *y = "protocolVersion: 2\nname: j\ntype: job\n"
                    "secrets: {pw: x}\n"
                    "prerequisites:\n"
                    "  - {name: i, type: dockerimage, uri: reg/img,"
                    " auth: {username: me, password: '<% $secrets.pw %>', registryuri: reg}}\n"
                    "  - {name: d, type: data, uri: [a, b], plugin: p, extra: kept}\n"
                    "  - {name: i, type: output, uri: hdfs://o, require: [d]}\n"
                    "taskRoles:\n  w:\n    dockerImage: i\n    output: i\n    prerequisites: [d]\n"
                    "    resourcePerInstance: {}\n    commands: [x]\n";
    job_spec_t *s = parse_ok(y);
    if (!s)
        return;
    const job_prereq_t *img = job_prereq_find(s, JOB_PREREQ_DOCKERIMAGE, "i");
    CHECK(img && img->has_auth);
    CHECK_STR_EQ(img->auth_username, "me");
    CHECK_STR_EQ(img->auth_password, "<% $secrets.pw %>");
    const job_prereq_t *d = job_prereq_find(s, JOB_PREREQ_DATA, "d");
    CHECK(d && d->n_uris == 2);
    CHECK_STR_EQ(d->uri, "a");
    CHECK_STR_EQ(json_string_value(json_object_get(d->json, "extra")), "kept");
    CHECK_STR_EQ(s->roles[0].output->uri, "hdfs://o");
    CHECK_STR_EQ(job_prereq_type_name(s->roles[0].output->type), "output");
    CHECK_INT_EQ(s->roles[0].n_prerequisites, 1);
    char *pw = NULL;
    CHECK_INT_EQ(job_render_string(s, "w", img->auth_password, true, &pw), PAI_OK);
    CHECK_STR_EQ(pw, "x");
    free(pw);
    job_spec_free(s);
}

TEST(errors_as_json_and_api_message)
{
    char *y = job_with("", "    instances: 0\n    commands: []\n");
    job_spec_t *s = NULL;
    job_errors_t errs;
    job_errors_init(&errs);
    CHECK_INT_EQ(job_parse(y, strlen(y), NULL, &s, &errs), PAI_E_PROTOCOL);
    free(y);
    CHECK_INT_EQ(errs.n, 2);
    json_t *j = job_errors_to_json(&errs);
    json_t *e0 = json_array_get(j, 0);
    CHECK_STR_EQ(json_string_value(json_object_get(e0, "field")), "taskRoles.w.instances");
    CHECK_INT_EQ(json_integer_value(json_object_get(e0, "line")), 9);
    CHECK_INT_EQ(json_integer_value(json_object_get(e0, "column")), 16);
    CHECK_STR_EQ(json_string_value(json_object_get(e0, "message")), "must be at least 1");
    json_decref(j);
    char *m = job_errors_message(&errs);
    CHECK_STR_EQ(m,
                 "job protocol is invalid: 2 problems: taskRoles.w.instances (line 9, column 16): "
                 "must be at least 1; taskRoles.w.commands (line 10, column 15): must have at "
                 "least one command");
    free(m);
    m = job_errors_format(&errs, NULL);
    CHECK_STR_CONTAINS(m, "<input>:9:16: taskRoles.w.instances: must be at least 1\n");
    free(m);
    job_errors_free(&errs);
}

TEST(error_list_is_capped)
{
    char *big = xcalloc(1, 64 * 1024);
    size_t n = 0;
    n += (size_t)snprintf(big + n, 64 * 1024 - n, "%s", base_head);
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(big + n, 64 * 1024 - n, "junk%d: 1\n", i);
    job_spec_t *s = NULL;
    job_errors_t errs;
    job_errors_init(&errs);
    CHECK_INT_EQ(job_parse(big, n, NULL, &s, &errs), PAI_E_PROTOCOL);
    CHECK_INT_EQ(errs.n, JOB_MAX_ERRORS + 1);
    CHECK_STR_EQ(errs.items[JOB_MAX_ERRORS].reason,
                 "too many problems; only the first 100 are shown");
    job_errors_free(&errs);
    free(big);
}

TEST(oversized_document_is_refused_before_parsing)
{
    size_t len = PAI_MAX_JOB_YAML + 1;
    char *doc = xcalloc(1, len);
    memset(doc, 'a', len);
    job_spec_t *s = NULL;
    job_errors_t errs;
    job_errors_init(&errs);
    CHECK_INT_EQ(job_parse(doc, len, NULL, &s, &errs), PAI_E_TOO_LARGE);
    CHECK(errs.n == 1 && strstr(errs.items[0].reason, "the limit is 4194304 bytes"));
    job_errors_free(&errs);
    CHECK_INT_EQ(job_parse(doc, len, NULL, &s, NULL), PAI_E_TOO_LARGE);
    free(doc);
}

TEST(render_work_is_bounded)
{
    /* 20,000 parameters, 2,000 references to the last one: 40M key looks */
    size_t cap = 1024 * 1024, n = 0;
    char *y = xcalloc(1, cap);
    n += (size_t)snprintf(y + n, cap - n, "%sparameters:\n", base_head);
    for (int i = 0; i < 20000; i++)
        n += (size_t)snprintf(y + n, cap - n, "  p%d: v\n", i);
    n += (size_t)snprintf(y + n, cap - n,
                          "taskRoles:\n  w:\n    dockerImage: i\n    resourcePerInstance: {}\n"
                          "    commands:\n");
    for (int i = 0; i < 2000; i++)
        n += (size_t)snprintf(y + n, cap - n, "      - 'echo <%% $parameters.p19999 %%>'\n");
    job_spec_t *s = parse_ok(y);
    free(y);
    if (!s)
        return;
    char *out = NULL;
    CHECK_INT_EQ(job_render_commands(s, "w", 0, false, &out), PAI_E_TOO_LARGE);
    CHECK(out == NULL);
    job_spec_free(s);
}

TEST(exitspec_table_is_complete_and_sorted)
{
    CHECK_INT_EQ(exitspec_count(), 62);
    for (size_t i = 1; i < exitspec_count(); i++)
        CHECK(exitspec_at(i - 1)->code < exitspec_at(i)->code);
    CHECK(exitspec_at(exitspec_count()) == NULL);
    const exitspec_t *e = exitspec_lookup(EXIT_STOP_REQUESTED);
    CHECK(e && strcmp(e->phrase, "StopFrameworkRequested") == 0 && e->type == EXIT_TYPE_USER_STOP);
    e = exitspec_lookup(EXIT_GANG_TIMEOUT);
    CHECK(e && e->reaction == EXIT_REACTION_ALWAYS_BACKOFF_RETRY && e->n_solution == 4);
    CHECK(!exitspec_retry_counts(EXIT_NODE_LOST));
    CHECK(exitspec_retry_counts(EXIT_RUNTIME_UNKNOWN));
    CHECK_STR_EQ(exit_behavior_name(EXIT_BEHAVIOR_TRANSIENT_CONFLICT), "TRANSIENT_CONFLICT");
    CHECK_STR_EQ(exit_reaction_name(EXIT_REACTION_NEVER_RETRY), "NEVER_RETRY");
    CHECK_STR_EQ(exit_type_name(EXIT_TYPE_RESOURCE_ALLOCATION_TIMEOUT),
                 "RESOURCE_ALLOCATION_TIMEOUT");
    CHECK(exitspec_lookup(1) == NULL);
}

TEST(lint_reports_unresolved_references_with_positions)
{
    char *y =
        job_with("parameters: {a: 1}\n", "    commands:\n"
                                         "      - 'ok <% $parameters.a %> <% $other %>'\n"
                                         "      - 'bad <% $parameters.b %> <% $script.uri %>'\n");
    job_spec_t *s = parse_ok(y);
    free(y);
    if (!s)
        return;
    job_errors_t w;
    job_errors_init(&w);
    CHECK_INT_EQ(job_lint(s, &w), 2);
    char *m = job_errors_format(&w, "f");
    CHECK_STR_EQ(m, "f:12:9: taskRoles.w.commands[1]: reference <% $parameters.b %> does not "
                    "resolve and is left as written\n"
                    "f:12:9: taskRoles.w.commands[1]: reference <% $script.uri %> does not resolve "
                    "and is left as written\n");
    free(m);
    job_errors_free(&w);
    job_spec_free(s);
}

RUN_TESTS(hello_world_gets_openpai_defaults, named_exit_codes_are_rows_of_the_table,
          min_succeeded_defaults_to_instances, renders_parameters_secrets_and_prerequisites,
          deployment_commands_are_applied_once, json_and_yaml_mask_secrets,
          errors_carry_line_column_and_path, priority_classes_map_to_numbers,
          exitspec_knows_openpai_codes, unresolvable_references_are_left_as_written,
          template_paths_index_lists_and_maps, render_string_masks_secrets_outside_tasks,
          extras_hived_plugins_and_ports_are_read, prerequisite_fields_and_lookup,
          errors_as_json_and_api_message, error_list_is_capped,
          oversized_document_is_refused_before_parsing, render_work_is_bounded,
          exitspec_table_is_complete_and_sorted, lint_reports_unresolved_references_with_positions)
