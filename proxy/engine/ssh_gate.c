/* ssh_gate.c: judge a redirected connection to port 22 by the name the
 * command resolved (ssh_gate.h), then hand it to tunnel.c's raw relay. */
#include "ssh_gate.h"

#include <string.h>
#include <sys/socket.h>

#include "conn.h"
#include "dns_server.h"
#include "netaddr.h"
#include "tunnel.h"

/* A reset, as for a port that is not redirected: ssh reports "Connection
 * reset by peer" at once. */
static void ssh_deny(struct conn *c, const char *name, enum awf_reason reason) {
  conn_log_refusal(c, name, reason);
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
  char ip[AWF_ADDRSTRLEN];
  awf_sockaddr_format_ip(dst, ip, sizeof(ip));
  struct awf_ask_facts f = {.kind = AWF_ASK_SSH, .ssh = {.names = names, .n = n, .dst_ip = ip}};
  struct awf_verdict v = awf_policy_judge(&p->policy, &f);
  if (v.decision == AWF_DENY) {
    ssh_deny(c, v.name, v.reason);
    return 0;
  }
  struct tunnel_raw r = {.event = "tcp",
                         .host = v.name ? v.name : ip,
                         .dial = v.dial_address ? ip : NULL,
                         .port = AWF_SSH_PORT,
                         .would_deny = v.would_deny,
                         .audit_reason = v.would_deny ? v.reason : AWF_REASON_NONE};
  return tunnel_start_raw(c, &r);
}
