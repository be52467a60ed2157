/* intercept.c: the per-run interception state (intercept.h). */
#include "intercept.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "ca.h"
#include "leaf.h"
#include "policy.h"
#include "transport_tls.h"

#define MAX_CONSTRAINTS 256

/* The origin sessions kept for resumption, one per host. */
struct origin_session {
  char host[256];
  SSL_SESSION *session; /* NULL: a free slot */
  uint64_t stored;      /* when, for replacing the oldest */
};

struct awf_intercept {
  /* Read by every engine's loop (awf_intercept_wants), replaced by a reload
   * on the main one: atomic, and freed by the reloader only once every
   * engine has switched (awf_workers_set_rules). */
  const awf_url_rules *_Atomic rules;
  char **names; /* the CA's permitted names (copies); n_names 0: unconstrained */
  size_t n_names;
  const awf_secrets *secrets;
  struct awf_ca *ca;
  struct awf_leaf_cache cache;
  bool cache_ready;
  SSL_CTX *server, *client;
  /* Written from the new-session callback of whichever loop's connection
   * got a ticket: a lock, held for a copy, never across I/O. */
  pthread_mutex_t sessions_lock;
  struct origin_session sessions[AWF_INTERCEPT_SESSIONS];
  uint64_t stored;
};

static int idx_intercept = -1; /* the SSL_CTX ex_data slot holding the awf_intercept */

/* A ticket from an origin: keep it, under the name the connection verified. */
static int on_new_session(SSL *ssl, SSL_SESSION *session) {
  awf_intercept *ic = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), idx_intercept);
  const struct awf_tls_transport *tt = SSL_get_app_data(ssl);
  /* A copy: the connection's own session is marked not resumable when the
   * connection ends without a close_notify of ours (upstreams are closed
   * that way), and the copy must outlive that. */
  SSL_SESSION *copy = ic && tt && tt->name[0] ? SSL_SESSION_dup(session) : NULL;
  if (!copy)
    return 0;
  pthread_mutex_lock(&ic->sessions_lock);
  struct origin_session *slot = &ic->sessions[0];
  for (size_t i = 0; i < AWF_INTERCEPT_SESSIONS; i++) {
    struct origin_session *s = &ic->sessions[i];
    if (s->session && strcmp(s->host, tt->name) == 0) {
      slot = s;
      break;
    }
    if (!s->session ? slot->session != NULL : slot->session && s->stored < slot->stored)
      slot = s;
  }
  SSL_SESSION_free(slot->session);
  slot->session = copy;
  slot->stored = ++ic->stored;
  snprintf(slot->host, sizeof(slot->host), "%s", tt->name);
  pthread_mutex_unlock(&ic->sessions_lock);
  return 0; /* OpenSSL keeps its reference to the original */
}

