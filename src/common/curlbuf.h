/*
 * curlbuf.h - a libcurl transfer's answer collected into a bounded buf_t.
 *
 * The buffer's cap, fixed at buf_init from common/limits.h, bounds the
 * body: a chunk that would pass it is refused and libcurl ends the transfer
 * with CURLE_WRITE_ERROR, the bytes that came before still in the buffer.
 */
#ifndef PAI_COMMON_CURLBUF_H
#define PAI_COMMON_CURLBUF_H

#include <curl/curl.h>

#include "common/buf.h"

/* Collect h's response body into b: sets CURLOPT_WRITEFUNCTION and
 * CURLOPT_WRITEDATA.  b stays the caller's and must outlive the transfer. */
void curlbuf_collect(CURL *h, buf_t *b);

#endif
