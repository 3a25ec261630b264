/*
 * cmd_cluster.c - `pai nodes` and `pai vcs`.
 *
 * nodes: GET /api/v2/cluster/nodes (pai; any user), else the admin-only
 *        GET /api/v2/kubernetes/nodes: a Kubernetes-style NodeList
 *        ({items: [{metadata: {name, labels}, status: {capacity,
 *        conditions, addresses}, pai: {usedGpus}}]}).  GPUs used come
 *        from pai.usedGpus, else capacity - allocatable of
 *        "nvidia.com/gpu"; the model from the "pai/sku" label.
 * nodes revoke|rotate NODE: an admin's actions on a node's credential.
 * nodes pending: the nodes waiting for an admin's approval
 *        (nodeInfo.credential "awaiting-approval"); nodes approve NODE:
 *        POST /api/v2/cluster/nodes/{node}/approve.
 * vcs:   GET /api/v2/virtual-clusters -> {vc: VirtualCluster}.
 * usage: GET /api/v2/usage?from=&to=&groupBy= (pai): GPU-hours held and used.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/util.h"

static const cli_opt_t list_opts[] = {
    {.name = "json", .help = "print the server's JSON"},
    {0},
};
static const cli_cmd_t nodes_cmd = {
    .name = "nodes",
    .synopsis = "[--json] | pending | approve NODE | revoke NODE | rotate NODE",
    .summary = "List the cluster's nodes with their GPUs used and free.  Administrators: "
               "`revoke NODE` makes every credential of the node stop working at once (its agent "
               "registers again with the join token; a stolen credential is useless); `rotate "
               "NODE` gives the node a new credential at its next sync, and the old one stops "
               "working once the new one is used; with node_approval: manual, `pending` lists the "
               "nodes waiting for approval (no credential, no task) and `approve NODE` lets one "
               "register.",
    .opts = list_opts,
    .max_pos = 2};
static const cli_cmd_t vcs_cmd = {.name = "vcs",
                                  .synopsis = "[--json]",
                                  .summary = "List virtual clusters with their share and GPU use.",
                                  .opts = list_opts};
static const cli_opt_t usage_opts[] = {
    {.name = "from", .arg = "T", .help = "start of the period (default: 7d, a week ago)"},
    {.name = "to", .arg = "T", .help = "end of the period (default: now)"},
    {.name = "by", .arg = "vc|user|job", .help = "group by VC (default), user or job"},
    {.name = "csv", .help = "print CSV instead of a table"},
    {.name = "json", .help = "print the server's JSON"},
    {0},
};
static const cli_cmd_t usage_cmd = {
    .name = "usage",
    .synopsis = "[--from T] [--to T] [--by vc|user|job] [--csv] [--json]",
    .summary = "GPU-hours held versus GPU-hours used over a period, per VC, user or job "
               "(administrators see every job, users their own).  T is a time ago (30m, 24h, 7d), "
               "milliseconds since the epoch, or an ISO-8601 UTC time (2026-01-31 or "
               "2026-01-31T12:00:00Z).  A job whose GPUs sit idle is marked in the IDLE column "
               "(--by job).",
    .opts = usage_opts};

/* A number that may be written as a JSON integer or a string ("4"). */
static long long jnum(const json_t *v)
{
    if (json_is_integer(v))
        return (long long)json_integer_value(v);
    if (json_is_real(v))
        return (long long)json_real_value(v);
    if (json_is_array(v))
        return (long long)json_array_size(v);
    int64_t n;
    if (json_is_string(v) && str_to_i64(json_string_value(v), 0, INT64_MAX, &n) == PAI_OK)
        return (long long)n;
    return 0;
}

/* Waiting for an admin's approval (node_approval: manual)? */
static bool node_awaiting(const json_t *n)
{
    const json_t *info = json_object_get(json_object_get(n, "status"), "nodeInfo");
    return strcmp(cli_jstr(info, "credential"), "awaiting-approval") == 0;
}

