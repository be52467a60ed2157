/* test_resolver.c: the resolver against a tiny DNS server on 127.0.0.1 that
 * runs on the same libuv loop. Nothing here talks to the host's resolver:
 * every resolver gets explicit servers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resolver.h"

/* ---- the test DNS server ------------------------------------------------ */

enum mode { M_ANSWER, M_NXDOMAIN, M_DROP, M_REFUSED, M_SERVFAIL, M_BADRESP };

struct rec {
  const char *name;
  enum mode mode;
  uint32_t ttl_a, ttl_aaaa;
  const char *a[24];
  const char *aaaa[8];
  const char *cname; /* answer with this CNAME first, then the records */
  uint32_t ttl_cname;
};

static const struct rec recs[] = {
    {"dual.test", M_ANSWER, 60, 30, {"192.0.2.1", "192.0.2.2"}, {"2001:db8::1"}, NULL, 0},
    {"v4.test", M_ANSWER, 120, 0, {"192.0.2.10"}, {NULL}, NULL, 0},
    {"short.test", M_ANSWER, 1, 0, {"192.0.2.11"}, {NULL}, NULL, 0},
    {"zero.test", M_ANSWER, 0, 0, {"192.0.2.12"}, {NULL}, NULL, 0},
    {"long.test", M_ANSWER, 100000, 0, {"192.0.2.13"}, {NULL}, NULL, 0},
    {"e1.test", M_ANSWER, 60, 0, {"192.0.2.21"}, {NULL}, NULL, 0},
    {"e2.test", M_ANSWER, 60, 0, {"192.0.2.22"}, {NULL}, NULL, 0},
    {"e3.test", M_ANSWER, 60, 0, {"192.0.2.23"}, {NULL}, NULL, 0},
    {"alias.test", M_ANSWER, 100, 0, {"192.0.2.30"}, {NULL}, "target.test", 7},
    {"dup.test",
     M_ANSWER,
     60,
     60,
     {"192.0.2.40", "192.0.2.40"},
     {"2001:db8::40", "2001:db8::40"},
     NULL,
     0},
    {"many.test",
     M_ANSWER,
     60,
     60,
     {"10.0.0.1",  "10.0.0.2",  "10.0.0.3",  "10.0.0.4",  "10.0.0.5",  "10.0.0.6",  "10.0.0.7",
      "10.0.0.8",  "10.0.0.9",  "10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14",
      "10.0.0.15", "10.0.0.16", "10.0.0.17", "10.0.0.18", "10.0.0.19", "10.0.0.20"},
     {"2001:db8::a", "2001:db8::b", "2001:db8::c", "2001:db8::d"},
     NULL,
     0},
    {"noaddr.test", M_ANSWER, 0, 0, {NULL}, {NULL}, NULL, 0},
    {"drop.test", M_DROP, 0, 0, {NULL}, {NULL}, NULL, 0},
    {"refused.test", M_REFUSED, 0, 0, {NULL}, {NULL}, NULL, 0},
    {"servfail.test", M_SERVFAIL, 0, 0, {NULL}, {NULL}, NULL, 0},
    {"bad.test", M_BADRESP, 0, 0, {NULL}, {NULL}, NULL, 0},
};

#define QLOG_MAX 4096

struct qlog {
  char name[256];
  uint16_t type;
};

struct server {
  uv_udp_t udp;
  int port;
  bool drop_all;
  size_t nq;
  struct qlog *log;
  uint8_t rbuf[4096];
};

struct cur {
  const uint8_t *p;
  size_t len, off;
};

static int rd8(struct cur *c, uint8_t *v) {
  if (c->off + 1 > c->len)
    return -1;
  *v = c->p[c->off++];
  return 0;
}

static int rd16(struct cur *c, uint16_t *v) {
  uint8_t hi, lo;
  if (rd8(c, &hi) < 0 || rd8(c, &lo) < 0)
    return -1;
  *v = (uint16_t)(hi << 8 | lo);
  return 0;
}

