/* test_auth.c - the auth model: bootstrap, identification, tokens, ACL queries. */
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "test_srvctx.h"

static pai_err_t ident(srvctx_t *s, const char *tok, auth_ident_t *id)
{
    char h[400];
    snprintf(h, sizeof(h), "Bearer %s", tok);
    return auth_identify(s->ctx.auth, h, id);
}

TEST(bootstrap_creates_admin_and_builtin_groups)
{
    srvctx_t s = {0};
    CHECK(srvctx_open(&s, NULL, NULL) == 0);
    CHECK(auth_user_exists(&s.ctx, "admin"));
    CHECK(auth_user_is_admin(&s.ctx, "admin"));
    CHECK(auth_user_can_use_vc(&s.ctx, "admin", "anything"));
    CHECK(json_object_get(s.ctx.auth->groups, AUTH_ADMIN_GROUP) != NULL);
    CHECK(json_object_get(s.ctx.auth->groups, AUTH_DEFAULT_GROUP) != NULL);
    CHECK(strlen(s.ctx.auth->agent_token) >= 32);
    srvctx_close(&s);
}

TEST(tokens_identify_until_revoked_or_expired)
{
    srvctx_t s = {0};
    CHECK(srvctx_open(&s, NULL, NULL) == 0);
    char *user_tok = NULL, *app_tok = NULL, *short_tok = NULL;
    CHECK(auth_token_new(s.ctx.auth, "admin", false, 3600, &user_tok) == PAI_OK);
    CHECK(auth_token_new(s.ctx.auth, "admin", true, 0, &app_tok) == PAI_OK);
    CHECK(auth_token_new(s.ctx.auth, "admin", false, 1, &short_tok) == PAI_OK);
    auth_ident_t id;
    CHECK(ident(&s, user_tok, &id) == PAI_OK);
    CHECK(id.who.authenticated && id.who.admin && !id.who.app_token);
    CHECK_STR_EQ(id.who.username, "admin");
    CHECK(ident(&s, app_tok, &id) == PAI_OK && id.who.app_token);
    /* a tampered secret with a valid id */
    char bad[200];
    str_copy(bad, user_tok, sizeof(bad));
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'a' ? 'b' : 'a';
    CHECK(ident(&s, bad, &id) == PAI_E_UNAUTHORIZED && !id.who.authenticated);
    CHECK(ident(&s, "nodot", &id) == PAI_E_UNAUTHORIZED);
    CHECK(auth_identify(s.ctx.auth, "Basic abc", &id) == PAI_E_UNAUTHORIZED);
    CHECK(auth_identify(s.ctx.auth, NULL, &id) == PAI_OK && !id.who.authenticated);
    /* revoke */
    char tid[64];
    str_copy(tid, user_tok, sizeof(tid));
    tid[strcspn(tid, ".")] = '\0';
    CHECK(auth_token_del(s.ctx.auth, tid) == PAI_OK);
    CHECK(ident(&s, user_tok, &id) == PAI_E_UNAUTHORIZED);
    /* expiry */
    sleep(2);
    CHECK(ident(&s, short_tok, &id) == PAI_E_UNAUTHORIZED);
    CHECK(ident(&s, app_tok, &id) == PAI_OK);
    /* agent token */
    CHECK(ident(&s, s.ctx.auth->agent_token, &id) == PAI_OK && id.who.agent && !id.who.admin);
    free(user_tok);
    free(app_tok);
    free(short_tok);
    srvctx_close(&s);
}

TEST(tokens_and_users_survive_reopen)
{
    srvctx_t s = {0};
    CHECK(srvctx_open(&s, NULL, NULL) == 0);
    char *tok = NULL;
    CHECK(auth_token_new(s.ctx.auth, "admin", true, 0, &tok) == PAI_OK);
    server_module_auth.fini(&s.ctx);
    CHECK(server_module_auth.init(&s.ctx) == PAI_OK);
    auth_ident_t id;
    CHECK(ident(&s, tok, &id) == PAI_OK && id.who.app_token);
    free(tok);
    srvctx_close(&s);
}

TEST(vc_and_storage_queries_follow_group_acls)
{
    srvctx_t s = {0};
    CHECK(srvctx_open(&s, NULL, NULL) == 0);
    auth_t *a = s.ctx.auth;
    json_t *u = json_pack("{s:s, s:s, s:s, s:[s,s], s:{}}", "username", "bo", "passwordHash", "x",
                          "email", "", "grouplist", "default", "vc1", "extension");
    CHECK(auth_vc_added(&s.ctx, "vc1") == PAI_OK);
    pthread_mutex_lock(&a->wlock);
    auth_change_t ch = {"user", "bo", u};
    CHECK(auth_commit(a, &ch, 1) == PAI_OK);
    pthread_mutex_unlock(&a->wlock);
    CHECK(auth_user_can_use_vc(&s.ctx, "bo", "vc1"));
    CHECK(auth_user_can_use_vc(&s.ctx, "bo", "default"));
    CHECK(!auth_user_can_use_vc(&s.ctx, "bo", "vc2"));
    CHECK(!auth_user_can_use_vc(&s.ctx, "nobody", "default"));
    CHECK(!auth_user_can_use_vc(&s.ctx, NULL, "default"));
    json_t *vcs = auth_user_vcs(&s.ctx, "bo");
    CHECK(json_array_size(vcs) == 2);
    json_decref(vcs);
    CHECK(auth_vc_removed(&s.ctx, "vc1") == PAI_OK);
    CHECK(!auth_user_can_use_vc(&s.ctx, "bo", "vc1"));
    CHECK(!auth_user_is_admin(&s.ctx, "bo"));
    CHECK(!auth_user_can_use_storage(&s.ctx, "bo", "nope"));
    json_decref(u);
    srvctx_close(&s);
}

