/* group.c: engines in several threads sharing one connection cap and one
 * per-client table (proxy.h, awf_proxy_group). The cap is an atomic count:
 * taking a place is a compare-and-swap, no lock on the accept path. An
 * engine at the cap stops accepting (its listener paused, the kernel keeps
 * the connection queued); the engine whose connection ends while the total
 * is at the cap wakes the others with uv_async_send, under the mutex that
 * guards the list of engines, so a wake never reaches a closed handle. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "engine.h"

struct awf_proxy_group {
  atomic_uint nconns;                    /* places taken, across the engines */
  _Atomic uint64_t unlisted_next_log_ms; /* --allow-clients refusals: next one logged */
  unsigned max;
  awf_client_limits *client_limits; /* NULL: no per-client limit */
  pthread_mutex_t mu;               /* over engines */
  struct awf_list engines;
};

awf_proxy_group *awf_proxy_group_new(unsigned max_connections, unsigned per_client) {
  awf_proxy_group *g = calloc(1, sizeof(*g));
  if (!g)
    return NULL;
  g->max = max_connections ? max_connections : 4096;
  if (per_client && per_client < g->max) {
    g->client_limits = awf_client_limits_new(per_client, g->max,
                                             uv_hrtime() ^ (uint64_t)(uintptr_t)g);
    if (!g->client_limits) {
      free(g);
      return NULL;
    }
  }
  atomic_init(&g->nconns, 0);
  atomic_init(&g->unlisted_next_log_ms, 0);
  pthread_mutex_init(&g->mu, NULL);
  awf_list_init(&g->engines);
  return g;
}

void awf_proxy_group_free(awf_proxy_group *g) {
  if (!g)
    return;
  awf_client_limits_free(g->client_limits);
  pthread_mutex_destroy(&g->mu);
  free(g);
}

awf_client_limits *group_client_limits(awf_proxy_group *g) { return g->client_limits; }

bool group_take(awf_proxy *p) {
  awf_proxy_group *g = p->cfg.group;
  if (!g)
    return p->nconns < p->cfg.max_connections;
  unsigned n = atomic_load_explicit(&g->nconns, memory_order_relaxed);
  do {
    if (n >= g->max)
      return false;
  } while (!atomic_compare_exchange_weak_explicit(&g->nconns, &n, n + 1, memory_order_relaxed,
                                                  memory_order_relaxed));
  return true;
}

void group_give(awf_proxy *p) {
  awf_proxy_group *g = p->cfg.group;
  if (!g)
    return;
  unsigned before = atomic_fetch_sub_explicit(&g->nconns, 1, memory_order_relaxed);
  if (before < g->max)
    return; /* nobody can be waiting for room */
  pthread_mutex_lock(&g->mu);
  struct awf_list *it;
  awf_list_each(it, &g->engines) {
    awf_proxy *e = awf_list_entry(it, awf_proxy, group_link);
    if (e != p)
      uv_async_send(&e->wake);
  }
  pthread_mutex_unlock(&g->mu);
}

int group_join(awf_proxy *p, void (*on_wake)(uv_async_t *)) {
  awf_proxy_group *g = p->cfg.group;
  int rc = uv_async_init(p->loop, &p->wake, on_wake);
  if (rc < 0)
    return rc;
  p->wake.data = p;
  uv_unref((uv_handle_t *)&p->wake); /* never keeps the loop alive by itself */
  pthread_mutex_lock(&g->mu);
  awf_list_push_front(&g->engines, &p->group_link);
  pthread_mutex_unlock(&g->mu);
  return 0;
}

void group_leave(awf_proxy *p) {
  awf_proxy_group *g = p->cfg.group;
  pthread_mutex_lock(&g->mu);
  awf_list_remove(&p->group_link);
  pthread_mutex_unlock(&g->mu);
}

bool group_unlisted_log_due(awf_proxy *p, uint64_t now_ms, uint64_t interval_ms) {
  awf_proxy_group *g = p->cfg.group;
  if (!g) {
    if (now_ms < p->unlisted_next_log_ms)
      return false;
    p->unlisted_next_log_ms = now_ms + interval_ms;
    return true;
  }
  uint64_t next = atomic_load_explicit(&g->unlisted_next_log_ms, memory_order_relaxed);
  do {
    if (now_ms < next)
      return false;
  } while (!atomic_compare_exchange_weak_explicit(&g->unlisted_next_log_ms, &next,
                                                  now_ms + interval_ms, memory_order_relaxed,
                                                  memory_order_relaxed));
  return true;
}
