/* loadgen: the bench harness's own load client and TCP origin, on libuv.
 *
 * wrk covers HTTP keep-alive; this covers what wrk cannot: CONNECT tunnels
 * (bulk throughput, setup rate, many idle tunnels), a new connection per
 * request, and latency at a fixed offered rate. One mode per run, one JSON
 * object per result on stdout, diagnostics on stderr. Every run is bounded
 * in time; errors are counted by kind and never as throughput.
 *
 *   loadgen server [--listen IP] [--max-seconds S]
 *       a "source" port streaming bytes from accept until the peer closes,
 *       and a "greet" port that sends one byte on accept, then idles.
 *   loadgen bulk  --target H:P [--proxy H:P] --concurrency N --duration S
 *   loadgen setup --target H:P [--proxy H:P] --concurrency N --duration S
 *   loadgen close --target H:P [--proxy H:P] --path P --concurrency N --duration S
 *   loadgen rate  --target H:P [--proxy H:P] --path P --concurrency N --rate R --duration S
 *   loadgen idle  --target H:P [--proxy H:P] --count N --concurrency N [--hold S]
 *
 * With --proxy, tunnels are opened with CONNECT target and HTTP requests use
 * the absolute URI http://target/path; without it the target is dialled.
 * --host NAME puts NAME in the Host header (and URI) instead of the target;
 * --client-hello NAME opens each direct tunnel with a TLS ClientHello naming
 * NAME, for a transparent proxy that decides on the SNI (the origin ignores
 * it: the bytes after it are raw, so the relay and not TLS is measured). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "hist.h"

#define READ_BUF_SIZE (256 * 1024)
#define HEAD_MAX 4096
#define REQ_MAX 1024
#define MAX_CONNS 60000
#define MAX_QUEUE 5000000
#define MAX_SECONDS 3600.0
#define SCAN_EVERY_NS 250000000ull
#define TICK_NS 1000000ull /* rate mode's scheduling tick (libuv timers: 1 ms) */
#define NS 1000000000.0

enum mode { M_SERVER, M_BULK, M_SETUP, M_CLOSE, M_RATE, M_IDLE };

enum state {
  S_FREE,       /* handle closed (or never opened) */
  S_CONNECTING, /* TCP connect under way */
  S_TUNNEL,     /* CONNECT sent, reading the proxy's answer */
  S_FIRST,      /* tunnel up, waiting for the origin's first byte */
  S_HELD,       /* idle mode: established and held */
  S_BULK,       /* bulk mode: counting bytes */
  S_HEAD,       /* HTTP response head */
  S_BODY,       /* HTTP response body */
  S_READY,      /* rate mode: keep-alive connection waiting for work */
  S_CLOSING
};

struct opts {
  enum mode mode;
  const char *proxy;
  const char *target;
  const char *path;
  const char *listen;
  const char *host;
  const char *client_hello;
  long long expect_bytes; /* -1: any length */
  int concurrency;
  int count;
  double duration, warmup, hold, rate, timeout, max_seconds;
};

/* The libuv codes behind connect and reset errors, to name a cause. */
#define ERR_CODES 8
struct errcode {
  const char *kind; /* "connect" or "reset" */
  int code;
  uint64_t n;
};

struct errs {
  uint64_t connect, reset, eof, status, short_body, proto, timeout;
  struct errcode codes[ERR_CODES];
  int ncodes;
  uint64_t codes_other; /* beyond ERR_CODES distinct kinds and codes */
};

struct run;

struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  struct run *run;
  enum state state;
  uint64_t t_start;    /* when the current operation began */
  uint64_t t_sched;    /* rate mode: when the request was due */
  long long body_left; /* -1: until EOF */
  long long body_len;
  int server_close;
  int settled;
  uint64_t served; /* responses completed on this connection */
  size_t head_len;
  char head[HEAD_MAX];
};

struct run {
  uv_loop_t *loop;
  const struct opts *o;
  struct sockaddr_storage peer;
  char req[REQ_MAX];
  size_t req_len;
  int tunnel; /* modes that CONNECT through a proxy */
  struct conn *conns;
  int nconns;
  char *buf;
  uv_timer_t tick;
  uv_timer_t hold;
  uv_pipe_t in;
  int in_open;
  uv_signal_t sig;
  uint64_t t0, t_count, t_end, last_scan;
  int stopping;
  uint64_t ok, bytes, reconnects, abandoned;
  int bad_status; /* the last non-2xx status seen, to name the problem */
  struct errs err;
  struct hist lat;
  /* idle mode */
  int started, settled, ready_printed;
  /* rate mode */
  uint64_t issued, *queue;
  size_t qhead, qtail, qcap;
  int *ready;
  int nready;
};

struct srv {
  uv_loop_t *loop;
  uv_tcp_t source, greet;
  uv_signal_t sigterm, sigint;
  uv_timer_t life;
  char *buf;
  char *blob;
  char greeting[1];
};

struct sconn {
  uv_tcp_t tcp;
  uv_write_t w[2];
  struct srv *srv;
  int source;
};

/* ---- small helpers ------------------------------------------------------- */

