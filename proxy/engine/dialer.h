/* dialer.h: reach an upstream host: resolve the name (or take the IP
 * literal), keep only the addresses the destination-address policy admits,
 * and connect to them in order, each within a timeout. The addresses dialled
 * are exactly the ones checked: there is no second lookup.
 *
 * With a parent proxy (params.via, --upstream-proxy) the dial goes to the
 * parent instead: its name is resolved and its addresses dialled without the
 * address policy (the operator named it), then "CONNECT host:port" is sent
 * and the parent's answer head read, never a byte beyond it. A 2xx makes the
 * connection the origin's: the caller gets it as it would a direct one. The
 * origin's name is not resolved here (the parent does that), so the address
 * policy cannot judge the origin (docs/security.md). */
#ifndef AWF_DIALER_H
#define AWF_DIALER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "addr_policy.h"
#include "host_access.h"
#include "reason.h"
#include "resolver.h"
#include "upstream_proxy.h"

struct awf_metrics;

typedef struct awf_dial awf_dial;

struct awf_dial_result {
  int status;                   /* 0, or a negative uv/errno value */
  enum awf_reason reason;       /* on failure: dns_failure, private_destination,
                            upstream_unreachable, timeout, upstream_proxy_failed */
  uv_tcp_t *tcp;                /* on success: connected; the caller owns it now and
                            must uv_close() it with a callback that free()s it */
  struct sockaddr_storage peer; /* the address connected (or last tried) */
  bool have_peer;
  bool via_proxy;     /* peer is the parent proxy's address (params.via) */
  bool proxy_reached; /* connected to the parent (failed: it answered badly) */
  int proxy_status;   /* the parent's answer to CONNECT, 0 if none was read */
};

typedef void (*awf_dial_cb)(const struct awf_dial_result *r, void *arg);

struct awf_dial_params {
  uv_loop_t *loop;
  awf_resolver *resolver;
  const awf_addr_policy *policy;
  unsigned connect_timeout_ms;
  const char *host; /* normalised name, or IP literal without brackets */
  uint16_t port;
  /* Optional: the host's names are not resolved but dial its targets, which
   * the address policy does not judge (host_access.h). */
  const struct awf_host_access *host_access;
  /* Optional: reach host:port through this parent proxy's CONNECT, unless
   * host is one of the host's services or on its NO_PROXY list. */
  const struct awf_upstream_proxy *via;
  const struct awf_proxy *proxy; /* optional: warnings about the parent proxy */
  struct awf_metrics *metrics;   /* optional: each connect's time is observed */
  const struct awf_proxy *debug; /* non-NULL: each address refused or tried, as
                                    debug diagnostics of this engine */
};

/* Starts dialling. The callback runs exactly once, never from inside this
 * call, unless awf_dial_cancel() comes first. Returns 0 or a negative errno. */
int awf_dial_start(const struct awf_dial_params *prm, awf_dial_cb cb, void *arg,
                   awf_dial **out);

/* The callback will not run; everything the dial holds is released. */
void awf_dial_cancel(awf_dial *d);

#endif
