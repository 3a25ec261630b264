/*
 * connlimit.c - connection admission with eviction of idle connections (see
 * connlimit.h for the policy).
 *
 * Connections sit in one list in the order they were opened, oldest first,
 * so "the oldest idle one" is the first match of a scan.  The lists are
 * bounded by the owner's own connection cap (a few thousand at most), so a
 * scan per accepted connection costs microseconds and needs no index.
 */
#include "common/connlimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/util.h"

struct connlimit_conn {
    connlimit_conn_t *prev, *next;
    int family;
    unsigned char addr[16]; /* IPv4: first 4 bytes */
    int fd;
    bool busy;
    bool evicted; /* shut down; no longer counted, waiting for close */
};

struct connlimit {
    pthread_mutex_t mu;
    unsigned max_total, per_addr;
    connlimit_conn_t *head, *tail; /* oldest first */
    connlimit_stats_t st;
};

/* An IPv4 address mapped into IPv6 (::ffff:a.b.c.d) counts as that IPv4
 * address: a dual-stack listener and a text address agree on one key. */
static void unmap_v4(int *family, unsigned char addr[16])
{
    static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (*family == AF_INET6 && memcmp(addr, prefix, sizeof(prefix)) == 0) {
        memmove(addr, addr + 12, 4);
        memset(addr + 4, 0, 12);
        *family = AF_INET;
    }
}

/* Copy sa's address into family/addr; false for other families. */
static bool addr_key(const struct sockaddr *sa, int *family, unsigned char addr[16])
{
    memset(addr, 0, 16);
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        memcpy(addr, &in->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(addr, &in6->sin6_addr, 16);
    } else {
        return false;
    }
    *family = sa->sa_family;
    unmap_v4(family, addr);
    return true;
}

/* The same key from a numeric address in text; false when it is none. */
static bool text_key(const char *text, int *family, unsigned char addr[16])
{
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, text, addr) == 1) {
        *family = AF_INET;
    } else if (inet_pton(AF_INET6, text, addr) == 1) {
        *family = AF_INET6;
        unmap_v4(family, addr);
    } else {
        return false;
    }
    return true;
}

static bool same_addr(const connlimit_conn_t *c, int family, const unsigned char addr[16])
{
    return c->family == family && memcmp(c->addr, addr, 16) == 0;
}

connlimit_t *connlimit_new(unsigned max_total, unsigned per_addr)
{
    connlimit_t *cl = xcalloc(1, sizeof(*cl));
    pthread_mutex_init(&cl->mu, NULL);
    cl->max_total = max_total ? max_total : 1;
    cl->per_addr = per_addr;
    return cl;
}

void connlimit_free(connlimit_t *cl)
{
    if (!cl)
        return;
    while (cl->head) { /* entries the owner did not close */
        connlimit_conn_t *c = cl->head;
        cl->head = c->next;
        free(c);
    }
    pthread_mutex_destroy(&cl->mu);
    free(cl);
}

/* Shut c's reading side down; the owner sees end-of-file and closes it.
 * Not the writing side: a request that reached the socket just before (on
 * Linux the kernel still queues it) may yet be read by the owner, which then
 * finds c evicted (connlimit_busy false) and must still be able to answer
 * it, where a shut writing side would reset a request already handled.
 * Under cl->mu. */
static void evict(connlimit_t *cl, connlimit_conn_t *c)
{
    c->evicted = true;
    cl->st.live--;
    cl->st.evicted++;
    shutdown(c->fd, SHUT_RD);
}

/* Has the client sent bytes that the owner has not read yet?  Then the
 * owner is the slow one (a request waits for the next turn of a loop, or
 * for a thread just created), and the connection is not evicted. */
static bool has_unread_input(const connlimit_conn_t *c)
{
    int n = 0;
    return ioctl(c->fd, FIONREAD, &n) == 0 && n > 0;
}

static bool evictable(const connlimit_conn_t *c)
{
    return !c->evicted && !c->busy && !has_unread_input(c);
}