/* A query's question name: uncompressed labels, lowercased, dotted. */
static int rd_name(struct cur *c, char *out, size_t cap) {
  size_t n = 0;
  for (;;) {
    uint8_t l;
    if (rd8(c, &l) < 0 || l > 63)
      return -1;
    if (l == 0)
      break;
    if (c->off + l > c->len || n + l + 2 > cap)
      return -1;
    if (n)
      out[n++] = '.';
    for (uint8_t i = 0; i < l; i++) {
      char ch = (char)c->p[c->off++];
      out[n++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
  }
  out[n] = '\0';
  return 0;
}

struct wbuf {
  uint8_t b[1024];
  size_t len;
  bool over;
};

static void w8(struct wbuf *w, uint8_t v) {
  if (w->len + 1 > sizeof(w->b)) {
    w->over = true;
    return;
  }
  w->b[w->len++] = v;
}

static void w16(struct wbuf *w, uint16_t v) {
  w8(w, (uint8_t)(v >> 8));
  w8(w, (uint8_t)v);
}

static void w32(struct wbuf *w, uint32_t v) {
  w16(w, (uint16_t)(v >> 16));
  w16(w, (uint16_t)v);
}

static void wbytes(struct wbuf *w, const void *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    w8(w, ((const uint8_t *)p)[i]);
}

static void wname(struct wbuf *w, const char *name) {
  while (*name) {
    const char *dot = strchr(name, '.');
    size_t l = dot ? (size_t)(dot - name) : strlen(name);
    w8(w, (uint8_t)l);
    wbytes(w, name, l);
    name += l + (dot ? 1 : 0);
  }
  w8(w, 0);
}

static const struct rec *find_rec(const char *name) {
  for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
    if (strcmp(recs[i].name, name) == 0)
      return &recs[i];
  return NULL;
}

static uint16_t count_rr(const char *const *list, size_t max) {
  uint16_t n = 0;
  while (n < max && list[n])
    n++;
  return n;
}

/* Build the answer for one question into w. Returns false to drop it. */
static bool build_answer(struct wbuf *w, const uint8_t *q, size_t qend, const char *name,
                         uint16_t qtype) {
  const struct rec *r = find_rec(name);
  uint16_t rcode = r ? 0 : 3;
  if (r && r->mode == M_DROP)
    return false;
  if (r && r->mode == M_REFUSED)
    rcode = 5;
  if (r && r->mode == M_SERVFAIL)
    rcode = 2;

  uint16_t nrr = 0, type = 0;
  const char *const *list = NULL;
  uint32_t ttl = 0;
  if (rcode == 0 && qtype == 1) {
    list = r->a, nrr = count_rr(r->a, 24), type = 1, ttl = r->ttl_a;
  } else if (rcode == 0 && qtype == 28) {
    list = r->aaaa, nrr = count_rr(r->aaaa, 8), type = 28, ttl = r->ttl_aaaa;
  }
  bool cname = rcode == 0 && r->cname;

  wbytes(w, q, 2); /* id */
  w16(w, (uint16_t)(0x8180 | rcode));
  w16(w, 1);
  w16(w, (uint16_t)(nrr + (cname ? 1 : 0) + (r && r->mode == M_BADRESP ? 1 : 0)));
  w16(w, 0);
  w16(w, 0);
  wbytes(w, q + 12, qend - 12);
  if (r && r->mode == M_BADRESP) {
    /* Claims an answer and then stops mid-record. */
    w16(w, 0xC00C);
    w16(w, 1);
    return true;
  }
  uint16_t owner = 0xC00C;
  if (cname) {
    w16(w, 0xC00C);
    w16(w, 5);
    w16(w, 1);
    w32(w, r->ttl_cname);
    struct wbuf tmp = {.len = 0};
    wname(&tmp, r->cname);
    w16(w, (uint16_t)tmp.len);
    owner = (uint16_t)(0xC000 | w->len); /* records hang off the target name */
    wbytes(w, tmp.b, tmp.len);
  }
  for (uint16_t i = 0; i < nrr; i++) {
    uint8_t addr[16];
    int af = type == 1 ? AF_INET : AF_INET6;
    assert_int_equal(inet_pton(af, list[i], addr), 1);
    w16(w, owner);
    w16(w, type);
    w16(w, 1);
    w32(w, ttl);
    w16(w, type == 1 ? 4 : 16);
    wbytes(w, addr, type == 1 ? 4 : 16);
  }
  return true;
}

static void srv_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  struct server *s = h->data;
  (void)sz;
  *buf = uv_buf_init((char *)s->rbuf, sizeof(s->rbuf));
}

static void srv_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                     const struct sockaddr *from, unsigned flags) {
  struct server *s = u->data;
  (void)flags;
  if (nread < 12 || !from)
    return;
  struct cur c = {(const uint8_t *)buf->base, (size_t)nread, 12};
  uint16_t qd = (uint16_t)(c.p[4] << 8 | c.p[5]);
  char name[256];
  uint16_t qtype, qclass;
  if (qd != 1 || rd_name(&c, name, sizeof(name)) < 0 || rd16(&c, &qtype) < 0 ||
      rd16(&c, &qclass) < 0)
    return;
  if (s->nq < QLOG_MAX) {
    snprintf(s->log[s->nq].name, sizeof(s->log[s->nq].name), "%s", name);
    s->log[s->nq].type = qtype;
    s->nq++;
  }
  if (s->drop_all)
    return;
  struct wbuf w = {.len = 0};
  if (!build_answer(&w, c.p, c.off, name, qtype) || w.over)
    return;
  uv_buf_t out = uv_buf_init((char *)w.b, (unsigned)w.len);
  uv_udp_try_send(u, &out, 1, from);
}

