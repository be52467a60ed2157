/* tunnel.c: a CONNECT tunnel. After "200 Connection established", the first
 * client bytes are inspected: a TLS ClientHello must name the CONNECT host in
 * its SNI (and that name must be admitted for TLS), or the tunnel is closed
 * as sni_mismatch. Then bytes are relayed both ways with backpressure and
 * half-close, holding no buffer while nothing waits to be written. A tunnel
 * whose read fills the whole read buffer carries a bulk transfer: it moves
 * to splice_relay.c, which relays through pipes without copying. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "host_access.h"
#include "hostname.h"
#include "sni.h"
#include "splice_relay.h"
#include "stream_write.h"

struct tunnel_state {
  uint64_t started_ms;
  int64_t bytes_up, bytes_down;
  uint8_t *hello;          /* client bytes held until the hello is judged */
  size_t hello_len;
  bool logged, ech, sni_seen;
  bool client_bp, up_bp;   /* reading stopped because the peer's queue is full */
  bool would_deny;
  bool transparent;        /* redirected TLS: no CONNECT, the SNI is the name */
  bool raw;                /* redirected, judged before (SSH, the host's services):
                              any protocol, no hello, no TLS alert */
  const char *event;       /* the log's event when not "tls"/"connect" (raw: "tcp") */
  bool dialling;           /* transparent: holding the hello while we dial */
  bool splice_wanted;      /* a read filled the buffer: splice once writes drain */
  bool splice_failed;      /* no pipes to be had: stay on the libuv path */
  bool host_access;        /* admitted as one of the host's services */
  awf_splice *splice;      /* set: splice_relay.c owns the relay */
  enum awf_reason audit_reason;
  uint64_t req;            /* CONNECT: the request's number, for the log */
  uint16_t port;
  char host[256];
  char dial[AWF_ADDRSTRLEN]; /* raw: dial this address instead of the name */
  char sni[256];
  char upstream[AWF_ADDRSTRLEN];
  char resolved[AWF_ADDRSTRLEN]; /* private_destination: the address refused */
};

static void on_tclient_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_tup_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* The tunnel's record as far as it is known. */
static void tunnel_record(struct conn *c, struct awf_log_record *r, enum awf_decision decision,
                          enum awf_reason reason) {
  struct tunnel_state *t = c->tun;
  awf_log_record_init(r);
  r->event = t->event ? t->event : t->raw ? "tcp" : t->transparent ? "tls" : "connect";
  r->req = t->req;
  r->method = t->transparent ? NULL : "CONNECT";
  if (t->host[0]) {
    r->host = t->host;
    r->host_len = strlen(t->host);
  }
  r->port = t->port;
  r->original_dst = c->transparent ? c->orig_dst_addr : NULL;
  if (t->sni_seen) {
    r->sni = t->sni;
    r->sni_len = strlen(t->sni);
  }
  r->ech = t->ech;
  r->decision = decision;
  r->reason = reason;
  r->would_deny = t->would_deny;
  if (t->would_deny && t->audit_reason)
    r->reason = t->audit_reason;
  if (t->host_access && decision == AWF_ALLOW)
    r->reason = AWF_REASON_HOST_ACCESS;
}

static void log_tunnel(struct conn *c, enum awf_decision decision, enum awf_reason reason) {
  struct tunnel_state *t = c->tun;
  if (t->logged)
    return;
  t->logged = true;
  struct awf_log_record r;
  tunnel_record(c, &r, decision, reason);
  r.status = t->transparent ? -1 : 200;
  r.upstream = t->upstream[0] ? t->upstream : NULL;
  r.resolved = t->resolved[0] ? t->resolved : NULL;
  r.bytes_up = t->bytes_up;
  r.bytes_down = t->bytes_down;
  r.ts_ms = conn_now_ms(c);
  r.duration_ms = (int64_t)(r.ts_ms - t->started_ms);
  conn_log(c, &r);
}

