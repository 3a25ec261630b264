/*
 * scenario.c - `pai sim --scenario FILE`: run a scheduler scenario (a YAML
 * data file: cluster + steps + expectations) and print "ok - NAME" or
 * "not ok - NAME" with the failing step.  Format: tests/sched/README.md.
 *
 * The runner keeps what a server would keep (job requests, the allocations
 * of BIND decisions, node health) so that a `restart` step can rebuild the
 * scheduler from a (possibly changed) config and restore running jobs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/util.h"
#include "common/yamltree.h"
#include "sched/sched.h"
#include "sim/sim.h"

#define MAX_ROLES 8
#define MAX_JOBS  256
#define MAX_TASKS 64

typedef struct {
    char id[64], vc[64];
    char role_names[MAX_ROLES][32], skus[MAX_ROLES][32], pins[MAX_ROLES][32];
    char groups[MAX_ROLES][32], withins[MAX_ROLES][32];
    sched_role_t roles[MAX_ROLES];
    sched_request_t req;
    bool running, waiting;
    sched_alloc_t allocs[MAX_TASKS];
    char alloc_nodes[MAX_TASKS][64], alloc_roles[MAX_TASKS][32], alloc_cells[MAX_TASKS][160];
    int alloc_gpus[MAX_TASKS][SCHED_MAX_GPUS_PER_NODE];
    size_t n_allocs;
    bool downgraded;
} sjob_t;

typedef struct {
    const char *file;
    const ynode_t *root;
    sched_t *s;
    sched_opts_t opts;
    sjob_t jobs[MAX_JOBS];
    int n_jobs;
    char health_bad[256][64];
    int n_bad;
    char err[1100];
    int step;
    const sched_decision_t *dec;
    size_t n_dec;
    bool lenient; /* options.lenient: decisions need not all be expected */
} scen_t;

static const char *str_of(const ynode_t *m, const char *key, const char *def)
{
    const ynode_t *n = ynode_get(m, key);
    return n && n->kind == YNODE_SCALAR ? n->str : def;
}

static int64_t int_of(const ynode_t *m, const char *key, int64_t def)
{
    int64_t v;
    return ynode_as_i64(ynode_get(m, key), &v) ? v : def;
}

static bool bool_of(const ynode_t *m, const char *key, bool def)
{
    bool v;
    return ynode_as_bool(ynode_get(m, key), &v) ? v : def;
}

static bool fail(scen_t *sc, const char *fmt, const char *a, const char *b)
{
    char msg[1024], sa[200], sb[200];
    str_copy(sa, a ? a : "", sizeof(sa));
    str_copy(sb, b ? b : "", sizeof(sb));
    snprintf(msg, sizeof(msg), fmt, sa, sb);
    snprintf(sc->err, sizeof(sc->err), "step %d: %s", sc->step, msg);
    return false;
}

/* ---- cluster ----------------------------------------------------------- */

static bool read_config_text(scen_t *sc, const ynode_t *cl, buf_t *b)
{
    const char *inl = str_of(cl, "hived", NULL);
    const char *file = str_of(cl, "hived_file", NULL);
    if (inl)
        return buf_puts(b, inl) == PAI_OK;
    if (file) {
        /* a path from the repository root, e.g. tests/data/reference/... */
        if (buf_read_file(b, file) != PAI_OK)
            return fail(sc, "cannot read %s", file, NULL);
        return true;
    }
    return true;
}

static bool build_uniform(scen_t *sc, const ynode_t *u)
{
    const ynode_t *vcs = ynode_get(u, "vcs");
    const char *names[64];
    int counts[64];
    size_t n = 0;
    for (size_t i = 0; vcs && vcs->kind == YNODE_MAP && i < vcs->n && i < 64; i++) {
        names[n] = vcs->pairs[i].key->str;
        int64_t c = 0;
        ynode_as_i64(vcs->pairs[i].val, &c);
        counts[n++] = (int)c;
    }
    return sched_new_uniform((int)int_of(u, "nodes", 1), (int)int_of(u, "gpus", 8),
                             (int)int_of(u, "rack", 0), names, counts, n, &sc->opts, &sc->s,
                             sc->err, sizeof(sc->err)) == PAI_OK;
}

