/* dialer.c: resolve, filter by address policy, connect in order. */
#include "dialer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostname.h"
#include "metrics.h"
#include "netaddr.h"
#include "proxy.h"

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
  struct awf_metrics *metrics;
  char host[256]; /* for debug lines only */
  awf_dial_cb cb;
  void *arg;
  awf_resolve_req *rreq;
  uv_timer_t timer; /* connect timeout, and deferral of early results */
  struct attempt *cur;
  unsigned open_handles; /* timer + attempts not yet closed */
  bool finished;         /* callback ran or dial cancelled */
  bool host_target;      /* the host's services (host_access.h): no address policy */
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
    d->cur = NULL;
    d->open_handles--; /* ownership of the handle passes to the caller */
    a->tcp.data = NULL;
    d->result.status = 0;
    d->result.reason = AWF_REASON_NONE;
    d->result.tcp = &a->tcp;
    finish(d);
    return;
  }
  d->result.status = status;
  if (d->debug)
    awf_proxy_diag(d->debug, AWF_LOG_DEBUG, "dial %s:%u: %s", d->host, d->port,
                   uv_strerror(status));
  abandon_attempt(d);
  try_next(d);
}

static void on_timer(uv_timer_t *t) {
  awf_dial *d = t->data;
  if (d->cur) { /* connect timeout for the current address */
    observe_connect(d);
    d->result.status = UV_ETIMEDOUT;
    if (d->debug)
      awf_proxy_diag(d->debug, AWF_LOG_DEBUG, "dial %s:%u: timed out after %u ms", d->host,
                     d->port, d->timeout_ms);
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
      awf_proxy_diag(d->debug, AWF_LOG_DEBUG, "dial %s:%u: trying %s", d->host, d->port,
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
       d->result.status == UV_ETIMEDOUT ? AWF_REASON_TIMEOUT : AWF_REASON_UPSTREAM_UNREACHABLE);
}

/* Keep the admitted addresses; fail as private_destination if none is. */
static void take_addresses(awf_dial *d, const struct awf_addr_list *in) {
  d->addrs.n = 0;
  for (size_t i = 0; i < in->n; i++) {
    const char *why = d->host_target
                          ? NULL
                          : awf_addr_policy_check(d->policy,
                                                  (const struct sockaddr *)&in->addr[i]);
    if (why == NULL) {
      d->addrs.addr[d->addrs.n++] = in->addr[i];
    } else if (d->debug) {
      char text[AWF_ADDRSTRLEN];
      awf_proxy_diag(d->debug, AWF_LOG_DEBUG,
                     "dial %s:%u: %s refused by the address policy "
                     "(%s; --allow-destination-cidrs)",
                     d->host, d->port,
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
    fail(d, status, AWF_REASON_DNS_FAILURE);
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
  d->metrics = prm->metrics;
  if (d->debug)
    snprintf(d->host, sizeof(d->host), "%s", prm->host);
  d->cb = cb;
  d->arg = arg;
  uv_timer_init(d->loop, &d->timer);
  d->timer.data = d;
  d->open_handles = 1;

  struct sockaddr_storage lit;
  int rc;
  if (awf_host_access_targets(prm->host_access, prm->host, strlen(prm->host), prm->port,
                              &d->addrs) >= 0) {
    d->host_target = d->addrs.n > 0; /* none: the host on a port not its own, refused below */
    rc = 1;
  } else if (awf_ip_literal_parse(prm->host, strlen(prm->host), &lit) != 0) {
    d->addrs.n = 1;
    d->addrs.addr[0] = lit;
    rc = 1;
  } else {
    rc = awf_resolve(d->resolver, prm->host, &d->addrs, on_resolved, d, &d->rreq);
  }
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
