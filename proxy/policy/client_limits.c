/* client_limits.c: per-client connection counts (see client_limits.h). */
#include "client_limits.h"

#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define MIN_BUCKETS 16u
#define MAX_BUCKETS (1u << 16)

struct awf_client_entry {
  struct awf_client_entry *next;
  uint64_t hash;
  uint64_t last_log_ms;
  bool logged;
  uint8_t family; /* AF_INET or AF_INET6 */
  uint8_t addr[16];
  unsigned count;
};

struct awf_client_limits {
  struct awf_client_entry **b;
  size_t mask;
  unsigned n;
  unsigned limit;
  uint64_t seed;
  pthread_mutex_t mu; /* engines in several threads share one table */
};

unsigned awf_client_limit_default(unsigned max_connections) {
  unsigned share = max_connections / 8;
  if (share < 64)
    share = 64;
  return share < max_connections ? share : max_connections;
}

awf_client_limits *awf_client_limits_new(unsigned limit, unsigned max_connections,
                                         uint64_t seed) {
  if (limit == 0)
    return NULL;
  awf_client_limits *t = calloc(1, sizeof(*t));
  if (!t)
    return NULL;
  /* About two open connections per bucket when every client holds one. */
  size_t buckets = MIN_BUCKETS;
  while (buckets < MAX_BUCKETS && buckets * 2 < max_connections)
    buckets <<= 1;
  t->b = calloc(buckets, sizeof(*t->b));
  if (!t->b) {
    free(t);
    return NULL;
  }
  t->mask = buckets - 1;
  t->limit = limit;
  t->seed = seed;
  pthread_mutex_init(&t->mu, NULL);
  return t;
}

void awf_client_limits_free(awf_client_limits *t) {
  if (!t)
    return;
  for (size_t i = 0; i <= t->mask; i++) {
    struct awf_client_entry *e = t->b[i];
    while (e) {
      struct awf_client_entry *next = e->next;
      free(e);
      e = next;
    }
  }
  free(t->b);
  pthread_mutex_destroy(&t->mu);
  free(t);
}

/* The key: family and address, an IPv4-mapped IPv6 address as IPv4. */
static int key_of(const struct sockaddr *sa, uint8_t *family, uint8_t addr[16]) {
  static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
  memset(addr, 0, 16);
  if (sa->sa_family == AF_INET) {
    struct sockaddr_in sin;
    memcpy(&sin, sa, sizeof(sin));
    memcpy(addr, &sin.sin_addr, 4);
    *family = AF_INET;
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    struct sockaddr_in6 sin6;
    memcpy(&sin6, sa, sizeof(sin6));
    if (memcmp(sin6.sin6_addr.s6_addr, mapped, 12) == 0) {
      memcpy(addr, sin6.sin6_addr.s6_addr + 12, 4);
      *family = AF_INET;
    } else {
      memcpy(addr, sin6.sin6_addr.s6_addr, 16);
      *family = AF_INET6;
    }
    return 0;
  }
  return -EAFNOSUPPORT;
}

/* FNV-1a over the key, seeded. */
static uint64_t key_hash(uint64_t seed, uint8_t family, const uint8_t addr[16]) {
  uint64_t h = 14695981039346656037ull ^ seed;
  h = (h ^ family) * 1099511628211ull;
  for (size_t i = 0; i < 16; i++)
    h = (h ^ addr[i]) * 1099511628211ull;
  return h;
}

static int acquire_locked(awf_client_limits *t, uint8_t family, const uint8_t addr[16],
                          awf_client_entry **out) {
  uint64_t h = key_hash(t->seed, family, addr);
  struct awf_client_entry **pp = &t->b[h & t->mask];
  struct awf_client_entry *e = *pp;
  while (e && (e->hash != h || e->family != family || memcmp(e->addr, addr, 16) != 0))
    e = e->next;
  if (e) {
    *out = e;
    if (e->count >= t->limit)
      return -EDQUOT;
    e->count++;
    return 0;
  }
  e = calloc(1, sizeof(*e));
  if (!e)
    return -ENOMEM;
  e->hash = h;
  e->family = family;
  memcpy(e->addr, addr, 16);
  e->count = 1;
  e->next = *pp;
  *pp = e;
  t->n++;
  *out = e;
  return 0;
}

int awf_client_limits_acquire(awf_client_limits *t, const struct sockaddr *sa,
                              awf_client_entry **out) {
  uint8_t family, addr[16];
  *out = NULL;
  if (!t || !sa || key_of(sa, &family, addr) < 0)
    return -EAFNOSUPPORT;
  pthread_mutex_lock(&t->mu);
  int rc = acquire_locked(t, family, addr, out);
  pthread_mutex_unlock(&t->mu);
  return rc;
}

int awf_client_limits_admit(awf_client_limits *t, const struct sockaddr *sa, uint64_t now_ms,
                            uint64_t interval_ms, awf_client_entry **out, bool *log_refusal) {
  uint8_t family, addr[16];
  *out = NULL;
  *log_refusal = false;
  if (!t || !sa || key_of(sa, &family, addr) < 0)
    return -EAFNOSUPPORT;
  pthread_mutex_lock(&t->mu);
  int rc = acquire_locked(t, family, addr, out);
  if (rc == -EDQUOT) {
    *log_refusal = awf_client_limits_log_due(*out, now_ms, interval_ms);
    *out = NULL; /* another thread may free it once the lock is let go */
  }
  pthread_mutex_unlock(&t->mu);
  return rc;
}

void awf_client_limits_release(awf_client_limits *t, awf_client_entry *e) {
  if (!t || !e)
    return;
  pthread_mutex_lock(&t->mu);
  if (--e->count == 0) {
    struct awf_client_entry **pp = &t->b[e->hash & t->mask];
    while (*pp != e)
      pp = &(*pp)->next;
    *pp = e->next;
    t->n--;
    free(e);
  }
  pthread_mutex_unlock(&t->mu);
}

bool awf_client_limits_log_due(awf_client_entry *e, uint64_t now_ms, uint64_t interval_ms) {
  if (!e)
    return false;
  if (e->logged && now_ms - e->last_log_ms < interval_ms)
    return false;
  e->logged = true;
  e->last_log_ms = now_ms;
  return true;
}

unsigned awf_client_limits_clients(const awf_client_limits *t) {
  if (!t)
    return 0;
  pthread_mutex_lock((pthread_mutex_t *)&t->mu);
  unsigned n = t->n;
  pthread_mutex_unlock((pthread_mutex_t *)&t->mu);
  return n;
}
