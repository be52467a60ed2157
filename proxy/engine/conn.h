/* conn.h: the connection core of the engine (conn.c): one client connection's
 * state machine, its timers, its close, and the two transports it owns (the
 * client's, and the upstream's while there is one). The modes (http_proxy.c,
 * tunnel.c) sit on it: the core calls a mode only through the ops table the
 * mode set on the connection, and never includes a mode's header. The files
 * depend downward only:
 *
 *   listener.c -> http_proxy.c -> tunnel.c -> conn.c -> transport.h
 *                 ssh_gate.c ---^             (transport_tcp.c, transport.c)
 *
 * with the engine's shared state in engine.h (struct awf_proxy, no code) and
 * its diagnostics in diag.c, below all of them (the dialer uses those too).
 * scripts/check-layers checks it.
 *
 * Not a public header. */
#ifndef AWF_CONN_H
#define AWF_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "client_limits.h"
#include "dialer.h"
#include "engine.h"
#include "events.h"
#include "jsonlog.h"
#include "list.h"
#include "netaddr.h"
#include "policy.h"
#include "proxy.h"
#include "transport.h"
#include "transport_tcp.h"
#include "transport_tls.h"

/* A connection's state, one at a time. The mode (c->ops) tells HTTP from
 * tunnel; the state says how far the connection is. */
enum conn_state {
  CONN_ACCEPTED,     /* accepted, not yet given a mode (being classified) */
  CONN_HTTP,         /* reading and forwarding HTTP requests */
  CONN_TUNNEL_HELLO, /* a tunnel whose first client bytes are not judged yet */
  CONN_TUNNEL,       /* relaying both ways */
  CONN_DRAINING,     /* reading stopped: FIN once writes to the client drain */
  CONN_CLOSING,      /* handles closing; no callback acts any more */
};
const char *conn_state_name(enum conn_state s);

enum conn_timer {
  T_NONE,
  T_IDLE,     /* keep-alive wait for the next request */
  T_HEADER,   /* request head must complete */
  T_EXCHANGE, /* inactivity while a request/response is under way (slides) */
  T_TUNNEL,   /* tunnel inactivity (slides) */
  T_HELLO,    /* ClientHello must arrive */
  T_LINGER,   /* graceful close must finish (the core closes) */
};
const char *conn_timer_name(enum conn_timer k);

struct conn;

/* A mode: how the core reaches HTTP, tunnel (and later intercepted TLS). */
struct conn_mode_ops {
  const char *name;
  /* Bytes or the end from either side (never called with nread == 0, nor
   * once the connection is closing). */
  void (*on_client_read)(struct conn *c, ssize_t nread, const uv_buf_t *buf);
  void (*on_up_read)(struct conn *c, ssize_t nread, const uv_buf_t *buf);
  /* Optional: writes queued on t drained under half the high-water mark. */
  void (*on_drained)(struct conn *c, struct awf_transport *t);
  /* Optional: a shutdown the mode asked for finished (not cancelled). */
  void (*on_shutdown)(struct conn *c, struct awf_transport *t, int status);
  /* A deadline passed (sliding ones have been checked; T_LINGER never comes). */
  void (*on_timer)(struct conn *c, enum conn_timer kind);
  /* The connection starts closing: write any pending log record. The mode's
   * memory stays until free, since one of its callbacks may be on the stack. */
  void (*on_close)(struct conn *c);
  /* Release the mode's state (c->mode): on a mode switch, or once every
   * handle is closed. */
  void (*free)(struct conn *c);
};

