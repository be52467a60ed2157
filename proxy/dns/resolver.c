/* resolver.c: c-ares on a libuv loop, with a TTL cache and coalescing.
 *
 * c-ares tells us which sockets it wants watched through its sock-state
 * callback; each socket gets its own uv_poll_t. A single uv_timer, re-armed
 * from ares_timeout() after every call into c-ares, drives its retries.
 *
 * Concurrent lookups of one name share a single c-ares query (a "pending"
 * entry with a list of waiters). c-ares may finish a query inside
 * ares_getaddrinfo() itself (immediate failure, IP literals, .onion), and a
 * user callback must never run inside c-ares either (it might close the
 * resolver, destroying the channel under ares_process_fd). So completed
 * queries only go on a "done" list, and a uv_idle handle delivers them on the
 * next loop turn, outside any c-ares call.
 *
 * Only successful answers are cached: failures are not, so a name that comes
 * back after an outage works at once; a burst of lookups for a failing name
 * still costs one query thanks to coalescing.
 *
 * c-ares 1.18 keeps a process-wide init count (ares_library_init/cleanup);
 * each resolver takes one reference in awf_resolver_new and drops it when
 * closed. That counter is c-ares's, not thread-safe: this file's one piece
 * of global state is the mutex it is taken and dropped under, so resolvers
 * of engines in several threads (awf-proxy --workers) may come and go in
 * any of them. */
#include "resolver.h"
#include "list.h"
#include "metrics.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERVERS 16
#define MAX_SERVER_ENTRY 64 /* "[" 45-char v6 "]:65535" fits */
#define MAX_NAME_LEN 255    /* a DNS name in text, trailing dot allowed */
#define MAX_PENDING 1024    /* distinct names in flight at once */
#define PENDING_BUCKETS 256
#define MAX_CACHE_BUCKETS (1u << 16)
#define MAX_CACHE_ENTRIES ((size_t)1 << 20)

static pthread_mutex_t library_mu = PTHREAD_MUTEX_INITIALIZER;

/* Take (ares_library_init) or drop (ares_library_cleanup) a reference to
 * c-ares's process-wide state, under library_mu. */
static int library_ref(bool take) {
  int st = ARES_SUCCESS;
  pthread_mutex_lock(&library_mu);
  if (take)
    st = ares_library_init(ARES_LIB_INIT_ALL);
  else
    ares_library_cleanup();
  pthread_mutex_unlock(&library_mu);
  return st;
}

/* ---- a tiny chained hash table keyed by name ---------------------------- */

struct hnode {
  struct hnode *next;
  uint64_t hash;
  const char *key;
};

struct htab {
  struct hnode **b;
  size_t mask;
  size_t n;
};

static int htab_init(struct htab *t, size_t buckets) {
  t->b = calloc(buckets, sizeof(*t->b));
  t->mask = buckets - 1;
  t->n = 0;
  return t->b ? 0 : -ENOMEM;
}

