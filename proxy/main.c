/* main.c: awf-proxy, the proxy on its own: flags, signals, the loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "build_info.h"
#include "config.h"
#include "dns_server.h"
#include "exitcodes.h"
#include "metrics_server.h"
#include "netaddr.h"
#include "proxy.h"
#include "systemd.h"
#include "workers.h"

static const char usage[] =
    "Usage: awf-proxy [OPTIONS]\n"
    "An egress-auditing HTTP forward proxy: admits only allowlisted domains and logs\n"
    "every decision as one JSON object per line.\n"
    "\n"
    "  --listen ADDR:PORT            listen address, repeatable; [v6]:PORT; port 0 picks one\n"
    "                                (default 127.0.0.1:3128)\n"
    "      --transparent-listen ADDR:PORT\n"
    "                                accept connections an nftables redirect sent here;\n"
    "                                TLS ports are judged by SNI, HTTP ports by Host\n"
    "      --tls-ports LIST          original ports carrying TLS (default 443)\n"
    "      --http-ports LIST         original ports carrying HTTP (default 80)\n"
    "      --dns-listen ADDR:PORT    serve DNS (UDP and TCP), answering only names the\n"
    "                                rules admit; repeatable\n"
    "      --metrics-listen ADDR:PORT\n"
    "                                serve Prometheus metrics on GET /metrics and a health\n"
    "                                check on GET /healthz (503 while shutting down);\n"
    "                                repeatable; no access control: keep it on loopback\n"
    "                                or a private network\n"
    "      --allow-clients LIST      client CIDRs served by the proxy listeners; others are\n"
    "                                reset (default: any client; give it when listening\n"
    "                                beyond loopback, or this is an open proxy)\n"
    "  -d, --allow-domains LIST      comma-separated allow rules: github.com (and subdomains),\n"
    "                                *.github.com, api-*.x.com, https://x, http://x, 1.2.3.4\n"
    "      --allow-domains-file FILE allow rules, one per line or comma-separated, # comments\n"
    "      --block-domains LIST      block rules (same syntax; a block always wins)\n"
    "      --block-domains-file FILE\n"
    "      --allow-urls LIST         URL rules: [METHODS ]SCHEME://HOST/PATH, '*' within a\n"
    "                                host label and any run in the path (GET,HEAD\n"
    "                                https://x/a/*); a host with URL rules admits only\n"
    "                                matching requests; https:// rules need --ssl-bump\n"
    "      --allow-urls-file FILE    URL rules, one per line, # comments\n"
    "      --block-urls LIST         URL block rules (a block always wins)\n"
    "      --ruleset-file FILE       a YAML ruleset (version: 1, rules: [{domain, subdomains}],\n"
    "                                block:, urls:, block_urls:, ports:); repeatable; combines\n"
    "                                with the flags\n"
    "      --ssl-bump                intercept TLS to the hosts https:// URL rules name (only\n"
    "                                those: every other host is tunnelled untouched), with\n"
    "                                a per-run CA; origins are verified against this\n"
    "                                process's trust store (SSL_CERT_FILE, SSL_CERT_DIR);\n"
    "                                HTTP/1.1 only inside (ALPN)\n"
    "      --ssl-bump-ca-out PATH    write the per-run CA certificate (never its key) to\n"
    "                                PATH for clients to trust\n"
    "      --rate-limit [HOST=]N/s|N/m|N/h\n"
    "                                requests per host (a tunnel awf does not open is one);\n"
    "                                over it: 429 with Retry-After (rate_limited); HOST as\n"
    "                                in --allow-domains, one bucket per rule; without HOST\n"
    "                                a bucket per host for hosts no HOST rule names;\n"
    "                                repeatable\n"
    "      --bytes-limit [HOST=]N[K|M|G]/s|m|h\n"
    "                                bytes relayed per host, both ways; once spent, new\n"
    "                                requests and tunnels get 429 until it refills\n"
    "      --dlp                     deny what carries a credential: GitHub, OpenAI,\n"
    "                                Anthropic, AWS, Google and Slack tokens, private keys,\n"
    "                                JWTs in a request's URL, headers or body (its first\n"
    "                                MiB), a CONNECT host, a TLS name or a DNS question\n"
    "      --secret NAME=HOST[,HOST...]\n"
    "                                the credential in NAME (this process's environment)\n"
    "                                is written into requests to these hosts only, in\n"
    "                                place of a placeholder the clients hold;\n"
    "                                implies interception of those hosts (repeatable)\n"
    "      --secret-file NAME=PATH   NAME's value from PATH instead (hosts by --secret)\n"
    "      --secret-in-body NAME     also replace NAME's placeholder in request bodies\n"
    "      --secret-strict           deny a request carrying a placeholder to another host\n"
    "                                (secret_misdirected) instead of sending it as is\n"
    "      --secret-allow-plaintext  let secrets go to their hosts over plain HTTP\n"
    "      --secret-endpoint NAME=https://HOST[/BASE]\n"
    "                                base-URL mode: a plain-HTTP listener whose requests\n"
    "                                go to HOST with NAME's value in its header; binds\n"
    "                                NAME to HOST\n"
    "      --secret-endpoint-listen NAME=ADDR:PORT\n"
    "                                where that listener listens (required with it)\n"
    "      --secret-header NAME=HEADER\n"
    "                                the header base-URL mode writes NAME's value in\n"
    "                                (default Authorization: Bearer VALUE)\n"
    "      --secret-placeholders-out FILE\n"
    "                                write the placeholders, NAME=PLACEHOLDER lines, to\n"
    "                                FILE (mode 0600) for the clients\n"
    "      --allow-ports LIST        destination ports, e.g. 80,443,8000-8099 (default 80,443)\n"
    "      --allow-destination-cidrs LIST\n"
    "                                private/local CIDRs that may still be dialled\n"
    "      --dns-servers LIST        upstream DNS servers, ip[:port] or [v6]:port\n"
    "                                (default: /etc/resolv.conf and /etc/hosts)\n"
    "      --upstream-proxy URL|auto|none\n"
    "                                reach allowed origins through a parent HTTP proxy,\n"
    "                                http://[user:password@]host[:port] (CONNECT for all\n"
    "                                traffic, Basic credentials); auto: from https_proxy,\n"
    "                                HTTPS_PROXY, http_proxy, HTTP_PROXY and NO_PROXY\n"
    "                                (default none)\n"
    "      --log-file PATH|-         JSONL access log (appended; - is stdout; SIGHUP reopens)\n"
    "      --audit                   admit what the domain, scheme and port rules deny, and\n"
    "                                log it as would_deny; private addresses stay denied\n"
    "      --log-level LEVEL         debug, info, warn, error (default info); debug shows\n"
    "                                the rules, each lookup and each address dialled\n"
    "      --max-connections N       client connections at once (default 4096)\n"
    "      --max-connections-per-client N\n"
    "                                connections one client address may hold at once; more\n"
    "                                are reset (default max(64, N/8), at most N)\n"
    "      --connect-timeout SEC     per-address upstream connect timeout (default 10)\n"
    "      --header-timeout SEC      deadline for a request head, else 408 (default 30)\n"
    "      --idle-timeout SEC        idle keep-alive client connection (default 60)\n"
    "      --read-timeout SEC        upstream silence during a request, then 504 (default 900)\n"
    "      --tunnel-idle-timeout SEC idle CONNECT tunnel (default 3600)\n"
    "      --shutdown-grace SEC      on SIGTERM, time for open work (default 5)\n"
    "      --workers N               event loops, one thread each, sharing the listening\n"
    "                                addresses (SO_REUSEPORT), the rules, the log and the\n"
    "                                connection limits (default: the CPUs this process\n"
    "                                may use); DNS is served by the first\n"
    "      --check-config            check every flag, rule and file (nothing listens, nothing\n"
    "                                is resolved), print a summary of the rules, exit 0 or 2\n"
    "      --version                 print the version, commit and build flavour and exit\n"
    "  -h, --help                    print this help and exit\n"
    "\n"
    "SIGHUP reopens the log and re-reads every rule file (and ruleset); if they all parse,\n"
    "new requests are judged by them, else the rules in force stay (a config log event).\n"
    "\n"
    "Under systemd, listening sockets may be passed (socket activation: LISTEN_FDS,\n"
    "named proxy, transparent, dns or metrics by FileDescriptorName=) and readiness is\n"
    "told to NOTIFY_SOCKET (Type=notify): see contrib/systemd and docs/operating.md.\n"
    "\n"
    "Exit status: 0 after SIGTERM/SIGINT, 1 on a runtime failure, 2 on a bad flag or rule.\n"
    "Docs: docs/awf-proxy.md, docs/access-log.md and docs/operating.md\n";

/* Reloads (SIGHUP) start at most this often; the signals between coalesce
 * into one reload, which starts after the last of them. */
