/*
 * mond_int.h - what the per-agent monitor (mond.c) and the agent's side of
 * it (mond_agent.c) share: the socket's messages.  Internal to src/runtime/.
 *
 * One SOCK_SEQPACKET socketpair per monitor.  Agent -> monitor, one message
 * per start: 'I' and the spec (mond_agent.c's encode) when it takes at
 * most MOND_INLINE_MAX bytes, else 'S' with a memfd holding it; the
 * attempt's record, open for appends, as the last fd when the agent has it
 * open.  Before any start, 'W', a count and a cgroup rel dir (mond_warm):
 * the monitor makes that many idle cgroups there; no answer.  Monitor -> agent: the exit lines of
 * the attempts that ended, each "KEY exit KIND CODE SIGNAL OOM STARTED FINISHED STDERR\n" (KEY the
 * attempt's, the rest its record's exit line, runtime.h), as many whole
 * lines as ended in one turn of the monitor's loop in one message of at
 * most MOND_EXITS_MAX bytes; written after the record's line, so a monitor
 * that dies before it is found lost or ended from the record alone.  The
 * socket's end (the monitor gone) is the end of every attempt it holds.
 */
#ifndef PAI_RUNTIME_MOND_INT_H
#define PAI_RUNTIME_MOND_INT_H

#include <signal.h>

#include "runtime/runtime.h"

#define MOND_MAGIC   0x70616931u /* "pai1" */
#define MOND_MAX_MSG (64u << 20)
/* A spec up to this size goes in the start message itself (a short
 * task's is a few KB: its env and command), a larger one in a memfd. */
#define MOND_INLINE_MAX (32u * 1024)
/* One message of exit lines at most (~70 bytes a line): more wait for
 * the next message. */
#define MOND_EXITS_MAX (16u * 1024)

/* The process runtime's poll and release: an attempt of a per-agent
 * monitor's takes the end its monitor told (mond_agent.c); every other one
 * is monitor_poll's and monitor_release's. */
bool mond_poll(const runtime_ops_t *ops, rt_task_t *t, rt_result_t *res);
void mond_release(rt_task_t *t);

/* What the monitor takes from its signalfd (blocked from its fork on). */
void md_sigset(sigset_t *set);
/* The monitor's loop on its socket ctl, until the agent's end is closed
 * and its attempts are over; exits the process. */
_Noreturn void md_loop(int ctl);

#endif