static void update_reading(struct conn *c) {
  struct tunnel_state *t = c->tun;
  if (t->splice)
    return;
  bool want_client = !t->client_bp && !t->dialling && !c->client_eof && !c->draining;
  if (want_client != c->client_reading) {
    if (want_client)
      uv_read_start((uv_stream_t *)&c->client, conn_alloc_cb, on_tclient_read);
    else
      uv_read_stop((uv_stream_t *)&c->client);
    c->client_reading = want_client;
  }
  bool want_up = c->up && !t->up_bp && !c->up_eof && !c->draining;
  if (c->up && want_up != c->up_reading) {
    if (want_up)
      uv_read_start((uv_stream_t *)c->up, conn_alloc_cb, on_tup_read);
    else
      uv_read_stop((uv_stream_t *)c->up);
    c->up_reading = want_up;
  }
}

static void on_splice_bytes(void *arg, int dir, size_t n) {
  struct conn *c = arg;
  c->last_active = uv_now(c->proxy->loop);
  if (dir == 0)
    c->tun->bytes_up += (int64_t)n;
  else
    c->tun->bytes_down += (int64_t)n;
}

static void on_splice_done(void *arg, int status) {
  struct conn *c = arg;
  if (status < 0)
    awf_proxy_diag(c->proxy, AWF_LOG_DEBUG, "tunnel %s: %s", c->tun->upstream,
                   uv_strerror(status));
  conn_close(c); /* both FINs passed on, or a side failed */
}

/* Hand a bulk tunnel to splice_relay.c once nothing waits in libuv's write
 * queues (their bytes must reach the sockets first). */
static void maybe_splice(struct conn *c) {
  static const struct awf_splice_cbs cbs = {on_splice_bytes, on_splice_done};
  struct tunnel_state *t = c->tun;
  uv_os_fd_t a, b;
  if (!t->splice_wanted || t->splice || t->splice_failed || c->phase != PH_TUNNEL || !c->up ||
      c->client_eof || c->up_eof || c->draining ||
      uv_stream_get_write_queue_size((uv_stream_t *)&c->client) > 0 ||
      uv_stream_get_write_queue_size((uv_stream_t *)c->up) > 0 ||
      uv_fileno((uv_handle_t *)&c->client, &a) < 0 || uv_fileno((uv_handle_t *)c->up, &b) < 0)
    return;
  uv_read_stop((uv_stream_t *)&c->client);
  uv_read_stop((uv_stream_t *)c->up);
  c->client_reading = c->up_reading = false;
  int rc = awf_splice_start(c->proxy->loop, a, b, &cbs, c, &t->splice);
  if (rc < 0) {
    t->splice = NULL;
    t->splice_failed = true;
    awf_proxy_diag(c->proxy, AWF_LOG_DEBUG, "tunnel %s: no splice: %s", t->upstream,
                   uv_strerror(rc));
    update_reading(c);
  }
}

/* A write to `to` finished draining: resume reading the side that feeds it. */
static void on_drained(uv_stream_t *to, int status, void *arg) {
  struct conn *c = arg;
  if (status == UV_ECANCELED || c->phase == PH_CLOSING)
    return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (uv_stream_get_write_queue_size(to) >= AWF_WRITE_HIGH_WATER / 2)
    return;
  if (to == (uv_stream_t *)&c->client)
    c->tun->up_bp = false;
  else
    c->tun->client_bp = false;
  update_reading(c);
  maybe_splice(c);
}

static int relay(struct conn *c, uv_stream_t *to, const char *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int rc = awf_stream_write(to, &b, 1, on_drained, c);
  if (rc < 0)
    return rc;
  if (rc == 1 && uv_stream_get_write_queue_size(to) > AWF_WRITE_HIGH_WATER) {
    if (to == (uv_stream_t *)&c->client)
      c->tun->up_bp = true;
    else
      c->tun->client_bp = true;
    update_reading(c);
  }
  return 0;
}

