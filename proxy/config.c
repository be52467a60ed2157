/* config.c: flag values to ACL, policy and engine settings. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "client_limits.h"
#include "netaddr.h"
#include "ruleset.h"
#include "textfile.h"

#define MAX_RULES_FILE (16 * 1024 * 1024)

/* An empty set (deny all) with o's ports. */
static struct awf_rules *rules_new(const struct awf_options *o) {
  struct awf_rules *r = calloc(1, sizeof(*r));
  if (r && !(r->acl = awf_acl_new())) {
    free(r);
    return NULL;
  }
  if (r)
    r->ports = o->flag_ports;
  return r;
}

void awf_rules_free(struct awf_rules *r) {
  if (!r)
    return;
  awf_acl_free(r->acl);
  awf_url_rules_free(r->url_rules);
  awf_ruleset_secrets_free(&r->secrets);
  free(r);
}

struct awf_rules *awf_options_swap_rules(struct awf_options *o, struct awf_rules *r) {
  struct awf_rules *old = o->rules;
  o->rules = r;
  o->acl = r->acl;
  o->url_rules = r->url_rules;
  o->ports = r->ports;
  return old;
}

int awf_options_init(struct awf_options *o) {
  memset(o, 0, sizeof(*o));
  awf_port_set_add(&o->flag_ports, 80);
  awf_port_set_add(&o->flag_ports, 443);
  struct awf_rules *r = rules_new(o);
  o->policy = awf_addr_policy_new();
  if (!r || !o->policy) {
    awf_rules_free(r);
    awf_options_free(o);
    return -ENOMEM;
  }
  awf_options_swap_rules(o, r);
  awf_port_set_add(&o->tls_ports, 443);
  awf_port_set_add(&o->http_ports, 80);
  o->log_level = AWF_LOG_INFO;
  o->max_connections = 4096;
  o->connect_timeout_ms = 10000;
  o->header_timeout_ms = 30000;
  o->idle_timeout_ms = 60000;
  o->tunnel_idle_timeout_ms = 3600000;
  o->read_timeout_ms = 900000;
  o->shutdown_grace_ms = 5000;
  return 0;
}

void awf_options_free(struct awf_options *o) {
  if (o->policy)
    awf_addr_policy_free(o->policy);
  if (o->ssh_acl)
    awf_acl_free(o->ssh_acl);
  awf_intercept_free(o->intercept); /* before the rules and secrets it borrows */
  o->intercept = NULL;
  awf_secrets_free(o->secrets);
  o->secrets = NULL;
  awf_rules_free(o->rules);
  o->rules = NULL;
  o->url_rules = NULL;
  free(o->sources);
  o->sources = NULL;
  o->n_sources = 0;
  awf_addr_policy_free(o->clients);
  awf_rate_limits_free(o->rate_limits);
  o->rate_limits = NULL;
  awf_dlp_free(o->dlp_table);
  o->dlp_table = NULL;
  if (o->upstream_proxy)
    explicit_bzero(o->upstream_proxy, sizeof(*o->upstream_proxy)); /* credentials */
  free(o->upstream_proxy);
  o->upstream_proxy = NULL;
  o->acl = NULL;
  o->policy = NULL;
  o->ssh_acl = NULL;
  o->clients = NULL;
}

static int parse_port(const char *s, size_t len, unsigned *out) {
  if (len == 0 || len > 5)
    return -EINVAL;
  unsigned v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -EINVAL;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v == 0 || v > 65535)
    return -EINVAL;
  *out = v;
  return 0;
}

int awf_parse_port_list(const char *s, struct awf_port_set *out, char *err, size_t errlen) {
  struct awf_port_set set;
  memset(&set, 0, sizeof(set));
  size_t count = 0;
  while (*s) {
    const char *end = strchr(s, ',');
    size_t len = end ? (size_t)(end - s) : strlen(s);
    const char *a = s, *z = s + len;
    while (a < z && (*a == ' ' || *a == '\t'))
      a++;
    while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
      z--;
    if (a < z) {
      const char *dash = memchr(a, '-', (size_t)(z - a));
      unsigned lo = 0, hi = 0;
      int rc = dash ? parse_port(a, (size_t)(dash - a), &lo) |
                          parse_port(dash + 1, (size_t)(z - dash - 1), &hi)
                    : parse_port(a, (size_t)(z - a), &lo);
      if (!dash)
        hi = lo;
      if (rc != 0 || lo > hi) {
        snprintf(err, errlen, "'%.*s' is not a port (1-65535) or a range LOW-HIGH",
                 (int)(z - a), a);
        return -EINVAL;
      }
      for (unsigned p = lo; p <= hi; p++)
        awf_port_set_add(&set, (uint16_t)p);
      count++;
    }
    s += len;
    if (*s == ',')
      s++;
  }
  if (count == 0) {
    snprintf(err, errlen, "the port list is empty");
    return -EINVAL;
  }
  *out = set;
  return 0;
}

int awf_parse_seconds(const char *s, unsigned *ms) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end != '\0' || !(v > 0) || v > 31536000.0)
    return -EINVAL;
  double m = v * 1000.0;
  *ms = m < 1.0 ? 1u : (unsigned)m;
  return 0;
}

static int set_seconds(const char *flag, const char *v, unsigned *ms, char *err,
                       size_t errlen) {
  if (awf_parse_seconds(v, ms) < 0) {
    snprintf(err, errlen, "--%s: '%s' is not a number of seconds > 0", flag, v);
    return -EINVAL;
  }
  return 0;
}

