/* dialer.h: reach an upstream host: resolve the name (or take the IP
 * literal), keep only the addresses the destination-address policy admits,
 * and connect to them in order, each within a timeout. The addresses dialled
 * are exactly the ones checked: there is no second lookup. */
#ifndef AWF_DIALER_H
#define AWF_DIALER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "addr_policy.h"
#include "host_access.h"
#include "reason.h"
#include "resolver.h"

struct awf_metrics;

typedef struct awf_dial awf_dial;

struct awf_dial_result {
  int status;                   /* 0, or a negative uv/errno value */
  enum awf_reason reason;       /* on failure: dns_failure, private_destination,
                            upstream_unreachable, timeout */
  uv_tcp_t *tcp;                /* on success: connected; the caller owns it now and
                            must uv_close() it with a callback that free()s it */
  struct sockaddr_storage peer; /* the address connected (or last tried) */
  bool have_peer;
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
