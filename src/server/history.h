/*
 * history.h - the server's metrics history: a bounded in-memory ring of GPU
 * use samples (cluster, per VC, per node, per running job) taken every
 * interval by a thread, for the portal's charts.  Lost on restart; for
 * long-term storage Prometheus scrapes /metrics.
 *
 * Memory: `points` timestamps plus, per series, two int32 rings of `points`
 * values.  Series are capped so that their values never take more than
 * HISTORY_MAX_BYTES (and never more than HISTORY_MAX_SERIES series); a job's
 * series is dropped an hour after the job stopped running, a node's or VC's
 * once it has been absent for the whole ring.
 */
#ifndef PAI_SERVER_HISTORY_H
#define PAI_SERVER_HISTORY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "engine/engine.h"

#define HISTORY_MAX_SERIES 1024
#define HISTORY_MAX_BYTES  (64u << 20)

typedef struct history history_t;

/* Sample jobs (not owned) every interval_s into a ring of points samples.
 * The sampler thread starts at once and takes its first sample now. */
PAI_MUST_CHECK pai_err_t history_new(engine_t *engine, int64_t interval_s, size_t points,
                                     history_t **out);
/* Stop the sampler thread (idempotent; wakes it at once). */
void history_stop(history_t *h);
void history_free(history_t *h);

/* Take one sample now (the thread's step; tests call it directly). */
void history_sample(history_t *h, int64_t now_ms);

/* The last `minutes` (<= 0: the whole ring), at most max_points per series
 * (buckets of consecutive samples fold to their maximum).  New references. */
json_t *history_cluster_json(history_t *h, int64_t now_ms, int64_t minutes, int64_t max_points);
/* A job's series; samples before its first and after its last are left out. */
json_t *history_job_json(history_t *h, const char *job, int64_t now_ms, int64_t minutes,
                         int64_t max_points);

/* Prometheus collector (series kept, samples taken, series refused). */
void history_metrics(void *ud, buf_t *out);

#endif
