/*
 * desired.h - a node's desired set for the agent sync's answer (desired.c).
 */
#ifndef PAI_ENGINE_DESIRED_H
#define PAI_ENGINE_DESIRED_H

#include <stdbool.h>

#include <jansson.h>

#include "common/strmap.h"
#include "engine/nodes.h"
#include "wire/agentwire.h"

/* What an answer's desired set is computed against, and what came of it. */
typedef struct {
    /* In: version 2 and later, the attempts the agent reported in this
     * sync (it has them): sent without their commands.  NULL: version 1. */
    const strmap_t *reported;
    /* In: version 3 with a base the node can serve (nodes_delta_ok): only
     * the attempts that entered the set after base, and those that left it
     * (m->removed).  false: the whole set. */
    bool delta;
    uint64_t base;
    /* In: the answer's version: from AGENTWIRE_JOBENV_VERSION on, a task's
     * env goes as its job's placement ("jobenv"), else as its variables. */
    int version;
    /* Out: some new attempts wait for the next answers (their commands
     * past the budget); the answer is complete up to seq resume (the
     * lowest shown_seq left out, less one). */
    bool partial;
    uint64_t resume;
} engine_desired_t;

/* The version a sync's answer is in: the request's, or its accept when
 * higher (wire/agentwire.h), at most AGENTWIRE_VERSION or, in tests, the
 * environment's PAI_TEST_AGENTWIRE_MAX (a server of an older version). */
int engine_answer_version(const agentwire_req_t *req);

/* The node's desired set (or its delta) into m (mu held, after
 * nodes_refresh).  The commands (and registry auth) of attempts the agent
 * has not reported fill at most half of PAI_MAX_AGENT_MSG, one attempt
 * always: the rest wait for the next answers (d->partial).  JSON the tasks
 * point into is appended to hold, which must outlive m's encoding; the
 * removed ids point into the node's gone list, which must too. */
void engine_desired_set(const engine_node_t *n, engine_desired_t *d, agentwire_resp_t *m,
                        json_t *hold);

#endif
