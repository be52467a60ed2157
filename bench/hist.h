/* hist.h: the bench load clients' latency histogram (loadgen, tlsload).
 * Log-linear over nanoseconds: 16 sub-buckets per power of two (~6%). */
#ifndef AWF_BENCH_HIST_H
#define AWF_BENCH_HIST_H

#include <stdint.h>

#define HBUCKETS 1024
struct hist {
  uint64_t b[HBUCKETS];
  uint64_t n, max;
};

static inline unsigned hist_index(uint64_t v) {
  if (v < 16)
    return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  return (msb - 3) * 16 + (unsigned)((v >> (msb - 4)) & 15);
}

static inline uint64_t hist_value(unsigned i) {
  if (i < 16)
    return i;
  unsigned msb = i / 16 + 3;
  uint64_t lo = (uint64_t)(16 + i % 16) << (msb - 4);
  return lo + ((uint64_t)1 << (msb - 4)) / 2; /* middle of the bucket */
}

static inline void hist_add(struct hist *h, uint64_t v) {
  h->b[hist_index(v)]++;
  h->n++;
  if (v > h->max)
    h->max = v;
}

/* a += b */
static inline void hist_merge(struct hist *a, const struct hist *b) {
  for (unsigned i = 0; i < HBUCKETS; i++)
    a->b[i] += b->b[i];
  a->n += b->n;
  if (b->max > a->max)
    a->max = b->max;
}

static inline double hist_pct_us(const struct hist *h, double pct) {
  if (h->n == 0)
    return 0;
  uint64_t want = (uint64_t)((double)h->n * pct / 100.0);
  if (want >= h->n)
    want = h->n - 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HBUCKETS; i++) {
    seen += h->b[i];
    if (seen > want) {
      uint64_t v = hist_value(i);
      return (double)(v < h->max ? v : h->max) / 1000.0;
    }
  }
  return (double)h->max / 1000.0;
}

#endif
