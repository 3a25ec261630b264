/*
 * tmpbase.h - a unit test program's own temporary directory, base: made
 * by tmpbase_make() (called from the program's constructor, before any test
 * forks) and removed with everything in it when the program exits.
 */
#ifndef PAI_TESTS_TMPBASE_H
#define PAI_TESTS_TMPBASE_H

#include <stdio.h>
#include <stdlib.h>

static char base[256]; /* the test program's temporary directory */

static void tmpbase_cleanup(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
}

/* Make base from a mkdtemp(3) template ("/tmp/pai-test-NAME-XXXXXX"); abort
 * when it cannot be made. */
static inline void tmpbase_make(const char *template)
{
    snprintf(base, sizeof(base), "%s", template);
    if (!mkdtemp(base))
        abort();
    atexit(tmpbase_cleanup);
}

#endif