#define RELOAD_MIN_INTERVAL_MS 200

/* The first engine runs on the main thread's loop, with the signals and the
 * DNS servers; --workers N adds N-1 on threads of their own (workers.h). */
struct app {
  uv_loop_t loop;
  struct awf_options *o;
  uv_timer_t reload_timer;
  bool reload_pending;
  uint64_t next_reload_ms; /* loop time before which no reload starts */
  awf_proxy *proxy;
  awf_resolver *resolver;
  awf_logfile *log;
  awf_logfile *writer;    /* several workers: this engine's writer of log */
  awf_proxy_group *group; /* several workers: the connection caps they share */
  awf_workers *workers;   /* the other N-1 (NULL: one worker) */
  unsigned n_workers;
  awf_dns_server *dns[AWF_MAX_LISTEN + AWF_SD_MAX_FDS];
  size_t n_dns;
  awf_metrics_server *msrv[AWF_MAX_LISTEN + AWF_SD_MAX_FDS];
  size_t n_msrv;
  /* The process's own counters: the resolver's, the DNS servers', rule
   * reloads; summed with the engine's on a scrape. */
  struct awf_metrics metrics;
  /* The first engine's counters, kept here: a scrape while the workers
   * still drain, after this engine finished, still counts them. */
  struct awf_metrics engine_metrics;
  /* Several workers: sent once every worker's engine has finished. The
   * metrics servers (and /healthz's 503) stay until then, and until the
   * first engine has finished too. */
  uv_async_t workers_done;
  bool workers_done_ready, workers_live;
  uv_signal_t sig_term, sig_int, sig_hup;
  bool stopping;
};

/* Sockets systemd passed (socket activation), taken in main(). */
static struct awf_sd_fd sd_fds[AWF_SD_MAX_FDS];
static size_t n_sd_fds;

static void close_metrics_servers(struct app *a) {
  for (size_t i = 0; i < a->n_msrv; i++)
    awf_metrics_server_close(a->msrv[i]);
  a->n_msrv = 0;
}

/* One scrape: every engine's counters (all of them live until this loop
 * ends, the engines finished or not) and the process's, and the log's. */
static void collect_metrics(void *arg, struct awf_metrics *sum) {
  struct app *a = arg;
  const struct awf_metrics *src[AWF_MAX_WORKERS + 1] = {&a->metrics, &a->engine_metrics};
  size_t n = 2;
  for (unsigned i = 0; i < awf_workers_count(a->workers); i++)
    src[n++] = awf_workers_metrics(a->workers, i);
  awf_metrics_sum(sum, src, n);
  sum->log_lines = awf_logfile_taken(a->log);
  sum->log_lines_dropped = awf_logfile_lost(a->log);
  sum->log_lines_pending = awf_logfile_pending(a->log);
}