/* FNV-1a, seeded per resolver so that colliding names can't be precomputed. */
static uint64_t name_hash(uint64_t seed, const char *s) {
  uint64_t h = 14695981039346656037ull ^ seed;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

/* The link that points at the node with this key, or the NULL at the end of
 * its chain. */
static struct hnode **htab_slot(struct htab *t, const char *key, uint64_t h) {
  struct hnode **pp = &t->b[h & t->mask];
  while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
    pp = &(*pp)->next;
  return pp;
}

static void htab_insert(struct htab *t, struct hnode *n) {
  struct hnode **pp = &t->b[n->hash & t->mask];
  n->next = *pp;
  *pp = n;
  t->n++;
}

static void htab_remove(struct htab *t, struct hnode *n) {
  struct hnode **pp = &t->b[n->hash & t->mask];
  while (*pp != n)
    pp = &(*pp)->next;
  *pp = n->next;
  t->n--;
}

/* ---- types -------------------------------------------------------------- */

struct packed_addr {
  uint8_t v6;
  uint8_t bytes[16];
};

struct cache_entry {
  struct hnode hn;
  struct cache_entry *older, *newer; /* insertion order, for eviction */
  uint64_t expires_ms;               /* uv_now() scale */
  size_t n;
  struct packed_addr addr[AWF_RESOLVE_MAX_ADDRS];
  char name[];
};

struct pending {
  struct hnode hn;
  awf_resolver *r;
  struct pending *next_done;
  struct awf_list waiters; /* awf_resolve_req, in arrival order */
  int status;
  struct awf_addr_list result;
  uint64_t start_ns; /* uv_hrtime() when the query left */
  char name[];
};

struct awf_resolve_req {
  struct pending *p;
  struct awf_list link; /* in p->waiters */
  awf_resolve_cb cb;
  void *arg;
};

struct sock_poll {
  uv_poll_t h;
  awf_resolver *r;
  ares_socket_t fd;
  struct sock_poll *next;
};

struct awf_resolver {
  uv_loop_t *loop;
  ares_channel channel;
  uv_timer_t timer;
  uv_idle_t idle;
  struct sock_poll *polls;
  struct pending *done_head, *done_tail;
  struct htab pending;
  struct htab cache;
  struct cache_entry *oldest, *newest;
  uint64_t cache_min_expiry; /* lower bound on any entry's expiry */
  uint64_t seed;
  unsigned max_ttl_s, min_ttl_s;
  size_t max_cache_entries;
  unsigned handles_open;
  bool closing;
  awf_trace_fn trace;
  void *trace_arg;
  struct awf_metrics *metrics; /* NULL: not counted */
};

/* ---- server list validation --------------------------------------------- */

static int parse_port(const char *s, size_t len, int *port) {
  unsigned v = 0;
  if (len == 0 || len > 5)
    return -EINVAL;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -EINVAL;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v == 0 || v > 65535)
    return -EINVAL;
  *port = (int)v;
  return 0;
}

/* inet_pton over a length-bounded, not NUL-terminated slice. */
static bool parse_ip(int af, const char *s, size_t len, void *dst) {
  char buf[MAX_SERVER_ENTRY + 1];
  if (len == 0 || len > MAX_SERVER_ENTRY)
    return false;
  memcpy(buf, s, len);
  buf[len] = '\0';
  return inet_pton(af, buf, dst) == 1;
}

enum server_err { SRV_OK, SRV_NOT_IP, SRV_BAD_PORT };

/* One entry: "v4", "v4:port", "v6", "[v6]", "[v6]:port". Port 0 in the node
 * means c-ares's default (53). */