static int parse_addr(const char *s, struct sockaddr_storage *out) {
  char host[64];
  const char *colon = strrchr(s, ':');
  if (colon == NULL || colon == s)
    return -EINVAL;
  size_t hl = (size_t)(colon - s);
  if (s[0] == '[') {
    if (hl < 3 || s[hl - 1] != ']')
      return -EINVAL;
    s++;
    hl -= 2;
  }
  if (hl >= sizeof host)
    return -EINVAL;
  memcpy(host, s, hl);
  host[hl] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end != '\0' || port <= 0 || port > 65535)
    return -EINVAL;
  memset(out, 0, sizeof *out);
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0)
    return 0;
  if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0)
    return 0;
  return -EINVAL;
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void on_alloc_run(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  struct conn *c = h->data;
  (void)sz;
  /* One buffer for every connection: reads are consumed before the
     * callback returns, and only an HTTP head is copied out. */
  *b = uv_buf_init(c->run->buf, READ_BUF_SIZE);
}

static int counting(const struct run *r, uint64_t now) {
  return now >= r->t_count && now < r->t_end;
}

/* ---- client: connection life cycle ------------------------------------- */

static void conn_start(struct conn *c);
static void dispatch(struct run *r);
static void maybe_ready(struct run *r);

/* Idle mode: a tunnel is settled once, when it is established or has failed. */
static void settle(struct conn *c) {
  if (c->settled)
    return;
  c->settled = 1;
  c->run->settled++;
  maybe_ready(c->run);
}

static void on_conn_closed(uv_handle_t *h) {
  struct conn *c = h->data;
  struct run *r = c->run;
  c->state = S_FREE;
  if (r->stopping)
    return;
  if (r->o->mode == M_IDLE) {
    settle(c);
    return;
  }
  if (uv_now(r->loop) * 1000000ull < r->t_end)
    conn_start(c);
}

static void ready_remove(struct run *r, struct conn *c) {
  for (int i = 0; i < r->nready; i++) {
    if (r->ready[i] == (int)(c - r->conns)) {
      r->ready[i] = r->ready[--r->nready];
      return;
    }
  }
}

static void conn_close(struct conn *c) {
  if (c->state == S_FREE || c->state == S_CLOSING)
    return;
  if (c->state == S_READY)
    ready_remove(c->run, c);
  c->state = S_CLOSING;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void conn_fail(struct conn *c, uint64_t *counter) {
  if (!c->run->stopping)
    (*counter)++;
  conn_close(c);
}

static void note_code(struct errs *e, const char *kind, int code) {
  for (int i = 0; i < e->ncodes; i++) {
    if (e->codes[i].code == code && e->codes[i].kind == kind) {
      e->codes[i].n++;
      return;
    }
  }
  if (e->ncodes == ERR_CODES) {
    e->codes_other++;
    return;
  }
  e->codes[e->ncodes++] = (struct errcode){kind, code, 1};
}

/* A connect or reset error with the libuv code that caused it. */
static void conn_fail_code(struct conn *c, uint64_t *counter, int code) {
  struct errs *e = &c->run->err;
  if (!c->run->stopping)
    note_code(e, counter == &e->connect ? "connect" : "reset", code);
  conn_fail(c, counter);
}

static void on_written(uv_write_t *w, int status) {
  struct conn *c = w->data;
  if (status < 0 && status != UV_ECANCELED)
    conn_fail_code(c, &c->run->err.reset, status);
}

static void conn_send(struct conn *c, enum state next) {
  struct run *r = c->run;
  uv_buf_t b = uv_buf_init(r->req, (unsigned)r->req_len);
  c->state = next;
  c->head_len = 0;
  c->wreq.data = c;
  int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written);
  if (rc < 0)
    conn_fail_code(c, &r->err.reset, rc);
}

static void op_done(struct conn *c, uint64_t since) {
  struct run *r = c->run;
  uint64_t now = uv_hrtime();
  if (counting(r, now)) {
    r->ok++;
    hist_add(&r->lat, now - since);
  }
}

static void after_tunnel(struct conn *c) {
  struct run *r = c->run;
  c->state = r->o->mode == M_BULK ? S_BULK : S_FIRST;
  /* A bulk client speaks first, as TLS or HTTP clients do: a proxy that
     * inspects a tunnel's first client bytes (awf-proxy looks for a TLS
     * ClientHello) sees them and relays at full speed from then on. The
     * source ignores what it reads. (A ClientHello, when asked for, was
     * sent already and is that first message.) */
  if (r->o->mode == M_BULK && !(r->o->proxy == NULL && r->req_len > 0)) {
    uv_buf_t b = uv_buf_init("\n", 1);
    int rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (rc != 1)
      conn_fail_code(c, &r->err.reset, rc < 0 ? rc : UV_EAGAIN);
  }
}

static void to_ready(struct conn *c) {
  struct run *r = c->run;
  c->state = S_READY;
  r->ready[r->nready++] = (int)(c - r->conns);
  dispatch(r);
}

/* ---- client: response parsing -------------------------------------------- */

