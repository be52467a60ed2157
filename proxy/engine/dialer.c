/* dialer.c: resolve, filter by address policy, connect in order; through a
 * parent proxy, connect to it and ask it for a CONNECT tunnel. */
#include "dialer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostname.h"
#include "metrics.h"
#include "netaddr.h"
#include "proxy.h"
#include "stream_write.h"

/* One connect attempt. tcp comes first so that whoever ends up owning it can
 * free() the handle pointer in its close callback. */
struct attempt {
  uv_tcp_t tcp;
  uv_connect_t req;
  awf_dial *dial;
  uint64_t start_ns; /* uv_hrtime() at the connect */
};

struct awf_dial {
  uv_loop_t *loop;
  awf_resolver *resolver;
  const awf_addr_policy *policy;
  unsigned timeout_ms;
  uint16_t port;
  const awf_proxy *debug;
  const awf_proxy *proxy; /* warnings about the parent */
  char host[600];         /* "name:port" (and the parent's) for diagnostics */
  struct awf_metrics *metrics;
  awf_dial_cb cb;
  void *arg;
  awf_resolve_req *rreq;
  uv_timer_t timer; /* connect timeout, and deferral of early results */
  struct attempt *cur;
  unsigned open_handles; /* timer + attempts not yet closed */
  bool finished;         /* callback ran or dial cancelled */
  bool host_target;      /* the host's services (host_access.h): no address policy */
  /* Through a parent proxy: the addresses are the parent's (no address
   * policy), and once connected the CONNECT exchange runs on d->cur. */
  const struct awf_upstream_proxy *via;
  char origin[256];
  uint16_t origin_port;
  bool handshake;  /* the CONNECT went out (or is going): its answer is read */
  bool write_done; /* the CONNECT request is all written */
  bool head_done;  /* the answer's head was read and is a 2xx */
  size_t resp_len;
  char resp[AWF_CONNECT_RESPONSE_MAX];
  size_t next;
  struct awf_dial_result result;
  struct awf_addr_list addrs; /* only addresses the policy admits */
};

static void maybe_free(awf_dial *d) {
  if (d->finished && d->open_handles == 0)
    free(d);
}

static void on_handle_closed(uv_handle_t *h) {
  awf_dial *d = h->data;
  d->open_handles--;
  maybe_free(d);
}

static void on_attempt_closed(uv_handle_t *h) {
  struct attempt *a = (struct attempt *)h;
  awf_dial *d = a->dial;
  free(a);
  d->open_handles--;
  maybe_free(d);
}

static void abandon_attempt(awf_dial *d) {
  if (d->cur) {
    uv_close((uv_handle_t *)&d->cur->tcp, on_attempt_closed);
    d->cur = NULL;
  }
}

/* Report once, then release what is left. */
static void finish(awf_dial *d) {
  awf_dial_cb cb = d->cb;
  struct awf_dial_result r = d->result;
  d->finished = true;
  uv_timer_stop(&d->timer);
  uv_close((uv_handle_t *)&d->timer, on_handle_closed);
  cb(&r, d->arg);
}

static void fail(awf_dial *d, int status, enum awf_reason reason) {
  d->result.status = status;
  d->result.reason = reason;
  finish(d);
}

static void try_next(awf_dial *d);
static void on_timer(uv_timer_t *t);

/* The current attempt is the upstream: its handle passes to the caller. */
static void hand_over(awf_dial *d) {
  struct attempt *a = d->cur;
  d->cur = NULL;
  d->open_handles--; /* ownership of the handle passes to the caller */
  a->tcp.data = NULL;
  d->result.status = 0;
  d->result.reason = AWF_REASON_NONE;
  d->result.tcp = &a->tcp;
  finish(d);
}

/* The parent proxy failed this dial: no other address is tried once one
 * answered (it is the parent's answer, not a dead address). */