/* A state for systemd (Type=notify); nothing without NOTIFY_SOCKET. */
static void notify(const char *state) {
  int rc = awf_sd_notify(state);
  if (rc < 0)
    fprintf(stderr, "awf-proxy: warning: NOTIFY_SOCKET: %s\n", strerror(-rc));
}

/* Once every engine has finished: nothing left to scrape or to drain. */
static void finish_serving(struct app *a) {
  if (a->proxy || a->workers_live)
    return;
  close_metrics_servers(a);
  if (a->workers_done_ready)
    uv_close((uv_handle_t *)&a->workers_done, NULL);
  a->workers_done_ready = false;
}

static void on_workers_done(uv_async_t *h) {
  struct app *a = h->data;
  a->workers_live = false;
  finish_serving(a);
}

static void on_proxy_done(void *arg) {
  struct app *a = arg;
  a->proxy = NULL;
  finish_serving(a);
  awf_resolver_close(a->resolver);
  uv_close((uv_handle_t *)&a->sig_term, NULL);
  uv_close((uv_handle_t *)&a->sig_int, NULL);
  uv_close((uv_handle_t *)&a->sig_hup, NULL);
  uv_close((uv_handle_t *)&a->reload_timer, NULL);
}

static void on_dns_log_failed(void *arg, int err) {
  struct app *a = arg;
  if (a->proxy)
    awf_proxy_diag(a->proxy, AWF_LOG_WARN, "access log write failed: %s", strerror(-err));
}

/* Before the resolver closes: the servers stop using it when this returns. */
static void close_dns_servers(struct app *a) {
  for (size_t i = 0; i < a->n_dns; i++)
    awf_dns_server_close(a->dns[i], NULL, NULL);
  a->n_dns = 0;
}

static void on_stop_signal(uv_signal_t *s, int signum) {
  struct app *a = s->data;
  if (a->stopping)
    return;
  a->stopping = true;
  notify("STOPPING=1");
  fprintf(stderr, "awf-proxy: %s: finishing open connections, then exiting\n",
          strsignal(signum));
  for (size_t i = 0; i < a->n_msrv; i++)
    awf_metrics_server_set_stopping(a->msrv[i]);
  close_dns_servers(a);
  awf_workers_stop(a->workers);
  awf_proxy_shutdown(a->proxy, on_proxy_done, a);
}

static void log_config(struct app *a, const struct awf_log_config *c) {
  struct awf_log_record r;
  struct timespec ts;
  awf_log_record_init(&r);
  clock_gettime(CLOCK_REALTIME, &ts);
  r.ts_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
  r.event = "config";
  r.config = c;
  int rc = awf_logfile_write(a->log, &r);
  if (rc < 0 && a->log)
    fprintf(stderr, "awf-proxy: warning: access log write failed: %s\n", strerror(-rc));
}

/* Re-read every rule source into a fresh set; swap it in if it all parses. */
static void reload_rules(struct app *a) {
  struct awf_log_config c = {.allow_rules = -1,
                             .block_rules = -1,
                             .url_allow_rules = -1,
                             .url_block_rules = -1,
                             .sources = -1,
                             .files = -1,
                             .line = -1};
  struct awf_rules *r;
  struct awf_rules_error e;
  if (awf_rules_build(a->o, &r, &e) < 0) {
    fprintf(stderr, "awf-proxy: reload: the rules in force stay: %s\n", e.msg);
    c.error = e.msg;
    c.file = e.file;
    c.line = e.line ? (int64_t)e.line : -1;
    log_config(a, &c);
    awf_metrics_reload(&a->metrics, false);
    return;
  }
  char warning[512], ports[256], digest[80], summary[600];
  const char *outside = awf_intercept_outside(a->o->intercept, r->url_rules);
  if (!awf_rules_same_secrets(a->o->rules, r)) {
    snprintf(warning, sizeof(warning),
             "a ruleset's secrets: changed: secrets are set up at start only (their values, "
             "placeholders and interception); restart awf-proxy to apply the change");
    fprintf(stderr, "awf-proxy: warning: reload: %s\n", warning);
    c.warning = warning;
  } else if (outside) {
    snprintf(warning, sizeof(warning),
             "%s: outside the name constraints of the --ssl-bump CA (fixed at start): "
             "clients that honour them refuse its certificates; restart awf-proxy to include "
             "it",
             outside);
    fprintf(stderr, "awf-proxy: warning: reload: %s\n", warning);
    c.warning = warning;
  }
  /* Every reader judges inside one callback and keeps no pointer into the
   * rules across loop turns (engine/proxy.h, dns_server.h, intercept.h): once
   * all of them point at the new set, nothing can reach the old one. The
   * workers' engines switch on their own loops; awf_workers_set_rules
   * returns once each has (the interception state, shared, first). */
  awf_intercept_set_rules(a->o->intercept, r->url_rules);
  awf_proxy_set_rules(a->proxy, r->acl, r->url_rules, &r->ports);
  for (size_t i = 0; i < a->n_dns; i++)
    awf_dns_server_set_acl(a->dns[i], r->acl);
  awf_workers_set_rules(a->workers, r->acl, r->url_rules, &r->ports);
  awf_rules_free(awf_options_swap_rules(a->o, r));
  awf_port_set_format(&r->ports, ports, sizeof(ports));
  snprintf(digest, sizeof(digest), "sha256:");
  awf_rules_digest_hex(r, digest + 7);
  c.ok = true;
  c.allow_rules = (int64_t)awf_acl_count(r->acl, AWF_ACL_ALLOW);
  c.block_rules = (int64_t)awf_acl_count(r->acl, AWF_ACL_BLOCK);
  c.url_allow_rules = (int64_t)awf_url_rules_count(r->url_rules, AWF_URL_ALLOW);
  c.url_block_rules = (int64_t)awf_url_rules_count(r->url_rules, AWF_URL_BLOCK);
  c.ports = ports;
  c.sources = (int64_t)r->n_sources;
  c.files = (int64_t)r->n_files;
  c.digest = digest;
  log_config(a, &c);
  awf_rules_summary(r, summary, sizeof(summary));
  fprintf(stderr, "awf-proxy: reload: rules in force: %s\n", summary);
  awf_metrics_reload(&a->metrics, true);
}

