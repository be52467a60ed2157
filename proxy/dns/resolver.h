/* resolver.h: asynchronous name resolution with c-ares, driven by the libuv
 * loop (c-ares's sock-state callback drives uv_poll handles; a uv_timer runs
 * c-ares's timeouts). Answers are cached for the records' TTL, capped by
 * max_ttl_s. Both A and AAAA are asked for. */
#ifndef AWF_RESOLVER_H
#define AWF_RESOLVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "netaddr.h" /* struct awf_addr_list */

typedef struct awf_resolver awf_resolver;
typedef struct awf_resolve_req awf_resolve_req;

/* A diagnostics line (no newline), for --log-level debug. */
typedef void (*awf_trace_fn)(void *arg, const char *line);

struct awf_resolver_options {
  /* Comma-separated upstream DNS servers, "ip", "ip:port", "[v6]:port"; NULL
   * or "" uses the host's resolver configuration (/etc/resolv.conf, and
   * /etc/hosts first). With explicit servers, /etc/hosts is not consulted.
   * Either way a name is looked up exactly as given: no search list, ndots
   * or HOSTALIASES ever applies. */
  const char *servers;
  unsigned max_ttl_s;  /* cap on cached TTLs; 0 disables the cache */
  unsigned min_ttl_s;  /* floor, so a TTL of 0 still caches briefly */
  unsigned timeout_ms; /* per-try timeout handed to c-ares */
  unsigned tries;
  size_t max_cache_entries;
  /* Optional: one line per lookup answered ("resolve NAME: ADDR, ADDR (ttl
   * Ns)" or "resolve NAME: failed (WHY)"), cache hits included. NULL costs
   * nothing. */
  awf_trace_fn trace;
  void *trace_arg;
};

void awf_resolver_options_default(struct awf_resolver_options *o);

/* status: 0 with addrs->n >= 1; -ENOENT (NXDOMAIN or no A/AAAA),
 * -ETIMEDOUT, -ECONNREFUSED (servers refused), -ECANCELED (resolver closing),
 * -EIO (other failure). addrs is only valid during the call. */
typedef void (*awf_resolve_cb)(int status, const struct awf_addr_list *addrs, void *arg);

/* Returns 0 or a negative errno; on -EINVAL writes a message into err
 * (e.g. naming the bad server entry). */
int awf_resolver_new(uv_loop_t *loop, const struct awf_resolver_options *o, awf_resolver **out,
                     char *err, size_t errlen);

/* The upstream servers in use ("198.51.100.53", "[2001:db8::53]:5353"),
 * comma-separated, truncated to fit len. Returns 0 or a negative errno. */
int awf_resolver_servers(const awf_resolver *r, char *buf, size_t len);

/* Resolve `name` (already normalised, not an IP literal).
 * Returns 1: answered from the cache, *out filled, cb is never called.
 * Returns 0: pending; cb is called exactly once later (never from inside this
 *   call) unless awf_resolve_cancel() is called first; *req is set.
 * Returns <0: negative errno, cb is never called. */
int awf_resolve(awf_resolver *r, const char *name, struct awf_addr_list *out, awf_resolve_cb cb,
                void *arg, awf_resolve_req **req);

/* The callback of a pending request will not be called. Safe to call once,
 * before the callback has run. */
void awf_resolve_cancel(awf_resolve_req *req);

/* Count cache hits and misses and time the lookups (metrics.h) in m (NULL:
 * stop). Only the resolver's loop writes m. */
struct awf_metrics;
void awf_resolver_set_metrics(awf_resolver *r, struct awf_metrics *m);

/* Fail pending requests with -ECANCELED, close every handle, and free the
 * resolver once libuv has closed them (run the loop to finish). */
void awf_resolver_close(awf_resolver *r);

#endif
