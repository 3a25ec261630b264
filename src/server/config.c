/*
 * config.c - the server's options as one table, and the three sources that
 * set them (file, environment, flags), applied in that order.
 *
 * To add an option: add a field to server_config_t and one row to
 * options[]; the parser, --help and the documentation follow.
 */
#include "server/config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "common/yamljson.h"
#include "common/yamltree.h"

typedef enum { OPT_STR, OPT_INT, OPT_JSON } opt_type_t;

typedef struct {
    const char *name;
    opt_type_t type;
    size_t off;
    const char *def; /* default, as text (OPT_JSON: none) */
    int64_t min, max;
    const char *help;
} opt_t;

#define O(f) offsetof(server_config_t, f)
#define DAY  86400

static const opt_t options[] = {
    {.name = "listen_addr",
     .type = OPT_STR,
     .off = O(listen_addr),
     .def = "127.0.0.1",
     .help = "IP address the REST API listens on (--listen ADDR:PORT sets this and port)"},
    {.name = "port",
     .type = OPT_INT,
     .off = O(port),
     .def = "9186",
     .max = 65535,
     .help = "TCP port of the REST API; 0 picks a free port (the URL is printed at start)"},
    {.name = "data_dir",
     .type = OPT_STR,
     .off = O(data_dir),
     .def = "./pai-data",
     .help = "directory for the store and generated secrets (created if missing)"},
    {.name = "store",
     .type = OPT_STR,
     .off = O(store),
     .def = "",
     .help =
         "store URL: sqlite:PATH or postgres://USER@HOST:PORT/DB; empty: sqlite:<data_dir>/pai.db"},
    {.name = "store_timeout_s",
     .type = OPT_INT,
     .off = O(store_timeout_s),
     .def = "10",
     .min = 1,
     .max = 3600,
     .help = "PostgreSQL: the longest wait for one answer of the database; a database that hangs "
             "or is cut off fails the request with 503 after about this long (plus a reconnect's "
             "connect_timeout), never hangs it"},
    {.name = "hived_config",
     .type = OPT_STR,
     .off = O(hived_config),
     .def = "",
     .help =
         "scheduler configuration file in HiveD's format; empty: one VC 'default' over all nodes"},
    {.name = "token_ttl",
     .type = OPT_INT,
     .off = O(token_ttl),
     .def = "604800",
     .min = 60,
     .max = 3650L * DAY,
     .help = "lifetime of login tokens in seconds (application tokens last until revoked, or "
             "the expiration given at their creation)"},
    {.name = "admin_username",
     .type = OPT_STR,
     .off = O(admin_username),
     .def = "admin",
     .help = "name of the admin account created on first start with an empty store"},
    {.name = "admin_password",
     .type = OPT_STR,
     .off = O(admin_password),
     .def = "",
     .help = "its password; empty: generate one and print it once on first start"},
    {.name = "agent_token",
     .type = OPT_STR,
     .off = O(agent_token),
     .def = "",
     .help = "join token: agents present it to register a node name, then sync with the "
             "node's own credential; empty: generated once into <data_dir>/agent.token"},
    {.name = "node_approval",
     .type = OPT_STR,
     .off = O(node_approval),
     .def = "auto",
     .help = "auto: a new node name registers with the join token at once; manual: it waits, "
             "listed but with no credential and no task, until an administrator approves it "
             "(pai nodes approve NAME), and so does a name whose credential was revoked"},
    {.name = "node_lost_timeout_s",
     .type = OPT_INT,
     .off = O(node_lost_timeout_s),
     .def = "60",
     .min = 1,
     .max = DAY,
     .help = "seconds without a heartbeat after which a node is marked lost"},
    {.name = "idle_gpu_seconds",
     .type = OPT_INT,
     .off = O(idle_gpu_seconds),
     .def = "1800",
     .min = 1,
     .max = 30L * DAY,
     .help = "seconds a running job's GPUs stay under idle_gpu_util_pct before the job is flagged "
             "gpuIdle"},
    {.name = "idle_gpu_util_pct",
     .type = OPT_INT,
     .off = O(idle_gpu_util_pct),
     .def = "10",
     .min = 0,
     .max = 100,
     .help = "GPU utilization (percent, mean of a task's GPUs) under which its GPUs count as idle"},
    {.name = "events_per_job",
     .type = OPT_INT,
     .off = O(events_per_job),
     .def = "32",
     .min = 1,
     .max = 10000,
     .help = "events a job keeps (GET /api/v2/jobs/{name}/events), in memory and in the store; "
             "older ones are deleted"},
    {.name = "event_retention_days",
     .type = OPT_INT,
     .off = O(event_retention_days),
     .def = "0",
     .max = 36500,
     .help = "job events older than this many days (by their last occurrence) are no longer shown "
             "and are deleted from the store; 0: kept as long as the job"},
    {.name = "log_level",
     .type = OPT_STR,
     .off = O(log_level),
     .def = "info",
     .help = "error, warn, info or debug"},
    {.name = "sched_reservation_timeout_s",
     .type = OPT_INT,
     .off = O(sched_reservation_timeout_s),
     .def = "300",
     .max = 30L * DAY,
     .help =
         "seconds a starving job waits before the scheduler reserves capacity for it (0: never)"},
    {.name = "sched_check",
     .type = OPT_STR,
     .off = O(sched_check),
     .def = "sample",
     .help = "the scheduler's invariant checker: sample (a full check after a pass at most once "
             "per sched_check_interval_s), true (after every decision: tests, debugging; costs a "
             "scan of the model each) or false; violations are logged with the decision they "
             "followed and counted in pai_scheduler_invariant_violations_total"},
    {.name = "sched_check_interval_s",
     .type = OPT_INT,
     .off = O(sched_check_interval_s),
     .def = "60",
     .min = 1,
     .max = DAY,
     .help = "seconds between two sampled checks of the scheduler's invariants"},
    {.name = "task_port_base",
     .type = OPT_INT,
     .off = O(task_port_base),
     .def = "20000",
     .min = 1024,
     .max = 65000,
     .help =
         "first port of the pool from which tasks get their ports (per host); keep the pool below "
         "the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default)"},
    {.name = "task_port_count",
     .type = OPT_INT,
     .off = O(task_port_count),
     .def = "12000",
     .min = 16,
     .max = 64000,
     .help = "number of ports in the task port pool (base + count must stay <= 65536)"},
    {.name = "max_connections",
     .type = OPT_INT,
     .off = O(max_connections),
     .def = "1024",
     .min = 4,
     .max = 100000,
     .help = "concurrent HTTP connections, held agent long-polls included; when full, the oldest "
             "idle connection is closed for a new one (see Hostile clients in operations.md)"},
    {.name = "max_idle_connections_per_ip",
     .type = OPT_INT,
     .off = O(max_idle_connections_per_ip),
     .def = "64",
     .max = 100000,
     .help =
         "idle connections (no request in a handler: opening, sending headers or body, keep-alive) "
         "one client address may hold; its oldest idle one is closed for a new one; 0: no bound"},
    {.name = "connection_timeout_s",
     .type = OPT_INT,
     .off = O(connection_timeout_s),
     .def = "30",
     .min = 10,
     .max = 3600,
     .help = "seconds a connection may stay silent (no byte received or sent) before it is closed"},
    {.name = "http_threads",
     .type = OPT_INT,
     .off = O(http_threads),
     .def = "0",
     .max = 1024,
     .help = "threads serving every HTTP connection (held agent long-polls take none); 0: two "
             "per CPU core, at least 4"},
    {.name = "http_offload_threads",
     .type = OPT_INT,
     .off = O(http_offload_threads),
     .def = "8",
     .min = 1,
     .max = 1024,
     .help = "workers for the HTTP work that waits on an agent (task log reads); more concurrent "
             "reads take turns on them"},
    {.name = "http_write_threads",
     .type = OPT_INT,
     .off = O(http_write_threads),
     .def = "32",
     .min = 1,
     .max = 1024,
     .help = "workers for the HTTP requests that change state (every method but GET: agent syncs, "
             "submissions, logins); they wait for the store's commits, which they share; agent "
             "syncs and the others queue apart and take turns; syncs use at most 3/4 of them, the "
             "others at most half"},
    {.name = "http_connection_memory_kib",
     .type = OPT_INT,
     .off = O(http_connection_memory_kib),
     .def = "32",
     .min = 8,
     .max = 1024,
     .help = "memory of each HTTP connection (the request line and headers must fit: at 32 one "
             "header line of ~16 KB, ~20 KB of headers in all, a Cookie header of ~9 KB; at 16 "
             "about half; larger ones are answered 431); libmicrohttpd zeroes it at every "
             "request"},
    {.name = "http_sched_batch",
     .type = OPT_INT,
     .off = O(http_sched_batch),
     .def = "0",
     .min = 0,
     .max = 1,
     .help = "1: the HTTP layer's threads run under SCHED_BATCH (a woken one waits for its waker "
             "to block instead of preempting it: fewer context switches per request and larger "
             "group commits, but on a loaded machine every other process runs first: hollow "
             "throughput fell 2.5x, docs/benchmarks-history.md); 0 (default): the default policy"},
    {.name = "pwhash_memlimit_kib",
     .type = OPT_INT,
     .off = O(pwhash_memlimit_kib),
     .def = "19456",
     .min = 8,
     .max = 4L * 1024 * 1024,
     .help = "argon2id memory per password hash, KiB"},
    {.name = "pwhash_opslimit",
     .type = OPT_INT,
     .off = O(pwhash_opslimit),
     .def = "2",
     .min = 1,
     .max = 100,
     .help = "argon2id passes"},
    {.name = "login_fail_free_user",
     .type = OPT_INT,
     .off = O(login_fail_free_user),
     .def = "5",
     .max = 1000000,
     .help = "failed logins a user name may have before each further one must wait (see "
             "login_lock_s); 0: no throttling by name"},
    {.name = "login_fail_free_addr",
     .type = OPT_INT,
     .off = O(login_fail_free_addr),
     .def = "20",
     .max = 1000000,
     .help = "failed logins a client address may have (any names) before each further one must "
             "wait; 0: no throttling by address. A login forwarded by a standby counts against "
             "its client's address, which the standby vouches for with an HMAC keyed by a "
             "secret in the store (architecture.md, \"What a standby serves\"), never against "
             "the standby's"},
    {.name = "login_lock_s",
     .type = OPT_INT,
     .off = O(login_lock_s),
     .def = "1",
     .min = 1,
     .max = DAY,
     .help = "the first wait after those free failures (answered 429 TooManyRequestsError); it "
             "doubles with each further failure"},
    {.name = "login_lock_max_s",
     .type = OPT_INT,
     .off = O(login_lock_max_s),
     .def = "900",
     .min = 1,
     .max = 30L * DAY,
     .help = "the longest wait; a name or address with no failure for this long starts over"},
    {.name = "advertise_url",
     .type = OPT_STR,
     .off = O(advertise_url),
     .def = "",
     .help = "the URL clients and agents reach this server at, shown by GET /api/v2/info and, "
             "when this server leads, by standbys naming the leader (high availability); must "
             "differ between servers; empty: http(s)://<listen address or host name>:<port>"},
    {.name = "leader_lease_s",
     .type = OPT_INT,
     .off = O(leader_lease_s),
     .def = "5",
     .min = 2,
     .max = 300,
     .help = "PostgreSQL stores: several servers may share the store and one leads, holding a "
             "lease of this many seconds renewed every third of it; a leader that cannot "
             "renew stops before its lease ends, and a standby takes over within about "
             "1.1 times this after the leader is lost (SQLite: one server, no election)"},
    {.name = "leader_agents_silent_s",
     .type = OPT_INT,
     .off = O(leader_agents_silent_s),
     .def = "0",
     .min = 0,
     .max = 86400,
     .help = "several servers: a leader that holds healthy nodes none of which has synced for "
             "this many seconds (it reaches the store but not its agents) gives its lease up "
             "and exits with status 75, so that a standby that reaches them leads before the "
             "nodes are lost (at least 30, the agents' own failover; keep it under "
             "node_lost_timeout_s less 20; an outage of every agent then moves the lease every "
             "this many seconds); 0: never"},
    {.name = "standby_refresh_s",
     .type = OPT_INT,
     .off = O(standby_refresh_s),
     .def = "2",
     .min = 1,
     .max = 3600,
     .help = "a standby (PostgreSQL, several servers) answers reads from a read-only view of "
             "the store (users, groups, tokens, jobs, nodes, VCs); every this many seconds it "
             "reads the store's generation (one row) and rebuilds the view only when the store "
             "changed; a revoked token or deleted user stops working on it within this plus one "
             "rebuild (a token it does not know is read from the store when presented)"},
    {.name = "tls_cert",
     .type = OPT_STR,
     .off = O(tls_cert),
     .def = "",
     .help = "PEM file of the server's TLS certificate (its chain after it); with tls_key the "
             "API, the portal and the agent protocol are served over HTTPS only; empty: plain "
             "HTTP"},
    {.name = "tls_key",
     .type = OPT_STR,
     .off = O(tls_key),
     .def = "",
     .help = "PEM file of the certificate's private key (unencrypted; keep it mode 0600)"},
    {.name = "cors_allow_origin",
     .type = OPT_STR,
     .off = O(cors_allow_origin),
     .def = "",
     .help = "CORS: origins (scheme://host[:port], separated by commas) whose pages may call the "
             "API from a browser, or * for any (OpenPAI's); empty: no CORS (the portal is "
             "served by the server itself and needs none)"},
    {.name = "agent_ca_file",
     .type = OPT_STR,
     .off = O(agent_ca_file),
     .def = "",
     .help = "PEM file of the CA that signed the agents' log-server certificates (agents with "
             "--tls-cert serve logs over https, always verified); empty: the system's CAs"},
    {.name = "peer_ca_file",
     .type = OPT_STR,
     .off = O(peer_ca_file),
     .def = "",
     .help = "PEM file of the CA that signed the other servers' certificates (several servers "
             "with tls_cert: a standby forwards to the leader's https:// advertise_url and "
             "verifies it against this); empty: the system's CAs"},
    {.name = "log_reads_per_user",
     .type = OPT_INT,
     .off = O(log_reads_per_user),
     .def = "16",
     .min = 0,
     .max = 100000,
     .help = "task log reads one user (not an admin) may have in flight through the server at "
             "once; one more is answered 429 TooManyRequestsError with Retry-After, so that no "
             "user holds all of a node's 64 log readers (0: no bound)"},
    {.name = "log_read_access",
     .type = OPT_STR,
     .off = O(log_read_access),
     .def = "owner",
     .help = "who may read a job's task logs: owner (the job's owner and admins; sharing with "
             "other users is not implemented yet) or all (any user, as in OpenPAI)"},
    {.name = "template_examples",
     .type = OPT_STR,
     .off = O(template_examples),
     .def = "",
     .help = "directory of job files (*.yaml) published once, at the first start, as public, "
             "featured templates owned by admin_username (pai up passes the repository's "
             "examples/); files that are not valid jobs or hold secrets are left out; empty: "
             "none"},
    {.name = "prometheus_url",
     .type = OPT_STR,
     .off = O(prometheus_url),
     .def = "",
     .help = "Prometheus (http://host:port) that evaluates deploy/prometheus/rules.yml: GET "
             "/api/v2/alerts returns its firing alerts (admins all, users those of their "
             "jobs); empty: GET /api/v2/alerts answers 501"},
    {.name = "metrics_history_interval_s",
     .type = OPT_INT,
     .off = O(metrics_history_interval_s),
     .def = "15",
     .min = 1,
     .max = 3600,
     .help = "seconds between two samples of the in-memory metrics history (GPU use charts)"},
    {.name = "metrics_history_points",
     .type = OPT_INT,
     .off = O(metrics_history_points),
     .def = "5760",
     .min = 2,
     .max = 100000,
     .help =
         "samples kept per series in the metrics history (5760 x 15 s = 24 h; lost on restart)"},
    {.name = "smtp_host",
     .type = OPT_STR,
     .off = O(smtp_host),
     .def = "",
     .help = "SMTP server (host name or address) through which notifications are e-mailed to a "
             "job's owner; empty: no e-mail (see Notifications in operations.md)"},
    {.name = "smtp_port",
     .type = OPT_INT,
     .off = O(smtp_port),
     .def = "25",
     .min = 1,
     .max = 65535,
     .help = "port of the SMTP server (587 for submission with STARTTLS)"},
    {.name = "smtp_from",
     .type = OPT_STR,
     .off = O(smtp_from),
     .def = "pai@localhost",
     .help = "sender address of notification e-mails"},
    {.name = "smtp_starttls",
     .type = OPT_INT,
     .off = O(smtp_starttls),
     .def = "0",
     .min = 0,
     .max = 1,
     .help = "1: require STARTTLS (the e-mail is not sent over a plain connection); 0: plain SMTP"},
    {.name = "smtp_username",
     .type = OPT_STR,
     .off = O(smtp_username),
     .def = "",
     .help = "SMTP login name; empty: no authentication"},
    {.name = "smtp_password_file",
     .type = OPT_STR,
     .off = O(smtp_password_file),
     .def = "",
     .help = "file holding the SMTP password (its first line; keep it mode 0600); never shown by "
             "any API"},
    {.name = "notify_webhook_hosts",
     .type = OPT_STR,
     .off = O(notify_webhook_hosts),
     .def = "",
     .help = "webhook hosts users may name, separated by commas: host (any port), host:port, "
             "*.domain (its subdomains), [v6addr]; empty: webhooks are refused (the server would "
             "POST wherever a user says: see Notifications in operations.md)"},
    {.name = "notify_webhook_secret_file",
     .type = OPT_STR,
     .off = O(notify_webhook_secret_file),
     .def = "",
     .help = "file holding the key (its first line) with which webhook bodies are signed: header "
             "X-PAI-Signature-256: sha256=HMAC-SHA256 hex; empty: not signed"},
    {.name = "notify_waiting_s",
     .type = OPT_INT,
     .off = O(notify_waiting_s),
     .def = "3600",
     .max = 30L * DAY,
     .help = "seconds a job waits in the queue before its owner is told (event waiting, once "
             "per job); 0: never"},
    {.name = "notify_idle_s",
     .type = OPT_INT,
     .off = O(notify_idle_s),
     .def = "0",
     .max = 30L * DAY,
     .help = "seconds a running job stays flagged gpuIdle (idle_gpu_seconds) before its owner is "
             "told (event idle, once per job); 0: as soon as it is flagged"},
    {.name = "notify_queue_max",
     .type = OPT_INT,
     .off = O(notify_queue_max),
     .def = "1000",
     .min = 1,
     .max = 100000,
     .help = "notifications queued at most (retries included); more are dropped and counted "
             "(pai_notify_dropped_total{reason=\"queue_full\"})"},
    {.name = "notify_attempts",
     .type = OPT_INT,
     .off = O(notify_attempts),
     .def = "5",
     .min = 1,
     .max = 100,
     .help = "tries per notification before it is dropped"},
    {.name = "notify_retry_ms",
     .type = OPT_INT,
     .off = O(notify_retry_ms),
     .def = "5000",
     .min = 10,
     .max = 3600000,
     .help = "wait before the first retry of a notification; it doubles per try, up to 10 minutes"},
    {.name = "notify_timeout_s",
     .type = OPT_INT,
     .off = O(notify_timeout_s),
     .def = "10",
     .min = 1,
     .max = 300,
     .help = "seconds one delivery (SMTP or webhook) may take"},
    {.name = "notify_portal_url",
     .type = OPT_STR,
     .off = O(notify_portal_url),
     .def = "",
     .help = "the portal's URL as users reach it (https://pai.example.com): notifications link to "
             "the job's page; empty: no link"},
    {.name = "storages",
     .type = OPT_JSON,
     .off = O(storages),
     .help = "list of storages {name, type, share, volumeName, default, data, groups} (file only)"},
};