/* Step 1 of admission (connlimit.h) for one more connection of an address
 * (other than `self`, which is not counted): when the address holds
 * per_addr idle ones, evict its oldest that is not talking (none: all of
 * them talking, it goes over the bound; max_total still holds).  Under
 * cl->mu. */
static void bound_addr(connlimit_t *cl, int family, const unsigned char addr[16],
                       const connlimit_conn_t *self)
{
    connlimit_conn_t *own_oldest = NULL;
    unsigned own_idle = 0;
    for (connlimit_conn_t *c = cl->head; c && cl->per_addr; c = c->next) {
        if (c == self || c->evicted || c->busy || !same_addr(c, family, addr))
            continue;
        own_idle++;
        if (!own_oldest && evictable(c))
            own_oldest = c;
    }
    if (cl->per_addr && own_idle >= cl->per_addr && own_oldest)
        evict(cl, own_oldest);
}

bool connlimit_admit(connlimit_t *cl, const struct sockaddr *sa)
{
    int family = 0;
    unsigned char addr[16];
    bool known = addr_key(sa, &family, addr);
    bool ok = true;
    pthread_mutex_lock(&cl->mu);
    if (known)
        bound_addr(cl, family, addr, NULL);
    if (cl->st.live >= cl->max_total) {
        connlimit_conn_t *any_oldest = NULL;
        for (connlimit_conn_t *c = cl->head; c && !any_oldest; c = c->next)
            if (evictable(c))
                any_oldest = c;
        if (any_oldest) {
            evict(cl, any_oldest);
        } else {
            cl->st.refused++;
            ok = false;
        }
    }
    pthread_mutex_unlock(&cl->mu);
    return ok;
}

connlimit_conn_t *connlimit_open(connlimit_t *cl, const struct sockaddr *sa, int fd)
{
    int family = 0;
    unsigned char addr[16];
    if (!addr_key(sa, &family, addr))
        return NULL;
    connlimit_conn_t *c = xcalloc(1, sizeof(*c));
    c->family = family;
    memcpy(c->addr, addr, 16);
    c->fd = fd;
    pthread_mutex_lock(&cl->mu);
    c->prev = cl->tail;
    if (cl->tail)
        cl->tail->next = c;
    else
        cl->head = c;
    cl->tail = c;
    cl->st.live++;
    pthread_mutex_unlock(&cl->mu);
    return c;
}

bool connlimit_rekey(connlimit_t *cl, connlimit_conn_t *c, const char *addr_text)
{
    int family = 0;
    unsigned char addr[16];
    if (!c || !addr_text || !text_key(addr_text, &family, addr))
        return false;
    pthread_mutex_lock(&cl->mu);
    if (!c->evicted && !same_addr(c, family, addr)) {
        bound_addr(cl, family, addr, c);
        c->family = family;
        memcpy(c->addr, addr, 16);
    }
    pthread_mutex_unlock(&cl->mu);
    return true;
}

bool connlimit_busy(connlimit_t *cl, connlimit_conn_t *c, bool busy)
{
    if (!c)
        return true;
    pthread_mutex_lock(&cl->mu);
    bool ok = !(busy && c->evicted);
    if (ok) {
        if (c->busy != busy && !c->evicted)
            cl->st.busy += busy ? 1 : (uint64_t)-1;
        c->busy = busy;
    }
    pthread_mutex_unlock(&cl->mu);
    return ok;
}

void connlimit_close(connlimit_t *cl, connlimit_conn_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&cl->mu);
    if (!c->evicted) {
        cl->st.live--;
        if (c->busy)
            cl->st.busy--;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        cl->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        cl->tail = c->prev;
    pthread_mutex_unlock(&cl->mu);
    free(c);
}

void connlimit_get_stats(connlimit_t *cl, connlimit_stats_t *out)
{
    pthread_mutex_lock(&cl->mu);
    *out = cl->st;
    pthread_mutex_unlock(&cl->mu);
}
