/* test_nodecred.c - node identity: who may sync as a node, issue, rotation,
 * revocation, and the stored form (src/engine/nodecred.h). */
#include <string.h>

#include "common/util.h"
#include "engine/nodecred.h"
#include "test.h"
#include "wire/agentwire.h"

/* nodecred_check without the error's text; true when allowed. */
static bool may(nodecred_t *c, const char *cred, nodecred_verdict_t *v)
{
    pai_error_t e = PAI_ERROR_INIT;
    bool ok = nodecred_check(c, "n1", cred, true, v, &e) == PAI_OK;
    pai_error_free(&e);
    return ok;
}

/* A node registered with the join token whose credential was used once. */
static void registered(nodecred_t *c, char cred[PAI_MAX_NODE_CRED + 1])
{
    nodecred_verdict_t v;
    *c = (nodecred_t){0};
    CHECK(may(c, NULL, &v) && v.issue);
    nodecred_issue(c, cred);
    CHECK(may(c, cred, &v) && v.changed && !v.issue);
    CHECK_INT_EQ(c->state, NODECRED_ACTIVE);
}

TEST(join_token_registers_a_new_name_and_gets_a_credential)
{
    nodecred_t c = {0};
    nodecred_verdict_t v;
    char cred[PAI_MAX_NODE_CRED + 1];
    CHECK(may(&c, NULL, &v) && v.issue);
    nodecred_issue(&c, cred);
    CHECK(str_has_prefix(cred, AGENTWIRE_CRED_PREFIX));
    CHECK_INT_EQ(strlen(cred), strlen(AGENTWIRE_CRED_PREFIX) + 64);
    CHECK_INT_EQ(c.state, NODECRED_PENDING);
    CHECK(strstr(c.hash, cred + 4) == NULL); /* only a hash is kept */
    CHECK_STR_EQ(nodecred_state_name(&c), "pending");
    CHECK(str_has_prefix(c.log_key, AGENTWIRE_LOGKEY_PREFIX));
    CHECK_INT_EQ(strlen(c.log_key), strlen(AGENTWIRE_LOGKEY_PREFIX) + 64);
}

TEST(version_1_agents_join_without_a_credential)
{
    nodecred_t c = {0};
    nodecred_verdict_t v;
    CHECK(nodecred_check(&c, "n1", NULL, false, &v, NULL) == PAI_OK);
    CHECK(!v.issue && c.state == NODECRED_NONE);
}

TEST(a_pending_credential_can_be_replaced_by_the_join_token)
{
    nodecred_t c = {0};
    nodecred_verdict_t v;
    char first[PAI_MAX_NODE_CRED + 1], second[PAI_MAX_NODE_CRED + 1];
    CHECK(may(&c, NULL, &v));
    nodecred_issue(&c, first);
    CHECK(may(&c, NULL, &v) && v.issue); /* the agent died before keeping it */
    nodecred_issue(&c, second);
    CHECK(strcmp(first, second) != 0);
    CHECK(!may(&c, first, &v));
    CHECK(may(&c, second, &v) && v.changed);
    CHECK_STR_EQ(nodecred_state_name(&c), "active");
}

TEST(join_token_cannot_take_over_an_active_node)
{
    nodecred_t c;
    char cred[PAI_MAX_NODE_CRED + 1];
    registered(&c, cred);
    nodecred_verdict_t v;
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(nodecred_check(&c, "n1", NULL, true, &v, &e) == PAI_E_FORBIDDEN);
    CHECK_STR_CONTAINS(pai_error_msg(&e), "pai nodes revoke n1");
    pai_error_free(&e);
    CHECK(may(&c, cred, &v) && !v.changed && !v.issue);
}

TEST(another_nodes_credential_is_refused)
{
    nodecred_t a, b;
    char ca[PAI_MAX_NODE_CRED + 1], cb[PAI_MAX_NODE_CRED + 1];
    registered(&a, ca);
    registered(&b, cb);
    nodecred_verdict_t v;
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(nodecred_check(&a, "n1", cb, true, &v, &e) == PAI_E_FORBIDDEN);
    CHECK_STR_CONTAINS(pai_error_msg(&e), "not node n1's");
    pai_error_free(&e);
    CHECK(!may(&a, "pn1.made-up", &v));
    nodecred_t none = {0}; /* a name never registered */
    CHECK(!may(&none, ca, &v));
}

TEST(rotation_issues_at_the_next_sync_and_retires_the_old_one)
{
    nodecred_t c;
    char old[PAI_MAX_NODE_CRED + 1], next[PAI_MAX_NODE_CRED + 1];
    registered(&c, old);
    CHECK(nodecred_rotate(&c) == PAI_OK);
    CHECK_STR_EQ(nodecred_state_name(&c), "rotating");
    nodecred_verdict_t v;
    CHECK(may(&c, old, &v) && v.issue);
    char log_key[PAI_MAX_NODE_CRED + 1];
    str_copy(log_key, c.log_key, sizeof log_key);
    nodecred_issue(&c, next);
    CHECK(strcmp(log_key, c.log_key) != 0); /* a new log key with the new credential */
    CHECK(may(&c, old, &v));                /* still valid until the new one is used */
    CHECK(may(&c, next, &v) && v.changed);
    CHECK_STR_EQ(nodecred_state_name(&c), "active");
    CHECK(!may(&c, old, &v));
    CHECK(may(&c, next, &v) && !v.issue);
}