static unsigned queries(const struct server *s, const char *name, uint16_t type) {
  unsigned n = 0;
  for (size_t i = 0; i < s->nq; i++)
    n += strcmp(s->log[i].name, name) == 0 && s->log[i].type == type;
  return n;
}

/* ---- fixture ------------------------------------------------------------ */

struct fx {
  uv_loop_t loop;
  struct server srv;
  char servers[64];
  uv_timer_t deadline;
  bool expired;
  awf_resolver *r; /* the live resolver; NULL once its test closed it */
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->srv.log = calloc(QLOG_MAX, sizeof(*f->srv.log));
  assert_non_null(f->srv.log);
  struct sockaddr_in sin;
  assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sin), 0);
  assert_int_equal(uv_udp_init(&f->loop, &f->srv.udp), 0);
  f->srv.udp.data = &f->srv;
  assert_int_equal(uv_udp_bind(&f->srv.udp, (const struct sockaddr *)&sin, 0), 0);
  int len = sizeof(sin);
  assert_int_equal(uv_udp_getsockname(&f->srv.udp, (struct sockaddr *)&sin, &len), 0);
  f->srv.port = ntohs(sin.sin_port);
  assert_int_equal(uv_udp_recv_start(&f->srv.udp, srv_alloc, srv_recv), 0);
  snprintf(f->servers, sizeof(f->servers), "127.0.0.1:%d", f->srv.port);
  assert_int_equal(uv_timer_init(&f->loop, &f->deadline), 0);
  f->deadline.data = f;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  /* A test that failed midway left a resolver whose callbacks point into
   * its dead stack frame: leave it all be (the failure is reported). */
  if (f->r)
    return 0;
  uv_close((uv_handle_t *)&f->srv.udp, NULL);
  uv_close((uv_handle_t *)&f->deadline, NULL);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  /* Fails with UV_EBUSY if the resolver left a handle open. */
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f->srv.log);
  free(f);
  return 0;
}

static void on_deadline(uv_timer_t *t) {
  struct fx *f = t->data;
  f->expired = true;
}

/* Run the loop until *counter reaches want or max_ms pass. */
static void run_until(struct fx *f, const int *counter, int want, uint64_t max_ms) {
  f->expired = false;
  uv_timer_start(&f->deadline, on_deadline, max_ms, 0);
  while (*counter < want && !f->expired)
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_timer_stop(&f->deadline);
}

static void sleep_ms(struct fx *f, uint64_t ms) {
  static const int never = 0;
  run_until(f, &never, 1, ms);
}

struct res {
  int calls;
  int status;
  struct awf_addr_list addrs;
  int *order; /* shared counter: order of arrival */
  int seq;
  awf_resolver *r;
  int resolve_in_cb; /* what awf_resolve returned inside the callback */
  bool close_in_cb;
};

static void on_res(int status, const struct awf_addr_list *addrs, void *arg) {
  struct res *x = arg;
  x->calls++;
  x->status = status;
  assert_non_null(addrs);
  x->addrs = *addrs;
  if (x->order)
    x->seq = ++*x->order;
  if (x->close_in_cb)
    awf_resolver_close(x->r);
  if (x->r) {
    struct awf_addr_list out;
    awf_resolve_req *q = NULL;
    x->resolve_in_cb = awf_resolve(x->r, "v4.test", &out, on_res, x, &q);
  }
}

static awf_resolver *mk(struct fx *f, struct awf_resolver_options *o) {
  struct awf_resolver_options def;
  char err[128];
  if (!o) {
    awf_resolver_options_default(&def);
    o = &def;
  }
  o->servers = f->servers;
  if (o->timeout_ms == 2000)
    o->timeout_ms = 500;
  awf_resolver *r = NULL;
  assert_null(f->r);
  assert_int_equal(awf_resolver_new(&f->loop, o, &r, err, sizeof(err)), 0);
  assert_non_null(r);
  f->r = r;
  return r;
}

/* Start a lookup that must go pending, with its callback not yet called. */
static awf_resolve_req *start(awf_resolver *r, const char *name, struct res *x) {
  struct awf_addr_list out;
  awf_resolve_req *q = NULL;
  int calls = x->calls;
  assert_int_equal(awf_resolve(r, name, &out, on_res, x, &q), 0);
  assert_non_null(q);
  assert_int_equal(x->calls, calls); /* never from inside awf_resolve */
  return q;
}

static int resolve_one(struct fx *f, awf_resolver *r, const char *name, struct res *x) {
  int want = x->calls + 1;
  start(r, name, x);
  run_until(f, &x->calls, want, 3000);
  assert_int_equal(x->calls, want);
  return x->status;
}

static void close_and_drain(struct fx *f, awf_resolver *r) {
  assert_ptr_equal(r, f->r);
  f->r = NULL;
  awf_resolver_close(r);
  /* Let the close callbacks run (the deadline keeps the loop bounded). */
  sleep_ms(f, 20);
}

