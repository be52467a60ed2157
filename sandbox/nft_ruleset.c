/* nft_ruleset.c: the sandbox's firewall policy.
 *
 * One inet table, so IPv4 and IPv6 get the same treatment:
 *  - nat output: DNS (UDP and TCP 53) to any address goes to awf's DNS
 *    server; with host access, TCP to the host's sandbox-side addresses
 *    goes to awf's transparent listener, whatever the port; loopback traffic is left alone (the command's own local
 *    services and awf's explicit proxy port); TCP to an allowed port at any
 *    other address goes to awf's transparent listener.
 *  - filter output, policy drop: only what was redirected, replies, and
 *    loopback leave the socket layer. Other TCP ports, UDP (QUIC included),
 *    ICMP and raw packets are dropped, which senders see as EPERM. The head
 *    of the first refused packet to each destination goes to an NFLOG group
 *    first (see below for the bounds), so awf logs and summarises what the
 *    proxy never saw (nflog.h).
 * The namespace has nothing but lo, so nothing dropped here had anywhere
 * else to go anyway: the filter turns a hang into an immediate error. */
#include "nft_ruleset.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PORT_TEXT_MAX 12 /* "65535-65535, " */

static bool port_on(const uint8_t *bits, unsigned p) { return (bits[p >> 3] >> (p & 7)) & 1; }

/* "80, 443, 8000-8999": ranges folded, so "all ports" stays one word. */
static size_t format_ports(const uint8_t *bits, char *out, size_t cap) {
  size_t n = 0;
  for (unsigned p = 1; p <= 65535; p++) {
    if (!port_on(bits, p))
      continue;
    unsigned hi = p;
    while (hi < 65535 && port_on(bits, hi + 1))
      hi++;
    int w = hi == p ? snprintf(out + n, cap - n, "%s%u", n ? ", " : "", p)
                    : snprintf(out + n, cap - n, "%s%u-%u", n ? ", " : "", p, hi);
    if (w < 0 || (size_t)w >= cap - n)
      return 0;
    n += (size_t)w;
    p = hi;
  }
  return n;
}

long awf_nft_ruleset(const struct awf_nft_spec *spec, char **out) {
  static const char head[] =
      "table inet " AWF_NFT_TABLE " {\n"
      "%s"
      "  chain redirect_out {\n"
      "    type nat hook output priority -100; policy accept;\n"
      "    udp dport 53 redirect to :%u\n"
      "    tcp dport 53 redirect to :%u\n"
      "%s"
      "    ip daddr 127.0.0.0/8 return\n"
      "    ip6 daddr ::1 return\n"
      "    tcp dport { %s } redirect to :%u\n"
      "  }\n"
      "  chain filter_out {\n"
      "    type filter hook output priority 0; policy drop;\n"
      "    ct state established,related accept\n"
      "    ct status dnat accept\n"
      "    ip daddr 127.0.0.0/8 accept\n"
      "    ip6 daddr ::1 accept\n"
      /* A dropped SYN would make connect() retry for two minutes; a reset
       * fails it at once (ECONNREFUSED). Everything else: EPERM from the drop. */
      "%s"
      "    meta l4proto tcp reject with tcp reset\n"
      "  }\n"
      "}\n";
  /* Refused packets are reported once per destination (address, protocol,
   * port) every 10 s, so a flood to one destination cannot crowd out the
   * others; distinct destinations at most 200 a second; other protocols
   * (ICMP...) 20 a second. The sets are bounded: a full set reports nothing
   * new until entries expire. */
  char sets[512] = "", log_rule[1024] = "";
  if (spec->nflog_group) {
    unsigned g = spec->nflog_group;
    snprintf(sets, sizeof(sets),
             "  set refused4 { type ipv4_addr . inet_proto . inet_service; size 4096; "
             "flags dynamic,timeout; timeout 10s; }\n"
             "  set refused6 { type ipv6_addr . inet_proto . inet_service; size 4096; "
             "flags dynamic,timeout; timeout 10s; }\n");
    snprintf(log_rule, sizeof(log_rule),
             "    meta l4proto { tcp, udp } ip daddr . meta l4proto . th dport != @refused4 "
             "add @refused4 { ip daddr . meta l4proto . th dport } "
             "limit rate 200/second burst 400 packets log group %u\n"
             "    meta l4proto { tcp, udp } ip6 daddr . meta l4proto . th dport != @refused6 "
             "add @refused6 { ip6 daddr . meta l4proto . th dport } "
             "limit rate 200/second burst 400 packets log group %u\n"
             "    meta l4proto != { tcp, udp } limit rate 20/second burst 50 packets "
             "log group %u\n",
             g, g, g);
  }
  *out = NULL;
  if (!spec->tcp_ports || !spec->transparent_port || !spec->dns_port)
    return -EINVAL;
  char host_rules[256] = "";
  size_t hn = 0;
  if (spec->host_alias4)
    hn += (size_t)snprintf(host_rules, sizeof(host_rules),
                           "    ip daddr %s tcp dport 1-65535 redirect to :%u\n",
                           spec->host_alias4, (unsigned)spec->transparent_port);
  if (spec->host_alias6 && hn < sizeof(host_rules))
    hn += (size_t)snprintf(host_rules + hn, sizeof(host_rules) - hn,
                           "    ip6 daddr %s tcp dport 1-65535 redirect to :%u\n",
                           spec->host_alias6, (unsigned)spec->transparent_port);
  if (hn >= sizeof(host_rules))
    return -EINVAL;
  size_t cap = 65536 * PORT_TEXT_MAX / 2 + 1; /* alternate ports: the worst case */
  char *ports = malloc(cap);
  if (!ports)
    return -ENOMEM;
  if (format_ports(spec->tcp_ports, ports, cap) == 0) {
    free(ports);
    return -EINVAL;
  }
  size_t len = sizeof(head) + strlen(sets) + strlen(ports) + strlen(log_rule) + hn + 32;
  char *text = malloc(len);
  if (!text) {
    free(ports);
    return -ENOMEM;
  }
  int w = snprintf(text, len, head, sets, spec->dns_port, spec->dns_port, host_rules, ports,
                   spec->transparent_port, log_rule);
  free(ports);
  if (w < 0 || (size_t)w >= len) {
    free(text);
    return -EINVAL;
  }
  *out = text;
  return w;
}