static void proxy_fail(awf_dial *d, int status, const char *what) {
  bool warn = d->result.proxy_status == 407;
  if (d->debug || (warn && d->proxy))
    awf_proxy_diag(d->debug ? d->debug : d->proxy, warn ? AWF_LOG_WARN : AWF_LOG_DEBUG,
                   "dial %s: upstream proxy: %s%s", d->host, what,
                   warn ? " (check the credentials in --upstream-proxy)" : "");
  abandon_attempt(d);
  fail(d, status, AWF_REASON_UPSTREAM_PROXY_FAILED);
}

static void on_handshake_written(uv_stream_t *s, int status, void *arg) {
  awf_dial *d = arg;
  if (status == UV_ECANCELED || !d->cur || (uv_stream_t *)&d->cur->tcp != s)
    return; /* abandoned */
  if (status < 0) {
    proxy_fail(d, status, uv_strerror(status));
    return;
  }
  d->write_done = true;
  if (d->head_done)
    hand_over(d);
}

/* Never more than the head can still hold: the origin's first bytes stay in
 * the socket for the caller. */
static void on_handshake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  awf_dial *d = h->data;
  (void)suggested;
  size_t want = awf_connect_response_want(d->resp, d->resp_len);
  *buf = uv_buf_init(d->resp + d->resp_len, (unsigned)want);
}

static void on_handshake_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  awf_dial *d = s->data;
  (void)buf;
  if (nread == 0)
    return;
  if (nread < 0) {
    proxy_fail(d, (int)nread,
               nread == UV_EOF ? "closed the connection before answering the CONNECT"
                               : uv_strerror((int)nread));
    return;
  }
  d->resp_len += (size_t)nread;
  int code = 0;
  enum awf_connect_status st = awf_connect_response_parse(d->resp, d->resp_len, &code);
  d->result.proxy_status = code;
  if (st == AWF_CONNECT_BAD) {
    proxy_fail(d, UV_EPROTO, "the answer to CONNECT is not an HTTP/1.x response head");
    return;
  }
  if (st == AWF_CONNECT_NEED_MORE)
    return;
  uv_read_stop(s);
  if (code < 200 || code > 299) {
    char what[64];
    snprintf(what, sizeof(what), "answered the CONNECT with %d", code);
    proxy_fail(d, UV_ECONNREFUSED, what);
    return;
  }
  if (d->debug)
    awf_proxy_diag(d->debug, AWF_LOG_DEBUG, "dial %s: upstream proxy: tunnel open (%d)",
                   d->host, code);
  d->head_done = true;
  if (d->write_done)
    hand_over(d);
}

/* Connected to the parent: ask for the tunnel, read its answer, all within
 * the connect timeout. */
static void start_handshake(awf_dial *d) {
  char req[AWF_CONNECT_REQUEST_MAX];
  struct attempt *a = d->cur;
  int n = awf_connect_request(req, sizeof(req), d->via, d->origin, d->origin_port);
  if (n < 0) {
    proxy_fail(d, UV_EINVAL, "the host cannot be written in a CONNECT request");
    return;
  }
  if (d->debug)
    awf_proxy_diag(d->debug, AWF_LOG_DEBUG, "dial %s: upstream proxy: CONNECT %s%s", d->host,
                   d->origin, d->via->auth[0] ? " (with Proxy-Authorization)" : "");
  d->handshake = true;
  d->result.proxy_reached = true;
  a->tcp.data = d;
  uv_buf_t b = uv_buf_init(req, (unsigned)n);
  int rc = awf_stream_write((uv_stream_t *)&a->tcp, &b, 1, on_handshake_written, d);
  explicit_bzero(req, sizeof(req)); /* the credentials */
  if (rc < 0) {
    proxy_fail(d, rc, uv_strerror(rc));
    return;
  }
  d->write_done = rc == 0;
  rc = uv_read_start((uv_stream_t *)&a->tcp, on_handshake_alloc, on_handshake_read);
  if (rc < 0) {
    proxy_fail(d, rc, uv_strerror(rc));
    return;
  }
  uv_timer_start(&d->timer, on_timer, d->timeout_ms, 0);
}