static void count_poll(uv_handle_t *h, void *arg) {
  if (h->type == UV_POLL && !uv_is_closing(h))
    ++*(int *)arg;
}

/* Poll handles the resolver holds open: one per socket c-ares has open. */
static int live_polls(struct fx *f) {
  int n = 0;
  uv_walk(&f->loop, count_poll, &n);
  return n;
}

static void assert_v4(const struct sockaddr_storage *ss, const char *ip) {
  char buf[INET6_ADDRSTRLEN];
  assert_int_equal(ss->ss_family, AF_INET);
  const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
  assert_int_equal(s4->sin_port, 0);
  assert_non_null(inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof(buf)));
  assert_string_equal(buf, ip);
}

static void assert_v6(const struct sockaddr_storage *ss, const char *ip) {
  char buf[INET6_ADDRSTRLEN];
  assert_int_equal(ss->ss_family, AF_INET6);
  const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
  assert_int_equal(s6->sin6_port, 0);
  assert_non_null(inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof(buf)));
  assert_string_equal(buf, ip);
}

/* ---- tests -------------------------------------------------------------- */

static void test_a_and_aaaa(void **state) {
  struct fx *f = *state;
  awf_resolver *r = mk(f, NULL);
  struct res x = {0};
  assert_int_equal(resolve_one(f, r, "dual.test", &x), 0);
  assert_int_equal(x.addrs.n, 3);
  assert_v4(&x.addrs.addr[0], "192.0.2.1");
  assert_v4(&x.addrs.addr[1], "192.0.2.2");
  assert_v6(&x.addrs.addr[2], "2001:db8::1");
  assert_int_equal(x.addrs.ttl_s, 30); /* the shorter of the two */
  assert_int_equal(queries(&f->srv, "dual.test", 1), 1);
  assert_int_equal(queries(&f->srv, "dual.test", 28), 1);
  /* c-ares closed its socket once idle; its poll handle must go with it,
   * before the descriptor number can be reused. */
  assert_int_equal(live_polls(f), 0);
  assert_int_equal(resolve_one(f, r, "v4.test", &x), 0);
  assert_int_equal(live_polls(f), 0);
  close_and_drain(f, r);
}

static void test_nxdomain_not_cached(void **state) {
  struct fx *f = *state;
  awf_resolver *r = mk(f, NULL);
  struct res x = {0};
  assert_int_equal(resolve_one(f, r, "nosuch.test", &x), -ENOENT);
  assert_int_equal(x.addrs.n, 0);
  assert_int_equal(resolve_one(f, r, "nosuch.test", &x), -ENOENT);
  assert_int_equal(queries(&f->srv, "nosuch.test", 1), 2);
  /* NOERROR with no records is just as absent. */
  assert_int_equal(resolve_one(f, r, "noaddr.test", &x), -ENOENT);
  close_and_drain(f, r);
}

static void test_timeout(void **state) {
  struct fx *f = *state;
  struct awf_resolver_options o;
  awf_resolver_options_default(&o);
  o.timeout_ms = 100;
  o.tries = 2;
  awf_resolver *r = mk(f, &o);
  struct res x = {0};
  uint64_t t0 = uv_hrtime();
  assert_int_equal(resolve_one(f, r, "drop.test", &x), -ETIMEDOUT);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  assert_true(ms >= 100 && ms < 2000);
  assert_int_equal(queries(&f->srv, "drop.test", 1), 2); /* both tries sent */
  close_and_drain(f, r);
}

static void test_server_errors(void **state) {
  struct fx *f = *state;
  awf_resolver *r = mk(f, NULL);
  struct res x = {0};
  assert_int_equal(resolve_one(f, r, "refused.test", &x), -ECONNREFUSED);
  assert_int_equal(resolve_one(f, r, "servfail.test", &x), -ECONNREFUSED);
  assert_int_equal(resolve_one(f, r, "bad.test", &x), -EIO);
  close_and_drain(f, r);
}

static void test_port_unreachable(void **state) {
  struct fx *f = *state;
  /* A port nothing listens on: take one, then let it go. */
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  socklen_t sl = sizeof(sin);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
  close(fd);
  struct awf_resolver_options o;
  awf_resolver_options_default(&o);
  char servers[64];
  snprintf(servers, sizeof(servers), "127.0.0.1:%d", ntohs(sin.sin_port));
  o.servers = servers;
  awf_resolver *r = NULL;
  char err[128];
  assert_int_equal(awf_resolver_new(&f->loop, &o, &r, err, sizeof(err)), 0);
  f->r = r;
  struct res x = {0};
  start(r, "dual.test", &x);
  run_until(f, &x.calls, 1, 3000);
  assert_int_equal(x.calls, 1);
  assert_int_equal(x.status, -ECONNREFUSED);
  close_and_drain(f, r);
}

