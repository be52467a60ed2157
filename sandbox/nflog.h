/* nflog.h: what the sandbox's firewall refused, as the kernel reports it.
 *
 * The ruleset (nft_ruleset.h) sends a copy of the head of each refused
 * packet (TCP to a port that is not let out, UDP, ICMP, anything else) to an
 * NFLOG group, rate-limited in the ruleset itself. A netlink socket made
 * inside the sandbox's network namespace receives them, so the supervisor
 * can log and summarise denials that never reached the proxy. The parser is
 * pure (fuzzable, unit-tested); awf_nflog_open is the only I/O. */
#ifndef AWF_NFLOG_H
#define AWF_NFLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define AWF_NFLOG_GROUP 7       /* the sandbox's own namespace: any number serves */
#define AWF_NFLOG_COPY_BYTES 64 /* IPv6 header + the transport's ports */

/* One refused packet. */
struct awf_nflog_packet {
  uint8_t proto;               /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP(V6), ... */
  struct sockaddr_storage dst; /* AF_INET or AF_INET6, port set for TCP/UDP */
};

/* Parse a buffer of netlink messages as received from the NFLOG socket.
 * Writes at most max packets into out; returns how many, or -EBADMSG when
 * the buffer is not a well-formed sequence of netlink messages. Messages
 * that are not NFLOG packets, and packets whose payload is not an IPv4 or
 * IPv6 header it can read, are skipped. */
int awf_nflog_parse(const uint8_t *buf, size_t len, struct awf_nflog_packet *out, size_t max);

/* A non-blocking, close-on-exec netlink socket bound to NFLOG group
 * `group` in the calling thread's network namespace, copying
 * AWF_NFLOG_COPY_BYTES of each packet. Returns the fd or -errno. */
int awf_nflog_open(uint16_t group);

/* The log names of a refused packet's protocol: "tcp", "udp", "icmp", "ip". */
const char *awf_nflog_event(uint8_t proto);

#endif
