/*
 * test_lease_pg.c - leader election and fencing on PostgreSQL
 * (store_lease_acquire / store_lease_release / store_set_fence; the design
 * is in src/store/pg_lease.c).
 *
 * SQLite's refusal is checked always.  The election cases need a server:
 * they run when PAI_PG_URL names a database they may wipe
 * (tests/suites/store_pg.sh sets it); without it this program says where
 * they run and does not count them.
 */
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "server/leader.h"
#include "store/store.h"
#include "test.h"

#define DROP_ALL                                                                                   \
    "DROP TABLE IF EXISTS pai_records, pai_schema_migrations, pai_leader, pai_fence,"              \
    " pai_generation, pai_deleted, pai_changes_pruned;"                                            \
    "DROP FUNCTION IF EXISTS pai_fence_check, pai_generation_bump, pai_records_stamp,"             \
    " pai_records_tombstone, pai_changes_prune, pai_changes_pruning"

static const char *pg_url(void)
{
    const char *u = getenv("PAI_PG_URL");
    return u && *u ? u : NULL;
}

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static PGconn *side_open(void)
{
    PGconn *c = PQconnectdb(pg_url());
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

/* Fixed SQL on a side connection (setup only; no values). */
static int side_run(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "  side: %s", PQerrorMessage(c));
    PQclear(r);
    return ok;
}

static int side_exec(const char *sql)
{
    PGconn *c = side_open();
    int ok = PQstatus(c) == CONNECTION_OK && side_run(c, sql);
    PQfinish(c);
    return ok;
}

/* A fresh store: every table dropped, migrations run again. */
static store_t *fresh(void)
{
    char err[512];
    store_t *st = NULL;
    if (!side_exec(DROP_ALL))
        return NULL;
    if (store_open(pg_url(), &st, err, sizeof(err)) != PAI_OK)
        fprintf(stderr, "  %s\n", err);
    return st;
}

static store_t *again(void)
{
    char err[512];
    store_t *st = NULL;
    if (store_open(pg_url(), &st, err, sizeof(err)) != PAI_OK)
        fprintf(stderr, "  %s\n", err);
    return st;
}

/* ---- always ------------------------------------------------------------ */

TEST(sqlite_has_no_election)
{
    char dir[] = "/tmp/pai-lease-XXXXXX", url[128], err[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(url, sizeof(url), "sqlite:%s/pai.db", dir);
    store_t *st = NULL;
    CHECK(store_open(url, &st, err, sizeof(err)) == PAI_OK);
    if (!st)
        return;
    store_lease_t l;
    CHECK(!store_has_lease(st));
    CHECK(store_lease_acquire(st, "a", "http://a", 0, 3000, &l) == PAI_E_NOT_IMPLEMENTED);
    CHECK(!l.held);
    char *point = NULL; /* nor a change feed: no standby reads a SQLite store */
    CHECK(store_changes(st, NULL, NULL, NULL, &point) == PAI_E_NOT_IMPLEMENTED);
    CHECK(point == NULL);
    store_set_fence(st, 7, 1000); /* no fence on SQLite: writes go on */
    CHECK(store_put(st, "k", "a", 0, "{}") == PAI_OK);
    store_close(st);
    char db[160];
    snprintf(db, sizeof(db), "%s/pai.db", dir);
    unlink(db);
    snprintf(db, sizeof(db), "%s/pai.db-wal", dir);
    unlink(db);
    snprintf(db, sizeof(db), "%s/pai.db-shm", dir);
    unlink(db);
    rmdir(dir);
}

/* ---- with a server ------------------------------------------------------ */

/* A case on two stores of one fresh database (two servers): body(a, b),
 * which runs only when both opened; both are closed after it. */
typedef void pair_case_fn(store_t *a, store_t *b);

static void run_pair(pair_case_fn *body)
{
    store_t *a = fresh(), *b = again();
    CHECK(a && b);
    if (a && b)
        body(a, b);
    store_close(a);
    store_close(b);
}

/* TEST(name) running name_body(a, b) through run_pair */
#define PAIR_TEST(name)                                                                            \
    static void name##_body(store_t *a, store_t *b);                                               \
    TEST(name)                                                                                     \
    {                                                                                              \
        run_pair(name##_body);                                                                     \
    }                                                                                              \
    static void name##_body(store_t *a, store_t *b)

PAIR_TEST(first_server_takes_the_lease_others_see_it)
{
    CHECK(store_has_lease(a));
    store_lease_t la, lb;
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 0, 5000, &la) == PAI_OK);
    CHECK(la.held);
    CHECK_INT_EQ(la.term, 1);
    CHECK_STR_EQ(la.url, "http://a:1");
    CHECK(la.remaining_ms > 4000 && la.remaining_ms <= 5000);
    CHECK(store_lease_acquire(b, "host-b", "http://b:1", 0, 5000, &lb) == PAI_OK);
    CHECK(!lb.held);
    CHECK_INT_EQ(lb.term, 1);
    CHECK_STR_EQ(lb.holder, "host-a");
    CHECK_STR_EQ(lb.url, "http://a:1");
}

