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

#define AWF_MAX_LISTEN 16
#define AWF_MAX_WORKERS 256 /* --workers */

struct awf_options {
  awf_acl *acl;
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
  struct awf_port_set tls_ports;
  struct awf_port_set http_ports;
  awf_acl *ssh_acl;            /* --allow-ssh; NULL: not given */
  awf_url_rules *url_rules;    /* --allow-urls, --block-urls; NULL: not given */
  bool ssl_bump;               /* --ssl-bump */
  const char *ssl_bump_ca_out; /* --ssl-bump-ca-out PATH (awf-proxy) */
  awf_intercept *intercept;    /* made by awf_options_start_intercept() */
  /* --rate-limit, --bytes-limit; NULL: not given */
  awf_rate_limits *rate_limits;
  bool dlp; /* --dlp */
  /* --dlp: the scanner's table, made by awf_options_finish(). Literal
   * values (a secret's real value) are added to it with
   * awf_dlp_add_literal() before the engine starts. */
  awf_dlp *dlp_table;
};

/* Defaults, with an empty ACL (deny all). Returns 0 or -ENOMEM. */
int awf_options_init(struct awf_options *o);
void awf_options_free(struct awf_options *o);

/* Handle one domain/proxy flag by its long name ("allow-domains", ...) and
 * value. Returns 0, or -EINVAL with a message in err naming the flag. */
int awf_options_set(struct awf_options *o, const char *flag, const char *value, char *err,
                    size_t errlen);

/* After the last flag: what only the whole set can tell (https:// URL
 * rules without --ssl-bump, --ssl-bump-ca-out without it), and --dlp's
 * table. Returns 0, or -EINVAL or -ENOMEM with the message in err. */
int awf_options_finish(struct awf_options *o, char *err, size_t errlen);

/* --ssl-bump: make the run's CA and contexts (o->intercept), and write the
 * CA certificate to --ssl-bump-ca-out if given. A no-op without
 * --ssl-bump. Returns 0 or a negative errno with the reason in err. */
int awf_options_start_intercept(struct awf_options *o, char *err, size_t errlen);

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
