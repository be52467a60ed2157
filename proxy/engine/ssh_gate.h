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
 * rule in --allow-ssh admits it. The judgement is the policy's (policy.h,
 * AWF_ASK_SSH); ssh_gate.c acts on it. */
#ifndef AWF_SSH_GATE_H
#define AWF_SSH_GATE_H

#include "policy.h" /* AWF_SSH_PORT; the judgement is AWF_ASK_SSH */

/* ssh_gate.c: a redirected connection to port 22 with --allow-ssh: judged
 * by the name awf's DNS answered for its original address, then relayed by
 * the tunnel mode. Returns 0, or a negative errno (the caller closes c). */
struct conn;
int ssh_conn_start(struct conn *c);

#endif
