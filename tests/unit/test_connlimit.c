/* test_connlimit.c - connection admission: per-address idle bound, eviction
 * of the oldest idle connection, busy connections kept, refusal when full. */
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
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

/* Open a connection from 127.0.0.<octet> on fd (not a socket: never
 * examined while busy); busy at once when `busy`. */
static connlimit_conn_t *open_on(connlimit_t *cl, unsigned octet, int fd, bool busy)
{
    struct sockaddr_in a = addr_of(octet);
    if (!connlimit_admit(cl, (struct sockaddr *)&a))
        return NULL;
    connlimit_conn_t *c = connlimit_open(cl, (struct sockaddr *)&a, fd);
    if (busy)
        connlimit_busy(cl, c, true);
    return c;
}

static uint64_t examined(connlimit_t *cl)
{
    connlimit_stats_t st;
    connlimit_get_stats(cl, &st);
    return st.examined;
}

/* 20,000 connections, nearly all busy (held long polls): an admission at
 * the cap looks at the few idle ones only, in the order they became idle,
 * and skips the talking one. */
#define MANY 20000
TEST(admission_at_the_cap_examines_idle_connections_only)
{
    connlimit_t *cl = connlimit_new(MANY, 100);
    static connlimit_conn_t *c[MANY];
    fake_t talk, silent1, silent2, early, g[4];
    struct sockaddr_in a;
    for (int i = 0; i < MANY; i++) {
        unsigned octet = 1 + (unsigned)i % 10;
        fake_t *f = i == 100     ? &early
                    : i == 5000  ? &talk
                    : i == 12000 ? &silent1
                    : i == 19000 ? &silent2
                                 : NULL;
        if (f) {
            CHECK(connect_from(cl, octet, f));
            c[i] = f->c;
            if (f == &early)
                connlimit_busy(cl, c[i], true);
        } else {
            c[i] = open_on(cl, octet, -1, true);
        }
        CHECK(c[i] != NULL);
    }
    CHECK_INT_EQ(examined(cl), 0);
    CHECK(write(talk.peer, "GET", 3) == 3);
    connlimit_busy(cl, early.c, false); /* idle since now: after the others */
    CHECK(connect_from(cl, 20, &g[0])); /* the cap: 12000 goes, 5000 talks */
    CHECK(was_evicted(&silent1) && !was_evicted(&talk) && !was_evicted(&silent2));
    CHECK_INT_EQ(examined(cl), 2);
    CHECK(connect_from(cl, 20, &g[1])); /* then 19000, idle before early */
    CHECK(was_evicted(&silent2) && !was_evicted(&early));
    CHECK_INT_EQ(examined(cl), 4); /* 5000 again, then 19000 */
    connlimit_busy(cl, g[0].c, true);
    CHECK(connect_from(cl, 21, &g[2])); /* then early */
    CHECK(was_evicted(&early) && !was_evicted(&g[1]));
    connlimit_busy(cl, g[1].c, true);
    connlimit_busy(cl, g[2].c, true);
    a = addr_of(22);
    uint64_t before = examined(cl);
    CHECK(!connlimit_admit(cl, (struct sockaddr *)&a)); /* busy or talking, all */
    CHECK_INT_EQ(examined(cl) - before, 1);
    connlimit_stats_t st;
    connlimit_get_stats(cl, &st);
    CHECK_INT_EQ(st.live, MANY);
    CHECK_INT_EQ(st.busy, MANY - 1);
    CHECK_INT_EQ(st.evicted, 3);
    CHECK_INT_EQ(st.refused, 1);
    for (int i = 0; i < MANY; i++)
        if (c[i] != talk.c && c[i] != silent1.c && c[i] != silent2.c && c[i] != early.c)
            connlimit_close(cl, c[i]);
    close_fake(cl, &talk);
    close_fake(cl, &silent1);
    close_fake(cl, &silent2);
    close_fake(cl, &early);
    for (int i = 0; i < 3; i++)
        close_fake(cl, &g[i]);
    connlimit_get_stats(cl, &st);
    CHECK_INT_EQ(st.live, 0);
    CHECK_INT_EQ(st.busy, 0);
    connlimit_free(cl);
}

/* ---- the policy against a model that scans everything ------------------- */

#define M_SLOTS 64
#define M_MAX   12
#define M_PER   3

typedef struct {
    fake_t f;
    bool open, busy, evicted, talking;
    unsigned octet;    /* the address it counts against */
    unsigned long seq; /* when it became idle */
} mconn_t;

typedef struct {
    mconn_t s[M_SLOTS];
    unsigned long seq;
} model_t;

static bool m_idle(const mconn_t *m)
{
    return m->open && !m->busy && !m->evicted;
}