static const char *node_ready(const json_t *n)
{
    const char *flat = cli_jstr(n, "state");
    if (*flat)
        return flat;
    if (node_awaiting(n))
        return "AwaitingApproval";
    /* pai: a bad GPU makes the node's cell bad (no new work) */
    if (json_array_size(json_object_get(json_object_get(n, "pai"), "badGpus")) > 0)
        return "BadGPU";
    size_t i;
    json_t *cond;
    json_array_foreach(json_object_get(json_object_get(n, "status"), "conditions"), i, cond)
    {
        if (strcmp(cli_jstr(cond, "type"), "Ready") == 0)
            return strcmp(cli_jstr(cond, "status"), "True") == 0 ? "Ready" : "NotReady";
    }
    return "";
}

static const char *node_address(const json_t *n)
{
    const char *flat = cli_jstr(n, "address");
    if (*flat)
        return flat;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(json_object_get(n, "status"), "addresses"), i, a)
    {
        if (strcmp(cli_jstr(a, "type"), "InternalIP") == 0)
            return cli_jstr(a, "address");
    }
    return "";
}

static void node_row(cli_table_t *t, const json_t *n)
{
    const json_t *st = json_object_get(n, "status");
    const json_t *meta = json_object_get(n, "metadata");
    const char *name = *cli_jstr(n, "name") ? cli_jstr(n, "name") : cli_jstr(meta, "name");
    long long total =
        json_object_get(n, "gpus")
            ? jnum(json_object_get(n, "gpus"))
            : jnum(json_object_get(json_object_get(st, "capacity"), "nvidia.com/gpu"));
    const json_t *pai = json_object_get(n, "pai");
    const json_t *alloc = json_object_get(json_object_get(st, "allocatable"), "nvidia.com/gpu");
    long long used = 0;
    if (json_object_get(pai, "usedGpus"))
        used = jnum(json_object_get(pai, "usedGpus"));
    else if (json_object_get(n, "gpusUsed"))
        used = jnum(json_object_get(n, "gpusUsed"));
    else if (alloc)
        used = total - jnum(alloc);
    const json_t *labels = json_object_get(meta, "labels");
    const char *model = *cli_jstr(n, "gpuModel")       ? cli_jstr(n, "gpuModel")
                        : *cli_jstr(labels, "pai/sku") ? cli_jstr(labels, "pai/sku")
                                                       : cli_jstr(labels, "pai.gpu/model");
    char tot[32], usd[32], fr[32];
    snprintf(tot, sizeof(tot), "%lld", total);
    snprintf(usd, sizeof(usd), "%lld", used);
    snprintf(fr, sizeof(fr), "%lld", total - used);
    const char *cells[] = {name, node_ready(n), node_address(n), model, tot, usd, fr};
    cli_table_row(t, cells);
}

static int list_main(const cli_cmd_t *cmd, int argc, char **argv, const char *path,
                     const char *fallback, void (*print)(const json_t *))
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    cli_ctx_t c;
    cli_resp_t r = {0};
    rc = cli_ctx_load(&c, true);
    if (rc == CLI_OK)
        rc = cli_request(&c, "GET", path, NULL, NULL, 0, fallback ? CLI_QUIET_404 : 0, &r);
    if (rc == CLI_FAIL && fallback && r.status == 404) {
        cli_resp_free(&r);
        rc = cli_get(&c, fallback, &r); /* an OpenPAI server: the Kubernetes view */
    }
    if (rc == CLI_OK) {
        if (cli_flag(&a, "json"))
            cli_print_json(r.json);
        else
            print(r.json);
    }
    cli_resp_free(&r);
    cli_ctx_free(&c);
    return rc;
}

