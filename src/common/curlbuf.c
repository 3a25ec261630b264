/*
 * curlbuf.c - a libcurl write callback that appends to a bounded buf_t
 * (curlbuf.h).
 */
#include "common/curlbuf.h"

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    /* over the cap: 0 makes libcurl abort the transfer */
    return buf_append(ud, data, size * n) == PAI_OK ? size * n : 0;
}

void curlbuf_collect(CURL *h, buf_t *b)
{
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
}
