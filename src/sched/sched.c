/* sched.c - temporary stub: the API compiles; the real scheduler lands next. */
#include "sched/sched.h"

#include <stdlib.h>

#include "common/util.h"

struct sched {
    int unused;
};

pai_err_t sched_new_config(const char *yaml, size_t len, const sched_opts_t *opts, sched_t **out,
                           char *err, size_t errlen)
{
    (void)yaml;
    (void)len;
    (void)opts;
    *out = NULL;
    if (err && errlen)
        str_copy(err, "scheduler not built yet", errlen);
    return PAI_E_NOT_IMPLEMENTED;
}

pai_err_t sched_new_nodes(const sched_opts_t *opts, sched_t **out)
{
    (void)opts;
    *out = xcalloc(1, sizeof(sched_t));
    return PAI_OK;
}

pai_err_t sched_new_uniform(int nodes, int gpus_per_node, int rack_nodes,
                            const char *const *vc_names, const int *vc_nodes, size_t n_vcs,
                            const sched_opts_t *opts, sched_t **out, char *err, size_t errlen)
{
    (void)nodes, (void)gpus_per_node, (void)rack_nodes, (void)vc_names, (void)vc_nodes, (void)n_vcs;
    return sched_new_config(NULL, 0, opts, out, err, errlen);
}

void sched_free(sched_t *s)
{
    free(s);
}

pai_err_t sched_node_update(sched_t *s, const sched_node_t *node)
{
    (void)s, (void)node;
    return PAI_OK;
}

pai_err_t sched_node_set_health(sched_t *s, const char *name, bool healthy)
{
    (void)s, (void)name, (void)healthy;
    return PAI_OK;
}

pai_err_t sched_submit(sched_t *s, const sched_request_t *req, char *err, size_t errlen)
{
    (void)s, (void)req, (void)err, (void)errlen;
    return PAI_E_NOT_IMPLEMENTED;
}

pai_err_t sched_cancel(sched_t *s, const char *job_id)
{
    (void)s, (void)job_id;
    return PAI_E_NO_JOB;
}

pai_err_t sched_release(sched_t *s, const char *job_id)
{
    (void)s, (void)job_id;
    return PAI_E_NO_JOB;
}

pai_err_t sched_schedule(sched_t *s, int64_t now_ms, const sched_decision_t **out, size_t *n)
{
    (void)s, (void)now_ms;
    *out = NULL;
    *n = 0;
    return PAI_OK;
}

pai_err_t sched_restore(sched_t *s, const sched_request_t *req, const sched_alloc_t *allocs,
                        size_t n_allocs, bool *downgraded)
{
    (void)s, (void)req, (void)allocs, (void)n_allocs, (void)downgraded;
    return PAI_E_NOT_IMPLEMENTED;
}

size_t sched_vc_status(sched_t *s, sched_vc_status_t *rows, size_t cap)
{
    (void)s, (void)rows, (void)cap;
    return 0;
}

size_t sched_node_status(const sched_t *s, sched_node_status_t *rows, size_t cap)
{
    (void)s, (void)rows, (void)cap;
    return 0;
}

void sched_summary(const sched_t *s, sched_summary_t *out)
{
    (void)s;
    *out = (sched_summary_t){0};
}

const char *sched_kind_name(sched_kind_t k)
{
    static const char *const names[] = {"bind", "preempt", "wait", "refuse"};
    return (unsigned)k < 4 ? names[k] : "?";
}