/* systemd (Type=notify) is told a reload starts, with its monotonic time. */
static void notify_reloading(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char state[96];
  snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
           (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
  notify(state);
}

static void on_reload(uv_timer_t *t) {
  struct app *a = t->data;
  a->reload_pending = false;
  a->next_reload_ms = uv_now(&a->loop) + RELOAD_MIN_INTERVAL_MS;
  bool live = !a->stopping && a->proxy;
  if (live)
    notify_reloading();
  int rc = awf_logfile_reopen(a->log);
  if (rc < 0)
    fprintf(stderr, "awf-proxy: cannot reopen the access log: %s\n", strerror(-rc));
  if (live) {
    reload_rules(a);
    notify("READY=1");
  }
}

/* SIGHUP: a reload, coalesced: one is pending at most, and it starts no
 * sooner than RELOAD_MIN_INTERVAL_MS after the last one, so a storm of
 * signals costs a few reloads a second and the last signal is always
 * followed by a reload that reads the files after it. */
static void on_hup(uv_signal_t *s, int signum) {
  (void)signum;
  struct app *a = s->data;
  if (a->reload_pending)
    return;
  a->reload_pending = true;
  uint64_t now = uv_now(&a->loop);
  uv_timer_start(&a->reload_timer, on_reload,
                 a->next_reload_ms > now ? a->next_reload_ms - now : 0, 0);
}

static const struct option long_opts[] = {
    {"listen", required_argument, 0, 'L'},
    {"transparent-listen", required_argument, 0, 'O'},
    {"tls-ports", required_argument, 0, 'O'},
    {"http-ports", required_argument, 0, 'O'},
    {"dns-listen", required_argument, 0, 'O'},
    {"metrics-listen", required_argument, 0, 'O'},
    {"allow-clients", required_argument, 0, 'O'},
    {"allow-domains", required_argument, 0, 'd'},
    {"allow-domains-file", required_argument, 0, 'O'},
    {"block-domains", required_argument, 0, 'O'},
    {"block-domains-file", required_argument, 0, 'O'},
    {"allow-urls", required_argument, 0, 'O'},
    {"allow-urls-file", required_argument, 0, 'O'},
    {"block-urls", required_argument, 0, 'O'},
    {"ruleset-file", required_argument, 0, 'O'},
    {"check-config", no_argument, 0, 'C'},
    {"ssl-bump", no_argument, 0, 'B'},
    {"ssl-bump-ca-out", required_argument, 0, 'O'},
    {"rate-limit", required_argument, 0, 'O'},
    {"bytes-limit", required_argument, 0, 'O'},
    {"secret", required_argument, 0, 'O'},
    {"secret-file", required_argument, 0, 'O'},
    {"secret-in-body", required_argument, 0, 'O'},
    {"secret-strict", no_argument, 0, 'O'},
    {"secret-allow-plaintext", no_argument, 0, 'O'},
    {"secret-endpoint", required_argument, 0, 'O'},
    {"secret-endpoint-listen", required_argument, 0, 'O'},
    {"secret-header", required_argument, 0, 'O'},
    {"secret-placeholders-out", required_argument, 0, 'O'},
    {"allow-ports", required_argument, 0, 'O'},
    {"allow-destination-cidrs", required_argument, 0, 'O'},
    {"dns-servers", required_argument, 0, 'O'},
    {"upstream-proxy", required_argument, 0, 'O'},
    {"log-file", required_argument, 0, 'O'},
    {"log-level", required_argument, 0, 'O'},
    {"max-connections", required_argument, 0, 'O'},
    {"max-connections-per-client", required_argument, 0, 'O'},
    {"connect-timeout", required_argument, 0, 'O'},
    {"header-timeout", required_argument, 0, 'O'},
    {"idle-timeout", required_argument, 0, 'O'},
    {"tunnel-idle-timeout", required_argument, 0, 'O'},
    {"read-timeout", required_argument, 0, 'O'},
    {"shutdown-grace", required_argument, 0, 'O'},
    {"workers", required_argument, 0, 'O'},
    {"audit", no_argument, 0, 'A'},
    {"dlp", no_argument, 0, 'P'},
    {"version", no_argument, 0, 'V'},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

/* Returns -1 to continue, or an exit status. */
static int parse_args(int argc, char **argv, struct awf_options *o, bool *check) {
  char err[768];
  int c, idx;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":d:h", long_opts, &idx)) != -1) {
    const char *flag = NULL;
    switch (c) {
    case 'd': flag = "allow-domains"; break;
    case 'L': flag = "listen"; break;
    case 'O': flag = long_opts[idx].name; break;
    case 'A': o->audit = true; continue;
    case 'B': o->ssl_bump = true; continue;
    case 'P': o->dlp = true; continue;
    case 'C': *check = true; continue;
    case 'V': awf_build_print(stdout, "awf-proxy"); return 0;
    case 'h': fputs(usage, stdout); return 0;
    case ':':
      fprintf(stderr, "awf-proxy: %s needs a value\n", argv[optind - 1]);
      return AWF_EXIT_USAGE;
    default:
      fprintf(stderr, "awf-proxy: unknown option '%s' (see --help)\n", argv[optind - 1]);
      return AWF_EXIT_USAGE;
    }
    if (awf_options_set(o, flag, optarg, err, sizeof(err)) < 0) {
      fprintf(stderr, "awf-proxy: %s\n", err);
      return AWF_EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "awf-proxy: unexpected argument '%s' (see --help)\n", argv[optind]);
    return AWF_EXIT_USAGE;
  }
  if (awf_options_finish(o, err, sizeof(err)) < 0) {
    fprintf(stderr, "awf-proxy: %s\n", err);
    return AWF_EXIT_USAGE;
  }
  for (size_t i = 0; i < o->n_endpoints; i++)
    if (!o->ep_listen_set[i]) {
      fprintf(stderr,
              "awf-proxy: --secret-endpoint %s: give where it listens: "
              "--secret-endpoint-listen %s=ADDR:PORT\n",
              o->endpoints[i].name, o->endpoints[i].name);
      return AWF_EXIT_USAGE;
    }
  if (o->n_listen == 0 && o->n_tlisten == 0 && o->n_dns_listen == 0 && n_sd_fds == 0) {
    awf_sockaddr_parse("127.0.0.1:3128", &o->listen[0]);
    o->n_listen = 1;
  }
  return -1;
}