static bool add_nodes(scen_t *sc, const ynode_t *nodes)
{
    for (size_t i = 0; nodes && nodes->kind == YNODE_SEQ && i < nodes->n; i++) {
        const ynode_t *n = nodes->items[i];
        sched_node_t nd = {.name = str_of(n, "name", ""),
                           .address = str_of(n, "address", NULL),
                           .gpus = (int)int_of(n, "gpus", 0),
                           .sku = str_of(n, "sku", NULL),
                           .cpus = (int)int_of(n, "cpus", 0),
                           .memory_mb = int_of(n, "memory", 0),
                           .healthy = bool_of(n, "healthy", true),
                           .gpus_per_group = (int)int_of(n, "group", 0)};
        pai_err_t rc = sched_node_update(sc->s, &nd);
        if (rc != PAI_OK)
            return fail(sc, "node %s: %s", nd.name, pai_err_msg(rc));
    }
    return true;
}

static bool build_cluster(scen_t *sc, const ynode_t *cl)
{
    sc->s = NULL;
    if (ynode_get(cl, "uniform"))
        return build_uniform(sc, ynode_get(cl, "uniform"));
    buf_t b;
    buf_init(&b, PAI_MAX_CONFIG_FILE);
    bool ok = read_config_text(sc, cl, &b);
    if (ok &&
        sched_new_config(buf_str(&b), b.len, &sc->opts, &sc->s, sc->err, sizeof(sc->err)) != PAI_OK)
        ok = false;
    buf_free(&b);
    if (ok)
        ok = add_nodes(sc, ynode_get(cl, "nodes"));
    return ok;
}

/* ---- jobs -------------------------------------------------------------- */

static sjob_t *find_job(scen_t *sc, const char *id)
{
    for (int i = 0; id && i < sc->n_jobs; i++)
        if (strcmp(sc->jobs[i].id, id) == 0)
            return &sc->jobs[i];
    return NULL;
}

static void fill_role(sjob_t *j, int r, const ynode_t *y)
{
    str_copy(j->role_names[r], str_of(y, "name", r == 0 ? "worker" : "role"),
             sizeof(j->role_names[r]));
    str_copy(j->skus[r], str_of(y, "sku", ""), sizeof(j->skus[r]));
    str_copy(j->pins[r], str_of(y, "pinned", ""), sizeof(j->pins[r]));
    str_copy(j->groups[r], str_of(y, "group", ""), sizeof(j->groups[r]));
    str_copy(j->withins[r], str_of(y, "within", ""), sizeof(j->withins[r]));
    j->roles[r] = (sched_role_t){.name = j->role_names[r],
                                 .instances = (int)int_of(y, "tasks", 1),
                                 .gpus = (int)int_of(y, "gpus", 1),
                                 .cpus = (int)int_of(y, "cpus", 0),
                                 .memory_mb = int_of(y, "memory", 0),
                                 .sku = j->skus[r],
                                 .pinned_cell = j->pins[r],
                                 .affinity_group = j->groups[r],
                                 .within_cell = j->withins[r]};
}

static bool step_submit(scen_t *sc, const ynode_t *y)
{
    if (sc->n_jobs == MAX_JOBS)
        return fail(sc, "too many jobs", NULL, NULL);
    sjob_t *j = &sc->jobs[sc->n_jobs];
    *j = (sjob_t){0};
    str_copy(j->id, str_of(y, "job", ""), sizeof(j->id));
    str_copy(j->vc, str_of(y, "vc", "default"), sizeof(j->vc));
    const ynode_t *roles = ynode_get(y, "roles");
    size_t nr = 1;
    if (roles && roles->kind == YNODE_SEQ) {
        nr = roles->n < MAX_ROLES ? roles->n : MAX_ROLES;
        for (size_t r = 0; r < nr; r++)
            fill_role(j, (int)r, roles->items[r]);
    } else {
        fill_role(j, 0, y);
    }
    j->req = (sched_request_t){.job_id = j->id,
                               .vc = j->vc,
                               .priority = (int)int_of(y, "prio", SCHED_PRIO_TEST),
                               .gang = bool_of(y, "gang", true),
                               .lazy_preempt = bool_of(y, "lazy", false),
                               .submit_ms = int_of(y, "at", 0),
                               .roles = j->roles,
                               .n_roles = nr};
    char err[256];
    pai_err_t rc = sched_submit(sc->s, &j->req, err, sizeof(err));
    const char *want = str_of(y, "error", NULL);
    if (want) {
        if (rc == PAI_OK || !strstr(err, want))
            return fail(sc, "submit should fail with \"%s\", got \"%s\"", want, err);
        return true;
    }
    if (rc != PAI_OK)
        return fail(sc, "submit failed: %s", err, NULL);
    j->waiting = true;
    sc->n_jobs++;
    return true;
}