/* The connect of the current attempt finished or timed out. */
static void observe_connect(awf_dial *d) {
  if (d->metrics && d->cur)
    awf_metrics_observe(&d->metrics->connect, (uv_hrtime() - d->cur->start_ns) / 1000);
}

static void on_connect(uv_connect_t *req, int status) {
  struct attempt *a = req->data;
  awf_dial *d = a->dial;
  if (status == UV_ECANCELED || d->cur != a)
    return; /* this attempt was abandoned (timeout or cancel) */
  observe_connect(d);
  if (status == 0) {
    if (d->via)
      start_handshake(d);
    else
      hand_over(d);
    return;
  }
  d->result.status = status;
  if (d->debug)
    awf_proxy_diag(d->debug, AWF_LOG_DEBUG, "dial %s: %s", d->host, uv_strerror(status));
  abandon_attempt(d);
  try_next(d);
}

static void on_timer(uv_timer_t *t) {
  awf_dial *d = t->data;
  if (d->cur && d->handshake) {
    proxy_fail(d, UV_ETIMEDOUT, "no answer to the CONNECT within the connect timeout");
    return;
  }
  if (d->cur) { /* connect timeout for the current address */
    observe_connect(d);
    d->result.status = UV_ETIMEDOUT;
    if (d->debug)
      awf_proxy_diag(d->debug, AWF_LOG_DEBUG, "dial %s: timed out after %u ms", d->host,
                     d->timeout_ms);
    abandon_attempt(d);
  }
  try_next(d);
}

static void try_next(awf_dial *d) {
  while (d->next < d->addrs.n) {
    struct sockaddr_storage *ss = &d->addrs.addr[d->next++];
    awf_sockaddr_set_port(ss, d->port);
    d->result.peer = *ss;
    d->result.have_peer = true;
    if (d->debug) {
      char text[AWF_ADDRSTRLEN];
      awf_proxy_diag(d->debug, AWF_LOG_DEBUG, "dial %s: trying %s", d->host,
                     awf_sockaddr_format((struct sockaddr *)ss, text, sizeof(text)));
    }

    struct attempt *a = calloc(1, sizeof(*a));
    if (!a) {
      fail(d, UV_ENOMEM, AWF_REASON_UPSTREAM_UNREACHABLE);
      return;
    }
    a->dial = d;
    a->req.data = a;
    uv_tcp_init(d->loop, &a->tcp);
    d->open_handles++;
    d->cur = a;
    uv_tcp_nodelay(&a->tcp, 1);
    a->start_ns = uv_hrtime();
    int rc = uv_tcp_connect(&a->req, &a->tcp, (struct sockaddr *)ss, on_connect);
    if (rc == 0) {
      uv_timer_start(&d->timer, on_timer, d->timeout_ms, 0);
      return;
    }
    d->result.status = rc;
    abandon_attempt(d);
  }
  fail(d, d->result.status ? d->result.status : UV_ECONNREFUSED,
       d->via                             ? AWF_REASON_UPSTREAM_PROXY_FAILED
       : d->result.status == UV_ETIMEDOUT ? AWF_REASON_TIMEOUT
                                          : AWF_REASON_UPSTREAM_UNREACHABLE);
}

/* Keep the admitted addresses; fail as private_destination if none is. */
static void take_addresses(awf_dial *d, const struct awf_addr_list *in) {
  d->addrs.n = 0;
  for (size_t i = 0; i < in->n; i++) {
    const char *why = d->host_target || d->via /* the parent: named by the operator */
                          ? NULL
                          : awf_addr_policy_check(d->policy,
                                                  (const struct sockaddr *)&in->addr[i]);
    if (why == NULL) {
      d->addrs.addr[d->addrs.n++] = in->addr[i];
    } else if (d->debug) {
      char text[AWF_ADDRSTRLEN];
      awf_proxy_diag(d->debug, AWF_LOG_DEBUG,
                     "dial %s: %s refused by the address policy "
                     "(%s; --allow-destination-cidrs)",
                     d->host,
                     awf_sockaddr_format((const struct sockaddr *)&in->addr[i], text,
                                         sizeof(text)),
                     why);
    }
  }
  if (d->addrs.n == 0) {
    d->result.have_peer = in->n > 0;
    if (in->n > 0) {
      d->result.peer = in->addr[0];
      awf_sockaddr_set_port(&d->result.peer, d->port);
    }
    fail(d, -EACCES, AWF_REASON_PRIVATE_DESTINATION);
    return;
  }
  try_next(d);
}