static bool is_loopback(const struct sockaddr_storage *ss) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (ss->ss_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
  const uint8_t *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
  return IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)a) ||
         (memcmp(a, mapped, sizeof(mapped)) == 0 && a[12] == 127);
}

/* Anyone who can reach a listener beyond loopback may use the proxy (and
 * its allowlist) unless --allow-clients says who may. */
static void warn_open_proxy(const struct awf_options *o) {
  char text[AWF_ADDRSTRLEN];
  if (o->clients)
    return;
  for (size_t i = 0; i < o->n_listen + o->n_tlisten; i++) {
    const struct sockaddr_storage *ss = i < o->n_listen ? &o->listen[i]
                                                        : &o->tlisten[i - o->n_listen];
    if (is_loopback(ss))
      continue;
    fprintf(stderr,
            "awf-proxy: warning: %s %s is not a loopback address and no --allow-clients "
            "was given: anyone who can reach it can use this proxy (an open proxy); "
            "name the clients with --allow-clients CIDR[,CIDR]\n",
            i < o->n_listen ? "--listen" : "--transparent-listen",
            awf_sockaddr_format((const struct sockaddr *)ss, text, sizeof(text)));
    return;
  }
}

/* Is addr free? A socket without SO_REUSEPORT cannot bind where any socket
 * is bound, a SO_REUSEPORT group included: a second awf-proxy started on
 * the same port fails as with one worker, instead of joining the first's
 * group and taking half its connections under other rules. Port 0 is
 * always free. Returns 0 or -errno. */
static int check_free(const struct sockaddr *addr, socklen_t size) {
  int one = 1, rc = 0;
  if (awf_sockaddr_port(addr) == 0)
    return 0;
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      (addr->sa_family == AF_INET6 &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
      bind(fd, addr, size) < 0)
    rc = -errno;
  if (fd >= 0)
    close(fd);
  return rc;
}

/* n listening sockets on one address, bound with SO_REUSEPORT (the kernel
 * spreads new connections over them), all on the port the first one got.
 * Returns 0 or -errno (the sockets made so far are closed). */
static int bind_reuseport(const struct sockaddr *addr, unsigned n, int *fds,
                          struct sockaddr_storage *bound) {
  int one = 1;
  socklen_t size = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                               : sizeof(struct sockaddr_in);
  int rc = check_free(addr, size);
  if (rc < 0)
    return rc;
  memcpy(bound, addr, size);
  for (unsigned i = 0; i < n; i++) {
    socklen_t len = size;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        (addr->sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        bind(fd, (struct sockaddr *)bound, size) < 0 ||
        (i == 0 && getsockname(fd, (struct sockaddr *)bound, &len) < 0)) {
      rc = -errno;
      if (fd >= 0)
        close(fd);
      while (i > 0)
        close(fds[--i]);
      return rc;
    }
    fds[i] = fd;
  }
  return 0;
}

/* Every worker listens on addr: one worker binds it as always; several get
 * a socket each of one SO_REUSEPORT group (docs/architecture.md says why).
 * Returns 0 or a uv error. */
static int listen_all(struct app *a, const struct sockaddr *addr, bool transparent,
                      struct sockaddr_storage *bound) {
  if (!a->workers)
    return transparent ? awf_proxy_listen_transparent(a->proxy, addr, bound)
                       : awf_proxy_listen(a->proxy, addr, bound);
  int fds[AWF_MAX_WORKERS];
  int rc = bind_reuseport(addr, a->n_workers, fds, bound);
  if (rc < 0)
    return rc;
  for (unsigned i = 0; i < a->n_workers; i++) {
    awf_proxy *p = i == 0 ? a->proxy : awf_workers_engine(a->workers, i - 1);
    if (rc == 0)
      rc = awf_proxy_listen_fd(p, fds[i], transparent); /* fds[i] is the engine's */
    else
      close(fds[i]);
  }
  return rc;
}

/* --workers N > 1: the caps they share, this engine's log writer, and the
 * other N-1 engines. cfg is this engine's, made to match. */
static int start_workers(struct app *a, const struct awf_resolver_options *ro,
                         struct awf_proxy_config *cfg) {
  char err[512];
  if (a->n_workers < 2)
    return 0;
  a->group = awf_proxy_group_new(cfg->max_connections, cfg->max_connections_per_client);
  if (!a->group || awf_logfile_writer_new(a->log, &a->writer) < 0) {
    fprintf(stderr, "awf-proxy: out of memory\n");
    return AWF_EXIT_ERROR;
  }
  cfg->group = a->group;
  int rc = awf_workers_new(a->n_workers - 1, cfg, ro, &a->workers, err, sizeof(err));
  if (rc < 0) {
    fprintf(stderr, "awf-proxy: %s\n", err);
    return AWF_EXIT_ERROR;
  }
  cfg->log = a->writer;
  return 0;
}