PAIR_TEST(renewal_keeps_the_term_expiry_hands_over_with_the_next)
{
    store_lease_t la, lb;
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 0, 600, &la) == PAI_OK && la.held);
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", la.term, 600, &la) == PAI_OK);
    CHECK(la.held);
    CHECK_INT_EQ(la.term, 1);
    usleep(700 * 1000); /* a stops renewing: its lease runs out */
    CHECK(store_lease_acquire(b, "host-b", "http://b:1", 0, 600, &lb) == PAI_OK);
    CHECK(lb.held);
    CHECK_INT_EQ(lb.term, 2);
    /* a comes back: too late, and it is told who leads now */
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 1, 600, &la) == PAI_OK);
    CHECK(!la.held);
    CHECK_STR_EQ(la.url, "http://b:1");
}

PAIR_TEST(restarted_holder_takes_over_at_once_with_a_new_term)
{
    store_lease_t l;
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 0, 60000, &l) == PAI_OK && l.held);
    /* same holder (same host and address), no term: the process restarted */
    CHECK(store_lease_acquire(b, "host-a", "http://a:1", 0, 60000, &l) == PAI_OK);
    CHECK(l.held);
    CHECK_INT_EQ(l.term, 2);
}

PAIR_TEST(release_lets_a_standby_take_over_at_once)
{
    store_lease_t l;
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 0, 60000, &l) == PAI_OK && l.held);
    CHECK(store_lease_release(a, "host-a", l.term) == PAI_OK);
    CHECK(store_lease_acquire(b, "host-b", "http://b:1", 0, 60000, &l) == PAI_OK);
    CHECK(l.held);
    CHECK_INT_EQ(l.term, 2);
}

PAIR_TEST(old_leader_writes_are_fenced_after_a_takeover)
{
    store_lease_t la, lb;
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 0, 300, &la) == PAI_OK && la.held);
    store_set_fence(a, la.term, 1000);
    CHECK(store_put(a, "job", "j1", 1, "{\"v\":1}") == PAI_OK);
    usleep(400 * 1000);
    CHECK(store_lease_acquire(b, "host-b", "http://b:1", 0, 5000, &lb) == PAI_OK && lb.held);
    store_set_fence(b, lb.term, 1000);
    /* a does not know yet: every kind of write of its term is refused */
    CHECK(store_put(a, "job", "j1", 1, "{\"v\":2}") == PAI_E_FENCED);
    CHECK(store_insert(a, "job", "j2", 2, "{}") == PAI_E_FENCED);
    CHECK(store_del(a, "job", "j1") == PAI_E_FENCED);
    store_op_t ops[2] = {{STORE_OP_PUT, "job", "j3", 3, "{}"},
                         {STORE_OP_DEL, "job", "j1", 0, NULL}};
    CHECK(store_batch(a, ops, 2) == PAI_E_FENCED);
    /* the new leader writes; what it reads is what a committed */
    char *j = NULL;
    CHECK(store_get(b, "job", "j1", &j) == PAI_OK);
    CHECK_STR_EQ(j ? j : "", "{\"v\":1}");
    free(j);
    CHECK(store_put(b, "job", "j1", 1, "{\"v\":3}") == PAI_OK);
    CHECK(store_get(b, "job", "j2", &j) == PAI_E_NOT_FOUND);
}