/* Appends to the head; returns bytes of p consumed by the head, or -1 when
 * the head is not complete yet (all consumed), or -2 when it is too long. */
static long head_feed(struct conn *c, const char *p, size_t n) {
  size_t old = c->head_len;
  size_t room = HEAD_MAX - 1 - old;
  size_t take = n < room ? n : room;
  memcpy(c->head + old, p, take);
  c->head_len += take;
  c->head[c->head_len] = '\0';
  size_t from = old >= 3 ? old - 3 : 0;
  char *end = strstr(c->head + from, "\r\n\r\n");
  if (end != NULL)
    return (long)((size_t)(end + 4 - c->head) - old);
  return take < n || c->head_len == HEAD_MAX - 1 ? -2 : -1;
}

static int head_status(const char *h) {
  if (strncmp(h, "HTTP/1.", 7) != 0 || h[8] != ' ')
    return -1;
  if (h[9] < '1' || h[9] > '5' || h[10] < '0' || h[10] > '9' || h[11] < '0' || h[11] > '9')
    return -1;
  return (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
}

/* Content-Length (or -1 when absent), Connection: close; -2 when unusable. */
static long long head_fields(struct conn *c) {
  long long cl = -1;
  c->server_close = strncmp(c->head, "HTTP/1.0", 8) == 0;
  for (char *line = strstr(c->head, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
    line += 2;
    if (strncasecmp(line, "content-length:", 15) == 0) {
      char *end;
      errno = 0;
      cl = strtoll(line + 15, &end, 10);
      if (errno != 0 || cl < 0 || (*end != '\r' && *end != ' '))
        return -2;
    } else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
      return -2; /* the origin serves files: a length is always known */
    } else if (strncasecmp(line, "connection:", 11) == 0) {
      char *eol = strstr(line, "\r\n");
      char *cl_tok = strcasestr(line, "close");
      if (cl_tok != NULL && eol != NULL && cl_tok < eol)
        c->server_close = 1;
    }
  }
  return cl;
}

static void response_done(struct conn *c) {
  struct run *r = c->run;
  const struct opts *o = r->o;
  if (o->expect_bytes >= 0 && c->body_len != o->expect_bytes) {
    conn_fail(c, &r->err.short_body);
    return;
  }
  op_done(c, o->mode == M_RATE ? c->t_sched : c->t_start);
  c->served++;
  if (o->mode == M_CLOSE || c->server_close) {
    if (o->mode == M_RATE && !r->stopping)
      r->reconnects++;
    conn_close(c);
    return;
  }
  to_ready(c);
}

static int on_head(struct conn *c) {
  struct run *r = c->run;
  int st = head_status(c->head);
  if (st < 0 || st < 200 || st > 299) {
    r->bad_status = st;
    conn_fail(c, st < 0 ? &r->err.proto : &r->err.status);
    return -1;
  }
  long long cl = head_fields(c);
  if (cl == -2 || (cl == -1 && r->o->mode != M_CLOSE)) {
    conn_fail(c, &r->err.proto);
    return -1;
  }
  c->body_left = cl;
  c->body_len = 0;
  c->state = S_BODY;
  if (cl == 0)
    response_done(c);
  return 0;
}

/* Feeds bytes read to the state machine; returns when consumed or closed. */
static void feed(struct conn *c, const char *p, size_t n) {
  struct run *r = c->run;
  while (n > 0) {
    long used;
    switch (c->state) {
    case S_TUNNEL:
    case S_HEAD:
      used = head_feed(c, p, n);
      if (used == -1)
        return;
      if (used == -2) {
        conn_fail(c, &r->err.proto);
        return;
      }
      p += used;
      n -= (size_t)used;
      if (c->state == S_TUNNEL) {
        int st = head_status(c->head);
        if (st < 200 || st > 299) {
          r->bad_status = st;
          conn_fail(c, st < 0 ? &r->err.proto : &r->err.status);
          return;
        }
        after_tunnel(c);
      } else if (on_head(c) < 0) {
        return;
      }
      break;
    case S_FIRST:
      if (r->o->mode == M_SETUP) {
        op_done(c, c->t_start);
        conn_close(c);
        return;
      }
      c->state = S_HELD;
      settle(c);
      return;
    case S_BULK:
      if (counting(r, uv_hrtime()))
        r->bytes += n;
      return;
    case S_BODY: {
      size_t take = n;
      if (c->body_left >= 0 && (long long)take > c->body_left)
        take = (size_t)c->body_left;
      c->body_len += (long long)take;
      p += take;
      n -= take;
      if (c->body_left >= 0) {
        c->body_left -= (long long)take;
        if (c->body_left == 0) {
          if (n > 0) { /* nothing was pipelined: extra bytes are garbage */
            conn_fail(c, &r->err.proto);
            return;
          }
          response_done(c);
          return;
        }
      }
      break;
    }
    case S_HELD:
    case S_READY: return; /* unexpected bytes on an idle stream: ignored */
    default: return;
    }
  }
}

static void on_eof(struct conn *c) {
  struct run *r = c->run;
  if (c->state == S_BODY && c->body_left == -1) {
    response_done(c);
    return;
  }
  if (c->state == S_READY) { /* keep-alive closed by the server between requests */
    if (!r->stopping)
      r->reconnects++;
    conn_close(c);
    return;
  }
  if (c->state == S_BODY) {
    conn_fail(c, &r->err.short_body);
    return;
  }
  if (c->state == S_HEAD && c->head_len == 0 && c->served > 0 && r->o->mode == M_RATE) {
    /* A kept-alive connection closed before any byte of the answer: the
         * server closed it while the request was on its way (tinyproxy does
         * so without a "Connection: close"). A client retries an idempotent
         * request on a new connection (RFC 9112 9.3.1); so does this one. */
    r->queue[--r->qhead] = c->t_sched;
    if (!r->stopping)
      r->reconnects++;
    conn_close(c);
    return;
  }
  conn_fail(c, &r->err.eof);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  struct conn *c = s->data;
  if (nread > 0)
    feed(c, b->base, (size_t)nread);
  else if (nread == UV_EOF)
    on_eof(c);
  else if (nread < 0)
    conn_fail_code(c, &c->run->err.reset, (int)nread);
}

static void on_connected(uv_connect_t *req, int status) {
  struct conn *c = req->data;
  struct run *r = c->run;
  if (status == UV_ECANCELED)
    return;
  if (status < 0) {
    conn_fail_code(c, &r->err.connect, status);
    return;
  }
  int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc_run, on_read);
  if (rc < 0) {
    conn_fail_code(c, &r->err.reset, rc);
    return;
  }
  if (r->tunnel && r->o->proxy != NULL)
    conn_send(c, S_TUNNEL);
  else if (r->tunnel && r->req_len > 0)
    conn_send(c, r->o->mode == M_BULK ? S_BULK : S_FIRST);
  else if (r->tunnel)
    after_tunnel(c);
  else if (r->o->mode == M_CLOSE)
    conn_send(c, S_HEAD);
  else
    to_ready(c);
}

