/* leaf_cost: what TLS interception's leaf cache costs per connection
 * (scenario 9 of bench/run prints it).
 *
 *   leaf_cost [--seconds S] [--cap N]
 *
 * With a per-run CA made as awf-proxy makes it (proxy/tls/ca.h), times
 * awf_leaf_cache_get():
 *   hit:  the same name again and again, found in the cache;
 *   miss: a new name each time, so a P-256 key is made and the leaf built
 *         and signed; the cache is full after --cap names, so a miss also
 *         evicts the least recently used leaf, as on a busy proxy.
 * Each is run for --seconds of wall time (a bounded count of calls at
 * most); the cache's own hits and misses counters must agree with what was
 * asked, or it fails. One JSON object on stdout: µs per call for each, of
 * this thread's CPU time (what a busy machine's other work does not add to)
 * and of wall time. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca.h"
#include "leaf.h"

#define MAX_CALLS 50000000ull

static double now_s(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct timing {
  uint64_t calls;
  double seconds, cpu_seconds;
};

/* Calls get() on name i (i from *next on) until seconds have passed;
 * distinct: a new name per call (misses), else always the same (hits). */
static int run(struct awf_leaf_cache *c, int distinct, double seconds, uint64_t *next,
               struct timing *t) {
  char name[64], err[256];
  time_t now = time(NULL);
  double t0 = now_s(CLOCK_MONOTONIC), t1 = t0, c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
  t->calls = 0;
  /* the clock is read every 64 calls of a hit, every call of a miss */
  unsigned batch = distinct ? 1 : 64;
  snprintf(name, sizeof name, "host0.leaf-cost.test");
  while (t1 - t0 < seconds && t->calls < MAX_CALLS) {
    for (unsigned b = 0; b < batch; b++) {
      if (distinct) /* formatting a name is timed too: ~0.1 µs beside a miss's cost */
        snprintf(name, sizeof name, "host%" PRIu64 ".leaf-cost.test", (*next)++);
      if (!awf_leaf_cache_get(c, name, now, err, sizeof err)) {
        fprintf(stderr, "leaf_cost: %s\n", err);
        return -1;
      }
    }
    t->calls += batch;
    t1 = now_s(CLOCK_MONOTONIC);
  }
  t->seconds = t1 - t0;
  t->cpu_seconds = now_s(CLOCK_THREAD_CPUTIME_ID) - c0;
  return 0;
}

int main(int argc, char **argv) {
  double seconds = 1.0;
  long cap = 1024;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 < argc && strcmp(argv[i], "--seconds") == 0)
      seconds = atof(argv[i + 1]);
    else if (i + 1 < argc && strcmp(argv[i], "--cap") == 0)
      cap = atol(argv[i + 1]);
    else
      seconds = -1;
  }
  if (!(seconds > 0 && seconds <= 600) || cap < 1 || cap > AWF_LEAF_CACHE_MAX) {
    fprintf(stderr, "usage: leaf_cost [--seconds S (0-600)] [--cap N (1-%d)]\n",
            AWF_LEAF_CACHE_MAX);
    return 2;
  }
  char err[256];
  struct awf_ca_opts co = {0};
  struct awf_ca *ca = awf_ca_new(&co, err, sizeof err);
  if (!ca) {
    fprintf(stderr, "leaf_cost: %s\n", err);
    return 1;
  }
  struct awf_leaf_cache c;
  if (awf_leaf_cache_init(&c, ca, (size_t)cap) < 0) {
    fprintf(stderr, "leaf_cost: cannot make a cache of %ld\n", cap);
    awf_ca_free(ca);
    return 1;
  }
  uint64_t next = 1; /* host0 is the hit's name */
  struct timing miss, hit;
  int rc = 1;
  /* misses first (filling the cache, then evicting), then hits on host0,
   * made by one miss of its own before the timing */
  if (run(&c, 1, seconds, &next, &miss) == 0) {
    uint64_t misses = c.misses, hits = c.hits;
    char e2[256];
    if (awf_leaf_cache_get(&c, "host0.leaf-cost.test", 0, e2, sizeof e2) &&
        run(&c, 0, seconds, &next, &hit) == 0) {
      if (misses != miss.calls || hits != 0 || c.hits != hit.calls || c.misses != misses + 1) {
        fprintf(stderr,
                "leaf_cost: the cache counted %" PRIu64 " misses and %" PRIu64
                " hits, not %" PRIu64 " and %" PRIu64 "\n",
                c.misses, c.hits, miss.calls + 1, hit.calls);
      } else {
        printf("{\"hit_us\":%.3f,\"hit_wall_us\":%.3f,\"hit_calls\":%" PRIu64
               ",\"miss_us\":%.1f,\"miss_wall_us\":%.1f,\"miss_calls\":%" PRIu64
               ",\"cap\":%ld,\"evictions\":%" PRIu64 ",\"cached\":%zu}\n",
               hit.cpu_seconds * 1e6 / (double)hit.calls, hit.seconds * 1e6 / (double)hit.calls,
               hit.calls, miss.cpu_seconds * 1e6 / (double)miss.calls,
               miss.seconds * 1e6 / (double)miss.calls, miss.calls, cap, c.evictions, c.count);
        rc = 0;
      }
    }
  }
  awf_leaf_cache_free(&c);
  awf_ca_free(ca);
  return rc;
}