/* A connection count: 1 to 1000000. */
static int set_count(const char *v, unsigned *out, char *msg, size_t msglen) {
  char *end;
  errno = 0;
  unsigned long n = strtoul(v, &end, 10);
  if (errno || *v == '\0' || *end || *v == '-' || n == 0 || n > 1000000) {
    snprintf(msg, msglen, "'%s' is not a number from 1 to 1000000", v);
    return -EINVAL;
  }
  *out = (unsigned)n;
  return 0;
}

static int add_listen(struct sockaddr_storage *list, size_t *n, const char *v, char *msg,
                      size_t msglen) {
  if (*n == AWF_MAX_LISTEN) {
    snprintf(msg, msglen, "at most %d addresses", AWF_MAX_LISTEN);
    return -EINVAL;
  }
  if (awf_sockaddr_parse(v, &list[*n]) < 0) {
    snprintf(msg, msglen, "'%s' is not ADDR:PORT (IPv6 as [ADDR]:PORT)", v);
    return -EINVAL;
  }
  (*n)++;
  return 0;
}

/* --allow-ssh: host rules as in --allow-domains, without a scheme (SSH is
 * neither HTTP nor TLS). */
static int add_ssh_rules(struct awf_options *o, const char *v, char *msg, size_t msglen) {
  if (strstr(v, "://")) {
    snprintf(msg, msglen, "'%s': SSH hosts take no scheme (github.com, *.example.com, 1.2.3.4)",
             v);
    return -EINVAL;
  }
  if (!o->ssh_acl && !(o->ssh_acl = awf_acl_new()))
    return -ENOMEM;
  int rc = awf_acl_add_list(o->ssh_acl, AWF_ACL_ALLOW, v, msg, msglen);
  if (rc == 0 && awf_acl_count(o->ssh_acl, AWF_ACL_ALLOW) == 0) {
    snprintf(msg, msglen, "the list is empty");
    rc = -EINVAL;
  }
  return rc;
}

/* ---- rule sources and the rules built from them ---- */

static const char *const rule_flags[] = {
    "allow-domains", "block-domains",   "allow-domains-file", "block-domains-file",
    "allow-urls",    "allow-urls-file", "block-urls",         "ruleset-file",
};

/* The flag's static name if it is a rule source, else NULL. */
static const char *rule_flag(const char *flag) {
  for (size_t i = 0; i < sizeof(rule_flags) / sizeof(rule_flags[0]); i++)
    if (!strcmp(flag, rule_flags[i]))
      return rule_flags[i];
  return NULL;
}

static int add_source(struct awf_options *o, const char *flag, const char *value) {
  struct awf_rule_source *n = realloc(o->sources, (o->n_sources + 1) * sizeof(*n));
  if (!n)
    return -ENOMEM;
  o->sources = n;
  o->sources[o->n_sources++] = (struct awf_rule_source){.flag = flag, .value = value};
  return 0;
}

/* The line an "ORIGIN:LINE:..." message names (0: none). */
static unsigned line_of(const char *msg, const char *origin) {
  size_t n = strlen(origin);
  if (strncmp(msg, origin, n) != 0 || msg[n] != ':')
    return 0;
  return (unsigned)strtoul(msg + n + 1, NULL, 10);
}

static void digest_str(EVP_MD_CTX *md, const char *s) {
  EVP_DigestUpdate(md, s, strlen(s) + 1);
}

/* A file source: its bytes into the digest, then into the set. */
static int build_file(struct awf_rules *r, const struct awf_rule_source *src, EVP_MD_CTX *md,
                      char *msg, size_t msglen, unsigned *line) {
  const char *f = src->flag, *v = src->value;
  char *text;
  size_t len;
  int rc = awf_textfile_read(v, MAX_RULES_FILE, &text, &len, msg, msglen);
  if (rc < 0)
    return rc;
  uint64_t n = len;
  EVP_DigestUpdate(md, &n, sizeof(n));
  EVP_DigestUpdate(md, text, len);
  r->n_files++;
  if (!strcmp(f, "ruleset-file")) {
    struct awf_ruleset_into into = {.acl = r->acl,
                                    .url_rules = &r->url_rules,
                                    .ports = &r->ports,
                                    .secrets = &r->secrets};
    rc = awf_ruleset_parse(text, len, v, &into, line, msg, msglen);
  } else if (!strcmp(f, "allow-urls-file")) {
    rc = r->url_rules || (r->url_rules = awf_url_rules_new())
             ? awf_url_rules_add_text(r->url_rules, AWF_URL_ALLOW, text, len, v, msg, msglen)
             : -ENOMEM;
  } else {
    rc = awf_acl_add_text(r->acl,
                          strcmp(f, "allow-domains-file") ? AWF_ACL_BLOCK : AWF_ACL_ALLOW, text,
                          len, v, msg, msglen);
  }
  if (rc < 0 && !*line)
    *line = line_of(msg, v);
  free(text);
  return rc;
}

/* --rate-limit, --bytes-limit: one [HOST=]RATE each (rate_limit.h). */
static int add_rate_limit(struct awf_options *o, enum awf_rate_kind kind, const char *v,
                          char *msg, size_t msglen) {
  if (!o->rate_limits) {
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
      seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (!(o->rate_limits = awf_rate_limits_new(AWF_RATE_HOSTS_DEFAULT, seed)))
      return -ENOMEM;
  }
  return awf_rate_limits_add(o->rate_limits, kind, v, msg, msglen);
}

