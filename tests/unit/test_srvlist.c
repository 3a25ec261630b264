/*
 * test_srvlist.c - a client's list of servers and its failover
 * (common/srvlist.h): parsing, round robin, following a named leader,
 * which answers are redirects.
 */
#include <stdlib.h>
#include <string.h>

#include "common/srvlist.h"
#include "test.h"

TEST(parses_lists_with_spaces_and_trailing_slashes)
{
    srvlist_t l;
    CHECK(srvlist_parse(&l, "http://a:1/, https://b:2 ,http://c:3") == PAI_OK);
    CHECK_INT_EQ(l.n, 3);
    CHECK_STR_EQ(srvlist_current(&l), "http://a:1");
    CHECK_STR_EQ(l.urls[1], "https://b:2");
    srvlist_free(&l);
    CHECK(srvlist_parse(&l, "http://only:9186") == PAI_OK);
    CHECK_INT_EQ(l.n, 1);
    srvlist_free(&l);
}

TEST(refuses_empty_items_and_other_schemes)
{
    srvlist_t l;
    CHECK(srvlist_parse(&l, "") == PAI_E_INVALID);
    CHECK(srvlist_parse(&l, "http://a:1,,http://b:2") == PAI_E_INVALID);
    CHECK(srvlist_parse(&l, "http://a:1,ftp://b") == PAI_E_INVALID);
    CHECK(srvlist_parse(&l, "a:1") == PAI_E_INVALID);
    CHECK_INT_EQ(l.n, 0);
}

TEST(moves_round_robin_without_a_named_leader)
{
    srvlist_t l;
    CHECK(srvlist_parse(&l, "http://a,http://b,http://c") == PAI_OK);
    srvlist_next(&l, NULL);
    CHECK_STR_EQ(srvlist_current(&l), "http://b");
    srvlist_next(&l, "");
    CHECK_STR_EQ(srvlist_current(&l), "http://c");
    srvlist_next(&l, NULL);
    CHECK_STR_EQ(srvlist_current(&l), "http://a");
    srvlist_free(&l);
}

TEST(follows_the_named_leader_then_falls_back_to_the_list)
{
    srvlist_t l;
    CHECK(srvlist_parse(&l, "http://a,http://b") == PAI_OK);
    srvlist_next(&l, "http://elsewhere:9/");
    CHECK_STR_EQ(srvlist_current(&l), "http://elsewhere:9");
    /* naming the server we are at is no hint */
    srvlist_next(&l, "http://elsewhere:9");
    CHECK_STR_EQ(srvlist_current(&l), "http://b");
    srvlist_free(&l);
}

TEST(knows_which_answers_are_redirects)
{
    char *leader = NULL;
    const char *b421 = "{\"code\":\"NotLeaderError\",\"message\":\"m\",\"leader\":\"http://l:1\"}";
    CHECK(srvlist_is_redirect(421, b421, strlen(b421), &leader));
    CHECK_STR_EQ(leader ? leader : "", "http://l:1");
    free(leader);
    const char *b503 = "{\"code\":\"NoLeaderError\",\"message\":\"m\"}";
    CHECK(srvlist_is_redirect(503, b503, strlen(b503), &leader));
    CHECK(leader == NULL);
    const char *busy = "{\"code\":\"UnavailableError\",\"message\":\"log server busy\"}";
    CHECK(!srvlist_is_redirect(503, busy, strlen(busy), &leader));
    CHECK(!srvlist_is_redirect(404, b421, strlen(b421), &leader));
    CHECK(leader == NULL);
    const char *bad = "{\"code\":\"NotLeaderError\",\"leader\":\"file:///etc\"}";
    CHECK(srvlist_is_redirect(421, bad, strlen(bad), &leader));
    CHECK(leader == NULL); /* only http(s) URLs are followed */
}

RUN_TESTS(parses_lists_with_spaces_and_trailing_slashes, refuses_empty_items_and_other_schemes,
          moves_round_robin_without_a_named_leader,
          follows_the_named_leader_then_falls_back_to_the_list, knows_which_answers_are_redirects)