static const char *type_name(opt_type_t t)
{
    return t == OPT_STR ? "string" : t == OPT_INT ? "integer" : "list";
}

static const opt_t *opt_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        if (strcmp(options[i].name, name) == 0)
            return &options[i];
    return NULL;
}

/* Set one option from text; src names the source for messages. */
static pai_err_t opt_set(server_config_t *cfg, const opt_t *o, const char *val, const char *src,
                         char *err, size_t errlen)
{
    char *base = (char *)cfg;
    if (o->type == OPT_STR) {
        char **p = (char **)(void *)(base + o->off);
        free(*p);
        *p = xstrdup(val);
        return PAI_OK;
    }
    if (o->type == OPT_INT) {
        int64_t v;
        if (str_to_i64(val, o->min, o->max, &v) != PAI_OK) {
            snprintf(err, errlen, "%s: %s: '%s' is not an integer in [%lld, %lld]", src, o->name,
                     val, (long long)o->min, (long long)o->max);
            return PAI_E_INVALID;
        }
        *(int64_t *)(void *)(base + o->off) = v;
        return PAI_OK;
    }
    snprintf(err, errlen, "%s: %s can only be set in the config file", src, o->name);
    return PAI_E_INVALID;
}

static pai_err_t check_storages(const json_t *a, const char *src, char *err, size_t errlen)
{
    size_t i;
    json_t *s;
    if (!json_is_array(a)) {
        snprintf(err, errlen, "%s: storages: must be a list", src);
        return PAI_E_INVALID;
    }
    json_array_foreach(a, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        if (!json_is_object(s) || !name || !str_is_name(name)) {
            snprintf(err, errlen, "%s: storages[%zu]: needs a 'name' of [A-Za-z0-9_-]", src, i);
            return PAI_E_INVALID;
        }
    }
    return PAI_OK;
}

