/* addr_policy.h: the destination-address policy. Applied to every address a
 * name resolves to and to IP literals, so that a permitted name cannot lead to
 * an internal service (DNS rebinding, cloud metadata at 169.254.169.254).
 * Denied unless inside an --allow-destination-cidrs entry: loopback,
 * unspecified, link-local, RFC 1918, CGNAT 100.64/10, ULA fc00::/7, multicast,
 * broadcast, and the IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96),
 * IPv4-translated (::ffff:0:0:0/96), NAT64 (64:ff9b::/96) and 6to4
 * (2002::/16) forms of the IPv4 ones. Pure C, no I/O. */
#ifndef AWF_ADDR_POLICY_H
#define AWF_ADDR_POLICY_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct awf_addr_policy awf_addr_policy;

awf_addr_policy *awf_addr_policy_new(void);
void awf_addr_policy_free(awf_addr_policy *p);

/* Add comma-separated CIDRs ("10.0.0.0/8,fd00::/8,127.0.0.1"; a bare address
 * is a /32 or /128) that are admitted even though private. Returns 0,
 * -EINVAL with a message naming the entry in err, or -ENOMEM. */
int awf_addr_policy_allow_cidrs(awf_addr_policy *p, const char *list,
                                char *err, size_t errlen);

/* NULL when the address may be dialled; otherwise the name of the denied
 * range ("loopback", "rfc1918", "link_local", "cgnat", "ula", "multicast",
 * "unspecified", "broadcast", ...). Accepts AF_INET and AF_INET6 sockaddrs;
 * anything else is denied as "unsupported_family". */
const char *awf_addr_policy_check(const awf_addr_policy *p,
                                  const struct sockaddr *sa);

#endif
