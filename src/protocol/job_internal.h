/*
 * job_internal.h - shared between the protocol module's .c files only.
 *
 * A spec's memory: the parsed YAML document (ydoc_t; every string in the
 * spec points into it) and a bump arena for the spec's arrays.  Both are
 * freed at once by job_spec_free().
 */
#ifndef PAI_PROTOCOL_JOB_INTERNAL_H
#define PAI_PROTOCOL_JOB_INTERNAL_H

#include "common/yamljson.h"
#include "common/yamltree.h"
#include "protocol/job.h"

typedef struct arena_chunk arena_chunk_t;

struct job_priv {
    ydoc_t *doc;
    arena_chunk_t *chunks;
    const ynode_t *parameters;    /* map or NULL */
    const ynode_t *secrets;       /* map or NULL */
    const ynode_t **prereq_nodes; /* n_prereqs maps, as written */
    const ynode_t *deployments;   /* list or NULL */
    const ynode_t *extras;        /* map or NULL */
};

/* Zeroed memory from the spec's arena (aborts on allocation failure, like
 * xcalloc: specs are small and bounded by the document limits). */
void *job_arena_alloc(job_spec_t *spec, size_t size);
void job_arena_free(arena_chunk_t *chunks);

/* Append one problem (path and reason are copied; reason is printf-style). */
void job_errors_add(job_errors_t *errs, int line, int col, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