/* ---- the three sources ------------------------------------------------- */

static pai_err_t apply_yaml_pair(server_config_t *cfg, const ypair_t *p, const char *file,
                                 char *err, size_t errlen)
{
    char src[512];
    snprintf(src, sizeof(src), "%s:%d:%d", file, p->key->line, p->key->col);
    const opt_t *o = p->key->kind == YNODE_SCALAR ? opt_find(p->key->str) : NULL;
    if (!o) {
        snprintf(err, errlen, "%s: unknown option '%s'", src,
                 p->key->kind == YNODE_SCALAR ? p->key->str : "?");
        return PAI_E_INVALID;
    }
    if (o->type == OPT_JSON) {
        json_t *j = yjson_from_node(p->val);
        if (check_storages(j, src, err, errlen) != PAI_OK) {
            json_decref(j);
            return PAI_E_INVALID;
        }
        json_t **slot = (json_t **)(void *)((char *)cfg + o->off);
        json_decref(*slot);
        *slot = j;
        return PAI_OK;
    }
    if (p->val->kind != YNODE_SCALAR) {
        snprintf(err, errlen, "%s: %s: expected %s %s, got a %s", src, o->name,
                 o->type == OPT_INT ? "an" : "a", type_name(o->type), ynode_kind_name(p->val));
        return PAI_E_INVALID;
    }
    return opt_set(cfg, o, p->val->str, src, err, errlen);
}

