/*
 * codec.h - a job (lc_job_t) to and from its stored JSON record, and
 * the REST views of it (OpenPAI's JobSummary, JobDetail, JobAttempt,
 * TaskStatus).  Pure: no locks, no store.
 *
 * Stored record ("job", "<user>~<name>"), version 1:
 *   {"v":1, "name", "vc", "seq", "state", "prio", ... "roles": [...],
 *    "attempts": [{..., "tasks": [[{"retries", "atts": [...]}, ...], ...]}]}
 */
#ifndef PAI_ENGINE_CODEC_H
#define PAI_ENGINE_CODEC_H

#include <jansson.h>
#include <stdbool.h>

#include "common/err.h"
#include "engine/lifecycle.h"

#define JOBS_RECORD_VERSION 1

/* Priority classes in lc_job_t.prio. */
const char *codec_prio_name(int prio);
int codec_prio_parse(const char *s); /* -1 when unknown */

/* The record (new reference). */
json_t *codec_job_encode(const lc_job_t *job);
/* The record as compact text (malloc'ed; codec_text.c), the same bytes as
 * json_dumps(codec_job_encode(job), JSON_COMPACT), written without a tree:
 * the parts that never change (name, VC, roles) are encoded once and kept
 * in job->enc_static, so a flush re-encodes only the job's status and
 * attempts. */
char *codec_job_text(lc_job_t *job);
/* A new job from a record; PAI_E_INVALID when malformed. */
PAI_MUST_CHECK pai_err_t codec_job_decode(const json_t *rec, lc_job_t **out);

/* The commands record ("jobcmd", name): each role's rendered command and
 * image, kept out of memory while a job waits (they can be large).
 * codec_cmds_decode fills the roles that have none; false when the record
 * does not match the job. */
json_t *codec_cmds_encode(const lc_job_t *job);
/* The same record as compact text (malloc'ed; codec_text.c), the bytes
 * json_dumps(codec_cmds_encode(job), JSON_COMPACT) writes. */
char *codec_cmds_text(const lc_job_t *job);
bool codec_cmds_decode(const json_t *rec, lc_job_t *job);

/* REST views (new references).  attempt < 0: the last one. */
json_t *codec_render_summary(const lc_job_t *job);
json_t *codec_render_detail(const lc_job_t *job, int attempt);
json_t *codec_render_attempt(const lc_job_t *job, int attempt);
json_t *codec_render_task(const lc_job_t *job, int attempt, int role, int index);

/* "<job>/<job attempt>/<role>/<index>/<task attempt>" (malloc'ed). */
char *codec_attempt_id(const lc_job_t *job, int ja, int role, int index, int ta);
/* Split an attempt id; the job name is copied into name (size n). */
PAI_MUST_CHECK pai_err_t codec_attempt_id_parse(const char *id, char *name, size_t n, int *ja,
                                                char *role, size_t rn, int *index, int *ta);

#endif
