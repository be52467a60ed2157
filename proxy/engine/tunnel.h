/* tunnel.h: the tunnel mode (tunnel.c): a CONNECT tunnel, redirected TLS
 * judged by its SNI, and raw TCP judged before (SSH, the host's services).
 * Not a public header. */
#ifndef AWF_TUNNEL_H
#define AWF_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"
#include "reason.h"

struct conn;

/* An admitted TLS tunnel to a host interception opens (--ssl-bump,
 * intercept.h): TLS is layered over both sides (a leaf for the client, the
 * origin verified) and the connection is handed, with what its own log
 * record needs, to the HTTP mode (awf_proxy.start_intercepted). */
struct tunnel_handoff {
  bool connect; /* an explicit CONNECT (event connect), else redirected (tls) */
  char host[256];
  uint16_t port;
  uint64_t req; /* the CONNECT's request number (0: redirected) */
  uint64_t started_ms;
  bool sni_seen, ech;
  char sni[256];
  char upstream[AWF_ADDRSTRLEN];
  bool would_deny;
  enum awf_reason audit_reason;
};

/* The tunnel's final record, written by the mode it was handed to: bytes
 * are those of the requests carried inside. */
void tunnel_log_handoff(struct conn *c, const struct tunnel_handoff *h,
                        enum awf_decision decision, enum awf_reason reason, int64_t bytes_up,
                        int64_t bytes_down);

/* Take over a connection whose CONNECT was admitted and dialled (c->up).
 * `early` holds client bytes that followed the CONNECT head (may be empty).
 * The previous mode's state is freed here: tp is copied first. */
struct tunnel_params {
  const char *host;
  size_t host_len;
  uint16_t port;
  bool host_is_ip;
  bool would_deny; /* audit mode: the ACL would have denied */
  enum awf_reason audit_reason;
  const char *upstream; /* "ip:port" dialled */
  uint64_t started_ms;
  uint64_t req;     /* the CONNECT's request number, for the log */
  bool host_access; /* admitted as one of the host's services */
};
int tunnel_start(struct conn *c, const struct tunnel_params *tp, const char *early,
                 size_t early_len);

/* A redirected connection to a TLS port: judge its ClientHello's SNI, then
 * dial that name (never the original address) on the same port. */
int tunnel_start_transparent(struct conn *c);

/* A redirected connection judged already (ssh_gate.c): dial `dial` (an
 * address) or else `host` on `port`, relay raw bytes both ways, log `event`
 * with host. The open record is written here. */
struct tunnel_raw {
  const char *event;
  const char *host;
  const char *dial; /* NULL: dial host */
  uint16_t port;
  bool would_deny;
  enum awf_reason audit_reason;
};
int tunnel_start_raw(struct conn *c, const struct tunnel_raw *r);

/* A redirected connection to the host's sandbox-side address
 * (host_access.h): on one of its ports, raw TCP relayed to its targets; on
 * another, denied (host_port_not_allowed). */
int tunnel_start_host(struct conn *c);

#endif
