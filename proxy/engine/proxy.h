/* proxy.h: the proxy engine shared by awf-proxy and awf. It owns its client
 * connections; the caller owns the loop, the ACL, the address policy, the
 * resolver and the log sink, which must outlive the engine. */
#ifndef AWF_PROXY_H
#define AWF_PROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "acl.h"
#include "addr_policy.h"
#include "denials.h"
#include "dlp.h"
#include "dns_memory.h"
#include "intercept.h"
#include "logfile.h"
#include "port_set.h"
#include "rate_limit.h"
#include "url_rules.h"
#include "resolver.h"
#include "upstream_proxy.h"
#include "secrets.h"

enum awf_log_level { AWF_LOG_DEBUG = 0, AWF_LOG_INFO, AWF_LOG_WARN, AWF_LOG_ERROR };

struct awf_host_access;
typedef struct awf_proxy_group awf_proxy_group; /* below */
struct awf_metrics;

struct awf_proxy_config {
  const awf_acl *acl;
  const awf_addr_policy *policy;
  awf_resolver *resolver;
  awf_logfile *log;
  awf_denials *denials; /* optional: collects denials for a summary */
  struct awf_port_set allow_ports;
  bool audit;
  enum awf_log_level log_level;
  unsigned max_connections;
  unsigned max_connections_per_client; /* 0 or >= max_connections: no per-client limit */
  unsigned connect_timeout_ms;
  unsigned header_timeout_ms;
  unsigned idle_timeout_ms;
  unsigned tunnel_idle_timeout_ms;
  unsigned read_timeout_ms; /* upstream silence while a request is under way */
  unsigned shutdown_grace_ms;
  /* Transparent mode: what a redirected connection's original port carries. */
  struct awf_port_set tls_ports;
  struct awf_port_set http_ports;
  /* --allow-ssh (NULL: none): TCP redirected to port 22 is judged by the names
   * awf's DNS answered for its address (dns_memory, shared with the DNS
   * servers) against this ACL, and that name is dialled on port 22. */
  const awf_acl *ssh_acl;
  awf_dns_memory *dns_memory;
  /* Optional: the host's services (host_access.h). Its names on its ports
   * bypass the ACL, --allow-ports and the address policy and are relayed to
   * its targets; on other ports they are denied (host_port_not_allowed);
   * connections redirected to its sandbox-side addresses are relayed as raw
   * TCP (`tcp`). */
  const struct awf_host_access *host_access;
  /* --allow-urls, --block-urls (NULL: none): plain HTTP requests, explicit
   * and redirected, are judged by method and normalised path too. */
  const awf_url_rules *url_rules;
  /* --ssl-bump (NULL: off): TLS to a host some https:// URL rule names is
   * opened (intercept.h), its requests judged by the URL rules and sent on
   * over a verified TLS connection of the proxy's own. */
  awf_intercept *intercept;
  /* --dlp (NULL: off): requests, CONNECT targets and TLS server names that
   * carry a token or a secret's value are denied (dlp_match), request
   * bodies are scanned as they stream (their first AWF_DLP_BODY_MAX bytes),
   * and the log masks what matched. */
  const awf_dlp *dlp;
  /* --secret (NULL: none; secrets.h): placeholders in requests dialled to a
   * secret's host become its value; its hosts are intercepted (intercept
   * must be set), plain HTTP to them is refused unless
   * secret_allow_plaintext; responses from them get the placeholder back
   * where they echo a value. secret_strict: a placeholder sent to another
   * host is refused (secret_misdirected) rather than sent as is. */
  const awf_secrets *secrets;
  bool secret_strict;
  bool secret_allow_plaintext;
  /* Clients admitted (NULL: any); others are reset at accept. */
  const awf_addr_policy *allow_clients;
  /* --rate-limit, --bytes-limit (NULL: none): buckets per host the engine
   * takes requests from and charges relayed bytes to (rate_limit.h). Over
   * the limit an HTTP request or CONNECT gets 429 with Retry-After, a
   * redirected TLS connection an access_denied alert (rate_limited). */
  awf_rate_limits *rate_limits;
  /* Several engines (NULL: this one alone): the connection cap and the
   * per-client table are the group's; max_connections and
   * max_connections_per_client above are then not used. */
  awf_proxy_group *group;
  /* --upstream-proxy (NULL: direct): admitted connections, except the
   * host's services and names on its NO_PROXY list, reach their origin
   * through this parent proxy's CONNECT (dialer.h); its failures are
   * upstream_proxy_failed. */
  const struct awf_upstream_proxy *upstream_proxy;
  /* Where this engine counts (metrics.h); NULL: in a struct of its own,
   * freed with it. A caller that sums the counters from another thread
   * while the engine may be finishing (awf-proxy's workers) gives one that
   * outlives the engine. */
  struct awf_metrics *metrics;
};

