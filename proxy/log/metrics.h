/* metrics.h: the engine's counters, gauges and histograms, and their
 * rendering in the Prometheus text exposition format (version 0.0.4). Pure:
 * no I/O, no loop; serving them over HTTP is the engine's job
 * (engine/metrics_server.c).
 *
 * One struct awf_metrics per engine instance (per loop and thread), written
 * only by that instance's thread: every update is a relaxed atomic load and
 * store of a word only this thread writes (no lock, no read-modify-write
 * instruction). A scrape sums any number of instances with
 * awf_metrics_sum(), reading them with relaxed atomic loads from any thread;
 * the denied-hosts table, the one part that is not a plain word, is copied
 * under a sequence counter and retried if its writer was in the middle of
 * an update. Label values are bounded: events, decisions, reasons and states
 * are enums, and denied hosts are a top-N of a fixed-size table. */
#ifndef AWF_METRICS_H
#define AWF_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "jsonlog.h" /* struct awf_log_record */
#include "reason.h"

/* The events of the access log, as label values (event="..."). Requests:
 * http, https, dns; connections: the rest. */
enum awf_metrics_event {
  AWF_MEV_HTTP,
  AWF_MEV_HTTPS,
  AWF_MEV_DNS,
  AWF_MEV_CONNECT,
  AWF_MEV_TLS,
  AWF_MEV_TCP,
  AWF_MEV_UDP,
  AWF_MEV_ICMP,
  AWF_MEV_IP,
  AWF_MEV_UNIX,
  AWF_MEV_OTHER,
  AWF_MEV_COUNT
};

/* Connection states, in the order of conn.c's enum conn_state (which checks
 * it): accepted, http, tunnel_hello, tunnel, draining, closing. */
#define AWF_METRICS_CONN_STATES 6
#define AWF_METRICS_STATE_TUNNEL 3

/* Histogram bucket upper bounds, in microseconds (rendered in seconds):
 * 0.5 ms to 10 s; a last +Inf bucket follows. */
#define AWF_METRICS_BUCKETS 14

/* Denied hosts: each instance tracks this many (the space-saving algorithm:
 * a new host takes the least-counted slot and inherits its count, so a
 * frequent host is never lost); a scrape shows the AWF_METRICS_TOP_SHOWN
 * largest of the sum. Hosts are cut to AWF_METRICS_HOST_MAX - 1 bytes. */
#define AWF_METRICS_TOP_SLOTS 64
#define AWF_METRICS_TOP_SHOWN 20
#define AWF_METRICS_HOST_MAX 128

struct awf_metrics_hist {
  uint64_t bucket[AWF_METRICS_BUCKETS + 1]; /* per bucket, not cumulative; last: +Inf */
  uint64_t count;
  uint64_t sum_us;
};

struct awf_metrics_top_slot {
  uint64_t n;
  char host[AWF_METRICS_HOST_MAX]; /* NUL-terminated; "" : a free slot */
};

struct awf_metrics_top {
  uint32_t seq; /* odd while the writer updates the slots */
  struct awf_metrics_top_slot slot[AWF_METRICS_TOP_SLOTS];
};

struct awf_metrics {
  /* Final records by event, decision (none, allow, deny) and reason. */
  uint64_t units[AWF_MEV_COUNT][3][AWF_REASON_COUNT];
  uint64_t accepted; /* client connections accepted */
  uint64_t bytes_up, bytes_down;
  int64_t conns[AWF_METRICS_CONN_STATES]; /* open connections by state */
  struct awf_metrics_hist connect;        /* upstream TCP connect, per address tried */
  struct awf_metrics_hist dns;            /* upstream DNS lookups (cache misses) */
  uint64_t dns_cache_hits, dns_cache_misses;
  uint64_t reloads, reload_failures;
  /* The access log's own counts (one log per process): filled in by
   * whoever collects a scrape, after summing (awf_logfile_* getters). */
  uint64_t log_lines, log_lines_dropped, log_lines_pending;
  struct awf_metrics_top denied;
};

/* Zero everything. */
void awf_metrics_init(struct awf_metrics *m);

/* The one way a counter or gauge changes: only the owning thread calls it. */
static inline void awf_metrics_add(uint64_t *c, uint64_t n) {
  __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}
static inline void awf_metrics_gauge_add(int64_t *g, int64_t d) {
  __atomic_store_n(g, __atomic_load_n(g, __ATOMIC_RELAXED) + d, __ATOMIC_RELAXED);
}

/* A unit ended with record r (its event, decision, reason and bytes); a
 * policy denial (decision deny, not a failure to reach: awf_reason_fix) is counted for host[0..host_len) in the top-N,
 * when host_len > 0. m NULL: nothing. */
void awf_metrics_note_record(struct awf_metrics *m, const struct awf_log_record *r,
                             const char *host, size_t host_len);

/* A connection moved from state `from` to `to` (indexes of enum conn_state;
 * -1: it did not exist yet / it is gone). m NULL: nothing. */
void awf_metrics_conn_state(struct awf_metrics *m, int from, int to);

/* One observation of `us` microseconds. */
void awf_metrics_observe(struct awf_metrics_hist *h, uint64_t us);

/* A rule reload finished (ok) or failed: the counters awf_rule_reloads_total
 * and awf_rule_reload_failures_total. Call it on the instance of the thread
 * that reloads (awf-proxy: its main loop's). */
void awf_metrics_reload(struct awf_metrics *m, bool ok);

/* dst = the sum of src[0..n) (dst may not be one of them): counters and
 * gauges added, histograms bucket by bucket, denied hosts merged by name.
 * Safe while the sources' threads write them. */
void awf_metrics_sum(struct awf_metrics *dst, const struct awf_metrics *const *src, size_t n);

/* What awf_build_info says. */
struct awf_metrics_build {
  const char *version, *commit, *flavour;
};

/* Append m, as awf_metrics_sum() made it (the denied hosts sorted), in the
 * text exposition format 0.0.4 (HELP and TYPE for every
 * family; series with a zero count of the event/reason table are left out,
 * every other family is always there). 0, -E2BIG or -ENOMEM (b is then
 * left as it was). */
int awf_metrics_render(const struct awf_metrics *m, const struct awf_metrics_build *bi,
                       struct awf_buf *b);

/* Append s[0..n) as a label value: '\\', '"' and '\n' escaped as the
 * format says, bytes outside printable ASCII as '?' (the format wants
 * UTF-8; a host may hold any bytes). */
int awf_metrics_append_label(struct awf_buf *b, const char *s, size_t n);

#endif
