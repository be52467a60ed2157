/* rate_limit.h: token buckets limiting requests and bytes per host
 * (--rate-limit, --bytes-limit). Pure C, no I/O; admit, charge and hosts
 * may be called from several threads (a mutex guards the buckets). The caller
 * passes the time as milliseconds of a monotonic clock (the engine's
 * uv_now(), a fake clock in the tests), so every answer is deterministic.
 *
 * A limit is N units per period (a second, a minute or an hour): a bucket
 * holds at most N units (the burst) and refills continuously at N per
 * period. Two kinds:
 *   - requests (--rate-limit): an HTTP request, or a tunnel awf does not open,
 *     takes one unit; with none left it is refused.
 *   - bytes (--bytes-limit): bytes relayed for the host, both directions,
 *     are charged as they move and may drive the bucket below zero (a
 *     transfer under way is never cut); a new request or tunnel is refused
 *     while the bucket is at or below zero.
 *
 * Rules, from the flag values:
 *   "HOST=N/s", "HOST=N/m", "HOST=N/h"  one bucket for the rule, shared by
 *                                       every host it matches; HOST as in
 *                                       --allow-domains (acl.h, its matcher):
 *                                       api.example.com (and subdomains),
 *                                       *.example.com, api-*.example.com,
 *                                       1.2.3.4; no scheme, no comma
 *   "N/s", "N/m", "N/h"                 the global form: a bucket per host,
 *                                       for every host that no HOST rule of
 *                                       the same kind matches
 * Bytes values take an optional K, M or G suffix (powers of 1024): 512K/m.
 * Every HOST rule matching a host applies (each must have room); the global
 * rules apply only to hosts no HOST rule of their kind matches.
 *
 * Memory is bounded: HOST rules own their buckets; the global form's
 * per-host buckets live in a table of at most max_hosts entries, least
 * recently used first out. An entry whose buckets have refilled completely
 * says nothing a new entry would not, so it is dropped when room is needed;
 * when the table is full and even its least recently used entry has not
 * refilled, a request for a host not in the table is refused (the limit
 * fails closed), its Retry-After the time until that entry has refilled. */
#ifndef AWF_RATE_LIMIT_H
#define AWF_RATE_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct awf_rate_limits awf_rate_limits;

enum awf_rate_kind {
  AWF_RATE_REQUESTS, /* --rate-limit */
  AWF_RATE_BYTES,    /* --bytes-limit */
};

#define AWF_RATE_HOSTS_DEFAULT 4096u /* the global form's table (max_hosts) */
#define AWF_RATE_RULES_MAX 64u       /* rules of both kinds together */
#define AWF_RATE_REQUESTS_MAX 1000000u
#define AWF_RATE_BYTES_MAX (1ull << 40) /* per period: 1T */

/* max_hosts (>= 1): the global form's per-host table. seed: a random value,
 * so that colliding host names cannot be precomputed. NULL when out of
 * memory or max_hosts is 0. */
awf_rate_limits *awf_rate_limits_new(unsigned max_hosts, uint64_t seed);
void awf_rate_limits_free(awf_rate_limits *rl);

/* One flag value ("api.example.com=10/m", "5/s", "*.x.com=100M/h"). Returns
 * 0, or -EINVAL with "'ENTRY': REASON" in err (nothing added), or -ENOMEM. */
int awf_rate_limits_add(awf_rate_limits *rl, enum awf_rate_kind kind, const char *entry,
                        char *err, size_t errlen);

/* Rules of that kind (0 for a NULL rl). */
size_t awf_rate_limits_count(const awf_rate_limits *rl, enum awf_rate_kind kind);

/* The rules as given, comma-separated, per kind (for --log-level debug);
 * truncated to fit len (NUL-terminated). */
void awf_rate_limits_format(const awf_rate_limits *rl, enum awf_rate_kind kind, char *buf,
                            size_t len);

/* May a request or connection to host (a name or an IP literal, any case)
 * go at now_ms? 0: admitted, and with `take` one unit was taken from each
 * request bucket that applies (without `take` nothing is: a tunnel whose
 * requests are counted one by one). Otherwise nothing was taken and the
 * value is the Retry-After: whole seconds (at least 1) until every bucket
 * that applies has room again, assuming nothing else is charged meanwhile.
 * A NULL rl admits everything. */
unsigned awf_rate_limits_admit(awf_rate_limits *rl, const char *host, size_t len,
                               uint64_t now_ms, bool take);

/* Bytes relayed for host at now_ms: charged to each bytes bucket that
 * applies, which may go below zero. */
void awf_rate_limits_charge(awf_rate_limits *rl, const char *host, size_t len, uint64_t bytes,
                            uint64_t now_ms);

/* Hosts in the global form's table. */
size_t awf_rate_limits_hosts(const awf_rate_limits *rl);

#endif