static void record_bind(scen_t *sc, const sched_decision_t *d)
{
    sjob_t *j = find_job(sc, d->job_id);
    if (!j)
        return;
    for (size_t i = 0; i < d->n_tasks && j->n_allocs < MAX_TASKS; i++) {
        const sched_task_bind_t *t = &d->tasks[i];
        size_t k = j->n_allocs++;
        str_copy(j->alloc_nodes[k], t->node, sizeof(j->alloc_nodes[k]));
        str_copy(j->alloc_roles[k], t->role, sizeof(j->alloc_roles[k]));
        memcpy(j->alloc_gpus[k], t->gpus, sizeof(int) * (size_t)t->n_gpus);
        str_copy(j->alloc_cells[k], t->cell ? t->cell : "", sizeof(j->alloc_cells[k]));
        j->allocs[k] = (sched_alloc_t){.role = j->alloc_roles[k],
                                       .index = t->index,
                                       .node = j->alloc_nodes[k],
                                       .n_gpus = t->n_gpus,
                                       .gpus = j->alloc_gpus[k],
                                       .cell = j->alloc_cells[k]};
    }
    j->running = true;
    j->waiting = false;
}

/* ---- schedule and expectations -------------------------------------------- */

static const sched_decision_t *find_dec(scen_t *sc, sched_kind_t k, const char *job)
{
    for (size_t i = 0; i < sc->n_dec; i++)
        if (sc->dec[i].kind == k && strcmp(sc->dec[i].job_id, job) == 0)
            return &sc->dec[i];
    return NULL;
}

static bool check_bind_nodes(scen_t *sc, const sched_decision_t *d, const ynode_t *e)
{
    const ynode_t *nodes = ynode_get(e, "nodes");
    if (nodes && nodes->kind == YNODE_SEQ) {
        if (nodes->n != d->n_tasks)
            return fail(sc, "bind %s: task count differs from expected nodes", d->job_id, NULL);
        for (size_t i = 0; i < nodes->n; i++)
            if (strcmp(nodes->items[i]->str, d->tasks[i].node) != 0)
                return fail(sc, "bind: expected node %s, got %s", nodes->items[i]->str,
                            d->tasks[i].node);
    }
    const char *same = str_of(e, "same_node", NULL);
    if (same && bool_of(e, "same_node", false))
        for (size_t i = 1; i < d->n_tasks; i++)
            if (strcmp(d->tasks[i].node, d->tasks[0].node) != 0)
                return fail(sc, "bind %s: tasks on different nodes", d->job_id, NULL);
    const ynode_t *in = ynode_get(e, "within");
    if (in && in->kind == YNODE_SEQ)
        for (size_t i = 0; i < d->n_tasks; i++) {
            bool ok = false;
            for (size_t k = 0; k < in->n; k++)
                ok |= strcmp(in->items[k]->str, d->tasks[i].node) == 0;
            if (!ok)
                return fail(sc, "bind %s: node %s not among the expected ones", d->job_id,
                            d->tasks[i].node);
        }
    return true;
}

