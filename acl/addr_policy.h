/* addr_policy.h: the destination-address policy. Applied to every address a
 * name resolves to and to IP literals, so that a permitted name cannot lead to
 * an internal service (DNS rebinding, cloud metadata at 169.254.169.254).
 * Denied unless inside an --allow-destination-cidrs entry: every block of
 * the IANA IPv4 and IPv6 Special-Purpose Address Registries that is not
 * "globally reachable" (most specific row wins), multicast, IPv6 outside
 * 2000::/3, 6to4 and Teredo, and the IPv4-mapped, -compatible, -translated
 * and NAT64 (64:ff9b::/96, 64:ff9b:1::/48) forms of denied IPv4 addresses.
 * Details in addr_policy.c. Pure C, no I/O. */
#ifndef AWF_ADDR_POLICY_H
#define AWF_ADDR_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct awf_addr_policy awf_addr_policy;

awf_addr_policy *awf_addr_policy_new(void);
void awf_addr_policy_free(awf_addr_policy *p);

/* Add comma-separated CIDRs ("10.0.0.0/8,fd00::/8,127.0.0.1"; a bare address
 * is a /32 or /128) that are admitted even though private. Returns 0,
 * -EINVAL with a message naming the entry in err, or -ENOMEM. */
int awf_addr_policy_allow_cidrs(awf_addr_policy *p, const char *list, char *err, size_t errlen);

/* Is the address inside one of the CIDRs added above? Nothing else is
 * consulted (for --allow-clients); an IPv4-mapped IPv6 address (a client on
 * a dual-stack socket) is judged as its IPv4 address. */
bool awf_addr_policy_listed(const awf_addr_policy *p, const struct sockaddr *sa);

/* The CIDRs added, comma-separated ("none" when there are none), for
 * diagnostics; truncated to fit len. Returns the length it needed. */
size_t awf_addr_policy_format(const awf_addr_policy *p, char *buf, size_t len);

/* NULL when the address may be dialled; otherwise the name of the denied
 * range ("loopback", "private_use", "link_local", "shared_address_space",
 * "unique_local", "multicast", "6to4", "teredo", ...). Accepts AF_INET and
 * AF_INET6 sockaddrs; anything else is denied as "unsupported_family". */
const char *awf_addr_policy_check(const awf_addr_policy *p, const struct sockaddr *sa);

#endif
