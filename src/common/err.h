/*
 * err.h - the project-wide error codes, and the error value that carries one
 * from where it happens to where it is answered.
 *
 * One X-macro table gives every error its enum name, the OpenPAI REST error
 * code it maps to, the HTTP status the API answers with, and a default
 * message.  0 (PAI_OK) is success.  Fallible functions return pai_err_t and
 * are marked PAI_MUST_CHECK.  A code that the API answers with two statuses
 * has two rows (NO_VC / NO_VC_SUBMIT): nothing patches a status afterwards.
 *
 * pai_error_t (below) adds the reason: the engine and the REST handlers fill
 * one, and the HTTP layer turns it into the reply (server/http.h
 * http_reply_err); see docs/api.md "Errors".
 */
#ifndef PAI_COMMON_ERR_H
#define PAI_COMMON_ERR_H

#define PAI_MUST_CHECK __attribute__((warn_unused_result))

/* X(name, openpai_code, http_status, message) */
#define PAI_ERR_MAP(X)                                                                             \
    X(OK, "Ok", 200, "success")                                                                    \
    X(NOMEM, "UnknownError", 500, "out of memory")                                                 \
    X(IO, "UnknownError", 500, "I/O error")                                                        \
    X(INTERNAL, "UnknownError", 500, "internal error")                                             \
    X(INVALID, "InvalidParametersError", 400, "Invalid request parameters.")                       \
    X(PROTOCOL, "InvalidProtocolError", 400, "invalid job protocol")                               \
    X(TOO_LARGE, "RequestEntityTooLargeError", 413, "request body too large")                      \
    X(UNAUTHORIZED, "UnauthorizedUserError", 401, "Guest is not allowed to do this operation.")    \
    X(BAD_PASSWORD, "IncorrectPasswordError", 400, "Password is incorrect.")                       \
    X(FORBIDDEN, "ForbiddenUserError", 403, "permission denied")                                   \
    X(FORBIDDEN_TOKEN, "ForbiddenUserError", 403,                                                  \
      "Applications are not allowed to do this operation.")                                        \
    X(NO_API, "NoApiError", 404, "no such API")                                                    \
    X(METHOD_NOT_ALLOWED, "MethodNotAllowedError", 405, "method not allowed")                      \
    X(NO_USER, "NoUserError", 404, "no such user")                                                 \
    X(NO_GROUP, "NoGroupError", 404, "no such group")                                              \
    X(NO_JOB, "NoJobError", 404, "no such job")                                                    \
    X(NO_JOB_CONFIG, "NoJobConfigError", 404, "no such job config")                                \
    X(NO_JOB_SSH_INFO, "NoJobSshInfoError", 404, "no ssh info for the job")                        \
    X(NO_TASK, "NoTaskError", 404, "no such task")                                                 \
    X(NO_TASK_LOG, "NoTaskLogError", 404, "no such task log")                                      \
    X(NO_VC, "NoVirtualClusterError", 404, "no such virtual cluster")                              \
    /* a job names an unknown VC: the spec answers 400 at submission */                            \
    X(NO_VC_SUBMIT, "NoVirtualClusterError", 400, "no such virtual cluster")                       \
    X(NO_STORAGE, "NoStorageError", 404, "no such storage")                                        \
    X(NO_TAG, "NoTagError", 404, "no such tag")                                                    \
    X(NO_TEMPLATE, "NoTemplateError", 404, "no such template")                                     \
    X(CONFLICT_USER, "ConflictUserError", 409, "user already exists")                              \
    X(CONFLICT_GROUP, "ConflictGroupError", 409, "group already exists")                           \
    X(CONFLICT_JOB, "ConflictJobError", 409, "job already exists")                                 \
    X(CONFLICT_VC, "ConflictVcError", 409, "virtual cluster already exists")                       \
    X(CONFLICT_TEMPLATE, "ConflictTemplateError", 409, "template already exists")                  \
    X(NO_QUOTA, "NoEnoughQuotaError", 403, "not enough quota")                                     \
    X(READ_ONLY_JOB, "ReadOnlyJobError", 403, "job is read-only")                                  \
    X(READ_ONLY_VC, "ReadOnlyVcError", 403, "virtual cluster is read-only")                        \
    X(REMOVE_ADMIN, "RemoveAdminError", 403, "cannot remove the last admin")                       \
    X(REMOVE_RUNNING_VC, "RemoveRunningVcError", 403, "virtual cluster has running jobs")          \
    X(NOT_IMPLEMENTED, "NotImplementedError", 501, "not implemented")                              \
    X(BAD_CONFIG, "BadConfigurationError", 500, "bad configuration")                               \
    X(NOT_FOUND, "NotFoundError", 404, "not found")                                                \
    X(EXISTS, "ConflictError", 409, "already exists")                                              \
    X(UNAVAILABLE, "UnavailableError", 503, "service unavailable")                                 \
    /* pai's, high availability (docs/operations.md): a standby names the leader */                \
    X(NOT_LEADER, "NotLeaderError", 421, "this server is a standby: ask the leader")               \
    X(NO_LEADER, "NoLeaderError", 503, "no server leads at the moment; retry shortly")             \
    X(FENCED, "NotLeaderError", 503, "this server no longer leads: a newer leader was elected")    \
    X(LEADER_NO_ANSWER, "LeaderNoAnswerError", 502,                                                \
      "the leader did not answer a forwarded request: it may or may not have been done")           \
    /* pai's: a throttled login (OpenPAI does not throttle) */                                     \
    X(TOO_MANY_LOGINS, "TooManyRequestsError", 429, "Too many failed logins; try again later.")    \
    /* pai's: a user's log reads in flight at their bound (log_reads_per_user) */                  \
    X(TOO_MANY_READS, "TooManyRequestsError", 429, "Too many log reads at once; try again later.")