static bool check_bind_gpus(scen_t *sc, const sched_decision_t *d, const ynode_t *e)
{
    const ynode_t *gpus = ynode_get(e, "gpus");
    if (!gpus || gpus->kind != YNODE_SEQ)
        return true;
    for (size_t i = 0; i < gpus->n && i < d->n_tasks; i++) {
        const ynode_t *g = gpus->items[i];
        if (g->kind != YNODE_SEQ || g->n != (size_t)d->tasks[i].n_gpus)
            return fail(sc, "bind %s: GPU count of a task differs", d->job_id, NULL);
        for (size_t k = 0; k < g->n; k++) {
            int64_t v = -1;
            ynode_as_i64(g->items[k], &v);
            if (v != d->tasks[i].gpus[k]) {
                char got[64];
                snprintf(got, sizeof(got), "task %zu gpu[%zu]=%d", i, k, d->tasks[i].gpus[k]);
                return fail(sc, "bind %s: unexpected GPUs: %s", d->job_id, got);
            }
        }
    }
    return true;
}

static bool check_victims(scen_t *sc, const sched_decision_t *d, const ynode_t *e)
{
    const ynode_t *v = ynode_get(e, "victims");
    if (!v || v->kind != YNODE_SEQ)
        return true;
    if (v->n != d->n_victims)
        return fail(sc, "preempt for %s: victim count differs", d->job_id, NULL);
    for (size_t i = 0; i < v->n; i++) {
        bool found = false;
        for (size_t k = 0; k < d->n_victims; k++)
            found |= strcmp(v->items[i]->str, d->victims[k]) == 0;
        if (!found)
            return fail(sc, "preempt for %s: %s is not a victim", d->job_id, v->items[i]->str);
    }
    return true;
}

static const char *const kind_keys[] = {"bind", "preempt", "wait", "refuse"};

static bool check_one(scen_t *sc, const ynode_t *e, bool *expected)
{
    for (int k = 0; k < 4; k++) {
        const char *job = str_of(e, kind_keys[k], NULL);
        if (!job)
            continue;
        const sched_decision_t *d = find_dec(sc, (sched_kind_t)k, job);
        if (!d)
            return fail(sc, "expected a %s decision for %s", kind_keys[k], job);
        expected[d - sc->dec] = true;
        const char *reason = str_of(e, "reason", NULL);
        if (reason && (!d->reason || !strstr(d->reason, reason)))
            return fail(sc, "reason \"%s\" lacks \"%s\"", d->reason ? d->reason : "", reason);
        const ynode_t *op = ynode_get(e, "oppo");
        if (op && bool_of(e, "oppo", false) != d->opportunistic)
            return fail(sc, "bind %s: opportunistic flag differs", job, NULL);
        return check_bind_nodes(sc, d, e) && check_bind_gpus(sc, d, e) && check_victims(sc, d, e);
    }
    const char *none = str_of(e, "none", NULL);
    if (none) {
        for (size_t i = 0; i < sc->n_dec; i++)
            if (strcmp(sc->dec[i].job_id, none) == 0 && sc->dec[i].kind != SCHED_WAIT)
                return fail(sc, "expected no decision for %s, got %s", none,
                            sched_kind_name(sc->dec[i].kind));
        return true;
    }
    return fail(sc, "unknown expectation", NULL, NULL);
}

static bool step_schedule(scen_t *sc, const ynode_t *y)
{
    if (sched_schedule(sc->s, int_of(y, "at", 0), &sc->dec, &sc->n_dec) != PAI_OK)
        return fail(sc, "sched_schedule failed", NULL, NULL);
    bool expected[4096] = {0};
    for (size_t i = 0; i < sc->n_dec; i++)
        if (sc->dec[i].kind == SCHED_BIND)
            record_bind(sc, &sc->dec[i]);
    const ynode_t *ex = ynode_get(y, "expect");
    for (size_t i = 0; ex && ex->kind == YNODE_SEQ && i < ex->n; i++)
        if (!check_one(sc, ex->items[i], expected))
            return false;
    for (size_t i = 0; i < sc->n_dec; i++) {
        const sched_decision_t *d = &sc->dec[i];
        if (d->kind == SCHED_REFUSE || d->kind == SCHED_PREEMPT)
            find_job(sc, d->job_id) ? (void)0 : (void)0;
        if (d->kind == SCHED_REFUSE) {
            sjob_t *j = find_job(sc, d->job_id);
            if (j)
                j->waiting = false;
        }
        if (d->kind != SCHED_WAIT && i < 4096 && !expected[i] && !sc->lenient)
            return fail(sc, "unexpected %s decision for %s", sched_kind_name(d->kind), d->job_id);
    }
    return true;
}

