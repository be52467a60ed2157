/* conn.h: internals shared by the engine's files: listener.c (accept, close,
 * shutdown), http_proxy.c (explicit proxy requests), tunnel.c (CONNECT relay).
 * Not a public header. */
#ifndef AWF_CONN_H
#define AWF_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "client_limits.h"
#include "dialer.h"
#include "events.h"
#include "jsonlog.h"
#include "list.h"
#include "netaddr.h"
#include "policy.h"
#include "proxy.h"
#include "upstream_pool.h"

#define AWF_READ_BUF_SIZE (64 * 1024)
/* Stop reading a side while its peer has more than this queued for writing. */
#define AWF_WRITE_HIGH_WATER (256 * 1024)

struct listener {
  uv_tcp_t tcp;
  awf_proxy *proxy;
  struct awf_list link;   /* in awf_proxy.listeners */
  bool transparent;     /* connections were redirected here by nftables */
  bool paused;          /* a connection is waiting in the kernel queue (at the cap) */
};

struct awf_proxy {
  uv_loop_t *loop;
  struct awf_proxy_config cfg;
  struct awf_policy policy;     /* the judge, over cfg's ACLs, ports, host access, audit */
  struct awf_event_sink events; /* every access-log record goes through it (events.h) */
  struct awf_list listeners;
  struct awf_list conns;   /* every open client connection */
  unsigned nconns;
  unsigned open_handles; /* listeners, grace timer, log_flush, upool not yet closed */
  bool shutting_down;
  uv_timer_t grace_timer;
  uv_prepare_t log_flush;  /* writes the batched access-log lines each iteration */
  awf_upool *upool;        /* idle upstream connections for any client (may be NULL) */
  awf_client_limits *client_limits; /* open connections per client (NULL: no limit) */
  uint64_t unlisted_next_log_ms;     /* --allow-clients refusals: next one logged */
  void (*done)(void *);
  void *done_arg;
  char readbuf[AWF_READ_BUF_SIZE]; /* shared by every read: data is consumed
                                      or copied inside the read callback */
  bool readbuf_lent;
};

enum conn_phase {
  PH_HTTP,          /* reading and forwarding HTTP requests */
  PH_TUNNEL_HELLO,  /* CONNECT established, reading the first client bytes */
  PH_TUNNEL,        /* relaying both ways */
  PH_CLOSING,
};

enum conn_timer {
  T_NONE,
  T_IDLE,           /* keep-alive wait for the next request */
  T_HEADER,         /* request head must complete */
  T_EXCHANGE,       /* inactivity while a request/response is under way */
  T_TUNNEL,         /* tunnel inactivity */
  T_HELLO,          /* ClientHello must arrive */
  T_LINGER,         /* graceful close must finish */
};

struct http_state;
struct tunnel_state;

struct conn {
  uv_tcp_t client;         /* first: the conn is the client handle's container */
  awf_proxy *proxy;
  struct awf_list link;    /* in awf_proxy.conns */
  uv_timer_t timer;
  enum conn_phase phase;
  enum conn_timer timer_kind;
  unsigned open_handles;
  uv_tcp_t *up;            /* upstream, owned; free()d in its close callback */
  awf_dial *dial;
  struct http_state *http; /* while in PH_HTTP */
  struct tunnel_state *tun;/* CONNECT request details and hello buffer */
  uint64_t last_active;    /* uv_now of the last byte either way */
  bool client_eof, up_eof;
  bool client_shut, up_shut;
  bool client_reading, up_reading;
  bool draining;           /* closing once writes to the client drain */
  bool transparent;         /* redirected: orig_dst is where the client dialled */
  uint64_t id;              /* the log's conn: awf_log_next_conn() */
  /* The open record of the unit being logged (req, 0 outside HTTP) was
   * written: its final record must not write another. */
  bool open_logged;
  uint64_t open_req;
  char client_addr[AWF_ADDRSTRLEN];
  awf_client_entry *client_entry; /* this connection's count in client_limits */
  struct sockaddr_storage orig_dst;
  char orig_dst_addr[AWF_ADDRSTRLEN];
};

/* listener.c */
void conn_close(struct conn *c);
void conn_close_after_writes(struct conn *c);
void conn_drop_upstream(struct conn *c);
void conn_set_timer(struct conn *c, enum conn_timer kind);
void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
/* Access-log records of a connection. conn_log_open writes the `open`
 * record of a decision (r is the record the unit will end with, or the part of
 * it known so far: decision fields are copied, conn and client filled in);
 * conn_log writes a final record, preceded by its open record when none was
 * written for that unit (a decision and its end in one go). */
void conn_log_open(struct conn *c, const struct awf_log_record *r);
void conn_log(struct conn *c, struct awf_log_record *r);
uint64_t conn_now_ms(const struct conn *c);

/* listener.c: a redirected connection to a port that is neither TLS nor HTTP */
void conn_deny_port(struct conn *c, enum awf_reason reason);

/* ssh_gate.c: a redirected connection to port 22 with --allow-ssh: judged
 * by the name awf's DNS answered for its original address. Returns 0, or a
 * negative errno (the caller closes c). */
int ssh_conn_start(struct conn *c);

/* http_proxy.c */
int http_conn_start(struct conn *c);
void http_on_timer(struct conn *c);
void http_on_close(struct conn *c);
void http_free(struct conn *c);
void http_send_error(struct conn *c, int status, const char *host, int port,
                     enum awf_reason reason);

/* tunnel.c: take over a connection whose CONNECT was admitted and dialled.
 * `early` holds client bytes that followed the CONNECT head (may be empty). */
struct tunnel_params {
  const char *host;
  size_t host_len;
  uint16_t port;
  bool host_is_ip;
  bool would_deny;          /* audit mode: the ACL would have denied */
  enum awf_reason audit_reason;
  const char *upstream;     /* "ip:port" dialled */
  uint64_t started_ms;
  uint64_t req;             /* the CONNECT's request number, for the log */
  bool host_access;         /* admitted as one of the host's services */
};
int tunnel_start(struct conn *c, const struct tunnel_params *tp,
                 const char *early, size_t early_len);
/* tunnel.c: a redirected connection to a TLS port: judge its ClientHello's
 * SNI, then dial that name (never the original address) on the same port. */
int tunnel_start_transparent(struct conn *c);
/* tunnel.c: a redirected connection judged already (ssh_gate.c): dial
 * `dial` (an address) or else `host` on `port`, relay raw bytes both ways,
 * log `event` with host. The open record is written here. */
struct tunnel_raw {
  const char *event;
  const char *host;
  const char *dial;         /* NULL: dial host */
  uint16_t port;
  bool would_deny;
  enum awf_reason audit_reason;
};
int tunnel_start_raw(struct conn *c, const struct tunnel_raw *r);

/* tunnel.c: a redirected connection to the host's sandbox-side address
 * (host_access.h): on one of its ports, raw TCP relayed to its targets;
 * on another, denied (host_port_not_allowed). */
int tunnel_start_host(struct conn *c);
void tunnel_on_timer(struct conn *c);
void tunnel_on_close(struct conn *c);
void tunnel_free(struct conn *c);

#endif