static void conn_start(struct conn *c) {
  struct run *r = c->run;
  c->t_start = uv_hrtime();
  c->head_len = 0;
  c->served = 0;
  int rc = uv_tcp_init(r->loop, &c->tcp);
  if (rc < 0) {
    r->err.connect++;
    note_code(&r->err, "connect", rc);
    if (r->o->mode == M_IDLE)
      settle(c);
    return;
  }
  c->tcp.data = c;
  c->state = S_CONNECTING;
  (void)uv_tcp_nodelay(&c->tcp, 1);
  c->creq.data = c;
  rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&r->peer, on_connected);
  if (rc < 0)
    conn_fail_code(c, &r->err.connect, rc);
}

/* ---- client: scheduling ---------------------------------------------------- */

static void dispatch(struct run *r) {
  while (r->nready > 0 && r->qhead < r->qtail && !r->stopping) {
    struct conn *c = &r->conns[r->ready[--r->nready]];
    c->t_sched = r->queue[r->qhead++];
    c->t_start = uv_hrtime();
    conn_send(c, S_HEAD);
  }
}

static void schedule_due(struct run *r, uint64_t now) {
  if (now >= r->t_end)
    return;
  uint64_t due = (uint64_t)((double)(now - r->t0) * r->o->rate / NS) + 1;
  while (r->issued < due && r->qtail < r->qcap) {
    uint64_t at = r->t0 + (uint64_t)((double)r->issued * NS / r->o->rate);
    /* The tick's own granularity (libuv timers round to the ms: up to two
         * ticks) is not the server's latency; a later tick (a stalled loop)
         * is, and counts from the intended time. */
    if (now - at < 2 * TICK_NS)
      at = now;
    r->queue[r->qtail++] = at;
    r->issued++;
  }
  dispatch(r);
}

static int active_state(enum state s) {
  return s == S_CONNECTING || s == S_TUNNEL || s == S_FIRST || s == S_HEAD || s == S_BODY;
}

static void scan_timeouts(struct run *r, uint64_t now) {
  uint64_t limit = (uint64_t)(r->o->timeout * NS);
  for (int i = 0; i < r->nconns; i++) {
    struct conn *c = &r->conns[i];
    /* t_start may be later than now: dispatch stamps it after the tick read the clock */
    if (active_state(c->state) && c->t_start + limit < now)
      conn_fail(c, &r->err.timeout);
  }
}

static void print_errs(const struct errs *e) {
  printf("\"errors\":{\"connect\":%" PRIu64 ",\"reset\":%" PRIu64 ",\"eof\":%" PRIu64
         ",\"status\":%" PRIu64 ",\"short_body\":%" PRIu64 ",\"proto\":%" PRIu64
         ",\"timeout\":%" PRIu64 ",\"total\":%" PRIu64 "}",
         e->connect, e->reset, e->eof, e->status, e->short_body, e->proto, e->timeout,
         e->connect + e->reset + e->eof + e->status + e->short_body + e->proto + e->timeout);
  /* Apart from "errors", whose members the harness sums. */
  printf(",\"error_codes\":{");
  for (int i = 0; i < e->ncodes; i++)
    printf("%s\"%s %s\":%" PRIu64, i ? "," : "", e->codes[i].kind,
           uv_err_name(e->codes[i].code), e->codes[i].n);
  if (e->codes_other > 0)
    printf("%s\"other\":%" PRIu64, e->ncodes ? "," : "", e->codes_other);
  printf("}");
}