static void deny_tunnel(struct conn *c, enum awf_reason reason) {
  /* A CONNECT client already has its 200, a redirected one expects a TLS
   * server: a fatal alert is the clearest thing left to say before closing
   * (reason.h: unrecognized_name when no usable name was sent, else
   * access_denied). */
  enum awf_tls_alert a = c->tun->raw ? AWF_TLS_ALERT_NONE /* not TLS: nothing to say */
                                     : awf_reason_tls_alert(reason);
  char alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, (char)a};
  log_tunnel(c, AWF_DENY, reason);
  free(c->tun->hello);
  c->tun->hello = NULL;
  c->tun->hello_len = 0;
  c->tun->dialling = false;
  if (c->dial) { /* a timeout while dialling: the dial must not relay the freed hello */
    awf_dial_cancel(c->dial);
    c->dial = NULL;
  }
  conn_drop_upstream(c);
  uv_buf_t b = uv_buf_init((char *)alert, sizeof(alert));
  if (a != AWF_TLS_ALERT_NONE)
    awf_stream_write((uv_stream_t *)&c->client, &b, 1, NULL, NULL);
  conn_close_after_writes(c);
}

/* The ClientHello's facts for the judge (policy.h); its ECH and server name
 * are kept for the log. A transparent tunnel's empty name is no name. */
static struct awf_hello_facts hello_facts(struct conn *c, enum awf_hello_status st,
                                          const struct awf_tls_hello *hello) {
  struct tunnel_state *t = c->tun;
  struct awf_hello_facts f = {.complete = st == AWF_HELLO_OK};
  if (!f.complete)
    return f;
  t->ech = hello->ech;
  f.has_sni = hello->has_sni;
  f.sni_multiple = hello->sni_multiple;
  f.sni = hello->sni;
  f.sni_len = hello->sni_len;
  if (hello->has_sni && (hello->sni_len > 0 || !t->transparent)) {
    t->sni_seen = true;
    memcpy(t->sni, hello->sni, hello->sni_len);
    t->sni[hello->sni_len] = '\0';
  }
  return f;
}

static void enter_relay(struct conn *c) {
  c->phase = PH_TUNNEL;
  conn_set_timer(c, T_TUNNEL);
}

static void on_transparent_dialled(const struct awf_dial_result *r, void *arg) {
  struct conn *c = arg;
  struct tunnel_state *t = c->tun;
  c->dial = NULL;
  t->dialling = false;
  if (r->status == 0) /* only a connection made is an upstream */
    awf_sockaddr_format((const struct sockaddr *)&r->peer, t->upstream, sizeof(t->upstream));
  if (r->status < 0) {
    if (r->reason == AWF_REASON_PRIVATE_DESTINATION && r->have_peer)
      awf_sockaddr_format_ip((const struct sockaddr *)&r->peer, t->resolved, sizeof(t->resolved));
    deny_tunnel(c, r->reason);
    return;
  }
  c->up = r->tcp;
  c->up->data = c;
  enter_relay(c);
  t->bytes_up += (int64_t)t->hello_len;
  int rc = t->hello_len ? relay(c, (uv_stream_t *)c->up, (const char *)t->hello, t->hello_len) : 0;
  free(t->hello);
  t->hello = NULL;
  if (rc < 0) {
    conn_close(c);
    return;
  }
  update_reading(c);
}

/* Dial the name from the SNI on the port the client asked for. The original
 * destination address is never used: an SNI of an allowed name sent to some
 * other IP reaches the allowed name or nothing. */
static void dial_transparent(struct conn *c) {
  struct tunnel_state *t = c->tun;
  awf_proxy *px = c->proxy;
  struct awf_dial_params prm = {
      .loop = px->loop, .resolver = px->cfg.resolver, .policy = px->cfg.policy,
      .connect_timeout_ms = px->cfg.connect_timeout_ms, .host = t->dial[0] ? t->dial : t->host,
      .port = t->port, .host_access = px->cfg.host_access,
      .debug = px->cfg.log_level == AWF_LOG_DEBUG ? px : NULL,
  };
  t->dialling = true;
  update_reading(c);
  if (awf_dial_start(&prm, on_transparent_dialled, c, &c->dial) < 0) {
    c->dial = NULL;
    t->dialling = false;
    deny_tunnel(c, AWF_REASON_DNS_FAILURE);
  }
}

