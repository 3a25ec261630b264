/* test_connlimit.c - connection admission: per-address idle bound, eviction
 * of the oldest idle connection, busy connections kept, refusal when full. */
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/connlimit.h"
#include "test.h"

typedef struct {
    int ours, peer; /* ours plays the server's connection fd */
    connlimit_conn_t *c;
} fake_t;

static struct sockaddr_in addr_of(unsigned last_octet)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(0x7f000000u | last_octet);
    return a;
}

/* Admit and open one connection from 127.0.0.<octet>; false when refused. */
static bool connect_from(connlimit_t *cl, unsigned octet, fake_t *f)
{
    struct sockaddr_in a = addr_of(octet);
    int sv[2];
    if (!connlimit_admit(cl, (struct sockaddr *)&a))
        return false;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    f->ours = sv[0];
    f->peer = sv[1];
    f->c = connlimit_open(cl, (struct sockaddr *)&a, f->ours);
    return true;
}

/* Was f's connection shut down (its owner reads end-of-file)? */
static bool was_evicted(const fake_t *f)
{
    struct pollfd p = {.fd = f->ours, .events = POLLIN};
    char ch;
    return poll(&p, 1, 0) == 1 && recv(f->ours, &ch, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Eviction shuts the reading side only: the owner can still answer a
 * request that raced it, and refuses to run it (connlimit_busy false). */
TEST(an_evicted_connection_can_still_answer_but_not_become_busy)
{
    connlimit_t *cl = connlimit_new(100, 1);
    fake_t f[2];
    CHECK(connect_from(cl, 1, &f[0]));
    CHECK(connect_from(cl, 1, &f[1]));
    CHECK(was_evicted(&f[0]));
    CHECK(!connlimit_busy(cl, f[0].c, true));
    CHECK(connlimit_busy(cl, f[1].c, true));
    CHECK(write(f[0].ours, "HTTP/1.1 503\r\n", 14) == 14); /* the answer still goes out */
    char got[16] = {0};
    CHECK(read(f[0].peer, got, sizeof got - 1) == 14 && strncmp(got, "HTTP/1.1 503", 12) == 0);
    connlimit_stats_t st;
    connlimit_get_stats(cl, &st);
    CHECK_INT_EQ(st.busy, 1);
    CHECK_INT_EQ(st.live, 1);
    connlimit_close(cl, f[0].c);
    close(f[0].ours);
    close(f[0].peer);
    connlimit_close(cl, f[1].c);
    close(f[1].ours);
    close(f[1].peer);
    connlimit_free(cl);
}

static void close_fake(connlimit_t *cl, fake_t *f)
{
    connlimit_close(cl, f->c);
    close(f->ours);
    close(f->peer);
}

TEST(an_address_over_its_idle_bound_loses_its_oldest_idle_connection)
{
    connlimit_t *cl = connlimit_new(100, 3);
    fake_t f[6];
    CHECK(connect_from(cl, 1, &f[0]));
    connlimit_busy(cl, f[0].c, true); /* a held long-poll: not idle, never evicted */
    for (int i = 1; i < 4; i++)
        CHECK(connect_from(cl, 1, &f[i]));
    for (int i = 0; i < 4; i++)
        CHECK(!was_evicted(&f[i]));
    CHECK(connect_from(cl, 1, &f[4])); /* a 4th idle one */
    CHECK(!was_evicted(&f[0]));
    CHECK(was_evicted(&f[1]));
    CHECK(!was_evicted(&f[2]));
    CHECK(connect_from(cl, 2, &f[5])); /* another address is not affected */
    CHECK(!was_evicted(&f[2]) && !was_evicted(&f[3]) && !was_evicted(&f[4]));
    connlimit_stats_t st;
    connlimit_get_stats(cl, &st);
    CHECK_INT_EQ(st.live, 5);
    CHECK_INT_EQ(st.busy, 1);
    CHECK_INT_EQ(st.evicted, 1);
    for (int i = 0; i < 6; i++)
        close_fake(cl, &f[i]);
    connlimit_get_stats(cl, &st);
    CHECK_INT_EQ(st.live, 0);
    CHECK_INT_EQ(st.busy, 0);
    connlimit_free(cl);
}

TEST(a_full_server_evicts_the_oldest_idle_and_refuses_only_when_all_are_busy)
{
    connlimit_t *cl = connlimit_new(2, 0);
    fake_t f[3];
    CHECK(connect_from(cl, 1, &f[0]));
    CHECK(connect_from(cl, 2, &f[1]));
    CHECK(connect_from(cl, 3, &f[2]));
    CHECK(was_evicted(&f[0]));
    CHECK(!was_evicted(&f[1]));
    connlimit_busy(cl, f[1].c, true);
    connlimit_busy(cl, f[2].c, true);
    fake_t g;
    CHECK(!connect_from(cl, 4, &g));
    connlimit_stats_t st;
    connlimit_get_stats(cl, &st);
    CHECK_INT_EQ(st.refused, 1);
    connlimit_busy(cl, f[2].c, false); /* its request answered: idle again */
    CHECK(connect_from(cl, 4, &g));
    CHECK(was_evicted(&f[2]));
    close_fake(cl, &g);
    for (int i = 0; i < 3; i++)
        close_fake(cl, &f[i]);
    connlimit_free(cl);
}

TEST(a_connection_whose_request_is_not_read_yet_is_not_evicted)
{
    connlimit_t *cl = connlimit_new(100, 2);
    fake_t f[4];
    CHECK(connect_from(cl, 1, &f[0]));
    CHECK(connect_from(cl, 1, &f[1]));
    CHECK(write(f[0].peer, "GET / HTTP/1.1\r\n", 16) == 16); /* sent, owner has not read */
    CHECK(connect_from(cl, 1, &f[2]));
    CHECK(!was_evicted(&f[0]));
    CHECK(was_evicted(&f[1]));
    CHECK(write(f[2].peer, "G", 1) == 1);
    CHECK(connect_from(cl, 1, &f[3])); /* every idle one talking: in, over the bound */
    CHECK(!was_evicted(&f[0]) && !was_evicted(&f[2]) && !was_evicted(&f[3]));
    for (int i = 0; i < 4; i++)
        close_fake(cl, &f[i]);
    connlimit_free(cl);
}

TEST(other_address_families_are_admitted_untracked)
{
    connlimit_t *cl = connlimit_new(1, 1);
    struct sockaddr un = {.sa_family = AF_UNIX};
    CHECK(connlimit_admit(cl, &un));
    CHECK(connlimit_open(cl, &un, -1) == NULL);
    connlimit_busy(cl, NULL, true);
    connlimit_close(cl, NULL);
    connlimit_free(cl);
}

/* A forwarder's connections rekeyed to the clients it vouches for: each
 * client has its own bound, the forwarder's address none of theirs. */
TEST(a_rekeyed_connection_counts_against_the_address_it_was_given)
{
    connlimit_t *cl = connlimit_new(100, 2);
    fake_t f[6];
    /* 127.0.0.9 forwards for 10.0.0.1 (f0, f1) and 10.0.0.2 (f2, f3) */
    for (int i = 0; i < 4; i++) {
        CHECK(connect_from(cl, 9, &f[i]));
        CHECK(connlimit_rekey(cl, f[i].c, i < 2 ? "10.0.0.1" : "::ffff:10.0.0.2"));
    }
    for (int i = 0; i < 4; i++)
        CHECK(!was_evicted(&f[i])); /* 2 each: none over its bound */
    /* a third for 10.0.0.1 evicts 10.0.0.1's oldest, not 10.0.0.2's */
    CHECK(connect_from(cl, 9, &f[4]));
    CHECK(connlimit_rekey(cl, f[4].c, "10.0.0.1"));
    CHECK(was_evicted(&f[0]));
    for (int i = 1; i < 5; i++)
        CHECK(!was_evicted(&f[i]));
    /* 10.0.0.2 connecting itself (IPv4) shares its bound with its forwarded ones */
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(0x0a000002u);
    CHECK(connlimit_admit(cl, (struct sockaddr *)&a));
    CHECK(was_evicted(&f[2]));
    CHECK(!was_evicted(&f[3]));
    /* not a numeric address: refused, c unchanged */
    CHECK(connect_from(cl, 9, &f[5]));
    CHECK(!connlimit_rekey(cl, f[5].c, "client.example"));
    CHECK(!connlimit_rekey(cl, NULL, "10.0.0.1"));
    for (int i = 0; i < 6; i++)
        close_fake(cl, &f[i]);
    connlimit_free(cl);
}

RUN_TESTS(a_rekeyed_connection_counts_against_the_address_it_was_given,
          an_address_over_its_idle_bound_loses_its_oldest_idle_connection,
          a_full_server_evicts_the_oldest_idle_and_refuses_only_when_all_are_busy,
          a_connection_whose_request_is_not_read_yet_is_not_evicted,
          an_evicted_connection_can_still_answer_but_not_become_busy,
          other_address_families_are_admitted_untracked)
