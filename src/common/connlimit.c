/*
 * connlimit.c - connection admission with eviction of idle connections (see
 * connlimit.h for the policy).
 *
 * Every connection is in `all` (for connlimit_free).  An idle one that is
 * not evicted is also in two lists in the order it became idle, the longest
 * idle first: the idle list of the whole limiter and the idle list of its
 * address (an entry of `addrs`, which also counts them).  A busy connection
 * is in neither, so admission never looks at one: with 10,000 agents' held
 * polls busy, the oldest idle connection is the head of a list.  Candidates
 * are taken from a head onwards and only they are asked whether they are
 * talking (ioctl FIONREAD), so an admission examines the talking idle
 * connections ahead of the first silent one, plus that one; `examined` in
 * the stats counts them.
 */
#include "common/connlimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/strmap.h"
#include "common/util.h"

#define ADDR_KEY_LEN 34 /* family digit, 32 hex digits, NUL */

typedef struct conn_list {
    connlimit_conn_t *head, *tail;
} conn_list_t;

/* One address that has (or had until its last close) connections. */
typedef struct {
    char key[ADDR_KEY_LEN];
    conn_list_t idle; /* its idle, not evicted connections, longest idle first */
    unsigned n_idle;  /* their number */
    unsigned refs;    /* connections that name this entry, evicted included */
} addr_ent_t;

/* The links of one list a connection can be in. */
typedef struct {
    connlimit_conn_t *prev, *next;
} conn_link_t;

enum { L_ALL, L_IDLE, L_ADDR, N_LISTS };

struct connlimit_conn {
    conn_link_t link[N_LISTS];
    addr_ent_t *ae;
    uint64_t idle_seq; /* when it last became idle: orders the idle lists */
    int fd;
    bool busy;
    bool evicted; /* shut down; no longer counted, waiting for close */
};

struct connlimit {
    pthread_mutex_t mu;
    unsigned max_total, per_addr;
    conn_list_t all;  /* every connection not closed, in no useful order */
    conn_list_t idle; /* idle and not evicted, longest idle first */
    strmap_t *addrs;  /* address key -> addr_ent_t */
    uint64_t next_seq;
    connlimit_stats_t st;
};

/* ---- lists ---------------------------------------------------------------- */

static void list_append(conn_list_t *l, int which, connlimit_conn_t *c)
{
    c->link[which].next = NULL;
    c->link[which].prev = l->tail;
    if (l->tail)
        l->tail->link[which].next = c;
    else
        l->head = c;
    l->tail = c;
}

/* Insert c before `at` (NULL: at the end). */
static void list_insert_before(conn_list_t *l, int which, connlimit_conn_t *at, connlimit_conn_t *c)
{
    if (!at) {
        list_append(l, which, c);
        return;
    }
    connlimit_conn_t *prev = at->link[which].prev;
    c->link[which].prev = prev;
    c->link[which].next = at;
    at->link[which].prev = c;
    if (prev)
        prev->link[which].next = c;
    else
        l->head = c;
}

static void list_remove(conn_list_t *l, int which, connlimit_conn_t *c)
{
    conn_link_t *k = &c->link[which];
    if (k->prev)
        k->prev->link[which].next = k->next;
    else
        l->head = k->next;
    if (k->next)
        k->next->link[which].prev = k->prev;
    else
        l->tail = k->prev;
    k->prev = k->next = NULL;
}

/* ---- addresses ------------------------------------------------------------ */

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

/* The map key of an address: its family and its 16 bytes in hex. */
static void key_of(int family, const unsigned char addr[16], char key[ADDR_KEY_LEN])
{
    static const char hex[] = "0123456789abcdef";
    key[0] = family == AF_INET ? '4' : '6';
    for (int i = 0; i < 16; i++) {
        key[1 + 2 * i] = hex[addr[i] >> 4];
        key[2 + 2 * i] = hex[addr[i] & 15];
    }
    key[ADDR_KEY_LEN - 1] = '\0';
}