/* The caller's environment, as curl reads it: https_proxy, HTTPS_PROXY,
 * http_proxy, HTTP_PROXY (the first set and non-empty is the one parent for
 * all traffic), and no_proxy or NO_PROXY. None set: direct. */
static int upstream_proxy_from_env(struct awf_options *o, char *msg, size_t msglen) {
  static const char *const vars[] = {"https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"};
  const char *v = NULL;
  for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]) && !v; i++) {
    v = getenv(vars[i]);
    if (v && !*v)
      v = NULL;
    else if (v)
      o->upstream_proxy_from = vars[i];
  }
  if (!v)
    return 0;
  o->upstream_proxy = calloc(1, sizeof(*o->upstream_proxy));
  if (!o->upstream_proxy)
    return -ENOMEM;
  char why[256];
  if (awf_upstream_proxy_parse(v, o->upstream_proxy, why, sizeof(why)) < 0) {
    snprintf(msg, msglen, "auto: %s: %s (or --upstream-proxy none)", o->upstream_proxy_from,
             why);
    return -EINVAL;
  }
  const char *np = getenv("no_proxy");
  if (!np || !*np)
    np = getenv("NO_PROXY");
  if (np && awf_upstream_proxy_set_no_proxy(o->upstream_proxy, np) < 0) {
    snprintf(msg, msglen, "auto: NO_PROXY is too long");
    return -EINVAL;
  }
  return 0;
}

static int set_upstream_proxy(struct awf_options *o, const char *v, char *msg, size_t msglen) {
  free(o->upstream_proxy);
  o->upstream_proxy = NULL;
  o->upstream_proxy_from = NULL;
  o->upstream_proxy_set = true;
  if (!strcmp(v, "none"))
    return 0;
  if (!strcmp(v, "auto"))
    return upstream_proxy_from_env(o, msg, msglen);
  o->upstream_proxy = calloc(1, sizeof(*o->upstream_proxy));
  if (!o->upstream_proxy)
    return -ENOMEM;
  o->upstream_proxy_from = "--upstream-proxy";
  return awf_upstream_proxy_parse(v, o->upstream_proxy, msg, msglen) < 0 ? -EINVAL : 0;
}

static int build_source(struct awf_rules *r, const struct awf_rule_source *src, EVP_MD_CTX *md,
                        struct awf_rules_error *e) {
  const char *f = src->flag, *v = src->value;
  char msg[640];
  unsigned line = 0;
  int rc;
  msg[0] = '\0';
  digest_str(md, f);
  digest_str(md, v);
  r->n_sources++;
  if (strstr(f, "-file")) {
    rc = build_file(r, src, md, msg, sizeof(msg), &line);
    if (rc < 0) {
      e->file = v;
      e->line = line;
    }
  } else if (!strcmp(f, "allow-domains") || !strcmp(f, "block-domains")) {
    rc = awf_acl_add_list(r->acl, f[0] == 'a' ? AWF_ACL_ALLOW : AWF_ACL_BLOCK, v, msg,
                          sizeof(msg));
  } else {
    rc = r->url_rules || (r->url_rules = awf_url_rules_new())
             ? awf_url_rules_add_list(r->url_rules, f[0] == 'a' ? AWF_URL_ALLOW : AWF_URL_BLOCK,
                                      v, msg, sizeof(msg))
             : -ENOMEM;
  }
  if (rc < 0)
    snprintf(e->msg, sizeof(e->msg), "--%s: %s", f, msg[0] ? msg : strerror(-rc));
  return rc;
}

/* What only the whole set can tell. */
static int check_rules(const struct awf_options *o, const struct awf_rules *r, char *err,
                       size_t errlen) {
  if (!o->ssl_bump && awf_url_rules_has_scheme(r->url_rules, AWF_URL_HTTPS)) {
    snprintf(err, errlen,
             "'%s': https:// URL rules (--allow-urls, --block-urls, rulesets) need TLS "
             "interception: add --ssl-bump (http:// rules work without it)",
             awf_url_rules_first(r->url_rules, AWF_URL_HTTPS));
    return -EINVAL;
  }
  return 0;
}

