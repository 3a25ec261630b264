/*
 * srvlist.h - a client's list of pai servers, for high availability: the
 * agents' --server and the CLI's server (config, --server, PAI_SERVER) take
 * "URL1,URL2,...", and requests go to the one that leads.
 *
 * A client sends to srvlist_current(); when that server cannot be reached,
 * or answers 421 NotLeaderError / 503 NoLeaderError, the client calls
 * srvlist_next() with the leader the answer named, if any: that URL is
 * tried next (even one not in the list), else the next in the list, round
 * robin.  A list of one URL behaves as a plain URL.
 */
#ifndef PAI_COMMON_SRVLIST_H
#define PAI_COMMON_SRVLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define SRVLIST_MAX 16 /* servers in one list */

typedef struct {
    char *urls[SRVLIST_MAX]; /* owned; no trailing '/' */
    size_t n, cur;
    char *leader; /* owned: a URL an answer named, tried before the list */
} srvlist_t;

/* Parse "URL1,URL2,..." (spaces around commas allowed).  PAI_E_INVALID for
 * an empty list, an empty item, more than SRVLIST_MAX or an item that is
 * not http:// or https://. */
PAI_MUST_CHECK pai_err_t srvlist_parse(srvlist_t *l, const char *list);
void srvlist_free(srvlist_t *l);
/* The server to ask now (valid until the next srvlist_next/free). */
const char *srvlist_current(const srvlist_t *l);
/* The current server failed or does not lead; leader: the URL its answer
 * named (NULL or "" when none). */
void srvlist_next(srvlist_t *l, const char *leader);
/* Is this answer one to fail over on: 421 (a standby) or 503 with
 * NotLeaderError/NoLeaderError?  *leader (malloc'ed, or NULL) gets the
 * "leader" field of the body. */
bool srvlist_is_redirect(long status, const char *body, size_t len, char **leader);

#endif