static void test_cache_hit(void **state) {
  struct fx *f = *state;
  awf_resolver *r = mk(f, NULL);
  struct res x = {0};
  assert_int_equal(resolve_one(f, r, "dual.test", &x), 0);
  struct awf_addr_list out;
  memset(&out, 0xAA, sizeof(out));
  awf_resolve_req *q = NULL;
  assert_int_equal(awf_resolve(r, "dual.test", &out, on_res, &x, &q), 1);
  assert_int_equal(out.n, 3);
  assert_v4(&out.addr[0], "192.0.2.1");
  assert_v4(&out.addr[1], "192.0.2.2");
  assert_v6(&out.addr[2], "2001:db8::1");
  assert_true(out.ttl_s >= 29 && out.ttl_s <= 30);
  sleep_ms(f, 20);
  assert_int_equal(x.calls, 1); /* no callback for a hit */
  assert_int_equal(queries(&f->srv, "dual.test", 1), 1);
  assert_int_equal(queries(&f->srv, "dual.test", 28), 1);
  /* Other names are not mixed up with it. */
  assert_int_equal(resolve_one(f, r, "v4.test", &x), 0);
  assert_int_equal(x.addrs.n, 1);
  assert_v4(&x.addrs.addr[0], "192.0.2.10");
  close_and_drain(f, r);
}

static void test_ttl_expiry(void **state) {
  struct fx *f = *state;
  struct awf_resolver_options o;
  awf_resolver_options_default(&o);
  o.min_ttl_s = 0;
  awf_resolver *r = mk(f, &o);
  struct res x = {0};
  struct awf_addr_list out;
  awf_resolve_req *q;
  assert_int_equal(resolve_one(f, r, "short.test", &x), 0);
  assert_int_equal(x.addrs.ttl_s, 1);
  assert_int_equal(awf_resolve(r, "short.test", &out, on_res, &x, &q), 1);
  sleep_ms(f, 1100);
  assert_int_equal(resolve_one(f, r, "short.test", &x), 0);
  assert_int_equal(queries(&f->srv, "short.test", 1), 2);
  /* TTL 0 with no floor: not kept at all. */
  assert_int_equal(resolve_one(f, r, "zero.test", &x), 0);
  assert_int_equal(x.addrs.ttl_s, 0);
  assert_int_equal(resolve_one(f, r, "zero.test", &x), 0);
  assert_int_equal(queries(&f->srv, "zero.test", 1), 2);
  close_and_drain(f, r);
}

static void test_ttl_floor_and_cap(void **state) {
  struct fx *f = *state;
  struct awf_resolver_options o;
  awf_resolver_options_default(&o);
  o.min_ttl_s = 1;
  awf_resolver *r = mk(f, &o);
  struct res x = {0};
  struct awf_addr_list out;
  awf_resolve_req *q;
  assert_int_equal(resolve_one(f, r, "zero.test", &x), 0);
  assert_int_equal(x.addrs.ttl_s, 1);
  assert_int_equal(awf_resolve(r, "zero.test", &out, on_res, &x, &q), 1);
  assert_int_equal(resolve_one(f, r, "long.test", &x), 0);
  assert_int_equal(x.addrs.ttl_s, 300);
  /* A CNAME's shorter TTL bounds the answer. */
  assert_int_equal(resolve_one(f, r, "alias.test", &x), 0);
  assert_int_equal(x.addrs.n, 1);
  assert_v4(&x.addrs.addr[0], "192.0.2.30");
  assert_int_equal(x.addrs.ttl_s, 7);
  close_and_drain(f, r);

  /* max_ttl_s 0: no cache. */
  awf_resolver_options_default(&o);
  o.max_ttl_s = 0;
  r = mk(f, &o);
  assert_int_equal(resolve_one(f, r, "v4.test", &x), 0);
  assert_int_equal(resolve_one(f, r, "v4.test", &x), 0);
  assert_int_equal(queries(&f->srv, "v4.test", 1), 2);
  close_and_drain(f, r);
}

static void test_addr_limits(void **state) {
  struct fx *f = *state;
  awf_resolver *r = mk(f, NULL);
  struct res x = {0};
  assert_int_equal(resolve_one(f, r, "many.test", &x), 0);
  assert_int_equal(x.addrs.n, AWF_RESOLVE_MAX_ADDRS);
  /* 20 A and 4 AAAA: the AAAA records all keep a place, at the end. */
  assert_v4(&x.addrs.addr[0], "10.0.0.1");
  assert_v4(&x.addrs.addr[11], "10.0.0.12");
  assert_v6(&x.addrs.addr[12], "2001:db8::a");
  assert_v6(&x.addrs.addr[15], "2001:db8::d");
  assert_int_equal(resolve_one(f, r, "dup.test", &x), 0);
  assert_int_equal(x.addrs.n, 2);
  assert_v4(&x.addrs.addr[0], "192.0.2.40");
  assert_v6(&x.addrs.addr[1], "2001:db8::40");
  close_and_drain(f, r);
}