int awf_rules_build(const struct awf_options *o, struct awf_rules **out,
                    struct awf_rules_error *e) {
  memset(e, 0, sizeof(*e));
  struct awf_rules *r = rules_new(o);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int rc = r && md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
  if (rc < 0)
    snprintf(e->msg, sizeof(e->msg), "out of memory");
  for (size_t i = 0; i < o->n_sources && rc == 0; i++)
    rc = build_source(r, &o->sources[i], md, e);
  if (rc == 0 && (rc = check_rules(o, r, e->msg, sizeof(e->msg))) == 0)
    EVP_DigestFinal_ex(md, r->digest, NULL);
  EVP_MD_CTX_free(md);
  if (rc < 0) {
    awf_rules_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

bool awf_rules_same_secrets(const struct awf_rules *a, const struct awf_rules *b) {
  if (a->secrets.n != b->secrets.n)
    return false;
  for (size_t i = 0; i < a->secrets.n; i++)
    if (strcmp(a->secrets.v[i], b->secrets.v[i]) != 0)
      return false;
  return true;
}

void awf_rules_digest_hex(const struct awf_rules *r, char out[65]) {
  for (size_t i = 0; i < sizeof(r->digest); i++)
    snprintf(out + 2 * i, 3, "%02x", r->digest[i]);
}

void awf_rules_summary(const struct awf_rules *r, char *buf, size_t len) {
  char ports[256], hex[65];
  awf_port_set_format(&r->ports, ports, sizeof(ports));
  awf_rules_digest_hex(r, hex);
  snprintf(buf, len,
           "%zu allow, %zu block, %zu URL allow, %zu URL block rules; ports %s (%zu source%s, "
           "%zu file%s, sha256 %s)",
           awf_acl_count(r->acl, AWF_ACL_ALLOW), awf_acl_count(r->acl, AWF_ACL_BLOCK),
           awf_url_rules_count(r->url_rules, AWF_URL_ALLOW),
           awf_url_rules_count(r->url_rules, AWF_URL_BLOCK), ports, r->n_sources,
           r->n_sources == 1 ? "" : "s", r->n_files, r->n_files == 1 ? "" : "s", hex);
}

/* ---- secrets ------------------------------------------------------------ */

#define MAX_SECRET_FILE 65536

static int getrandom_fn(void *buf, size_t len, void *arg) {
  (void)arg;
  for (size_t off = 0; off < len;) {
    ssize_t n = getrandom((char *)buf + off, len - off, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n < 0 ? -errno : -EIO;
    off += (size_t)n;
  }
  return 0;
}

static void wipe_free(char *p, size_t len) {
  if (!p)
    return;
  explicit_bzero(p, len);
  free(p);
}

/* --secret-endpoint NAME=https://HOST[/BASE]: base-URL mode; NAME is bound
 * to HOST as by --secret NAME=HOST. */
static int add_endpoint(struct awf_options *o, const char *v, char *err, size_t errlen) {
  if (o->n_endpoints == AWF_SECRET_ENDPOINTS_MAX) {
    snprintf(err, errlen, "--secret-endpoint: more than %d", AWF_SECRET_ENDPOINTS_MAX);
    return -E2BIG;
  }
  struct awf_secret_endpoint *ep = &o->endpoints[o->n_endpoints];
  if (awf_secret_endpoint_parse(v, ep, err, errlen) < 0)
    return -EINVAL;
  for (size_t i = 0; i < o->n_endpoints; i++)
    if (strcmp(o->endpoints[i].name, ep->name) == 0) {
      snprintf(err, errlen, "--secret-endpoint %s: given twice", ep->name);
      return -EINVAL;
    }
  char spec[AWF_SECRET_NAME_MAX + 300];
  snprintf(spec, sizeof(spec), "%s=%s", ep->name, ep->host);
  if (!o->secrets && !(o->secrets = awf_secrets_new()))
    return -ENOMEM;
  if (awf_secrets_add(o->secrets, spec, err, errlen) < 0)
    return -EINVAL;
  o->n_endpoints++;
  return 0;
}

/* --secret-header NAME=HEADER, once the secrets are known. */
static int apply_secret_header(struct awf_options *o, const char *spec, char *err,
                               size_t errlen) {
  const char *eq = strchr(spec, '=');
  char name[AWF_SECRET_NAME_MAX + 1];
  size_t nlen = eq ? (size_t)(eq - spec) : 0;
  if (!eq || nlen >= sizeof(name) || !awf_secret_header_name_ok(eq + 1)) {
    snprintf(err, errlen,
             "--secret-header '%.64s': expected NAME=HEADER with HEADER a header name (not "
             "Host, Proxy-*, or a hop-by-hop or framing header)",
             spec);
    return -EINVAL;
  }
  memcpy(name, spec, nlen);
  name[nlen] = '\0';
  return awf_secrets_set_header(o->secrets, name, eq + 1, err, errlen);
}

/* --secret-endpoint-listen NAME=ADDR:PORT, once the endpoints are known. */
static int apply_endpoint_listen(struct awf_options *o, const char *spec, char *err,
                                 size_t errlen) {
  const char *eq = strchr(spec, '=');
  for (size_t i = 0; eq && i < o->n_endpoints; i++) {
    size_t nlen = strlen(o->endpoints[i].name);
    if ((size_t)(eq - spec) != nlen || strncmp(spec, o->endpoints[i].name, nlen) != 0)
      continue;
    if (awf_sockaddr_parse(eq + 1, &o->ep_listen[i]) < 0) {
      snprintf(err, errlen, "--secret-endpoint-listen %.*s: '%.64s' is not ADDR:PORT",
               (int)nlen, spec, eq + 1);
      return -EINVAL;
    }
    o->ep_listen_set[i] = true;
    return 0;
  }
  snprintf(err, errlen,
           "--secret-endpoint-listen '%.64s': expected NAME=ADDR:PORT with NAME a "
           "--secret-endpoint",
           spec);
  return -EINVAL;
}

/* --secret-file NAME=PATH: the file's bytes, one trailing line break dropped. */
static int read_secret_file(struct awf_options *o, const char *spec, char *err, size_t errlen) {
  char name[AWF_SECRET_NAME_MAX + 1], msg[512];
  const char *path;
  int rc = awf_secrets_split_file_spec(spec, name, sizeof(name), &path, err, errlen);
  if (rc < 0)
    return rc;
  int i = awf_secrets_find(o->secrets, name);
  if (i < 0) {
    snprintf(err, errlen, "--secret-file %s: give its hosts too: --secret %s=HOST[,HOST...]",
             name, name);
    return -EINVAL;
  }
  char *text;
  size_t len;
  if ((rc = awf_textfile_read(path, MAX_SECRET_FILE, &text, &len, msg, sizeof(msg))) < 0) {
    snprintf(err, errlen, "--secret-file %s: %s", name, msg);
    return rc;
  }
  size_t vlen = len;
  if (vlen && text[vlen - 1] == '\n')
    vlen--;
  if (vlen && text[vlen - 1] == '\r')
    vlen--;
  rc = awf_secrets_set_value(o->secrets, (size_t)i, text, vlen, err, errlen);
  wipe_free(text, len);
  return rc;
}

static bool has_value(const struct awf_options *o, const char *name) {
  for (size_t k = 0; k < o->n_secret_files; k++) {
    size_t n = strlen(name);
    if (!strncmp(o->secret_files[k], name, n) && o->secret_files[k][n] == '=')
      return true;
  }
  return false;
}

static int finish_secrets(struct awf_options *o, char *err, size_t errlen) {
  size_t n = awf_secrets_count(o->secrets);
  if (n == 0) {
    const char *lone = o->n_secret_files            ? "--secret-file"
                       : o->n_secret_in_body        ? "--secret-in-body"
                       : o->n_secret_headers        ? "--secret-header"
                       : o->n_ep_listen_specs       ? "--secret-endpoint-listen"
                       : o->secret_strict           ? "--secret-strict"
                       : o->secret_allow_plaintext  ? "--secret-allow-plaintext"
                       : o->secret_placeholders_out ? "--secret-placeholders-out"
                                                    : NULL;
    if (lone) {
      snprintf(err, errlen, "%s: needs --secret NAME=HOST[,HOST...]", lone);
      return -EINVAL;
    }
    return 0;
  }
  int rc = 0;
  for (size_t k = 0; rc == 0 && k < o->n_secret_files; k++)
    rc = read_secret_file(o, o->secret_files[k], err, errlen);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const char *name = awf_secrets_name(o->secrets, i);
    if (has_value(o, name))
      continue;
    const char *v = getenv(name);
    if (!v) {
      snprintf(err, errlen,
               "--secret %s: %s is not set in the environment (set it, or give "
               "--secret-file %s=PATH)",
               name, name, name);
      return -EINVAL;
    }
    rc = awf_secrets_set_value(o->secrets, i, v, strlen(v), err, errlen);
  }
  for (size_t k = 0; rc == 0 && k < o->n_secret_in_body; k++)
    rc = awf_secrets_set_in_body(o->secrets, o->secret_in_body[k], err, errlen);
  for (size_t k = 0; rc == 0 && k < o->n_secret_headers; k++)
    rc = apply_secret_header(o, o->secret_headers[k], err, errlen);
  for (size_t k = 0; k < o->n_endpoints; k++)
    o->endpoints[k].secret = (size_t)awf_secrets_find(o->secrets, o->endpoints[k].name);
  for (size_t k = 0; rc == 0 && k < o->n_ep_listen_specs; k++)
    rc = apply_endpoint_listen(o, o->ep_listen_specs[k], err, errlen);
  if (rc == 0)
    rc = awf_secrets_seal(o->secrets, getrandom_fn, NULL, err, errlen);
  /* --dlp: a secret's real value is a credential like any token. */
  for (size_t i = 0; rc == 0 && o->dlp_table && i < n; i++) {
    char kind[65];
    size_t len;
    const char *v = awf_secrets_value(o->secrets, i, &len);
    snprintf(kind, sizeof(kind), "secret:%s", awf_secrets_name(o->secrets, i));
    if ((rc = awf_dlp_add_literal(o->dlp_table, kind, v, len)) < 0)
      snprintf(err, errlen, "--dlp: secret %s: %s", awf_secrets_name(o->secrets, i),
               strerror(-rc));
  }
  return rc;
}

int awf_options_write_placeholders(const struct awf_options *o, const char *path, char *err,
                                   size_t errlen) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    snprintf(err, errlen, "'%s': %s", path, strerror(errno));
    return -errno;
  }
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    return -ENOMEM;
  }
  int rc = fchmod(fd, 0600) < 0 ? -errno : 0;
  for (size_t i = 0; rc == 0 && i < awf_secrets_count(o->secrets); i++) {
    size_t len;
    const char *ph = awf_secrets_placeholder(o->secrets, i, &len);
    if (fprintf(f, "%s=%s\n", awf_secrets_name(o->secrets, i), ph) < 0)
      rc = -EIO;
  }
  if (fclose(f) != 0 && rc == 0)
    rc = -errno;
  if (rc < 0)
    snprintf(err, errlen, "'%s': %s", path, strerror(-rc));
  return rc;
}