/* Client bytes before the tunnel is judged. */
static void inspect(struct conn *c, const char *data, size_t len) {
  struct tunnel_state *t = c->tun;
  if (!t->hello && (uint8_t)data[0] != 0x16 && t->transparent) {
    deny_tunnel(c, AWF_REASON_BAD_CLIENT_HELLO); /* a TLS port, but not TLS */
    return;
  }
  if (!t->hello && (uint8_t)data[0] != 0x16) { /* not TLS: a raw TCP tunnel */
    enter_relay(c);
    t->bytes_up += (int64_t)len;
    if (relay(c, (uv_stream_t *)c->up, data, len) < 0)
      conn_close(c);
    return;
  }
  if (!t->hello) {
    t->hello = malloc(AWF_HELLO_BUFFER_MAX);
    if (!t->hello) {
      conn_close(c);
      return;
    }
    conn_set_timer(c, T_HELLO);
  }
  size_t room = AWF_HELLO_BUFFER_MAX - t->hello_len;
  size_t take = len < room ? len : room;
  memcpy(t->hello + t->hello_len, data, take);
  t->hello_len += take;
  if (t->dialling) { /* reading is stopped while dialling; keep what came */
    if (take < len)
      deny_tunnel(c, AWF_REASON_BAD_CLIENT_HELLO);
    return;
  }

  struct awf_tls_hello hello;
  enum awf_hello_status st = awf_tls_hello_parse(t->hello, t->hello_len, &hello);
  if (st == AWF_HELLO_NEED_MORE && t->hello_len < AWF_HELLO_BUFFER_MAX)
    return;
  if (t->transparent) {
    /* The SNI is the only name there is: t->host gets it, normalised. */
    struct awf_ask_facts f = {.kind = AWF_ASK_TLS_SNI, .hello = hello_facts(c, st, &hello),
                              .port = t->port, .name_out = t->host};
    struct awf_verdict v = awf_policy_judge(&c->proxy->policy, &f);
    t->would_deny = v.would_deny;
    t->audit_reason = v.would_deny ? v.reason : AWF_REASON_NONE;
    t->host_access = v.host_access;
    if (v.decision == AWF_DENY) {
      deny_tunnel(c, v.reason);
    } else {
      struct awf_log_record r; /* the decision, before the name is dialled */
      tunnel_record(c, &r, AWF_ALLOW, AWF_REASON_ALLOWED);
      conn_log_open(c, &r);
      dial_transparent(c);
    }
    return;
  }
  /* CONNECT: the host was admitted; the hello may claim no other name. */
  struct awf_ask_facts f = {.kind = AWF_ASK_SNI_MATCH, .hello = hello_facts(c, st, &hello),
                            .host = t->host, .host_len = strlen(t->host), .port = t->port};
  struct awf_verdict v = awf_policy_judge(&c->proxy->policy, &f);
  if (v.would_deny) {
    t->would_deny = true;
    t->audit_reason = v.reason;
  }
  if (v.decision == AWF_DENY) {
    deny_tunnel(c, v.reason);
    return;
  }
  enter_relay(c);
  t->bytes_up += (int64_t)t->hello_len;
  int rc = relay(c, (uv_stream_t *)c->up, (const char *)t->hello, t->hello_len);
  free(t->hello);
  t->hello = NULL;
  if (rc == 0 && take < len) {
    t->bytes_up += (int64_t)(len - take);
    rc = relay(c, (uv_stream_t *)c->up, data + take, len - take);
  }
  if (rc < 0)
    conn_close(c);
}

static void on_shutdown_done(uv_shutdown_t *req, int status) {
  struct conn *c = req->data;
  bool to_client = req->handle == (uv_stream_t *)&c->client;
  free(req);
  if (status == UV_ECANCELED || c->phase == PH_CLOSING)
    return;
  if (to_client)
    c->client_shut = true;
  else
    c->up_shut = true;
  if (status < 0 || (c->client_shut && c->up_shut))
    conn_close(c);
}

