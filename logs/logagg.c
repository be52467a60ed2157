/* logagg.c: per-host counts, denials by reason and a duration histogram,
 * in memory bounded by the distinct hosts (capped), never by the records. */
#include "logagg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "denials.h"

#define MAX_REASONS 64
#define MAX_INTERNED 128
/* Histogram: values below EXACT have a bucket each; above, each power of
 * two is cut into SUB buckets (the 5 bits after the leading one). */
#define EXACT 64
#define SUB_BITS 5
#define SUB (1u << SUB_BITS)
#define OCTAVES (64 - 6) /* leading bit 6 (64) .. 63 */
#define NBUCKETS (EXACT + OCTAVES * SUB)

struct pending {
  uint64_t run, conn, req;
  uint32_t host; /* index in hosts[] */
  int port;
  const char *reason; /* interned */
  bool used, deny, would;
};

struct awf_logagg {
  size_t max_hosts;
  struct awf_loghost *hosts; /* the last slot is "others" */
  size_t nhosts, hosts_cap;
  uint32_t *index;  /* open addressing over hosts[]: i + 1, 0 empty */
  size_t index_cap; /* a power of two, at least twice nhosts */
  struct pending *pend;
  size_t npend, pend_cap;
  char *interned[MAX_INTERNED];
  size_t ninterned;
  struct awf_logreason reasons[MAX_REASONS + 1]; /* the last: "other" */
  size_t nreasons;
  uint64_t hist[NBUCKETS];
  struct awf_logtotals t;
  struct awf_loghost others;
  const struct awf_loghost **sorted;
  struct awf_logreason *rsorted;
};

/* ---- small helpers -------------------------------------------------------- */

static uint64_t fnv(const void *p, size_t n, uint64_t h) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 1099511628211ull;
  }
  return h;
}
#define FNV0 1469598103934665603ull

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

/* Reason and event names: a few distinct short strings, kept once. Past the
 * cap (a crafted log), "other". */
static const char *intern(awf_logagg *a, const char *s) {
  if (!s)
    return NULL;
  for (size_t i = 0; i < a->ninterned; i++)
    if (strcmp(a->interned[i], s) == 0)
      return a->interned[i];
  if (a->ninterned == MAX_INTERNED || strlen(s) > 64)
    return "other";
  char *c = strdup(s);
  if (!c)
    return "other";
  a->interned[a->ninterned++] = c;
  return c;
}

awf_logagg *awf_logagg_new(size_t max_hosts) {
  awf_logagg *a = calloc(1, sizeof(*a));
  if (!a)
    return NULL;
  a->max_hosts = max_hosts ? max_hosts : AWF_LOGAGG_MAX_HOSTS;
  a->others.others = true;
  a->others.name_len = (size_t)snprintf(a->others.name, sizeof(a->others.name), "(others)");
  return a;
}

void awf_logagg_free(awf_logagg *a) {
  if (!a)
    return;
  for (size_t i = 0; i < a->ninterned; i++)
    free(a->interned[i]);
  free(a->hosts);
  free(a->index);
  free(a->pend);
  free(a->sorted);
  free(a->rsorted);
  free(a);
}

const struct awf_logtotals *awf_logagg_totals(const awf_logagg *a) { return &a->t; }

/* ---- hosts ------------------------------------------------------------------ */

static int grow_index(awf_logagg *a) {
  size_t cap = a->index_cap ? a->index_cap * 2 : 1024;
  uint32_t *ix = calloc(cap, sizeof(*ix));
  if (!ix)
    return -ENOMEM;
  for (size_t i = 0; i < a->nhosts; i++) {
    size_t j = fnv(a->hosts[i].name, a->hosts[i].name_len, FNV0) & (cap - 1);
    while (ix[j])
      j = (j + 1) & (cap - 1);
    ix[j] = (uint32_t)(i + 1);
  }
  free(a->index);
  a->index = ix;
  a->index_cap = cap;
  return 0;
}

/* The name a record is counted under: its host; else the address of
 * original_dst (no port, no brackets); else "unix:" and the socket path. */