bool awf_options_intercepts(const struct awf_options *o) {
  return o->ssl_bump || awf_secrets_count(o->secrets) > 0;
}

int awf_options_finish(struct awf_options *o, char *err, size_t errlen) {
  struct awf_rules *r;
  struct awf_rules_error e;
  int rc = awf_rules_build(o, &r, &e);
  if (rc < 0) {
    snprintf(err, errlen, "%s", e.msg);
    return rc;
  }
  awf_rules_free(awf_options_swap_rules(o, r));
  /* Rulesets' secrets: entries are --secret entries, read once, at start. */
  for (size_t i = 0; i < r->secrets.n; i++) {
    char msg[512];
    if (!o->secrets && !(o->secrets = awf_secrets_new()))
      return -ENOMEM;
    if ((rc = awf_secrets_add(o->secrets, r->secrets.v[i], msg, sizeof(msg))) < 0) {
      snprintf(err, errlen, "--ruleset-file: secrets: %s", msg);
      return rc;
    }
  }
  if (o->ssl_bump_ca_out && !o->ssl_bump && !o->secrets) {
    snprintf(err, errlen, "--ssl-bump-ca-out: needs --ssl-bump or --secret");
    return -EINVAL;
  }
  if (o->dlp && !o->dlp_table && !(o->dlp_table = awf_dlp_new())) {
    snprintf(err, errlen, "--dlp: out of memory");
    return -ENOMEM;
  }
  return finish_secrets(o, err, errlen);
}

