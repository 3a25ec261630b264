/*
 * job_parse_extras.c - the `extras` section of a job: hivedScheduler,
 * runtime plugins (com.microsoft.pai.runtimeplugin), storages and
 * jobStatusChangeNotification.  Called by job_parse.c after the task roles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "protocol/job_parse_int.h"

static void parse_hived_role(pctx_t *c, const ynode_t *k, const ynode_t *v)
{
    if (!jp_role_exists(c, k) || jp_type_bad(c, v, k->str, YJ_MAP))
        return;
    job_role_t *r = (job_role_t *)job_role_find(c->spec, k->str);
    size_t old = jp_path_push(c, k->str);
    jp_check_map(c, v, NULL);
    r->sku_type = jp_get_str(c, v, "skuType", false);
    jp_get_int(c, v, "skuNum", 1, MAX_INT32, &r->sku_number);
    jp_get_int(c, v, "skuNumber", 1, MAX_INT32, &r->sku_number);
    r->pinned_cell_id = jp_get_str(c, v, "pinnedCellId", false);
    r->affinity_group_name = jp_get_str(c, v, "affinityGroupName", false);
    r->within_one_cell = jp_get_str(c, v, "withinOneCell", false);
    jp_path_pop(c, old);
}

static void parse_hived(pctx_t *c, const ynode_t *x)
{
    job_extras_t *e = &c->spec->extras;
    const ynode_t *h = jp_field(c, x, "hivedScheduler", false);
    if (!h || jp_type_bad(c, h, "hivedScheduler", YJ_MAP))
        return;
    e->has_hived = true;
    size_t old = jp_path_push(c, "hivedScheduler");
    jp_check_map(c, h, NULL);
    const char *pc = jp_get_str(c, h, "jobPriorityClass", false);
    if (pc && !job_priority_parse(pc, &e->priority_class))
        jp_add_error(c, ynode_get(h, "jobPriorityClass"), "jobPriorityClass",
                     "must be one of crit, prod, test, oppo");
    jp_get_bool(c, h, "lazyPreemptionEnable", &e->lazy_preemption);
    jp_get_bool(c, h, "gangReleaseEnable", &e->gang_release);
    const ynode_t *tr = jp_field(c, h, "taskRoles", false);
    if (tr && !jp_type_bad(c, tr, "taskRoles", YJ_MAP)) {
        size_t o2 = jp_path_push(c, "taskRoles");
        if (jp_check_map(c, tr, NULL))
            for (size_t i = 0; i < tr->n; i++)
                parse_hived_role(c, tr->pairs[i].key, tr->pairs[i].val);
        jp_path_pop(c, o2);
    }
    jp_path_pop(c, old);
}

static const char *const known_plugins[] = {"ssh", "cmd", "git", "tensorboard", "teamwise_storage",
                                            NULL};

/* Light checks of the parameters of the plugins OpenPAI ships. */
static void check_plugin_params(pctx_t *c, const char *plugin, const ynode_t *p)
{
    size_t n;
    if (strcmp(plugin, "ssh") == 0) {
        bool b;
        jp_get_bool(c, p, "jobssh", &b);
        jp_get_bool(c, p, "sshbarrier", &b);
        (void)jp_get_str_list(c, p, "sshbarrierTaskroles", false, NULL, &n);
    } else if (strcmp(plugin, "teamwise_storage") == 0) {
        (void)jp_get_str_list(c, p, "storageConfigNames", false, NULL, &n);
    } else if (strcmp(plugin, "tensorboard") == 0) {
        int port = 0;
        jp_get_int(c, p, "port", 1, 65535, &port);
    } else if (strcmp(plugin, "cmd") == 0) {
        const ynode_t *cb = jp_field(c, p, "callbacks", false);
        if (cb)
            (void)jp_type_bad(c, cb, "callbacks", YJ_SEQ);
    } else if (strcmp(plugin, "git") == 0) {
        (void)jp_get_str(c, p, "repo", false);
    }
}

static void parse_plugin(pctx_t *c, const ynode_t *m, job_plugin_t *pl)
{
    if (jp_type_bad(c, m, NULL, YJ_MAP))
        return;
    jp_check_map(c, m, NULL);
    pl->plugin = jp_get_str(c, m, "plugin", true);
    if (pl->plugin && !jp_in_list(known_plugins, pl->plugin))
        jp_add_error(c, ynode_get(m, "plugin"), "plugin",
                     "unknown runtime plugin '%s' (known: ssh, cmd, git, tensorboard, "
                     "teamwise_storage)",
                     pl->plugin);
    (void)jp_get_str(c, m, "failurePolicy", false);
    const ynode_t *p = jp_field(c, m, "parameters", false);
    if (p && jp_type_bad(c, p, "parameters", YJ_MAP))
        p = NULL;
    if (p && pl->plugin) {
        size_t old = jp_path_push(c, "parameters");
        if (jp_check_map(c, p, NULL))
            check_plugin_params(c, pl->plugin, p);
        jp_path_pop(c, old);
    }
    pl->parameters = p ? yjson_from_node(p) : json_object();
}