typedef struct awf_proxy awf_proxy;

/* Engines in several threads, each on its own loop (awf-proxy --workers):
 * what they share so that --max-connections and
 * --max-connections-per-client count connections across all of them. Made
 * before the engines, named in each one's config (cfg.group), freed after
 * the last engine is done. per_client 0 or >= max_connections: no
 * per-client limit. NULL when out of memory. */
awf_proxy_group *awf_proxy_group_new(unsigned max_connections, unsigned per_client);
void awf_proxy_group_free(awf_proxy_group *g);

/* The config is copied. Returns 0 or -ENOMEM. */
int awf_proxy_new(uv_loop_t *loop, const struct awf_proxy_config *cfg, awf_proxy **out);

/* Listen for explicit-proxy clients. The bound address (port filled in when
 * 0 was asked for) is written to *bound if not NULL. Returns 0 or a uv error. */
int awf_proxy_listen(awf_proxy *p, const struct sockaddr *addr, struct sockaddr_storage *bound);

/* Listen for connections that an nftables redirect sent here. The original
 * destination (SO_ORIGINAL_DST) only tells the port and therefore the
 * protocol: TLS ports are judged by the ClientHello's SNI, HTTP ports by the
 * Host header, and the admitted name is resolved and dialled by the proxy
 * itself, never the original address. Returns 0 or a uv error. */
int awf_proxy_listen_transparent(awf_proxy *p, const struct sockaddr *addr,
                                 struct sockaddr_storage *bound);

/* Listen on `fd`, a TCP socket already bound (in whatever network namespace
 * made it), as awf_proxy_listen (transparent false) or
 * awf_proxy_listen_transparent would. The engine owns fd from here on, also
 * on failure (it is closed). Returns 0 or a uv error. */
int awf_proxy_listen_fd(awf_proxy *p, int fd, bool transparent);

/* Base-URL mode (--secret-endpoint, secrets.h): plain-HTTP clients of this
 * listener send origin-form requests that go to ep's host over verified TLS
 * (interception must be on), the path prefixed with ep's base, the
 * client's Authorization, x-api-key, Cookie and Proxy-* headers dropped and
 * ep's secret written in its header; each is judged as an https request to
 * that host. ep must outlive the engine. The _fd form adopts a bound socket
 * as awf_proxy_listen_fd does. Returns 0 or a uv error. */
int awf_proxy_listen_endpoint(awf_proxy *p, const struct sockaddr *addr,
                              struct sockaddr_storage *bound,
                              const struct awf_secret_endpoint *ep);
int awf_proxy_listen_endpoint_fd(awf_proxy *p, int fd, const struct awf_secret_endpoint *ep);

/* As awf_proxy_listen_fd, on a dup of fd (the caller keeps fd): several
 * engines accepting on one socket share its one accept queue, whichever
 * engine is free takes the next connection (a socket systemd passed, with
 * awf-proxy --workers). Returns 0 or a uv error. */
int awf_proxy_listen_dup(awf_proxy *p, int fd, bool transparent);

/* Listen on every socket `from` listens on (a dup of each, the same kind:
 * proxy, transparent or --secret-endpoint),
 * in `to`, an engine on another loop: the kernel's accept queue is one,
 * and whichever engine is free takes the next connection. awf's workers
 * share the sockets made inside the sandbox this way. Returns 0 or a uv
 * error. */
int awf_proxy_share_listeners(awf_proxy *from, awf_proxy *to);

/* The engine's counters (metrics.h, cfg.metrics if given): written by its
 * loop only; sum them with awf_metrics_sum() from any thread while the
 * engine lives (while cfg.metrics lives, if given). */
struct awf_metrics *awf_proxy_metrics(awf_proxy *p);

/* Stop accepting, let open work finish for shutdown_grace_ms, then close the
 * rest. `done` runs once every connection and handle is closed; the engine is
 * freed right after it returns. */
void awf_proxy_shutdown(awf_proxy *p, void (*done)(void *arg), void *arg);

/* New rules (a reload): requests and connections judged from now on use
 * them; what was judged keeps its decision. acl and url_rules replace the
 * config's, *allow_ports is copied. Every reader consults the rules inside
 * one callback and keeps no pointer into them across loop turns, so the
 * caller may free the old ones as soon as this returns (and, with
 * --ssl-bump, awf_intercept_set_rules has been called). Called on the
 * engine's own loop; with several engines, on each one's loop, and the
 * old rules are freed only once every engine has them
 * (awf_workers_set_rules). */
void awf_proxy_set_rules(awf_proxy *p, const awf_acl *acl, const awf_url_rules *url_rules,
                         const struct awf_port_set *allow_ports);

/* Diagnostics on stderr, filtered by the configured level. */
void awf_proxy_diag(const awf_proxy *p, enum awf_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
