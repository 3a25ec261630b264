/* ratelog.c - see ratelog.h. */
#include "common/ratelog.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

void ratelog_init(ratelog_t *rl, const char *who, int64_t interval_ms)
{
    memset(rl, 0, sizeof(*rl));
    rl->who = who;
    rl->interval_ms = interval_ms;
    pthread_mutex_init(&rl->mu, NULL);
}

void ratelog_destroy(ratelog_t *rl)
{
    pthread_mutex_destroy(&rl->mu);
}

void ratelog_v(void *cls, const char *fmt, va_list ap)
{
    ratelog_t *rl = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_debug("%s: %s", rl->who, msg);
    int64_t now = time_mono_ms();
    uint64_t folded = 0;
    bool say = false;
    pthread_mutex_lock(&rl->mu);
    if (rl->last_ms == 0 || now - rl->last_ms >= rl->interval_ms) {
        say = true;
        folded = rl->folded;
        rl->folded = 0;
        rl->last_ms = now;
    } else {
        rl->folded++;
    }
    pthread_mutex_unlock(&rl->mu);
    if (say && folded)
        log_warn("%s: %s (and %llu more messages since the last of these)", rl->who, msg,
                 (unsigned long long)folded);
    else if (say)
        log_warn("%s: %s", rl->who, msg);
}
