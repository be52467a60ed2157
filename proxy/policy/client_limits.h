/* client_limits.h: open client connections counted per client address, so
 * that one client cannot hold every connection a shared proxy will serve.
 * A small chained hash table keyed by the client's IP address (an
 * IPv4-mapped IPv6 address counts as its IPv4 address); an entry lives while
 * its client has a connection open, so the table never holds more entries
 * than there are open connections. Pure C, no I/O. A mutex guards the
 * table: engines in several threads (awf-proxy --workers) share one, so the
 * limit holds across them. */
#ifndef AWF_CLIENT_LIMITS_H
#define AWF_CLIENT_LIMITS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct awf_client_limits awf_client_limits;
typedef struct awf_client_entry awf_client_entry;

/* The default per-client limit for a global cap: a fair share, so that at
 * least 8 clients at their limit are needed to fill the cap, but never below
 * 64 (parallel downloads, build tools) nor above the cap itself. */
unsigned awf_client_limit_default(unsigned max_connections);

/* limit: connections one client may hold at once (>= 1). max_connections
 * sizes the table. seed: a random value, so that colliding addresses can't
 * be precomputed. NULL when out of memory. */
awf_client_limits *awf_client_limits_new(unsigned limit, unsigned max_connections,
                                         uint64_t seed);
void awf_client_limits_free(awf_client_limits *t);

/* Count one more connection from sa (AF_INET or AF_INET6).
 * 0: admitted; *out is the entry to release when the connection ends.
 * -EDQUOT: the client already holds `limit` connections; nothing counted,
 *   *out is its entry (valid until its connections end), for the logging
 *   rate limit below.
 * -ENOMEM, -EAFNOSUPPORT: nothing counted, *out is NULL. */
int awf_client_limits_acquire(awf_client_limits *t, const struct sockaddr *sa,
                              awf_client_entry **out);

/* acquire for engines in several threads: on -EDQUOT *out is NULL (the
 * entry may go as soon as the lock is let go) and *log_refusal says, as
 * awf_client_limits_log_due(entry, now_ms, interval_ms) would, whether this
 * refusal is the one to log. Otherwise as acquire (*log_refusal false). */
int awf_client_limits_admit(awf_client_limits *t, const struct sockaddr *sa, uint64_t now_ms,
                            uint64_t interval_ms, awf_client_entry **out, bool *log_refusal);

/* One connection of the entry's client ended; the entry is freed with the
 * last one. */
void awf_client_limits_release(awf_client_limits *t, awf_client_entry *e);

/* True at most once per `interval_ms` for an entry (one thread only: use
 * awf_client_limits_admit when several share the table): for logging refusals
 * without a line per connection under a flood. */
bool awf_client_limits_log_due(awf_client_entry *e, uint64_t now_ms, uint64_t interval_ms);

/* Clients with a connection open (entries in the table). */
unsigned awf_client_limits_clients(const awf_client_limits *t);

#endif
