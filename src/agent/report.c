/*
 * report.c - when a node of `pai agent` reports its local changes: the
 * coalescing window of its syncs (docs/agent.md, "Few syncs";
 * docs/agent-protocol.md, agent rule 4).
 *
 * A sync is the unit of cost on both sides (the server reads and answers
 * it, commits what it reports), and no sync is needed while nothing
 * changed, so a report should carry as many changes as it can without
 * holding any for long.  The changes are the attempts' starts and ends
 * (and the rare others: a GPU's health, a recovery).  The window:
 *   - an end waits for the node's other attempts that are expected to end
 *     soon ("pending": started here less than twice the node's typical run
 *     time ago, or being stopped), up to half that run time (at least
 *     REPORT_COALESCE_MS, at most REPORT_END_MAX_MS) after the first
 *     unreported end; with none pending, it goes at once (REPORT_QUIET_MS);
 *   - a start is reported REPORT_START_MS after it, or, when the node's
 *     tasks are short (typical run time up to REPORT_START_MAX_MS), after
 *     one and a half times that run time: most of them have ended by then,
 *     and their start and end go in one report (the next long-poll); on a
 *     full node (every GPU or every CPU it has is given to a running
 *     attempt: nothing more can be placed on it, only a stop can come) it
 *     waits for an end up to REPORT_FULL_MAX_MS whatever the run time, so
 *     a task that runs longer than its like costs no report of its start
 *     alone (and no held poll given up for its end);
 *   - any other change REPORT_COALESCE_MS after it.
 * The typical run time is an exponential average over the attempts this
 * agent started and saw end by themselves (start -> end seen, so the
 * monitor's latency and the machine's load are in it): the window follows
 * the node's rate and load.  An end's window and the pending horizon take
 * it REPORT_RUN_SLACK_MS longer than measured: an end reaches the agent
 * within one wake-up of its monitor (mond.c holds the task's pipes, so its
 * exit wakes the monitor once), and windows built on that latency alone
 * held fewer ends a report (docs/benchmarks-history.md, the node side, eleventh
 * round).  A start's window stays on the measured run time.  With no history (a new agent) or
 * long tasks, nothing is pending: ends are reported at once and starts after REPORT_START_MS, as
 * before this window existed. The price: while a report waits, the node holds no long-poll when the
 * wait follows an answer (starts), so a task placed on it meanwhile waits
 * as long (on a full node only a task that asks for none of what is full,
 * e.g. a CPU-only task when every GPU is taken, or a stop); and an
 * attempt's end reaches the server up to the window later (the GPUs are
 * placed again that much later).  All are bounded.
 */
#include "agent/agent.h"

/* Any change but starts and ends: reported this long after it. */
#define REPORT_COALESCE_MS 10
/* Starts: reported this long after the first one unless the node's tasks
 * are short (then up to REPORT_START_MAX_MS, see above). */
#define REPORT_START_MS     30
#define REPORT_START_MAX_MS 250
/* Starts on a full node (above): reported at most this long after the
 * first one when no end comes first. */
#define REPORT_FULL_MAX_MS 1000
/* An end waits at most this long for the node's other pending attempts. */
#define REPORT_END_MAX_MS 100
/* An end with nothing pending: a few ms for ends seen in the same turns. */
#define REPORT_QUIET_MS 2
/* Added to the node's typical run time for an end's window and the
 * pending horizon (see above). */
#define REPORT_RUN_SLACK_MS 12

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void report_ran(agent_node_t *n, int64_t run_ms)
{
    if (run_ms < 0)
        return;
    if (run_ms == 0)
        run_ms = 1; /* 0 means "no history" */
    n->run_ewma_ms = n->run_ewma_ms ? (3 * n->run_ewma_ms + run_ms) / 4 : run_ms;
}

/* The run time an end's window and the horizon are built on: the typical
 * one and the slack (0: no history). */
static int64_t window_run_ms(const agent_node_t *n)
{
    return n->run_ewma_ms > 0 ? n->run_ewma_ms + REPORT_RUN_SLACK_MS : 0;
}

/* Attempts started this long ago or less are expected to end soon (0:
 * none: no history, or the node's tasks are long). */
static int64_t horizon_ms(const agent_node_t *n)
{
    return n->run_ewma_ms > 0 && n->run_ewma_ms <= REPORT_START_MAX_MS ? 2 * window_run_ms(n) : 0;
}

bool report_node_full(const agent_node_t *n)
{
    size_t gpus = 0;
    double cpus = 0;
    for (size_t i = 0; i < n->nlive; i++) {
        const agent_task_t *t = n->tasks[i];
        if (t->phase != RC_DONE) {
            gpus += t->meta.ngpus;
            cpus += t->cpu;
        }
    }
    return (n->gpus.n > 0 && gpus >= n->gpus.n) || (n->cpus > 0 && cpus >= n->cpus);
}

size_t report_pending(const agent_node_t *n, int64_t now)
{
    int64_t h = horizon_ms(n);
    size_t k = 0;
    for (size_t i = 0; i < n->nlive; i++) {
        const agent_task_t *t = n->tasks[i];
        if (t->phase == RC_STOPPING ||
            (t->phase == RC_ACTIVE && t->started_here && now - t->start_mono_ms < h))
            k++;
    }
    return k;
}

int64_t report_due(const agent_node_t *n, size_t pending)
{
    int64_t run = window_run_ms(n), due = INT64_MAX;
    if (!n->dirty)
        return INT64_MAX;
    if (n->ended_ms)
        due = n->ended_ms +
              (pending ? clamp64(run / 2, REPORT_COALESCE_MS, REPORT_END_MAX_MS) : REPORT_QUIET_MS);
    if (n->start_ms) {
        int64_t d = REPORT_START_MS;
        if (report_node_full(n))
            d = REPORT_FULL_MAX_MS; /* until an end, however late */
        else if (pending && horizon_ms(n))
            d = clamp64(n->run_ewma_ms * 3 / 2, REPORT_START_MS, REPORT_START_MAX_MS);
        if (n->start_ms + d < due)
            due = n->start_ms + d;
    }
    if (due == INT64_MAX) /* another change */
        due = (n->dirty_ms ? n->dirty_ms : 0) + REPORT_COALESCE_MS;
    return due;
}
