/*
 * err.h - the project-wide error codes.
 *
 * One X-macro table gives every error its enum name, the OpenPAI REST error
 * code it maps to, the HTTP status the API answers with, and a default
 * message.  0 (PAI_OK) is success.  Fallible functions return pai_err_t and
 * are marked PAI_MUST_CHECK.
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
    X(INVALID, "InvalidParametersError", 400, "invalid parameters")                                \
    X(PROTOCOL, "InvalidProtocolError", 400, "invalid job protocol")                               \
    X(TOO_LARGE, "RequestEntityTooLargeError", 413, "request body too large")                      \
    X(UNAUTHORIZED, "UnauthorizedUserError", 401, "authentication required")                       \
    X(BAD_PASSWORD, "IncorrectPasswordError", 400, "incorrect username or password")               \
    X(FORBIDDEN, "ForbiddenUserError", 403, "permission denied")                                   \
    X(FORBIDDEN_TOKEN, "ForbiddenUserError", 403,                                                  \
      "Applications are not allowed to do this operation.")                                        \
    X(NO_API, "NoApiError", 404, "no such API")                                                    \
    X(METHOD_NOT_ALLOWED, "MethodNotAllowedError", 405, "method not allowed")                      \
    X(NO_USER, "NoUserError", 404, "no such user")                                                 \
    X(NO_GROUP, "NoGroupError", 404, "no such group")                                              \
    X(NO_JOB, "NoJobError", 404, "no such job")                                                    \
    X(NO_JOB_CONFIG, "NoJobConfigError", 404, "no such job config")                                \
    X(NO_TASK, "NoTaskError", 404, "no such task")                                                 \
    X(NO_TASK_LOG, "NoTaskLogError", 404, "no such task log")                                      \
    X(NO_VC, "NoVirtualClusterError", 404, "no such virtual cluster")                              \
    X(NO_STORAGE, "NoStorageError", 404, "no such storage")                                        \
    X(NO_TAG, "NoTagError", 404, "no such tag")                                                    \
    X(CONFLICT_USER, "ConflictUserError", 409, "user already exists")                              \
    X(CONFLICT_GROUP, "ConflictGroupError", 409, "group already exists")                           \
    X(CONFLICT_JOB, "ConflictJobError", 409, "job already exists")                                 \
    X(CONFLICT_VC, "ConflictVcError", 409, "virtual cluster already exists")                       \
    X(NO_QUOTA, "NoEnoughQuotaError", 403, "not enough quota")                                     \
    X(READ_ONLY_JOB, "ReadOnlyJobError", 403, "job is read-only")                                  \
    X(READ_ONLY_VC, "ReadOnlyVcError", 403, "virtual cluster is read-only")                        \
    X(REMOVE_ADMIN, "RemoveAdminError", 403, "cannot remove the last admin")                       \
    X(REMOVE_RUNNING_VC, "RemoveRunningVcError", 403, "virtual cluster has running jobs")          \
    X(NOT_IMPLEMENTED, "NotImplementedError", 501, "not implemented")                              \
    X(BAD_CONFIG, "BadConfigurationError", 500, "bad configuration")                               \
    X(NOT_FOUND, "NotFoundError", 404, "not found")                                                \
    X(EXISTS, "ConflictError", 409, "already exists")                                              \
    X(UNAVAILABLE, "UnavailableError", 503, "service unavailable")

typedef enum {
#define PAI_ERR_ENUM(name, code, status, msg) PAI_E_##name,
    PAI_ERR_MAP(PAI_ERR_ENUM)
#undef PAI_ERR_ENUM
        PAI_E__COUNT
} pai_err_t;

#define PAI_OK PAI_E_OK

/* Name of the error as OpenPAI's REST API spells it ("NoJobError"). */
const char *pai_err_code(pai_err_t e);
/* HTTP status the REST API answers for this error. */
int pai_err_status(pai_err_t e);
/* Default human message. */
const char *pai_err_msg(pai_err_t e);

#endif
