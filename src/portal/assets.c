/*
 * assets.c - lookups over the embedded portal files (see assets.h).
 *
 * Pure functions over static tables: no I/O, no allocation, so they are
 * unit-tested without a server (tests/unit/test_portal.c).
 */
#include "portal/assets.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *ext;
    const char *type;
} content_type_t;

/* Extensions the portal ships; anything else is served as bytes. */
static const content_type_t content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".yaml", "text/yaml; charset=utf-8"},
    {".LICENSE", "text/plain; charset=utf-8"},
    {".webmanifest", "application/manifest+json"},
};

static int asset_cmp(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const portal_asset_t *)elem)->path);
}

const portal_asset_t *portal_asset_find(const char *path)
{
    if (!path || path[0] == '\0' || strcmp(path, "/") == 0)
        path = "/index.html";
    if (path[0] != '/')
        return NULL;
    return bsearch(path, portal_assets, portal_assets_count, sizeof(portal_asset_t), asset_cmp);
}

const char *portal_content_type(const char *path)
{
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (dot && strchr(dot, '/') == NULL)
        for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++)
            if (strcmp(dot, content_types[i].ext) == 0)
                return content_types[i].type;
    return "application/octet-stream";
}

/* Is the entity-tag at s (length n, maybe W/-prefixed) equal to etag? */
static bool etag_item_matches(const char *s, size_t n, const char *etag)
{
    if (n >= 2 && s[0] == 'W' && s[1] == '/') {
        s += 2;
        n -= 2;
    }
    if (n == 1 && s[0] == '*')
        return true;
    return n == strlen(etag) && memcmp(s, etag, n) == 0;
}

bool portal_etag_matches(const char *if_none_match, const char *etag)
{
    const char *p = if_none_match;
    if (!p || !etag)
        return false;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > start && etag_item_matches(start, (size_t)(end - start), etag))
            return true;
    }
    return false;
}