static pai_err_t apply_file(server_config_t *cfg, const char *path, char *err, size_t errlen)
{
    buf_t b;
    ydoc_t *doc = NULL;
    yerr_t yerr;
    pai_err_t rc;
    buf_init(&b, PAI_MAX_CONFIG_FILE);
    if ((rc = buf_read_file(&b, path)) != PAI_OK) {
        snprintf(err, errlen, "%s: cannot read the config file (%s)", path, pai_err_msg(rc));
        goto out;
    }
    if ((rc = ydoc_parse_unique(buf_str(&b), b.len, &doc, &yerr)) != PAI_OK) {
        snprintf(err, errlen, "%s:%d:%d: %s", path, yerr.line, yerr.col, yerr.msg);
        goto out;
    }
    const ynode_t *root = ydoc_root(doc);
    if (root && root->kind != YNODE_MAP) {
        snprintf(err, errlen, "%s: the config file must be a map of option: value", path);
        rc = PAI_E_INVALID;
        goto out;
    }
    for (size_t i = 0; root && i < root->n; i++)
        if ((rc = apply_yaml_pair(cfg, &root->pairs[i], path, err, errlen)) != PAI_OK)
            goto out;
out:
    ydoc_free(doc);
    buf_free(&b);
    return rc;
}

static pai_err_t apply_env(server_config_t *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < ARRAY_LEN(options); i++) {
        if (options[i].type == OPT_JSON)
            continue;
        char env[128] = "PAI_";
        size_t k = 4;
        for (const char *p = options[i].name; *p && k + 1 < sizeof(env); p++)
            env[k++] = (char)toupper((unsigned char)*p);
        env[k] = '\0';
        const char *v = getenv(env);
        if (v && opt_set(cfg, &options[i], v, env, err, errlen) != PAI_OK)
            return PAI_E_INVALID;
    }
    return PAI_OK;
}