SSL_SESSION *awf_intercept_session(awf_intercept *ic, const char *host) {
  SSL_SESSION *found = NULL;
  pthread_mutex_lock(&ic->sessions_lock);
  for (size_t i = 0; i < AWF_INTERCEPT_SESSIONS && !found; i++) {
    struct origin_session *s = &ic->sessions[i];
    if (s->session && strcmp(s->host, host) == 0 && SSL_SESSION_is_resumable(s->session) &&
        SSL_SESSION_up_ref(s->session) == 1)
      found = s->session;
  }
  pthread_mutex_unlock(&ic->sessions_lock);
  return found;
}

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
static size_t constraints(const awf_url_rules *rules, const awf_secrets *secrets,
                          const char **names) {
  const char *hosts[MAX_CONSTRAINTS];
  size_t n = rules ? awf_url_rules_hosts(rules, AWF_URL_HTTPS, hosts, MAX_CONSTRAINTS) : 0;
  for (size_t i = 0; i < awf_secrets_count(secrets) && n <= MAX_CONSTRAINTS; i++)
    n += awf_secrets_hosts(secrets, i, hosts + n, MAX_CONSTRAINTS - n);
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

int awf_intercept_new(const awf_url_rules *rules, const awf_secrets *secrets,
                      awf_intercept **out, char *err, size_t errlen) {
  awf_intercept *ic = calloc(1, sizeof(*ic));
  if (!ic)
    return -ENOMEM;
  atomic_init(&ic->rules, rules);
  pthread_mutex_init(&ic->sessions_lock, NULL);
  ic->secrets = secrets;
  const char *names[MAX_CONSTRAINTS];
  struct awf_ca_opts o = {.names = names, .n_names = constraints(rules, secrets, names)};
  X509_STORE *trust = NULL;
  int rc = -EINVAL;
  ic->names = o.n_names ? calloc(o.n_names, sizeof(*ic->names)) : NULL;
  for (size_t i = 0; i < o.n_names && ic->names; i++, ic->n_names++)
    if (!(ic->names[i] = strdup(names[i]))) {
      rc = -ENOMEM;
      goto fail;
    }
  if (o.n_names && !ic->names) {
    rc = -ENOMEM;
    goto fail;
  }
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
  trust = NULL;
  if (idx_intercept < 0) /* once per process: a slot number, the same for every run */
    idx_intercept = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
  if (idx_intercept < 0 || SSL_CTX_set_ex_data(ic->client, idx_intercept, ic) != 1) {
    snprintf(err, errlen, "TLS: cannot set up session resumption");
    goto fail;
  }
  SSL_CTX_set_session_cache_mode(ic->client,
                                 SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ic->client, on_new_session);
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
  for (size_t i = 0; i < AWF_INTERCEPT_SESSIONS; i++)
    SSL_SESSION_free(ic->sessions[i].session);
  pthread_mutex_destroy(&ic->sessions_lock);
  if (ic->cache_ready)
    awf_leaf_cache_free(&ic->cache);
  awf_ca_free(ic->ca);
  for (size_t i = 0; i < ic->n_names; i++)
    free(ic->names[i]);
  free(ic->names);
  free(ic);
}

void awf_intercept_set_rules(awf_intercept *ic, const awf_url_rules *rules) {
  if (ic)
    atomic_store_explicit(&ic->rules, rules, memory_order_release);
}

/* Does a permitted name cover this constraint (the name or under it)? */
static bool permitted(const awf_intercept *ic, const char *c) {
  for (size_t i = 0; i < ic->n_names; i++)
    if (awf_name_under(c, strlen(c), ic->names[i]))
      return true;
  return false;
}

const char *awf_intercept_outside(const awf_intercept *ic, const awf_url_rules *rules) {
  if (!ic || ic->n_names == 0)
    return NULL; /* the CA names no constraint: every name is in */
  /* The hosts opened: those of URL rules of either scheme (awf_intercept_wants). */
  size_t ns = awf_url_rules_hosts(rules, AWF_URL_HTTPS, NULL, 0);
  size_t n = ns + awf_url_rules_hosts(rules, AWF_URL_HTTP, NULL, 0);
  const char **hosts = n ? malloc(n * sizeof(*hosts)) : NULL;
  const char *out = NULL;
  if (n && !hosts)
    return "(out of memory: not checked)";
  awf_url_rules_hosts(rules, AWF_URL_HTTPS, hosts, ns);
  awf_url_rules_hosts(rules, AWF_URL_HTTP, hosts + ns, n - ns);
  for (size_t i = 0; i < n && !out; i++) {
    const char *c = constraint_of(hosts[i]);
    if (!c || !permitted(ic, c))
      out = hosts[i];
  }
  free(hosts);
  return out;
}

bool awf_intercept_wants(const awf_intercept *ic, const char *host, size_t len) {
  if (!ic)
    return false;
  const awf_url_rules *rules = atomic_load_explicit(&ic->rules, memory_order_acquire);
  return awf_url_rules_covers_host(rules, AWF_URL_HTTPS, host, len) ||
         awf_url_rules_covers_host(rules, AWF_URL_HTTP, host, len) ||
         awf_secrets_any_host(ic->secrets, host, len);
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