static void print_node_table(const json_t *j, bool awaiting_only)
{
    const json_t *items = json_is_array(j) ? j : json_object_get(j, "items");
    cli_table_t *t = cli_table_new("NODE|STATE|ADDRESS|GPU_MODEL|GPUS|USED|FREE");
    size_t i;
    json_t *n;
    json_array_foreach(items, i, n)
    {
        if (!awaiting_only || node_awaiting(n))
            node_row(t, n);
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
}

static void print_nodes(const json_t *j)
{
    print_node_table(j, false);
}

static void print_pending(const json_t *j)
{
    print_node_table(j, true);
}

/* `pai nodes revoke|rotate|approve NODE`: DELETE
 * /api/v2/cluster/nodes/{node}/credential, POST .../credential/rotate or
 * POST .../approve (docs/operations.md, "Node credentials"). */
static int node_cred_main(const cli_args_t *a)
{
    bool revoke = strcmp(a->pos[0], "revoke") == 0;
    bool approve = strcmp(a->pos[0], "approve") == 0;
    cli_ctx_t c;
    cli_resp_t r = {0};
    int rc = cli_ctx_load(&c, true);
    char *e = cli_escape(a->pos[1]);
    char *path = str_printf("/api/v2/cluster/nodes/%s/%s", e,
                            approve  ? "approve"
                            : revoke ? "credential"
                                     : "credential/rotate");
    if (rc == CLI_OK)
        rc = cli_request(&c, revoke ? "DELETE" : "POST", path, NULL, NULL, 0, 0, &r);
    if (rc == CLI_OK && cli_flag(a, "json"))
        cli_print_json(r.json);
    else if (rc == CLI_OK)
        printf("%s\n", cli_jstr(r.json, "message"));
    cli_resp_free(&r);
    free(path);
    free(e);
    cli_ctx_free(&c);
    return rc;
}

int cli_nodes_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&nodes_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    if (a.npos == 0 || (a.npos == 1 && strcmp(a.pos[0], "list") == 0))
        return list_main(&nodes_cmd, argc, argv, "/api/v2/cluster/nodes",
                         "/api/v2/kubernetes/nodes", print_nodes);
    if (a.npos == 1 && strcmp(a.pos[0], "pending") == 0)
        return list_main(&nodes_cmd, argc, argv, "/api/v2/cluster/nodes", NULL, print_pending);
    if (a.npos == 2 && (strcmp(a.pos[0], "revoke") == 0 || strcmp(a.pos[0], "rotate") == 0 ||
                        strcmp(a.pos[0], "approve") == 0))
        return node_cred_main(&a);
    fprintf(stderr, "usage: pai nodes %s\n", nodes_cmd.synopsis);
    return CLI_USAGE;
}

static void vc_row(cli_table_t *t, const char *name, const json_t *vc)
{
    char cap[32], maxc[32], used[32], total[32], gused[32];
    cli_jfmt(vc, "capacity", cap, sizeof(cap));
    cli_jfmt(vc, "maxCapacity", maxc, sizeof(maxc));
    cli_jfmt(vc, "usedCapacity", used, sizeof(used));
    snprintf(gused, sizeof(gused), "%lld",
             jnum(json_object_get(json_object_get(vc, "resourcesUsed"), "GPUs")));
    const json_t *tot = json_object_get(vc, "resourcesTotal");
    if (!tot)
        tot = json_object_get(vc, "resourcesGuaranteed");
    snprintf(total, sizeof(total), "%lld", jnum(json_object_get(tot, "GPUs")));
    const char *cells[] = {name, cap, maxc, used, gused, total, cli_jstr(vc, "status")};
    cli_table_row(t, cells);
}

static void print_vcs(const json_t *j)
{
    cli_table_t *t = cli_table_new("VC|CAPACITY|MAX|USED|GPUS_USED|GPUS_TOTAL|STATUS");
    const char *name;
    json_t *vc;
    json_object_foreach((json_t *)j, name, vc) vc_row(t, name, vc);
    cli_table_print(t, stdout);
    cli_table_free(t);
}

int cli_vcs_main(int argc, char **argv)
{
    return list_main(&vcs_cmd, argc, argv, "/api/v2/virtual-clusters", NULL, print_vcs);
}

/* T of --from/--to as the API's query value (malloc'ed): "24h" (ago) as
 * milliseconds since the epoch; anything else as given (escaped). */
static char *usage_time(const char *t)
{
    char *end = NULL;
    double n = strtod(t, &end);
    long long unit = 0;
    if (end && end != t && end[0] && !end[1] && isdigit((unsigned char)t[0])) {
        unit = end[0] == 's'   ? 1000LL
               : end[0] == 'm' ? 60000LL
               : end[0] == 'h' ? 3600000LL
               : end[0] == 'd' ? 86400000LL
               : end[0] == 'w' ? 7 * 86400000LL
                               : 0;
    }
    if (unit && n >= 0)
        return str_printf("%lld", (long long)(time_wall_ms() - (long long)(n * (double)unit)));
    return cli_escape(t);
}