static size_t dest_name(const struct awf_logev *ev, char *out, size_t outsz) {
  const char *p = NULL;
  size_t n = 0;
  char tmp[AWF_LOGAGG_NAME_MAX + 8];
  if (ev->host) {
    p = ev->host;
    n = ev->host_len;
  } else if (ev->original_dst) {
    const char *d = ev->original_dst;
    size_t len = strlen(d);
    if (d[0] == '[') {
      const char *end = memchr(d, ']', len);
      p = d + 1;
      n = end ? (size_t)(end - p) : len - 1;
    } else {
      const char *colon = strchr(d, ':');
      p = d;
      /* one colon: ip:port; none or several (a bare v6 address): as is */
      n = colon && !strchr(colon + 1, ':') ? (size_t)(colon - d) : len;
    }
  } else if (ev->path) {
    size_t k = ev->path_len < AWF_LOGAGG_NAME_MAX ? ev->path_len : AWF_LOGAGG_NAME_MAX;
    n = (size_t)snprintf(tmp, sizeof(tmp), "unix:%.*s", (int)k, ev->path);
    p = tmp;
  } else {
    p = "(none)";
    n = 6;
  }
  if (n <= AWF_LOGAGG_NAME_MAX || outsz < AWF_LOGAGG_NAME_MAX + 4) {
    n = n < outsz ? n : outsz;
    memcpy(out, p, n);
    return n;
  }
  memcpy(out, p, AWF_LOGAGG_NAME_MAX);
  memcpy(out + AWF_LOGAGG_NAME_MAX, "...", 3);
  return AWF_LOGAGG_NAME_MAX + 3;
}

/* The host's row, made if new; the "others" row past the cap. */
static struct awf_loghost *host_of(awf_logagg *a, const char *name, size_t n, uint32_t *idx) {
  uint64_t h = fnv(name, n, FNV0);
  if (a->index_cap) {
    for (size_t j = h & (a->index_cap - 1); a->index[j]; j = (j + 1) & (a->index_cap - 1)) {
      struct awf_loghost *x = &a->hosts[a->index[j] - 1];
      if (x->name_len == n && memcmp(x->name, name, n) == 0) {
        *idx = a->index[j] - 1;
        return x;
      }
    }
  }
  *idx = UINT32_MAX;
  if (a->nhosts >= a->max_hosts)
    return &a->others;
  if (a->nhosts == a->hosts_cap) {
    size_t cap = a->hosts_cap ? a->hosts_cap * 2 : 64;
    if (cap > a->max_hosts)
      cap = a->max_hosts;
    struct awf_loghost *nh = realloc(a->hosts, cap * sizeof(*nh));
    if (!nh)
      return &a->others;
    a->hosts = nh;
    a->hosts_cap = cap;
  }
  if ((a->nhosts + 1) * 2 > a->index_cap && grow_index(a) < 0)
    return &a->others;
  struct awf_loghost *x = &a->hosts[a->nhosts];
  memset(x, 0, sizeof(*x));
  memcpy(x->name, name, n);
  x->name_len = n;
  size_t j = h & (a->index_cap - 1);
  while (a->index[j])
    j = (j + 1) & (a->index_cap - 1);
  a->index[j] = (uint32_t)(a->nhosts + 1);
  *idx = (uint32_t)a->nhosts++;
  return x;
}

static void add_port(struct awf_loghost *x, int port) {
  if (port <= 0 || port > 65535)
    return;
  for (unsigned i = 0; i < x->nports; i++)
    if (x->ports[i] == port)
      return;
  if (x->nports == AWF_LOGAGG_PORTS) {
    x->more_ports = true;
    return;
  }
  x->ports[x->nports++] = (uint16_t)port;
}

static void count_reason(awf_logagg *a, const char *reason) {
  if (!reason)
    reason = "(none)";
  for (size_t i = 0; i < a->nreasons; i++)
    if (a->reasons[i].name == reason) {
      a->reasons[i].count++;
      return;
    }
  if (a->nreasons == MAX_REASONS) {
    a->reasons[MAX_REASONS].name = "other";
    a->reasons[MAX_REASONS].count++;
    return;
  }
  a->reasons[a->nreasons++] = (struct awf_logreason){reason, 1};
}