static bool step_release(scen_t *sc, const ynode_t *y, bool cancel)
{
    const char *id = str_of(y, "job", "");
    pai_err_t rc = cancel ? sched_cancel(sc->s, id) : sched_release(sc->s, id);
    bool want_ok = bool_of(y, "ok", true);
    if (sc->lenient && rc == PAI_E_NO_JOB)
        return true; /* a replayed sequence: the job may have run differently */
    if ((rc == PAI_OK) != want_ok)
        return fail(sc, "%s: unexpected result %s", id, pai_err_msg(rc));
    sjob_t *j = find_job(sc, id);
    if (j && rc == PAI_OK)
        j->running = j->waiting = false, j->n_allocs = 0;
    return true;
}

static bool step_health(scen_t *sc, const ynode_t *y)
{
    const char *node = str_of(y, "node", "");
    bool healthy = bool_of(y, "healthy", true);
    if (sched_node_set_health(sc->s, node, healthy) != PAI_OK)
        return fail(sc, "unknown node %s", node, NULL);
    if (!healthy && sc->n_bad < 256)
        str_copy(sc->health_bad[sc->n_bad++], node, 64);
    for (int i = 0; healthy && i < sc->n_bad; i++)
        if (strcmp(sc->health_bad[i], node) == 0)
            sc->health_bad[i][0] = 0;
    return true;
}

static bool step_restart(scen_t *sc, const ynode_t *y)
{
    for (int i = 0; i < sc->n_jobs; i++) /* what a server keeps for each running job */
        sc->jobs[i].req.opportunistic =
            sc->jobs[i].running && sched_job_opportunistic(sc->s, sc->jobs[i].id);
    sched_free(sc->s);
    const ynode_t *cl = ynode_get(y, "cluster");
    if (!build_cluster(sc, cl ? cl : ynode_get(sc->root, "cluster")))
        return fail(sc, "restart: %s", sc->err, NULL);
    for (int i = 0; i < sc->n_bad; i++)
        if (sc->health_bad[i][0] && sched_node_set_health(sc->s, sc->health_bad[i], false))
            continue;
    bool cells = bool_of(y, "cells", true); /* false: records without cells (older servers) */
    for (int i = 0; i < sc->n_jobs; i++) {
        sjob_t *j = &sc->jobs[i];
        char err[256];
        for (size_t k = 0; !cells && k < j->n_allocs; k++)
            j->alloc_cells[k][0] = '\0';
        if (j->running) {
            pai_err_t rc = sched_restore(sc->s, &j->req, j->allocs, j->n_allocs, &j->downgraded);
            if (rc != PAI_OK)
                return fail(sc, "restore %s: %s", j->id, pai_err_msg(rc));
        } else if (j->waiting && sched_submit(sc->s, &j->req, err, sizeof(err)) != PAI_OK) {
            return fail(sc, "resubmit %s: %s", j->id, err);
        }
    }
    for (int i = 0; i < sc->n_jobs; i++) /* what a server records after its restores */
        for (size_t k = 0; sc->jobs[i].running && k < sc->jobs[i].n_allocs; k++)
            sched_task_cell(sc->s, sc->jobs[i].id, sc->jobs[i].allocs[k].role,
                            sc->jobs[i].allocs[k].index, sc->jobs[i].alloc_cells[k],
                            sizeof(sc->jobs[i].alloc_cells[k]));
    return true;
}

/* {op: cell, job, role, index, cell}: the task's cell now (sched_task_cell();
 * "" for none). */
