/*
 * util.h - small string, number and time helpers used everywhere.
 * These replace the banned libc calls (strcpy, atoi, sprintf...).
 *
 * Memory policy (docs/architecture.md, "Memory"): pai aborts on
 * out-of-memory, in every program and library (the scheduler, the YAML tree
 * and strmap included).  Every allocation goes through the x* allocators
 * below (xmalloc, xcalloc, xrealloc, xstrdup, str_printf; VEC_XRESERVE in
 * common/vec.h), which print "pai: out of memory" and abort instead of
 * returning NULL; jansson is routed through them by util_alloc_init() at the
 * start of every binary, so a JSON allocation never returns NULL either,
 * and xjson_pack() aborts on what is then left: a format mistake.  A
 * daemon that runs out of memory cannot answer usefully, and an error path
 * that no test reaches is worse than a clear abort.  What grows with
 * untrusted input is bounded before it is allocated (common/limits.h), so
 * OOM is never the way a size is refused.
 */
#ifndef PAI_COMMON_UTIL_H
#define PAI_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"

/* Copy src into dst of size n, always NUL-terminated; returns strlen(src). */
size_t str_copy(char *dst, const char *src, size_t n);
/* malloc'ed printf; aborts on allocation failure (never NULL). */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The allocators: never NULL (abort on out-of-memory); a size of 0 gets a
 * valid 1-byte block.  xstrdup(NULL) is "". */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
/* At most n bytes of s, NUL-terminated. */
char *xstrndup(const char *s, size_t n);
/* Print "pai: out of memory" and abort: for a library with its own
 * allocator (libyaml, libcurl) whose constructor failed. */
_Noreturn void util_oom(void);
/* Route jansson's allocations through xmalloc (json_set_alloc_funcs);
 * called first thing in main(), before any JSON value exists. */
void util_alloc_init(void);

struct json_t;
/* json_pack that never returns NULL: a NULL from json_pack is a format or
 * argument mistake (a NULL for "s", a wrong type) since allocations abort,
 * so it aborts with the format and jansson's message.  Use "s?"/"o?" for
 * values that may be NULL.  New reference. */
struct json_t *xjson_pack(const char *fmt, ...);
/* json_dumps that never returns NULL: with allocations aborting, NULL means
 * a value that cannot be encoded (not an object or array without
 * JSON_ENCODE_ANY), a mistake: it aborts saying so.  Free the result. */
char *xjson_dumps(const struct json_t *j, size_t flags);
/* Strict decimal parse of the whole string into [min, max]. */
PAI_MUST_CHECK pai_err_t str_to_i64(const char *s, int64_t min, int64_t max, int64_t *out);
PAI_MUST_CHECK pai_err_t str_to_int(const char *s, int min, int max, int *out);
bool str_has_prefix(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);
/* True when s matches ^[A-Za-z0-9_-]+$ (job, user and group names). */
bool str_is_name(const char *s);

/* Monotonic milliseconds / microseconds; wall-clock milliseconds since the epoch. */
int64_t time_mono_ms(void);
int64_t time_mono_us(void);
int64_t time_wall_ms(void);
/* The time ms milliseconds from now on clock (CLOCK_REALTIME, or the clock
 * a condition variable was made with): a pthread_cond_timedwait deadline. */
struct timespec time_after_ms(clockid_t clock, int64_t ms);

/* The CPU policy of pai's own daemons (docs/operations.md, "CPU policy"):
 * the calling thread, and every thread and process it makes from then on,
 * to SCHED_BATCH (a woken thread of theirs does not preempt the running
 * one: the tasks' and each other's), unless PAI_SCHED=normal is in the
 * environment.  Once, at the start of `pai server` and `pai agent`, before
 * their threads.  Its result (false: left as it was). */
bool sched_daemon_batch(void);
/* The timer slack of pai's daemons (docs/operations.md, "CPU policy"):
 * PAI_TIMER_SLACK_US (0 to 1000000; default TIMER_SLACK_DAEMON_US) for
 * the calling thread and every thread and process it makes from then on,
 * so the kernel may run their timed wake-ups (poll, epoll and futex
 * timeouts, sleeps) up to that much late, together with another wake-up
 * or interrupt instead of one timer interrupt each.  0 keeps the slack
 * inherited.  Once, next to sched_daemon_batch.  Returns the slack set in
 * us, 0 when none was, -1 when PAI_TIMER_SLACK_US is not a number in
 * range (nothing set; a warning logged). */
#define TIMER_SLACK_DAEMON_US 1000
#define TIMER_SLACK_MAX_US    1000000
int timer_slack_daemon(void);
/* The calling thread's timer slack back to what it was before
 * timer_slack_daemon (nothing if that set none): for a thread whose short
 * sleeps pace its share of a lock (the engine's scheduler thread). */
void timer_slack_undo(void);
/* In a child about to exec what is not pai's (a task, a container
 * engine, `pai exec`'s command): SCHED_OTHER again when this process set
 * SCHED_BATCH (a process's policy survives fork and exec), and the timer
 * slack it had before timer_slack_daemon (the slack survives them too);
 * nothing else. */
void sched_child_default(void);

/* Free *pp and set it to NULL. */
#define FREE_NULL(pp)                                                                              \
    do {                                                                                           \
        free(*(pp));                                                                               \
        *(pp) = NULL;                                                                              \
    } while (0)

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