static void test_cache_eviction(void **state) {
  struct fx *f = *state;
  struct awf_resolver_options o;
  awf_resolver_options_default(&o);
  o.max_cache_entries = 2;
  o.min_ttl_s = 0;
  awf_resolver *r = mk(f, &o);
  struct res x = {0};
  struct awf_addr_list out;
  awf_resolve_req *q;
  assert_int_equal(resolve_one(f, r, "e1.test", &x), 0);
  assert_int_equal(resolve_one(f, r, "e2.test", &x), 0);
  assert_int_equal(resolve_one(f, r, "e3.test", &x), 0); /* evicts e1, the oldest */
  assert_int_equal(awf_resolve(r, "e3.test", &out, on_res, &x, &q), 1);
  assert_int_equal(awf_resolve(r, "e2.test", &out, on_res, &x, &q), 1);
  assert_int_equal(resolve_one(f, r, "e1.test", &x), 0); /* evicts e2 */
  assert_int_equal(queries(&f->srv, "e1.test", 1), 2);
  assert_int_equal(awf_resolve(r, "e3.test", &out, on_res, &x, &q), 1);
  close_and_drain(f, r);

  /* An expired entry goes before the oldest live one: e1 is older, but
   * short.test's has expired by the time e2 needs room. */
  r = mk(f, &o);
  assert_int_equal(resolve_one(f, r, "e1.test", &x), 0);
  assert_int_equal(resolve_one(f, r, "short.test", &x), 0);
  sleep_ms(f, 1100);
  assert_int_equal(resolve_one(f, r, "e2.test", &x), 0);
  assert_int_equal(awf_resolve(r, "e1.test", &out, on_res, &x, &q), 1);
  assert_int_equal(awf_resolve(r, "e2.test", &out, on_res, &x, &q), 1);
  close_and_drain(f, r);
}

static void test_coalescing(void **state) {
  struct fx *f = *state;
  awf_resolver *r = mk(f, NULL);
  struct res x[10];
  awf_resolve_req *q[10];
  int order = 0, done = 0;
  memset(x, 0, sizeof(x));
  for (int i = 0; i < 10; i++) {
    x[i].order = &order;
    q[i] = start(r, "dual.test", &x[i]);
    for (int j = 0; j < i; j++)
      assert_ptr_not_equal(q[i], q[j]);
  }
  run_until(f, &order, 10, 3000);
  for (int i = 0; i < 10; i++) {
    assert_int_equal(x[i].calls, 1);
    assert_int_equal(x[i].status, 0);
    assert_int_equal(x[i].addrs.n, 3);
    assert_int_equal(x[i].seq, i + 1); /* in arrival order */
    done += x[i].calls;
  }
  assert_int_equal(done, 10);
  assert_int_equal(queries(&f->srv, "dual.test", 1), 1);
  assert_int_equal(queries(&f->srv, "dual.test", 28), 1);
  close_and_drain(f, r);
}

static void test_cancel(void **state) {
  struct fx *f = *state;
  awf_resolver *r = mk(f, NULL);
  struct res x[3];
  int order = 0;
  memset(x, 0, sizeof(x));
  awf_resolve_req *q[3];
  for (int i = 0; i < 3; i++) {
    x[i].order = &order;
    q[i] = start(r, "dual.test", &x[i]);
  }
  awf_resolve_cancel(q[1]);
  run_until(f, &order, 2, 3000);
  sleep_ms(f, 20);
  assert_int_equal(x[0].calls, 1);
  assert_int_equal(x[1].calls, 0);
  assert_int_equal(x[2].calls, 1);

  /* The only waiter cancelled: the answer still lands in the cache. */
  struct res y = {0};
  awf_resolve_cancel(start(r, "v4.test", &y));
  sleep_ms(f, 100);
  assert_int_equal(y.calls, 0);
  assert_int_equal(queries(&f->srv, "v4.test", 1), 1);
  struct awf_addr_list out;
  awf_resolve_req *qq;
  assert_int_equal(awf_resolve(r, "v4.test", &out, on_res, &y, &qq), 1);

  /* Cancelled while its failure waits for delivery. */
  awf_resolve_cancel(start(r, "hidden.onion", &y));
  sleep_ms(f, 20);
  assert_int_equal(y.calls, 0);

  /* Cancelled on a query that never answers, then the resolver closes. */
  awf_resolve_cancel(start(r, "drop.test", &y));
  close_and_drain(f, r);
  assert_int_equal(y.calls, 0);
}

static void test_sync_failure_deferred(void **state) {
  struct fx *f = *state;
  awf_resolver *r = mk(f, NULL);
  struct res x = {0};
  /* c-ares refuses .onion inside ares_getaddrinfo itself. */
  start(r, "hidden.onion", &x);
  run_until(f, &x.calls, 1, 1000);
  assert_int_equal(x.calls, 1);
  assert_int_equal(x.status, -ENOENT);
  assert_int_equal(f->srv.nq, 0);
  close_and_drain(f, r);
}