static bool step_cell(scen_t *sc, const ynode_t *y)
{
    char got[160];
    const char *want = str_of(y, "cell", "");
    sched_task_cell(sc->s, str_of(y, "job", ""), str_of(y, "role", "worker"),
                    (int)int_of(y, "index", 0), got, sizeof(got));
    if (strcmp(got, want) != 0)
        return fail(sc, "cell of %s is '%s'", str_of(y, "job", ""), got);
    return true;
}

static bool step_downgraded(scen_t *sc, const ynode_t *y)
{
    sjob_t *j = find_job(sc, str_of(y, "job", ""));
    if (!j)
        return fail(sc, "unknown job", NULL, NULL);
    if (j->downgraded != bool_of(y, "value", true))
        return fail(sc, "%s: downgraded flag differs", j->id, NULL);
    return true;
}

static bool check_field(scen_t *sc, const ynode_t *y, const char *key, long long got)
{
    int64_t want;
    if (!ynode_as_i64(ynode_get(y, key), &want) || want == got)
        return true;
    char msg[96];
    snprintf(msg, sizeof(msg), "%lld, expected %lld", got, (long long)want);
    return fail(sc, "status %s = %s", key, msg);
}

static bool step_status(scen_t *sc, const ynode_t *y)
{
    sched_vc_status_t rows[64];
    size_t n = sched_vc_status(sc->s, rows, 64);
    const char *vc = str_of(y, "vc", ""), *sku = str_of(y, "sku", NULL);
    for (size_t i = 0; i < n && i < 64; i++) {
        if (strcmp(rows[i].vc, vc) != 0 || (sku && strcmp(rows[i].sku, sku) != 0))
            continue;
        const sched_vc_status_t *r = &rows[i];
        return check_field(sc, y, "guaranteed", r->guaranteed_gpus) &&
               check_field(sc, y, "used", r->used_gpus) &&
               check_field(sc, y, "oppo", r->oppo_gpus) &&
               check_field(sc, y, "total", r->total_gpus) &&
               check_field(sc, y, "doomed", r->doomed_cells) &&
               check_field(sc, y, "bad", r->bad_gpus) &&
               check_field(sc, y, "running", r->running_jobs) &&
               check_field(sc, y, "waiting", r->waiting_jobs);
    }
    return fail(sc, "no status row for VC %s", vc, NULL);
}

static bool step_node(scen_t *sc, const ynode_t *y)
{
    size_t n = sched_node_status(sc->s, NULL, 0);
    sched_node_status_t *rows = xcalloc(n + 1, sizeof(*rows));
    sched_node_status(sc->s, rows, n);
    const char *name = str_of(y, "node", "");
    bool ok = fail(sc, "no node %s", name, NULL);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].name, name) != 0)
            continue;
        sc->err[0] = 0;
        ok = check_field(sc, y, "used", rows[i].used_gpus) &&
             check_field(sc, y, "gpus", rows[i].gpus) && check_field(sc, y, "cpus", rows[i].cpus);
        const char *vc = str_of(y, "vc", NULL);
        if (ok && vc && strcmp(vc, rows[i].vc) != 0)
            ok = fail(sc, "node bound to VC \"%s\", expected \"%s\"", rows[i].vc, vc);
        break;
    }
    free(rows);
    return ok;
}

/* {op: explain, job: j1, reason: "text"}: sched_explain() contains text
 * (several texts: reasons: [..]); {ok: false}: the job is unknown. */
static bool step_explain(scen_t *sc, const ynode_t *y)
{
    const char *id = str_of(y, "job", "");
    char buf[SCHED_EXPLAIN_MAX];
    pai_err_t rc = sched_explain(sc->s, id, buf, sizeof(buf));
    if ((rc == PAI_OK) != bool_of(y, "ok", true))
        return fail(sc, "explain %s: unexpected result %s", id, pai_err_msg(rc));
    const char *want = str_of(y, "reason", NULL);
    if (want && !strstr(buf, want))
        return fail(sc, "explain: \"%s\" lacks \"%s\"", buf, want);
    const ynode_t *list = ynode_get(y, "reasons");
    for (size_t i = 0; list && list->kind == YNODE_SEQ && i < list->n; i++) {
        const char *w = list->items[i]->kind == YNODE_SCALAR ? list->items[i]->str : NULL;
        if (w && !strstr(buf, w))
            return fail(sc, "explain: \"%s\" lacks \"%s\"", buf, w);
    }
    return true;
}