struct conn {
  awf_proxy *proxy;
  struct awf_list link; /* in awf_proxy.conns */
  uv_timer_t timer;
  enum conn_state state;
  enum conn_timer timer_kind;
  const struct conn_mode_ops *ops; /* NULL until the listener gives a mode */
  void *mode;                      /* the mode's own state */
  unsigned open_handles;           /* timer, client, upstreams not yet closed */
  struct awf_transport *client;    /* set once opened */
  struct awf_transport *up;        /* the upstream, NULL: none */
  awf_dial *dial;
  uint64_t last_active; /* uv_now of the last byte either way */
  bool transparent;     /* redirected: orig_dst is where the client dialled */
  uint64_t id;          /* the log's conn: awf_log_next_conn() */
  /* The open record of the unit being logged (req, 0 outside HTTP) was
   * written: its final record must not write another. */
  bool open_logged;
  uint64_t open_req;
  char client_addr[AWF_ADDRSTRLEN];
  awf_client_entry *client_entry; /* this connection's count in client_limits */
  struct sockaddr_storage orig_dst;
  char orig_dst_addr[AWF_ADDRSTRLEN];
  /* Storage of the TCP transports; used through client and up only. */
  struct awf_tcp_transport client_tcp, up_tcp;
  uv_tcp_t client_handle;
};

/* The core's callbacks: every transport of a connection reports to them. */
extern const struct awf_transport_cbs conn_transport_cbs;

/* Take c (calloc()ed) into the proxy's books with its client transport
 * (whose owner is c, with conn_transport_cbs): state ACCEPTED, timer ready. */
void conn_open(struct conn *c, awf_proxy *p, struct awf_transport *client);
/* The same over c->client_handle, accepted already. */
void conn_open_tcp(struct conn *c, awf_proxy *p);

/* Give c a mode (state `s`): the previous mode's state is freed first. Not
 * from inside a callback of the previous mode's parser. */
void conn_set_mode(struct conn *c, const struct conn_mode_ops *ops, void *mode,
                   enum conn_state s);
void conn_set_state(struct conn *c, enum conn_state s);

void conn_set_timer(struct conn *c, enum conn_timer kind);
void conn_touch(struct conn *c); /* activity: sliding deadlines move */

/* Reading a side while the connection is neither draining nor closing. */
void conn_want_read(struct conn *c, struct awf_transport *t, bool want);

/* The upstream: attached (a transport of this connection, or a dialled or
 * pooled TCP handle it takes), detached (the handle back, for the pool; only
 * with nothing queued), or dropped (closed). */
void conn_attach_up(struct conn *c, struct awf_transport *t);
void conn_attach_up_tcp(struct conn *c, uv_tcp_t *tcp);
uv_tcp_t *conn_detach_up_tcp(struct conn *c);
void conn_drop_upstream(struct conn *c);

/* Layer TLS over the client transport (server role: a leaf for the client)
 * or over the upstream (client role: the origin verified), as *side says
 * (&c->client or &c->up); the TLS transport is allocated here and freed
 * once closed. Returns 0 or a uv error (*side untouched). */
int conn_wrap_tls(struct conn *c, struct awf_transport **side, SSL_CTX *ctx,
                  const struct awf_tls_params *prm);

/* Close now: the mode's on_close, then every handle. Idempotent, safe from
 * any callback. */
void conn_close(struct conn *c);
/* Stop reading, let queued writes to the client drain, send FIN, then close
 * (within the linger deadline). */
void conn_close_after_writes(struct conn *c);

uint64_t conn_now_ms(const struct conn *c);

/* conn_log.c: access-log records of a connection. conn_log_open writes the
 * `open` record of a decision (r is the record the unit will end with, or the
 * part of it known so far: decision fields are copied, conn and client filled
 * in); conn_log writes a final record, preceded by its open record when none
 * was written for that unit (a decision and its end in one go). */
void conn_log_open(struct conn *c, const struct awf_log_record *r);
void conn_log(struct conn *c, struct awf_log_record *r);
void conn_log_failed(const awf_proxy *p, int err);
/* The record of a redirected connection refused before a byte was relayed
 * (a port, a client, an SSH name): event tcp, its original destination,
 * host when a name was judged (may be NULL). */
void conn_log_refusal(struct conn *c, const char *host, enum awf_reason reason);

#endif