/* "--foo-bar" -> "foo_bar" in out; false when it is not an option flag. */
static bool flag_to_name(const char *arg, char *out, size_t n, const char **inline_val)
{
    if (!str_has_prefix(arg, "--"))
        return false;
    size_t k = 0;
    *inline_val = NULL;
    for (const char *p = arg + 2; *p && k + 1 < n; p++) {
        if (*p == '=') {
            *inline_val = p + 1;
            break;
        }
        out[k++] = *p == '-' ? '_' : *p;
    }
    out[k] = '\0';
    return k > 0;
}

static pai_err_t apply_listen(server_config_t *cfg, const char *v, char *err, size_t errlen)
{
    const char *colon = strrchr(v, ':');
    if (!colon) {
        snprintf(err, errlen, "--listen: expected ADDR:PORT, got '%s'", v);
        return PAI_E_INVALID;
    }
    char addr[256];
    size_t alen = (size_t)(colon - v);
    if (alen >= sizeof(addr))
        alen = sizeof(addr) - 1;
    memcpy(addr, v, alen);
    addr[alen] = '\0';
    if (opt_set(cfg, opt_find("port"), colon + 1, "--listen", err, errlen) != PAI_OK)
        return PAI_E_INVALID;
    if (alen)
        return opt_set(cfg, opt_find("listen_addr"), addr, "--listen", err, errlen);
    return PAI_OK;
}