/* The fencing argument: a write that passed the fence under the old term
 * holds the fence row; the takeover cannot commit before that write ends. */
PAIR_TEST(takeover_waits_for_a_write_in_flight_of_the_old_term)
{
    PGconn *w = side_open();
    CHECK(PQstatus(w) == CONNECTION_OK);
    if (PQstatus(w) != CONNECTION_OK)
        goto out;
    store_lease_t la, lb;
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 0, 300, &la) == PAI_OK && la.held);
    CHECK_INT_EQ(la.term, 1);
    /* the old leader's write transaction, past its fence check */
    CHECK(side_run(w, "BEGIN"));
    CHECK(side_run(w, "SELECT pai_fence_check(1, 60000)"));
    usleep(400 * 1000);
    /* expired, but the takeover waits for the write (lock_timeout: a third
     * of the lease) and fails; the term has not moved */
    CHECK(store_lease_acquire(b, "host-b", "http://b:1", 0, 900, &lb) == PAI_E_UNAVAILABLE);
    CHECK(!lb.held);
    CHECK(side_run(w, "INSERT INTO pai_records (kind, key, json) VALUES ('job', 'late', '{}')"));
    CHECK(side_run(w, "COMMIT"));
    CHECK(store_lease_acquire(b, "host-b", "http://b:1", 0, 900, &lb) == PAI_OK);
    CHECK(lb.held);
    CHECK_INT_EQ(lb.term, 2);
    /* the new leader sees the old term's last write; the old term is over */
    char *j = NULL;
    CHECK(store_get(b, "job", "late", &j) == PAI_OK);
    free(j);
    CHECK(side_run(w, "BEGIN"));
    PGresult *r = PQexec(w, "SELECT pai_fence_check(1, 60000)");
    CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    CHECK_STR_EQ(state ? state : "", "PAI01");
    PQclear(r);
    CHECK(side_run(w, "ROLLBACK"));
out:
    PQfinish(w);
}

/* ---- a leader under a stalled database or a frozen process ---------------- */

/* One number from fixed SQL on c; -1 when there is none. */
static long long side_num(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        fprintf(stderr, "  side: %s", PQerrorMessage(c));
    PQclear(r);
    return v;
}

/* The backend process of the newest election connection (pg_lease.c names
 * its session pai-leader). */
static int lease_backend(void)
{
    PGconn *c = side_open();
    long long pid = side_num(c, "SELECT pid FROM pg_stat_activity WHERE application_name ="
                                " 'pai-leader' AND datname = current_database()"
                                " ORDER BY backend_start DESC LIMIT 1");
    PQfinish(c);
    return (int)pid;
}

typedef struct {
    int pid;
    int64_t after_ms;
} resume_t;

static void *resume_main(void *arg)
{
    resume_t *r = arg;
    usleep((useconds_t)r->after_ms * 1000);
    kill(r->pid, SIGCONT);
    return NULL;
}

/* The database's side of the election stalls (its backend stopped, as by a
 * log flush that does not end) but comes back: a renewal waits for it as
 * long as the lease it renews may last, longer than the session's bound on
 * a statement (a third of the lease); past that it gives up, and a later
 * round never renews the old term. */