static const char *mode_name(enum mode m) {
  static const char *const names[] = {"server", "bulk", "setup", "close", "rate", "idle"};
  return names[m];
}

static void report(struct run *r) {
  const struct opts *o = r->o;
  double secs = (double)(r->t_end - r->t_count) / NS;
  printf("{\"mode\":\"%s\",\"seconds\":%.3f,\"ok\":%" PRIu64 ",\"rate\":%.1f,",
         mode_name(o->mode), secs, r->ok, secs > 0 ? (double)r->ok / secs : 0.0);
  printf("\"bytes\":%" PRIu64 ",\"gbit_s\":%.4f,", r->bytes,
         secs > 0 ? (double)r->bytes * 8 / 1e9 / secs : 0.0);
  printf("\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,",
         hist_pct_us(&r->lat, 50), hist_pct_us(&r->lat, 90), hist_pct_us(&r->lat, 99),
         hist_pct_us(&r->lat, 99.9), (double)r->lat.max / 1000.0);
  if (o->mode == M_RATE)
    printf("\"offered_rate\":%.1f,\"unserved\":%zu,", o->rate, r->qtail - r->qhead);
  printf("\"reconnects\":%" PRIu64 ",\"abandoned\":%" PRIu64 ",\"connections\":%d,"
         "\"bad_status\":%d,",
         r->reconnects, r->abandoned, r->nconns, r->bad_status);
  print_errs(&r->err);
  printf("}\n");
  fflush(stdout);
}

static void stop_all(struct run *r) {
  if (r->stopping)
    return;
  r->stopping = 1;
  for (int i = 0; i < r->nconns; i++) {
    struct conn *c = &r->conns[i];
    if (active_state(c->state))
      r->abandoned++;
    conn_close(c);
  }
  uv_close((uv_handle_t *)&r->tick, NULL);
  if (!uv_is_closing((uv_handle_t *)&r->hold))
    uv_close((uv_handle_t *)&r->hold, NULL);
  if (r->in_open)
    uv_close((uv_handle_t *)&r->in, NULL);
  uv_close((uv_handle_t *)&r->sig, NULL);
}

static void finish(struct run *r) {
  if (r->stopping)
    return;
  if (r->o->mode == M_IDLE) {
    r->t_end = uv_hrtime();
    r->t_count = r->t_end;
  }
  stop_all(r);
  report(r);
}

static void on_tick(uv_timer_t *t) {
  struct run *r = t->data;
  uint64_t now = uv_hrtime();
  if (now >= r->t_end && (r->o->mode != M_IDLE || !r->ready_printed)) {
    if (r->o->mode == M_IDLE) /* tunnels still opening when the budget ran out */
      r->err.timeout += (uint64_t)(r->o->count - r->settled);
    finish(r);
    return;
  }
  if (r->o->mode == M_RATE)
    schedule_due(r, now);
  if (now - r->last_scan >= SCAN_EVERY_NS) {
    r->last_scan = now;
    scan_timeouts(r, now);
  }
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  finish(s->data);
}

/* ---- client: idle mode ---------------------------------------------------- */

static void on_hold_over(uv_timer_t *t) { finish(t->data); }

static void on_in_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  struct run *r = h->data;
  (void)sz;
  *b = uv_buf_init(r->buf, 256);
}

static void on_in_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  (void)b;
  if (nread < 0) /* the harness closed our stdin: it has read what it needed */
    finish(s->data);
}

static void open_more(struct run *r) {
  int inflight = r->started - r->settled;
  while (r->started < r->o->count && inflight < r->o->concurrency) {
    conn_start(&r->conns[r->started++]);
    inflight++;
  }
}

static void maybe_ready(struct run *r) {
  if (r->stopping)
    return;
  if (r->settled < r->o->count) {
    open_more(r);
    return;
  }
  if (r->ready_printed)
    return;
  r->ready_printed = 1;
  int held = 0;
  for (int i = 0; i < r->nconns; i++)
    held += r->conns[i].state == S_HELD;
  double secs = (double)(uv_hrtime() - r->t0) / NS;
  printf("{\"mode\":\"idle\",\"ready\":true,\"held\":%d,\"open_seconds\":%.3f,", held, secs);
  print_errs(&r->err);
  printf("}\n");
  fflush(stdout);
  uv_timer_start(&r->hold, on_hold_over, (uint64_t)(r->o->hold * 1000), 0);
  if (uv_pipe_init(r->loop, &r->in, 0) == 0) {
    r->in_open = 1;
    r->in.data = r;
    if (uv_pipe_open(&r->in, 0) < 0 ||
        uv_read_start((uv_stream_t *)&r->in, on_in_alloc, on_in_read) < 0)
      fprintf(stderr, "loadgen: stdin not watchable, holding for --hold\n");
  }
}

/* ---- client: set-up --------------------------------------------------------- */

