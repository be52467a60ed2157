/* host_access.h: the host's own services, seen from a sandbox (awf
 * --enable-host-access). A few names (host.docker.internal,
 * host.awf.internal) and one sandbox-side address per family stand for the
 * host; a connection to them on an allowed host port is relayed by the proxy
 * to the host's loopback (target), from the host's network namespace, and on
 * no other port. No route to the host is ever opened.
 *
 * Pure functions over a caller-owned description: the engine (listener.c,
 * http_proxy.c, tunnel.c, dialer.c) and the DNS server consult it; a NULL
 * description means no host access, and every answer is "not the host". */
#ifndef AWF_HOST_ACCESS_H
#define AWF_HOST_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "netaddr.h" /* struct awf_addr_list */
#include "port_set.h"

/* The names the reference and Docker use, and awf's own. */
#define AWF_HOST_ALIAS_NAME "host.docker.internal"
#define AWF_HOST_ALIAS_NAME2 "host.awf.internal"
/* Sandbox-side addresses of the host: next to the sandbox's own 198.18.0.1
 * and fd00:198:18::1 (benchmarking and ULA ranges no real service uses). */
#define AWF_HOST_ALIAS_ADDR4 "198.18.0.2"
#define AWF_HOST_ALIAS_ADDR6 "fd00:198:18::2"

#define AWF_HOST_NAMES_MAX 4
#define AWF_HOST_TARGETS_MAX 2

struct awf_host_access {
  const char *names[AWF_HOST_NAMES_MAX]; /* lower-case, no trailing dot; [0] is logged */
  size_t n_names;
  struct sockaddr_storage alias[2]; /* the sandbox-side addresses (port 0) */
  size_t n_alias;
  struct sockaddr_storage target[AWF_HOST_TARGETS_MAX]; /* dialled in order (port 0) */
  size_t n_target;
  struct awf_port_set ports; /* the host ports that may be reached */
};

/* The names and addresses above, targets 127.0.0.1 then ::1, no port yet. */
void awf_host_access_default(struct awf_host_access *h);

enum awf_host_verdict {
  AWF_HOST_NONE = 0,    /* not the host (or no host access) */
  AWF_HOST_ALLOWED,     /* the host, on an allowed port */
  AWF_HOST_PORT_DENIED, /* the host, on a port not in its list */
};

/* Is `host` (as a client sent it: any case, a trailing dot) one of the
 * host's names, and may `port` be reached on it? */
enum awf_host_verdict awf_host_access_check(const struct awf_host_access *h, const char *host,
                                            size_t len, uint16_t port);

/* Is this (any port) one of the host's sandbox-side addresses? */
bool awf_host_access_is_alias(const struct awf_host_access *h, const struct sockaddr *addr);

/* The addresses to dial for `host` on `port`: the targets when it is the host
 * on an allowed port (returns their number), an empty list when it is the host
 * on another port (returns 0), and -1 when it is not the host (resolve it). */
int awf_host_access_targets(const struct awf_host_access *h, const char *host, size_t len,
                            uint16_t port, struct awf_addr_list *out);

/* Ports the reference refuses in --allow-host-ports (SSH, mail, file
 * sharing, remote desktop, databases): the service's name, or NULL. */
const char *awf_host_port_danger(uint16_t port);

/* The lowest port of the set that awf_host_port_danger names, or 0. */
uint16_t awf_host_ports_first_danger(const struct awf_port_set *s);

#endif
