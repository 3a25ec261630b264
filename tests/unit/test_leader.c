/*
 * test_leader.c - the leader election's state machine (server/leader.h):
 * promotion, renewal deadlines, fail-stop on a lost or lapsed lease, the
 * gate of a single server.  The clock is passed in; no store, no threads.
 */
#include <string.h>

#include "server/leader.h"
#include "test.h"

#define LEASE 5000

static store_lease_t held(int64_t term)
{
    store_lease_t l;
    memset(&l, 0, sizeof(l));
    l.held = true;
    l.term = term;
    l.remaining_ms = LEASE;
    return l;
}

static store_lease_t other(int64_t term)
{
    store_lease_t l = held(term);
    l.held = false;
    return l;
}

TEST(margin_leaves_room_for_the_watchdog)
{
    CHECK_INT_EQ(leader_margin_ms(5000), 1000);
    CHECK(leader_margin_ms(2000) >= 200);
    CHECK(leader_margin_ms(100) < 100 * 10); /* never negative deadlines in practice */
}

TEST(standby_is_promoted_when_it_holds_the_lease_and_acts_only_once_leading)
{
    leader_state_t s = {.role = LEADER_STANDBY};
    store_lease_t o = other(3);
    CHECK(leader_step(&s, true, &o, 0, LEASE) == LEADER_ACT_NONE);
    CHECK(s.role == LEADER_STANDBY);
    CHECK(!leader_may_act(&s, 0));
    store_lease_t h = held(4);
    CHECK(leader_step(&s, true, &h, 1000, LEASE) == LEADER_ACT_PROMOTE);
    CHECK(s.role == LEADER_PROMOTING);
    CHECK_INT_EQ(s.term, 4);
    CHECK_INT_EQ(s.deadline_ms, 1000 + LEASE - leader_margin_ms(LEASE));
    CHECK(!leader_may_act(&s, 1001)); /* restoring: the gate stays closed */
    s.role = LEADER_LEADING;          /* leader_promoted */
    CHECK(leader_may_act(&s, 1001));
}

TEST(renewal_moves_the_deadline_from_the_time_it_was_sent)
{
    leader_state_t s = {.role = LEADER_LEADING, .term = 2, .deadline_ms = 4000};
    store_lease_t h = held(2);
    CHECK(leader_step(&s, true, &h, 1700, LEASE) == LEADER_ACT_NONE);
    CHECK_INT_EQ(s.deadline_ms, 1700 + LEASE - leader_margin_ms(LEASE));
    /* the lease the database keeps ends at (its time of the UPDATE) + LEASE,
     * later than sent + LEASE: the local deadline always comes first */
    CHECK(s.deadline_ms < 1700 + LEASE);
}

TEST(unanswered_rounds_leave_the_deadline_then_the_watchdog_stops_the_leader)
{
    leader_state_t s = {.role = LEADER_LEADING, .term = 2, .deadline_ms = 4000};
    store_lease_t junk = held(99);
    CHECK(leader_step(&s, false, &junk, 2000, LEASE) == LEADER_ACT_NONE);
    CHECK(leader_step(&s, false, &junk, 3500, LEASE) == LEADER_ACT_NONE);
    CHECK_INT_EQ(s.deadline_ms, 4000);
    CHECK(leader_check(&s, 3999) == LEADER_ACT_NONE);
    CHECK(leader_may_act(&s, 3999));
    CHECK(leader_check(&s, 4000) == LEADER_ACT_FAILSTOP);
    CHECK(!leader_may_act(&s, 4000)); /* the gate is closed even before the exit */
}

TEST(lease_taken_by_another_or_under_another_term_stops_the_leader)
{
    leader_state_t s = {.role = LEADER_LEADING, .term = 2, .deadline_ms = 4000};
    store_lease_t o = other(3);
    CHECK(leader_step(&s, true, &o, 1000, LEASE) == LEADER_ACT_FAILSTOP);
    leader_state_t p = {.role = LEADER_PROMOTING, .term = 2, .deadline_ms = 4000};
    store_lease_t h = held(3);
    CHECK(leader_step(&p, true, &h, 1000, LEASE) == LEADER_ACT_FAILSTOP);
}

TEST(failed_renewal_is_tried_again_at_once_not_a_period_later)
{
    /* a leader renews every lease/3 from the start of the last round */
    CHECK_INT_EQ(leader_next_round_ms(true, true, 1000, 1040, LEASE), 1000 + LEASE / 3);
    /* a failed renewal (it may have waited long): 100 ms after it failed */
    CHECK_INT_EQ(leader_next_round_ms(true, false, 1000, 3000, LEASE), 3100);
    /* a standby every lease/10, at least 100 ms apart */
    CHECK_INT_EQ(leader_next_round_ms(false, true, 1000, 1040, LEASE), 1000 + LEASE / 10);
    CHECK_INT_EQ(leader_next_round_ms(false, false, 1000, 1040, 600), 1100);
}

TEST(standby_never_fails_stop)
{
    leader_state_t s = {.role = LEADER_STANDBY};
    CHECK(leader_check(&s, 1000000) == LEADER_ACT_NONE);
    store_lease_t junk = held(1);
    CHECK(leader_step(&s, false, &junk, 0, LEASE) == LEADER_ACT_NONE);
    CHECK(s.role == LEADER_STANDBY);
}

TEST(single_server_always_acts)
{
    leader_state_t s = {.role = LEADER_SINGLE};
    store_lease_t o = other(1);
    CHECK(leader_step(&s, true, &o, 0, LEASE) == LEADER_ACT_NONE);
    CHECK(leader_check(&s, 1000000000) == LEADER_ACT_NONE);
    CHECK(leader_may_act(&s, 1000000000));
    CHECK_STR_EQ(leader_role_name(s.role), "leader");
}

TEST(sqlite_server_leads_alone_and_its_gate_is_open)
{
    char dir[] = "/tmp/pai-leader-XXXXXX", url[128], err[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(url, sizeof(url), "sqlite:%s/pai.db", dir);
    store_t *st = NULL;
    CHECK(store_open(url, &st, err, sizeof(err)) == PAI_OK);
    if (!st)
        return;
    leader_t *l = leader_new(st, LEASE);
    CHECK(leader_is_single(l));
    leader_set_url(l, "http://a:1");
    CHECK(leader_start(l) == PAI_OK);
    CHECK(leader_wait_elected(l, 0));
    pai_error_t e = PAI_ERROR_INIT;
    bool modules = false;
    CHECK(leader_gate(l, "POST", "/api/v2/jobs", &modules, &e) == PAI_OK);
    CHECK(modules);
    json_t *info = leader_info_json(l);
    CHECK_STR_EQ(json_string_value(json_object_get(info, "role")), "leader");
    CHECK_STR_EQ(json_string_value(json_object_get(info, "leader")), "http://a:1");
    json_decref(info);
    leader_free(l);
    store_close(st);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

RUN_TESTS(margin_leaves_room_for_the_watchdog,
          standby_is_promoted_when_it_holds_the_lease_and_acts_only_once_leading,
          renewal_moves_the_deadline_from_the_time_it_was_sent,
          unanswered_rounds_leave_the_deadline_then_the_watchdog_stops_the_leader,
          lease_taken_by_another_or_under_another_term_stops_the_leader,
          failed_renewal_is_tried_again_at_once_not_a_period_later, standby_never_fails_stop,
          single_server_always_acts, sqlite_server_leads_alone_and_its_gate_is_open)
