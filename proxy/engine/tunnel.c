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

#include "tunnel.h"

#include "conn.h"
#include "host_access.h"
#include "hostname.h"
#include "sni.h"
#include "splice_relay.h"

/* What the tunnel carries and how it was judged. */
enum tunnel_kind {
  TK_CONNECT, /* an explicit CONNECT: the first bytes, if TLS, must name its host */
  TK_TLS,     /* redirected TLS: no CONNECT, the SNI is the name */
  TK_RAW,     /* redirected, judged before (SSH, the host's services): any
                 protocol, no hello, no TLS alert */
};

/* How relayed bytes move. */
enum tunnel_relay {
  RELAY_COPY,          /* libuv reads and writes through the shared buffer */
  RELAY_SPLICE_WANTED, /* a read filled the buffer: splice once writes drain */
  RELAY_SPLICE,        /* splice_relay.c owns the relay */
  RELAY_NO_SPLICE,     /* no splice to be had: stay on the libuv path */
};

struct tunnel_state {
  uint64_t started_ms;
  int64_t bytes_up, bytes_down;
  uint8_t *hello; /* client bytes held until the hello is judged */
  size_t hello_len;
  bool logged, ech, sni_seen;
  bool would_deny;
  enum tunnel_kind kind;
  enum tunnel_relay relay;
  const char *event;         /* the log's event when not "tls"/"connect" (raw: "tcp") */
  bool dialling;             /* transparent: holding the hello while we dial */
  bool client_shut, up_shut; /* a FIN passed on to that side */
  bool host_access;          /* admitted as one of the host's services */
  bool bump;                 /* redirected: intercept once dialled (intercept.h) */
  bool not_tls;              /* CONNECT: the first bytes were not TLS */
  awf_splice *splice;        /* RELAY_SPLICE: the relay */
  enum awf_reason audit_reason;
  const char *dlp; /* --dlp: the kind of a match (denied, or admitted under --audit) */
  uint64_t req;    /* CONNECT: the request's number, for the log */
  uint16_t port;
  char host[256];
  char dial[AWF_ADDRSTRLEN]; /* raw: dial this address instead of the name */
  char sni[256];
  char upstream[AWF_ADDRSTRLEN];
  char resolved[AWF_ADDRSTRLEN]; /* private_destination: the address refused */
};

static struct tunnel_state *ts(const struct conn *c) { return c->mode; }
static bool redirected(const struct tunnel_state *t) { return t->kind != TK_CONNECT; }

/* The tunnel's record as far as it is known. */
static void tunnel_record(struct conn *c, struct awf_log_record *r, enum awf_decision decision,
                          enum awf_reason reason) {
  struct tunnel_state *t = ts(c);
  awf_log_record_init(r);
  r->event = t->event            ? t->event
             : t->kind == TK_RAW ? "tcp"
             : t->kind == TK_TLS ? "tls"
                                 : "connect";
  r->req = t->req;
  r->method = redirected(t) ? NULL : "CONNECT";
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
  r->dlp = t->dlp;
  if (t->host_access && decision == AWF_ALLOW)
    r->reason = AWF_REASON_HOST_ACCESS;
}

void tunnel_log_handoff(struct conn *c, const struct tunnel_handoff *h,
                        enum awf_decision decision, enum awf_reason reason, int64_t bytes_up,
                        int64_t bytes_down) {
  struct awf_log_record r;
  awf_log_record_init(&r);
  r.event = h->connect ? "connect" : "tls";
  r.req = h->req;
  r.method = h->connect ? "CONNECT" : NULL;
  r.host = h->host;
  r.host_len = strlen(h->host);
  r.port = h->port;
  r.original_dst = c->transparent ? c->orig_dst_addr : NULL;
  if (h->sni_seen) {
    r.sni = h->sni;
    r.sni_len = strlen(h->sni);
  }
  r.ech = h->ech;
  r.intercepted = true;
  r.decision = decision;
  r.reason = h->would_deny && h->audit_reason && decision == AWF_ALLOW ? h->audit_reason
                                                                       : reason;
  r.would_deny = h->would_deny;
  r.dlp = h->dlp;
  r.status = h->connect ? 200 : -1;
  r.upstream = h->upstream[0] ? h->upstream : NULL;
  r.bytes_up = bytes_up;
  r.bytes_down = bytes_down;
  r.ts_ms = conn_now_ms(c);
  r.duration_ms = (int64_t)(r.ts_ms - h->started_ms);
  /* Its open record was written when it was admitted, before the records of
   * the requests inside. */
  c->open_logged = true;
  c->open_req = h->req;
  conn_log(c, &r);
}