static void parse_plugins(pctx_t *c, const ynode_t *x)
{
    static const char key[] = "com.microsoft.pai.runtimeplugin";
    job_extras_t *e = &c->spec->extras;
    const ynode_t *l = jp_field(c, x, key, false);
    if (!l || jp_type_bad(c, l, key, YJ_SEQ))
        return;
    e->plugins = job_arena_alloc(c->spec, (l->n ? l->n : 1) * sizeof(*e->plugins));
    size_t old = jp_path_push(c, key);
    for (size_t i = 0; i < l->n; i++) {
        size_t o2 = jp_path_push_index(c, i);
        parse_plugin(c, l->items[i], &e->plugins[e->n_plugins++]);
        jp_path_pop(c, o2);
    }
    jp_path_pop(c, old);
}

static void parse_storages(pctx_t *c, const ynode_t *x)
{
    const ynode_t *l = jp_field(c, x, "storages", false);
    if (!l || jp_type_bad(c, l, "storages", YJ_SEQ))
        return;
    size_t old = jp_path_push(c, "storages");
    for (size_t i = 0; i < l->n; i++) {
        size_t o2 = jp_path_push_index(c, i);
        if (!jp_type_bad(c, l->items[i], NULL, YJ_MAP)) {
            jp_check_map(c, l->items[i], NULL);
            (void)jp_get_str(c, l->items[i], "name", true);
            (void)jp_get_str(c, l->items[i], "mountPath", false);
        }
        jp_path_pop(c, o2);
    }
    jp_path_pop(c, old);
    c->spec->extras.storages = yjson_from_node(l);
}

static void parse_notification(pctx_t *c, const ynode_t *x)
{
    const ynode_t *m = jp_field(c, x, "jobStatusChangeNotification", false);
    if (!m || jp_type_bad(c, m, "jobStatusChangeNotification", YJ_MAP))
        return;
    size_t old = jp_path_push(c, "jobStatusChangeNotification");
    if (jp_check_map(c, m, NULL))
        for (size_t i = 0; i < m->n; i++)
            (void)jp_type_bad(c, m->pairs[i].val, m->pairs[i].key->str, YJ_BOOL);
    jp_path_pop(c, old);
    c->spec->extras.notification = yjson_from_node(m);
}

/* extras.logReaders (pai addition, docs/security.md "Logs"): who else may
 * read the job's logs: {users: [names], groups: [names]}. */
static void parse_log_readers(pctx_t *c, const ynode_t *x)
{
    static const char *const keys[] = {"users", "groups", NULL};
    const ynode_t *m = jp_field(c, x, "logReaders", false);
    if (!m || jp_type_bad(c, m, "logReaders", YJ_MAP))
        return;
    size_t old = jp_path_push(c, "logReaders"), n;
    if (jp_check_map(c, m, keys)) {
        (void)jp_get_str_list(c, m, "users", false, NULL, &n);
        (void)jp_get_str_list(c, m, "groups", false, NULL, &n);
    }
    jp_path_pop(c, old);
}

void jp_parse_extras(pctx_t *c, const ynode_t *top)
{
    job_extras_t *e = &c->spec->extras;
    e->gang_allocation = true;
    e->priority_class = JOB_PRIO_TEST;
    const ynode_t *x = jp_field(c, top, "extras", false);
    if (x && jp_type_bad(c, x, "extras", YJ_MAP))
        x = NULL;
    e->json = x ? yjson_from_node(x) : json_object();
    if (!x)
        return;
    c->spec->priv_->extras = x;
    size_t old = jp_path_push(c, "extras");
    if (jp_check_map(c, x, NULL)) {
        jp_get_bool(c, x, "gangAllocation", &e->gang_allocation);
        e->submit_from = jp_get_str(c, x, "submitFrom", false);
        parse_hived(c, x);
        parse_plugins(c, x);
        parse_storages(c, x);
        parse_notification(c, x);
        parse_log_readers(c, x);
    }
    jp_path_pop(c, old);
}

/* ------------------------------------------------------------ top level */