/* A minimal TLS 1.2-framed ClientHello whose only extension is server_name. */
static int build_hello(char *out, size_t cap, const char *sni) {
  size_t nlen = strlen(sni);
  size_t ext = 4 + 2 + 1 + 2 + nlen;
  size_t body = 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2 + ext;
  size_t total = 5 + 4 + body;
  if (nlen == 0 || nlen > 253 || total > cap)
    return -EINVAL;
  unsigned char *p = (unsigned char *)out;
  size_t i = 0;
  p[i++] = 0x16; /* handshake record */
  p[i++] = 3;
  p[i++] = 1;
  p[i++] = (unsigned char)((4 + body) >> 8);
  p[i++] = (unsigned char)(4 + body);
  p[i++] = 1; /* ClientHello */
  p[i++] = 0;
  p[i++] = (unsigned char)(body >> 8);
  p[i++] = (unsigned char)body;
  p[i++] = 3; /* client_version TLS 1.2 */
  p[i++] = 3;
  memset(p + i, 0x42, 32); /* random */
  i += 32;
  p[i++] = 0; /* no session id */
  p[i++] = 0;
  p[i++] = 2;
  p[i++] = 0x13; /* TLS_AES_128_GCM_SHA256 */
  p[i++] = 0x01;
  p[i++] = 1; /* compression: null */
  p[i++] = 0;
  p[i++] = (unsigned char)(ext >> 8);
  p[i++] = (unsigned char)ext;
  p[i++] = 0; /* server_name */
  p[i++] = 0;
  p[i++] = (unsigned char)((ext - 4) >> 8);
  p[i++] = (unsigned char)(ext - 4);
  p[i++] = (unsigned char)((nlen + 3) >> 8);
  p[i++] = (unsigned char)(nlen + 3);
  p[i++] = 0; /* host_name */
  p[i++] = (unsigned char)(nlen >> 8);
  p[i++] = (unsigned char)nlen;
  memcpy(p + i, sni, nlen);
  return (int)(i + nlen);
}

static int build_request(struct run *r) {
  const struct opts *o = r->o;
  const char *host = o->host ? o->host : o->target;
  int n;
  if (r->tunnel) {
    if (o->proxy == NULL) {
      if (o->client_hello == NULL)
        return 0;
      n = build_hello(r->req, REQ_MAX, o->client_hello);
      if (n < 0)
        return n;
      r->req_len = (size_t)n;
      return 0;
    }
    n = snprintf(r->req, REQ_MAX, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", o->target,
                 o->target);
  } else {
    n = snprintf(r->req, REQ_MAX,
                 "GET %s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: awf-bench\r\n%s\r\n",
                 o->proxy ? "http://" : "", o->proxy ? host : "", o->path, host,
                 o->mode == M_CLOSE ? "Connection: close\r\n" : "");
  }
  if (n < 0 || n >= REQ_MAX)
    return -EINVAL;
  r->req_len = (size_t)n;
  return 0;
}

