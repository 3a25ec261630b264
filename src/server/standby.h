/*
 * standby.h - what a standby server answers itself, and how it passes the
 * rest on (high availability; docs/architecture.md "What a standby serves").
 *
 * A standby (server/leader.h: another server leads) keeps a read-only view
 * of the store: a server context of its own whose auth (users, groups,
 * tokens: auth_view_new) and job engine (jobs, nodes, VCs: engine_new with
 * read_only, the restore path every leader runs at its election) are
 * loaded from the store as it is, never written (the store itself refuses a
 * standby's writes: its fence term is one no leader holds).  A thread
 * rebuilds the view every standby_refresh_s; the new one replaces the old,
 * which is freed when the last request reading it has answered.  So a read
 * on a standby shows the store as it was at most refresh + one rebuild ago;
 * a token made since is read from the store when first presented.
 *
 * The read routes (standby_reads) run their own handlers against the view.
 * Every other request but the agents' (they follow the leader themselves)
 * is forwarded to the leader (standby_forward, standby_proxy.c): sent once,
 * its answer passed back as it came.
 */
#ifndef PAI_SERVER_STANDBY_H
#define PAI_SERVER_STANDBY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/connlimit.h"
#include "common/err.h"
#include "engine/engine.h"
#include "server/http.h"
#include "server/server.h"

typedef struct standby standby_t;
typedef struct standby_view standby_view_t;

/* The fence term of a server that does not lead (store_set_fence): no
 * leader ever holds it, so every write of a standby is refused (the views
 * never write; this makes sure). */
#define STANDBY_FENCE_TERM INT64_MAX

/* Start keeping a view of ctx->store (ctx: the server's; its cfg and store
 * are shared with the view), rebuilt every refresh_ms by a thread of its
 * own.  The first view is built by that thread too: until it is ready,
 * reads are forwarded.  NULL when the thread cannot start. */
standby_t *standby_new(server_ctx_t *ctx, int64_t refresh_ms);
/* This server was elected: stop rebuilding and drop the view (requests
 * reading it keep it until they answer; a rebuild under way ends unused,
 * without delaying the caller).  Idempotent. */
void standby_stop(standby_t *sb);
/* After standby_stop: join the refresher once it has ended (at once when
 * it has not: call again later).  From the thread that calls standby_free. */
void standby_reap(standby_t *sb);
/* standby_stop, then free sb; call after the HTTP server stopped. */
void standby_free(standby_t *sb);

/* Does a standby answer this route from its view (a read the view has the
 * state for)? */
bool standby_reads(const http_route_t *r);
/* The current view, held until standby_view_put; NULL while none is built
 * (or after standby_stop), and, when after_writes, while the view was read
 * before the last write this standby forwarded answered (standby_wrote):
 * the caller forwards the read instead, so a client reads what it wrote
 * through this standby. */
standby_view_t *standby_view_get(standby_t *sb, bool after_writes);
/* A write forwarded to the leader succeeded: reads wait for (are forwarded
 * until) a view built after now, and the next rebuild starts at once. */
void standby_wrote(standby_t *sb);
void standby_view_put(standby_t *sb, standby_view_t *v);
/* The view's server context: its auth and engine, the server's cfg and
 * store; no other module. */
server_ctx_t *standby_view_ctx(standby_view_t *v);

/* A read with this header set to "leader" is forwarded to the leader even
 * when the view could answer it (the CLI sends it: it reads what it wrote
 * through another server). */
#define STANDBY_READ_HEADER "X-Pai-Read"
/* The header a forwarded request carries: a server never forwards a
 * request that has it (no loops while the leader changes). */
#define STANDBY_FORWARDED_HEADER "X-Pai-Forwarded-By"
/* May this request be forwarded to the leader?  Not the agents' routes
 * (agents follow the leader themselves), not a request already forwarded. */
bool standby_forwards(const http_route_t *r, const http_req_t *req);
/* Forward req to the leader at leader_url with the caller's Authorization
 * and body, and answer with the leader's status, body and content type (a
 * body that did not come whole with the headers streams: constant memory,
 * cut short when the leader's is, curlstream.h).
 * Sent at most once, on a fresh connection: a request that may have reached
 * the leader is never sent again (no answer: 502 with the outcome unknown;
 * no connection made: 503, nothing was sent).  A GET waits on a worker
 * (http_reply_offload); any other method already runs on a write worker
 * and waits there.  ctx: the server's. */
PAI_MUST_CHECK pai_err_t standby_forward(server_ctx_t *ctx, const char *leader_url,
                                         const http_req_t *req, http_resp_t *resp, pai_error_t *e);

/* The client's address across a forward (standby_addr.c): a standby sends
 * the address its client connected from, with a proof made with the
 * cluster's forwarding secret; the leader counts a login against that
 * address only when the proof verifies. */
#define STANDBY_CLIENT_HEADER "X-Pai-Client-Addr"
#define STANDBY_PROOF_HEADER  "X-Pai-Client-Addr-Proof"
/* The leader, when it starts leading: store the cluster's forwarding
 * secret when there is none (logged when that fails). */
void standby_secret_ensure(store_t *st);
/* The proof of addr for a forward of method path into out ("<time>.<hex>");
 * false when there is no secret yet (forward without the headers). */
bool standby_proof(store_t *st, const char *addr, const char *method, const char *path, char *out,
                   size_t cap);
/* The address a request counts against (the login throttle): the client's
 * that a standby of this cluster vouches for with a valid proof, else the
 * connection's (http_client_addr). */
const char *standby_client_addr(server_ctx_t *ctx, const http_req_t *req, char *buf, size_t len);
/* The HTTP layer, once a request's headers are read: when addr and proof
 * (its STANDBY_CLIENT_HEADER and STANDBY_PROOF_HEADER, NULL when absent)
 * vouch for addr, the connection c counts against addr in cl from now on
 * (connlimit_rekey), not against the standby that opened it. */
void standby_count_client(server_ctx_t *ctx, connlimit_t *cl, connlimit_conn_t *c, const char *addr,
                          const char *proof, const char *method, const char *path);

/* mod_jobs.c: the job engine's options from the server's config, the
 * leader's engine's and a view's alike. */
void jobs_engine_opts(const server_config_t *cfg, engine_opts_t *out);

/* /metrics: the view's age and its last rebuild's time (ud: standby_t). */
void standby_metrics(void *ud, buf_t *out);

#endif
