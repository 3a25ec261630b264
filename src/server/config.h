/*
 * config.h - the server's configuration: one YAML file, then environment
 * variables, then command-line flags (each later source overrides).
 *
 * Every option is one row of the table in config.c (name, type, default,
 * bounds, help); docs/configuration.md is written from that table and
 * `pai server --help` prints it.  An option `foo_bar` is set by
 *   - the key `foo_bar:` in the file given with --config,
 *   - the environment variable PAI_FOO_BAR,
 *   - the flag --foo-bar VALUE (or --foo-bar=VALUE).
 * `storages` (a list of maps) can only be given in the file.
 *
 * Other modules read the fields directly; the struct is filled once at
 * start-up and is read-only afterwards.
 */
#ifndef PAI_SERVER_CONFIG_H
#define PAI_SERVER_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

struct server_config {
    char *listen_addr;                   /* IP address to bind */
    int64_t port;                        /* TCP port; 0 = any free port (printed at start) */
    char *data_dir;                      /* where the store and generated secrets live */
    char *store;                         /* store URL; "" = sqlite:<data_dir>/pai.db */
    int64_t store_timeout_s;             /* PostgreSQL: bound on one answer of the database */
    char *hived_config;                  /* scheduler config in HiveD's format; "" = none */
    int64_t token_ttl;                   /* seconds a login token lives */
    char *admin_username;                /* bootstrap admin created on an empty store */
    char *admin_password;                /* "" = generate one and print it once */
    char *agent_token;                   /* shared secret of agents; "" = generate into data_dir */
    int64_t node_lost_timeout_s;         /* a node silent this long is lost */
    int64_t idle_gpu_seconds;            /* GPUs idle this long flag their job gpuIdle */
    int64_t idle_gpu_util_pct;           /* under this utilization a GPU is idle */
    int64_t events_per_job;              /* events a job keeps */
    int64_t event_retention_days;        /* older events are pruned; 0 = kept with the job */
    char *log_level;                     /* error, warn, info, debug */
    int64_t sched_reservation_timeout_s; /* wait after which a starving gang gets a reservation */
    char *sched_check;              /* invariant checker: sample, true (every decision), false */
    int64_t sched_check_interval_s; /* sample: at most one check per this many seconds */
    int64_t task_port_base;         /* first port of the per-host task port pool */
    int64_t task_port_count;        /* ports in that pool */
    int64_t max_connections;        /* concurrent HTTP connections */
    int64_t max_idle_connections_per_ip; /* idle connections one address may hold; 0 = no bound */
    int64_t connection_timeout_s;        /* a silent connection is closed after this */
    int64_t http_threads;                /* the HTTP pool; 0: 2 per core, 4 at least */
    int64_t http_offload_threads;        /* workers for log reads from the agents */
    int64_t http_write_threads;          /* workers for the handlers that change state */
    int64_t http_connection_memory_kib;  /* libmicrohttpd's memory per connection */
    int64_t http_sched_batch;            /* 1: the HTTP layer's threads under SCHED_BATCH */
    int64_t pwhash_memlimit_kib;         /* argon2id memory per password hash */
    int64_t pwhash_opslimit;             /* argon2id passes */
    int64_t login_fail_free_user;        /* failed logins of a name before waits; 0 = off */
    int64_t login_fail_free_addr;        /* failed logins of an address before waits; 0 = off */
    int64_t login_lock_s;                /* the first wait, doubling per further failure */
    int64_t login_lock_max_s;            /* the longest wait; quiet this long = forgotten */
    char *advertise_url;                 /* this server's URL for clients; "" = from listen */
    int64_t leader_lease_s;              /* the leader's lease (PostgreSQL, several servers) */
    int64_t standby_refresh_s;           /* a standby rebuilds its read-only view this often */
    int64_t leader_agents_silent_s;      /* a leader none of whose agents syncs quits; 0 = off */
    char *tls_cert;                      /* PEM certificate file; "" = plain HTTP */
    char *tls_key;                       /* PEM private key file */
    char *cors_allow_origin;             /* allowed origins, or "*"; "" = no CORS headers */
    char *node_approval;                 /* auto, or manual: new nodes wait for an admin */
    int64_t log_reads_per_user;          /* log reads one user may have in flight (0: any) */
    char *agent_ca_file;                 /* CA of agents' https:// log servers ("": system's) */
    char *peer_ca_file;                  /* CA of the other servers' https:// ("": system's) */
    char *log_read_access;               /* who reads task logs: "owner" (and admins) or "all" */
    char *template_examples;             /* job files published as templates at first start */
    char *prometheus_url; /* whose firing alerts GET /api/v2/alerts returns; "" = 501 */
    int64_t metrics_history_interval_s; /* seconds between metrics history samples */
    int64_t metrics_history_points;     /* samples kept per history series */
    char *smtp_host;                    /* SMTP server for notifications; "" = no e-mail */
    int64_t smtp_port;                  /* its port */
    char *smtp_from;                    /* the sender address */
    int64_t smtp_starttls;              /* 1 = require STARTTLS */
    char *smtp_username;                /* SMTP login; "" = none */
    char *smtp_password_file;           /* file holding its password */
    char *notify_webhook_hosts;         /* allow-list of webhook hosts; "" = no webhooks */
    char *notify_webhook_secret_file;   /* HMAC-SHA256 key of webhook signatures; "" = none */
    int64_t notify_waiting_s;           /* a job waiting this long is notified; 0 = never */
    int64_t notify_idle_s;              /* flagged gpuIdle this long before it is notified */
    int64_t notify_queue_max;           /* notifications queued at most */
    int64_t notify_attempts;            /* tries per notification */
    int64_t notify_retry_ms;            /* first wait before a retry (doubling) */
    int64_t notify_timeout_s;           /* one try gives up after this */
    char *notify_portal_url;            /* base URL of links in notifications; "" = none */
    json_t *storages;                   /* array of storage definitions (owned) */
    char *config_file;                  /* the file read, "" when none */
};
typedef struct server_config server_config_t;

/* Parse args (after `server`) over the defaults, the file and the
 * environment.  *out is malloc'ed; free with server_config_free.  On error (or
 * --help, which returns PAI_E_NOT_FOUND after printing help to stdout) err
 * gets a message naming the option and the source. */
PAI_MUST_CHECK pai_err_t server_config_load(int argc, char **argv, server_config_t **out, char *err,
                                            size_t errlen);
void server_config_free(server_config_t *cfg);

/* Print every option with its type, default and help (for --help). */
void server_config_print_help(FILE *out);
/* Print the options as a Markdown table (docs/configuration.md). */
void server_config_print_markdown(FILE *out);

/* sched_check as a number: 0 sample, 1 true (every decision; also
 * "every"), 2 false (also "off"); -1 for any other word. */
int server_config_sched_check(const server_config_t *cfg);

/* The store URL to open (resolves the "" default against data_dir). */
char *server_config_store_url(const server_config_t *cfg);

#endif