static void log_tunnel(struct conn *c, enum awf_decision decision, enum awf_reason reason) {
  struct tunnel_state *t = ts(c);
  if (t->logged)
    return;
  t->logged = true;
  struct awf_log_record r;
  tunnel_record(c, &r, decision, reason);
  r.status = redirected(t) ? -1 : 200;
  r.upstream = t->upstream[0] ? t->upstream : NULL;
  r.resolved = t->resolved[0] ? t->resolved : NULL;
  r.bytes_up = t->bytes_up;
  r.bytes_down = t->bytes_down;
  r.ts_ms = conn_now_ms(c);
  r.duration_ms = (int64_t)(r.ts_ms - t->started_ms);
  conn_log(c, &r);
}

/* What the tunnel itself wants read; backpressure is the core's. */
static void update_reading(struct conn *c) {
  struct tunnel_state *t = ts(c);
  if (t->relay == RELAY_SPLICE)
    return;
  conn_want_read(c, c->client, !t->dialling);
  if (c->up)
    conn_want_read(c, c->up, true);
}

/* Bytes relayed one way: counted for the log and charged to the host's
 * --bytes-limit (a raw tunnel, SSH or the host's services, is not). */
static void count(struct conn *c, int64_t *counter, size_t n) {
  *counter += (int64_t)n;
  if (ts(c)->kind != TK_RAW && !ts(c)->host_access)
    conn_rate_charge(c, ts(c)->host, n);
}

static void on_splice_bytes(void *arg, int dir, size_t n) {
  struct conn *c = arg;
  conn_touch(c);
  count(c, dir == 0 ? &ts(c)->bytes_up : &ts(c)->bytes_down, n);
}

static void on_splice_done(void *arg, int status) {
  struct conn *c = arg;
  if (status < 0)
    awf_proxy_diag(c->proxy, AWF_LOG_DEBUG, "tunnel %s: %s", ts(c)->upstream,
                   uv_strerror(status));
  conn_close(c); /* both FINs passed on, or a side failed */
}

/* A read filled the whole buffer: a bulk transfer, worth splicing. */
static void want_splice(struct conn *c) {
  if (ts(c)->relay == RELAY_COPY)
    ts(c)->relay = RELAY_SPLICE_WANTED;
}

/* Hand a bulk tunnel to splice_relay.c once nothing waits in libuv's write
 * queues (their bytes must reach the sockets first). */
static void maybe_splice(struct conn *c) {
  static const struct awf_splice_cbs cbs = {on_splice_bytes, on_splice_done};
  struct tunnel_state *t = ts(c);
  if (t->relay != RELAY_SPLICE_WANTED || c->state != CONN_TUNNEL || !c->up || c->client->eof ||
      c->up->eof || awf_transport_queued(c->client) > 0 || awf_transport_queued(c->up) > 0)
    return;
  int a = awf_transport_fileno(c->client), b = awf_transport_fileno(c->up);
  if (a < 0 || b < 0) { /* not sockets: no splice */
    t->relay = RELAY_NO_SPLICE;
    return;
  }
  awf_transport_want_read(c->client, false);
  awf_transport_want_read(c->up, false);
  t->relay = RELAY_SPLICE;
  int rc = awf_splice_start(c->proxy->loop, a, b, &cbs, c, &t->splice);
  if (rc < 0) {
    t->splice = NULL;
    t->relay = RELAY_NO_SPLICE;
    awf_proxy_diag(c->proxy, AWF_LOG_DEBUG, "tunnel %s: no splice: %s", t->upstream,
                   uv_strerror(rc));
    update_reading(c);
  }
}

/* Writes drained: a bulk tunnel may move to splice now. */
static void tunnel_on_drained(struct conn *c, struct awf_transport *t) {
  (void)t;
  maybe_splice(c);
}

static int relay(struct awf_transport *to, const char *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  return awf_transport_write(to, &b, 1);
}