TEST(pg_renewal_waits_for_a_stalled_database_while_its_lease_lasts)
{
    store_t *a = fresh();
    CHECK(a != NULL);
    if (!a)
        return;
    store_lease_t l;
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 0, 4000, &l) == PAI_OK && l.held);
    int pid = lease_backend();
    CHECK(pid > 0);
    if (pid <= 0 || kill(pid, SIGSTOP) != 0) {
        if (pid > 0)
            test_skip("cannot stop the database's backend here (needs root)");
        store_close(a);
        return;
    }
    resume_t r = {pid, 1500};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, resume_main, &r) == 0);
    int64_t t0 = time_mono_ms();
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 1, 4000, &l) == PAI_OK);
    int64_t took = time_mono_ms() - t0;
    pthread_join(t, NULL);
    CHECK(l.held);
    CHECK_INT_EQ(l.term, 1);
    CHECK(took >= 1400); /* longer than a statement's bound, a third of the lease */
    /* stalled past the lease's end */
    CHECK(kill(pid, SIGSTOP) == 0);
    r.after_ms = 6000;
    CHECK(pthread_create(&t, NULL, resume_main, &r) == 0);
    t0 = time_mono_ms();
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 1, 4000, &l) == PAI_E_UNAVAILABLE);
    took = time_mono_ms() - t0;
    CHECK(took < 5000); /* it gave up when the lease may have ended */
    pthread_join(t, NULL);
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 1, 4000, &l) == PAI_OK);
    CHECK(l.held);
    CHECK_INT_EQ(l.term, 2); /* taken again, under a new term: the old one is over */
    store_close(a);
}

/* A gate probe of the child leader: the gate was asked between before_ms
 * and after_ms (monotonic, the same clock in both processes). */
typedef struct {
    int64_t before_ms, after_ms;
    int ok;
} probe_t;

/* The child: a server that leads with a lease of lease_ms on the test
 * database (holder "<host> http://t:1") and asks its HTTP gate for a write
 * every 10 ms, writing each answer to fd; it ends only by the leader's
 * fail-stop (exit 75), or 3-5 on a failed start. */
_Noreturn static void leader_child(int64_t lease_ms, int fd)
{
    char err[512];
    store_t *st = NULL;
    if (store_open(pg_url(), &st, err, sizeof(err)) != PAI_OK)
        _exit(3);
    leader_t *l = leader_new(st, lease_ms);
    leader_set_url(l, "http://t:1");
    if (leader_start(l) != PAI_OK)
        _exit(4);
    int64_t end = time_mono_ms() + 10000;
    while (!leader_wait_elected(l, 500))
        if (time_mono_ms() > end)
            _exit(5);
    leader_promoted(l);
    for (;;) {
        probe_t p = {.before_ms = time_mono_ms()};
        pai_error_t e = PAI_ERROR_INIT;
        bool modules = false;
        p.ok = leader_gate(l, "POST", "/api/v2/jobs", &modules, &e) == PAI_OK && modules;
        p.after_ms = time_mono_ms();
        pai_error_free(&e);
        if (write(fd, &p, sizeof(p)) < 0 && errno != EAGAIN)
            _exit(6);
        usleep(10 * 1000);
    }
}

typedef struct {
    pid_t pid;
    int fd; /* the probes' pipe, read end (nonblocking) */
    probe_t probes[4096];
    size_t n;
    FILE *log; /* the child's standard error (its log), an unlinked temporary file */
} child_t;

static bool child_start(child_t *c, int64_t lease_ms)
{
    int p[2];
    memset(c, 0, sizeof(*c));
    if (pipe(p) != 0)
        return false;
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    c->log = tmpfile();
    fflush(stderr);
    c->pid = fork();
    if (c->pid == 0) {
        close(p[0]);
        if (c->log)
            dup2(fileno(c->log), STDERR_FILENO);
        leader_child(lease_ms, p[1]);
    }
    close(p[1]);
    c->fd = p[0];
    return c->pid > 0;
}

static void child_drain(child_t *c)
{
    probe_t p;
    while (read(c->fd, &p, sizeof(p)) == (ssize_t)sizeof(p))
        if (c->n < ARRAY_LEN(c->probes))
            c->probes[c->n++] = p;
}

/* Wait up to ms for the child to end (draining its probes); its wait
 * status, or -1 (then it was killed). */
static int child_wait(child_t *c, int64_t ms)
{
    int64_t end = time_mono_ms() + ms;
    int st = 0;
    for (;;) {
        child_drain(c);
        pid_t w = waitpid(c->pid, &st, WNOHANG);
        if (w == c->pid) {
            child_drain(c);
            return st;
        }
        if (time_mono_ms() > end) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
            return -1;
        }
        usleep(5 * 1000);
    }
}