static unsigned bucket_of(uint64_t v) {
  if (v < EXACT)
    return (unsigned)v;
  unsigned lead = 63u - (unsigned)__builtin_clzll(v);
  unsigned sub = (unsigned)(v >> (lead - SUB_BITS)) & (SUB - 1);
  return EXACT + (lead - 6) * SUB + sub;
}

/* The largest value of a bucket. */
static uint64_t bucket_top(unsigned b) {
  if (b < EXACT)
    return b;
  unsigned lead = (b - EXACT) / SUB + 6, sub = (b - EXACT) % SUB;
  uint64_t lo = (1ull << lead) | ((uint64_t)sub << (lead - SUB_BITS));
  return lo + (1ull << (lead - SUB_BITS)) - 1;
}

/* One decision counted for its host. */
static void count(awf_logagg *a, struct awf_loghost *x, int port, bool deny, bool would,
                  const char *reason, const char *event) {
  x->events++;
  a->t.events++;
  if (deny) {
    x->denied++;
    a->t.denied++;
  } else {
    x->allowed++;
    a->t.allowed++;
  }
  if (would) {
    x->would_deny++;
    a->t.would_deny++;
  }
  if ((deny || would)) {
    if (!x->first_reason) {
      x->first_reason = reason ? reason : "(none)";
      x->first_event = event;
    }
    count_reason(a, reason);
  }
  add_port(x, port);
}

/* ---- pending opens ------------------------------------------------------- */

static uint64_t pend_hash(uint64_t run, uint64_t conn, uint64_t req) {
  return mix(run ^ mix(conn * 31 + req));
}

static struct pending *pend_find(awf_logagg *a, uint64_t run, uint64_t conn, uint64_t req) {
  if (!a->pend_cap)
    return NULL;
  for (size_t j = pend_hash(run, conn, req) & (a->pend_cap - 1); a->pend[j].used;
       j = (j + 1) & (a->pend_cap - 1)) {
    struct pending *p = &a->pend[j];
    if (p->run == run && p->conn == conn && p->req == req)
      return p;
  }
  return NULL;
}

static int pend_grow(awf_logagg *a) {
  size_t cap = a->pend_cap ? a->pend_cap * 2 : 256;
  struct pending *np = calloc(cap, sizeof(*np));
  if (!np)
    return -ENOMEM;
  for (size_t i = 0; i < a->pend_cap; i++) {
    if (!a->pend[i].used)
      continue;
    struct pending *o = &a->pend[i];
    size_t j = pend_hash(o->run, o->conn, o->req) & (cap - 1);
    while (np[j].used)
      j = (j + 1) & (cap - 1);
    np[j] = *o;
  }
  free(a->pend);
  a->pend = np;
  a->pend_cap = cap;
  return 0;
}

/* Linear probing's deletion: pull later entries of the cluster back. */
static void pend_remove(awf_logagg *a, struct pending *p) {
  size_t mask = a->pend_cap - 1, i = (size_t)(p - a->pend), j = i;
  a->pend[i].used = false;
  for (;;) {
    j = (j + 1) & mask;
    if (!a->pend[j].used)
      break;
    size_t home = pend_hash(a->pend[j].run, a->pend[j].conn, a->pend[j].req) & mask;
    /* Move j back to i when its home is not within (i, j]. */
    if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
      a->pend[i] = a->pend[j];
      a->pend[j].used = false;
      i = j;
    }
  }
  a->npend--;
}

static void pend_add(awf_logagg *a, uint64_t run, const struct awf_logev *ev, uint32_t host,
                     const char *reason) {
  struct pending *p = pend_find(a, run, ev->conn, ev->req);
  if (p) { /* the same key again (a crafted log): the later decision */
    p->host = host, p->port = ev->port, p->deny = ev->deny, p->would = ev->would_deny;
    p->reason = reason;
    return;
  }
  if (a->npend >= AWF_LOGAGG_MAX_PENDING || host == UINT32_MAX ||
      ((a->npend + 1) * 2 > a->pend_cap && pend_grow(a) < 0)) {
    a->t.opens_untracked++;
    return;
  }
  size_t j = pend_hash(run, ev->conn, ev->req) & (a->pend_cap - 1);
  while (a->pend[j].used)
    j = (j + 1) & (a->pend_cap - 1);
  a->pend[j] = (struct pending){run,    ev->conn, ev->req,  host,          ev->port,
                                reason, true,     ev->deny, ev->would_deny};
  a->npend++;
}

