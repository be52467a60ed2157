/* main.c: awf-proxy, the proxy on its own: flags, signals, the loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_info.h"
#include "config.h"
#include "dns_server.h"
#include "exitcodes.h"
#include "netaddr.h"
#include "proxy.h"
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
    "      --allow-ports LIST        destination ports, e.g. 80,443,8000-8099 (default 80,443)\n"
    "      --allow-destination-cidrs LIST\n"
    "                                private/local CIDRs that may still be dialled\n"
    "      --dns-servers LIST        upstream DNS servers, ip[:port] or [v6]:port\n"
    "                                (default: /etc/resolv.conf and /etc/hosts)\n"
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
    "      --version                 print the version, commit and build flavour and exit\n"
    "  -h, --help                    print this help and exit\n"
    "\n"
    "Exit status: 0 after SIGTERM/SIGINT, 1 on a runtime failure, 2 on a bad flag or rule.\n"
    "Docs: docs/awf-proxy.md and docs/access-log.md\n";

/* The first engine runs on the main thread's loop, with the signals and the
 * DNS servers; --workers N adds N-1 on threads of their own (workers.h). */
struct app {
  uv_loop_t loop;
  awf_proxy *proxy;
  awf_resolver *resolver;
  awf_logfile *log;
  awf_logfile *writer;    /* several workers: this engine's writer of log */
  awf_proxy_group *group; /* several workers: the connection caps they share */
  awf_workers *workers;   /* the other N-1 (NULL: one worker) */
  unsigned n_workers;
  awf_dns_server *dns[AWF_MAX_LISTEN];
  size_t n_dns;
  uv_signal_t sig_term, sig_int, sig_hup;
  bool stopping;
};

static void on_proxy_done(void *arg) {
  struct app *a = arg;
  a->proxy = NULL;
  awf_resolver_close(a->resolver);
  uv_close((uv_handle_t *)&a->sig_term, NULL);
  uv_close((uv_handle_t *)&a->sig_int, NULL);
  uv_close((uv_handle_t *)&a->sig_hup, NULL);
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
  fprintf(stderr, "awf-proxy: %s: finishing open connections, then exiting\n",
          strsignal(signum));
  close_dns_servers(a);
  awf_workers_stop(a->workers);
  awf_proxy_shutdown(a->proxy, on_proxy_done, a);
}

/* The log is one for every worker: reopened once. */
static void on_hup(uv_signal_t *s, int signum) {
  (void)signum;
  struct app *a = s->data;
  int rc = awf_logfile_reopen(a->log);
  if (rc < 0)
    fprintf(stderr, "awf-proxy: cannot reopen the access log: %s\n", strerror(-rc));
}

static const struct option long_opts[] = {
    {"listen", required_argument, 0, 'L'},
    {"transparent-listen", required_argument, 0, 'O'},
    {"tls-ports", required_argument, 0, 'O'},
    {"http-ports", required_argument, 0, 'O'},
    {"dns-listen", required_argument, 0, 'O'},
    {"allow-clients", required_argument, 0, 'O'},
    {"allow-domains", required_argument, 0, 'd'},
    {"allow-domains-file", required_argument, 0, 'O'},
    {"block-domains", required_argument, 0, 'O'},
    {"block-domains-file", required_argument, 0, 'O'},
    {"allow-urls", required_argument, 0, 'O'},
    {"allow-urls-file", required_argument, 0, 'O'},
    {"block-urls", required_argument, 0, 'O'},
    {"ssl-bump", no_argument, 0, 'B'},
    {"ssl-bump-ca-out", required_argument, 0, 'O'},
    {"rate-limit", required_argument, 0, 'O'},
    {"bytes-limit", required_argument, 0, 'O'},
    {"allow-ports", required_argument, 0, 'O'},
    {"allow-destination-cidrs", required_argument, 0, 'O'},
    {"dns-servers", required_argument, 0, 'O'},
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
static int parse_args(int argc, char **argv, struct awf_options *o) {
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
  if (o->n_listen == 0 && o->n_tlisten == 0 && o->n_dns_listen == 0) {
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

static int run(struct awf_options *o) {
  struct app a;
  memset(&a, 0, sizeof(a));
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
  if ((rc = awf_options_start_intercept(o, err, sizeof(err))) < 0) {
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
  signal(SIGPIPE, SIG_IGN);
  uv_signal_init(&a.loop, &a.sig_term);
  uv_signal_init(&a.loop, &a.sig_int);
  uv_signal_init(&a.loop, &a.sig_hup);
  a.sig_term.data = a.sig_int.data = a.sig_hup.data = &a;
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
  if (status == 0 && (rc = awf_workers_start(a.workers)) < 0) {
    fprintf(stderr, "awf-proxy: cannot start the workers: %s\n", strerror(-rc));
    status = AWF_EXIT_ERROR;
  }
  if (status != 0) {
    a.stopping = true;
    close_dns_servers(&a);
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
  int status = parse_args(argc, argv, &o);
  if (status < 0)
    status = run(&o);
  awf_options_free(&o);
  fflush(stdout);
  return status;
}
