/*
 * notify_int.h - what the files of the notifier share (notify.c: queue and
 * sender thread; notify_spec.c: checks; notify_send.c: libcurl transports).
 */
#ifndef PAI_SERVER_NOTIFY_INT_H
#define PAI_SERVER_NOTIFY_INT_H

#include <stdatomic.h>

#include "server/notify.h"

/* The allow-list of webhook hosts ("" none). */
const char *notify_hook_hosts(const notify_t *nt);
/* Scheme, host (an IPv6 literal without brackets) and port (the scheme's
 * default when absent) of url, through libcurl's URL parser; malloc'ed.
 * PAI_E_INVALID when it does not parse. */
PAI_MUST_CHECK pai_err_t notify_url_parts(const char *url, char **scheme, char **host, int *port);

/* One delivery through libcurl, giving up after o->timeout_ms or as soon as
 * *stop turns true.  The reason of a failure goes into err. */
notify_result_t notify_send_email(const notify_opts_t *o, const notify_item_t *it, const char *to,
                                  const atomic_bool *stop, char *err, size_t errlen);
notify_result_t notify_send_hook(const notify_opts_t *o, const notify_item_t *it,
                                 const atomic_bool *stop, char *err, size_t errlen);

#endif