/* ---- feeding ----------------------------------------------------------- */

static uint64_t add_sat(uint64_t a, int64_t b) {
  uint64_t r = a + (uint64_t)b;
  return r < a ? UINT64_MAX : r;
}

void awf_logagg_add(awf_logagg *a, const struct awf_logev *ev) {
  a->t.records++;
  if (!ev->event)
    return;
  if (strcmp(ev->event, "run") == 0) {
    a->t.runs++;
    return;
  }
  if (strcmp(ev->event, "config") == 0) /* awf-proxy reloaded its rules: no decision */
    return;
  if (strcmp(ev->event, "log_lost") == 0) { /* a gap in the log, not a decision */
    if (ev->lost > 0)
      a->t.lost = add_sat(a->t.lost, ev->lost);
    return;
  }
  uint64_t run = ev->run ? fnv(ev->run, strlen(ev->run), FNV0) : 0;
  char name[AWF_LOGAGG_NAME_MAX + 4];
  size_t n = dest_name(ev, name, sizeof(name));
  uint32_t idx;
  struct awf_loghost *x = host_of(a, name, n, &idx);
  const char *reason = intern(a, ev->reason);
  if (strcmp(ev->event, "open") == 0) {
    if (ev->conn)
      pend_add(a, run, ev, idx, reason);
    return;
  }
  if (ev->conn) {
    struct pending *p = pend_find(a, run, ev->conn, ev->req);
    if (p)
      pend_remove(a, p);
  }
  count(a, x, ev->port, ev->deny, ev->would_deny, reason, intern(a, ev->event));
  if (ev->bytes_up > 0) {
    x->bytes_up = add_sat(x->bytes_up, ev->bytes_up);
    a->t.bytes_up = add_sat(a->t.bytes_up, ev->bytes_up);
  }
  if (ev->bytes_down > 0) {
    x->bytes_down = add_sat(x->bytes_down, ev->bytes_down);
    a->t.bytes_down = add_sat(a->t.bytes_down, ev->bytes_down);
  }
  if (ev->duration_ms >= 0) {
    a->hist[bucket_of((uint64_t)ev->duration_ms)]++;
    a->t.durations++;
  }
}

void awf_logagg_finish(awf_logagg *a) {
  for (size_t i = 0; i < a->pend_cap; i++) {
    struct pending *p = &a->pend[i];
    if (!p->used)
      continue;
    count(a, &a->hosts[p->host], p->port, p->deny, p->would, p->reason, intern(a, "open"));
    a->t.open_only++;
    p->used = false;
  }
  a->npend = 0;
}

/* ---- results ------------------------------------------------------------- */

static int summary_order(const void *pa, const void *pb) {
  const struct awf_loghost *x = *(const struct awf_loghost *const *)pa;
  const struct awf_loghost *y = *(const struct awf_loghost *const *)pb;
  if (x->others != y->others)
    return x->others ? 1 : -1;
  bool dx = x->denied > 0, dy = y->denied > 0;
  if (dx != dy)
    return dx ? -1 : 1;
  uint64_t vx = x->bytes_up + x->bytes_down, vy = y->bytes_up + y->bytes_down;
  if (vx != vy)
    return vx > vy ? -1 : 1;
  if (x->events != y->events)
    return x->events > y->events ? -1 : 1;
  size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(x->name, y->name, n);
  return c ? c : (x->name_len < y->name_len ? -1 : x->name_len > y->name_len);
}

static int events_order(const void *pa, const void *pb) {
  const struct awf_loghost *x = *(const struct awf_loghost *const *)pa;
  const struct awf_loghost *y = *(const struct awf_loghost *const *)pb;
  if (x->events != y->events)
    return x->events > y->events ? -1 : 1;
  return summary_order(pa, pb);
}