static void deny_tunnel(struct conn *c, enum awf_reason reason) {
  /* A CONNECT client already has its 200, a redirected one expects a TLS
   * server: a fatal alert is the clearest thing left to say before closing
   * (reason.h: unrecognized_name when no usable name was sent, else
   * access_denied). */
  enum awf_tls_alert a = ts(c)->kind == TK_RAW || ts(c)->not_tls
                             ? AWF_TLS_ALERT_NONE /* not TLS: nothing to say */
                             : awf_reason_tls_alert(reason);
  char alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, (char)a};
  log_tunnel(c, AWF_DENY, reason);
  free(ts(c)->hello);
  ts(c)->hello = NULL;
  ts(c)->hello_len = 0;
  ts(c)->dialling = false;
  if (c->dial) { /* a timeout while dialling: the dial must not relay the freed hello */
    awf_dial_cancel(c->dial);
    c->dial = NULL;
  }
  conn_drop_upstream(c);
  uv_buf_t b = uv_buf_init((char *)alert, sizeof(alert));
  if (a != AWF_TLS_ALERT_NONE)
    awf_transport_write(c->client, &b, 1);
  conn_close_after_writes(c);
}

/* The ClientHello's facts for the judge (policy.h); its ECH and server name
 * are kept for the log. A transparent tunnel's empty name is no name. */
static struct awf_hello_facts hello_facts(struct conn *c, enum awf_hello_status st,
                                          const struct awf_tls_hello *hello) {
  struct tunnel_state *t = ts(c);
  struct awf_hello_facts f = {.complete = st == AWF_HELLO_OK};
  if (!f.complete)
    return f;
  t->ech = hello->ech;
  f.has_sni = hello->has_sni;
  f.sni_multiple = hello->sni_multiple;
  f.sni = hello->sni;
  f.sni_len = hello->sni_len;
  if (hello->has_sni && (hello->sni_len > 0 || !redirected(t))) {
    t->sni_seen = true;
    memcpy(t->sni, hello->sni, hello->sni_len);
    t->sni[hello->sni_len] = '\0';
  }
  return f;
}

static void enter_relay(struct conn *c) {
  conn_set_state(c, CONN_TUNNEL);
  conn_set_timer(c, T_TUNNEL);
}

/* Does interception open this tunnel's host? */
static bool bump_wanted(const struct conn *c) {
  const struct tunnel_state *t = ts(c);
  return c->proxy->cfg.intercept && c->proxy->start_intercepted &&
         awf_intercept_wants(c->proxy->cfg.intercept, t->host, strlen(t->host));
}

/* Open the tunnel (c->up dialled, the ClientHello held, then `extra` client
 * bytes): TLS on both sides, then the HTTP mode judges every request. */
static void bump(struct conn *c, const char *extra, size_t extra_len) {
  struct tunnel_state *t = ts(c);
  const awf_intercept *ic = c->proxy->cfg.intercept;
  size_t n = t->hello_len + extra_len;
  char *pre = malloc(n ? n : 1);
  if (!pre) {
    conn_close(c);
    return;
  }
  memcpy(pre, t->hello, t->hello_len);
  if (extra_len) /* extra may be NULL (the transparent path has no more bytes) */
    memcpy(pre + t->hello_len, extra, extra_len);
  free(t->hello);
  t->hello = NULL;
  t->hello_len = 0;
  struct awf_tls_params sp = {.role = AWF_TLS_SERVER,
                              .name = t->host,
                              .pre = pre,
                              .pre_len = n};
  struct awf_tls_params cp = {.role = AWF_TLS_CLIENT,
                              .name = t->host,
                              .session = awf_intercept_session(c->proxy->cfg.intercept,
                                                               t->host)};
  int rc = conn_wrap_tls(c, &c->client, awf_intercept_server_ctx(ic), &sp);
  free(pre); /* copied */
  if (rc == 0)
    rc = conn_wrap_tls(c, &c->up, awf_intercept_client_ctx(ic), &cp);
  SSL_SESSION_free(cp.session); /* the transport took its own reference */
  if (rc < 0) {
    awf_proxy_diag(c->proxy, AWF_LOG_WARN, "intercept %s: %s", t->host, uv_strerror(rc));
    conn_close(c);
    return;
  }
  struct tunnel_handoff h = {.connect = t->kind == TK_CONNECT,
                             .port = t->port,
                             .req = t->req,
                             .started_ms = t->started_ms,
                             .sni_seen = t->sni_seen,
                             .ech = t->ech,
                             .would_deny = t->would_deny,
                             .audit_reason = t->audit_reason,
                             .dlp = t->dlp};
  memcpy(h.host, t->host, sizeof(h.host));
  memcpy(h.sni, t->sni, sizeof(h.sni));
  memcpy(h.upstream, t->upstream, sizeof(h.upstream));
  t->logged = true; /* the HTTP mode writes its record (tunnel_log_handoff) */
  if (c->proxy->start_intercepted(c, &h) < 0) /* frees the tunnel's state */
    conn_close(c);
}

