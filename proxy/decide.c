/* decide.c: deciding on a host (port, the host's services, the domain ACL,
 * audit), shared by every mode. */
#include <string.h>

#include "conn.h"
#include "host_access.h"

const char *proxy_decide(const awf_proxy *p, const char *host, size_t len,
                         uint16_t port, enum awf_acl_proto proto, bool *would_deny,
                         const char **audit_reason) {
  const char *reason = NULL;
  *would_deny = false;
  *audit_reason = NULL;
  /* The host's services answer to their own port list, not to the ACL or
   * --allow-ports; another port of the host is refused even under --audit,
   * since no allowlist rule could admit it. */
  switch (awf_host_access_check(p->cfg.host_access, host, len, port)) {
  case AWF_HOST_ALLOWED: return NULL;
  case AWF_HOST_PORT_DENIED: return "host_port_not_allowed";
  case AWF_HOST_NONE: break;
  }
  if (!awf_port_set_has(&p->cfg.allow_ports, port)) {
    reason = "port_not_allowed";
  } else {
    enum awf_acl_verdict v = awf_acl_check(p->cfg.acl, host, len, proto);
    if (v != AWF_ACL_ALLOWED)
      reason = awf_acl_verdict_name(v);
    /* Admitted for the other scheme only (an https:// or http:// rule): say
     * so, since suggesting the bare name would widen the rule to both. */
    enum awf_acl_proto other = proto == AWF_PROTO_TLS ? AWF_PROTO_HTTP : AWF_PROTO_TLS;
    if (v == AWF_ACL_NOT_ALLOWED && awf_acl_check(p->cfg.acl, host, len, other) == AWF_ACL_ALLOWED)
      reason = "scheme_not_allowed";
  }
  /* Audit admits what the ACL would deny; a name that is not a host name at
   * all cannot be dialled, so it stays denied. */
  if (reason && p->cfg.audit && strcmp(reason, "invalid_name") != 0) {
    *would_deny = true;
    *audit_reason = reason;
    return NULL;
  }
  return reason;
}
