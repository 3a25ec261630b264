/*
 * assets.h - the portal's files, embedded in the binary at build time.
 *
 * mk/portal.mk runs tools/portal_embed over web/ and compiles the result,
 * $(BUILD)/gen/portal_assets.c, which defines portal_assets[]: one entry
 * per file, sorted by path, with a strong ETag computed from the content.
 * Everything here is read-only static data; lookups are thread-safe.
 */
#ifndef PAI_PORTAL_ASSETS_H
#define PAI_PORTAL_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *path;          /* "/index.html", relative to web/, leading '/' */
    const unsigned char *data; /* the file's bytes (NUL-terminated, not counted) */
    size_t len;
    const char *etag; /* "\"<16 hex digits>\"", quotes included */
} portal_asset_t;

/* Generated: every file under web/, sorted by path (strcmp order). */
extern const portal_asset_t portal_assets[];
extern const size_t portal_assets_count;

/* The asset at `path` ("/app.js"), or NULL.  "/" and "" mean "/index.html". */
const portal_asset_t *portal_asset_find(const char *path);

/* The Content-Type for a file name, from its extension (a static string). */
const char *portal_content_type(const char *path);

/* True when an If-None-Match header value (may be NULL, a list, or "*")
 * matches `etag`, so the answer can be 304 Not Modified. */
bool portal_etag_matches(const char *if_none_match, const char *etag);

#endif