static void on_resolved(int status, const struct awf_addr_list *addrs, void *arg) {
  awf_dial *d = arg;
  d->rreq = NULL;
  if (status < 0) {
    if (d->debug && d->via)
      awf_proxy_diag(d->debug, AWF_LOG_DEBUG, "dial %s: the upstream proxy's name: %s", d->host,
                     uv_strerror(status));
    fail(d, status, d->via ? AWF_REASON_UPSTREAM_PROXY_FAILED : AWF_REASON_DNS_FAILURE);
    return;
  }
  take_addresses(d, addrs);
}

/* Cache hits and literals are known at once, but the callback must not run
 * inside awf_dial_start: defer through the timer. */
static void on_deferred_start(uv_timer_t *t) {
  awf_dial *d = t->data;
  struct awf_addr_list copy = d->addrs;
  take_addresses(d, &copy);
}

int awf_dial_start(const struct awf_dial_params *prm, awf_dial_cb cb, void *arg,
                   awf_dial **out) {
  awf_dial *d = calloc(1, sizeof(*d));
  if (!d)
    return -ENOMEM;
  d->loop = prm->loop;
  d->resolver = prm->resolver;
  d->policy = prm->policy;
  d->timeout_ms = prm->connect_timeout_ms ? prm->connect_timeout_ms : 10000;
  d->port = prm->port;
  d->debug = prm->debug;
  d->proxy = prm->proxy;
  d->metrics = prm->metrics;
  d->cb = cb;
  d->arg = arg;
  uv_timer_init(d->loop, &d->timer);
  d->timer.data = d;
  d->open_handles = 1;

  struct sockaddr_storage lit;
  const char *name = prm->host;
  int rc;
  if (awf_host_access_targets(prm->host_access, prm->host, strlen(prm->host), prm->port,
                              &d->addrs) >= 0) {
    d->host_target = d->addrs.n > 0; /* none: the host on a port not its own, refused below */
    rc = 1;
  } else {
    if (prm->via && !awf_upstream_proxy_bypass(prm->via, prm->host)) {
      d->via = prm->via;
      snprintf(d->origin, sizeof(d->origin), "%s", prm->host);
      d->origin_port = prm->port;
      d->port = prm->via->port;
      name = prm->via->host; /* the parent resolves the origin's name */
    }
    if (awf_ip_literal_parse(name, strlen(name), &lit) != 0) {
      d->addrs.n = 1;
      d->addrs.addr[0] = lit;
      rc = 1;
    } else {
      rc = awf_resolve(d->resolver, name, &d->addrs, on_resolved, d, &d->rreq);
    }
  }
  if (d->via)
    snprintf(d->host, sizeof(d->host), "%s:%u via %s:%u", prm->host, prm->port, name, d->port);
  else
    snprintf(d->host, sizeof(d->host), "%s:%u", prm->host, prm->port);
  d->result.via_proxy = d->via != NULL;
  if (rc < 0) {
    d->finished = true;
    uv_close((uv_handle_t *)&d->timer, on_handle_closed);
    return rc;
  }
  if (rc == 1)
    uv_timer_start(&d->timer, on_deferred_start, 0, 0);
  *out = d;
  return 0;
}

void awf_dial_cancel(awf_dial *d) {
  if (d->finished)
    return;
  if (d->rreq) {
    awf_resolve_cancel(d->rreq);
    d->rreq = NULL;
  }
  abandon_attempt(d);
  d->finished = true;
  uv_timer_stop(&d->timer);
  uv_close((uv_handle_t *)&d->timer, on_handle_closed);
}