/* A socket systemd passed: one socket, not a SO_REUSEPORT group, so every
 * worker accepts on a dup of it (one accept queue: whichever loop is free
 * takes the next connection). The first engine owns fd. Returns 0 or a uv
 * error (fd is then closed). */
static int listen_fd_all(struct app *a, int fd, bool transparent) {
  int rc = 0;
  for (unsigned i = 0; i < awf_workers_count(a->workers) && rc == 0; i++)
    rc = awf_proxy_listen_dup(awf_workers_engine(a->workers, i), fd, transparent);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  return awf_proxy_listen_fd(a->proxy, fd, transparent);
}

/* --check-config: what run() would refuse, without listening, opening the
 * log or resolving: the resolver's servers are parsed (c-ares is set up and
 * closed, no query sent) and, with --ssl-bump, the CA and trust store made
 * (not written). */
static int check_config(struct awf_options *o) {
  char err[512], summary[600];
  uv_loop_t loop;
  awf_resolver *resolver;
  struct awf_resolver_options ro;
  awf_resolver_options_default(&ro);
  ro.servers = o->dns_servers;
  uv_loop_init(&loop);
  int rc = awf_resolver_new(&loop, &ro, &resolver, err, sizeof(err));
  if (rc == 0)
    awf_resolver_close(resolver);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (rc < 0) {
    fprintf(stderr, "awf-proxy: %s\n", rc == -EINVAL ? err : strerror(-rc));
    return AWF_EXIT_USAGE;
  }
  if (awf_options_intercepts(o)) {
    awf_intercept *ic;
    if ((rc = awf_intercept_new(o->url_rules, o->secrets, &ic, err, sizeof(err))) < 0) {
      fprintf(stderr, "awf-proxy: %s: %s\n", o->ssl_bump ? "--ssl-bump" : "--secret", err);
      return AWF_EXIT_USAGE;
    }
    awf_intercept_free(ic);
  }
  awf_rules_summary(o->rules, summary, sizeof(summary));
  printf("awf-proxy: configuration OK: %s\n", summary);
  return 0;
}

static int sock_type(int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ? -1 : type;
}

static void print_bound(const char *what, int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  char text[AWF_ADDRSTRLEN] = "?";
  memset(&ss, 0, sizeof(ss));
  if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
    awf_sockaddr_format((struct sockaddr *)&ss, text, sizeof(text));
  fprintf(stderr, "awf-proxy: %s on %s\n", what, text);
}

/* The sockets systemd passed, by name: proxy (or no name: "unknown"),
 * transparent, metrics (TCP), dns (a UDP and a TCP socket, paired in
 * order). Returns 0 or an exit status; every fd is owned by a server or
 * closed when this returns. */
static int adopt_sd_fds(struct app *a, const struct awf_dns_server_config *dcfg,
                        const struct awf_metrics_server_config *mcfg) {
  int status = 0, rc = 0;
  size_t udp_next = 0, tcp_next = 0;
  for (size_t i = 0; i < n_sd_fds; i++) {
    const char *name = sd_fds[i].name;
    int fd = sd_fds[i].fd, type = sock_type(fd);
    if (status) {
      if (strcmp(name, "dns") != 0)
        close(fd);
      continue;
    }
    bool proxy = !strcmp(name, "proxy") || !strcmp(name, "unknown");
    bool tproxy = !strcmp(name, "transparent"), metrics = !strcmp(name, "metrics");
    if ((proxy || tproxy || metrics) && type != SOCK_STREAM) {
      fprintf(stderr, "awf-proxy: socket activation: '%s' (fd %d) is not a TCP socket\n", name,
              fd);
      close(fd);
      status = AWF_EXIT_USAGE;
    } else if (proxy || tproxy) {
      print_bound(tproxy ? "transparent listening" : "listening", fd);
      rc = listen_fd_all(a, fd, tproxy);
    } else if (metrics) {
      print_bound("metrics listening", fd);
      rc = awf_metrics_server_new_fd(&a->loop, mcfg, fd, &a->msrv[a->n_msrv]);
      if (rc == 0)
        a->n_msrv++;
    } else if (!strcmp(name, "dns")) {
      continue; /* paired below */
    } else {
      fprintf(stderr,
              "awf-proxy: socket activation: fd %d is named '%s': name each socket proxy, "
              "transparent, dns or metrics (FileDescriptorName=)\n",
              fd, name);
      close(fd);
      status = AWF_EXIT_USAGE;
    }
    if (rc < 0 && !status) {
      fprintf(stderr, "awf-proxy: socket activation: '%s' (fd %d): %s\n", name, fd,
              uv_strerror(rc));
      status = AWF_EXIT_ERROR;
    }
  }
  /* DNS: the n-th UDP socket named dns with the n-th TCP one. */
  for (;;) {
    while (udp_next < n_sd_fds && (strcmp(sd_fds[udp_next].name, "dns") != 0 ||
                                   sock_type(sd_fds[udp_next].fd) != SOCK_DGRAM))
      udp_next++;
    while (tcp_next < n_sd_fds && (strcmp(sd_fds[tcp_next].name, "dns") != 0 ||
                                   sock_type(sd_fds[tcp_next].fd) != SOCK_STREAM))
      tcp_next++;
    if (udp_next == n_sd_fds && tcp_next == n_sd_fds)
      break;
    if (udp_next == n_sd_fds || tcp_next == n_sd_fds || status) {
      if (!status)
        fprintf(stderr, "awf-proxy: socket activation: 'dns' needs a UDP and a TCP socket on "
                        "one port (ListenDatagram= and ListenStream=)\n");
      status = status ? status : AWF_EXIT_USAGE;
      if (udp_next < n_sd_fds)
        close(sd_fds[udp_next++].fd);
      if (tcp_next < n_sd_fds)
        close(sd_fds[tcp_next++].fd);
      continue;
    }
    int ufd = sd_fds[udp_next++].fd, tfd = sd_fds[tcp_next++].fd;
    print_bound("dns listening", ufd);
    rc = awf_dns_server_new_fds(&a->loop, dcfg, ufd, tfd, &a->dns[a->n_dns]);
    if (rc < 0) {
      fprintf(stderr, "awf-proxy: socket activation: 'dns': %s\n", uv_strerror(rc));
      status = AWF_EXIT_ERROR;
    } else {
      a->n_dns++;
    }
  }
  return status;
}

