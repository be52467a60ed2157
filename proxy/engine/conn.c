/* conn.c: the connection core: state, timers, the upstream slot, close and
 * linger, and the transport callbacks that route bytes and backpressure to
 * the connection's mode through its ops table. */
#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

#define LINGER_MS 5000

/* The metrics name the states by index (metrics.c's table, in this order). */
_Static_assert(CONN_CLOSING + 1 == AWF_METRICS_CONN_STATES &&
                   CONN_TUNNEL == AWF_METRICS_STATE_TUNNEL,
               "metrics.h's connection states follow enum conn_state");

const char *conn_state_name(enum conn_state s) {
  switch (s) {
  case CONN_ACCEPTED: return "accepted";
  case CONN_HTTP: return "http";
  case CONN_TUNNEL_HELLO: return "tunnel_hello";
  case CONN_TUNNEL: return "tunnel";
  case CONN_DRAINING: return "draining";
  case CONN_CLOSING: return "closing";
  }
  return "?";
}

const char *conn_timer_name(enum conn_timer k) {
  switch (k) {
  case T_NONE: return "none";
  case T_IDLE: return "idle";
  case T_HEADER: return "header";
  case T_EXCHANGE: return "exchange";
  case T_TUNNEL: return "tunnel";
  case T_HELLO: return "hello";
  case T_LINGER: return "linger";
  }
  return "?";
}

