/*
 * cmd_store.c - `pai store migrate`: move an installation's store to
 * another backend (SQLite -> PostgreSQL, or any pair) with the server
 * stopped.  Opens both stores directly (no server involved), refuses a
 * target that holds records unless --force (which deletes them first),
 * copies every record in batches (src/store/store_copy.c) and verifies that
 * both stores hold the same number of records of every kind.
 *
 * Exit statuses: 0 copied and verified; 1 the copy or the check failed;
 * 2 usage errors, a store that cannot be opened, a non-empty target.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/log.h"
#include "common/util.h"
#include "store/store.h"
#include "store/store_copy.h"

static const cli_opt_t migrate_opts[] = {
    {.name = "from", .arg = "URL", .help = "the store to copy: sqlite:PATH (or a path)"},
    {.name = "to",
     .arg = "URL",
     .help = "the new store: postgres://USER@HOST:PORT/DB (or sqlite:PATH)"},
    {.name = "force", .help = "delete every record the target already holds, then copy"},
    {.name = "batch", .arg = "N", .help = "records per target transaction (default 500)"},
    {0},
};
static const cli_cmd_t store_cmd = {
    .name = "store",
    .synopsis = "migrate --from URL --to URL [--force] [--batch N]",
    .summary = "Copy every record of one store into another: users, groups, tokens, jobs with "
               "their configs, commands and events, nodes and their credentials, the VC "
               "configuration.  Stop the server first.  The target must hold no records (its "
               "schema is created when missing) unless --force is given.  Both stores are counted "
               "per kind of record afterwards; any difference fails the command.  Then start the "
               "server with `--store URL` (the same data dir keeps the agent token).",
    .opts = migrate_opts,
    .min_pos = 1,
    .max_pos = 1};

/* url with the password of a "scheme://user:password@host" replaced by "***". */
static char *redact(const char *url)
{
    const char *scheme = strstr(url, "://"), *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    if (!at || !colon || colon > at)
        return xstrdup(url);
    return str_printf("%.*s***%s", (int)(colon + 1 - url), url, at);
}

/* The file of an SQLite URL (store.c's schemes), NULL for other URLs. */
static const char *sqlite_path(const char *url)
{
    if (str_has_prefix(url, "sqlite://"))
        return url + strlen("sqlite://");
    if (str_has_prefix(url, "sqlite:"))
        return url + strlen("sqlite:");
    return strstr(url, "://") ? NULL : url;
}

static store_t *open_store(const char *what, const char *url)
{
    store_t *st = NULL;
    char err[600] = "";
    char *shown = redact(url);
    const char *path = sqlite_path(url);
    /* opening an SQLite store creates it: a mistyped source must not */
    if (strcmp(what, "source") == 0 && path && access(path, R_OK) != 0)
        fprintf(stderr, "pai store migrate: the source store %s does not exist (%s)\n", path,
                strerror(errno));
    else if (store_open(url, &st, err, sizeof err) != PAI_OK)
        fprintf(stderr, "pai store migrate: cannot open the %s store %s: %s\n", what, shown, err);
    free(shown);
    return st;
}

static void progress(void *ud, long copied)
{
    (void)ud;
    fprintf(stderr, "copied %ld records\n", copied);
}

/* Counts of every kind side by side; true when they agree. */
static bool verify(const store_counts_t *a, const store_counts_t *b)
{
    bool same = a->total == b->total;
    printf("%-12s %10s %10s\n", "KIND", "SOURCE", "TARGET");
    for (size_t i = 0; i < a->n; i++) {
        long there = store_counts_get(b, a->kinds[i]);
        printf("%-12s %10ld %10ld%s\n", a->kinds[i], a->counts[i], there,
               there == a->counts[i] ? "" : "  DIFFERENT");
        same = same && there == a->counts[i];
    }
    for (size_t i = 0; i < b->n; i++)
        if (store_counts_get(a, b->kinds[i]) == 0) {
            printf("%-12s %10d %10ld  DIFFERENT\n", b->kinds[i], 0, b->counts[i]);
            same = false;
        }
    printf("%-12s %10ld %10ld\n", "total", a->total, b->total);
    return same;
}

