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
  const char *audit_reason;
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
static void tunnel_record(struct conn *c, struct awf_log_record *r, const char *decision,
                          const char *reason) {
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
  if (t->host_access && !strcmp(decision, "allow"))
    r->reason = "host_access";
}

static void log_tunnel(struct conn *c, const char *decision, const char *reason) {
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

static void deny_tunnel(struct conn *c, const char *reason) {
  /* A CONNECT client already has its 200, a redirected one expects a TLS
   * server: a fatal alert is the clearest thing left to say before closing.
   * unrecognized_name (112) when no usable name was sent, else
   * access_denied (49). */
  char alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31};
  if (!strcmp(reason, "no_sni"))
    alert[6] = 0x70;
  if (c->tun->raw)
    alert[0] = 0; /* not TLS: nothing to say */
  log_tunnel(c, "deny", reason);
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
  if (alert[0])
    awf_stream_write((uv_stream_t *)&c->client, &b, 1, NULL, NULL);
  conn_close_after_writes(c);
}

/* Judge a complete ClientHello. Returns NULL to admit, or the deny reason. */
static const char *judge_hello(struct conn *c, const struct awf_tls_hello *hello) {
  struct tunnel_state *t = c->tun;
  t->ech = hello->ech;
  if (!hello->has_sni)
    return NULL; /* the CONNECT host was admitted; nothing else is claimed */
  t->sni_seen = true;
  memcpy(t->sni, hello->sni, hello->sni_len);
  t->sni[hello->sni_len] = '\0';
  if (hello->sni_multiple)
    return "sni_mismatch";
  char sni[AWF_HOSTNAME_MAX + 1], host[AWF_HOSTNAME_MAX + 1];
  if (awf_hostname_normalize(hello->sni, hello->sni_len, sni, sizeof(sni)) < 0 ||
      awf_hostname_normalize(t->host, strlen(t->host), host, sizeof(host)) < 0 ||
      strcmp(sni, host) != 0)
    return "sni_mismatch";
  bool wd;
  const char *ar;
  const char *deny = proxy_decide(c->proxy, sni, strlen(sni), t->port, AWF_PROTO_TLS, &wd, &ar);
  return deny ? "sni_mismatch" : NULL;
}

/* Transparent TLS: the SNI is the only name there is. Returns NULL to admit
 * (t->host then holds the normalised name), or the deny reason. */
static const char *judge_transparent(struct conn *c, const struct awf_tls_hello *hello) {
  struct tunnel_state *t = c->tun;
  t->ech = hello->ech;
  if (!hello->has_sni || hello->sni_len == 0)
    return "no_sni";
  t->sni_seen = true;
  memcpy(t->sni, hello->sni, hello->sni_len);
  t->sni[hello->sni_len] = '\0';
  if (hello->sni_multiple)
    return "bad_client_hello";
  struct sockaddr_storage lit;
  if (awf_ip_literal_parse(hello->sni, hello->sni_len, &lit) != 0)
    return "ip_literal"; /* SNI must be a name (RFC 6066); an IP says nothing */
  char name[AWF_HOSTNAME_MAX + 1];
  if (awf_hostname_normalize(hello->sni, hello->sni_len, name, sizeof(name)) < 0)
    return "invalid_name";
  snprintf(t->host, sizeof(t->host), "%s", name);
  const char *deny = proxy_decide(c->proxy, name, strlen(name), t->port, AWF_PROTO_TLS,
                                  &t->would_deny, &t->audit_reason);
  t->host_access = !deny && awf_host_access_check(c->proxy->cfg.host_access, name, strlen(name),
                                                  t->port) == AWF_HOST_ALLOWED;
  return deny;
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
    if (!strcmp(r->reason, "private_destination") && r->have_peer)
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
    deny_tunnel(c, "dns_failure");
  }
}

/* Client bytes before the tunnel is judged. */
static void inspect(struct conn *c, const char *data, size_t len) {
  struct tunnel_state *t = c->tun;
  if (!t->hello && (uint8_t)data[0] != 0x16 && t->transparent) {
    deny_tunnel(c, "bad_client_hello"); /* a TLS port, but not TLS */
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
      deny_tunnel(c, "bad_client_hello");
    return;
  }

  struct awf_tls_hello hello;
  enum awf_hello_status st = awf_tls_hello_parse(t->hello, t->hello_len, &hello);
  if (st == AWF_HELLO_NEED_MORE && t->hello_len < AWF_HELLO_BUFFER_MAX)
    return;
  if (t->transparent) {
    const char *why = st == AWF_HELLO_OK ? judge_transparent(c, &hello) : "bad_client_hello";
    if (why) {
      deny_tunnel(c, why);
    } else {
      struct awf_log_record r; /* the decision, before the name is dialled */
      tunnel_record(c, &r, "allow", "allowed");
      conn_log_open(c, &r);
      dial_transparent(c);
    }
    return;
  }
  const char *deny = st == AWF_HELLO_OK ? judge_hello(c, &hello) : "bad_client_hello";
  if (deny && c->proxy->cfg.audit) {
    t->would_deny = true;
    t->audit_reason = deny;
    deny = NULL;
  }
  if (deny) {
    deny_tunnel(c, deny);
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
    deny_tunnel(c, "bad_client_hello"); /* the hello never completed */
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
  tunnel_record(c, &rec, "allow", "allowed");
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
    log_tunnel(c, "deny", r->reason);
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
  if (!awf_port_set_has(&ha->ports, t->port)) {
    log_tunnel(c, "deny", "host_port_not_allowed");
    conn_close(c);
    return 0;
  }
  t->host_access = true;
  struct awf_log_record r; /* the decision, before the host is dialled */
  tunnel_record(c, &r, "allow", "allowed");
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
    log_tunnel(c, "deny", "upstream_unreachable");
    conn_close(c);
  }
  return 0;
}

void tunnel_on_timer(struct conn *c) {
  if (c->phase == PH_TUNNEL_HELLO && c->tun && (c->tun->hello || c->tun->transparent)) {
    deny_tunnel(c, "timeout");
    return;
  }
  conn_close(c);
}

void tunnel_on_close(struct conn *c) {
  if (!c->tun)
    return;
  awf_splice_close(c->tun->splice); /* before the sockets close */
  c->tun->splice = NULL;
  log_tunnel(c, "allow", "allowed");
}

void tunnel_free(struct conn *c) {
  if (!c->tun)
    return;
  awf_splice_close(c->tun->splice);
  free(c->tun->hello);
  free(c->tun);
  c->tun = NULL;
}
