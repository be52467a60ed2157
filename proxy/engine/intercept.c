/* intercept.c: the per-run interception state (intercept.h). */
#include "intercept.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "ca.h"
#include "leaf.h"
#include "transport_tls.h"

#define MAX_CONSTRAINTS 256

struct awf_intercept {
  const awf_url_rules *rules;
  struct awf_ca *ca;
  struct awf_leaf_cache cache;
  bool cache_ready;
  SSL_CTX *server, *client;
};

/* The name a host pattern's leaves fall under: the labels after the last
 * one with a '*' ("api-*.example.com": example.com). NULL when every label
 * has one: no constraint can cover it. */
static const char *constraint_of(const char *pattern) {
  const char *star = strrchr(pattern, '*');
  if (!star)
    return pattern;
  const char *dot = strchr(star, '.');
  return dot && dot[1] ? dot + 1 : NULL;
}

/* The CA's permitted names: one per distinct constraint; none at all (no
 * name constraints) when a pattern has no constraint or there are too many. */
static size_t constraints(const awf_url_rules *rules, const char **names) {
  const char *hosts[MAX_CONSTRAINTS];
  size_t n = awf_url_rules_hosts(rules, AWF_URL_HTTPS, hosts, MAX_CONSTRAINTS);
  if (n > MAX_CONSTRAINTS)
    return 0;
  size_t m = awf_url_rules_hosts(rules, AWF_URL_HTTP, hosts + n, MAX_CONSTRAINTS - n);
  if (m > MAX_CONSTRAINTS - n)
    return 0;
  n += m;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *c = constraint_of(hosts[i]);
    if (!c)
      return 0;
    bool dup = false;
    for (size_t j = 0; j < k && !dup; j++)
      dup = strcmp(names[j], c) == 0;
    if (!dup)
      names[k++] = c;
  }
  return k;
}

int awf_intercept_new(const awf_url_rules *rules, awf_intercept **out, char *err,
                      size_t errlen) {
  awf_intercept *ic = calloc(1, sizeof(*ic));
  if (!ic)
    return -ENOMEM;
  ic->rules = rules;
  const char *names[MAX_CONSTRAINTS];
  struct awf_ca_opts o = {.names = names, .n_names = constraints(rules, names)};
  X509_STORE *trust = NULL;
  int rc = -EINVAL;
  ic->ca = awf_ca_new(&o, err, errlen);
  if (!ic->ca)
    goto fail;
  if (awf_leaf_cache_init(&ic->cache, ic->ca, AWF_INTERCEPT_LEAF_CACHE) < 0) {
    snprintf(err, errlen, "TLS: cannot make the leaf cache");
    rc = -ENOMEM;
    goto fail;
  }
  ic->cache_ready = true;
  trust = X509_STORE_new();
  if (!trust || X509_STORE_set_default_paths(trust) != 1) {
    snprintf(err, errlen, "TLS: cannot load the trust store");
    goto fail;
  }
  ic->server = awf_tls_server_ctx_new(&ic->cache, err, errlen);
  ic->client = ic->server ? awf_tls_client_ctx_new(trust, err, errlen) : NULL;
  if (!ic->client)
    goto fail;
  X509_STORE_free(trust); /* the client context holds its reference */
  *out = ic;
  return 0;
fail:
  X509_STORE_free(trust);
  awf_intercept_free(ic);
  return rc;
}

void awf_intercept_free(awf_intercept *ic) {
  if (!ic)
    return;
  SSL_CTX_free(ic->server);
  SSL_CTX_free(ic->client);
  if (ic->cache_ready)
    awf_leaf_cache_free(&ic->cache);
  awf_ca_free(ic->ca);
  free(ic);
}

bool awf_intercept_wants(const awf_intercept *ic, const char *host, size_t len) {
  return ic && (awf_url_rules_covers_host(ic->rules, AWF_URL_HTTPS, host, len) ||
                awf_url_rules_covers_host(ic->rules, AWF_URL_HTTP, host, len));
}

char *awf_intercept_ca_pem(const awf_intercept *ic, size_t *len) {
  return awf_ca_cert_pem(ic->ca, len);
}

int awf_intercept_write_ca(const awf_intercept *ic, const char *path, char *err,
                           size_t errlen) {
  size_t len;
  char *pem = awf_intercept_ca_pem(ic, &len);
  if (!pem) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  char tmp[4096];
  int rc = 0;
  if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= sizeof(tmp)) {
    snprintf(err, errlen, "'%s': path too long", path);
    free(pem);
    return -ENAMETOOLONG;
  }
  int fd = mkstemp(tmp);
  if (fd < 0) {
    rc = -errno;
    snprintf(err, errlen, "'%s': %s", path, strerror(errno));
    free(pem);
    return rc;
  }
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, pem + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      rc = w < 0 ? -errno : -EIO;
      break;
    }
    off += (size_t)w;
  }
  if (rc == 0 && fchmod(fd, 0644) < 0)
    rc = -errno;
  if (close(fd) < 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && rename(tmp, path) < 0)
    rc = -errno;
  if (rc < 0) {
    snprintf(err, errlen, "'%s': %s", path, strerror(-rc));
    unlink(tmp);
  }
  free(pem);
  return rc;
}

SSL_CTX *awf_intercept_server_ctx(const awf_intercept *ic) { return ic->server; }
SSL_CTX *awf_intercept_client_ctx(const awf_intercept *ic) { return ic->client; }

void awf_intercept_stats(const awf_intercept *ic, uint64_t *hits, uint64_t *misses) {
  struct awf_leaf_cache *c = (struct awf_leaf_cache *)&ic->cache;
  awf_leaf_cache_lock(c);
  *hits = c->hits;
  *misses = c->misses;
  awf_leaf_cache_unlock(c);
}
