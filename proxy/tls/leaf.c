/* leaf.c: leaf certificates and their LRU cache (leaf.h). */
#include "leaf.h"

#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/x509v3.h>

#include "errbuf.h"
#include "hostname.h"

/* The name as the certificate carries it: a normalised host name (*is_ip 0)
 * or an IP literal kept as given (*is_ip 1). -1 when it is neither. */
static int leaf_name(const char *name, char *out, size_t outsz, int *is_ip) {
  size_t len = strlen(name);
  struct sockaddr_storage ss;
  if (awf_ip_literal_parse(name, len, &ss) > 0) {
    if (len >= outsz)
      return -1;
    memcpy(out, name, len + 1);
    *is_ip = 1;
    return 0;
  }
  *is_ip = 0;
  return awf_hostname_normalize(name, len, out, outsz) < 0 ? -1 : 0;
}

/* critical when the subject is empty (RFC 5280, 4.2.1.6) */
static int add_san(X509 *cert, const char *name, int is_ip, bool critical) {
  GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
  GENERAL_NAME *gen = GENERAL_NAME_new();
  int rc = -1;
  if (!gens || !gen)
    goto out;
  if (is_ip) {
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);
    if (!ip)
      goto out;
    GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
  } else {
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    if (!s || ASN1_STRING_set(s, name, (int)strlen(name)) != 1) {
      ASN1_IA5STRING_free(s);
      goto out;
    }
    GENERAL_NAME_set0_value(gen, GEN_DNS, s);
  }
  if (!sk_GENERAL_NAME_push(gens, gen))
    goto out;
  gen = NULL;
  rc = X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, critical, X509V3_ADD_DEFAULT) == 1
           ? 0
           : -1;
out:
  GENERAL_NAME_free(gen);
  GENERAL_NAMES_free(gens);
  return rc;
}

static int build_leaf(struct awf_leaf *l, const struct awf_ca *ca, int is_ip, time_t now) {
  X509 *c = l->cert;
  X509 *cac = awf_ca_cert(ca);
  time_t nb = now - AWF_CA_BACKDATE, na = now + AWF_LEAF_LIFETIME;
  if (nb < awf_ca_not_before(ca))
    nb = awf_ca_not_before(ca);
  if (na > awf_ca_not_after(ca))
    na = awf_ca_not_after(ca);
  if (na <= now || nb > now) /* the CA has ended, or not begun */
    return -1;
  if (X509_set_version(c, 2) != 1 || awf_tls_set_random_serial(c) < 0 ||
      !X509_time_adj_ex(X509_getm_notBefore(c), 0, 0, &nb) ||
      !X509_time_adj_ex(X509_getm_notAfter(c), 0, 0, &na) ||
      X509_set_issuer_name(c, X509_get_subject_name(cac)) != 1 ||
      X509_set_pubkey(c, l->key) != 1)
    return -1;
  /* A host name is also the subject's CN; an IP is only in the SAN (a CN
   * would let X509_check_host() match it as a host name). */
  bool cn = !is_ip && strlen(l->name) <= 64;
  if (cn && X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                                       (const unsigned char *)l->name, -1, -1, 0) != 1)
    return -1;
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cac, c, NULL, NULL, 0);
  if (add_san(c, l->name, is_ip, !cn) < 0 ||
      awf_tls_add_ext(c, &ctx, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
      awf_tls_add_ext(c, &ctx, NID_key_usage, "critical,digitalSignature") < 0 ||
      awf_tls_add_ext(c, &ctx, NID_ext_key_usage, "serverAuth") < 0 ||
      awf_tls_add_ext(c, &ctx, NID_authority_key_identifier, "keyid:always") < 0)
    return -1;
  return X509_sign(c, awf_ca_key(ca), EVP_sha256()) > 0 ? 0 : -1;
}

struct awf_leaf *awf_leaf_make(const struct awf_ca *ca, const char *name, time_t now, char *err,
                               size_t errsz) {
  if (now == 0)
    now = time(NULL);
  struct awf_leaf *l = calloc(1, sizeof(*l));
  if (!l) {
    awf_errbuf_fail(err, errsz, -1, "leaf: out of memory");
    return NULL;
  }
  awf_list_init(&l->lru);
  int is_ip;
  if (leaf_name(name, l->name, sizeof(l->name), &is_ip) < 0) {
    char q[80];
    awf_errbuf_fail(err, errsz, -1, "leaf: not a host name or IP address: \"%s\"",
                    awf_errbuf_quote(name, strlen(name), q, sizeof(q)));
    free(l);
    return NULL;
  }
  l->key = awf_tls_new_p256_key();
  l->cert = X509_new();
  if (!l->key || !l->cert || build_leaf(l, ca, is_ip, now) < 0) {
    awf_errbuf_fail(err, errsz, -1, "leaf: cannot make a certificate for %s (CA expired?)",
                    l->name);
    awf_leaf_free(l);
    return NULL;
  }
  return l;
}

