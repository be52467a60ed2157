/* ssh_gate.c: judge a redirected connection to port 22 by the name the
 * command resolved (ssh_gate.h), then hand it to tunnel.c's raw relay. */
#include "ssh_gate.h"

#include <string.h>
#include <sys/socket.h>

#include "conn.h"
#include "dns_server.h"
#include "netaddr.h"
#include "tunnel.h"

void awf_ssh_judge(const awf_acl *ssh_acl, const awf_acl *acl, bool audit,
                   const struct awf_dns_memory_name *names, size_t n,
                   const struct sockaddr *dst, struct awf_ssh_verdict *v) {
  memset(v, 0, sizeof(*v));
  const char *blocked = NULL;
  for (size_t i = 0; i < n; i++) {
    const char *name = names[i].name;
    if (awf_dns_acl_check(acl, name, strlen(name)) == AWF_ACL_BLOCKED) {
      if (!blocked)
        blocked = name; /* a block always wins, for this name */
      continue;
    }
    if (awf_acl_check(ssh_acl, name, strlen(name), AWF_PROTO_TLS) == AWF_ACL_ALLOWED) {
      v->name = name;
      v->dial_address = names[i].pinned;
      return;
    }
  }
  /* No name admitted: an IP rule may still admit the address itself. */
  char ip[AWF_ADDRSTRLEN];
  awf_sockaddr_format_ip(dst, ip, sizeof(ip));
  if (awf_dns_acl_check(acl, ip, strlen(ip)) != AWF_ACL_BLOCKED &&
      awf_acl_check(ssh_acl, ip, strlen(ip), AWF_PROTO_TLS) == AWF_ACL_ALLOWED) {
    v->dial_address = true;
    return;
  }
  if (n == 0) {
    v->reason = "unknown_destination"; /* nothing to dial, even under --audit */
    return;
  }
  v->name = blocked ? blocked : names[0].name;
  v->reason = blocked ? "blocked" : "ssh_not_allowed";
  if (audit) {
    v->would_deny = true;
    v->dial_address = blocked ? false : names[0].pinned;
  }
}

/* A reset, as for a port that is not redirected: ssh reports "Connection
 * reset by peer" at once. */
static void ssh_deny(struct conn *c, const char *name, const char *reason) {
  struct awf_log_record r;
  awf_log_record_init(&r);
  r.event = "tcp";
  if (name) {
    r.host = name;
    r.host_len = strlen(name);
  }
  r.port = AWF_SSH_PORT;
  r.original_dst = c->orig_dst_addr;
  r.decision = "deny";
  r.reason = reason;
  r.bytes_up = r.bytes_down = 0;
  r.duration_ms = 0;
  conn_log(c, &r);
  int fd = awf_transport_fileno(c->client);
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  if (fd >= 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  conn_close(c);
}

int ssh_conn_start(struct conn *c) {
  awf_proxy *p = c->proxy;
  const struct sockaddr *dst = (const struct sockaddr *)&c->orig_dst;
  struct awf_dns_memory_name names[AWF_DNS_MEMORY_NAMES_MAX];
  size_t n = p->cfg.dns_memory ? awf_dns_memory_lookup(p->cfg.dns_memory, dst, uv_now(p->loop),
                                                       names, AWF_DNS_MEMORY_NAMES_MAX)
                               : 0;
  struct awf_ssh_verdict v;
  awf_ssh_judge(p->cfg.ssh_acl, p->cfg.acl, p->cfg.audit, names, n, dst, &v);
  if (v.reason && !v.would_deny) {
    ssh_deny(c, v.name, v.reason);
    return 0;
  }
  char ip[AWF_ADDRSTRLEN];
  awf_sockaddr_format_ip(dst, ip, sizeof(ip));
  struct tunnel_raw r = {.event = "tcp", .host = v.name ? v.name : ip,
                         .dial = v.dial_address ? ip : NULL, .port = AWF_SSH_PORT,
                         .would_deny = v.would_deny, .audit_reason = v.reason};
  return tunnel_start_raw(c, &r);
}
