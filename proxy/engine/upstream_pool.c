/* upstream_pool.c: a short list of parked upstream connections, newest last.
 * Capped in number and in idle time; the oldest goes first. */
#include "upstream_pool.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "netaddr.h"

#define POOL_MAX 256       /* parked connections at most */
#define POOL_IDLE_MS 15000 /* shorter than common server keep-alive timeouts */
#define SWEEP_MS 1000

struct entry {
  struct awf_list link; /* in pool->entries */
  uv_tcp_t *tcp;
  awf_upool *pool;
  uint64_t parked_at;
  uint16_t port;
  char host[256];
  char addr[AWF_ADDRSTRLEN];
};

struct awf_upool {
  uv_loop_t *loop;
  uv_timer_t sweep;
  struct awf_list entries; /* struct entry, oldest first */
  unsigned n;
  bool closing;
  void (*done)(void *);
  void *done_arg;
  char scratch[256]; /* reads on parked connections: any byte ends them */
};

static void on_tcp_closed(uv_handle_t *h) { free(h); }

static void unlink_entry(awf_upool *p, struct entry *e) {
  awf_list_remove(&e->link);
  p->n--;
}

static struct entry *oldest(awf_upool *p) {
  return awf_list_first(&p->entries, struct entry, link);
}

static void drop(awf_upool *p, struct entry *e) {
  unlink_entry(p, e);
  uv_close((uv_handle_t *)e->tcp, on_tcp_closed);
  free(e);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct entry *e = h->data;
  (void)suggested;
  *buf = uv_buf_init(e->pool->scratch, sizeof(e->pool->scratch));
}

/* A parked connection has nothing to say: bytes, a FIN or an error end it. */
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct entry *e = s->data;
  (void)buf;
  if (nread != 0)
    drop(e->pool, e);
}

static void on_sweep(uv_timer_t *t) {
  awf_upool *p = t->data;
  uint64_t now = uv_now(p->loop);
  struct entry *e;
  while ((e = oldest(p)) != NULL && now - e->parked_at >= POOL_IDLE_MS)
    drop(p, e);
  if (awf_list_empty(&p->entries))
    uv_timer_stop(&p->sweep);
}

awf_upool *awf_upool_new(uv_loop_t *loop) {
  awf_upool *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->loop = loop;
  awf_list_init(&p->entries);
  uv_timer_init(loop, &p->sweep);
  p->sweep.data = p;
  uv_unref((uv_handle_t *)&p->sweep); /* never keeps the loop alive */
  return p;
}

void awf_upool_put(awf_upool *p, uv_tcp_t *tcp, const char *host, uint16_t port,
                   const char *addr) {
  struct entry *e = p && !p->closing ? calloc(1, sizeof(*e)) : NULL;
  if (!e) {
    uv_close((uv_handle_t *)tcp, on_tcp_closed);
    return;
  }
  if (p->n == POOL_MAX)
    drop(p, oldest(p));
  e->tcp = tcp;
  e->pool = p;
  e->port = port;
  e->parked_at = uv_now(p->loop);
  snprintf(e->host, sizeof(e->host), "%s", host);
  snprintf(e->addr, sizeof(e->addr), "%s", addr);
  tcp->data = e;
  uv_read_stop((uv_stream_t *)tcp);
  if (uv_read_start((uv_stream_t *)tcp, on_alloc, on_read) < 0) {
    uv_close((uv_handle_t *)tcp, on_tcp_closed);
    free(e);
    return;
  }
  awf_list_push_back(&p->entries, &e->link);
  p->n++;
  if (!uv_is_active((uv_handle_t *)&p->sweep))
    uv_timer_start(&p->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
}

uv_tcp_t *awf_upool_take(awf_upool *p, const char *host, uint16_t port, char *addr,
                         size_t addr_cap) {
  if (!p)
    return NULL;
  struct awf_list *it;
  awf_list_each_reverse(it, &p->entries) { /* newest first */
    struct entry *e = awf_list_entry(it, struct entry, link);
    if (e->port != port || strcmp(e->host, host) != 0)
      continue;
    unlink_entry(p, e);
    uv_tcp_t *tcp = e->tcp;
    uv_read_stop((uv_stream_t *)tcp);
    tcp->data = NULL;
    snprintf(addr, addr_cap, "%s", e->addr);
    free(e);
    return tcp;
  }
  return NULL;
}

static void on_sweep_closed(uv_handle_t *h) {
  awf_upool *p = h->data;
  void (*done)(void *) = p->done;
  void *arg = p->done_arg;
  free(p);
  if (done)
    done(arg);
}

void awf_upool_close(awf_upool *p, void (*done)(void *arg), void *arg) {
  if (!p) {
    if (done)
      done(arg);
    return;
  }
  p->closing = true;
  p->done = done;
  p->done_arg = arg;
  struct entry *e;
  while ((e = oldest(p)) != NULL)
    drop(p, e);
  uv_close((uv_handle_t *)&p->sweep, on_sweep_closed);
}
