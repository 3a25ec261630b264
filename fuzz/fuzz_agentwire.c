/*
 * fuzz_agentwire.c - libFuzzer target for the agent protocol's messages
 * (wire/agentwire.h, docs/agent-protocol.md), every version: version 3's
 * epoch and delta answers (base_seq, removed), version 4's digests
 * (desc, same, node_desc) and version 5's placements (jobenv, the
 * request's accept) included.
 *
 * Any input, read as an answer (agentwire_resp_parse) and as a request
 * (agentwire_req_decode): it must be decoded or refused with a message (no
 * crash, leak or hang).  A decoded message must keep the documented shape
 * (a delta has tasks; removed ids only in a delta, never empty), encode
 * again, and decode from that encoding into a message that encodes to the
 * same JSON (round trip); a request must also come out of the agent's
 * writer (agentwire_req_dumps) as the same JSON as the encoder's (with the
 * writer's digest as "desc"); an answer's text writer must write the
 * tree's JSON, and the variables derived from a placement are bounded and
 * named without '=', each once.  Seeds:
 * fuzz/agentwire/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "fuzz_entry.h"
#include "wire/agentwire.h"

static void check_resp_shape(const agentwire_resp_t *r)
{
    if (r->version < AGENTWIRE_MIN_VERSION || r->version > AGENTWIRE_VERSION)
        abort();
    if (r->delta && (!r->has_tasks || r->version < 3))
        abort();
    if (!r->delta && r->nremoved)
        abort();
    for (size_t i = 0; i < r->nremoved; i++)
        if (!r->removed[i] || !*r->removed[i] || strlen(r->removed[i]) > PAI_MAX_ATTEMPT_ID)
            abort();
    if (r->epoch && (!*r->epoch || strlen(r->epoch) > AGENTWIRE_EPOCH_MAX))
        abort();
    for (size_t i = 0; i < r->ntasks; i++)
        if (!r->tasks[i].attempt_id || !*r->tasks[i].attempt_id)
            abort();
}

/* Version 5: the variables derived from a task's placement are at most
 * PAI_MAX_AGENT_LIST, each named without '=', none twice; and the server's
 * text writer writes the tree's JSON. */
static void check_jobenv(const agentwire_resp_t *r)
{
    for (size_t i = 0; i < r->ntasks; i++) {
        const agentwire_task_t *t = &r->tasks[i];
        if (!t->jobenv)
            continue;
        if (r->version < AGENTWIRE_JOBENV_VERSION || t->nenv > PAI_MAX_AGENT_LIST ||
            agentwire_jobenv_check(t->jobenv))
            abort();
        for (size_t k = 0; k < t->nenv; k++) {
            if (!*t->env[k].name || strchr(t->env[k].name, '='))
                abort();
            for (size_t m = 0; m < k && t->nenv <= 64; m++)
                if (strcmp(t->env[m].name, t->env[k].name) == 0)
                    abort();
        }
    }
    json_t *tree = agentwire_resp_encode(r);
    size_t len = 0;
    char *text = agentwire_resp_dumps(r, &len);
    json_t *back = json_loadb(text, len, 0, NULL);
    if (!back || !json_equal(back, tree))
        abort();
    json_decref(back);
    free(text);
    json_decref(tree);
}

static void resp_round_trip(const agentwire_resp_t *r)
{
    json_t *once = agentwire_resp_encode(r);
    agentwire_resp_t again;
    if (agentwire_resp_decode(once, &again, NULL) != PAI_OK)
        abort();
    check_resp_shape(&again);
    json_t *twice = agentwire_resp_encode(&again);
    if (!json_equal(once, twice))
        abort();
    json_decref(twice);
    agentwire_resp_clear(&again);
    json_decref(once);
}

static void req_round_trip(const agentwire_req_t *q)
{
    json_t *once = agentwire_req_encode(q);
    agentwire_req_t again;
    if (agentwire_req_decode(once, &again, NULL) != PAI_OK)
        abort();
    if (again.epoch && (again.version < 3 || !*again.epoch))
        abort();
    json_t *twice = agentwire_req_encode(&again);
    if (!json_equal(once, twice))
        abort();
    /* the agent's writer: the same JSON as the encoder's, with the
     * description whole and the writer's own digest (version 4) */
    agentwire_node_cache_t c = {0};
    size_t len = 0;
    char *text = agentwire_req_dumps(&again, &c, &len);
    agentwire_req_t whole = again;
    whole.node.same = NULL;
    whole.node.desc = c.desc;
    json_t *expect = agentwire_req_encode(&whole);
    json_t *written = text ? json_loadb(text, len, 0, NULL) : NULL;
    if (!written || !json_equal(written, expect))
        abort();
    json_decref(expect);
    json_decref(written);
    free(text);
    agentwire_node_cache_free(&c);
    json_decref(twice);
    agentwire_req_clear(&again);
    json_decref(once);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agentwire_resp_t r;
    pai_error_t e = PAI_ERROR_INIT;
    if (agentwire_resp_parse((const char *)data, size, &r, &e) == PAI_OK) {
        check_resp_shape(&r);
        check_jobenv(&r);
        resp_round_trip(&r);
        agentwire_resp_clear(&r);
    } else if (!pai_error_msg(&e)[0]) {
        abort(); /* a refusal says why */
    }
    pai_error_free(&e);
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!root)
        return 0;
    agentwire_req_t q; /* e was reset by pai_error_free */
    if (agentwire_req_decode(root, &q, &e) == PAI_OK) {
        req_round_trip(&q);
        agentwire_req_clear(&q);
    } else if (!pai_error_msg(&e)[0]) {
        abort();
    }
    pai_error_free(&e);
    json_decref(root);
    return 0;
}