TEST(rotation_needs_a_credential_in_use)
{
    nodecred_t c = {0};
    CHECK(nodecred_rotate(&c) == PAI_E_INVALID);
    char cred[PAI_MAX_NODE_CRED + 1];
    nodecred_issue(&c, cred);
    CHECK(nodecred_rotate(&c) == PAI_E_INVALID); /* pending: never used */
}

TEST(revocation_refuses_every_credential_and_lets_the_name_join_again)
{
    nodecred_t c;
    char cred[PAI_MAX_NODE_CRED + 1], next[PAI_MAX_NODE_CRED + 1];
    registered(&c, cred);
    CHECK(nodecred_rotate(&c) == PAI_OK);
    nodecred_verdict_t v;
    CHECK(may(&c, cred, &v) && v.issue);
    nodecred_issue(&c, next);
    nodecred_revoke(&c);
    CHECK_STR_EQ(nodecred_state_name(&c), "revoked");
    CHECK_STR_EQ(c.log_key, ""); /* the server presents the join token again */
    CHECK(!may(&c, cred, &v));
    CHECK(!may(&c, next, &v));
    CHECK(may(&c, NULL, &v) && v.issue);
}

TEST(the_stored_form_round_trips_with_hashes_only)
{
    nodecred_t c, back;
    char cred[PAI_MAX_NODE_CRED + 1], next[PAI_MAX_NODE_CRED + 1];
    registered(&c, cred);
    CHECK(nodecred_rotate(&c) == PAI_OK);
    nodecred_issue(&c, next);
    json_t *o = nodecred_encode(&c);
    char *text = json_dumps(o, JSON_COMPACT);
    CHECK(strstr(text, cred + 4) == NULL && strstr(text, next + 4) == NULL);
    nodecred_decode(o, &back);
    CHECK(c.state == back.state && c.rotate == back.rotate && c.revoked == back.revoked);
    CHECK_STR_EQ(c.hash, back.hash);
    CHECK_STR_EQ(c.next, back.next);
    CHECK_STR_EQ(c.log_key, back.log_key);
    free(text);
    json_decref(o);
    nodecred_decode(NULL, &back);
    CHECK_INT_EQ(back.state, NODECRED_NONE);
    o = json_pack("{ss ss}", "state", "active", "hash", "short");
    nodecred_decode(o, &back);
    CHECK_INT_EQ(back.state, NODECRED_NONE);
    json_decref(o);
}

TEST(manual_approval_holds_new_and_revoked_names_until_approved)
{
    nodecred_t c = {0};
    CHECK(nodecred_needs_approval(&c, false));    /* a name never seen */
    CHECK(nodecred_approve(&c) == PAI_E_INVALID); /* not waiting */
    c.awaiting = true;
    CHECK_STR_EQ(nodecred_state_name(&c), "awaiting-approval");
    CHECK(nodecred_needs_approval(&c, true));
    json_t *o = nodecred_encode(&c);
    nodecred_t back;
    nodecred_decode(o, &back);
    CHECK(back.awaiting && back.state == NODECRED_NONE);
    json_decref(o);
    CHECK(nodecred_approve(&c) == PAI_OK);
    CHECK(!nodecred_needs_approval(&c, true));
    nodecred_verdict_t v;
    CHECK(may(&c, NULL, &v) && v.issue); /* approved: the join token registers it */
    char cred[PAI_MAX_NODE_CRED + 1];
    nodecred_issue(&c, cred);
    CHECK(may(&c, cred, &v));
    CHECK(!nodecred_needs_approval(&c, true));
    nodecred_revoke(&c);
    CHECK(nodecred_needs_approval(&c, true));     /* revoked: approved again before it joins */
    CHECK(nodecred_approve(&c) == PAI_E_INVALID); /* until its agent asks (awaiting set) */
}

RUN_TESTS(join_token_registers_a_new_name_and_gets_a_credential,
          version_1_agents_join_without_a_credential,
          a_pending_credential_can_be_replaced_by_the_join_token,
          join_token_cannot_take_over_an_active_node, another_nodes_credential_is_refused,
          rotation_issues_at_the_next_sync_and_retires_the_old_one,
          rotation_needs_a_credential_in_use,
          revocation_refuses_every_credential_and_lets_the_name_join_again,
          the_stored_form_round_trips_with_hashes_only,
          manual_approval_holds_new_and_revoked_names_until_approved)