/* Walk the flags; file_only picks out --config (which must be read first). */
static pai_err_t apply_flags(server_config_t *cfg, int argc, char **argv, bool config_only,
                             char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        char name[128];
        const char *val, *flag = argv[i];
        if (!flag_to_name(flag, name, sizeof(name), &val)) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[i]);
            return PAI_E_INVALID;
        }
        if (!val) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "%s needs a value", argv[i]);
                return PAI_E_INVALID;
            }
            val = argv[++i];
        }
        bool is_config = strcmp(name, "config") == 0;
        if (config_only != is_config)
            continue;
        if (is_config) {
            free(cfg->config_file);
            cfg->config_file = xstrdup(val);
            continue;
        }
        if (strcmp(name, "listen") == 0) {
            if (apply_listen(cfg, val, err, errlen) != PAI_OK)
                return PAI_E_INVALID;
            continue;
        }
        const opt_t *o = opt_find(name);
        if (!o) {
            snprintf(err, errlen, "unknown option %s (see --help)", flag);
            return PAI_E_INVALID;
        }
        if (opt_set(cfg, o, val, flag, err, errlen) != PAI_OK)
            return PAI_E_INVALID;
    }
    return PAI_OK;
}

static void set_defaults(server_config_t *cfg)
{
    char err[64];
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        if (options[i].type != OPT_JSON &&
            opt_set(cfg, &options[i], options[i].def, "default", err, sizeof(err)) != PAI_OK)
            abort(); /* a default outside its own bounds is a programming error */
    cfg->storages = json_array();
    cfg->config_file = xstrdup("");
}

