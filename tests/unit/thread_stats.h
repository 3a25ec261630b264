/*
 * thread_stats.h - a test's look at its own threads in /proc (header-only,
 * for the unit tests that count a thread's context switches).
 */
#ifndef PAI_TEST_THREAD_STATS_H
#define PAI_TEST_THREAD_STATS_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>

/* The voluntary context switches of this process's thread named name
 * (the first one found), or -1. */
static long thread_switches(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    long v = -1;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        char path[300], comm[64] = "";
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (!fgets(comm, sizeof(comm), f))
            comm[0] = '\0';
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        if (strcmp(comm, name) != 0)
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
        if (!(f = fopen(path, "r")))
            continue;
        char line[256];
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
                break;
        fclose(f);
    }
    if (d)
        closedir(d);
    return v;
}

#endif
