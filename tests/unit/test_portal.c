/* test_portal.c - the embedded portal files and their lookups. */
#include <string.h>

#include "portal/assets.h"
#include "test.h"

TEST(index_html_is_embedded_and_served_for_root)
{
    const portal_asset_t *a = portal_asset_find("/");
    CHECK(a != NULL);
    if (!a)
        return;
    CHECK_STR_EQ(a->path, "/index.html");
    CHECK(a->len > 0);
    CHECK(strstr((const char *)a->data, "<html") != NULL);
    CHECK(portal_asset_find("") == a);
    CHECK(portal_asset_find(NULL) == a);
}

TEST(app_script_and_vendored_yaml_library_are_embedded)
{
    CHECK(portal_asset_find("/app.js") != NULL);
    CHECK(portal_asset_find("/app.css") != NULL);
    CHECK(portal_asset_find("/vendor/js-yaml.min.js") != NULL);
}

TEST(unknown_and_malformed_paths_are_not_found)
{
    CHECK(portal_asset_find("/nope.js") == NULL);
    CHECK(portal_asset_find("app.js") == NULL);
    CHECK(portal_asset_find("/../etc/passwd") == NULL);
    CHECK(portal_asset_find("/app.js/") == NULL);
}

TEST(assets_are_sorted_with_quoted_etags)
{
    for (size_t i = 0; i < portal_assets_count; i++) {
        const portal_asset_t *a = &portal_assets[i];
        CHECK(a->path[0] == '/');
        CHECK(strlen(a->etag) == 18 && a->etag[0] == '"' && a->etag[17] == '"');
        CHECK(a->data[a->len] == 0);
        if (i > 0)
            CHECK(strcmp(portal_assets[i - 1].path, a->path) < 0);
        CHECK(portal_asset_find(a->path) == a);
    }
}

TEST(content_types_follow_the_extension)
{
    CHECK_STR_EQ(portal_content_type("/index.html"), "text/html; charset=utf-8");
    CHECK_STR_EQ(portal_content_type("/app.js"), "text/javascript; charset=utf-8");
    CHECK_STR_EQ(portal_content_type("/app.css"), "text/css; charset=utf-8");
    CHECK_STR_EQ(portal_content_type("/icon.svg"), "image/svg+xml");
    CHECK_STR_EQ(portal_content_type("/noext"), "application/octet-stream");
    CHECK_STR_EQ(portal_content_type("/dir.js/file"), "application/octet-stream");
    CHECK_STR_EQ(portal_content_type(NULL), "application/octet-stream");
}

TEST(if_none_match_accepts_lists_weak_tags_and_star)
{
    const char *tag = "\"00112233aabbccdd\"";
    CHECK(portal_etag_matches("\"00112233aabbccdd\"", tag));
    CHECK(portal_etag_matches("\"x\", \"00112233aabbccdd\"", tag));
    CHECK(portal_etag_matches("W/\"00112233aabbccdd\"", tag));
    CHECK(portal_etag_matches("*", tag));
    CHECK(!portal_etag_matches("\"00112233aabbccde\"", tag));
    CHECK(!portal_etag_matches("", tag));
    CHECK(!portal_etag_matches(NULL, tag));
    CHECK(!portal_etag_matches("\"00112233aabbccdd", tag));
}

RUN_TESTS(index_html_is_embedded_and_served_for_root,
          app_script_and_vendored_yaml_library_are_embedded,
          unknown_and_malformed_paths_are_not_found, assets_are_sorted_with_quoted_etags,
          content_types_follow_the_extension, if_none_match_accepts_lists_weak_tags_and_star)