/* Wait until the child leads (its gate opened); false after 15 s. */
static bool child_leads(child_t *c)
{
    int64_t end = time_mono_ms() + 15000;
    while (time_mono_ms() < end) {
        child_drain(c);
        for (size_t i = 0; i < c->n; i++)
            if (c->probes[i].ok)
                return true;
        if (waitpid(c->pid, NULL, WNOHANG) == c->pid)
            return false;
        usleep(20 * 1000);
    }
    return false;
}

static void child_end(child_t *c)
{
    if (c->pid > 0 && waitpid(c->pid, NULL, WNOHANG) == 0) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
    }
    close(c->fd);
    if (c->log)
        fclose(c->log);
}

/* Whether the child's log (once it ended) holds needle. */
static bool child_logged(child_t *c, const char *needle)
{
    char line[1024];
    bool found = false;
    if (!c->log || fseek(c->log, 0, SEEK_SET) != 0)
        return false;
    while (!found && fgets(line, sizeof(line), c->log))
        found = strstr(line, needle) != NULL;
    return found;
}

/* The database answers nothing about the lease (its row locked by another
 * session: each renewal runs into lock_timeout, and is tried again at once)
 * while the leader is otherwise well: the leader's gate closes before its
 * lease ends on the database's clock, and it stops (exit 75). */
TEST(pg_leader_stops_before_its_lease_ends_when_the_database_stalls)
{
    store_t *st = fresh();
    CHECK(st != NULL);
    store_close(st);
    static child_t c;
    CHECK(child_start(&c, 2000));
    CHECK(child_leads(&c));
    PGconn *w = side_open();
    CHECK(side_run(w, "BEGIN"));
    CHECK(side_run(w, "SELECT 1 FROM pai_leader WHERE id = 1 FOR UPDATE"));
    /* nothing renews the lease any more: where its end lies on our clock */
    int64_t t0 = time_mono_ms();
    long long left = side_num(w, "SELECT (extract(epoch FROM (expires_at - clock_timestamp()))"
                                 " * 1000)::bigint FROM pai_leader WHERE id = 1");
    int64_t lease_end = time_mono_ms() + left; /* at the latest */
    int status = child_wait(&c, 10000);
    int64_t took = time_mono_ms() - t0;
    CHECK(left > 0);
    CHECK(status != -1 && WIFEXITED(status));
    CHECK_INT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, LEADER_EXIT_STATUS);
    int64_t last_open = 0; /* the last time the gate was asked and let a write in */
    size_t late = 0;
    for (size_t i = 0; i < c.n; i++)
        if (c.probes[i].ok) {
            last_open = c.probes[i].before_ms;
            late += c.probes[i].before_ms >= lease_end;
        }
    CHECK_INT_EQ(late, 0);
    printf("# the stalled leader's gate last opened %lld ms before its lease's end; its exit "
           "was seen %lld ms after the stall began\n",
           (long long)(lease_end - last_open), (long long)took);
    CHECK(side_run(w, "ROLLBACK"));
    PQfinish(w);
    child_end(&c);
}

/* The lease row handed to another server behind the leader's back (as an
 * operator or a bug might): the leader's next renewal matches nothing, the
 * election round finds another holder, and the leader stops at once, well
 * before its own deadline. */
TEST(pg_leader_whose_lease_was_taken_stops_at_its_next_renewal)
{
    store_t *st = fresh();
    CHECK(st != NULL);
    store_close(st);
    static child_t c;
    CHECK(child_start(&c, 3000));
    CHECK(child_leads(&c));
    CHECK(side_exec("UPDATE pai_leader SET term = term + 1, holder = 'other', url = 'http://o:1',"
                    " expires_at = clock_timestamp() + interval '60 s' WHERE id = 1"));
    int64_t t0 = time_mono_ms();
    int status = child_wait(&c, 10000);
    int64_t took = time_mono_ms() - t0;
    CHECK(status != -1 && WIFEXITED(status));
    CHECK_INT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, LEADER_EXIT_STATUS);
    /* stopped by its renewal's finding, not by its deadline (2.4 s): the
     * reason it logs says which, whatever the machine's load */
    CHECK(child_logged(&c, "the lease was taken over"));
    CHECK(!child_logged(&c, "not renewed in time"));
    printf("# the leader whose lease was taken stopped %lld ms after\n", (long long)took);
    child_end(&c);
}