int awf_options_start_intercept(struct awf_options *o, char *err, size_t errlen) {
  if (!awf_options_intercepts(o) || o->intercept)
    return 0;
  char msg[512];
  int rc = awf_intercept_new(o->url_rules, o->secrets, &o->intercept, msg, sizeof(msg));
  if (rc < 0) {
    snprintf(err, errlen, "%s: %s", o->ssl_bump ? "--ssl-bump" : "--secret", msg);
    return rc;
  }
  if (o->ssl_bump_ca_out &&
      (rc = awf_intercept_write_ca(o->intercept, o->ssl_bump_ca_out, msg, sizeof(msg))) < 0) {
    snprintf(err, errlen, "--ssl-bump-ca-out: %s", msg);
    return rc;
  }
  return 0;
}

int awf_options_set(struct awf_options *o, const char *flag, const char *v, char *err,
                    size_t errlen) {
  char msg[512];
  int rc = 0;
  msg[0] = '\0';
  if (rule_flag(flag)) {
    rc = add_source(o, rule_flag(flag), v); /* read and checked by awf_options_finish() */
  } else if (!strcmp(flag, "secret")) {
    if (!o->secrets && !(o->secrets = awf_secrets_new()))
      return -ENOMEM;
    rc = awf_secrets_add(o->secrets, v, err, errlen);
    return rc < 0 ? -EINVAL : 0; /* err names the flag already */
  } else if (!strcmp(flag, "secret-file") || !strcmp(flag, "secret-in-body")) {
    bool file = flag[7] == 'f';
    const char **list = file ? o->secret_files : o->secret_in_body;
    size_t *n = file ? &o->n_secret_files : &o->n_secret_in_body;
    if (*n == AWF_SECRETS_MAX) {
      snprintf(msg, sizeof(msg), "more than %d", AWF_SECRETS_MAX);
      rc = -E2BIG;
    } else {
      list[(*n)++] = v; /* checked once every --secret is read */
    }
  } else if (!strcmp(flag, "secret-endpoint")) {
    return add_endpoint(o, v, err, errlen);
  } else if (!strcmp(flag, "secret-endpoint-listen")) {
    if (o->n_ep_listen_specs == AWF_SECRET_ENDPOINTS_MAX) {
      snprintf(msg, sizeof(msg), "more than %d", AWF_SECRET_ENDPOINTS_MAX);
      rc = -E2BIG;
    } else {
      o->ep_listen_specs[o->n_ep_listen_specs++] = v; /* checked in finish_secrets() */
    }
  } else if (!strcmp(flag, "secret-header")) {
    if (o->n_secret_headers == AWF_SECRETS_MAX) {
      snprintf(msg, sizeof(msg), "more than %d", AWF_SECRETS_MAX);
      rc = -E2BIG;
    } else {
      o->secret_headers[o->n_secret_headers++] = v; /* checked in finish_secrets() */
    }
  } else if (!strcmp(flag, "secret-placeholders-out")) {
    o->secret_placeholders_out = v;
  } else if (!strcmp(flag, "secret-strict")) {
    o->secret_strict = true;
  } else if (!strcmp(flag, "secret-allow-plaintext")) {
    o->secret_allow_plaintext = true;
  } else if (!strcmp(flag, "ssl-bump-ca-out")) {
    o->ssl_bump_ca_out = v;
  } else if (!strcmp(flag, "rate-limit")) {
    rc = add_rate_limit(o, AWF_RATE_REQUESTS, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "bytes-limit")) {
    rc = add_rate_limit(o, AWF_RATE_BYTES, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "allow-ssh")) {
    rc = add_ssh_rules(o, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "allow-ports")) {
    rc = awf_parse_port_list(v, &o->flag_ports, msg, sizeof(msg));
    o->ports = o->flag_ports; /* rulesets' ports are added by awf_options_finish() */
  } else if (!strcmp(flag, "tls-ports")) {
    rc = awf_parse_port_list(v, &o->tls_ports, msg, sizeof(msg));
  } else if (!strcmp(flag, "http-ports")) {
    rc = awf_parse_port_list(v, &o->http_ports, msg, sizeof(msg));
  } else if (!strcmp(flag, "allow-destination-cidrs")) {
    rc = awf_addr_policy_allow_cidrs(o->policy, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "allow-clients")) {
    if (v[strspn(v, ", \t")] == '\0') { /* no client at all would serve no one */
      snprintf(msg, sizeof(msg), "the list is empty: name the clients' CIDRs, e.g. 10.0.0.0/8");
      rc = -EINVAL;
    } else if (!o->clients && !(o->clients = awf_addr_policy_new()))
      rc = -ENOMEM;
    else
      rc = awf_addr_policy_allow_cidrs(o->clients, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "upstream-proxy")) {
    rc = set_upstream_proxy(o, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "dns-servers")) {
    o->dns_servers = v; /* validated when the resolver is built */
  } else if (!strcmp(flag, "log-file")) {
    o->log_file = v;
  } else if (!strcmp(flag, "log-level")) {
    static const char *levels[] = {"debug", "info", "warn", "error"};
    rc = -EINVAL;
    for (int i = 0; i < 4; i++)
      if (!strcmp(v, levels[i])) {
        o->log_level = (enum awf_log_level)i;
        rc = 0;
      }
    if (rc)
      snprintf(msg, sizeof(msg), "'%s' is not one of debug, info, warn, error", v);
  } else if (!strcmp(flag, "max-connections")) {
    rc = set_count(v, &o->max_connections, msg, sizeof(msg));
  } else if (!strcmp(flag, "workers")) {
    rc = set_count(v, &o->workers, msg, sizeof(msg));
    if (rc == 0 && o->workers > AWF_MAX_WORKERS) {
      snprintf(msg, sizeof(msg), "'%s' is more than %d", v, AWF_MAX_WORKERS);
      rc = -EINVAL;
    }
  } else if (!strcmp(flag, "max-connections-per-client")) {
    rc = set_count(v, &o->max_connections_per_client, msg, sizeof(msg));
  } else if (!strcmp(flag, "connect-timeout")) {
    return set_seconds(flag, v, &o->connect_timeout_ms, err, errlen);
  } else if (!strcmp(flag, "header-timeout")) {
    return set_seconds(flag, v, &o->header_timeout_ms, err, errlen);
  } else if (!strcmp(flag, "idle-timeout")) {
    return set_seconds(flag, v, &o->idle_timeout_ms, err, errlen);
  } else if (!strcmp(flag, "tunnel-idle-timeout")) {
    return set_seconds(flag, v, &o->tunnel_idle_timeout_ms, err, errlen);
  } else if (!strcmp(flag, "read-timeout")) {
    return set_seconds(flag, v, &o->read_timeout_ms, err, errlen);
  } else if (!strcmp(flag, "shutdown-grace")) {
    return set_seconds(flag, v, &o->shutdown_grace_ms, err, errlen);
  } else if (!strcmp(flag, "listen")) {
    rc = add_listen(o->listen, &o->n_listen, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "transparent-listen")) {
    rc = add_listen(o->tlisten, &o->n_tlisten, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "dns-listen")) {
    rc = add_listen(o->dns_listen, &o->n_dns_listen, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "metrics-listen")) {
    rc = add_listen(o->metrics_listen, &o->n_metrics_listen, v, msg, sizeof(msg));
  } else {
    snprintf(msg, sizeof(msg), "unknown option");
    rc = -EINVAL;
  }
  if (rc < 0)
    snprintf(err, errlen, "--%s: %s", flag, msg[0] ? msg : strerror(-rc));
  return rc < 0 ? -EINVAL : 0;
}