static void on_transparent_dialled(const struct awf_dial_result *r, void *arg) {
  struct conn *c = arg;
  struct tunnel_state *t = ts(c);
  c->dial = NULL;
  t->dialling = false;
  if (r->status == 0 || r->proxy_reached) /* a connection made (to the parent, maybe) */
    awf_sockaddr_format((const struct sockaddr *)&r->peer, t->upstream, sizeof(t->upstream));
  if (r->status < 0) {
    if (r->reason == AWF_REASON_PRIVATE_DESTINATION && r->have_peer)
      awf_sockaddr_format_ip((const struct sockaddr *)&r->peer, t->resolved,
                             sizeof(t->resolved));
    deny_tunnel(c, r->reason);
    return;
  }
  conn_attach_up_tcp(c, r->tcp);
  if (t->bump) {
    bump(c, NULL, 0);
    return;
  }
  enter_relay(c);
  count(c, &t->bytes_up, t->hello_len);
  int rc = t->hello_len ? relay(c->up, (const char *)t->hello, t->hello_len) : 0;
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
  struct tunnel_state *t = ts(c);
  awf_proxy *px = c->proxy;
  struct awf_dial_params prm = {
      .loop = px->loop,
      .resolver = px->cfg.resolver,
      .policy = px->cfg.policy,
      .connect_timeout_ms = px->cfg.connect_timeout_ms,
      .metrics = px->metrics,
      .host = t->dial[0] ? t->dial : t->host,
      .port = t->port,
      .host_access = px->cfg.host_access,
      .via = px->cfg.upstream_proxy,
      .proxy = px,
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
  struct tunnel_state *t = ts(c);
  if (!t->hello && (uint8_t)data[0] != 0x16 && t->kind == TK_TLS) {
    deny_tunnel(c, AWF_REASON_BAD_CLIENT_HELLO); /* a TLS port, but not TLS */
    return;
  }
  if (!t->hello && (uint8_t)data[0] != 0x16) { /* not TLS: a raw TCP tunnel */
    /* A host with URL rules admits requests one by one: a raw tunnel to it
     * would carry requests no rule judged. */
    const awf_url_rules *ur = c->proxy->cfg.url_rules;
    size_t hl = strlen(t->host);
    if (awf_url_rules_covers_host(ur, AWF_URL_HTTP, t->host, hl) ||
        awf_url_rules_covers_host(ur, AWF_URL_HTTPS, t->host, hl)) {
      t->not_tls = true;
      deny_tunnel(c, AWF_REASON_URL_NOT_ALLOWED);
      return;
    }
    enter_relay(c);
    count(c, &t->bytes_up, len);
    if (relay(c->up, data, len) < 0)
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
  if (t->kind == TK_TLS) {
    /* The SNI is the only name there is: t->host gets it, normalised. */
    struct awf_ask_facts f = {.kind = AWF_ASK_TLS_SNI,
                              .hello = hello_facts(c, st, &hello),
                              .port = t->port,
                              .name_out = t->host};
    struct awf_verdict v = awf_policy_judge(&c->proxy->policy, &f);
    t->would_deny = v.would_deny;
    t->audit_reason = v.would_deny ? v.reason : AWF_REASON_NONE;
    t->host_access = v.host_access;
    t->dlp = v.dlp;
    if (v.decision == AWF_DENY) {
      deny_tunnel(c, v.reason);
      return;
    }
    t->bump = !t->host_access && bump_wanted(c);
    /* An opened connection counts by its requests, not itself; the host's
     * services are not limited. */
    if (!t->host_access &&
        conn_rate_check(c, t->host, !t->bump, &t->would_deny, &t->audit_reason)) {
      deny_tunnel(c, AWF_REASON_RATE_LIMITED);
      return;
    }
    struct awf_log_record r; /* the decision, before the name is dialled */
    tunnel_record(c, &r, AWF_ALLOW, AWF_REASON_ALLOWED);
    conn_log_open(c, &r);
    dial_transparent(c);
    return;
  }
  /* CONNECT: the host was admitted; the hello may claim no other name. */
  struct awf_ask_facts f = {.kind = AWF_ASK_SNI_MATCH,
                            .hello = hello_facts(c, st, &hello),
                            .host = t->host,
                            .host_len = strlen(t->host),
                            .port = t->port};
  struct awf_verdict v = awf_policy_judge(&c->proxy->policy, &f);
  if (v.would_deny) {
    t->would_deny = true;
    t->audit_reason = v.reason;
  }
  if (v.dlp)
    t->dlp = v.dlp;
  if (v.decision == AWF_DENY) {
    deny_tunnel(c, v.reason);
    return;
  }
  if (!t->host_access && bump_wanted(c)) {
    bump(c, data + take, len - take);
    return;
  }
  enter_relay(c);
  count(c, &t->bytes_up, t->hello_len);
  int rc = relay(c->up, (const char *)t->hello, t->hello_len);
  free(t->hello);
  t->hello = NULL;
  if (rc == 0 && take < len) {
    count(c, &t->bytes_up, len - take);
    rc = relay(c->up, data + take, len - take);
  }
  if (rc < 0)
    conn_close(c);
}

/* A FIN passed on: the tunnel ends when both have been. */
static void tunnel_on_shutdown(struct conn *c, struct awf_transport *to, int status) {
  struct tunnel_state *t = ts(c);
  if (to == c->client)
    t->client_shut = true;
  else
    t->up_shut = true;
  if (status < 0 || (t->client_shut && t->up_shut))
    conn_close(c);
}

/* Pass a FIN on: the other direction keeps flowing. */
static void forward_eof(struct conn *c, struct awf_transport *to) {
  if (awf_transport_shutdown(to) < 0)
    conn_close(c);
}

/* Bytes read from one side, relayed to the other and counted; a read that
 * filled the whole buffer marks a bulk transfer, which moves to splice. */
static void relay_read(struct conn *c, struct awf_transport *to, int64_t *counter,
                       const uv_buf_t *buf, size_t n) {
  count(c, counter, n);
  if (relay(to, buf->base, n) < 0) {
    conn_close(c);
    return;
  }
  if (n == AWF_READ_BUF_SIZE) {
    want_splice(c);
    maybe_splice(c);
  }
}

static void on_tclient_read(struct conn *c, ssize_t nread, const uv_buf_t *buf) {
  if (nread > 0) {
    if (c->state == CONN_TUNNEL_HELLO)
      inspect(c, buf->base, (size_t)nread);
    else
      relay_read(c, c->up, &ts(c)->bytes_up, buf, (size_t)nread);
    return;
  }
  if (nread != UV_EOF) {
    conn_close(c);
    return;
  }
  if (c->state == CONN_TUNNEL_HELLO && ts(c)->hello) {
    deny_tunnel(c, AWF_REASON_BAD_CLIENT_HELLO); /* the hello never completed */
    return;
  }
  if (!c->up) { /* transparent, nothing sent, nothing dialled */
    conn_close(c);
    return;
  }
  forward_eof(c, c->up);
}

static void on_tup_read(struct conn *c, ssize_t nread, const uv_buf_t *buf) {
  if (nread > 0) {
    relay_read(c, c->client, &ts(c)->bytes_down, buf, (size_t)nread);
    return;
  }
  if (nread != UV_EOF) {
    conn_close(c);
    return;
  }
  forward_eof(c, c->client);
}

static void tunnel_on_timer(struct conn *c, enum conn_timer kind) {
  (void)kind;
  if (c->state == CONN_TUNNEL_HELLO && (ts(c)->hello || redirected(ts(c)))) {
    deny_tunnel(c, AWF_REASON_TIMEOUT);
    return;
  }
  conn_close(c);
}

static void tunnel_on_close(struct conn *c) {
  awf_splice_close(ts(c)->splice); /* before the sockets close */
  ts(c)->splice = NULL;
  log_tunnel(c, AWF_ALLOW, AWF_REASON_ALLOWED);
}

static void tunnel_free(struct conn *c) {
  struct tunnel_state *t = ts(c);
  awf_splice_close(t->splice);
  free(t->hello);
  free(t);
  c->mode = NULL;
}

static const struct conn_mode_ops tunnel_ops = {
    .name = "tunnel",
    .on_client_read = on_tclient_read,
    .on_up_read = on_tup_read,
    .on_drained = tunnel_on_drained,
    .on_shutdown = tunnel_on_shutdown,
    .on_timer = tunnel_on_timer,
    .on_close = tunnel_on_close,
    .free = tunnel_free,
};

int tunnel_start(struct conn *c, const struct tunnel_params *tp, const char *early,
                 size_t early_len) {
  struct tunnel_state *t = calloc(1, sizeof(*t));
  if (!t)
    return -ENOMEM;
  size_t hl = tp->host_len < sizeof(t->host) - 1 ? tp->host_len : sizeof(t->host) - 1;
  memcpy(t->host, tp->host, hl);
  t->port = tp->port;
  t->would_deny = tp->would_deny;
  t->audit_reason = tp->audit_reason;
  t->dlp = tp->dlp;
  t->started_ms = tp->started_ms;
  t->req = tp->req;
  t->host_access = tp->host_access;
  snprintf(t->upstream, sizeof(t->upstream), "%s", tp->upstream);
  conn_set_mode(c, &tunnel_ops, t, CONN_TUNNEL_HELLO); /* tp is not used after this */

  static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";
  uv_buf_t b = uv_buf_init((char *)established, sizeof(established) - 1);
  if (awf_transport_write(c->client, &b, 1) < 0)
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
  conn_set_mode(c, &tunnel_ops, t, CONN_TUNNEL_HELLO);
  t->kind = TK_TLS;
  t->port = awf_sockaddr_port((struct sockaddr *)&c->orig_dst);
  t->started_ms = conn_now_ms(c);
  conn_set_timer(c, T_HELLO); /* the client speaks first on TLS */
  update_reading(c);
  return 0;
}

int tunnel_start_raw(struct conn *c, const struct tunnel_raw *r) {
  struct tunnel_state *t = calloc(1, sizeof(*t));
  if (!t)
    return -ENOMEM;
  /* Until the dial is done the client is not read. */
  conn_set_mode(c, &tunnel_ops, t, CONN_TUNNEL_HELLO);
  t->kind = TK_RAW;
  t->event = r->event;
  snprintf(t->host, sizeof(t->host), "%s", r->host);
  snprintf(t->dial, sizeof(t->dial), "%s", r->dial ? r->dial : "");
  t->port = r->port;
  t->would_deny = r->would_deny;
  t->audit_reason = r->audit_reason;
  t->started_ms = conn_now_ms(c);
  conn_set_timer(c, T_HELLO);
  struct awf_log_record rec; /* the decision, before the name is dialled */
  tunnel_record(c, &rec, AWF_ALLOW, AWF_REASON_ALLOWED);
  conn_log_open(c, &rec);
  dial_transparent(c);
  return 0;
}

static void on_host_dialled(const struct awf_dial_result *r, void *arg) {
  struct conn *c = arg;
  struct tunnel_state *t = ts(c);
  c->dial = NULL;
  t->dialling = false;
  if (r->status < 0) { /* nothing listens there: the client's connection ends */
    log_tunnel(c, AWF_DENY, r->reason);
    conn_close(c);
    return;
  }
  awf_sockaddr_format((const struct sockaddr *)&r->peer, t->upstream, sizeof(t->upstream));
  conn_attach_up_tcp(c, r->tcp);
  update_reading(c); /* both ways at once: server-first protocols too */
}

int tunnel_start_host(struct conn *c) {
  awf_proxy *px = c->proxy;
  const struct awf_host_access *ha = px->cfg.host_access;
  struct tunnel_state *t = calloc(1, sizeof(*t));
  if (!t)
    return -ENOMEM;
  conn_set_mode(c, &tunnel_ops, t, CONN_TUNNEL_HELLO);
  t->kind = TK_RAW;
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
      .loop = px->loop,
      .resolver = px->cfg.resolver,
      .policy = px->cfg.policy,
      .connect_timeout_ms = px->cfg.connect_timeout_ms,
      .metrics = px->metrics,
      .host = t->host,
      .port = t->port,
      .host_access = ha,
  };
  if (awf_dial_start(&prm, on_host_dialled, c, &c->dial) < 0) {
    c->dial = NULL;
    log_tunnel(c, AWF_DENY, AWF_REASON_UPSTREAM_UNREACHABLE);
    conn_close(c);
  }
  return 0;
}