static int run_client(const struct opts *o) {
  struct run *r = calloc(1, sizeof *r);
  if (r == NULL)
    return 1;
  r->o = o;
  r->loop = uv_default_loop();
  r->tunnel = o->mode == M_BULK || o->mode == M_SETUP || o->mode == M_IDLE;
  r->nconns = o->mode == M_IDLE ? o->count : o->concurrency;
  r->conns = calloc((size_t)r->nconns, sizeof *r->conns);
  r->buf = malloc(READ_BUF_SIZE);
  if (o->mode == M_RATE) {
    double want = o->rate * o->duration + 16;
    r->qcap = (size_t)want;
    r->queue = calloc(r->qcap, sizeof *r->queue);
    r->ready = calloc((size_t)r->nconns, sizeof *r->ready);
  }
  if (r->conns == NULL || r->buf == NULL ||
      (o->mode == M_RATE && (r->queue == NULL || r->ready == NULL))) {
    fprintf(stderr, "loadgen: out of memory\n");
    return 1;
  }
  if (parse_addr(o->proxy ? o->proxy : o->target, &r->peer) < 0 || build_request(r) < 0) {
    fprintf(stderr, "loadgen: bad --proxy/--target/--path\n");
    return 2;
  }
  for (int i = 0; i < r->nconns; i++)
    r->conns[i].run = r;
  r->t0 = uv_hrtime();
  r->last_scan = r->t0;
  r->t_count = r->t0 + (uint64_t)(o->warmup * NS);
  r->t_end = r->t0 + (uint64_t)(o->duration * NS);
  uv_timer_init(r->loop, &r->tick);
  uv_timer_init(r->loop, &r->hold);
  r->tick.data = r;
  r->hold.data = r;
  uv_timer_start(&r->tick, on_tick, 1, o->mode == M_RATE ? 1 : 10);
  uv_signal_init(r->loop, &r->sig);
  r->sig.data = r;
  uv_signal_start(&r->sig, on_signal, SIGTERM);
  if (o->mode == M_IDLE)
    open_more(r);
  else
    for (int i = 0; i < r->nconns; i++)
      conn_start(&r->conns[i]);
  uv_run(r->loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(r->loop) == 0 ? 0 : 1;
  free(r->queue);
  free(r->ready);
  free(r->buf);
  free(r->conns);
  free(r);
  return rc;
}

/* ---- server ------------------------------------------------------------------ */

static void on_alloc_srv(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  struct sconn *sc = h->data;
  (void)sz;
  *b = uv_buf_init(sc->srv->buf, READ_BUF_SIZE);
}

static void on_sconn_closed(uv_handle_t *h) { free(h->data); }

static void sconn_close(struct sconn *sc) {
  if (!uv_is_closing((uv_handle_t *)&sc->tcp))
    uv_close((uv_handle_t *)&sc->tcp, on_sconn_closed);
}

static void on_swritten(uv_write_t *w, int status);

static void source_write(struct sconn *sc, uv_write_t *w) {
  uv_buf_t b = uv_buf_init(sc->srv->blob, READ_BUF_SIZE);
  w->data = sc;
  if (uv_write(w, (uv_stream_t *)&sc->tcp, &b, 1, on_swritten) < 0)
    sconn_close(sc);
}

static void on_swritten(uv_write_t *w, int status) {
  struct sconn *sc = w->data;
  if (status < 0) {
    sconn_close(sc);
    return;
  }
  if (sc->source && !uv_is_closing((uv_handle_t *)&sc->tcp))
    source_write(sc, w);
}

static void on_sread(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  (void)b;
  if (nread < 0)
    sconn_close(s->data);
}

static void on_accept(uv_stream_t *server, int status) {
  struct srv *srv = server->data;
  if (status < 0)
    return;
  struct sconn *sc = calloc(1, sizeof *sc);
  if (sc == NULL)
    return;
  sc->srv = srv;
  sc->source = server == (uv_stream_t *)&srv->source;
  uv_tcp_init(srv->loop, &sc->tcp);
  sc->tcp.data = sc;
  if (uv_accept(server, (uv_stream_t *)&sc->tcp) < 0) {
    sconn_close(sc);
    return;
  }
  (void)uv_tcp_nodelay(&sc->tcp, 1);
  if (uv_read_start((uv_stream_t *)&sc->tcp, on_alloc_srv, on_sread) < 0) {
    sconn_close(sc);
    return;
  }
  if (sc->source) {
    source_write(sc, &sc->w[0]);
    source_write(sc, &sc->w[1]);
  } else {
    uv_buf_t b = uv_buf_init(srv->greeting, 1);
    sc->w[0].data = sc;
    if (uv_write(&sc->w[0], (uv_stream_t *)&sc->tcp, &b, 1, on_swritten) < 0)
      sconn_close(sc);
  }
}

static int srv_listen(struct srv *s, uv_tcp_t *t, const char *ip, const char *name) {
  struct sockaddr_storage ss;
  char spec[80];
  if (strchr(ip, ':') != NULL)
    snprintf(spec, sizeof spec, "[%s]:1", ip);
  else
    snprintf(spec, sizeof spec, "%s:1", ip);
  if (parse_addr(spec, &ss) < 0)
    return -EINVAL;
  if (ss.ss_family == AF_INET)
    ((struct sockaddr_in *)&ss)->sin_port = 0;
  else
    ((struct sockaddr_in6 *)&ss)->sin6_port = 0;
  uv_tcp_init(s->loop, t);
  t->data = s;
  int rc = uv_tcp_bind(t, (const struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)t, 4096, on_accept);
  if (rc < 0)
    return rc;
  struct sockaddr_storage got;
  int len = sizeof got;
  uv_tcp_getsockname(t, (struct sockaddr *)&got, &len);
  int port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                            : ((struct sockaddr_in6 *)&got)->sin6_port);
  printf("loadgen: %s %d\n", name, port);
  return 0;
}

static void srv_walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, h->type == UV_TCP && h->data != NULL && ((struct sconn *)h->data)->srv == arg
                    ? on_sconn_closed
                    : NULL);
}

static void srv_stop(struct srv *s) {
  /* Listeners, timers and signals carry the srv as data; connections an sconn. */
  s->source.data = NULL;
  s->greet.data = NULL;
  s->sigterm.data = NULL;
  s->sigint.data = NULL;
  s->life.data = NULL;
  uv_walk(s->loop, srv_walk_close, s);
}

static void on_srv_signal(uv_signal_t *sig, int signum) {
  (void)signum;
  if (sig->data != NULL)
    srv_stop(sig->data);
}

static void on_srv_life(uv_timer_t *t) {
  fprintf(stderr, "loadgen: server lifetime over\n");
  srv_stop(t->data);
}

