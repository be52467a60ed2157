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

#include "client_limits.h"
#include "netaddr.h"
#include "textfile.h"

#define MAX_RULES_FILE (16 * 1024 * 1024)

int awf_options_init(struct awf_options *o) {
  memset(o, 0, sizeof(*o));
  o->acl = awf_acl_new();
  o->policy = awf_addr_policy_new();
  if (!o->acl || !o->policy) {
    awf_options_free(o);
    return -ENOMEM;
  }
  awf_port_set_add(&o->ports, 80);
  awf_port_set_add(&o->ports, 443);
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
  if (o->acl)
    awf_acl_free(o->acl);
  if (o->policy)
    awf_addr_policy_free(o->policy);
  if (o->ssh_acl)
    awf_acl_free(o->ssh_acl);
  awf_intercept_free(o->intercept); /* before the rules it borrows */
  o->intercept = NULL;
  awf_url_rules_free(o->url_rules);
  o->url_rules = NULL;
  awf_addr_policy_free(o->clients);
  awf_rate_limits_free(o->rate_limits);
  o->rate_limits = NULL;
  awf_dlp_free(o->dlp_table);
  o->dlp_table = NULL;
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

static int add_rules_file(struct awf_options *o, enum awf_acl_list which, const char *path,
                          char *err, size_t errlen) {
  char *text;
  size_t len;
  int rc = awf_textfile_read(path, MAX_RULES_FILE, &text, &len, err, errlen);
  if (rc == 0) {
    rc = awf_acl_add_text(o->acl, which, text, len, path, err, errlen);
    free(text);
  }
  return rc;
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

/* --allow-urls, --allow-urls-file, --block-urls (url_rules.h). https://
 * rules need --ssl-bump (checked once every flag is read). */
static int add_url_rules(struct awf_options *o, enum awf_url_list which, const char *v,
                         bool file, char *msg, size_t msglen) {
  if (!o->url_rules && !(o->url_rules = awf_url_rules_new()))
    return -ENOMEM;
  int rc;
  if (file) {
    char *text;
    size_t len;
    rc = awf_textfile_read(v, MAX_RULES_FILE, &text, &len, msg, msglen);
    if (rc < 0)
      return rc;
    rc = awf_url_rules_add_text(o->url_rules, which, text, len, v, msg, msglen);
    free(text);
  } else {
    rc = awf_url_rules_add_list(o->url_rules, which, v, msg, msglen);
  }
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

int awf_options_finish(struct awf_options *o, char *err, size_t errlen) {
  if (!o->ssl_bump && awf_url_rules_has_scheme(o->url_rules, AWF_URL_HTTPS)) {
    snprintf(err, errlen,
             "'%s': https:// URL rules (--allow-urls, --block-urls) need TLS interception: "
             "add --ssl-bump (http:// rules work without it)",
             awf_url_rules_first(o->url_rules, AWF_URL_HTTPS));
    return -EINVAL;
  }
  if (o->ssl_bump_ca_out && !o->ssl_bump) {
    snprintf(err, errlen, "--ssl-bump-ca-out: needs --ssl-bump");
    return -EINVAL;
  }
  if (o->dlp && !o->dlp_table && !(o->dlp_table = awf_dlp_new())) {
    snprintf(err, errlen, "--dlp: out of memory");
    return -ENOMEM;
  }
  return 0;
}

int awf_options_start_intercept(struct awf_options *o, char *err, size_t errlen) {
  if (!o->ssl_bump || o->intercept)
    return 0;
  char msg[512];
  int rc = awf_intercept_new(o->url_rules, &o->intercept, msg, sizeof(msg));
  if (rc < 0) {
    snprintf(err, errlen, "--ssl-bump: %s", msg);
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
  if (!strcmp(flag, "allow-domains")) {
    rc = awf_acl_add_list(o->acl, AWF_ACL_ALLOW, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "block-domains")) {
    rc = awf_acl_add_list(o->acl, AWF_ACL_BLOCK, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "allow-domains-file")) {
    rc = add_rules_file(o, AWF_ACL_ALLOW, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "block-domains-file")) {
    rc = add_rules_file(o, AWF_ACL_BLOCK, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "allow-urls")) {
    rc = add_url_rules(o, AWF_URL_ALLOW, v, false, msg, sizeof(msg));
  } else if (!strcmp(flag, "allow-urls-file")) {
    rc = add_url_rules(o, AWF_URL_ALLOW, v, true, msg, sizeof(msg));
  } else if (!strcmp(flag, "block-urls")) {
    rc = add_url_rules(o, AWF_URL_BLOCK, v, false, msg, sizeof(msg));
  } else if (!strcmp(flag, "ssl-bump-ca-out")) {
    o->ssl_bump_ca_out = v;
  } else if (!strcmp(flag, "rate-limit")) {
    rc = add_rate_limit(o, AWF_RATE_REQUESTS, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "bytes-limit")) {
    rc = add_rate_limit(o, AWF_RATE_BYTES, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "allow-ssh")) {
    rc = add_ssh_rules(o, v, msg, sizeof(msg));
  } else if (!strcmp(flag, "allow-ports")) {
    rc = awf_parse_port_list(v, &o->ports, msg, sizeof(msg));
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
  cfg->allow_clients = o->clients;
  cfg->rate_limits = o->rate_limits;
  cfg->dlp = o->dlp_table;
}
