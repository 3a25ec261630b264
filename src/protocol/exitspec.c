/*
 * exitspec.c - OpenPAI's exit-code table, parsed once from the embedded YAML.
 *
 * The YAML (src/protocol/exit-spec.yaml) is compiled in as a byte array by
 * mk/protocol.mk.  On first use (pthread_once) it is parsed with yamltree
 * into a table sorted by code; the parsed document is kept for the life of
 * the process and the table points into it.  Lookups are binary searches.
 */
#include "protocol/exitspec.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/yamltree.h"

extern const char pai_exitspec_yaml[];
extern const size_t pai_exitspec_yaml_len;

static const char *const type_names[] = {
    [EXIT_TYPE_USER_SUCCESS] = "USER_SUCCESS",
    [EXIT_TYPE_USER_STOP] = "USER_STOP",
    [EXIT_TYPE_USER_FAILURE] = "USER_FAILURE",
    [EXIT_TYPE_PLATFORM_FAILURE] = "PLATFORM_FAILURE",
    [EXIT_TYPE_RESOURCE_ALLOCATION_TIMEOUT] = "RESOURCE_ALLOCATION_TIMEOUT",
    [EXIT_TYPE_UNKNOWN_FAILURE] = "UNKNOWN_FAILURE",
};
static const char *const behavior_names[] = {
    [EXIT_BEHAVIOR_TRANSIENT] = "TRANSIENT",
    [EXIT_BEHAVIOR_TRANSIENT_CONFLICT] = "TRANSIENT_CONFLICT",
    [EXIT_BEHAVIOR_PERMANENT] = "PERMANENT",
    [EXIT_BEHAVIOR_UNKNOWN] = "UNKNOWN",
};
static const char *const reaction_names[] = {
    [EXIT_REACTION_ALWAYS_RETRY] = "ALWAYS_RETRY",
    [EXIT_REACTION_ALWAYS_BACKOFF_RETRY] = "ALWAYS_BACKOFF_RETRY",
    [EXIT_REACTION_RETRY_TO_MAX] = "RETRY_TO_MAX",
    [EXIT_REACTION_NEVER_RETRY] = "NEVER_RETRY",
};

static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static ydoc_t *table_doc;
static exitspec_t *table;
static size_t table_n;

/* The last resort when the embedded table cannot be read (never expected). */
static const exitspec_t fallback_entry = {
    .code = EXIT_UNDEFINED_POSITIVE,
    .phrase = "PAIRuntimeExitAbnormally",
    .type = EXIT_TYPE_PLATFORM_FAILURE,
    .behavior = EXIT_BEHAVIOR_UNKNOWN,
    .reaction = EXIT_REACTION_RETRY_TO_MAX,
};

static int name_index(const char *const *names, size_t n, const char *s, int dflt)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return dflt;
}

static const char *scalar(const ynode_t *map, const char *key)
{
    const ynode_t *n = ynode_get(map, key);
    return n && n->kind == YNODE_SCALAR && !ynode_is_null(n) ? n->str : NULL;
}

/* A list of strings as a NULL-free array of pointers into the document. */
static const char *const *string_list(const ynode_t *map, const char *key, size_t *n_out)
{
    const ynode_t *n = ynode_get(map, key);
    *n_out = 0;
    if (!n || n->kind != YNODE_SEQ || n->n == 0)
        return NULL;
    const char **v = xcalloc(n->n, sizeof(*v));
    for (size_t i = 0; i < n->n; i++)
        if (n->items[i]->kind == YNODE_SCALAR)
            v[(*n_out)++] = n->items[i]->str;
    return v;
}

static bool fill_entry(exitspec_t *e, const ynode_t *m)
{
    int64_t code;
    if (!ynode_as_i64(ynode_get(m, "code"), &code) || !scalar(m, "phrase"))
        return false;
    e->code = (int)code;
    e->phrase = scalar(m, "phrase");
    e->issuer = scalar(m, "issuer");
    e->causer = scalar(m, "causer");
    e->stage = scalar(m, "stage");
    e->reason = scalar(m, "reason");
    e->type = (exit_type_t)name_index(type_names, ARRAY_LEN(type_names), scalar(m, "type"),
                                      EXIT_TYPE_UNKNOWN_FAILURE);
    e->behavior = (exit_behavior_t)name_index(behavior_names, ARRAY_LEN(behavior_names),
                                              scalar(m, "behavior"), EXIT_BEHAVIOR_UNKNOWN);
    e->reaction = (exit_reaction_t)name_index(reaction_names, ARRAY_LEN(reaction_names),
                                              scalar(m, "reaction"), EXIT_REACTION_RETRY_TO_MAX);
    e->repro = string_list(m, "repro", &e->n_repro);
    e->solution = string_list(m, "solution", &e->n_solution);
    return true;
}