int server_config_sched_check(const server_config_t *cfg)
{
    static const char *const words[][2] = {{"sample", NULL}, {"true", "every"}, {"false", "off"}};
    for (int i = 0; i < (int)ARRAY_LEN(words); i++)
        for (int k = 0; k < 2; k++)
            if (words[i][k] && strcmp(cfg->sched_check, words[i][k]) == 0)
                return i;
    return -1;
}

/* The options whose value is one of a few words. */
static pai_err_t check_choices(const server_config_t *cfg, char *err, size_t errlen)
{
    if (log_level_parse(cfg->log_level) < 0) {
        snprintf(err, errlen, "log_level: '%s' is not one of error, warn, info, debug",
                 cfg->log_level);
        return PAI_E_INVALID;
    }
    if (server_config_sched_check(cfg) < 0) {
        snprintf(err, errlen, "sched_check: '%s' is not one of sample, true, false",
                 cfg->sched_check);
        return PAI_E_INVALID;
    }
    if (strcmp(cfg->node_approval, "auto") != 0 && strcmp(cfg->node_approval, "manual") != 0) {
        snprintf(err, errlen, "node_approval: '%s' is not one of auto, manual", cfg->node_approval);
        return PAI_E_INVALID;
    }
    if (strcmp(cfg->log_read_access, "owner") != 0 && strcmp(cfg->log_read_access, "all") != 0) {
        snprintf(err, errlen, "log_read_access: '%s' is not one of owner, all",
                 cfg->log_read_access);
        return PAI_E_INVALID;
    }
    return PAI_OK;
}

