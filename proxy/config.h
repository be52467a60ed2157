/* config.h: the proxy's command-line flags, shared by awf-proxy and awf.
 * Parsing builds the ACL and address policy and reads rule files; errors
 * name the flag and the problem. */
#ifndef AWF_CONFIG_H
#define AWF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "proxy.h"
#include "ruleset.h"

#define AWF_MAX_LISTEN 16
#define AWF_MAX_WORKERS 256 /* --workers */

/* A rule flag as given (--allow-domains, --block-domains, their -file forms,
 * --allow-urls, --allow-urls-file, --block-urls, --ruleset-file): replayed in
 * order into a fresh set at the end of the flags and on every reload. */
struct awf_rule_source {
  const char *flag;  /* its long name, static */
  const char *value; /* the caller's (argv), outlives the options */
};

/* The rules built from every source: what the engine and the DNS servers
 * judge by, replaced whole on a reload (awf-proxy's SIGHUP). */
struct awf_rules {
  awf_acl *acl;
  awf_url_rules *url_rules;           /* NULL: no URL rule */
  struct awf_ruleset_secrets secrets; /* rulesets' secrets: entries (applied at start) */
  struct awf_port_set ports;          /* --allow-ports (or its default) plus rulesets' ports: */
  unsigned char digest[32];           /* SHA-256 over every source, files' bytes included */
  size_t n_sources, n_files;
};

/* Do two rule sets name the same rulesets' secrets (in order)? A reload
 * does not change the secrets in force: they were set up at start. */
bool awf_rules_same_secrets(const struct awf_rules *a, const struct awf_rules *b);

/* Why a build failed: the message ("--FLAG: FILE:LINE[:COL]: ..."), and the
 * file and line when a file is at fault (file NULL, line 0 otherwise). */
struct awf_rules_error {
  char msg[768];
  const char *file;
  unsigned line;
};

struct awf_options {
  awf_acl *acl; /* rules->acl (borrowed), for the readers below */
  awf_addr_policy *policy;
  struct awf_port_set ports;
  const char *dns_servers;  /* NULL: the host's resolver configuration */
  const char *log_file;     /* NULL: no access log */
  awf_addr_policy *clients; /* --allow-clients; NULL: any client */
  bool audit;
  enum awf_log_level log_level;
  unsigned max_connections;
  unsigned max_connections_per_client; /* 0: awf_client_limit_default() */
  unsigned connect_timeout_ms;
  unsigned header_timeout_ms;
  unsigned idle_timeout_ms;
  unsigned tunnel_idle_timeout_ms;
  unsigned read_timeout_ms;
  unsigned shutdown_grace_ms;
  unsigned workers; /* --workers: event loops in threads; 0: the program's default */
  struct sockaddr_storage listen[AWF_MAX_LISTEN];
  size_t n_listen;
  struct sockaddr_storage tlisten[AWF_MAX_LISTEN]; /* --transparent-listen */
  size_t n_tlisten;
  struct sockaddr_storage dns_listen[AWF_MAX_LISTEN]; /* --dns-listen */
  size_t n_dns_listen;
  struct sockaddr_storage metrics_listen[AWF_MAX_LISTEN]; /* --metrics-listen (awf-proxy) */
  size_t n_metrics_listen;
  struct awf_port_set tls_ports;
  struct awf_port_set http_ports;
  awf_acl *ssh_acl;         /* --allow-ssh; NULL: not given */
  awf_url_rules *url_rules; /* rules->url_rules (borrowed); NULL: none */
  struct awf_rules *rules;  /* built by awf_options_finish() */
  struct awf_rule_source *sources;
  size_t n_sources;
  struct awf_port_set flag_ports; /* --allow-ports, or 80,443 */
  bool ssl_bump;                  /* --ssl-bump */
  const char *ssl_bump_ca_out;    /* --ssl-bump-ca-out PATH (awf-proxy) */
  awf_intercept *intercept;       /* made by awf_options_start_intercept() */
  /* --rate-limit, --bytes-limit; NULL: not given */
  awf_rate_limits *rate_limits;
  bool dlp; /* --dlp */
  /* --dlp: the scanner's table, made by awf_options_finish(). Literal
   * values (a secret's real value) are added to it with
   * awf_dlp_add_literal() before the engine starts. */
  awf_dlp *dlp_table;
  /* --upstream-proxy: the parent proxy (NULL: direct), where it came from
   * ("--upstream-proxy" or the environment variable auto read), and
   * whether the flag was given at all (awf reads the environment if not). */
  struct awf_upstream_proxy *upstream_proxy;
  const char *upstream_proxy_from;
  bool upstream_proxy_set;
  /* --secret NAME=HOST[,HOST...] (secrets.h): values read and placeholders
   * made by awf_options_finish(). NULL: none. */
  awf_secrets *secrets;
  const char *secret_files[AWF_SECRETS_MAX]; /* --secret-file NAME=PATH, as given */
  size_t n_secret_files;
  const char *secret_in_body[AWF_SECRETS_MAX]; /* --secret-in-body NAME */
  size_t n_secret_in_body;
  /* --secret-endpoint NAME=https://HOST[/BASE] (awf): base-URL mode; each
   * also binds NAME to HOST. --secret-header NAME=HEADER, as given. */
  struct awf_secret_endpoint endpoints[AWF_SECRET_ENDPOINTS_MAX];
  size_t n_endpoints;
  /* --secret-endpoint-listen NAME=ADDR:PORT (awf-proxy): where each listens
   * (ep_listen_set[i] false: not given). */
  struct sockaddr_storage ep_listen[AWF_SECRET_ENDPOINTS_MAX];
  bool ep_listen_set[AWF_SECRET_ENDPOINTS_MAX];
  const char *ep_listen_specs[AWF_SECRET_ENDPOINTS_MAX];
  size_t n_ep_listen_specs;
  const char *secret_headers[AWF_SECRETS_MAX];
  size_t n_secret_headers;
  bool secret_strict;                  /* --secret-strict */
  bool secret_allow_plaintext;         /* --secret-allow-plaintext */
  const char *secret_placeholders_out; /* --secret-placeholders-out FILE (awf-proxy) */
};