/* The target holds records: wipe them (--force) or refuse. */
static int empty_target(store_t *dst, const store_counts_t *have, bool force, const char *shown)
{
    if (have->total == 0)
        return CLI_OK;
    if (!force) {
        fprintf(stderr,
                "pai store migrate: the target store %s already holds %ld records (%s: %ld%s); "
                "pass --force to delete them and copy\n",
                shown, have->total, have->kinds[0], have->counts[0], have->n > 1 ? ", ..." : "");
        return CLI_USAGE;
    }
    long deleted = 0;
    pai_err_t rc = store_copy_wipe(dst, &deleted);
    if (rc != PAI_OK) {
        fprintf(stderr, "pai store migrate: deleting the target's records failed: %s\n",
                pai_err_msg(rc));
        return CLI_FAIL;
    }
    fprintf(stderr, "deleted the %ld records the target held (--force)\n", deleted);
    return CLI_OK;
}

static int migrate(store_t *src, store_t *dst, bool force, int batch, const char *to_shown)
{
    store_counts_t want = {0}, have = {0};
    long copied = 0;
    int out = CLI_FAIL;
    pai_err_t rc = store_copy_count(dst, &have);
    if (rc != PAI_OK) {
        fprintf(stderr, "pai store migrate: reading the target failed: %s\n", pai_err_msg(rc));
        goto out;
    }
    if ((rc = store_copy_count(src, &want)) != PAI_OK) {
        fprintf(stderr, "pai store migrate: reading the source failed: %s\n", pai_err_msg(rc));
        goto out;
    }
    if (want.total == 0) {
        fprintf(stderr, "pai store migrate: the source store holds no records\n");
        out = CLI_USAGE;
        goto out;
    }
    store_counts_free(&want);
    if ((out = empty_target(dst, &have, force, to_shown)) != CLI_OK)
        goto out;
    out = CLI_FAIL;
    rc = store_copy_run(src, dst, (size_t)batch, &copied, progress, NULL);
    if (rc != PAI_OK) {
        fprintf(stderr,
                "pai store migrate: the copy failed after %ld records: %s (the target keeps what "
                "was committed; run again with --force)\n",
                copied, pai_err_msg(rc));
        goto out;
    }
    store_counts_free(&have);
    if ((rc = store_copy_count(src, &want)) != PAI_OK ||
        (rc = store_copy_count(dst, &have)) != PAI_OK) {
        fprintf(stderr, "pai store migrate: counting the records failed: %s\n", pai_err_msg(rc));
        goto out;
    }
    if (!verify(&want, &have)) {
        fprintf(stderr, "pai store migrate: the stores differ after the copy (was the source in "
                        "use? stop its server and run again with --force)\n");
        goto out;
    }
    printf("migrated %ld records; start the server with --store %s\n", copied, to_shown);
    out = CLI_OK;
out:
    store_counts_free(&want);
    store_counts_free(&have);
    return out;
}

int store_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&store_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    const char *from = cli_opt(&a, "from"), *to = cli_opt(&a, "to");
    int batch = 500;
    if (strcmp(a.pos[0], "migrate") != 0 || !from || !*from || !to || !*to) {
        fprintf(stderr, "usage: pai store %s\n", store_cmd.synopsis);
        return CLI_USAGE;
    }
    if ((rc = cli_opt_int(&a, "batch", 1, 100000, 500, &batch)) != CLI_OK)
        return rc;
    if (strcmp(from, to) == 0) {
        fprintf(stderr, "pai store migrate: --from and --to name the same store\n");
        return CLI_USAGE;
    }
    log_set_level(LOG_WARN); /* the stores' "applied migration" lines are noise here */
    char *to_shown = redact(to);
    store_t *src = open_store("source", from), *dst = src ? open_store("target", to) : NULL;
    rc = src && dst ? migrate(src, dst, cli_flag(&a, "force"), batch, to_shown) : CLI_USAGE;
    store_close(dst);
    store_close(src);
    free(to_shown);
    return rc;
}