/* 1: --help, 2: --help-markdown (the table for docs/configuration.md). */
static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
        if (strcmp(argv[i], "--help-markdown") == 0)
            return 2;
    }
    return 0;
}

pai_err_t server_config_load(int argc, char **argv, server_config_t **out, char *err, size_t errlen)
{
    server_config_t *cfg = xcalloc(1, sizeof(*cfg));
    pai_err_t rc = PAI_OK;
    set_defaults(cfg);
    *out = NULL;
    int help = wants_help(argc, argv);
    if (help) {
        if (help == 1)
            server_config_print_help(stdout);
        else
            server_config_print_markdown(stdout);
        snprintf(err, errlen, "help printed");
        rc = PAI_E_NOT_FOUND;
        goto out;
    }
    if ((rc = apply_flags(cfg, argc, argv, true, err, errlen)) != PAI_OK)
        goto out;
    if (*cfg->config_file && (rc = apply_file(cfg, cfg->config_file, err, errlen)) != PAI_OK)
        goto out;
    if ((rc = apply_env(cfg, err, errlen)) != PAI_OK)
        goto out;
    if ((rc = apply_flags(cfg, argc, argv, false, err, errlen)) != PAI_OK)
        goto out;
    if ((rc = check_choices(cfg, err, errlen)) != PAI_OK)
        goto out;
    *out = cfg;
    cfg = NULL;
out:
    server_config_free(cfg);
    return rc;
}

void server_config_free(server_config_t *cfg)
{
    if (!cfg)
        return;
    char *base = (char *)cfg;
    for (size_t i = 0; i < ARRAY_LEN(options); i++) {
        if (options[i].type == OPT_STR)
            free(*(char **)(void *)(base + options[i].off));
        else if (options[i].type == OPT_JSON)
            json_decref(*(json_t **)(void *)(base + options[i].off));
    }
    free(cfg->config_file);
    free(cfg);
}

char *server_config_store_url(const server_config_t *cfg)
{
    if (cfg->store && *cfg->store)
        return xstrdup(cfg->store);
    char *u = str_printf("sqlite:%s/pai.db", cfg->data_dir);
    return u ? u : xstrdup("sqlite:pai.db");
}

void server_config_print_help(FILE *out)
{
    fprintf(out, "usage: pai server [--config FILE] [--listen ADDR:PORT] [--OPTION VALUE]...\n\n"
                 "Each option can be set in the YAML config file (key: value), by the\n"
                 "environment (PAI_<OPTION>) or by a flag (--option-name VALUE); later wins.\n\n");
    for (size_t i = 0; i < ARRAY_LEN(options); i++) {
        const opt_t *o = &options[i];
        char flag[128];
        size_t k = 0;
        for (const char *p = o->name; *p && k + 1 < sizeof(flag); p++)
            flag[k++] = *p == '_' ? '-' : *p;
        flag[k] = '\0';
        fprintf(out, "  --%-30s %s (%s, default '%s')\n", flag, o->help, type_name(o->type),
                o->def ? o->def : "[]");
    }
}

void server_config_print_markdown(FILE *out)
{
    fprintf(out, "| option | type | default | bounds | help |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < ARRAY_LEN(options); i++) {
        const opt_t *o = &options[i];
        char bounds[64] = "";
        if (o->type == OPT_INT)
            snprintf(bounds, sizeof(bounds), "%lld..%lld", (long long)o->min, (long long)o->max);
        const char *def = !o->def ? "[]" : *o->def ? o->def : "\"\"";
        fprintf(out, "| `%s` | %s | `%s` | %s | %s |\n", o->name, type_name(o->type), def, bounds,
                o->help);
    }
}
