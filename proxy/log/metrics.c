/* metrics.c: counters and their Prometheus text rendering (metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const event_names[AWF_MEV_COUNT] = {
    "http", "https", "dns", "connect", "tls", "tcp", "udp", "icmp", "ip", "unix", "other",
};

/* conn.c's enum conn_state, in order. */
static const char *const state_names[AWF_METRICS_CONN_STATES] = {
    "accepted", "http", "tunnel_hello", "tunnel", "draining", "closing",
};

static const uint64_t bucket_us[AWF_METRICS_BUCKETS] = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

void awf_metrics_init(struct awf_metrics *m) { memset(m, 0, sizeof(*m)); }

static enum awf_metrics_event event_of(const char *e) {
  if (e)
    for (int i = 0; i < AWF_MEV_OTHER; i++)
      if (strcmp(e, event_names[i]) == 0)
        return (enum awf_metrics_event)i;
  return AWF_MEV_OTHER;
}

/* ---- denied hosts: written by the owner under a sequence counter -------- */

static void top_store_host(struct awf_metrics_top_slot *s, const char *host, size_t n) {
  for (size_t i = 0; i < AWF_METRICS_HOST_MAX; i++)
    __atomic_store_n(&s->host[i], i < n ? host[i] : '\0', __ATOMIC_RELAXED);
}