void awf_port_set_format(const struct awf_port_set *s, char *buf, size_t len) {
  size_t used = 0;
  if (len > 0)
    buf[0] = '\0';
  for (unsigned p = 1; p <= 65535; p++) {
    if (!awf_port_set_has(s, (uint16_t)p))
      continue;
    unsigned hi = p;
    while (hi < 65535 && awf_port_set_has(s, (uint16_t)(hi + 1)))
      hi++;
    int k = hi == p ? snprintf(buf + used, len - used, "%s%u", used ? "," : "", p)
                    : snprintf(buf + used, len - used, "%s%u-%u", used ? "," : "", p, hi);
    if (k < 0 || (size_t)k >= len - used)
      return; /* truncated */
    used += (size_t)k;
    p = hi;
  }
}

static void describe_rules(FILE *f, const char *prog, const awf_acl *acl, enum awf_acl_list l) {
  size_t need = awf_acl_format(acl, l, NULL, 0) + 1;
  char *text = malloc(need);
  if (text)
    awf_acl_format(acl, l, text, need);
  fprintf(f, "%s: debug: %s (%zu): %s\n", prog, l == AWF_ACL_ALLOW ? "allow" : "block",
          awf_acl_count(acl, l), text ? text : "(out of memory)");
  free(text);
}

