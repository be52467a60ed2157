/* conn_rate.c: the engine's side of --rate-limit and --bytes-limit: the
 * buckets (rate_limit.h) asked and charged on the loop's clock (uv_now, a
 * monotonic one). */
#include <string.h>

#include "conn.h"

unsigned conn_rate_check(struct conn *c, const char *host, bool take, bool *would_deny,
                         enum awf_reason *audit_reason) {
  awf_proxy *p = c->proxy;
  unsigned retry = awf_rate_limits_admit(p->cfg.rate_limits, host, strlen(host),
                                         uv_now(p->loop), take);
  if (retry == 0 || !p->cfg.audit)
    return retry;
  if (!*would_deny) { /* --audit: let it go, and say it would not have */
    *would_deny = true;
    *audit_reason = AWF_REASON_RATE_LIMITED;
  }
  return 0;
}

void conn_rate_charge(struct conn *c, const char *host, size_t n) {
  awf_proxy *p = c->proxy;
  if (p->cfg.rate_limits)
    awf_rate_limits_charge(p->cfg.rate_limits, host, strlen(host), n, uv_now(p->loop));
}