static int run(struct awf_options *o) {
  struct app a;
  memset(&a, 0, sizeof(a));
  a.o = o;
  char err[512];
  int rc;

  if (awf_acl_count(o->acl, AWF_ACL_ALLOW) == 0 && !o->audit)
    fprintf(stderr,
            "awf-proxy: warning: no --allow-domains given: every request will be denied\n");
  warn_open_proxy(o);
  uv_loop_init(&a.loop);
  struct awf_resolver_options ro;
  awf_resolver_options_default(&ro);
  ro.servers = o->dns_servers;
  awf_options_debug_start(o, "awf-proxy", &ro, NULL);
  rc = awf_resolver_new(&a.loop, &ro, &a.resolver, err, sizeof(err));
  if (rc < 0) {
    fprintf(stderr, "awf-proxy: %s\n", rc == -EINVAL ? err : strerror(-rc));
    uv_loop_close(&a.loop);
    return AWF_EXIT_USAGE;
  }
  awf_options_debug_start(o, "awf-proxy", &ro, a.resolver);
  awf_resolver_set_metrics(a.resolver, &a.metrics);
  rc = awf_logfile_open(o->log_file, &a.log);
  if (rc < 0) {
    fprintf(stderr, "awf-proxy: --log-file: cannot open '%s': %s\n", o->log_file,
            strerror(-rc));
    awf_resolver_close(a.resolver);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    uv_loop_close(&a.loop);
    return AWF_EXIT_USAGE;
  }
  if (awf_logfile_write_run(a.log, AWF_VERSION, NULL) < 0)
    fprintf(stderr, "awf-proxy: warning: access log write failed\n");
  if ((rc = awf_options_start_intercept(o, err, sizeof(err))) < 0 ||
      (o->secret_placeholders_out &&
       (rc = awf_options_write_placeholders(o, o->secret_placeholders_out, err, sizeof(err))) <
           0)) {
    fprintf(stderr, "awf-proxy: %s\n", err);
    awf_logfile_close(a.log);
    awf_resolver_close(a.resolver);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    uv_loop_close(&a.loop);
    return AWF_EXIT_ERROR;
  }
  struct awf_proxy_config cfg;
  awf_options_to_config(o, &cfg);
  cfg.resolver = a.resolver;
  cfg.log = a.log;
  a.n_workers = o->workers ? o->workers : awf_workers_cpus();
  if (a.n_workers > AWF_MAX_WORKERS)
    a.n_workers = AWF_MAX_WORKERS;
  int status = start_workers(&a, &ro, &cfg);
  cfg.metrics = &a.engine_metrics;
  if (status == 0 && awf_proxy_new(&a.loop, &cfg, &a.proxy) < 0) {
    fprintf(stderr, "awf-proxy: out of memory\n");
    status = AWF_EXIT_ERROR;
  }
  if (status != 0) {
    awf_workers_free(a.workers);
    awf_logfile_close(a.writer);
    awf_proxy_group_free(a.group);
    awf_logfile_close(a.log);
    awf_resolver_close(a.resolver);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    uv_loop_close(&a.loop);
    return status;
  }
  if (a.workers) {
    uv_async_init(&a.loop, &a.workers_done, on_workers_done);
    a.workers_done.data = &a;
    a.workers_done_ready = a.workers_live = true;
    awf_workers_notify_done(a.workers, &a.workers_done);
  }
  signal(SIGPIPE, SIG_IGN);
  uv_signal_init(&a.loop, &a.sig_term);
  uv_signal_init(&a.loop, &a.sig_int);
  uv_signal_init(&a.loop, &a.sig_hup);
  uv_timer_init(&a.loop, &a.reload_timer);
  a.sig_term.data = a.sig_int.data = a.sig_hup.data = a.reload_timer.data = &a;
  /* Before the first "listening" line: a supervisor may send SIGTERM as
   * soon as it reads it, and the default action would skip the drain. */
  uv_signal_start(&a.sig_term, on_stop_signal, SIGTERM);
  uv_signal_start(&a.sig_int, on_stop_signal, SIGINT);
  uv_signal_start(&a.sig_hup, on_hup, SIGHUP);
  for (size_t i = 0; i < o->n_listen && status == 0; i++) {
    struct sockaddr_storage bound;
    char text[AWF_ADDRSTRLEN];
    rc = listen_all(&a, (struct sockaddr *)&o->listen[i], false, &bound);
    if (rc < 0) {
      fprintf(stderr, "awf-proxy: --listen %s: %s\n",
              awf_sockaddr_format((struct sockaddr *)&o->listen[i], text, sizeof(text)),
              uv_strerror(rc));
      status = AWF_EXIT_ERROR;
      break;
    }
    fprintf(stderr, "awf-proxy: listening on %s\n",
            awf_sockaddr_format((struct sockaddr *)&bound, text, sizeof(text)));
  }
  for (size_t i = 0; i < o->n_endpoints && status == 0; i++) {
    struct sockaddr_storage bound;
    char text[AWF_ADDRSTRLEN];
    rc = awf_proxy_listen_endpoint(a.proxy, (struct sockaddr *)&o->ep_listen[i], &bound,
                                   &o->endpoints[i]);
    if (rc < 0) {
      fprintf(stderr, "awf-proxy: --secret-endpoint-listen %s: %s\n", o->endpoints[i].name,
              uv_strerror(rc));
      status = AWF_EXIT_ERROR;
      break;
    }
    fprintf(stderr, "awf-proxy: secret-endpoint %s listening on %s\n", o->endpoints[i].name,
            awf_sockaddr_format((struct sockaddr *)&bound, text, sizeof(text)));
  }
  for (size_t i = 0; i < o->n_tlisten && status == 0; i++) {
    struct sockaddr_storage bound;
    char text[AWF_ADDRSTRLEN];
    rc = listen_all(&a, (struct sockaddr *)&o->tlisten[i], true, &bound);
    if (rc < 0) {
      fprintf(stderr, "awf-proxy: --transparent-listen %s: %s\n",
              awf_sockaddr_format((struct sockaddr *)&o->tlisten[i], text, sizeof(text)),
              uv_strerror(rc));
      status = AWF_EXIT_ERROR;
      break;
    }
    fprintf(stderr, "awf-proxy: transparent listening on %s\n",
            awf_sockaddr_format((struct sockaddr *)&bound, text, sizeof(text)));
  }
  struct awf_dns_server_config dcfg = {
      .acl = o->acl,
      .policy = o->policy,
      .resolver = a.resolver,
      .log = a.writer ? a.writer : a.log, /* on this engine's thread */
      .audit = o->audit,
      .dlp = o->dlp_table,
      .log_failed = on_dns_log_failed,
      .log_failed_arg = &a,
      .metrics = &a.metrics,
  };
  for (size_t i = 0; i < o->n_dns_listen && status == 0; i++) {
    struct sockaddr_storage bound;
    char text[AWF_ADDRSTRLEN];
    rc = awf_dns_server_new(&a.loop, &dcfg, (struct sockaddr *)&o->dns_listen[i], &bound,
                            &a.dns[a.n_dns]);
    if (rc < 0) {
      fprintf(stderr, "awf-proxy: --dns-listen %s: %s\n",
              awf_sockaddr_format((struct sockaddr *)&o->dns_listen[i], text, sizeof(text)),
              uv_strerror(rc));
      status = AWF_EXIT_ERROR;
      break;
    }
    a.n_dns++;
    fprintf(stderr, "awf-proxy: dns listening on %s\n",
            awf_sockaddr_format((struct sockaddr *)&bound, text, sizeof(text)));
  }
  struct awf_metrics_server_config mcfg = {
      .collect = collect_metrics,
      .arg = &a,
      .build = {awf_build_version, awf_build_commit, awf_build_flavour},
  };
  for (size_t i = 0; i < o->n_metrics_listen && status == 0; i++) {
    struct sockaddr_storage bound;
    char text[AWF_ADDRSTRLEN];
    rc = awf_metrics_server_new(&a.loop, &mcfg, (struct sockaddr *)&o->metrics_listen[i],
                                &bound, &a.msrv[a.n_msrv]);
    if (rc < 0) {
      fprintf(stderr, "awf-proxy: --metrics-listen %s: %s\n",
              awf_sockaddr_format((struct sockaddr *)&o->metrics_listen[i], text, sizeof(text)),
              uv_strerror(rc));
      status = AWF_EXIT_ERROR;
      break;
    }
    a.n_msrv++;
    fprintf(stderr, "awf-proxy: metrics listening on %s\n",
            awf_sockaddr_format((struct sockaddr *)&bound, text, sizeof(text)));
  }
  int sd_status = adopt_sd_fds(&a, &dcfg, &mcfg);
  if (status == 0)
    status = sd_status;
  if (status == 0 && (rc = awf_workers_start(a.workers)) < 0) {
    fprintf(stderr, "awf-proxy: cannot start the workers: %s\n", strerror(-rc));
    status = AWF_EXIT_ERROR;
  }
  if (status == 0)
    notify("READY=1"); /* every listener is up, every worker runs */
  if (status != 0) {
    a.stopping = true;
    close_dns_servers(&a);
    awf_workers_notify_done(a.workers, NULL); /* some may never have started */
    a.workers_live = false;
    awf_workers_stop(a.workers);
    awf_proxy_shutdown(a.proxy, on_proxy_done, &a);
  }

  uv_run(&a.loop, UV_RUN_DEFAULT);
  bool left_open = awf_workers_free(a.workers); /* each drained, in its thread */
  awf_logfile_close(a.writer);
  awf_proxy_group_free(a.group);
  rc = uv_loop_close(&a.loop);
  if (rc < 0 || left_open)
    fprintf(stderr, "awf-proxy: warning: handles left open at exit\n");
  int log_err;
  unsigned long lost = awf_logfile_finish(a.log, &log_err);
  awf_logfile_close(a.log);
  if (lost)
    fprintf(stderr,
            "awf-proxy: warning: the access log is incomplete: %lu record%s could not be "
            "written%s%s%s\n",
            lost, lost == 1 ? "" : "s", log_err ? " (" : "", log_err ? strerror(-log_err) : "",
            log_err ? ")" : "");
  if (status == 0)
    fprintf(stderr, "awf-proxy: exited cleanly\n");
  return status;
}

int main(int argc, char **argv) {
  struct awf_options o;
  if (awf_options_init(&o) < 0) {
    fprintf(stderr, "awf-proxy: out of memory\n");
    return AWF_EXIT_ERROR;
  }
  char err[512];
  int n = awf_sd_listen_fds(getpid(), sd_fds, AWF_SD_MAX_FDS, err, sizeof(err));
  if (n < 0) {
    fprintf(stderr, "awf-proxy: socket activation: %s\n", err);
    awf_options_free(&o);
    return AWF_EXIT_USAGE;
  }
  n_sd_fds = (size_t)n;
  bool check = false;
  int status = parse_args(argc, argv, &o, &check);
  if (status < 0)
    status = check ? check_config(&o) : run(&o);
  awf_options_free(&o);
  fflush(stdout);
  return status;
}