/* The whole leader process frozen (SIGSTOP: a starved or paused machine)
 * past its lease: when it resumes its gate refuses at once, whether or not
 * its watchdog ran yet, and it stops (exit 75). */
TEST(pg_frozen_leader_refuses_at_its_gate_and_stops_when_it_resumes)
{
    store_t *st = fresh();
    CHECK(st != NULL);
    store_close(st);
    static child_t c;
    CHECK(child_start(&c, 2000));
    CHECK(child_leads(&c));
    usleep(300 * 1000);
    child_drain(&c);
    size_t before = c.n;
    int64_t frozen = time_mono_ms();
    CHECK(kill(c.pid, SIGSTOP) == 0);
    usleep(3000 * 1000);
    CHECK(kill(c.pid, SIGCONT) == 0);
    int status = child_wait(&c, 5000);
    CHECK(status != -1 && WIFEXITED(status));
    CHECK_INT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, LEADER_EXIT_STATUS);
    size_t open_late = 0, asked_late = 0;
    for (size_t i = 0; i < c.n; i++)
        if (c.probes[i].before_ms >= frozen + 2000) { /* past any deadline it had */
            asked_late++;
            open_late += c.probes[i].ok != 0;
        }
    CHECK(before > 0);
    CHECK_INT_EQ(open_late, 0);
    printf("# gate asked %zu times after the freeze, opened %zu times\n", asked_late, open_late);
    child_end(&c);
}

int main(void)
{
    util_alloc_init();
    static const test_case_t always[] = {
        {"sqlite_has_no_election", sqlite_has_no_election},
    };
    static const test_case_t server[] = {
        {"pg_first_server_takes_the_lease_others_see_it",
         first_server_takes_the_lease_others_see_it},
        {"pg_renewal_keeps_the_term_expiry_hands_over_with_the_next",
         renewal_keeps_the_term_expiry_hands_over_with_the_next},
        {"pg_restarted_holder_takes_over_at_once_with_a_new_term",
         restarted_holder_takes_over_at_once_with_a_new_term},
        {"pg_release_lets_a_standby_take_over_at_once", release_lets_a_standby_take_over_at_once},
        {"pg_old_leader_writes_are_fenced_after_a_takeover",
         old_leader_writes_are_fenced_after_a_takeover},
        {"pg_takeover_waits_for_a_write_in_flight_of_the_old_term",
         takeover_waits_for_a_write_in_flight_of_the_old_term},
        {"pg_renewal_waits_for_a_stalled_database_while_its_lease_lasts",
         pg_renewal_waits_for_a_stalled_database_while_its_lease_lasts},
        {"pg_leader_stops_before_its_lease_ends_when_the_database_stalls",
         pg_leader_stops_before_its_lease_ends_when_the_database_stalls},
        {"pg_leader_whose_lease_was_taken_stops_at_its_next_renewal",
         pg_leader_whose_lease_was_taken_stops_at_its_next_renewal},
        {"pg_frozen_leader_refuses_at_its_gate_and_stops_when_it_resumes",
         pg_frozen_leader_refuses_at_its_gate_and_stops_when_it_resumes},
    };
    int rc = test_run_all_(always, ARRAY_LEN(always));
    if (!pg_url()) {
        printf("# %zu tests need PAI_PG_URL: tests/suites/store_pg.sh runs them\n",
               ARRAY_LEN(server));
        return rc;
    }
    int rc2 = test_run_all_(server, ARRAY_LEN(server));
    (void)side_exec(DROP_ALL);
    return rc || rc2;
}
