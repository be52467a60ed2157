/* netaddr.h: socket addresses as text, the way logs and flags spell them:
 * "1.2.3.4:80" and "[::1]:80". */
#ifndef AWF_NETADDR_H
#define AWF_NETADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define AWF_ADDRSTRLEN 56 /* "[" INET6_ADDRSTRLEN "]:65535" */

#define AWF_RESOLVE_MAX_ADDRS 16

/* The addresses a name resolved to (resolver.h), or the host's targets. */
struct awf_addr_list {
  size_t n;
  uint32_t ttl_s;                                      /* the TTL applied (capped) */
  struct sockaddr_storage addr[AWF_RESOLVE_MAX_ADDRS]; /* ports are 0 */
};

/* Format an AF_INET/AF_INET6 address with its port. Returns out. */
char *awf_sockaddr_format(const struct sockaddr *sa, char *out, size_t outsz);

/* The address alone, without brackets or port ("::1", "10.0.0.5"). Returns out. */
char *awf_sockaddr_format_ip(const struct sockaddr *sa, char *out, size_t outsz);

/* Parse "ip:port" or "[v6]:port" (port required, 0..65535). Returns 0 or -EINVAL. */
int awf_sockaddr_parse(const char *s, struct sockaddr_storage *out);

void awf_sockaddr_set_port(struct sockaddr_storage *ss, uint16_t port);
socklen_t awf_sockaddr_len(const struct sockaddr *sa);
uint16_t awf_sockaddr_port(const struct sockaddr *sa);

/* Same family, address and port. */
int awf_sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b);

#endif
