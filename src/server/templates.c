/*
 * templates.c - the registry of job templates (see templates.h for the
 * records and the locking rules).
 */
#include "server/templates.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "server/template.h"

struct templates {
    store_t *st;
    pthread_mutex_t write_mu; /* one change at a time, across its store write */
    pthread_mutex_t mu;       /* guards items and next_seq */
    json_t *items;            /* id -> metadata */
    int64_t next_seq;
};

static int load_cb(void *ud, const char *key, int64_t seq, const char *json)
{
    templates_t *t = ud;
    json_t *m = json_loads(json, 0, NULL);
    if (json_is_object(m)) {
        json_object_set_new(t->items, key, m);
    } else {
        json_decref(m);
        log_warn("templates: record %s is not a JSON object; left out", key);
    }
    if (seq >= t->next_seq)
        t->next_seq = seq + 1;
    return 0;
}

pai_err_t tpls_open(store_t *st, templates_t **out, pai_error_t *e)
{
    templates_t *t = xcalloc(1, sizeof *t);
    t->st = st;
    t->items = json_object();
    t->next_seq = 1;
    pthread_mutex_init(&t->write_mu, NULL);
    pthread_mutex_init(&t->mu, NULL);
    pai_err_t rc = store_scan(st, "template", load_cb, t);
    if (rc != PAI_OK) {
        tpls_free(t);
        *out = NULL;
        return pai_error_set(e, rc, "templates: cannot read the store: %s", pai_err_msg(rc));
    }
    log_info("templates: %zu loaded", json_object_size(t->items));
    *out = t;
    return PAI_OK;
}

void tpls_free(templates_t *t)
{
    if (!t)
        return;
    json_decref(t->items);
    pthread_mutex_destroy(&t->mu);
    pthread_mutex_destroy(&t->write_mu);
    free(t);
}

json_t *tpls_get(templates_t *t, const char *id)
{
    pthread_mutex_lock(&t->mu);
    json_t *m = json_object_get(t->items, id);
    json_t *copy = m ? json_deep_copy(m) : NULL;
    pthread_mutex_unlock(&t->mu);
    return copy;
}

typedef struct {
    tpls_order_t o;
    const char *id;
    json_t *m;
} page_key_t;

static int page_cmp(const void *x, const void *y)
{
    const page_key_t *a = x, *b = y;
    if (a->o.rank != b->o.rank)
        return a->o.rank < b->o.rank ? 1 : -1;
    int c = strcasecmp(a->o.text ? a->o.text : "", b->o.text ? b->o.text : "");
    return c ? c : strcmp(a->id, b->id);
}

json_t *tpls_page(templates_t *t, tpls_keep_fn keep, void *ud, tpls_order_fn order, size_t offset,
                  size_t limit, size_t *total)
{
    json_t *out = json_array();
    const char *id;
    json_t *m;
    size_t n = 0;
    pthread_mutex_lock(&t->mu);
    page_key_t *v = xcalloc(json_object_size(t->items) + 1, sizeof *v);
    json_object_foreach(t->items, id, m)
    {
        if (keep && !keep(ud, m))
            continue;
        v[n] = (page_key_t){.id = id, .m = m};
        if (order)
            order(m, &v[n].o);
        n++;
    }
    qsort(v, n, sizeof *v, page_cmp);
    for (size_t k = offset; k < n && k - offset < limit; k++)
        json_array_append_new(out, json_deep_copy(v[k].m));
    pthread_mutex_unlock(&t->mu);
    free(v);
    *total = n;
    return out;
}

pai_err_t tpls_protocol(templates_t *t, const char *id, char **yaml, pai_error_t *e)
{
    char *text = NULL;
    *yaml = NULL;
    pai_err_t rc = store_get(t->st, "tplyaml", id, &text);
    if (rc == PAI_E_NOT_FOUND)
        return pai_error_set(e, PAI_E_NO_TEMPLATE, PAI_MSG_NO_TEMPLATE, id);
    if (rc != PAI_OK)
        return pai_error_set(e, rc, "cannot read template %s: %s", id, pai_err_msg(rc));
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    const char *y = json_string_value(json_object_get(o, "yaml"));
    if (y)
        *yaml = xstrdup(y);
    json_decref(o);
    return y ? PAI_OK : pai_error_set(e, PAI_E_INTERNAL, "template %s: damaged record", id);
}

