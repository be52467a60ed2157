/* dns_memory.h: which names awf's DNS server answered with which address in
 * this run, so that a connection carrying no name on the wire (SSH) can be
 * judged by the name the command resolved to reach that address.
 *
 * A bounded table of (address, name) pairs. A pair noted from a DNS answer
 * expires AWF_DNS_MEMORY_GRACE_S seconds after the answer's TTL ran out (a
 * client connects some time after it resolved); the least recently answered
 * pair goes first when the table is full. Pairs pinned from the sandbox's
 * /etc/hosts never expire and are never evicted (at most half the table).
 * An address answered for several names keeps them all: the caller decides
 * which, if any, it may use (ssh_gate.c: the most recent name that its rules
 * admit, and that name is dialled, never the address).
 *
 * Pure: no I/O, no clock (the caller passes the time). A mutex guards the
 * table: the DNS server notes in one thread what engines in others look up
 * (awf --workers). */
#ifndef AWF_DNS_MEMORY_H
#define AWF_DNS_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hostname.h"

#define AWF_DNS_MEMORY_MAX 4096     /* pairs remembered at most */
#define AWF_DNS_MEMORY_GRACE_S 120  /* after the TTL: a client may connect late */
#define AWF_DNS_MEMORY_NAMES_MAX 16 /* names a lookup reports, most recent first */

typedef struct awf_dns_memory awf_dns_memory;

/* max_entries 0: AWF_DNS_MEMORY_MAX. NULL on out of memory. */
awf_dns_memory *awf_dns_memory_new(size_t max_entries);
void awf_dns_memory_free(awf_dns_memory *m);

/* Remember that `name` (normalised: lower case, no trailing dot) was answered
 * with `addr` (AF_INET or AF_INET6; the port is ignored) at now_ms with a TTL
 * of ttl_s. A pair already known is refreshed (a later expiry, most recent
 * again; a pinned pair stays pinned). Returns 0, or -EINVAL for an address of
 * another family or an empty or over-long name. */
int awf_dns_memory_note(awf_dns_memory *m, const struct sockaddr *addr, const char *name,
                        uint64_t now_ms, uint32_t ttl_s);

/* The same for a pair that never expires (an /etc/hosts entry). -ENOSPC when
 * half the table is pinned already. */
int awf_dns_memory_pin(awf_dns_memory *m, const struct sockaddr *addr, const char *name);

struct awf_dns_memory_name {
  char name[AWF_HOSTNAME_MAX + 1]; /* a copy: the entry may go at once */
  bool pinned;                     /* from /etc/hosts */
};

/* The names remembered for addr and not expired at now_ms, most recently
 * answered first (pinned ones after those), at most max. Expired pairs of
 * addr are dropped on the way. Returns the count. */
size_t awf_dns_memory_lookup(awf_dns_memory *m, const struct sockaddr *addr, uint64_t now_ms,
                             struct awf_dns_memory_name *out, size_t max);

/* Pin the (address, name) pairs of an /etc/hosts text for which keep(name)
 * is true (names are normalised first; lines that do not parse are skipped,
 * as the resolver skips them). Returns the number pinned. */
size_t awf_dns_memory_load_hosts(awf_dns_memory *m, const char *text, size_t len,
                                 bool (*keep)(const char *name, void *arg), void *arg);

/* Pairs held, expired ones not yet dropped included. */
size_t awf_dns_memory_count(const awf_dns_memory *m);

#endif
