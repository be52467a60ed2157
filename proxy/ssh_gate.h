/* ssh_gate.h: SSH through awf's transparent listener (--allow-ssh).
 *
 * SSH carries no name on the wire, so the only name awf can judge is the one
 * the command resolved: the names awf's DNS server answered with the
 * connection's original address in this run, or the sandbox's /etc/hosts
 * entries (dns_memory.h). The connection is admitted when one of those names
 * is admitted by the --allow-ssh rules (and no --block-domains rule matches
 * it); the most recently answered such name is dialled on port 22, never the
 * address the command chose (an /etc/hosts name is dialled at its file's
 * address: awf's own resolver does not read the file). A CDN address shared
 * by an allowed and a denied name therefore reaches the allowed name only.
 * An address no name led to is refused (unknown_destination) unless an IP
 * rule in --allow-ssh admits it. */
#ifndef AWF_SSH_GATE_H
#define AWF_SSH_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "acl.h"
#include "dns_memory.h"

#define AWF_SSH_PORT 22

struct awf_ssh_verdict {
  const char *reason;       /* NULL: admitted; else ssh_not_allowed, blocked,
                             * unknown_destination */
  const char *name;         /* the name judged: logged, and dialled unless
                             * dial_address; NULL: none (the address) */
  bool dial_address;        /* dial the original address (/etc/hosts, IP rule) */
  bool would_deny;          /* --audit admitted it; reason says why it would not be */
};

/* Pure. names: dns_memory's names for the original address dst, most recent
 * first. acl: the domain ACL, consulted for block rules only. */
void awf_ssh_judge(const awf_acl *ssh_acl, const awf_acl *acl, bool audit,
                   const struct awf_dns_memory_name *names, size_t n,
                   const struct sockaddr *dst, struct awf_ssh_verdict *v);

/* ssh_gate.c: a redirected connection to port 22 with --allow-ssh: judged
 * by the name awf's DNS answered for its original address, then relayed by
 * the tunnel mode. Returns 0, or a negative errno (the caller closes c). */
struct conn;
int ssh_conn_start(struct conn *c);

#endif