/* sa's key; false for families other than IPv4 and IPv6. */
static bool addr_key(const struct sockaddr *sa, char key[ADDR_KEY_LEN])
{
    unsigned char addr[16] = {0};
    int family;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        memcpy(addr, &in->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(addr, &in6->sin6_addr, 16);
    } else {
        return false;
    }
    family = sa->sa_family;
    unmap_v4(&family, addr);
    key_of(family, addr, key);
    return true;
}

/* The same key from a numeric address in text; false when it is none. */
static bool text_key(const char *text, char key[ADDR_KEY_LEN])
{
    unsigned char addr[16] = {0};
    int family;
    if (inet_pton(AF_INET, text, addr) == 1) {
        family = AF_INET;
    } else if (inet_pton(AF_INET6, text, addr) == 1) {
        family = AF_INET6;
        unmap_v4(&family, addr);
    } else {
        return false;
    }
    key_of(family, addr, key);
    return true;
}

/* The entry of key, made when absent; one more reference to it.  Under mu. */
static addr_ent_t *addr_ref(connlimit_t *cl, const char *key)
{
    addr_ent_t *ae = strmap_get(cl->addrs, key);
    if (!ae) {
        ae = xcalloc(1, sizeof(*ae));
        memcpy(ae->key, key, ADDR_KEY_LEN);
        if (strmap_put(cl->addrs, key, ae) != PAI_OK) /* only for a NULL value */
            abort();
    }
    ae->refs++;
    return ae;
}

/* One reference fewer; the entry goes with its last one.  Under mu. */
static void addr_unref(connlimit_t *cl, addr_ent_t *ae)
{
    if (--ae->refs == 0)
        strmap_del(cl->addrs, ae->key);
}

/* ---- idle lists ----------------------------------------------------------- */

/* c became idle now (opened, or its answer sent): last in both lists. */
static void idle_push(connlimit_t *cl, connlimit_conn_t *c)
{
    c->idle_seq = cl->next_seq++;
    list_append(&cl->idle, L_IDLE, c);
    list_append(&c->ae->idle, L_ADDR, c);
    c->ae->n_idle++;
}

/* c is no longer idle (busy, evicted, closed) or changes address. */
static void idle_pull(connlimit_t *cl, connlimit_conn_t *c)
{
    list_remove(&cl->idle, L_IDLE, c);
    list_remove(&c->ae->idle, L_ADDR, c);
    c->ae->n_idle--;
}

static bool is_idle(const connlimit_conn_t *c)
{
    return !c->busy && !c->evicted;
}

/* ---- admission ------------------------------------------------------------ */

connlimit_t *connlimit_new(unsigned max_total, unsigned per_addr)
{
    connlimit_t *cl = xcalloc(1, sizeof(*cl));
    pthread_mutex_init(&cl->mu, NULL);
    cl->max_total = max_total ? max_total : 1;
    cl->per_addr = per_addr;
    cl->addrs = strmap_new(free);
    return cl;
}

void connlimit_free(connlimit_t *cl)
{
    if (!cl)
        return;
    while (cl->all.head) { /* entries the owner did not close */
        connlimit_conn_t *c = cl->all.head;
        cl->all.head = c->link[L_ALL].next;
        free(c);
    }
    strmap_free(cl->addrs);
    pthread_mutex_destroy(&cl->mu);
    free(cl);
}

/* Shut c's reading side down; the owner sees end-of-file and closes it.
 * Not the writing side: a request that reached the socket just before (on
 * Linux the kernel still queues it) may yet be read by the owner, which then
 * finds c evicted (connlimit_busy false) and must still be able to answer
 * it, where a shut writing side would reset a request already handled.
 * c is idle.  Under cl->mu. */
