/*
 * thread_stats.h - a test's look at its own threads in /proc (header-only,
 * for the unit tests that count a thread's or a process's context
 * switches).
 */
#ifndef PAI_TEST_THREAD_STATS_H
#define PAI_TEST_THREAD_STATS_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>

/* The voluntary context switches in a /proc status file (a process's or
 * a thread's: counted as it goes to sleep), or -1. */
static inline long status_switches(const char *status_path)
{
    char line[256];
    long v = -1;
    FILE *f = fopen(status_path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* The voluntary context switches of this process's thread named name
 * (the last one /proc/self/task lists, when several have the name), or -1. */
static inline long thread_switches(const char *name)
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
        v = status_switches(path);
    }
    if (d)
        closedir(d);
    return v;
}

#endif
