/*
 * job_parse_int.h - shared by job_parse.c, job_parse_util.c and
 * job_parse_extras.c (internal to src/protocol): the walk's context and
 * the field readers.  Each reader records a problem (position, field path,
 * reason) in the context and returns a neutral value, so one pass reports
 * every problem of a document.
 */
#ifndef PAI_PROTOCOL_JOB_PARSE_INT_H
#define PAI_PROTOCOL_JOB_PARSE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/yamltree.h"
#include "protocol/job_internal.h"

#define MAX_INT32       2147483647LL
#define MAX_GPU         1024
#define MAX_CPU         65536
#define MAX_PORTS_LABEL 65535

typedef struct {
    job_spec_t *spec;
    job_errors_t *errs;
    char path[512];
    size_t plen;
    /* Prerequisites that were reported already (the list is missing or
     * broken, or one item is): references to them are not reported again. */
    bool prereqs_broken;
    const char **bad_prereqs;
    size_t n_bad_prereqs;
    /* The document's repeated keys (ydoc_dups): a map read here reports
     * those among its own pairs, with the field's path. */
    const ynode_t *const *dups;
    size_t ndups;
} pctx_t;

void jp_add_error(pctx_t *c, const ynode_t *at, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
size_t jp_path_push(pctx_t *c, const char *seg);
size_t jp_path_push_index(pctx_t *c, size_t i);
void jp_path_pop(pctx_t *c, size_t old);
bool jp_type_bad(pctx_t *c, const ynode_t *v, const char *field, yjson_type_t t);
const ynode_t *jp_field(pctx_t *c, const ynode_t *map, const char *key, bool required);
const char *jp_get_str(pctx_t *c, const ynode_t *map, const char *key, bool required);
const char *jp_get_str_or_num(pctx_t *c, const ynode_t *map, const char *key);
void jp_get_int(pctx_t *c, const ynode_t *map, const char *key, int64_t min, int64_t max, int *out);
void jp_get_count_or_off(pctx_t *c, const ynode_t *map, const char *key, int64_t max, int *out);
void jp_get_bool(pctx_t *c, const ynode_t *map, const char *key, bool *out);
const char **jp_get_str_list(pctx_t *c, const ynode_t *map, const char *key, bool required,
                             const char *empty_reason, size_t *n_out);
bool jp_in_list(const char *const *list, const char *s);
bool jp_check_map(pctx_t *c, const ynode_t *map, const char *const *allowed);
/* Names of the JSON-schema types, for messages. */
extern const char *const jt_names[];
bool jp_int_in_range(pctx_t *c, const ynode_t *v, const char *key, int64_t min, int64_t max,
                     int64_t *out);
/* job_parse.c: reports (once) a key that names no task role. */
bool jp_role_exists(pctx_t *c, const ynode_t *key);
/* job_parse_extras.c: the `extras` section. */
void jp_parse_extras(pctx_t *c, const ynode_t *top);

#endif