static bool run_step(scen_t *sc, const ynode_t *y)
{
    const char *op = str_of(y, "op", "");
    if (strcmp(op, "submit") == 0)
        return step_submit(sc, y);
    if (strcmp(op, "schedule") == 0)
        return step_schedule(sc, y);
    if (strcmp(op, "release") == 0 || strcmp(op, "cancel") == 0)
        return step_release(sc, y, op[0] == 'c');
    if (strcmp(op, "health") == 0)
        return step_health(sc, y);
    if (strcmp(op, "restart") == 0)
        return step_restart(sc, y);
    if (strcmp(op, "downgraded") == 0)
        return step_downgraded(sc, y);
    if (strcmp(op, "cell") == 0)
        return step_cell(sc, y);
    if (strcmp(op, "status") == 0)
        return step_status(sc, y);
    if (strcmp(op, "node") == 0)
        return step_node(sc, y);
    if (strcmp(op, "explain") == 0)
        return step_explain(sc, y);
    if (strcmp(op, "nodes") == 0)
        return add_nodes(sc, ynode_get(y, "nodes"));
    return fail(sc, "unknown op \"%s\"", op, NULL);
}

static bool run_scenario(scen_t *sc)
{
    const ynode_t *opt = ynode_get(sc->root, "options");
    const char *pol = str_of(opt, "policy", "pai");
    sc->opts = (sched_opts_t){.assume_healthy = true,
                              .starvation_ms = int_of(opt, "starvation_ms", 0),
                              .check = bool_of(opt, "check", true),
                              .quiet_waits = bool_of(opt, "quiet", false)};
    sc->lenient = bool_of(opt, "lenient", false);
    if (sim_policy_parse(pol, &sc->opts.policy) != PAI_OK)
        return fail(sc, "unknown policy %s", pol, NULL);
    const char *want_err = str_of(sc->root, "expect_error", NULL);
    bool built = build_cluster(sc, ynode_get(sc->root, "cluster"));
    if (want_err) {
        if (built)
            return fail(sc, "the cluster should be refused with \"%s\"", want_err, NULL);
        if (!strstr(sc->err, want_err)) {
            char got[400];
            str_copy(got, sc->err, sizeof(got));
            return fail(sc, "refused with \"%s\", expected \"%s\"", got, want_err);
        }
        return true;
    }
    if (!built) {
        char got[400];
        str_copy(got, sc->err, sizeof(got));
        return fail(sc, "cluster refused: %s", got, NULL);
    }
    const ynode_t *steps = ynode_get(sc->root, "steps");
    for (size_t i = 0; steps && steps->kind == YNODE_SEQ && i < steps->n; i++) {
        sc->step = (int)i + 1;
        if (!run_step(sc, steps->items[i]))
            return false;
        const char *first;
        if (sched_check_failures(sc->s, &first) > 0)
            return fail(sc, "invariant violated %s", first, NULL);
    }
    return true;
}

int sim_scenario(const char *path)
{
    buf_t b;
    buf_init(&b, PAI_MAX_CONFIG_FILE);
    scen_t *sc = xcalloc(1, sizeof(*sc));
    ydoc_t *doc = NULL;
    yerr_t yerr;
    int rc = 1;
    if (buf_read_file(&b, path) != PAI_OK) {
        printf("not ok - %s: cannot read\n", path);
        goto out;
    }
    if (ydoc_parse(buf_str(&b), b.len, &doc, &yerr) != PAI_OK) {
        printf("not ok - %s: line %d: %s\n", path, yerr.line, yerr.msg);
        goto out;
    }
    sc->file = path;
    sc->root = ydoc_root(doc);
    if (run_scenario(sc)) {
        printf("ok - %s\n", path);
        rc = 0;
    } else {
        printf("not ok - %s: %s\n", path, sc->err);
    }
out:
    if (sc)
        sched_free(sc->s);
    free(sc);
    ydoc_free(doc);
    buf_free(&b);
    return rc;
}