static void test_close_pending(void **state) {
  struct fx *f = *state;
  awf_resolver *r = mk(f, NULL);
  struct res a = {0}, b = {0}, c = {0};
  start(r, "drop.test", &a);
  start(r, "drop.test", &b);
  c.r = r; /* resolves again from inside its callback */
  start(r, "dual.test", &c);
  assert_int_equal(live_polls(f), 1); /* one UDP socket to the one server */
  f->r = NULL;
  awf_resolver_close(r);
  assert_int_equal(live_polls(f), 0);
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.status, -ECANCELED);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.status, -ECANCELED);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.status, -ECANCELED);
  assert_int_equal(c.resolve_in_cb, -ECANCELED);
  sleep_ms(f, 20);
  assert_int_equal(a.calls + b.calls + c.calls, 3);
}

static void test_close_from_callback(void **state) {
  struct fx *f = *state;
  awf_resolver *r = mk(f, NULL);
  struct res a = {0}, b = {0}, d = {0};
  a.r = r;
  a.close_in_cb = true;
  start(r, "dual.test", &a);
  start(r, "dual.test", &b);
  start(r, "drop.test", &d);
  run_until(f, &a.calls, 1, 3000);
  assert_int_equal(a.calls, 1);
  f->r = NULL; /* closed by a's callback */
  assert_int_equal(a.status, 0);
  assert_int_equal(a.resolve_in_cb, -ECANCELED);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.status, -ECANCELED);
  assert_int_equal(d.calls, 1);
  assert_int_equal(d.status, -ECANCELED);
  sleep_ms(f, 20);
}

static void test_pending_cap(void **state) {
  struct fx *f = *state;
  awf_resolver *r = mk(f, NULL);
  f->srv.drop_all = true;
  static struct res x[1025];
  memset(x, 0, sizeof(x));
  char name[32];
  int i;
  for (i = 0; i < 1024; i++) {
    snprintf(name, sizeof(name), "n%d.test", i);
    start(r, name, &x[i]);
  }
  struct awf_addr_list out;
  awf_resolve_req *q;
  assert_int_equal(awf_resolve(r, "over.test", &out, on_res, &x[i], &q), -EAGAIN);
  /* A name already in flight still joins. */
  start(r, "n5.test", &x[1024]);
  f->r = NULL;
  awf_resolver_close(r);
  for (i = 0; i < 1025; i++) {
    assert_int_equal(x[i].calls, 1);
    assert_int_equal(x[i].status, -ECANCELED);
  }
  sleep_ms(f, 20);
}