static int run_server(const struct opts *o) {
  struct srv s;
  memset(&s, 0, sizeof s);
  s.loop = uv_default_loop();
  s.greeting[0] = '!';
  s.buf = malloc(READ_BUF_SIZE);
  s.blob = malloc(READ_BUF_SIZE);
  if (s.buf == NULL || s.blob == NULL)
    return 1;
  for (size_t i = 0; i < READ_BUF_SIZE; i++)
    s.blob[i] = (char)('a' + i % 26);
  if (srv_listen(&s, &s.source, o->listen, "source") < 0 ||
      srv_listen(&s, &s.greet, o->listen, "greet") < 0) {
    fprintf(stderr, "loadgen: cannot listen on %s\n", o->listen);
    return 1;
  }
  fflush(stdout);
  uv_signal_init(s.loop, &s.sigterm);
  uv_signal_init(s.loop, &s.sigint);
  s.sigterm.data = &s;
  s.sigint.data = &s;
  uv_signal_start(&s.sigterm, on_srv_signal, SIGTERM);
  uv_signal_start(&s.sigint, on_srv_signal, SIGINT);
  uv_timer_init(s.loop, &s.life);
  s.life.data = &s;
  uv_timer_start(&s.life, on_srv_life, (uint64_t)(o->max_seconds * 1000), 0);
  uv_run(s.loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(s.loop) == 0 ? 0 : 1;
  free(s.buf);
  free(s.blob);
  return rc;
}

/* ---- command line ---------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen server [--listen IP] [--max-seconds S]\n"
          "       loadgen bulk|setup|idle --target H:P [--proxy H:P] ...\n"
          "       loadgen close|rate --target H:P [--proxy H:P] --path P ...\n"
          "options: --concurrency N --count N --duration S --warmup S --hold S\n"
          "         --rate R --timeout S --expect-bytes N --host NAME --client-hello SNI\n");
}

static int parse_num(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
    return -EINVAL;
  *out = v;
  return 0;
}

static int parse_mode(const char *s, enum mode *m) {
  static const char *const names[] = {"server", "bulk", "setup", "close", "rate", "idle"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strcmp(s, names[i]) == 0) {
      *m = (enum mode)i;
      return 0;
    }
  }
  return -EINVAL;
}

static int parse_opt(struct opts *o, const char *name, const char *val) {
  double v;
  if (strcmp(name, "--proxy") == 0)
    o->proxy = val;
  else if (strcmp(name, "--target") == 0)
    o->target = val;
  else if (strcmp(name, "--path") == 0)
    o->path = val;
  else if (strcmp(name, "--listen") == 0)
    o->listen = val;
  else if (strcmp(name, "--host") == 0)
    o->host = val;
  else if (strcmp(name, "--client-hello") == 0)
    o->client_hello = val;
  else if (strcmp(name, "--concurrency") == 0 && parse_num(val, 1, MAX_CONNS, &v) == 0)
    o->concurrency = (int)v;
  else if (strcmp(name, "--count") == 0 && parse_num(val, 1, MAX_CONNS, &v) == 0)
    o->count = (int)v;
  else if (strcmp(name, "--duration") == 0 && parse_num(val, 0.1, MAX_SECONDS, &v) == 0)
    o->duration = v;
  else if (strcmp(name, "--warmup") == 0 && parse_num(val, 0, MAX_SECONDS, &v) == 0)
    o->warmup = v;
  else if (strcmp(name, "--hold") == 0 && parse_num(val, 0.1, MAX_SECONDS, &v) == 0)
    o->hold = v;
  else if (strcmp(name, "--rate") == 0 && parse_num(val, 1, 1e7, &v) == 0)
    o->rate = v;
  else if (strcmp(name, "--timeout") == 0 && parse_num(val, 0.1, MAX_SECONDS, &v) == 0)
    o->timeout = v;
  else if (strcmp(name, "--max-seconds") == 0 && parse_num(val, 1, 86400, &v) == 0)
    o->max_seconds = v;
  else if (strcmp(name, "--expect-bytes") == 0 && parse_num(val, -1, 1e15, &v) == 0)
    o->expect_bytes = (long long)v;
  else
    return -EINVAL;
  return 0;
}

static int check_opts(const struct opts *o) {
  if (o->mode == M_SERVER)
    return 0;
  if (o->target == NULL)
    return -EINVAL;
  if ((o->mode == M_CLOSE || o->mode == M_RATE) && (o->path == NULL || o->path[0] != '/'))
    return -EINVAL;
  if (o->mode == M_RATE && (o->rate <= 0 || o->rate * o->duration > MAX_QUEUE))
    return -EINVAL;
  if (o->mode != M_IDLE && o->warmup >= o->duration)
    return -EINVAL;
  return 0;
}

int main(int argc, char **argv) {
  struct opts o = {
      .listen = "127.0.0.1",
      .expect_bytes = -1,
      .concurrency = 1,
      .count = 1,
      .duration = 5,
      .hold = 60,
      .timeout = 10,
      .max_seconds = MAX_SECONDS,
  };
  if (argc < 2 || parse_mode(argv[1], &o.mode) < 0) {
    usage();
    return 2;
  }
  for (int i = 2; i < argc; i += 2) {
    if (i + 1 >= argc || parse_opt(&o, argv[i], argv[i + 1]) < 0) {
      fprintf(stderr, "loadgen: bad option %s\n", argv[i]);
      usage();
      return 2;
    }
  }
  if (check_opts(&o) < 0) {
    usage();
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  return o.mode == M_SERVER ? run_server(&o) : run_client(&o);
}