static void usage_cells(const json_t *row, const char *by, const char *cells[7], char num[3][32])
{
    cli_jfmt(row, "heldGpuHours", num[0], 32);
    cli_jfmt(row, "usedGpuHours", num[1], 32);
    const json_t *u = json_object_get(row, "utilization");
    if (json_is_number(u))
        snprintf(num[2], 32, "%.0f%%", json_number_value(u) * 100);
    else
        snprintf(num[2], 32, "-");
    cells[0] = cli_jstr(row, strcmp(by, "job") == 0 ? "job" : by);
    cells[1] = num[0];
    cells[2] = num[1];
    cells[3] = num[2];
    cells[4] = cli_jstr(row, "vc");
    cells[5] = cli_jstr(row, "state");
    cells[6] = json_is_true(json_object_get(row, "gpuIdle")) ? "idle" : "";
}

static void csv_field(const char *s, bool last)
{
    if (strpbrk(s, ",\"\n")) {
        putchar('"');
        for (; *s; s++) {
            if (*s == '"')
                putchar('"');
            putchar(*s);
        }
        putchar('"');
    } else {
        fputs(s, stdout);
    }
    putchar(last ? '\n' : ',');
}

static void print_usage(const json_t *j, const char *by, bool csv)
{
    bool job = strcmp(by, "job") == 0;
    int ncols = job ? 7 : 4;
    const char *hdr[] = {job                       ? "JOB"
                         : strcmp(by, "user") == 0 ? "USER"
                                                   : "VC",
                         "HELD_GPU_HOURS",
                         "USED_GPU_HOURS",
                         "UTILIZATION",
                         "VC",
                         "STATE",
                         "IDLE"};
    cli_table_t *t = NULL;
    if (csv) {
        for (int k = 0; k < ncols; k++)
            csv_field(hdr[k], k == ncols - 1);
    } else {
        t = cli_table_new(job ? "JOB|HELD_GPU_HOURS|USED_GPU_HOURS|UTILIZATION|VC|STATE|IDLE"
                          : strcmp(by, "user") == 0
                              ? "USER|HELD_GPU_HOURS|USED_GPU_HOURS|UTILIZATION"
                              : "VC|HELD_GPU_HOURS|USED_GPU_HOURS|UTILIZATION");
    }
    size_t i;
    json_t *row;
    const char *cells[7];
    char num[3][32];
    json_array_foreach(json_object_get(j, "rows"), i, row)
    {
        usage_cells(row, by, cells, num);
        if (csv)
            for (int k = 0; k < ncols; k++)
                csv_field(cells[k], k == ncols - 1);
        else
            cli_table_row(t, cells);
    }
    if (t) {
        usage_cells(json_object_get(j, "total"), by, cells, num);
        cells[0] = "(total)";
        cells[4] = cells[5] = cells[6] = "";
        cli_table_row(t, cells);
        cli_table_print(t, stdout);
        cli_table_free(t);
    }
}

int cli_usage_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&usage_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    const char *by = cli_opt(&a, "by") ? cli_opt(&a, "by") : "vc";
    if (strcmp(by, "vc") != 0 && strcmp(by, "user") != 0 && strcmp(by, "job") != 0) {
        fprintf(stderr, "pai usage: --by must be vc, user or job\n");
        return CLI_USAGE;
    }
    char *from = usage_time(cli_opt(&a, "from") ? cli_opt(&a, "from") : "7d");
    char *to = cli_opt(&a, "to") ? usage_time(cli_opt(&a, "to")) : NULL;
    char *path = str_printf("/api/v2/usage?groupBy=%s&from=%s%s%s", by, from, to ? "&to=" : "",
                            to ? to : "");
    free(from);
    free(to);
    cli_ctx_t c;
    cli_resp_t r = {0};
    rc = cli_ctx_load(&c, true);
    if (rc == CLI_OK)
        rc = cli_get(&c, path, &r);
    if (rc == CLI_OK) {
        if (cli_flag(&a, "json"))
            cli_print_json(r.json);
        else
            print_usage(r.json, by, cli_flag(&a, "csv"));
    }
    free(path);
    cli_resp_free(&r);
    cli_ctx_free(&c);
    return rc;
}