typedef enum {
#define PAI_ERR_ENUM(name, code, status, msg) PAI_E_##name,
    PAI_ERR_MAP(PAI_ERR_ENUM)
#undef PAI_ERR_ENUM
        PAI_E__COUNT
} pai_err_t;

#define PAI_OK PAI_E_OK

/* OpenPAI's message texts, for the REST replies of the same cases: the
 * examples of its REST API spec (tests/data/reference/openpai-rest-api-v2.yaml,
 * checked by tests/blackbox/test_api_errors.py) and, where the spec has none,
 * its rest-server's.  Formats take the names in the order shown. */
#define PAI_MSG_BAD_TOKEN      "Your token is invalid."
#define PAI_MSG_NON_ADMIN      "Non-admin is not allow to do this operation."
#define PAI_MSG_NO_JOB         "Job %s is not found."             /* job */
#define PAI_MSG_NO_JOB_CONFIG  "Config of job %s is not found."   /* job */
#define PAI_MSG_NO_TASK        "Task %s/%d is not found."         /* role, index */
#define PAI_MSG_NO_JOB_SSH     "SSH info of job %s is not found." /* job */
#define PAI_MSG_NO_TASK_LOG    "Log of task is not found."
#define PAI_MSG_NO_TAG         "Tag %s is not found for job %s."              /* tag, job */
#define PAI_MSG_NO_USER        "User %s is not found."                        /* user */
#define PAI_MSG_NO_GROUP       "Group %s is not found."                       /* group */
#define PAI_MSG_NO_TEMPLATE    "Template %s is not found."                    /* template */
#define PAI_MSG_NO_VC          "Virtual cluster %s is not found."             /* vc */
#define PAI_MSG_NO_STORAGE     "Storage %s is not found."                     /* storage */
#define PAI_MSG_CONFLICT_JOB   "Job name %s already exists."                  /* job */
#define PAI_MSG_CONFLICT_USER  "User name %s already exists."                 /* user */
#define PAI_MSG_STORAGE_DENIED "User %s is not allowed to access %s."         /* user, storage */
#define PAI_MSG_VC_DENIED      "User %s is not allowed to do operation in %s" /* user, vc */

/* Name of the error as OpenPAI's REST API spells it ("NoJobError"). */
const char *pai_err_code(pai_err_t e);
/* HTTP status the REST API answers for this error. */
int pai_err_status(pai_err_t e);
/* Default human message. */
const char *pai_err_msg(pai_err_t e);

/* ---- an error with its reason -------------------------------------------
 *
 * pai_error_t carries one error from where it happens to where it is
 * answered (the REST reply, a log line, the CLI's exit): the code from the
 * table above, a message written where the reason is known, and optional
 * details (a JSON value, e.g. the list of problems of a refused job).
 * Fallible functions take a `pai_error_t *e` (which may be NULL: the caller
 * wants only the code), fill it on failure and return its code:
 *
 *     if (!job)
 *         return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
 *
 * The caller declares `pai_error_t e = PAI_ERROR_INIT;` and, once it has
 * answered or logged it, calls pai_error_free(&e) (details are owned). */
#define PAI_ERROR_MSG_MAX 512
struct json_t; /* jansson */
typedef struct {
    pai_err_t code;
    char msg[PAI_ERROR_MSG_MAX]; /* "" = the table's default message */
    struct json_t *details;      /* owned JSON object, NULL when none: its fields
                                    are added to the reply, e.g. {"errors": [...]} */
} pai_error_t;
#define PAI_ERROR_INIT                                                                             \
    {                                                                                              \
        PAI_OK, "", NULL                                                                           \
    }

/* Set *e (when e is not NULL) to code with a formatted message (fmt NULL:
 * the default message); drops earlier details.  Returns code. */
pai_err_t pai_error_set(pai_error_t *e, pai_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Attach details, a JSON object (takes the reference; NULL clears).  e may be NULL. */
void pai_error_details(pai_error_t *e, struct json_t *details);
/* The message: the one set, or the code's default. */
const char *pai_error_msg(const pai_error_t *e);
/* Release the details and reset to PAI_ERROR_INIT. */
void pai_error_free(pai_error_t *e);

#endif