void awf_leaf_free(struct awf_leaf *leaf) {
  if (!leaf)
    return;
  X509_free(leaf->cert);
  EVP_PKEY_free(leaf->key);
  free(leaf);
}

/* FNV-1a */
static size_t bucket_of(const struct awf_leaf_cache *c, const char *name) {
  uint64_t h = 1469598103934665603ULL;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * 1099511628211ULL;
  return (size_t)h & (c->n_buckets - 1);
}

int awf_leaf_cache_init(struct awf_leaf_cache *c, const struct awf_ca *ca, size_t cap) {
  memset(c, 0, sizeof(*c));
  if (cap == 0 || cap > AWF_LEAF_CACHE_MAX)
    return -1;
  c->ca = ca;
  c->cap = cap;
  awf_list_init(&c->lru);
  c->n_buckets = 1;
  while (c->n_buckets < cap)
    c->n_buckets <<= 1;
  c->buckets = calloc(c->n_buckets, sizeof(*c->buckets));
  if (!c->buckets)
    return -1;
  pthread_mutex_init(&c->mu, NULL);
  return 0;
}

void awf_leaf_cache_lock(struct awf_leaf_cache *c) { pthread_mutex_lock(&c->mu); }

void awf_leaf_cache_unlock(struct awf_leaf_cache *c) { pthread_mutex_unlock(&c->mu); }

static void unlink_leaf(struct awf_leaf_cache *c, struct awf_leaf *l) {
  struct awf_leaf **pp = &c->buckets[bucket_of(c, l->name)];
  while (*pp != l)
    pp = &(*pp)->next;
  *pp = l->next;
  awf_list_remove(&l->lru);
  c->count--;
}

void awf_leaf_cache_free(struct awf_leaf_cache *c) {
  struct awf_list *it, *tmp;
  awf_list_each_safe(it, tmp, &c->lru) {
    awf_leaf_free(awf_list_entry(it, struct awf_leaf, lru));
  }
  if (c->buckets)
    pthread_mutex_destroy(&c->mu);
  free(c->buckets);
  memset(c, 0, sizeof(*c));
}

const struct awf_leaf *awf_leaf_cache_get(struct awf_leaf_cache *c, const char *name,
                                          time_t now, char *err, size_t errsz) {
  if (now == 0)
    now = time(NULL);
  char key[256];
  int is_ip;
  if (leaf_name(name, key, sizeof(key), &is_ip) < 0) {
    char q[80];
    awf_errbuf_fail(err, errsz, -1, "leaf: not a host name or IP address: \"%s\"",
                    awf_errbuf_quote(name, strlen(name), q, sizeof(q)));
    return NULL;
  }
  for (struct awf_leaf *l = c->buckets[bucket_of(c, key)]; l; l = l->next) {
    if (strcmp(l->name, key) != 0)
      continue;
    if (X509_cmp_time(X509_get0_notAfter(l->cert), &(time_t){now + AWF_LEAF_RENEW}) > 0) {
      c->hits++;
      awf_list_remove(&l->lru);
      awf_list_push_front(&c->lru, &l->lru);
      return l;
    }
    unlink_leaf(c, l); /* about to expire: made again below */
    awf_leaf_free(l);
    break;
  }
  c->misses++;
  struct awf_leaf *l = awf_leaf_make(c->ca, key, now, err, errsz);
  if (!l)
    return NULL;
  if (c->count >= c->cap) {
    struct awf_leaf *old = awf_list_last(&c->lru, struct awf_leaf, lru);
    unlink_leaf(c, old);
    awf_leaf_free(old);
    c->evictions++;
  }
  size_t b = bucket_of(c, l->name);
  l->next = c->buckets[b];
  c->buckets[b] = l;
  awf_list_push_front(&c->lru, &l->lru);
  c->count++;
  return l;
}
