/*
 * test_cli.c - unit tests of the CLI's pure parts: the argument tables,
 * table output, job names and paths, YAML -> JSON for --param, and the
 * nodes `pai up --hived-config` derives from a HiveD config.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/submit.h"
#include "cli/up.h"
#include "common/util.h"
#include "common/yamltree.h"
#include "test.h"

static const cli_opt_t opts[] = {
    {"role", "R", "role", false},
    {"json", NULL, "json", false},
    {"param", "K=V", "param", true},
    {0},
};
static const cli_cmd_t cmd = {"logs", "NAME", "summary", opts, 1, 2};

static int parse(cli_args_t *a, int argc, char **argv)
{
    bool done = false;
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w"); /* usage errors are printed; keep the output clean */
    int rc = cli_args_parse(&cmd, argc, argv, a, &done);
    fclose(stderr);
    stderr = saved;
    return rc;
}

TEST(args_take_options_in_both_spellings_and_positionals)
{
    char *argv[] = {"logs", "job1", "--role", "worker", "--json", "--param=a=1", "--param", "b=2"};
    cli_args_t a;
    CHECK_INT_EQ(parse(&a, 8, argv), CLI_OK);
    CHECK_INT_EQ(a.npos, 1);
    CHECK_STR_EQ(a.pos[0], "job1");
    CHECK_STR_EQ(cli_opt(&a, "role"), "worker");
    CHECK(cli_flag(&a, "json"));
    CHECK_INT_EQ(a.nrep, 2);
    CHECK_STR_EQ(a.rep[0], "a=1");
    CHECK_STR_EQ(a.rep[1], "b=2");
    CHECK(cli_opt(&a, "nosuch") == NULL);
}

TEST(args_refuse_unknown_missing_and_extra)
{
    cli_args_t a;
    char *unknown[] = {"logs", "j", "--bogus"};
    CHECK_INT_EQ(parse(&a, 3, unknown), CLI_USAGE);
    char *novalue[] = {"logs", "j", "--role"};
    CHECK_INT_EQ(parse(&a, 3, novalue), CLI_USAGE);
    char *flagval[] = {"logs", "j", "--json=1"};
    CHECK_INT_EQ(parse(&a, 3, flagval), CLI_USAGE);
    char *none[] = {"logs"};
    CHECK_INT_EQ(parse(&a, 1, none), CLI_USAGE);
    char *extra[] = {"logs", "a", "b", "c"};
    CHECK_INT_EQ(parse(&a, 4, extra), CLI_USAGE);
    char *dashdash[] = {"logs", "--", "--role"};
    CHECK_INT_EQ(parse(&a, 3, dashdash), CLI_OK);
    CHECK_STR_EQ(a.pos[0], "--role");
}

TEST(args_int_option_bounds)
{
    char *argv[] = {"logs", "j", "--role", "12"};
    cli_args_t a;
    int v = 0;
    CHECK_INT_EQ(parse(&a, 4, argv), CLI_OK);
    CHECK_INT_EQ(cli_opt_int(&a, "role", 0, 100, 5, &v), CLI_OK);
    CHECK_INT_EQ(v, 12);
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    CHECK_INT_EQ(cli_opt_int(&a, "role", 0, 10, 5, &v), CLI_USAGE);
    fclose(stderr);
    stderr = saved;
    CHECK_INT_EQ(cli_opt_int(&a, "json", 0, 10, 5, &v), CLI_OK); /* absent: default */
    CHECK_INT_EQ(v, 5);
}

TEST(help_lists_every_option)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cli_print_help(&cmd, f);
    fclose(f);
    CHECK_STR_CONTAINS(text, "usage: pai logs NAME");
    CHECK_STR_CONTAINS(text, "--role R");
    CHECK_STR_CONTAINS(text, "--param K=V");
    CHECK_STR_CONTAINS(text, "--help");
    free(text);
}

TEST(table_aligns_columns_and_fills_empty_cells)
{
    cli_table_t *t = cli_table_new("NAME|STATE|GPUS");
    const char *r1[] = {"alice~a-long-name", "RUNNING", "4"};
    const char *r2[] = {"b", "", "multi\nline"};
    cli_table_row(t, r1);
    cli_table_row(t, r2);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cli_table_print(t, f);
    fclose(f);
    cli_table_free(t);
    CHECK_STR_EQ(text, "NAME               STATE    GPUS\n"
                       "alice~a-long-name  RUNNING  4\n"
                       "b                  -        multi line\n");
    free(text);
}

TEST(job_names_and_paths)
{
    cli_ctx_t c = {.user = "bob"};
    char *a = cli_job_fullname(&c, "train");
    char *b = cli_job_fullname(&c, "alice~train");
    CHECK_STR_EQ(a, "bob~train");
    CHECK_STR_EQ(b, "alice~train");
    char *p = cli_job_path("alice~tr ain", "/tag");
    CHECK_STR_EQ(p, "/api/v2/jobs/alice~tr%20ain/tag");
    free(a);
    free(b);
    free(p);
}

static int hived(const char *path, up_node_t *n)
{
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    int k = up_hived_nodes(path, n, UP_MAX_NODES);
    fclose(stderr);
    stderr = saved;
    return k;
}

TEST(hived_nodes_of_the_multi_vc_example)
{
    up_node_t n[UP_MAX_NODES];
    CHECK_INT_EQ(hived("examples/cluster-multi-vc.yaml", n), 3);
    CHECK_STR_EQ(n[0].name, "node-1");
    CHECK_STR_EQ(n[2].name, "node-3");
    CHECK_STR_EQ(n[0].gpu_model, "SIM-GPU");
    CHECK_INT_EQ(n[0].gpus, 4);
}

static int hived_ref(const char *name, up_node_t *n)
{
    /* the HiveD example configs copied into the repository (tests/data/) */
    char *p = str_printf("tests/data/reference/hived-configs/%s", name);
    int k = hived(p, n);
    free(p);
    return k;
}

TEST(hived_nodes_of_reference_configs)
{
    up_node_t n[UP_MAX_NODES];
    /* 4 K80 nodes and 1 M60 node, 4 GPUs each (2 x 2-GPU cells). */
    CHECK_INT_EQ(hived_ref("hived-config-2.yaml", n), 5);
    CHECK_STR_EQ(n[0].name, "10.151.41.18");
    CHECK_STR_EQ(n[0].gpu_model, "K80");
    CHECK_INT_EQ(n[0].gpus, 4);
    CHECK_STR_EQ(n[4].name, "10.151.41.26");
    CHECK_STR_EQ(n[4].gpu_model, "M60");
    CHECK_INT_EQ(hived_ref("basic.yaml", n), 3);
    CHECK_INT_EQ(n[1].gpus, 4);
}

TEST(hived_refuses_files_without_nodes)
{
    up_node_t n[UP_MAX_NODES];
    CHECK_INT_EQ(hived_ref("default.yaml", n), -1);
    CHECK_INT_EQ(hived("no/such/file.yaml", n), -1);
}

RUN_TESTS(args_take_options_in_both_spellings_and_positionals,
          args_refuse_unknown_missing_and_extra, args_int_option_bounds, help_lists_every_option,
          table_aligns_columns_and_fills_empty_cells, job_names_and_paths,
          hived_nodes_of_the_multi_vc_example, hived_nodes_of_reference_configs,
          hived_refuses_files_without_nodes)