static size_t sorted_hosts(awf_logagg *a, int (*cmp)(const void *, const void *),
                           const struct awf_loghost *const **out) {
  free(a->sorted);
  a->sorted = malloc((a->nhosts + 1) * sizeof(*a->sorted));
  *out = NULL;
  if (!a->sorted)
    return 0;
  size_t n = 0;
  for (size_t i = 0; i < a->nhosts; i++)
    a->sorted[n++] = &a->hosts[i];
  if (a->others.events)
    a->sorted[n++] = &a->others;
  qsort(a->sorted, n, sizeof(*a->sorted), cmp);
  *out = a->sorted;
  return n;
}

size_t awf_logagg_hosts(awf_logagg *a, const struct awf_loghost *const **out) {
  return sorted_hosts(a, summary_order, out);
}

size_t awf_logagg_top_hosts(awf_logagg *a, const struct awf_loghost *const **out) {
  return sorted_hosts(a, events_order, out);
}

static int reason_order(const void *pa, const void *pb) {
  const struct awf_logreason *x = pa, *y = pb;
  if (x->count != y->count)
    return x->count > y->count ? -1 : 1;
  return strcmp(x->name, y->name);
}

size_t awf_logagg_reasons(awf_logagg *a, const struct awf_logreason **out) {
  size_t n = a->nreasons + (a->reasons[MAX_REASONS].count > 0);
  free(a->rsorted);
  a->rsorted = malloc((n + 1) * sizeof(*a->rsorted));
  *out = a->rsorted;
  if (!a->rsorted)
    return 0;
  memcpy(a->rsorted, a->reasons, a->nreasons * sizeof(*a->rsorted));
  if (n > a->nreasons)
    a->rsorted[a->nreasons] = a->reasons[MAX_REASONS];
  qsort(a->rsorted, n, sizeof(*a->rsorted), reason_order);
  return n;
}

int64_t awf_logagg_percentile(const awf_logagg *a, double p) {
  if (!a->t.durations || !(p > 0) || p > 100)
    return -1;
  /* The smallest value with at least p % of the records at or below it. */
  double want = p / 100.0 * (double)a->t.durations;
  uint64_t rank = (uint64_t)want;
  if ((double)rank < want)
    rank++;
  if (rank == 0)
    rank = 1;
  uint64_t seen = 0;
  for (unsigned b = 0; b < NBUCKETS; b++) {
    seen += a->hist[b];
    if (seen >= rank) {
      uint64_t top = bucket_top(b);
      return top > INT64_MAX ? INT64_MAX : (int64_t)top;
    }
  }
  return -1;
}

/* ---- the --allow-domains suggestion ------------------------------------- */

/* A plain host name or IP address: letters, digits, '-', '.', '_', ':'
 * (IPv6), nothing a shell or a Markdown code block could read otherwise. */
static bool plain_name(const char *s, size_t n) {
  if (n == 0 || n > 253)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '.' || c == '_' || c == ':'))
      return false;
  }
  return s[0] != '-' && s[0] != '.';
}

size_t awf_logagg_allow_domains(awf_logagg *a, char *out, size_t outsz) {
  const struct awf_loghost *const *hosts;
  size_t n = awf_logagg_hosts(a, &hosts), len = 0;
  if (outsz)
    out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    const struct awf_loghost *x = hosts[i];
    const char *r = x->first_reason;
    if (x->others || !r || !plain_name(x->name, x->name_len))
      continue;
    const char *scheme = "";
    if (strcmp(r, "scheme_not_allowed") == 0)
      scheme = x->first_event && strcmp(x->first_event, "http") == 0 ? "http://" : "https://";
    else if (strcmp(r, "not_allowed") != 0 && strcmp(r, "ip_literal") != 0)
      continue;
    char name[AWF_LOGAGG_NAME_MAX + 1];
    memcpy(name, x->name, x->name_len);
    name[x->name_len] = '\0';
    if (awf_denials_looks_like_data(name))
      continue;
    int w = snprintf(out + len, outsz - len, "%s%s%s", len ? "," : "", scheme, name);
    if (w < 0 || (size_t)w >= outsz - len) {
      out[len] = '\0';
      break;
    }
    len += (size_t)w;
  }
  return len;
}