static int cmp_code(const void *a, const void *b)
{
    int x = ((const exitspec_t *)a)->code, y = ((const exitspec_t *)b)->code;
    return (x > y) - (x < y);
}

static void load_table(void)
{
    yerr_t err;
    if (ydoc_parse(pai_exitspec_yaml, pai_exitspec_yaml_len, &table_doc, &err) != PAI_OK) {
        log_error("exitspec: embedded table unreadable: %d:%d: %s", err.line, err.col, err.msg);
        return;
    }
    const ynode_t *spec = ynode_get(ydoc_root(table_doc), "spec");
    if (!spec || spec->kind != YNODE_SEQ)
        return;
    table = xcalloc(spec->n ? spec->n : 1, sizeof(*table));
    for (size_t i = 0; i < spec->n; i++)
        if (fill_entry(&table[table_n], spec->items[i]))
            table_n++;
    qsort(table, table_n, sizeof(*table), cmp_code);
}

const exitspec_t *exitspec_lookup(int code)
{
    pthread_once(&table_once, load_table);
    exitspec_t key = {.code = code};
    return table_n ? bsearch(&key, table, table_n, sizeof(*table), cmp_code) : NULL;
}

const exitspec_t *exitspec_for(int code)
{
    const exitspec_t *e = exitspec_lookup(code);
    if (!e)
        e = exitspec_lookup(code < 0 ? EXIT_UNDEFINED_NEGATIVE : EXIT_UNDEFINED_POSITIVE);
    return e ? e : &fallback_entry;
}

size_t exitspec_count(void)
{
    pthread_once(&table_once, load_table);
    return table_n;
}

const exitspec_t *exitspec_at(size_t i)
{
    pthread_once(&table_once, load_table);
    return i < table_n ? &table[i] : NULL;
}

bool exitspec_should_retry(int code, int used, int max)
{
    if (code == EXIT_SUCCEEDED)
        return false;
    switch (exitspec_for(code)->reaction) {
    case EXIT_REACTION_ALWAYS_RETRY:
    case EXIT_REACTION_ALWAYS_BACKOFF_RETRY:
        return true;
    case EXIT_REACTION_RETRY_TO_MAX:
        return used < max;
    default:
        return false;
    }
}

bool exitspec_retry_counts(int code)
{
    return exitspec_for(code)->reaction == EXIT_REACTION_RETRY_TO_MAX;
}

const char *exit_type_name(exit_type_t t)
{
    return (size_t)t < ARRAY_LEN(type_names) ? type_names[t] : "UNKNOWN_FAILURE";
}

const char *exit_behavior_name(exit_behavior_t b)
{
    return (size_t)b < ARRAY_LEN(behavior_names) ? behavior_names[b] : "UNKNOWN";
}

const char *exit_reaction_name(exit_reaction_t r)
{
    return (size_t)r < ARRAY_LEN(reaction_names) ? reaction_names[r] : "RETRY_TO_MAX";
}

static json_t *list_json(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

json_t *exitspec_to_json(const exitspec_t *e)
{
    if (!e)
        return json_null();
    /* Fields the table leaves out (code 0 has no reason) are left out here
     * too, as OpenPAI does: the REST spec types them as non-null strings. */
    return xjson_pack("{s:i, s:s, s:s*, s:s*, s:s, s:s*, s:s, s:s, s:s*, s:o, s:o}", "code",
                      e->code, "phrase", e->phrase, "issuer", e->issuer, "causer", e->causer,
                      "type", exit_type_name(e->type), "stage", e->stage, "behavior",
                      exit_behavior_name(e->behavior), "reaction", exit_reaction_name(e->reaction),
                      "reason", e->reason, "repro", list_json(e->repro, e->n_repro), "solution",
                      list_json(e->solution, e->n_solution));
}
