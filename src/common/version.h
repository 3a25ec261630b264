/*
 * version.h - the version pai reports: `pai --version` and the REST API's
 * GET /api/v1 (OpenPAI's cluster info).
 */
#ifndef PAI_COMMON_VERSION_H
#define PAI_COMMON_VERSION_H

#define PAI_VERSION "v1.0.0"

#endif
