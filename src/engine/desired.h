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

/* The node's desired set into m (mu held).  In version 2, an attempt the
 * agent reported in this sync (in reported: it has it) is sent without its
 * command, and the commands (and registry auth) of the others fill at most
 * half of PAI_MAX_AGENT_MSG, one attempt always: the rest wait for the next
 * answers (*partial).  JSON the tasks point into is appended to hold, which
 * must outlive m's encoding. */
void engine_desired_set(const engine_node_t *n, const strmap_t *reported, agentwire_resp_t *m,
                        json_t *hold, bool *partial);

#endif