/* The longest idle connection that is not talking, of address octet (0:
 * any); -1 when none. */
static int m_oldest(const model_t *md, unsigned octet)
{
    int best = -1;
    for (int i = 0; i < M_SLOTS; i++) {
        const mconn_t *m = &md->s[i];
        if (m_idle(m) && !m->talking && (!octet || m->octet == octet) &&
            (best < 0 || m->seq < md->s[best].seq))
            best = i;
    }
    return best;
}

static void m_bound(model_t *md, unsigned octet)
{
    unsigned n = 0;
    for (int i = 0; i < M_SLOTS; i++)
        n += m_idle(&md->s[i]) && md->s[i].octet == octet;
    int v = n >= M_PER ? m_oldest(md, octet) : -1;
    if (v >= 0)
        md->s[v].evicted = true;
}

/* Admission in the model: true when a connection may come in. */
static bool m_admit(model_t *md, unsigned octet)
{
    m_bound(md, octet);
    unsigned live = 0;
    for (int i = 0; i < M_SLOTS; i++)
        live += md->s[i].open && !md->s[i].evicted;
    if (live < M_MAX)
        return true;
    int v = m_oldest(md, 0);
    if (v >= 0)
        md->s[v].evicted = true;
    return v >= 0;
}

/* One random operation on slot i, done to both. */
static void m_step(connlimit_t *cl, model_t *md, int i, unsigned r)
{
    mconn_t *m = &md->s[i];
    unsigned octet = 1 + r % 5;
    if (!m->open) {
        bool want = m_admit(md, octet);
        bool got = connect_from(cl, octet, &m->f);
        CHECK(want == got);
        if (got)
            *m = (mconn_t){.f = m->f, .open = true, .octet = octet, .seq = md->seq++};
        return;
    }
    switch (r / 5 % 8) { /* busy and talking twice as often as the rest */
    case 0:
        close_fake(cl, &m->f);
        m->open = false;
        break;
    case 1:
    case 7: {
        bool ok = connlimit_busy(cl, m->f.c, true);
        CHECK(ok == !m->evicted);
        m->busy = m->busy || ok;
        break;
    }
    case 2:
        connlimit_busy(cl, m->f.c, false);
        if (m->busy && !m->evicted)
            m->seq = md->seq++;
        m->busy = false;
        break;
    case 3:
    case 6:
        if (!m->evicted && !m->talking) {
            CHECK(write(m->f.peer, "x", 1) == 1);
            m->talking = true;
        }
        break;
    case 4:
        if (m->talking) {
            char ch;
            CHECK(read(m->f.ours, &ch, 1) == 1);
            m->talking = false;
        }
        break;
    default: {
        char text[32];
        snprintf(text, sizeof text, r & 64 ? "::ffff:127.0.0.%u" : "127.0.0.%u", octet);
        CHECK(connlimit_rekey(cl, m->f.c, text));
        if (!m->evicted && m->octet != octet) {
            m_bound(md, octet);
            m->octet = octet;
        }
    }
    }
}

TEST(evictions_match_a_full_scan_of_every_connection)
{
    connlimit_t *cl = connlimit_new(M_MAX, M_PER);
    static model_t md;
    unsigned long x = 12345;
    for (int step = 0; step < 20000; step++) {
        x = x * 6364136223846793005ul + 1442695040888963407ul;
        m_step(cl, &md, (int)(x >> 33) % M_SLOTS, (unsigned)(x >> 45));
        for (int i = 0; i < M_SLOTS; i++)
            if (md.s[i].open && was_evicted(&md.s[i].f) != md.s[i].evicted) {
                fprintf(stderr, "  step %d: slot %d evicted %d, expected %d\n", step, i,
                        was_evicted(&md.s[i].f), md.s[i].evicted);
                test_failed_ = 1;
                step = 1 << 30;
                break;
            }
    }
    for (int i = 0; i < M_SLOTS; i++)
        if (md.s[i].open)
            close_fake(cl, &md.s[i].f);
    connlimit_stats_t st;
    connlimit_get_stats(cl, &st);
    CHECK_INT_EQ(st.live, 0);
    CHECK(st.evicted > 100 && st.refused > 10);
    connlimit_free(cl);
}

RUN_TESTS(a_rekeyed_connection_counts_against_the_address_it_was_given,
          an_address_over_its_idle_bound_loses_its_oldest_idle_connection,
          a_full_server_evicts_the_oldest_idle_and_refuses_only_when_all_are_busy,
          a_connection_whose_request_is_not_read_yet_is_not_evicted,
          an_evicted_connection_can_still_answer_but_not_become_busy,
          other_address_families_are_admitted_untracked,
          admission_at_the_cap_examines_idle_connections_only,
          evictions_match_a_full_scan_of_every_connection)