static void test_bad_servers(void **state) {
  struct fx *f = *state;
  static const char *const bad[][2] = {
      {"abc", "'abc' is not an IP address"},
      {"127.0.0.1,abc", "'abc' is not an IP address"},
      {"1.2.3.4:99999", "'1.2.3.4:99999' has an invalid port"},
      {"1.2.3.4:0", "'1.2.3.4:0' has an invalid port"},
      {"1.2.3.4:", "'1.2.3.4:' has an invalid port"},
      {"1.2.3.4:5x", "'1.2.3.4:5x' has an invalid port"},
      {"[::1", "'[::1' is not an IP address"},
      {"[::1]x", "'[::1]x' has an invalid port"},
      {"[::1]:", "'[::1]:' has an invalid port"},
      {"[1.2.3.4]:53", "'[1.2.3.4]:53' is not an IP address"},
      {"1.2.3.4:53:53", "'1.2.3.4:53:53' is not an IP address"},
      {"1.2.3", "'1.2.3' is not an IP address"},
      {"fe80::1%lo", "'fe80::1%lo' is not an IP address"},
      {"1.2.3.4,,5.6.7.8", "empty entry"},
      {"1.2.3.4,", "empty entry"},
      {"example.com:53", "'example.com:53' is not an IP address"},
      {"1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,"
       "1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,1.1.1.1,2.2.2.2",
       "'2.2.2.2' is past the limit"},
      {"111111111111111111111111111111111111111111111111111111111111111111111",
       "is not an IP address"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct awf_resolver_options o;
    awf_resolver_options_default(&o);
    o.servers = bad[i][0];
    awf_resolver *r = (awf_resolver *)&o; /* must stay untouched */
    char err[160] = "";
    assert_int_equal(awf_resolver_new(&f->loop, &o, &r, err, sizeof(err)), -EINVAL);
    assert_ptr_equal(r, (awf_resolver *)&o);
    if (!strstr(err, bad[i][1]) || strncmp(err, "--dns-servers: ", 15) != 0)
      fail_msg("'%s': got message '%s'", bad[i][0], err);
  }
  /* A tiny err buffer is cut, not overrun. */
  struct awf_resolver_options o;
  awf_resolver_options_default(&o);
  o.servers = "abc";
  awf_resolver *r = NULL;
  char small[8];
  assert_int_equal(awf_resolver_new(&f->loop, &o, &r, small, sizeof(small)), -EINVAL);
  assert_int_equal(strlen(small), 7);
  assert_int_equal(awf_resolver_new(&f->loop, &o, &r, NULL, 0), -EINVAL);

  o.servers = "127.0.0.1:53, [::1]:5353 ,::1,10.0.0.1";
  char err[160];
  assert_int_equal(awf_resolver_new(&f->loop, &o, &r, err, sizeof(err)), 0);
  f->r = r;
  close_and_drain(f, r);

  o.servers = "127.0.0.1";
  o.timeout_ms = 0;
  assert_int_equal(awf_resolver_new(&f->loop, &o, &r, err, sizeof(err)), -EINVAL);
  o.timeout_ms = 100;
  o.tries = 0;
  assert_int_equal(awf_resolver_new(&f->loop, &o, &r, err, sizeof(err)), -EINVAL);
}

static void test_bad_args(void **state) {
  struct fx *f = *state;
  awf_resolver *r = mk(f, NULL);
  struct res x = {0};
  struct awf_addr_list out;
  awf_resolve_req *q = NULL;
  char longname[300];
  memset(longname, 'a', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  assert_int_equal(awf_resolve(r, "", &out, on_res, &x, &q), -EINVAL);
  assert_int_equal(awf_resolve(r, longname, &out, on_res, &x, &q), -EINVAL);
  assert_int_equal(awf_resolve(r, NULL, &out, on_res, &x, &q), -EINVAL);
  assert_int_equal(awf_resolve(r, "v4.test", &out, NULL, &x, &q), -EINVAL);
  assert_int_equal(awf_resolve(r, "v4.test", NULL, on_res, &x, &q), -EINVAL);
  assert_int_equal(awf_resolve(r, "v4.test", &out, on_res, &x, NULL), -EINVAL);
  assert_null(q);
  sleep_ms(f, 20);
  assert_int_equal(x.calls, 0);
  assert_int_equal(f->srv.nq, 0);
  close_and_drain(f, r);
}

/* The name looked up is the name asked for: a search list (LOCALDOMAIN, as
 * resolv.conf's "search" would give), ndots:5 (Kubernetes' default, which
 * makes the suffixed name the first try) and HOSTALIASES must not turn an
 * admitted name into another one. */
static void test_search_list_and_aliases_never_apply(void **state) {
  struct fx *f = *state;
  char aliases[] = "/tmp/awf-test-hostaliases-XXXXXX";
  int fd = mkstemp(aliases);
  assert_true(fd >= 0);
  static const char line[] = "shortname dual.test\n";
  assert_int_equal(write(fd, line, sizeof(line) - 1), (ssize_t)(sizeof(line) - 1));
  close(fd);
  assert_int_equal(setenv("LOCALDOMAIN", "corp.test", 1), 0);
  assert_int_equal(setenv("RES_OPTIONS", "ndots:5", 1), 0);
  assert_int_equal(setenv("HOSTALIASES", aliases, 1), 0);
  awf_resolver *r = mk(f, NULL); /* c-ares reads HOSTALIASES at each lookup */
  struct res x = {0};
  assert_int_equal(resolve_one(f, r, "nosuch.test", &x), -ENOENT);
  assert_int_equal(queries(&f->srv, "nosuch.test", 1), 1);
  assert_int_equal(queries(&f->srv, "nosuch.test.corp.test", 1), 0);
  assert_int_equal(resolve_one(f, r, "shortname", &x), -ENOENT);
  assert_int_equal(queries(&f->srv, "shortname", 1), 1);
  assert_int_equal(queries(&f->srv, "shortname.corp.test", 1), 0);
  assert_int_equal(queries(&f->srv, "dual.test", 1), 0);
  for (size_t i = 0; i < f->srv.nq; i++)
    assert_null(strstr(f->srv.log[i].name, "corp"));
  close_and_drain(f, r);
  unsetenv("LOCALDOMAIN");
  unsetenv("RES_OPTIONS");
  unsetenv("HOSTALIASES");
  unlink(aliases);
}

static void test_defaults(void **state) {
  (void)state;
  struct awf_resolver_options o;
  memset(&o, 0x55, sizeof(o));
  awf_resolver_options_default(&o);
  assert_null(o.servers);
  assert_int_equal(o.max_ttl_s, 300);
  assert_int_equal(o.min_ttl_s, 5);
  assert_int_equal(o.timeout_ms, 2000);
  assert_int_equal(o.tries, 2);
  assert_int_equal(o.max_cache_entries, 4096);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test_setup_teardown(test_a_and_aaaa, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nxdomain_not_cached, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_port_unreachable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cache_hit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ttl_floor_and_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_addr_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cache_eviction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_coalescing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_failure_deferred, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_pending, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_from_callback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pending_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_servers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
      cmocka_unit_test_setup_teardown(test_search_list_and_aliases_never_apply, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