uint64_t conn_now_ms(const struct conn *c) {
  (void)c;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void conn_set_state(struct conn *c, enum conn_state s) {
  if (c->state == s)
    return;
  awf_proxy_diag(c->proxy, AWF_LOG_DEBUG, "conn %llu: %s -> %s (%s)", (unsigned long long)c->id,
                 conn_state_name(c->state), conn_state_name(s), c->ops ? c->ops->name : "-");
  awf_metrics_conn_state(c->proxy->metrics, (int)c->state, (int)s);
  c->state = s;
}

void conn_set_mode(struct conn *c, const struct conn_mode_ops *ops, void *mode,
                   enum conn_state s) {
  if (c->ops && c->ops->free)
    c->ops->free(c);
  c->ops = ops;
  c->mode = mode;
  conn_set_state(c, s);
}

/* ---- freeing ------------------------------------------------------------ */

static void handle_gone(struct conn *c) {
  if (--c->open_handles > 0)
    return;
  awf_proxy *p = c->proxy;
  awf_list_remove(&c->link);
  p->nconns--;
  awf_metrics_conn_state(p->metrics, (int)c->state, -1);
  awf_client_limits_release(p->client_limits, c->client_entry);
  if (c->ops && c->ops->free)
    c->ops->free(c);
  free(c);
  if (p->conn_released)
    p->conn_released(p);
}

static void on_timer_closed(uv_handle_t *h) { handle_gone(h->data); }

/* ---- the transports' callbacks ------------------------------------------ */

static void on_tr_read(void *owner, struct awf_transport *t, ssize_t nread,
                       const uv_buf_t *buf) {
  struct conn *c = owner;
  if (c->state == CONN_CLOSING || nread == 0 || !c->ops)
    return;
  if (nread > 0)
    conn_touch(c);
  if (t == c->client)
    c->ops->on_client_read(c, nread, buf);
  else if (t == c->up)
    c->ops->on_up_read(c, nread, buf);
}

/* One side's queue is full: stop reading the side that feeds it until it
 * drains. The same rule for every mode. */
static void on_tr_flow(void *owner, struct awf_transport *t, enum awf_transport_flow flow) {
  struct conn *c = owner;
  if (c->state == CONN_CLOSING)
    return;
  struct awf_transport *feeder = t == c->client ? c->up : t == c->up ? c->client : NULL;
  if (feeder)
    awf_transport_hold(feeder, flow == AWF_TRANSPORT_FULL);
  if (flow == AWF_TRANSPORT_DRAINED && c->ops && c->ops->on_drained)
    c->ops->on_drained(c, t);
}

static void on_tr_write_error(void *owner, struct awf_transport *t, int status) {
  (void)t;
  (void)status;
  conn_close(owner);
}

static void on_tr_shutdown(void *owner, struct awf_transport *t, int status) {
  struct conn *c = owner;
  if (status == UV_ECANCELED || c->state == CONN_CLOSING)
    return;
  if (c->state == CONN_DRAINING && t == c->client) {
    conn_close(c); /* the linger is over: FIN sent after the last write */
    return;
  }
  if (c->ops && c->ops->on_shutdown)
    c->ops->on_shutdown(c, t, status);
  else
    conn_close(c);
}

static void on_tr_closed(void *owner, struct awf_transport *t) {
  free(awf_tls_transport_of(t)); /* layered by conn_wrap_tls: allocated */
  handle_gone(owner);
}

const struct awf_transport_cbs conn_transport_cbs = {
    .on_read = on_tr_read,
    .on_flow = on_tr_flow,
    .on_write_error = on_tr_write_error,
    .on_shutdown = on_tr_shutdown,
    .on_closed = on_tr_closed,
};

/* ---- opening ------------------------------------------------------------ */

void conn_open(struct conn *c, awf_proxy *p, struct awf_transport *client) {
  c->proxy = p;
  c->client = client;
  c->state = CONN_ACCEPTED;
  uv_timer_init(p->loop, &c->timer);
  c->timer.data = c;
  c->open_handles = 2; /* timer, client */
  awf_list_push_front(&p->conns, &c->link);
  p->nconns++;
  awf_metrics_conn_state(p->metrics, -1, CONN_ACCEPTED);
}

void conn_open_tcp(struct conn *c, awf_proxy *p) {
  awf_tcp_transport_wrap(&c->client_tcp, &c->client_handle, false, &conn_transport_cbs, c,
                         p->readbuf, sizeof(p->readbuf));
  conn_open(c, p, &c->client_tcp.base);
}

/* ---- timers --------------------------------------------------------------- */

static unsigned timeout_for(const awf_proxy *p, enum conn_timer kind) {
  switch (kind) {
  case T_IDLE: return p->cfg.idle_timeout_ms;
  case T_HEADER: return p->cfg.header_timeout_ms;
  case T_EXCHANGE: return p->cfg.read_timeout_ms;
  case T_TUNNEL: return p->cfg.tunnel_idle_timeout_ms;
  case T_HELLO: return p->cfg.header_timeout_ms;
  case T_LINGER: return LINGER_MS;
  case T_NONE: break;
  }
  return 0;
}

static bool sliding(enum conn_timer kind) { return kind == T_EXCHANGE || kind == T_TUNNEL; }

static void on_conn_timer(uv_timer_t *t) {
  struct conn *c = t->data;
  uint64_t now = uv_now(c->proxy->loop);
  unsigned limit = timeout_for(c->proxy, c->timer_kind);
  /* Activity-based deadlines move with traffic without re-arming the timer
   * on every read: check here, and sleep again for what is left. */
  if (sliding(c->timer_kind) && now < c->last_active + limit) {
    uv_timer_start(&c->timer, on_conn_timer, c->last_active + limit - now, 0);
    return;
  }
  awf_proxy_diag(c->proxy, AWF_LOG_DEBUG, "conn %llu: %s timeout in state %s",
                 (unsigned long long)c->id, conn_timer_name(c->timer_kind),
                 conn_state_name(c->state));
  if (c->timer_kind == T_LINGER || !c->ops || !c->ops->on_timer) {
    conn_close(c);
    return;
  }
  c->ops->on_timer(c, c->timer_kind);
}

void conn_set_timer(struct conn *c, enum conn_timer kind) {
  c->timer_kind = kind;
  c->last_active = uv_now(c->proxy->loop);
  unsigned ms = timeout_for(c->proxy, kind);
  if (kind == T_NONE || ms == 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_conn_timer, ms, 0);
}

void conn_touch(struct conn *c) { c->last_active = uv_now(c->proxy->loop); }

/* ---- reading and the upstream slot ---------------------------------------- */

void conn_want_read(struct conn *c, struct awf_transport *t, bool want) {
  awf_transport_want_read(t, want && c->state != CONN_DRAINING && c->state != CONN_CLOSING);
}

void conn_attach_up(struct conn *c, struct awf_transport *t) {
  c->up = t;
  c->open_handles++;
  awf_transport_hold(t, c->client->full); /* the client's queue may be full already */
}

void conn_attach_up_tcp(struct conn *c, uv_tcp_t *tcp) {
  awf_tcp_transport_wrap(&c->up_tcp, tcp, true, &conn_transport_cbs, c, c->proxy->readbuf,
                         sizeof(c->proxy->readbuf));
  conn_attach_up(c, &c->up_tcp.base);
}

/* The client was held for this upstream's full queue: that is over. */
static void release_client(struct conn *c) {
  if (c->state != CONN_CLOSING)
    awf_transport_hold(c->client, false);
}

uv_tcp_t *conn_detach_up_tcp(struct conn *c) {
  if (c->up != &c->up_tcp.base)
    return NULL;
  c->up = NULL;
  c->open_handles--; /* the handle is the pool's now: no close to wait for */
  release_client(c);
  return awf_tcp_transport_unwrap(&c->up_tcp);
}

void conn_drop_upstream(struct conn *c) {
  struct awf_transport *t = c->up;
  if (!t)
    return;
  c->up = NULL;
  release_client(c);
  awf_transport_close(t); /* on_tr_closed counts it gone */
}

int conn_wrap_tls(struct conn *c, struct awf_transport **side, SSL_CTX *ctx,
                  const struct awf_tls_params *prm) {
  struct awf_tls_transport *tt = malloc(sizeof(*tt));
  if (!tt)
    return UV_ENOMEM;
  int rc = awf_tls_transport_wrap(tt, c->proxy->loop, *side, ctx, prm, &conn_transport_cbs, c,
                                  c->proxy->readbuf, sizeof(c->proxy->readbuf));
  if (rc < 0) {
    free(tt);
    return rc;
  }
  /* Backpressure in force moves to the layer: the conn holds that now. */
  tt->base.held = (*side)->held;
  awf_transport_hold(*side, false);
  *side = &tt->base;
  return 0;
}

/* ---- closing ---------------------------------------------------------------- */

void conn_close(struct conn *c) {
  if (c->state == CONN_CLOSING)
    return;
  conn_set_state(c, CONN_CLOSING); /* first: a close from inside on_close is a no-op */
  /* Mode-specific teardown writes any pending log line first. */
  if (c->ops && c->ops->on_close)
    c->ops->on_close(c);
  if (c->dial) {
    awf_dial_cancel(c->dial);
    c->dial = NULL;
  }
  conn_drop_upstream(c);
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
  awf_transport_close(c->client);
}

void conn_close_after_writes(struct conn *c) {
  if (c->state == CONN_CLOSING || c->state == CONN_DRAINING)
    return;
  conn_set_state(c, CONN_DRAINING);
  awf_transport_want_read(c->client, false);
  if (c->up)
    awf_transport_want_read(c->up, false);
  if (awf_transport_shutdown(c->client) < 0) {
    conn_close(c);
    return;
  }
  conn_set_timer(c, T_LINGER);
}
