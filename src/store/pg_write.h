/*
 * pg_write.h - the PostgreSQL backend's write path (internal to src/store;
 * used by pg.c's commit_group).  See pg.c's DESIGN block.
 */
#ifndef PAI_STORE_PG_WRITE_H
#define PAI_STORE_PG_WRITE_H

#include "store/pg_conn.h"
#include "store/store_ops.h"

/* Run one group of requests in one transaction on the writer c, checking
 * c's fence (fence_term > 0) inside it; sets each request's rc. */
void pg_write_group(conn_t *c, store_req_t *list);

#endif