static void top_note(struct awf_metrics_top *t, const char *host, size_t len) {
  const char *nul = memchr(host, '\0', len);
  if (nul)
    len = (size_t)(nul - host);
  if (len >= AWF_METRICS_HOST_MAX)
    len = AWF_METRICS_HOST_MAX - 1;
  if (len == 0)
    return;
  struct awf_metrics_top_slot *min = NULL;
  for (size_t i = 0; i < AWF_METRICS_TOP_SLOTS; i++) {
    struct awf_metrics_top_slot *s = &t->slot[i];
    if (s->host[0] && strncmp(s->host, host, len) == 0 && s->host[len] == '\0') {
      awf_metrics_add(&s->n, 1); /* one word: no need for the sequence */
      return;
    }
    if (!min || s->n < min->n)
      min = s;
  }
  /* A free slot (count 0), or the least-counted host gives way and the new
   * one inherits its count (space-saving: an overestimate, never less). */
  uint32_t seq = t->seq;
  __atomic_store_n(&t->seq, seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  top_store_host(min, host, len);
  __atomic_store_n(&min->n, min->n + 1, __ATOMIC_RELAXED);
  __atomic_store_n(&t->seq, seq + 2, __ATOMIC_RELEASE);
}

/* A consistent copy of another thread's table (retried while it writes; after
 * many tries, an empty table: a scrape never waits long, and never shows a
 * host torn between two writes). */
static void top_copy(struct awf_metrics_top_slot *dst, const struct awf_metrics_top *t) {
  for (int tries = 0; tries < 1000; tries++) {
    uint32_t s1 = __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < AWF_METRICS_TOP_SLOTS; i++) {
      dst[i].n = __atomic_load_n(&t->slot[i].n, __ATOMIC_RELAXED);
      for (size_t j = 0; j < AWF_METRICS_HOST_MAX; j++)
        dst[i].host[j] = __atomic_load_n(&t->slot[i].host[j], __ATOMIC_RELAXED);
      dst[i].host[AWF_METRICS_HOST_MAX - 1] = '\0';
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint32_t s2 = __atomic_load_n(&t->seq, __ATOMIC_RELAXED);
    if (!(s1 & 1) && s1 == s2)
      return;
  }
  memset(dst, 0, AWF_METRICS_TOP_SLOTS * sizeof(*dst));
}

static int by_count_then_name(const void *a, const void *b) {
  const struct awf_metrics_top_slot *x = a, *y = b;
  if (x->n != y->n)
    return x->n > y->n ? -1 : 1;
  return strcmp(x->host, y->host);
}

static void top_merge(struct awf_metrics_top *dst, const struct awf_metrics *const *src,
                      size_t n) {
  memset(dst, 0, sizeof(*dst));
  if (n == 0)
    return;
  struct awf_metrics_top_slot *all = calloc(n * AWF_METRICS_TOP_SLOTS, sizeof(*all));
  if (!all)
    return; /* the table stays empty: the counters are still right */
  size_t used = 0;
  struct awf_metrics_top_slot copy[AWF_METRICS_TOP_SLOTS];
  for (size_t k = 0; k < n; k++) {
    top_copy(copy, &src[k]->denied);
    for (size_t i = 0; i < AWF_METRICS_TOP_SLOTS; i++) {
      if (!copy[i].host[0] || copy[i].n == 0)
        continue;
      size_t j = 0;
      while (j < used && strcmp(all[j].host, copy[i].host) != 0)
        j++;
      if (j == used)
        all[used++] = copy[i];
      else
        all[j].n += copy[i].n;
    }
  }
  qsort(all, used, sizeof(*all), by_count_then_name);
  for (size_t i = 0; i < used && i < AWF_METRICS_TOP_SLOTS; i++)
    dst->slot[i] = all[i];
  free(all);
}

/* ---- updates ------------------------------------------------------------- */

void awf_metrics_note_record(struct awf_metrics *m, const struct awf_log_record *r,
                             const char *host, size_t host_len) {
  if (!m)
    return;
  unsigned d = r->decision <= AWF_DENY ? (unsigned)r->decision : 0;
  unsigned reason = r->reason < AWF_REASON_COUNT ? (unsigned)r->reason : 0;
  awf_metrics_add(&m->units[event_of(r->event)][d][reason], 1);
  if (r->bytes_up > 0)
    awf_metrics_add(&m->bytes_up, (uint64_t)r->bytes_up);
  if (r->bytes_down > 0)
    awf_metrics_add(&m->bytes_down, (uint64_t)r->bytes_down);
  /* Policy denials only: a host that could not be reached is not denied. */
  if (r->decision == AWF_DENY && host && host_len &&
      awf_reason_fix(r->reason) != AWF_FIX_FAILURE)
    top_note(&m->denied, host, host_len);
}

void awf_metrics_conn_state(struct awf_metrics *m, int from, int to) {
  if (!m)
    return;
  if (from < 0 && to >= 0)
    awf_metrics_add(&m->accepted, 1);
  if (from >= 0 && from < AWF_METRICS_CONN_STATES)
    awf_metrics_gauge_add(&m->conns[from], -1);
  if (to >= 0 && to < AWF_METRICS_CONN_STATES)
    awf_metrics_gauge_add(&m->conns[to], 1);
}

void awf_metrics_observe(struct awf_metrics_hist *h, uint64_t us) {
  size_t i = 0;
  while (i < AWF_METRICS_BUCKETS && us > bucket_us[i])
    i++;
  awf_metrics_add(&h->bucket[i], 1);
  awf_metrics_add(&h->count, 1);
  awf_metrics_add(&h->sum_us, us);
}

void awf_metrics_reload(struct awf_metrics *m, bool ok) {
  if (m)
    awf_metrics_add(ok ? &m->reloads : &m->reload_failures, 1);
}

/* ---- summing --------------------------------------------------------------- */

static uint64_t ld(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

static void sum_words(uint64_t *dst, const uint64_t *src, size_t n) {
  for (size_t i = 0; i < n; i++)
    dst[i] += ld(&src[i]);
}

static void sum_hist(struct awf_metrics_hist *d, const struct awf_metrics_hist *s) {
  sum_words(d->bucket, s->bucket, AWF_METRICS_BUCKETS + 1);
  d->count += ld(&s->count);
  d->sum_us += ld(&s->sum_us);
}

void awf_metrics_sum(struct awf_metrics *dst, const struct awf_metrics *const *src, size_t n) {
  awf_metrics_init(dst);
  for (size_t k = 0; k < n; k++) {
    const struct awf_metrics *s = src[k];
    sum_words(&dst->units[0][0][0], &s->units[0][0][0],
              sizeof(s->units) / sizeof(s->units[0][0][0]));
    dst->accepted += ld(&s->accepted);
    dst->bytes_up += ld(&s->bytes_up);
    dst->bytes_down += ld(&s->bytes_down);
    for (size_t i = 0; i < AWF_METRICS_CONN_STATES; i++)
      dst->conns[i] += __atomic_load_n(&s->conns[i], __ATOMIC_RELAXED);
    sum_hist(&dst->connect, &s->connect);
    sum_hist(&dst->dns, &s->dns);
    dst->dns_cache_hits += ld(&s->dns_cache_hits);
    dst->dns_cache_misses += ld(&s->dns_cache_misses);
    dst->reloads += ld(&s->reloads);
    dst->reload_failures += ld(&s->reload_failures);
    dst->log_lines += ld(&s->log_lines);
    dst->log_lines_dropped += ld(&s->log_lines_dropped);
    dst->log_lines_pending += ld(&s->log_lines_pending);
  }
  top_merge(&dst->denied, src, n);
}

/* ---- rendering --------------------------------------------------------------- */

int awf_metrics_append_label(struct awf_buf *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = c == '\\' ? "\\\\" : c == '"' ? "\\\"" : c == '\n' ? "\\n" : NULL;
    char one = c >= 0x20 && c < 0x7f ? (char)c : '?';
    int rc = esc ? awf_buf_append(b, esc, 2) : awf_buf_append(b, &one, 1);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int label(struct awf_buf *b, const char *name, const char *value, bool first) {
  int rc = awf_buf_printf(b, "%s%s=\"", first ? "" : ",", name);
  if (rc == 0)
    rc = awf_metrics_append_label(b, value, strlen(value));
  if (rc == 0)
    rc = awf_buf_append(b, "\"", 1);
  return rc;
}

static int head(struct awf_buf *b, const char *name, const char *type, const char *help) {
  return awf_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int scalar(struct awf_buf *b, const char *name, const char *type, const char *help,
                  long long v) {
  int rc = head(b, name, type, help);
  return rc ? rc : awf_buf_printf(b, "%s %lld\n", name, v);
}

static int units(struct awf_buf *b, const struct awf_metrics *m, bool requests) {
  const char *name = requests ? "awf_requests_total" : "awf_connections_total";
  int rc = head(b, name, "counter",
                requests
                    ? "HTTP requests (http, https) and DNS questions, by their access-log "
                      "event, decision and reason."
                    : "Connections (connect, tls, tcp; awf: udp, icmp, ip, unix), by their "
                      "access-log event, decision and reason.");
  for (int e = 0; e < AWF_MEV_COUNT && rc == 0; e++) {
    bool is_request = e == AWF_MEV_HTTP || e == AWF_MEV_HTTPS || e == AWF_MEV_DNS;
    if (is_request != requests)
      continue;
    for (int d = 0; d < 3 && rc == 0; d++) {
      for (int r = 0; r < AWF_REASON_COUNT && rc == 0; r++) {
        uint64_t v = m->units[e][d][r];
        if (!v)
          continue;
        const char *dn = awf_decision_name((enum awf_decision)d);
        const char *rn = awf_reason_name((enum awf_reason)r);
        rc = awf_buf_printf(b, "%s{", name);
        if (rc == 0)
          rc = label(b, "event", event_names[e], true);
        if (rc == 0)
          rc = label(b, "decision", dn ? dn : "none", false);
        if (rc == 0)
          rc = label(b, "reason", rn ? rn : "none", false);
        if (rc == 0)
          rc = awf_buf_printf(b, "} %llu\n", (unsigned long long)v);
      }
    }
  }
  return rc;
}

static int hist(struct awf_buf *b, const char *name, const char *help,
                const struct awf_metrics_hist *h) {
  int rc = head(b, name, "histogram", help);
  uint64_t cum = 0;
  for (int i = 0; i <= AWF_METRICS_BUCKETS && rc == 0; i++) {
    cum += h->bucket[i];
    if (i < AWF_METRICS_BUCKETS)
      rc = awf_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bucket_us[i] / 1e6,
                          (unsigned long long)cum);
    else
      rc = awf_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
  }
  if (rc == 0)
    rc = awf_buf_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, (double)h->sum_us / 1e6, name,
                        (unsigned long long)h->count);
  return rc;
}

static int render(const struct awf_metrics *m, const struct awf_metrics_build *bi,
                  struct awf_buf *b) {
  int rc = head(b, "awf_build_info", "gauge", "The build: version, git commit and flavour.");
  if (rc == 0)
    rc = awf_buf_append(b, "awf_build_info{", 15);
  if (rc == 0)
    rc = label(b, "version", bi && bi->version ? bi->version : "", true);
  if (rc == 0)
    rc = label(b, "commit", bi && bi->commit ? bi->commit : "", false);
  if (rc == 0)
    rc = label(b, "flavour", bi && bi->flavour ? bi->flavour : "", false);
  if (rc == 0)
    rc = awf_buf_append(b, "} 1\n", 4);
  if (rc == 0)
    rc = units(b, m, true);
  if (rc == 0)
    rc = units(b, m, false);
  if (rc == 0)
    rc = scalar(b, "awf_connections_accepted_total", "counter",
                "Client connections accepted by the proxy listeners.", (long long)m->accepted);
  if (rc == 0)
    rc = head(b, "awf_connections_active", "gauge",
              "Open client connections by state (state=\"tunnel\": tunnels relaying).");
  for (int i = 0; i < AWF_METRICS_CONN_STATES && rc == 0; i++)
    rc = awf_buf_printf(b, "awf_connections_active{state=\"%s\"} %lld\n", state_names[i],
                        (long long)m->conns[i]);
  if (rc == 0)
    rc = scalar(b, "awf_tunnels_active", "gauge",
                "Tunnels relaying bytes (CONNECT, redirected TLS and TCP).",
                (long long)m->conns[AWF_METRICS_STATE_TUNNEL]);
  if (rc == 0)
    rc = head(b, "awf_relayed_bytes_total", "counter",
              "Bytes relayed, counted when a request or connection ends: up is client to "
              "upstream, down is upstream to client.");
  if (rc == 0)
    rc = awf_buf_printf(b,
                        "awf_relayed_bytes_total{direction=\"up\"} %llu\n"
                        "awf_relayed_bytes_total{direction=\"down\"} %llu\n",
                        (unsigned long long)m->bytes_up, (unsigned long long)m->bytes_down);
  if (rc == 0)
    rc = hist(b, "awf_upstream_connect_seconds",
              "Time to connect to an upstream address (each address tried).", &m->connect);
  if (rc == 0)
    rc = hist(b, "awf_dns_lookup_seconds",
              "Time of upstream DNS lookups the resolver's cache did not answer.", &m->dns);
  if (rc == 0)
    rc = scalar(b, "awf_dns_cache_hits_total", "counter",
                "Name lookups answered from the resolver's cache.",
                (long long)m->dns_cache_hits);
  if (rc == 0)
    rc = scalar(b, "awf_dns_cache_misses_total", "counter",
                "Name lookups the resolver's cache did not answer.",
                (long long)m->dns_cache_misses);
  if (rc == 0)
    rc = scalar(b, "awf_log_lines_total", "counter",
                "Access-log records handed to the log (written = this - dropped - pending).",
                (long long)m->log_lines);
  if (rc == 0)
    rc = scalar(b, "awf_log_lines_dropped_total", "counter",
                "Access-log lines lost for good (a full backlog, a write error).",
                (long long)m->log_lines_dropped);
  if (rc == 0)
    rc = scalar(b, "awf_log_lines_pending", "gauge",
                "Access-log lines waiting in memory to be written.",
                (long long)m->log_lines_pending);
  if (rc == 0)
    rc = scalar(b, "awf_rule_reloads_total", "counter", "Rule reloads that took effect.",
                (long long)m->reloads);
  if (rc == 0)
    rc = scalar(b, "awf_rule_reload_failures_total", "counter",
                "Rule reloads refused (the old rules stayed in force).",
                (long long)m->reload_failures);
  if (rc == 0)
    rc = head(b, "awf_denied_hosts_top", "gauge",
              "Policy denials of the most denied hosts (at most 20; DNS failures and "
              "unreachable upstreams are not denials here; an estimate once more distinct "
              "hosts were denied than are tracked).");
  for (int i = 0; i < AWF_METRICS_TOP_SHOWN && rc == 0; i++) {
    const struct awf_metrics_top_slot *s = &m->denied.slot[i];
    if (!s->host[0] || !s->n)
      continue;
    rc = awf_buf_append(b, "awf_denied_hosts_top{", 21);
    if (rc == 0)
      rc = label(b, "host", s->host, true);
    if (rc == 0)
      rc = awf_buf_printf(b, "} %llu\n", (unsigned long long)s->n);
  }
  return rc;
}

int awf_metrics_render(const struct awf_metrics *m, const struct awf_metrics_build *bi,
                       struct awf_buf *b) {
  size_t start = b->len;
  int rc = render(m, bi, b);
  if (rc < 0 && b->data) {
    b->len = start;
    b->data[start] = '\0';
  }
  return rc;
}
