/*
 * template.h - job templates, the pure part: what a template's protocol may
 * hold, the job a submission from a template sends, and the search match.
 * No store, no locks, no HTTP: mod_templates.c (the REST module and the
 * registry) calls these, and tests/unit/test_template.c checks them alone.
 *
 * A template is a job protocol (OpenPAI v2 YAML) that someone published for
 * others to start from.  Its protocol is checked like a submission
 * (job_parse) and may hold no secrets: a `secrets` section with values, or a
 * docker image prerequisite whose `auth.password` is written out rather than
 * a `<% $secrets.x %>` reference, is refused, or removed when the publisher
 * asks for it (each removal is reported as a warning).
 */
#ifndef PAI_SERVER_TEMPLATE_H
#define PAI_SERVER_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

/* Bounds of a template's fields (the protocol itself: TPL_MAX_YAML). */
#define TPL_MAX_YAML        (256u * 1024)
#define TPL_MAX_TITLE       200u
#define TPL_MAX_DESCRIPTION 8192u
#define TPL_MAX_TAGS        16u
#define TPL_MAX_TAG         64u
#define TPL_MAX_IMAGE       1024u
#define TPL_MAX_GROUPS      64u
#define TPL_MAX_NAME        64u

/* A protocol checked for publishing. */
typedef struct {
    char *yaml;         /* what to store: the text as given, or rewritten (JSON, valid
                           YAML) when something was removed; malloc'ed */
    char *job_name;     /* the protocol's `name` */
    char *image;        /* the first task role's docker image uri ("" when none) */
    char *description;  /* the protocol's `description` ("" when none) */
    json_t *parameters; /* the protocol's `parameters` ({} when none); owned */
    json_t *warnings;   /* array of strings: what was removed; owned */
} tpl_protocol_t;

/* Check len bytes of job YAML for a template: at most TPL_MAX_YAML bytes, no
 * secrets (strip_secrets: remove them and say so in out->warnings), valid
 * as a job (PAI_E_PROTOCOL with e->details {"errors": [...]}, as a
 * submission is refused).  Secrets without strip_secrets: PAI_E_INVALID
 * with a message that says what to remove.  On success fills *out (free
 * with tpl_protocol_free). */
PAI_MUST_CHECK pai_err_t tpl_protocol_check(const char *yaml, size_t len, bool strip_secrets,
                                            tpl_protocol_t *out, pai_error_t *e);
void tpl_protocol_free(tpl_protocol_t *p);

/* What a submitter changes in a template's protocol. */
typedef struct {
    const json_t *parameters; /* object {key: string|number|bool}; each key must be
                                 declared under the protocol's `parameters:`; may be NULL */
    const char *name;         /* job name instead of the protocol's; may be NULL */
    const char *vc;           /* defaults.virtualCluster; may be NULL */
    const char *template_id;  /* recorded as extras.template.id */
    const char *template_owner;
} tpl_submit_t;

/* The job document a submission from template text `yaml` sends (JSON, which
 * the protocol parser reads as YAML): the protocol with parameters.<k>
 * replaced by the submitter's values, the name and VC when given, and
 * extras.template = {id, owner} (any earlier extras.template replaced).
 * PAI_E_INVALID for an undeclared parameter, a value that is not a string,
 * number or boolean, or a bad name.  *out is malloc'ed. */
PAI_MUST_CHECK pai_err_t tpl_merge(const char *yaml, size_t len, const tpl_submit_t *s, char **out,
                                   pai_error_t *e);

/* Does a template's metadata ({title, description, tags, name, owner})
 * match the keyword: every whitespace-separated word of it occurs in one of
 * those fields, case-insensitively?  NULL or "" matches everything. */
bool tpl_matches(const json_t *meta, const char *keyword);

/* Tags as given (array of strings, or one comma-separated string) ->
 * a new array: trimmed, lowercased, duplicates dropped, at most
 * TPL_MAX_TAGS of 1 to TPL_MAX_TAG characters of [a-z0-9._+-].  NULL in:
 * an empty array.  PAI_E_INVALID otherwise. */
PAI_MUST_CHECK pai_err_t tpl_tags(const json_t *in, json_t **out, pai_error_t *e);

#endif