/* Pass a FIN on: the other direction keeps flowing. */
static void forward_eof(struct conn *c, uv_stream_t *to) {
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (!req || uv_shutdown(req, to, on_shutdown_done) < 0) {
    free(req);
    conn_close(c);
    return;
  }
  req->data = c;
}

static void on_tclient_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = s->data;
  if (c->phase == PH_CLOSING || nread == 0)
    return;
  if (nread > 0) {
    c->last_active = uv_now(c->proxy->loop);
    if (c->phase == PH_TUNNEL_HELLO) {
      inspect(c, buf->base, (size_t)nread);
      return;
    }
    c->tun->bytes_up += nread;
    if (relay(c, (uv_stream_t *)c->up, buf->base, (size_t)nread) < 0) {
      conn_close(c);
      return;
    }
    if ((size_t)nread == AWF_READ_BUF_SIZE) {
      c->tun->splice_wanted = true;
      maybe_splice(c);
    }
    return;
  }
  c->client_eof = true;
  c->client_reading = false;
  if (nread != UV_EOF) {
    conn_close(c);
    return;
  }
  if (c->phase == PH_TUNNEL_HELLO && c->tun->hello) {
    deny_tunnel(c, AWF_REASON_BAD_CLIENT_HELLO); /* the hello never completed */
    return;
  }
  if (!c->up) { /* transparent, nothing sent, nothing dialled */
    conn_close(c);
    return;
  }
  forward_eof(c, (uv_stream_t *)c->up);
}

static void on_tup_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = s->data;
  if (c->phase == PH_CLOSING || nread == 0)
    return;
  if (nread > 0) {
    c->last_active = uv_now(c->proxy->loop);
    c->tun->bytes_down += nread;
    if (relay(c, (uv_stream_t *)&c->client, buf->base, (size_t)nread) < 0) {
      conn_close(c);
      return;
    }
    if ((size_t)nread == AWF_READ_BUF_SIZE) {
      c->tun->splice_wanted = true;
      maybe_splice(c);
    }
    return;
  }
  c->up_eof = true;
  c->up_reading = false;
  if (nread != UV_EOF) {
    conn_close(c);
    return;
  }
  forward_eof(c, (uv_stream_t *)&c->client);
}

int tunnel_start(struct conn *c, const struct tunnel_params *tp, const char *early,
                 size_t early_len) {
  struct tunnel_state *t = calloc(1, sizeof(*t));
  if (!t)
    return -ENOMEM;
  c->tun = t;
  size_t hl = tp->host_len < sizeof(t->host) - 1 ? tp->host_len : sizeof(t->host) - 1;
  memcpy(t->host, tp->host, hl);
  t->port = tp->port;
  t->would_deny = tp->would_deny;
  t->audit_reason = tp->audit_reason;
  t->started_ms = tp->started_ms;
  t->req = tp->req;
  t->host_access = tp->host_access;
  snprintf(t->upstream, sizeof(t->upstream), "%s", tp->upstream);
  c->phase = PH_TUNNEL_HELLO;
  c->up->data = c;

  static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";
  uv_buf_t b = uv_buf_init((char *)established, sizeof(established) - 1);
  if (awf_stream_write((uv_stream_t *)&c->client, &b, 1, NULL, NULL) < 0)
    return -EIO;
  /* Until the first client byte there is nothing to judge; server-first
   * protocols get their banner through meanwhile. */
  conn_set_timer(c, T_TUNNEL);
  update_reading(c);
  if (early_len > 0)
    inspect(c, early, early_len);
  return 0;
}

int tunnel_start_transparent(struct conn *c) {
  struct tunnel_state *t = calloc(1, sizeof(*t));
  if (!t)
    return -ENOMEM;
  c->tun = t;
  t->transparent = true;
  t->port = awf_sockaddr_port((struct sockaddr *)&c->orig_dst);
  t->started_ms = conn_now_ms(c);
  c->phase = PH_TUNNEL_HELLO;
  conn_set_timer(c, T_HELLO); /* the client speaks first on TLS */
  update_reading(c);
  return 0;
}