void awf_options_describe(const struct awf_options *o, const char *prog, FILE *f) {
  char a[1024], b[1024];
  describe_rules(f, prog, o->acl, AWF_ACL_ALLOW);
  describe_rules(f, prog, o->acl, AWF_ACL_BLOCK);
  if (o->url_rules)
    fprintf(f, "%s: debug: url rules: %zu allow, %zu block\n", prog,
            awf_url_rules_count(o->url_rules, AWF_URL_ALLOW),
            awf_url_rules_count(o->url_rules, AWF_URL_BLOCK));
  if (o->ssl_bump)
    fprintf(f, "%s: debug: ssl-bump: on (hosts of https:// URL rules are intercepted)\n", prog);
  if (o->rate_limits) {
    awf_rate_limits_format(o->rate_limits, AWF_RATE_REQUESTS, a, sizeof(a));
    awf_rate_limits_format(o->rate_limits, AWF_RATE_BYTES, b, sizeof(b));
    fprintf(f, "%s: debug: rate-limit: %s; bytes-limit: %s\n", prog, a[0] ? a : "none",
            b[0] ? b : "none");
  }
  if (o->dlp)
    fprintf(f, "%s: debug: dlp: on (tokens and secrets in requests, names and bodies)\n", prog);
  /* The secrets: names and hosts, never values. */
  for (size_t i = 0; i < awf_secrets_count(o->secrets); i++) {
    const char *hosts[AWF_SECRET_HOSTS_MAX];
    size_t n = awf_secrets_hosts(o->secrets, i, hosts, AWF_SECRET_HOSTS_MAX);
    fprintf(f, "%s: debug: secret %s: %zu host(s), first %s%s\n", prog,
            awf_secrets_name(o->secrets, i), n, n ? hosts[0] : "-",
            awf_secrets_in_body(o->secrets, i) ? ", in bodies too" : "");
  }
  for (size_t i = 0; i < o->n_endpoints; i++) {
    const struct awf_secret_endpoint *ep = &o->endpoints[i];
    fprintf(f, "%s: debug: secret-endpoint %s: https://%s:%u%s, header %s\n", prog, ep->name,
            ep->host, (unsigned)ep->port, ep->base, awf_secrets_header(o->secrets, ep->secret));
  }
  awf_port_set_format(&o->ports, a, sizeof(a));
  fprintf(f, "%s: debug: allow-ports: %s%s\n", prog, a,
          o->audit ? " (--audit: nothing denied)" : "");
  awf_port_set_format(&o->tls_ports, a, sizeof(a));
  awf_port_set_format(&o->http_ports, b, sizeof(b));
  fprintf(f, "%s: debug: tls-ports: %s; http-ports: %s\n", prog, a, b);
  awf_addr_policy_format(o->policy, a, sizeof(a));
  fprintf(f, "%s: debug: allow-destination-cidrs: %s (other non-global addresses refused)\n",
          prog, a);
  if (o->clients) {
    awf_addr_policy_format(o->clients, a, sizeof(a));
    fprintf(f, "%s: debug: allow-clients: %s\n", prog, a);
  }
  const struct awf_upstream_proxy *up = o->upstream_proxy;
  if (up)
    fprintf(f, "%s: debug: upstream-proxy: %s%s%s:%u (from %s)%s; no-proxy: %s\n", prog,
            strchr(up->host, ':') ? "[" : "", up->host, strchr(up->host, ':') ? "]" : "",
            (unsigned)up->port, o->upstream_proxy_from, up->auth[0] ? ", with credentials" : "",
            up->no_proxy[0] ? up->no_proxy : "none");
  else
    fprintf(f, "%s: debug: upstream-proxy: none (direct)\n", prog);
}

void awf_trace_stderr(void *prog, const char *line) {
  fprintf(stderr, "%s: debug: %s\n", (const char *)prog, line);
}

void awf_options_debug_start(const struct awf_options *o, const char *prog,
                             struct awf_resolver_options *ro, const awf_resolver *resolver) {
  if (o->log_level != AWF_LOG_DEBUG)
    return;
  if (!resolver) {
    ro->trace = awf_trace_stderr;
    ro->trace_arg = (void *)prog;
    return;
  }
  char servers[1024];
  awf_options_describe(o, prog, stderr);
  if (awf_resolver_servers(resolver, servers, sizeof(servers)) < 0)
    snprintf(servers, sizeof(servers), "(unknown)");
  fprintf(stderr, "%s: debug: dns-servers: %s%s\n", prog, servers[0] ? servers : "none",
          o->dns_servers ? "" : " (from /etc/resolv.conf; /etc/hosts first)");
}

void awf_options_to_config(const struct awf_options *o, struct awf_proxy_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->acl = o->acl;
  cfg->policy = o->policy;
  cfg->allow_ports = o->ports;
  cfg->audit = o->audit;
  cfg->log_level = o->log_level;
  cfg->max_connections = o->max_connections;
  cfg->max_connections_per_client = o->max_connections_per_client
                                        ? o->max_connections_per_client
                                        : awf_client_limit_default(o->max_connections);
  cfg->connect_timeout_ms = o->connect_timeout_ms;
  cfg->header_timeout_ms = o->header_timeout_ms;
  cfg->idle_timeout_ms = o->idle_timeout_ms;
  cfg->tunnel_idle_timeout_ms = o->tunnel_idle_timeout_ms;
  cfg->read_timeout_ms = o->read_timeout_ms;
  cfg->shutdown_grace_ms = o->shutdown_grace_ms;
  cfg->tls_ports = o->tls_ports;
  cfg->http_ports = o->http_ports;
  cfg->ssh_acl = o->ssh_acl;
  cfg->url_rules = o->url_rules;
  cfg->intercept = o->intercept;
  cfg->secrets = o->secrets;
  cfg->secret_strict = o->secret_strict;
  cfg->secret_allow_plaintext = o->secret_allow_plaintext;
  cfg->allow_clients = o->clients;
  cfg->rate_limits = o->rate_limits;
  cfg->dlp = o->dlp_table;
  cfg->upstream_proxy = o->upstream_proxy;
}
