/* nft_ruleset.h: the nftables ruleset of the sandbox's network namespace, as
 * text for libnftables. A pure function, so the policy can be read and tested
 * without a kernel. */
#ifndef AWF_NFT_RULESET_H
#define AWF_NFT_RULESET_H

#include <stddef.h>
#include <stdint.h>

#define AWF_NFT_TABLE "awf"

struct awf_nft_spec {
  const uint8_t *tcp_ports;  /* bitmap of 65536 bits: TCP ports to redirect */
  uint16_t transparent_port; /* where redirected TCP goes (on loopback) */
  uint16_t dns_port;         /* where DNS (UDP and TCP 53) goes */
  uint16_t nflog_group;      /* refused packets are reported to it (rate-limited); 0: none */
  /* Host access: the host's sandbox-side addresses (literals). Every TCP
   * port of them goes to the transparent listener, which relays the host's
   * ports and refuses the rest by name. NULL: none. */
  const char *host_alias4, *host_alias6;
};

/* The ruleset as a NUL-terminated string (malloc'd, the caller frees) in *out.
 * Returns its length, -EINVAL for a spec with no port or a zero target
 * port, -ENOMEM. */
long awf_nft_ruleset(const struct awf_nft_spec *spec, char **out);

#endif
