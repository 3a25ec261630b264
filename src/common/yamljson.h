/*
 * yamljson.h - a YAML tree (common/yamltree.h) as JSON, with one typing
 * rule for the whole project: the YAML 1.2 core schema, as the job protocol
 * (OpenPAI's) reads it.
 *
 *   quoted scalars ('..', "..", | and > blocks)        string, always
 *   plain  "", ~, null, Null, NULL                     null
 *          true, True, TRUE, false, False, FALSE       bool
 *          [-+]?[0-9]+, 0x[0-9a-fA-F]+, 0o[0-7]+       integer (010 is ten)
 *          [-+]?(.[0-9]+|[0-9]+(.[0-9]*)?)([eE][-+]?[0-9]+)?, .inf, .nan
 *                                                      float
 *          anything else                               string
 *
 * JSON has no integer beyond int64 and no inf or nan: such values keep
 * their text as a JSON string.  Map keys are taken as written (their text);
 * a pair whose key is not a scalar is left out; a later duplicate key wins.
 * Every former converter (job protocol, server config lists, CLI submit,
 * the engine's HiveD config) uses this one; none needs another typing.
 */
#ifndef PAI_COMMON_YAMLJSON_H
#define PAI_COMMON_YAMLJSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/yamltree.h"

/* Kinds of a YAML node as JSON sees it, by the rule above.  A NULL node is
 * YJ_NULL. */
typedef enum { YJ_NULL, YJ_BOOL, YJ_INT, YJ_FLOAT, YJ_STRING, YJ_MAP, YJ_SEQ } yjson_type_t;
yjson_type_t yjson_type(const ynode_t *n);
/* The type a plain scalar with this text has (a writer quotes a string
 * whose text would read back as another type). */
yjson_type_t yjson_plain_type(const char *text);
/* The value of a YJ_INT node; false when out of int64 range. */
bool yjson_int(const ynode_t *n, int64_t *out);

/* The node as JSON (new reference; a NULL node is JSON null). */
json_t *yjson_from_node(const ynode_t *n);
/* Parse a YAML document (at most PAI_MAX_YAML_NODES nodes, see yamltree.h)
 * and convert it; NULL when it is not YAML. */
json_t *yjson_from_text(const char *yaml, size_t len);

#endif