static char *yaml_record(const char *yaml)
{
    json_t *o = xjson_pack("{ss}", "yaml", yaml);
    char *s = xjson_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Store meta (and yaml when not NULL) as op (PUT or INSERT) with seq. */
static pai_err_t write_records(templates_t *t, store_op_kind_t op, const json_t *meta,
                               const char *yaml, int64_t seq)
{
    const char *id = json_string_value(json_object_get(meta, "id"));
    char *mtext = xjson_dumps(meta, JSON_COMPACT);
    char *ytext = yaml ? yaml_record(yaml) : NULL;
    store_op_t ops[2] = {{op, "template", id, seq, mtext}, {op, "tplyaml", id, seq, ytext}};
    pai_err_t rc = store_batch(t->st, ops, yaml ? 2 : 1);
    free(mtext);
    free(ytext);
    return rc;
}

/* Under mu: how many templates owner has. */
static size_t owned_locked(templates_t *t, const char *owner)
{
    size_t n = 0;
    const char *id;
    json_t *m;
    json_object_foreach(t->items, id, m)
    {
        const char *o = json_string_value(json_object_get(m, "owner"));
        n += o && owner && strcmp(o, owner) == 0;
    }
    return n;
}

pai_err_t tpls_insert(templates_t *t, json_t *meta, const char *yaml, bool unlimited,
                      pai_error_t *e)
{
    const char *id = json_string_value(json_object_get(meta, "id"));
    const char *owner = json_string_value(json_object_get(meta, "owner"));
    pai_err_t rc = PAI_OK;
    pthread_mutex_lock(&t->write_mu);
    pthread_mutex_lock(&t->mu);
    bool exists = json_object_get(t->items, id) != NULL;
    size_t n = json_object_size(t->items);
    size_t mine = unlimited ? 0 : owned_locked(t, owner);
    int64_t seq = t->next_seq++;
    pthread_mutex_unlock(&t->mu);
    if (exists)
        rc = pai_error_set(e, PAI_E_CONFLICT_TEMPLATE, "Template %s already exists.", id);
    else if (n >= TPLS_MAX)
        rc = pai_error_set(e, PAI_E_NO_QUOTA, "this server keeps at most %u templates", TPLS_MAX);
    else if (mine >= TPLS_MAX_PER_OWNER)
        rc = pai_error_set(e, PAI_E_NO_QUOTA, "User %s has %u templates, the most one may publish",
                           owner, TPLS_MAX_PER_OWNER);
    else if ((rc = write_records(t, STORE_OP_INSERT, meta, yaml, seq)) != PAI_OK)
        rc = pai_error_set(e, rc == PAI_E_EXISTS ? PAI_E_CONFLICT_TEMPLATE : rc,
                           "cannot store template %s: %s", id, pai_err_msg(rc));
    if (rc == PAI_OK) {
        log_info("template=%s published", id);
        /* The map takes meta: once it is visible another change may free it,
         * so nothing here touches it after the swap (not even a decref). */
        pthread_mutex_lock(&t->mu);
        json_object_set_new(t->items, id, meta);
        pthread_mutex_unlock(&t->mu);
    } else {
        json_decref(meta);
    }
    pthread_mutex_unlock(&t->write_mu);
    return rc;
}

/* Under write_mu: a copy of the template, or PAI_E_NO_TEMPLATE. */
static pai_err_t current(templates_t *t, const char *id, json_t **copy, pai_error_t *e)
{
    *copy = tpls_get(t, id);
    return *copy ? PAI_OK : pai_error_set(e, PAI_E_NO_TEMPLATE, PAI_MSG_NO_TEMPLATE, id);
}

pai_err_t tpls_update(templates_t *t, const char *id, tpls_change_fn change, void *ud,
                      const char *yaml, pai_error_t *e)
{
    json_t *m = NULL;
    pthread_mutex_lock(&t->write_mu);
    pai_err_t rc = current(t, id, &m, e);
    if (rc == PAI_OK && change)
        rc = change(ud, m, e);
    if (rc == PAI_OK) {
        json_object_set_new(m, "id", json_string(id)); /* the id never changes */
        rc = write_records(t, STORE_OP_PUT, m, yaml, 0);
        if (rc != PAI_OK)
            pai_error_set(e, rc, "cannot store template %s: %s", id, pai_err_msg(rc));
    }
    if (rc == PAI_OK) { /* the map takes m (see tpls_insert) */
        pthread_mutex_lock(&t->mu);
        json_object_set_new(t->items, id, m);
        pthread_mutex_unlock(&t->mu);
        m = NULL;
    }
    pthread_mutex_unlock(&t->write_mu);
    json_decref(m);
    return rc;
}

pai_err_t tpls_delete(templates_t *t, const char *id, tpls_change_fn check, void *ud,
                      pai_error_t *e)
{
    json_t *m = NULL;
    pthread_mutex_lock(&t->write_mu);
    pai_err_t rc = current(t, id, &m, e);
    if (rc == PAI_OK && check)
        rc = check(ud, m, e);
    if (rc == PAI_OK) {
        store_op_t ops[2] = {{STORE_OP_DEL, "template", id, 0, NULL},
                             {STORE_OP_DEL, "tplyaml", id, 0, NULL}};
        if ((rc = store_batch(t->st, ops, 2)) != PAI_OK)
            pai_error_set(e, rc, "cannot delete template %s: %s", id, pai_err_msg(rc));
    }
    if (rc == PAI_OK) {
        pthread_mutex_lock(&t->mu);
        json_object_del(t->items, id);
        pthread_mutex_unlock(&t->mu);
        log_info("template=%s deleted", id);
    }
    pthread_mutex_unlock(&t->write_mu);
    json_decref(m);
    return rc;
}

static pai_err_t one_more_use(void *ud, json_t *meta, pai_error_t *e)
{
    (void)ud, (void)e;
    json_int_t n = json_integer_value(json_object_get(meta, "useCount"));
    json_object_set_new(meta, "useCount", json_integer(n + 1));
    return PAI_OK;
}

pai_err_t tpls_count_use(templates_t *t, const char *id)
{
    return tpls_update(t, id, one_more_use, NULL, NULL, NULL);
}

/* ------------------------------------------------------------------ seed */

/* The leading comment of a job file, without the "#" and the command
 * lines ("  pai ..."), as one paragraph. */
static char *leading_comment(const char *text)
{
    buf_t b;
    buf_init(&b, TPL_MAX_DESCRIPTION);
    const char *p = text;
    while (*p == '#') {
        size_t n = strcspn(p, "\n");
        const char *s = p + 1;
        size_t len = n - 1;
        while (len && *s == ' ')
            s++, len--;
        bool command = (size_t)(s - p) > 2; /* indented under the "#": an example command */
        if (!command && len && (b.len ? buf_puts(&b, " ") : PAI_OK) == PAI_OK &&
            buf_append(&b, s, len) != PAI_OK)
            break;
        p += n + (p[n] == '\n');
    }
    char *out = buf_take(&b);
    buf_free(&b);
    return out ? out : xstrdup("");
}

static pai_err_t seed_one(templates_t *t, const char *dir, const char *file, const char *owner,
                          int64_t now)
{
    char *path = str_printf("%s/%s", dir, file);
    buf_t b;
    buf_init(&b, TPL_MAX_YAML);
    tpl_protocol_t p = {0};
    pai_error_t e = PAI_ERROR_INIT;
    pai_err_t rc = buf_read_file(&b, path);
    if (rc == PAI_OK)
        rc = tpl_protocol_check(buf_str(&b), b.len, false, &p, &e);
    if (rc != PAI_OK) {
        log_info("templates: %s left out: %s", path,
                 e.code != PAI_OK ? pai_error_msg(&e) : pai_err_msg(rc));
        goto out;
    }
    char *desc = leading_comment(buf_str(&b));
    char *id = str_printf("%s~%s", owner, p.job_name);
    json_t *meta =
        xjson_pack("{ss ss ss ss ss s[s] ss ss s[] sb sI sI sI ss sO}", "id", id, "name",
                   p.job_name, "owner", owner, "title", p.job_name, "description", desc, "tags",
                   "example", "image", p.image, "visibility", "public", "groups", "featured", 1,
                   "useCount", (json_int_t)0, "createdTime", (json_int_t)now, "updatedTime",
                   (json_int_t)now, "jobName", p.job_name, "parameters", p.parameters);
    rc = tpls_insert(t, meta, p.yaml, true, &e);
    if (rc != PAI_OK)
        log_warn("templates: %s: %s", path, pai_error_msg(&e));
    free(id);
    free(desc);
out:
    pai_error_free(&e);
    tpl_protocol_free(&p);
    buf_free(&b);
    free(path);
    return rc;
}

static int yaml_file(const struct dirent *d)
{
    return d->d_name[0] != '.' && str_has_suffix(d->d_name, ".yaml");
}

pai_err_t tpls_seed(templates_t *t, const char *dir, const char *owner, size_t *n, pai_error_t *e)
{
    *n = 0;
    char *done = NULL;
    pai_err_t rc = store_get(t->st, "meta", "templates_seeded", &done);
    free(done);
    if (rc == PAI_OK)
        return PAI_OK;
    if (rc != PAI_E_NOT_FOUND)
        return pai_error_set(e, rc, "templates: cannot read the store: %s", pai_err_msg(rc));
    struct dirent **names = NULL;
    int k = scandir(dir, &names, yaml_file, alphasort);
    if (k < 0)
        return pai_error_set(e, PAI_E_BAD_CONFIG, "template_examples: cannot read %s", dir);
    int64_t now = time_wall_ms();
    for (int i = 0; i < k; i++) {
        if (seed_one(t, dir, names[i]->d_name, owner, now) == PAI_OK)
            (*n)++;
        free(names[i]);
    }
    free(names);
    char *rec = str_printf("{\"time\":%lld,\"published\":%zu}", (long long)now, *n);
    rc = store_put(t->st, "meta", "templates_seeded", 0, rec);
    free(rec);
    if (rc != PAI_OK)
        return pai_error_set(e, rc, "templates: cannot store the seed mark: %s", pai_err_msg(rc));
    log_info("templates: %zu examples from %s published as featured templates", *n, dir);
    return PAI_OK;
}