/* Defaults, with an empty ACL (deny all). Returns 0 or -ENOMEM. */
int awf_options_init(struct awf_options *o);
void awf_options_free(struct awf_options *o);

/* Handle one domain/proxy flag by its long name ("allow-domains", ...) and
 * value. Returns 0, or -EINVAL with a message in err naming the flag. */
int awf_options_set(struct awf_options *o, const char *flag, const char *value, char *err,
                    size_t errlen);

/* After the last flag: build the rules from every source (reading the
 * files), then what only the whole set can tell (https:// URL rules without
 * --ssl-bump, --ssl-bump-ca-out without it), --dlp's table, and the
 * secrets: each value read from this process's environment or its
 * --secret-file (with this process's rights: awf reads it as the caller),
 * then the placeholders drawn (getrandom). Returns 0, or -EINVAL or -ENOMEM
 * with the message in err. */
int awf_options_finish(struct awf_options *o, char *err, size_t errlen);

/* A fresh set from o's sources, re-reading every file: 0, or a negative
 * errno with *e filled (nothing built). Checks what awf_options_finish
 * checks of the rules (https:// URL rules need --ssl-bump). */
int awf_rules_build(const struct awf_options *o, struct awf_rules **out,
                    struct awf_rules_error *e);
void awf_rules_free(struct awf_rules *r);

/* Make r o's rules (o->acl, o->url_rules and o->ports follow); the old set
 * is returned for the caller to free once nothing reads it. */
struct awf_rules *awf_options_swap_rules(struct awf_options *o, struct awf_rules *r);

/* "12 allow, 1 block, 3 URL allow, 0 URL block rules; ports 80,443 (2
 * files, sha256 0a1b...)", for --check-config and diagnostics. */
void awf_rules_summary(const struct awf_rules *r, char *buf, size_t len);

/* The digest as 64 lower-case hex digits and a NUL. */
void awf_rules_digest_hex(const struct awf_rules *r, char out[65]);

/* --ssl-bump or --secret: make the run's CA and contexts (o->intercept),
 * and write the CA certificate to --ssl-bump-ca-out if given. A no-op
 * without either. Returns 0 or a negative errno with the reason in err. */
int awf_options_start_intercept(struct awf_options *o, char *err, size_t errlen);

/* Is TLS interception on: --ssl-bump, or a --secret (whose hosts it opens)?
 * awf then makes the run's CA and the sandbox trusts it. */
bool awf_options_intercepts(const struct awf_options *o);

/* --secret-placeholders-out: "NAME=PLACEHOLDER" lines, mode 0600, replacing
 * path. Returns 0 or a negative errno with the reason in err. */
int awf_options_write_placeholders(const struct awf_options *o, const char *path, char *err,
                                   size_t errlen);

/* Ports: "80,443,8000-8099". Returns 0 or -EINVAL (err names the entry). */
int awf_parse_port_list(const char *s, struct awf_port_set *out, char *err, size_t errlen);

/* Seconds, possibly fractional, > 0 and at most a year, to milliseconds. */
int awf_parse_seconds(const char *s, unsigned *ms);

/* A port set as "80,443,8000-8099" (truncated to fit len). */
void awf_port_set_format(const struct awf_port_set *s, char *buf, size_t len);

/* The effective rules, for --log-level debug: one "PROG: debug: ..." line
 * each for the allow and block lists, the ports, the address policy's
 * CIDRs and --allow-clients. */
void awf_options_describe(const struct awf_options *o, const char *prog, FILE *f);

/* An awf_trace_fn writing "PROG: debug: LINE" to stderr; arg is PROG. */
void awf_trace_stderr(void *prog, const char *line);

/* At --log-level debug: the effective rules and the resolver's servers on
 * stderr, and a trace of each lookup set in *ro (before the resolver is
 * made). Call with resolver NULL first, then with it. */
void awf_options_debug_start(const struct awf_options *o, const char *prog,
                             struct awf_resolver_options *ro, const awf_resolver *resolver);

/* Fill a proxy config from options (the resolver and log are the caller's). */
void awf_options_to_config(const struct awf_options *o, struct awf_proxy_config *cfg);

#endif
