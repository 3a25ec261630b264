/* agentwire_fixture.h - helpers shared by the agent protocol's unit tests
 * (test_agentwire.c, test_agentwire_v3.c). */
#ifndef PAI_TEST_AGENTWIRE_FIXTURE_H
#define PAI_TEST_AGENTWIRE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "test.h"
#include "wire/agentwire.h"

static inline char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT);
}

/* Decode a request; its error message (or "") into err. */
static inline pai_err_t decode_req_text(const char *text, char *err, size_t errlen)
{
    json_t *j = json_loads(text, 0, NULL);
    agentwire_req_t r;
    pai_error_t e = PAI_ERROR_INIT;
    pai_err_t rc = agentwire_req_decode(j, &r, &e);
    str_copy(err, rc == PAI_OK ? "" : pai_error_msg(&e), errlen);
    CHECK_INT_EQ(e.code, rc);
    if (rc == PAI_OK)
        agentwire_req_clear(&r);
    pai_error_free(&e);
    json_decref(j);
    return rc;
}

/* Parse a response body; its error message (or "") into err. */
static inline pai_err_t parse_resp_text(const char *body, size_t len, agentwire_resp_t *r,
                                        char *err, size_t errlen)
{
    pai_error_t e = PAI_ERROR_INIT;
    pai_err_t rc = agentwire_resp_parse(body, len, r, &e);
    str_copy(err, rc == PAI_OK ? "" : pai_error_msg(&e), errlen);
    pai_error_free(&e);
    return rc;
}

/* The request as agentwire_req_dumps writes it is byte for byte the
 * encoder's (json_dumps of agentwire_req_encode), its node carrying the
 * cache's digest in version 4 ("same" once acked, else "desc"). */
static inline bool dumps_same(const agentwire_req_t *m, agentwire_node_cache_t *c)
{
    size_t len = 0;
    char *fast = agentwire_req_dumps(m, c, &len);
    agentwire_req_t m2 = *m;
    if (strcmp(c->acked, c->desc) == 0)
        m2.node =
            (agentwire_node_t){.name = m->node.name, .same = c->desc, .health = m->node.health};
    else
        m2.node.desc = c->desc;
    json_t *j = agentwire_req_encode(&m2);
    char *slow = dump(j);
    bool same = fast && slow && len == strlen(slow) && strcmp(fast, slow) == 0;
    if (!same)
        fprintf(stderr, "dumps:  %s\nencode: %s\n", fast ? fast : "(null)", slow ? slow : "(null)");
    free(fast);
    free(slow);
    json_decref(j);
    return same;
}

#endif
