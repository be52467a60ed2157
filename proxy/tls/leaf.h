/* leaf.h: leaf certificates for intercepted hosts, made on demand and signed
 * by the per-run CA (ca.h), kept in a bounded LRU cache.
 *
 * A leaf names one host: a subjectAltName dNSName for a host name, or an
 * iPAddress for an IP literal; a host name that fits in 64 bytes is also
 * its subject CN. Each has its own P-256 key and a random serial; it is valid
 * from a few minutes ago (never before the CA) for AWF_LEAF_LIFETIME (never
 * after the CA). A cached leaf that is about to expire is made again. */
#ifndef AWF_TLS_LEAF_H
#define AWF_TLS_LEAF_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca.h"
#include "list.h"

#define AWF_LEAF_LIFETIME (2 * 3600) /* seconds */
#define AWF_LEAF_RENEW 300           /* a cached leaf expiring sooner than this is remade */
#define AWF_LEAF_CACHE_MAX 65536     /* the largest cap a cache may have */

struct awf_leaf {
  X509 *cert;
  EVP_PKEY *key;
  char name[256];        /* normalised host name or IP text */
  struct awf_list lru;   /* in the cache's list, most recently used first */
  struct awf_leaf *next; /* in its hash bucket */
};

struct awf_leaf_cache {
  const struct awf_ca *ca; /* borrowed: outlives the cache */
  size_t cap;              /* at most this many leaves are kept */
  size_t count;
  struct awf_list lru;
  struct awf_leaf **buckets;
  size_t n_buckets; /* a power of two */
  uint64_t hits, misses, evictions;
  pthread_mutex_t mu; /* awf_leaf_cache_lock() */
};

/* A leaf made outside any cache (the cache uses it), or NULL with the
 * reason in err. name: a host name (normalised here) or an IP literal. */
struct awf_leaf *awf_leaf_make(const struct awf_ca *ca, const char *name, time_t now, char *err,
                               size_t errsz);
void awf_leaf_free(struct awf_leaf *leaf);

/* cap: 1..AWF_LEAF_CACHE_MAX. Returns 0 or -1 (bad cap, out of memory). */
int awf_leaf_cache_init(struct awf_leaf_cache *c, const struct awf_ca *ca, size_t cap);
void awf_leaf_cache_free(struct awf_leaf_cache *c);

/* Engines in several threads share a cache: each holds the lock from get
 * until it is done with the leaf (SSL_use_*() took their references). A
 * miss makes the leaf under the lock, so one name is made once. */
void awf_leaf_cache_lock(struct awf_leaf_cache *c);
void awf_leaf_cache_unlock(struct awf_leaf_cache *c);

/* The leaf for name at time now (0: time(NULL)): from the cache (a hit) or
 * made and cached (a miss), evicting the least recently used leaf when full.
 * Borrowed: valid until the next call (which may evict it); SSL_use_*()
 * take their own references. NULL with the reason in err. */
const struct awf_leaf *awf_leaf_cache_get(struct awf_leaf_cache *c, const char *name,
                                          time_t now, char *err, size_t errsz);

#endif