static enum server_err parse_server(const char *s, size_t len, struct ares_addr_port_node *n) {
  memset(n, 0, sizeof(*n));
  if (s[0] == '[') {
    const char *rb = memchr(s, ']', len);
    if (!rb)
      return SRV_NOT_IP;
    size_t iplen = (size_t)(rb - s) - 1;
    size_t rest = len - (size_t)(rb - s) - 1;
    if (!parse_ip(AF_INET6, s + 1, iplen, &n->addr.addr6))
      return SRV_NOT_IP;
    n->family = AF_INET6;
    if (rest == 0)
      return SRV_OK;
    if (rb[1] != ':' || parse_port(rb + 2, rest - 1, &n->udp_port) < 0)
      return SRV_BAD_PORT;
  } else if (parse_ip(AF_INET, s, len, &n->addr.addr4)) {
    n->family = AF_INET;
  } else if (parse_ip(AF_INET6, s, len, &n->addr.addr6)) {
    n->family = AF_INET6;
  } else {
    const char *colon = memchr(s, ':', len);
    if (!colon || memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
      return SRV_NOT_IP;
    if (!parse_ip(AF_INET, s, (size_t)(colon - s), &n->addr.addr4))
      return SRV_NOT_IP;
    n->family = AF_INET;
    if (parse_port(colon + 1, len - (size_t)(colon - s) - 1, &n->udp_port) < 0)
      return SRV_BAD_PORT;
  }
  n->tcp_port = n->udp_port;
  return SRV_OK;
}

static int server_err(char *err, size_t errlen, const char *s, size_t len, const char *what) {
  if (err && errlen)
    snprintf(err, errlen, "--dns-servers: '%.*s' %s", (int)len, s, what);
  return -EINVAL;
}

/* Split the comma-separated list into nodes[], linked in order. Returns the
 * count (>= 1) or -EINVAL with a message naming the bad entry. */
static int parse_servers(const char *csv, struct ares_addr_port_node *nodes, char *err,
                         size_t errlen) {
  int n = 0;
  const char *p = csv;
  for (;;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *s = p;
    while (len && (*s == ' ' || *s == '\t'))
      s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
      len--;
    if (len == 0) {
      if (err && errlen)
        snprintf(err, errlen, "--dns-servers: empty entry in the list");
      return -EINVAL;
    }
    if (len > MAX_SERVER_ENTRY)
      return server_err(err, errlen, s, MAX_SERVER_ENTRY, "(cut) is not an IP address");
    if (n == MAX_SERVERS)
      return server_err(err, errlen, s, len, "is past the limit of 16 servers");
    switch (parse_server(s, len, &nodes[n])) {
    case SRV_NOT_IP: return server_err(err, errlen, s, len, "is not an IP address");
    case SRV_BAD_PORT: return server_err(err, errlen, s, len, "has an invalid port");
    case SRV_OK: break;
    }
    if (n > 0)
      nodes[n - 1].next = &nodes[n];
    n++;
    if (!end)
      return n;
    p = end + 1;
  }
}

/* ---- c-ares <-> libuv plumbing ------------------------------------------ */

static void on_handle_closed(uv_handle_t *h);
static void on_poll_closed(uv_handle_t *h);
static void on_idle(uv_idle_t *h);

/* After every call into c-ares its next deadline may have moved. */
static void rearm_timer(awf_resolver *r);

static void on_timer(uv_timer_t *t) {
  awf_resolver *r = t->data;
  ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  rearm_timer(r);
}

static void rearm_timer(awf_resolver *r) {
  struct timeval tv;
  if (!ares_timeout(r->channel, NULL, &tv)) {
    uv_timer_stop(&r->timer);
    return;
  }
  uint64_t ms = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
  /* c-ares rounds its deadline to whole ms; a 0 would spin until it passes. */
  uv_timer_start(&r->timer, on_timer, ms ? ms : 1, 0);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  struct sock_poll *sp = h->data;
  awf_resolver *r = sp->r;
  ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
  if (status < 0) {
    /* Let c-ares read and write so it sees the socket error itself. */
    rfd = wfd = sp->fd;
  } else {
    if (events & UV_READABLE)
      rfd = sp->fd;
    if (events & UV_WRITABLE)
      wfd = sp->fd;
  }
  ares_process_fd(r->channel, rfd, wfd);
  rearm_timer(r);
}

static struct sock_poll **find_poll(awf_resolver *r, ares_socket_t fd) {
  struct sock_poll **pp = &r->polls;
  while (*pp && (*pp)->fd != fd)
    pp = &(*pp)->next;
  return pp;
}

static void close_poll(struct sock_poll *sp) {
  uv_poll_stop(&sp->h);
  uv_close((uv_handle_t *)&sp->h, on_poll_closed);
}

/* c-ares calls this with (0, 0) right before it closes fd: the poll handle
 * must be stopped and closed now, while fd still names the same socket,
 * or libuv would keep watching a recycled descriptor number. If a poll
 * handle can't be set up, the query on that socket simply times out. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable) {
  awf_resolver *r = data;
  struct sock_poll **pp = find_poll(r, fd);
  struct sock_poll *sp = *pp;
  if (!readable && !writable) {
    if (sp) {
      *pp = sp->next;
      close_poll(sp);
    }
    return;
  }
  if (!sp) {
    sp = calloc(1, sizeof(*sp));
    if (!sp)
      return;
    if (uv_poll_init_socket(r->loop, &sp->h, fd) != 0) {
      free(sp);
      return;
    }
    sp->h.data = sp;
    sp->r = r;
    sp->fd = fd;
    sp->next = r->polls;
    r->polls = sp;
    r->handles_open++;
  }
  uv_poll_start(&sp->h, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

/* ---- cache -------------------------------------------------------------- */

static bool cache_enabled(const awf_resolver *r) {
  return r->max_ttl_s > 0 && r->max_cache_entries > 0;
}

static void cache_unlink(awf_resolver *r, struct cache_entry *e) {
  htab_remove(&r->cache, &e->hn);
  if (e->older)
    e->older->newer = e->newer;
  else
    r->oldest = e->newer;
  if (e->newer)
    e->newer->older = e->older;
  else
    r->newest = e->older;
  free(e);
}

static void cache_sweep_expired(awf_resolver *r, uint64_t now) {
  uint64_t min = UINT64_MAX;
  struct cache_entry *e = r->oldest;
  while (e) {
    struct cache_entry *next = e->newer;
    if (e->expires_ms <= now)
      cache_unlink(r, e);
    else if (e->expires_ms < min)
      min = e->expires_ms;
    e = next;
  }
  r->cache_min_expiry = min;
}

/* Room for one more: expired entries go first; if none, the oldest. The
 * sweep is skipped while no entry can have expired yet. */
static void cache_make_room(awf_resolver *r, uint64_t now) {
  if (r->cache.n < r->max_cache_entries)
    return;
  if (r->cache_min_expiry <= now)
    cache_sweep_expired(r, now);
  while (r->cache.n >= r->max_cache_entries)
    cache_unlink(r, r->oldest);
}

static void cache_put(awf_resolver *r, const char *name, const struct awf_addr_list *l) {
  if (!cache_enabled(r) || l->ttl_s == 0 || l->n == 0)
    return;
  uint64_t now = uv_now(r->loop);
  uint64_t h = name_hash(r->seed, name);
  struct hnode **slot = htab_slot(&r->cache, name, h);
  if (*slot)
    cache_unlink(r, (struct cache_entry *)*slot);
  cache_make_room(r, now);

  size_t nlen = strlen(name);
  struct cache_entry *e = malloc(sizeof(*e) + nlen + 1);
  if (!e)
    return; /* not caching is always correct */
  memcpy(e->name, name, nlen + 1);
  e->hn.key = e->name;
  e->hn.hash = h;
  e->expires_ms = now + (uint64_t)l->ttl_s * 1000;
  e->n = l->n;
  for (size_t i = 0; i < l->n; i++) {
    const struct sockaddr_storage *ss = &l->addr[i];
    memset(&e->addr[i], 0, sizeof(e->addr[i]));
    if (ss->ss_family == AF_INET6) {
      e->addr[i].v6 = 1;
      memcpy(e->addr[i].bytes, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    } else {
      memcpy(e->addr[i].bytes, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    }
  }
  htab_insert(&r->cache, &e->hn);
  e->newer = NULL;
  e->older = r->newest;
  if (r->newest)
    r->newest->newer = e;
  else
    r->oldest = e;
  r->newest = e;
  if (e->expires_ms < r->cache_min_expiry)
    r->cache_min_expiry = e->expires_ms;
}

static void unpack_addr(const struct packed_addr *a, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  if (a->v6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    memcpy(&s6->sin6_addr, a->bytes, 16);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    memcpy(&s4->sin_addr, a->bytes, 4);
  }
}

/* 1 and *out filled on a live entry; an expired one is dropped. */
static int cache_get(awf_resolver *r, const char *name, uint64_t h, struct awf_addr_list *out) {
  struct hnode **slot = htab_slot(&r->cache, name, h);
  if (!*slot)
    return 0;
  struct cache_entry *e = (struct cache_entry *)*slot;
  uint64_t now = uv_now(r->loop);
  if (e->expires_ms <= now) {
    cache_unlink(r, e);
    return 0;
  }
  out->n = e->n;
  out->ttl_s = (uint32_t)((e->expires_ms - now + 999) / 1000); /* what is left */
  for (size_t i = 0; i < e->n; i++)
    unpack_addr(&e->addr[i], &out->addr[i]);
  return 1;
}

static void cache_free(awf_resolver *r) {
  while (r->oldest)
    cache_unlink(r, r->oldest);
}

/* ---- answers ------------------------------------------------------------ */

static int map_status(int st) {
  switch (st) {
  case ARES_SUCCESS: return 0;
  case ARES_ENOTFOUND:
  case ARES_ENODATA: return -ENOENT;
  case ARES_ETIMEOUT: return -ETIMEDOUT;
  case ARES_ECONNREFUSED: return -ECONNREFUSED;
  case ARES_ECANCELLED:
  case ARES_EDESTRUCTION: return -ECANCELED;
  default: return -EIO;
  }
}

static bool addr_listed(const struct awf_addr_list *l, const struct sockaddr *sa, size_t alen) {
  for (size_t i = 0; i < l->n; i++)
    if (l->addr[i].ss_family == sa->sa_family && memcmp(&l->addr[i], sa, alen) == 0)
      return true;
  return false;
}

/* Append up to `quota` addresses of family af, deduplicated, ports zeroed. */
static void take_family(const struct ares_addrinfo_node *n, int af, size_t quota,
                        struct awf_addr_list *l) {
  size_t alen = af == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  size_t taken = 0;
  for (; n && taken < quota && l->n < AWF_RESOLVE_MAX_ADDRS; n = n->ai_next) {
    if (n->ai_family != af || !n->ai_addr || (size_t)n->ai_addrlen < alen)
      continue;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (af == AF_INET) {
      struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
      s4->sin_family = AF_INET;
      s4->sin_addr = ((const struct sockaddr_in *)n->ai_addr)->sin_addr;
    } else {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
      s6->sin6_family = AF_INET6;
      s6->sin6_addr = ((const struct sockaddr_in6 *)n->ai_addr)->sin6_addr;
    }
    if (addr_listed(l, (const struct sockaddr *)&ss, alen))
      continue;
    l->addr[l->n++] = ss;
    taken++;
  }
}

static size_t count_family(const struct ares_addrinfo_node *n, int af) {
  size_t c = 0;
  for (; n; n = n->ai_next)
    c += n->ai_family == af;
  return c;
}

/* IPv4 addresses first, then IPv6, each in answer order. When there are more
 * than fit, each family keeps at least half the slots (if it has that many),
 * so a long A list can't push every AAAA record out. */
static void fill_addrs(const struct ares_addrinfo *ai, struct awf_addr_list *l) {
  size_t n6 = count_family(ai->nodes, AF_INET6);
  size_t keep6 = n6 < AWF_RESOLVE_MAX_ADDRS / 2 ? n6 : AWF_RESOLVE_MAX_ADDRS / 2;
  l->n = 0;
  take_family(ai->nodes, AF_INET, AWF_RESOLVE_MAX_ADDRS - keep6, l);
  take_family(ai->nodes, AF_INET6, AWF_RESOLVE_MAX_ADDRS, l);
}

/* The shortest TTL of the records used, CNAMEs included (the alias can
 * change as soon as it expires), floored by min_ttl_s then capped by
 * max_ttl_s, so the cap wins if the two conflict. */
static uint32_t answer_ttl(const awf_resolver *r, const struct ares_addrinfo *ai) {
  long min = LONG_MAX;
  for (const struct ares_addrinfo_node *n = ai->nodes; n; n = n->ai_next)
    if (n->ai_ttl < min)
      min = n->ai_ttl;
  for (const struct ares_addrinfo_cname *c = ai->cnames; c; c = c->next)
    if (c->ttl < min)
      min = c->ttl;
  if (min < 0)
    min = 0;
  uint64_t ttl = (uint64_t)min;
  if (ttl < r->min_ttl_s)
    ttl = r->min_ttl_s;
  if (ttl > r->max_ttl_s)
    ttl = r->max_ttl_s;
  return (uint32_t)ttl;
}

/* c-ares is done with the query; may run inside ares_getaddrinfo(),
 * ares_process_fd() or ares_destroy(). Only records the outcome. */
static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *ai) {
  struct pending *p = arg;
  awf_resolver *r = p->r;
  (void)timeouts;
  p->result.n = 0;
  p->result.ttl_s = 0;
  if (!r->closing && r->metrics)
    awf_metrics_observe(&r->metrics->dns, (uv_hrtime() - p->start_ns) / 1000);
  if (r->closing) {
    p->status = -ECANCELED;
  } else if (status == ARES_SUCCESS && ai) {
    fill_addrs(ai, &p->result);
    p->result.ttl_s = answer_ttl(r, ai);
    p->status = p->result.n ? 0 : -ENOENT;
    if (p->status == 0)
      cache_put(r, p->name, &p->result);
  } else {
    p->status = status == ARES_SUCCESS ? -ENOENT : map_status(status);
  }
  if (ai)
    ares_freeaddrinfo(ai);
  p->next_done = NULL;
  if (r->done_tail)
    r->done_tail->next_done = p;
  else
    r->done_head = p;
  r->done_tail = p;
  if (!r->closing)
    uv_idle_start(&r->idle, on_idle);
}

/* ---- diagnostics --------------------------------------------------------- */

static const char *failure_text(int status) {
  switch (status) {
  case -ENOENT: return "no such name, or no address";
  case -ETIMEDOUT: return "timed out";
  case -ECONNREFUSED: return "refused by the servers";
  default: return strerror(-status);
  }
}

static void trace_result(const awf_resolver *r, const char *name, int status,
                         const struct awf_addr_list *l, bool cached) {
  char line[1536];
  size_t n = (size_t)snprintf(line, sizeof(line), "resolve %.255s: ", name);
  if (status < 0) {
    snprintf(line + n, sizeof(line) - n, "failed (%s)", failure_text(status));
  } else {
    for (size_t i = 0; i < l->n && n < sizeof(line); i++) {
      const struct sockaddr_storage *ss = &l->addr[i];
      char text[INET6_ADDRSTRLEN] = "?";
      inet_ntop(ss->ss_family,
                ss->ss_family == AF_INET
                    ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                    : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr,
                text, sizeof(text));
      n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s", i ? ", " : "", text);
    }
    if (n < sizeof(line))
      snprintf(line + n, sizeof(line) - n, " (ttl %us%s)", (unsigned)l->ttl_s,
               cached ? ", cached" : "");
  }
  r->trace(r->trace_arg, line);
}

int awf_resolver_servers(const awf_resolver *r, char *buf, size_t len) {
  struct ares_addr_port_node *list = NULL;
  if (len == 0)
    return -EINVAL;
  buf[0] = '\0';
  int st = ares_get_servers_ports(r->channel, &list);
  if (st != ARES_SUCCESS)
    return st == ARES_ENOMEM ? -ENOMEM : -EIO;
  size_t used = 0;
  for (const struct ares_addr_port_node *s = list; s && used < len; s = s->next) {
    char text[INET6_ADDRSTRLEN] = "?";
    bool v6 = s->family == AF_INET6;
    inet_ntop(s->family, v6 ? (const void *)&s->addr.addr6 : (const void *)&s->addr.addr4, text,
              sizeof(text));
    int port = s->udp_port ? s->udp_port : 53;
    int k = port == 53 ? snprintf(buf + used, len - used, "%s%s", used ? "," : "", text)
                       : snprintf(buf + used, len - used, v6 ? "%s[%s]:%d" : "%s%s:%d",
                                  used ? "," : "", text, port);
    used += k > 0 ? (size_t)k : 0;
  }
  ares_free_data(list);
  return 0;
}

/* ---- waiters ------------------------------------------------------------ */

static void waiter_unlink(awf_resolve_req *q) { awf_list_remove(&q->link); }

/* Hand p's outcome to each waiter. Each is unlinked and freed before its
 * callback runs, so a callback may cancel the others or close the resolver;
 * once closing, the rest get -ECANCELED. */
static void deliver(awf_resolver *r, struct pending *p) {
  static const struct awf_addr_list empty;
  awf_resolve_req *q;
  while ((q = awf_list_first(&p->waiters, awf_resolve_req, link)) != NULL) {
    awf_resolve_cb cb = q->cb;
    void *arg = q->arg;
    waiter_unlink(q);
    free(q);
    if (r->closing || p->status < 0)
      cb(r->closing ? -ECANCELED : p->status, &empty, arg);
    else
      cb(0, &p->result, arg);
  }
}

static void on_idle(uv_idle_t *h) {
  awf_resolver *r = h->data;
  struct pending *p;
  while (!r->closing && (p = r->done_head) != NULL) {
    r->done_head = p->next_done;
    if (!r->done_head)
      r->done_tail = NULL;
    /* Out of the table first: a callback asking for the same name again
     * then starts afresh (or hits the cache) instead of joining a query
     * that has already finished. */
    htab_remove(&r->pending, &p->hn);
    if (r->trace)
      trace_result(r, p->name, p->status, &p->result, false);
    deliver(r, p);
    free(p);
  }
  if (!r->closing && !r->done_head)
    uv_idle_stop(&r->idle);
}

/* ---- public API --------------------------------------------------------- */

void awf_resolver_options_default(struct awf_resolver_options *o) {
  memset(o, 0, sizeof(*o));
  o->servers = NULL;
  o->max_ttl_s = 300;
  o->min_ttl_s = 5;
  o->timeout_ms = 2000;
  o->tries = 2;
  o->max_cache_entries = 4096;
}

static size_t pow2_at_least(size_t n, size_t cap) {
  size_t b = 16;
  while (b < n && b < cap)
    b <<= 1;
  return b;
}

static int ares_err(int st, char *err, size_t errlen) {
  if (err && errlen)
    snprintf(err, errlen, "c-ares: %s", ares_strerror(st));
  return st == ARES_ENOMEM ? -ENOMEM : -EIO;
}

static int init_channel(awf_resolver *r, const struct awf_resolver_options *o,
                        struct ares_addr_port_node *servers, int nservers, char *err,
                        size_t errlen) {
  struct ares_options ao;
  char lookups[] = "b";
  /* The name judged by the rules is the name resolved, always: no search
   * list (resolv.conf's search/domain, LOCALDOMAIN, the host name's domain)
   * is ever appended, so an admitted "nosuch.allowed.test" can't become
   * "nosuch.allowed.test.corp.test" (with Kubernetes' ndots:5 that would be
   * the first try); ndots (resolv.conf, RES_OPTIONS) is pinned, though with
   * no domains it has nothing left to choose; and HOSTALIASES can't swap a
   * single-label name for another. Options given here win over resolv.conf
   * and the environment in c-ares. */
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
             ARES_OPT_DOMAINS | ARES_OPT_NDOTS;
  memset(&ao, 0, sizeof(ao));
  ao.sock_state_cb = on_sock_state;
  ao.sock_state_cb_data = r;
  ao.timeout = (int)o->timeout_ms;
  ao.tries = (int)o->tries;
  ao.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
  ao.domains = NULL;
  ao.ndomains = 0;
  ao.ndots = 1;
  if (nservers > 0) {
    /* Explicit servers: DNS only, /etc/hosts is not read. */
    ao.lookups = lookups;
    mask |= ARES_OPT_LOOKUPS;
  }
  int st = library_ref(true);
  if (st != ARES_SUCCESS)
    return ares_err(st, err, errlen);
  st = ares_init_options(&r->channel, &ao, mask);
  if (st == ARES_SUCCESS && nservers > 0) {
    st = ares_set_servers_ports(r->channel, servers);
    if (st != ARES_SUCCESS)
      ares_destroy(r->channel);
  }
  if (st != ARES_SUCCESS) {
    library_ref(false);
    return ares_err(st, err, errlen);
  }
  return 0;
}

int awf_resolver_new(uv_loop_t *loop, const struct awf_resolver_options *o, awf_resolver **out,
                     char *err, size_t errlen) {
  struct awf_resolver_options def;
  struct ares_addr_port_node servers[MAX_SERVERS];
  int nservers = 0;
  if (err && errlen)
    err[0] = '\0';
  if (!loop || !out)
    return -EINVAL;
  if (!o) {
    awf_resolver_options_default(&def);
    o = &def;
  }
  if (o->timeout_ms == 0 || o->timeout_ms > INT_MAX || o->tries == 0 || o->tries > 100) {
    if (err && errlen)
      snprintf(err, errlen, "resolver: timeout and tries must be positive");
    return -EINVAL;
  }
  if (o->servers && o->servers[0]) {
    nservers = parse_servers(o->servers, servers, err, errlen);
    if (nservers < 0)
      return nservers;
  }

  awf_resolver *r = calloc(1, sizeof(*r));
  if (!r)
    return -ENOMEM;
  r->loop = loop;
  r->max_ttl_s = o->max_ttl_s;
  r->min_ttl_s = o->min_ttl_s;
  r->max_cache_entries = o->max_cache_entries < MAX_CACHE_ENTRIES ? o->max_cache_entries
                                                                  : MAX_CACHE_ENTRIES;
  r->cache_min_expiry = UINT64_MAX;
  r->trace = o->trace;
  r->trace_arg = o->trace_arg;
  r->seed = uv_hrtime() ^ (uint64_t)(uintptr_t)r;
  int rc = htab_init(&r->pending, PENDING_BUCKETS);
  if (rc == 0)
    rc = htab_init(&r->cache, pow2_at_least(r->max_cache_entries, MAX_CACHE_BUCKETS));
  if (rc == 0)
    rc = init_channel(r, o, servers, nservers, err, errlen);
  if (rc < 0) {
    free(r->pending.b);
    free(r->cache.b);
    free(r);
    return rc;
  }
  /* Last, as these can't fail and can't be undone without a loop turn. */
  uv_timer_init(loop, &r->timer);
  uv_idle_init(loop, &r->idle);
  r->timer.data = r;
  r->idle.data = r;
  r->handles_open = 2;
  *out = r;
  return 0;
}

int awf_resolve(awf_resolver *r, const char *name, struct awf_addr_list *out, awf_resolve_cb cb,
                void *arg, awf_resolve_req **req) {
  if (!r || !name || !out || !cb || !req)
    return -EINVAL;
  if (r->closing)
    return -ECANCELED;
  size_t nlen = strnlen(name, MAX_NAME_LEN + 1);
  if (nlen == 0 || nlen > MAX_NAME_LEN)
    return -EINVAL;

  uint64_t h = name_hash(r->seed, name);
  if (cache_enabled(r) && cache_get(r, name, h, out)) {
    if (r->metrics)
      awf_metrics_add(&r->metrics->dns_cache_hits, 1);
    if (r->trace)
      trace_result(r, name, 0, out, true);
    return 1;
  }

  awf_resolve_req *q = calloc(1, sizeof(*q));
  if (!q)
    return -ENOMEM;
  q->cb = cb;
  q->arg = arg;

  struct hnode **slot = htab_slot(&r->pending, name, h);
  struct pending *p = (struct pending *)*slot;
  bool fresh = p == NULL;
  if (fresh) {
    if (r->pending.n >= MAX_PENDING) {
      free(q);
      return -EAGAIN;
    }
    p = calloc(1, sizeof(*p) + nlen + 1);
    if (!p) {
      free(q);
      return -ENOMEM;
    }
    awf_list_init(&p->waiters);
    memcpy(p->name, name, nlen + 1);
    p->hn.key = p->name;
    p->hn.hash = h;
    p->r = r;
    htab_insert(&r->pending, &p->hn);
  }
  q->p = p;
  awf_list_push_back(&p->waiters, &q->link);
  *req = q;
  if (r->metrics)
    awf_metrics_add(&r->metrics->dns_cache_misses, 1);

  if (fresh) {
    /* NOSORT: RFC 6724 sorting connect()s a UDP socket to every answer to
     * learn its source address; the dialer orders its attempts itself. */
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;
    p->start_ns = uv_hrtime();
    ares_getaddrinfo(r->channel, p->name, NULL, &hints, on_addrinfo, p);
    rearm_timer(r);
  }
  return 0;
}

void awf_resolve_cancel(awf_resolve_req *req) {
  if (!req)
    return;
  /* The query itself runs on (c-ares 1.18 can't cancel one lookup); its
   * answer still fills the cache, and the entry is freed on delivery. */
  waiter_unlink(req);
  free(req);
}

static void maybe_free(awf_resolver *r) {
  if (r->closing && r->handles_open == 0) {
    free(r->pending.b);
    free(r->cache.b);
    free(r);
  }
}

static void on_handle_closed(uv_handle_t *h) {
  awf_resolver *r = h->data;
  r->handles_open--;
  maybe_free(r);
}

static void on_poll_closed(uv_handle_t *h) {
  struct sock_poll *sp = h->data;
  awf_resolver *r = sp->r;
  free(sp);
  r->handles_open--;
  maybe_free(r);
}

/* Fail and free every pending entry still in the table. */
static void cancel_all_pending(awf_resolver *r) {
  for (size_t i = 0; i <= r->pending.mask; i++) {
    struct hnode *n;
    while ((n = r->pending.b[i]) != NULL) {
      struct pending *p = (struct pending *)n;
      htab_remove(&r->pending, n);
      deliver(r, p);
      free(p);
    }
  }
}

void awf_resolver_set_metrics(awf_resolver *r, struct awf_metrics *m) { r->metrics = m; }

void awf_resolver_close(awf_resolver *r) {
  if (!r || r->closing)
    return;
  r->closing = true;
  /* c-ares finishes every query here (ARES_EDESTRUCTION, so on_addrinfo
   * queues them) and reports each socket gone, closing its poll handle. */
  ares_destroy(r->channel);
  r->channel = NULL;
  library_ref(false);
  /* Every entry on the done list is also still in the table. */
  r->done_head = r->done_tail = NULL;
  cancel_all_pending(r);
  cache_free(r);
  while (r->polls) {
    struct sock_poll *sp = r->polls;
    r->polls = sp->next;
    close_poll(sp);
  }
  uv_close((uv_handle_t *)&r->timer, on_handle_closed);
  uv_close((uv_handle_t *)&r->idle, on_handle_closed);
}
