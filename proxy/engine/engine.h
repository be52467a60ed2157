/* engine.h: the engine's shared state, struct awf_proxy: what listener.c,
 * the connection core (conn.h) and the modes all read. A header of its own,
 * with no functions, so that the diagnostics (diag.c) can read the log level
 * without depending on the connection core. Not a public header. */
#ifndef AWF_ENGINE_H
#define AWF_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "client_limits.h"
#include "events.h"
#include "list.h"
#include "metrics.h"
#include "policy.h"
#include "proxy.h"
#include "upstream_pool.h"

struct conn;
struct tunnel_handoff;

#define AWF_READ_BUF_SIZE (64 * 1024)

struct awf_proxy {
  uv_loop_t *loop;
  struct awf_proxy_config cfg;
  struct awf_policy policy;     /* the judge, over cfg's ACLs, ports, host access, audit */
  struct awf_event_sink events; /* every access-log record goes through it (events.h) */
  struct awf_list listeners;    /* listener.c's */
  struct awf_list conns;        /* every open client connection */
  unsigned nconns;
  unsigned open_handles; /* listeners, grace timer, log_flush, upool not yet closed */
  bool shutting_down;
  uv_timer_t grace_timer;
  uv_prepare_t log_flush;           /* writes the batched access-log lines each iteration */
  awf_upool *upool;                 /* idle upstream connections for any client (may be NULL) */
  awf_client_limits *client_limits; /* open connections per client (NULL: no limit) */
  uint64_t unlisted_next_log_ms;    /* --allow-clients refusals: next one logged */
  /* A connection was freed (conn.c): the listener resumes accepting and
   * finishes a shutdown from here. May be NULL. */
  void (*conn_released)(awf_proxy *p);
  /* A tunnel interception opened (tunnel.h) goes on in the HTTP mode: set
   * by the listener, so the tunnel mode reaches it without depending on
   * the mode above it. Returns 0 or a negative errno (the caller closes). */
  int (*start_intercepted)(struct conn *c, const struct tunnel_handoff *h);
  /* cfg.group's: this engine in the group's list, and how another engine
   * wakes it when a connection there makes room under the shared cap. */
  struct awf_list group_link;
  uv_async_t wake;
  /* This engine's counters: written by its loop only, summed on a scrape
   * (metrics.h); the event sink, the dialer and conn_set_state() update
   * them. `metrics` points at cfg.metrics, or at own_metrics. */
  struct awf_metrics *metrics;
  struct awf_metrics own_metrics;
  void (*done)(void *);
  void *done_arg;
  char readbuf[AWF_READ_BUF_SIZE]; /* shared by every read: data is consumed
                                      or copied inside the read callback */
};

/* The connection cap (group.c): alone, the engine's own count against
 * cfg.max_connections; in a group, a place reserved in the group's total
 * (atomically, no lock). group_take: true when the engine may accept one
 * more. group_give: a place taken is free again (a connection ended, or
 * an accept taken for one came to nothing); engines waiting for room are
 * woken. group_join/group_leave: in awf_proxy_new and before the engine
 * is freed (wake is closed by the caller after leave). */
bool group_take(awf_proxy *p);
void group_give(awf_proxy *p);
int group_join(awf_proxy *p, void (*on_wake)(uv_async_t *));
void group_leave(awf_proxy *p);
awf_client_limits *group_client_limits(awf_proxy_group *g);
/* --allow-clients refusals are logged at most once per interval in all:
 * true when this one is (across the group's engines). */
bool group_unlisted_log_due(awf_proxy *p, uint64_t now_ms, uint64_t interval_ms);

#endif