int tunnel_start_raw(struct conn *c, const struct tunnel_raw *r) {
  struct tunnel_state *t = calloc(1, sizeof(*t));
  if (!t)
    return -ENOMEM;
  c->tun = t;
  t->transparent = t->raw = true;
  t->event = r->event;
  snprintf(t->host, sizeof(t->host), "%s", r->host);
  snprintf(t->dial, sizeof(t->dial), "%s", r->dial ? r->dial : "");
  t->port = r->port;
  t->would_deny = r->would_deny;
  t->audit_reason = r->audit_reason;
  t->started_ms = conn_now_ms(c);
  c->phase = PH_TUNNEL_HELLO; /* until the dial is done: the client is not read */
  conn_set_timer(c, T_HELLO);
  struct awf_log_record rec; /* the decision, before the name is dialled */
  tunnel_record(c, &rec, AWF_ALLOW, AWF_REASON_ALLOWED);
  conn_log_open(c, &rec);
  dial_transparent(c);
  return 0;
}

static void on_host_dialled(const struct awf_dial_result *r, void *arg) {
  struct conn *c = arg;
  struct tunnel_state *t = c->tun;
  c->dial = NULL;
  t->dialling = false;
  if (r->status < 0) { /* nothing listens there: the client's connection ends */
    log_tunnel(c, AWF_DENY, r->reason);
    conn_close(c);
    return;
  }
  awf_sockaddr_format((const struct sockaddr *)&r->peer, t->upstream, sizeof(t->upstream));
  c->up = r->tcp;
  c->up->data = c;
  update_reading(c); /* both ways at once: server-first protocols too */
}

int tunnel_start_host(struct conn *c) {
  awf_proxy *px = c->proxy;
  const struct awf_host_access *ha = px->cfg.host_access;
  struct tunnel_state *t = calloc(1, sizeof(*t));
  if (!t)
    return -ENOMEM;
  c->tun = t;
  t->transparent = t->raw = true;
  t->port = awf_sockaddr_port((struct sockaddr *)&c->orig_dst);
  t->started_ms = conn_now_ms(c);
  snprintf(t->host, sizeof(t->host), "%s", ha->names[0]);
  struct awf_ask_facts f = {.kind = AWF_ASK_HOST_PORT, .port = t->port};
  struct awf_verdict v = awf_policy_judge(&px->policy, &f);
  if (v.decision == AWF_DENY) {
    log_tunnel(c, AWF_DENY, v.reason);
    conn_close(c);
    return 0;
  }
  t->host_access = v.host_access;
  struct awf_log_record r; /* the decision, before the host is dialled */
  tunnel_record(c, &r, AWF_ALLOW, AWF_REASON_ALLOWED);
  conn_log_open(c, &r);
  /* No byte is read from the client until the host has answered. */
  t->dialling = true;
  enter_relay(c);
  struct awf_dial_params prm = {
      .loop = px->loop, .resolver = px->cfg.resolver, .policy = px->cfg.policy,
      .connect_timeout_ms = px->cfg.connect_timeout_ms, .host = t->host, .port = t->port,
      .host_access = ha,
  };
  if (awf_dial_start(&prm, on_host_dialled, c, &c->dial) < 0) {
    c->dial = NULL;
    log_tunnel(c, AWF_DENY, AWF_REASON_UPSTREAM_UNREACHABLE);
    conn_close(c);
  }
  return 0;
}

void tunnel_on_timer(struct conn *c) {
  if (c->phase == PH_TUNNEL_HELLO && c->tun && (c->tun->hello || c->tun->transparent)) {
    deny_tunnel(c, AWF_REASON_TIMEOUT);
    return;
  }
  conn_close(c);
}

void tunnel_on_close(struct conn *c) {
  if (!c->tun)
    return;
  awf_splice_close(c->tun->splice); /* before the sockets close */
  c->tun->splice = NULL;
  log_tunnel(c, AWF_ALLOW, AWF_REASON_ALLOWED);
}

void tunnel_free(struct conn *c) {
  if (!c->tun)
    return;
  awf_splice_close(c->tun->splice);
  free(c->tun->hello);
  free(c->tun);
  c->tun = NULL;
}
