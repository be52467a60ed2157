/* nft_netlink.h: the sandbox's ruleset (nft_ruleset.h) programmed over
 * nf_tables netlink by our own encoder, without libnftables. The static
 * build's backend: Debian ships libnftables only as a shared library, and
 * libnftnl.a would still need libmnl, which has no static archive.
 *
 * The encoder emits the messages nft 1.0 itself sends for the text of
 * awf_nft_ruleset() (the same expressions, registers, set flags and set
 * userdata), so that `nft list ruleset` shows the same ruleset whichever
 * backend installed it; tests/e2e/test_static.py compares the two. */
#ifndef AWF_NFT_NETLINK_H
#define AWF_NFT_NETLINK_H

#include <stddef.h>
#include <stdint.h>

#include "nft_ruleset.h"

/* The whole ruleset as one nfnetlink batch (BATCH_BEGIN, table, chains, sets,
 * rules, BATCH_END), sequence numbers from seq0 on; every message but the
 * batch markers asks for an acknowledgement. *out is malloc'd (the caller
 * frees), *nmsg counts the acknowledged messages. 0, -EINVAL for a spec that
 * awf_nft_ruleset() refuses too (or a host alias that is not an address
 * literal), -ENOMEM. Pure: no socket. */
int awf_nft_batch(const struct awf_nft_spec *spec, uint32_t seq0, uint8_t **out, size_t *len,
                  unsigned *nmsg);

/* Build the batch and send it on a NETLINK_NETFILTER socket opened in the
 * calling thread's network namespace; wait for every acknowledgement. 0 or a
 * negative errno (the kernel's refusal, such as -ENOENT for a missing
 * nf_tables module or expression). */
int awf_nft_netlink_apply(const struct awf_nft_spec *spec);

#endif