static void evict(connlimit_t *cl, connlimit_conn_t *c)
{
    idle_pull(cl, c);
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

/* The first connection of an idle list (L_IDLE or L_ADDR links) that is
 * not talking, or NULL.  Under cl->mu. */
static connlimit_conn_t *first_silent(connlimit_t *cl, const conn_list_t *l, int which)
{
    for (connlimit_conn_t *c = l->head; c; c = c->link[which].next) {
        cl->st.examined++;
        if (!has_unread_input(c))
            return c;
    }
    return NULL;
}

/* Step 1 of admission (connlimit.h) for one more connection of the address
 * `key`: when it holds per_addr idle ones, evict its longest idle that is
 * not talking (none: all of them talking, it goes over the bound;
 * max_total still holds).  Under cl->mu. */
static void bound_addr(connlimit_t *cl, const char *key)
{
    addr_ent_t *ae = cl->per_addr ? strmap_get(cl->addrs, key) : NULL;
    if (!ae || ae->n_idle < cl->per_addr)
        return;
    connlimit_conn_t *victim = first_silent(cl, &ae->idle, L_ADDR);
    if (victim)
        evict(cl, victim);
}

bool connlimit_admit(connlimit_t *cl, const struct sockaddr *sa)
{
    char key[ADDR_KEY_LEN];
    bool known = addr_key(sa, key);
    bool ok = true;
    pthread_mutex_lock(&cl->mu);
    if (known)
        bound_addr(cl, key);
    if (cl->st.live >= cl->max_total) {
        connlimit_conn_t *victim = first_silent(cl, &cl->idle, L_IDLE);
        if (victim) {
            evict(cl, victim);
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
    char key[ADDR_KEY_LEN];
    if (!addr_key(sa, key))
        return NULL;
    connlimit_conn_t *c = xcalloc(1, sizeof(*c));
    c->fd = fd;
    pthread_mutex_lock(&cl->mu);
    c->ae = addr_ref(cl, key);
    list_append(&cl->all, L_ALL, c);
    idle_push(cl, c);
    cl->st.live++;
    pthread_mutex_unlock(&cl->mu);
    return c;
}

/* Move c to the address entry ae (c's own reference moves with it); an
 * idle c keeps its place in idle order there too.  Under cl->mu. */
static void move_to(connlimit_t *cl, connlimit_conn_t *c, addr_ent_t *ae)
{
    bool idle = is_idle(c);
    if (idle) {
        list_remove(&c->ae->idle, L_ADDR, c);
        c->ae->n_idle--;
    }
    addr_unref(cl, c->ae);
    c->ae = ae;
    if (idle) {
        connlimit_conn_t *at = NULL; /* the first of ae's idle since after c */
        for (connlimit_conn_t *x = ae->idle.tail; x && x->idle_seq > c->idle_seq;
             x = x->link[L_ADDR].prev)
            at = x;
        list_insert_before(&ae->idle, L_ADDR, at, c);
        ae->n_idle++;
    }
}

bool connlimit_rekey(connlimit_t *cl, connlimit_conn_t *c, const char *addr_text)
{
    char key[ADDR_KEY_LEN];
    if (!c || !addr_text || !text_key(addr_text, key))
        return false;
    pthread_mutex_lock(&cl->mu);
    if (!c->evicted && strcmp(c->ae->key, key) != 0) {
        bound_addr(cl, key); /* c is not among key's yet: never evicts c */
        move_to(cl, c, addr_ref(cl, key));
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
    if (ok && c->busy != busy && !c->evicted) {
        if (busy)
            idle_pull(cl, c);
        c->busy = busy;
        if (!busy)
            idle_push(cl, c);
        cl->st.busy += busy ? 1 : (uint64_t)-1;
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
        else
            idle_pull(cl, c);
    }
    list_remove(&cl->all, L_ALL, c);
    addr_unref(cl, c->ae);
    pthread_mutex_unlock(&cl->mu);
    free(c);
}

void connlimit_get_stats(connlimit_t *cl, connlimit_stats_t *out)
{
    pthread_mutex_lock(&cl->mu);
    *out = cl->st;
    pthread_mutex_unlock(&cl->mu);
}
