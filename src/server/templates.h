/*
 * templates.h - the registry of job templates (internal to src/server): every
 * template's metadata in memory, its protocol in the store, each change
 * durable before it is seen.
 *
 * Store records (the generic records table of both backends, store.h):
 *   ("template", id)  the metadata: {id, name, owner, title, description,
 *                     tags, image, visibility, groups, featured, useCount,
 *                     createdTime, updatedTime, jobName, parameters};
 *                     seq = publication order
 *   ("tplyaml", id)   {"yaml": the protocol text}, read only when asked for
 *   ("meta", "templates_seeded")  the examples were published once
 * An id is "<owner>~<name>", as a job's full name.
 *
 * Locking: `mu` guards the in-memory map and is never held across store I/O
 * or a call into another module.  `write_mu` makes each change (read, check,
 * store write, swap in memory) one step: changes are written in the order
 * they are made and a use count is never written back smaller.  Lock order:
 * write_mu, then mu.  Every function takes the locks itself.
 */
#ifndef PAI_SERVER_TEMPLATES_H
#define PAI_SERVER_TEMPLATES_H

#include <jansson.h>
#include <stdbool.h>

#include "common/err.h"
#include "store/store.h"

/* Most templates a server keeps, and one owner publishes (publication
 * beyond: PAI_E_NO_QUOTA), so that no user can fill the server alone. */
#define TPLS_MAX           10000u
#define TPLS_MAX_PER_OWNER 500u

typedef struct templates templates_t;

/* Load every template from the store. */
PAI_MUST_CHECK pai_err_t tpls_open(store_t *st, templates_t **out, pai_error_t *e);
void tpls_free(templates_t *t);

/* A copy of one template's metadata (caller decrefs); NULL when absent. */
json_t *tpls_get(templates_t *t, const char *id);
/* Whether a template belongs in a selection (called under mu: it must not
 * lock or call other modules). */
typedef bool (*tpls_keep_fn)(void *ud, const json_t *meta);
/* Where a template goes in a page: larger rank first, then text in
 * strcasecmp order, then id.  text points into the template (valid under
 * mu only). */
typedef struct {
    int64_t rank;
    const char *text;
} tpls_order_t;
typedef void (*tpls_order_fn)(const json_t *meta, tpls_order_t *out);

/* A page of the templates for which keep(ud, meta) is true, in the order
 * order() gives them: copies of those at [offset, offset + limit) (new
 * array), and in *total how many were kept.  keep and order run under mu
 * (plain reads only; keep may note what it sees in its ud); NULL keep keeps
 * all, NULL order sorts by id.  One pass over
 * the map, a sort of precomputed keys of what was kept, and only the page
 * copied. */
json_t *tpls_page(templates_t *t, tpls_keep_fn keep, void *ud, tpls_order_fn order, size_t offset,
                  size_t limit, size_t *total);
/* The protocol text of a template (malloc'ed).  PAI_E_NO_TEMPLATE when absent. */
PAI_MUST_CHECK pai_err_t tpls_protocol(templates_t *t, const char *id, char **yaml, pai_error_t *e);

/* Publish: meta (taken; its "id" names it) and its protocol, stored in one
 * batch.  PAI_E_CONFLICT_TEMPLATE when the id exists, PAI_E_NO_QUOTA past
 * TPLS_MAX, or past TPLS_MAX_PER_OWNER of meta's "owner" unless unlimited
 * (an admin publishing). */
PAI_MUST_CHECK pai_err_t tpls_insert(templates_t *t, json_t *meta, const char *yaml, bool unlimited,
                                     pai_error_t *e);

/* A change of one template: gets a copy of its metadata to check and change
 * (under write_mu, not mu: it may call other modules); returns PAI_OK to
 * store it, or fills e and returns the refusal. */
typedef pai_err_t (*tpls_change_fn)(void *ud, json_t *meta, pai_error_t *e);
/* Change a template: change(ud, copy) then store the copy (and yaml when
 * not NULL).  PAI_E_NO_TEMPLATE when absent. */
PAI_MUST_CHECK pai_err_t tpls_update(templates_t *t, const char *id, tpls_change_fn change,
                                     void *ud, const char *yaml, pai_error_t *e);
/* Delete a template once check(ud, copy) says PAI_OK (check may be NULL). */
PAI_MUST_CHECK pai_err_t tpls_delete(templates_t *t, const char *id, tpls_change_fn check, void *ud,
                                     pai_error_t *e);
/* One more use (a job was submitted from it); stored. */
PAI_MUST_CHECK pai_err_t tpls_count_use(templates_t *t, const char *id);

/* Publish the job files (*.yaml) of dir as public, featured templates owned
 * by owner, once per store (the "templates_seeded" record); files that are
 * not jobs or hold secrets are skipped (logged).  Returns how many were
 * published in *n. */
PAI_MUST_CHECK pai_err_t tpls_seed(templates_t *t, const char *dir, const char *owner, size_t *n,
                                   pai_error_t *e);

#endif