TEST(expired_tokens_are_swept_while_running)
{
    srvctx_t s = {0};
    CHECK(srvctx_open(&s, NULL, NULL) == 0);
    char *tok = NULL;
    CHECK(auth_token_new(s.ctx.auth, "admin", false, 1, &tok) == PAI_OK);
    free(tok);
    sleep(2);
    for (int i = 1; i < 256; i++) {
        CHECK(auth_token_new(s.ctx.auth, "admin", true, 0, &tok) == PAI_OK);
        free(tok);
    }
    CHECK_INT_EQ(json_object_size(s.ctx.auth->tokens), 255);
    srvctx_close(&s);
}

static int count_rec(void *ud, const char *kind, const char *key, int64_t seq, const char *json)
{
    (void)kind, (void)key, (void)seq, (void)json;
    ++*(int *)ud;
    return 0;
}

static int store_records(store_t *st)
{
    int n = 0;
    return store_scan_all(st, count_rec, &n) == PAI_OK ? n : -1;
}

/* A standby's view (auth_view_new): loads what the store has without
 * writing (no purge, no admin, no built-in group), learns a token made
 * after it was loaded on first use, and forgets nothing until rebuilt. */
TEST(standby_view_reads_the_store_and_never_writes)
{
    srvctx_t s = {0};
    CHECK(srvctx_open(&s, NULL, NULL) == 0);
    char *old_tok = NULL, *expired = NULL, *new_tok = NULL;
    CHECK(auth_token_new(s.ctx.auth, "admin", false, 3600, &old_tok) == PAI_OK);
    CHECK(auth_token_new(s.ctx.auth, "admin", false, 1, &expired) == PAI_OK);
    sleep(2);
    int before = store_records(s.ctx.store);
    server_ctx_t vctx = {.cfg = s.ctx.cfg, .store = s.ctx.store};
    auth_t *v = NULL;
    CHECK(auth_view_new(&vctx, &v) == PAI_OK);
    vctx.auth = v;
    CHECK(v->readonly);
    CHECK_INT_EQ(store_records(s.ctx.store), before); /* the expired token was not purged */
    CHECK(auth_user_is_admin(&vctx, "admin"));
    auth_ident_t id;
    char h[400];
    snprintf(h, sizeof(h), "Bearer %s", old_tok);
    CHECK(auth_identify(v, h, &id) == PAI_OK && id.who.admin);
    snprintf(h, sizeof(h), "Bearer %s", expired);
    CHECK(auth_identify(v, h, &id) == PAI_E_UNAUTHORIZED);
    /* made by the leader after the view was loaded: read on first use */
    CHECK(auth_token_new(s.ctx.auth, "admin", true, 0, &new_tok) == PAI_OK);
    snprintf(h, sizeof(h), "Bearer %s", new_tok);
    CHECK(auth_identify(v, h, &id) == PAI_OK && id.who.app_token);
    /* an id not of a token's form is not looked up; an unknown one is refused */
    CHECK(!auth_view_fetch_token(v, "../x"));
    CHECK(!auth_view_fetch_token(v, "0123456789abcdef"));
    CHECK(auth_identify(v, "Bearer 0123456789abcdef.00", &id) == PAI_E_UNAUTHORIZED);
    /* revoked at the leader: the view keeps it until rebuilt (the bound is
     * standby_refresh_s, server/standby.h), the rebuilt view refuses it */
    char tid[64];
    str_copy(tid, old_tok, sizeof(tid));
    tid[strcspn(tid, ".")] = '\0';
    CHECK(auth_token_del(s.ctx.auth, tid) == PAI_OK);
    snprintf(h, sizeof(h), "Bearer %s", old_tok);
    CHECK(auth_identify(v, h, &id) == PAI_OK);
    auth_free(v);
    CHECK(auth_view_new(&vctx, &v) == PAI_OK);
    CHECK(auth_identify(v, h, &id) == PAI_E_UNAUTHORIZED);
    CHECK_INT_EQ(store_records(s.ctx.store), before); /* -1 token, +1 token: none by the view */
    auth_free(v);
    free(old_tok);
    free(expired);
    free(new_tok);
    srvctx_close(&s);
}

TEST(names_refuse_traversal_and_reserved)
{
    CHECK(auth_name_ok("alice.b-c_1"));
    CHECK(!auth_name_ok("../x"));
    CHECK(!auth_name_ok(".x"));
    CHECK(!auth_name_ok("a/b"));
    CHECK(!auth_name_ok("me"));
    CHECK(!auth_name_ok(""));
    CHECK(!auth_name_ok("a~b"));
}

RUN_TESTS(bootstrap_creates_admin_and_builtin_groups, tokens_identify_until_revoked_or_expired,
          tokens_and_users_survive_reopen, vc_and_storage_queries_follow_group_acls,
          expired_tokens_are_swept_while_running, standby_view_reads_the_store_and_never_writes,
          names_refuse_traversal_and_reserved)
