/*
 * taskuid.h - the host identity each pai user's tasks run as
 * (docs/security.md, "Task identities").
 *
 * An agent that runs as root gives every pai user one unprivileged uid
 * (gid = uid) from a configured range (--task-uid-range, default
 * 200000-265535), so tasks of different users cannot read each other's
 * files or signal each other's processes, and none can touch the agent's
 * or the server's.  No /etc/passwd entry is needed.
 *
 * The mapping is first-come and persistent: a map file (0600, one
 * "<uid> <user>" line per user) that every agent sharing it appends to
 * under flock(), so agents on one host (pai up's nodes) agree.  A new user
 * starts probing at lo + hash(user) % size and takes the first uid the map
 * does not hold, so even agents with separate maps agree unless two users
 * collide.  A user's uid never changes once written.
 *
 * Servers that assign each user a task uid offset (agentwire task_uid) make
 * the map a fallback: the task runs as lo + offset (taskuid_at) on every
 * node, with no shared file; the map serves only tasks without one (older
 * servers, users created before offsets).
 */
#ifndef PAI_AGENT_TASKUID_H
#define PAI_AGENT_TASKUID_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

#define TASKUID_DEFAULT_RANGE "200000-265535"

typedef struct taskuid taskuid_t;

/* Parse "LO-HI" (inclusive, 1 <= LO <= HI < 2^31 - 1).  PAI_E_INVALID otherwise. */
PAI_MUST_CHECK pai_err_t taskuid_parse_range(const char *s, uid_t *lo, uid_t *hi);

/* A mapping over [lo, hi] kept in map_path (created 0600 on first use). */
taskuid_t *taskuid_new(const char *map_path, uid_t lo, uid_t hi);
void taskuid_free(taskuid_t *m);

/* The uid of user (a pai user name), allocated on first sight.
 * PAI_E_INVALID for a name that is not a pai name, PAI_E_NO_QUOTA when the
 * range is used up, PAI_E_IO when the map cannot be read or written. */
PAI_MUST_CHECK pai_err_t taskuid_get(taskuid_t *m, const char *user, uid_t *out);

/* The uid of the server-assigned offset off (agentwire task_uid): lo + off,
 * the same on every node with the same range, no map involved.
 * PAI_E_NO_QUOTA when it falls past hi (widen --task-uid-range). */
PAI_MUST_CHECK pai_err_t taskuid_at(const taskuid_t *m, int64_t off, uid_t *out);

/* Whether a task uid can walk the path of dir (a relative one from the
 * current dir): false, with the first dir on the way down that others may
 * not pass (no o+x: a task uid is never its owner nor in its group) in
 * closed (n bytes) and its mode in *mode, when it cannot.  The path is
 * walked as given and, when it goes through a link, as resolved too.  A
 * dir that cannot be looked at is taken as open (nothing to say of it). */
bool taskuid_path_open(const char *dir, char *closed, size_t n, mode_t *mode);

#endif
