/* main.c: awf-proxy, the proxy on its own: flags, signals, the loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
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

/* One event loop, engine and resolver per worker (--workers); worker 0
 * runs on the main thread and also owns the signals and the DNS servers.
 * Everything is set up on the main thread before any worker thread starts:
 * a loop is then only ever used by the thread that runs it. */
enum { CMD_STOP = 1 };

struct app;

struct worker {
  struct app *app;
  unsigned index;
  uv_loop_t loop;
  bool loop_ready;
  awf_proxy *proxy;
  awf_resolver *resolver;
  awf_logfile *log; /* one worker: the app's log; several: a writer of it */
  uv_async_t ctl;   /* commands from worker 0 (workers 1..n-1) */
  atomic_uint cmd;  /* CMD_ bits not handled yet */
  pthread_t thread;
};

struct app {
  struct worker *w;
  unsigned n;
  awf_logfile *log;
  awf_proxy_group *group; /* several workers: the shared connection caps */
  awf_dns_server *dns[AWF_MAX_LISTEN];
  size_t n_dns;
  uv_signal_t sig_term, sig_int, sig_hup; /* on worker 0's loop */
  bool signals;
  bool stopping;
};

static void on_proxy_done(void *arg) {
  struct worker *w = arg;
  struct app *a = w->app;
  w->proxy = NULL;
  awf_resolver_close(w->resolver);
  w->resolver = NULL;
  if (w->index > 0) {
    uv_close((uv_handle_t *)&w->ctl, NULL);
  } else if (a->signals) {
    uv_close((uv_handle_t *)&a->sig_term, NULL);
    uv_close((uv_handle_t *)&a->sig_int, NULL);
    uv_close((uv_handle_t *)&a->sig_hup, NULL);
  }
}

static void on_dns_log_failed(void *arg, int err) {
  struct worker *w = arg;
  if (w->proxy)
    awf_proxy_diag(w->proxy, AWF_LOG_WARN, "access log write failed: %s", strerror(-err));
}

/* Before the resolver closes: the servers stop using it when this returns. */
static void close_dns_servers(struct app *a) {
  for (size_t i = 0; i < a->n_dns; i++)
    awf_dns_server_close(a->dns[i], NULL, NULL);
  a->n_dns = 0;
}

/* The one place a signal reaches every worker: worker 0 acts at once, the
 * others on their own loop (ctl). */
static void dispatch(struct app *a, unsigned cmd) {
  for (unsigned i = 1; i < a->n; i++) {
    atomic_fetch_or(&a->w[i].cmd, cmd);
    uv_async_send(&a->w[i].ctl);
  }
}

static void on_ctl(uv_async_t *h) {
  struct worker *w = h->data;
  unsigned cmd = atomic_exchange(&w->cmd, 0);
  if ((cmd & CMD_STOP) && w->proxy)
    awf_proxy_shutdown(w->proxy, on_proxy_done, w);
}

static void stop_all(struct app *a) {
  a->stopping = true;
  close_dns_servers(a);
  dispatch(a, CMD_STOP);
  awf_proxy_shutdown(a->w[0].proxy, on_proxy_done, &a->w[0]);
}

static void on_stop_signal(uv_signal_t *s, int signum) {
  struct app *a = s->data;
  if (a->stopping)
    return;
  fprintf(stderr, "awf-proxy: %s: finishing open connections, then exiting\n",
          strsignal(signum));
  stop_all(a);
}

/* The log is one for all workers: reopened once. */
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

/* --workers' default: the CPUs this process may run on. */
static unsigned cpus_allowed(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
    return (unsigned)CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1;
}

/* n listening sockets on one address, bound with SO_REUSEPORT (the kernel
 * spreads new connections over them), all on the port the first one got.
 * Returns 0 or -errno (the sockets made so far are closed). */
static int bind_reuseport(const struct sockaddr *addr, unsigned n, int *fds,
                          struct sockaddr_storage *bound) {
  int one = 1;
  memcpy(bound, addr, addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                   : sizeof(struct sockaddr_in));
  for (unsigned i = 0; i < n; i++) {
    int rc = 0;
    socklen_t len = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in);
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        (addr->sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        bind(fd, (struct sockaddr *)bound, len) < 0 ||
        (i == 0 && getsockname(fd, (struct sockaddr *)bound, &len) < 0))
      rc = -errno;
    if (rc < 0) {
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
 * a socket each of a SO_REUSEPORT group. */
static int listen_all(struct app *a, const struct sockaddr *addr, bool transparent,
                      struct sockaddr_storage *bound) {
  if (a->n == 1)
    return transparent ? awf_proxy_listen_transparent(a->w[0].proxy, addr, bound)
                       : awf_proxy_listen(a->w[0].proxy, addr, bound);
  int fds[AWF_MAX_WORKERS];
  int rc = bind_reuseport(addr, a->n, fds, bound);
  for (unsigned i = 0; i < a->n; i++) {
    if (rc < 0)
      return rc; /* the rest of fds are closed (or were never made) */
    rc = awf_proxy_listen_fd(a->w[i].proxy, fds[i], transparent); /* fd is its own */
    if (rc < 0)
      while (++i < a->n)
        close(fds[i]);
  }
  return rc;
}

/* A worker's loop and resolver. Returns 0, or an exit status with the
 * reason on stderr. */
static int worker_init(struct worker *w, const struct awf_resolver_options *ro) {
  char err[512];
  uv_loop_init(&w->loop);
  w->loop_ready = true;
  if (w->index > 0) {
    uv_async_init(&w->loop, &w->ctl, on_ctl);
    w->ctl.data = w;
  }
  int rc = awf_resolver_new(&w->loop, ro, &w->resolver, err, sizeof(err));
  if (rc < 0) {
    fprintf(stderr, "awf-proxy: %s\n", rc == -EINVAL ? err : strerror(-rc));
    return AWF_EXIT_USAGE;
  }
  return 0;
}

/* A worker's log writer and engine, once the log is open. */
static int worker_engine(struct app *a, struct worker *w, const struct awf_options *o) {
  w->log = a->log;
  if (a->n > 1 && awf_logfile_writer_new(a->log, &w->log) < 0) {
    fprintf(stderr, "awf-proxy: out of memory\n");
    return AWF_EXIT_ERROR;
  }
  struct awf_proxy_config cfg;
  awf_options_to_config(o, &cfg);
  cfg.resolver = w->resolver;
  cfg.log = w->log;
  cfg.group = a->group;
  if (awf_proxy_new(&w->loop, &cfg, &w->proxy) < 0) {
    fprintf(stderr, "awf-proxy: out of memory\n");
    return AWF_EXIT_ERROR;
  }
  return 0;
}

/* Take down what worker_start made (on a failed start, before any thread
 * runs a loop), running its loop on this thread until it is all closed. */
static void worker_unwind(struct worker *w) {
  if (!w->loop_ready)
    return;
  if (w->proxy) {
    awf_proxy_shutdown(w->proxy, on_proxy_done, w);
  } else {
    if (w->resolver)
      awf_resolver_close(w->resolver);
    if (w->index > 0)
      uv_close((uv_handle_t *)&w->ctl, NULL);
  }
  uv_run(&w->loop, UV_RUN_DEFAULT);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  uv_run(&w->loop, UV_RUN_DEFAULT);
  return NULL;
}

static int start_listeners(struct app *a, struct awf_options *o) {
  char text[AWF_ADDRSTRLEN];
  for (size_t i = 0; i < o->n_listen; i++) {
    struct sockaddr_storage bound;
    int rc = listen_all(a, (struct sockaddr *)&o->listen[i], false, &bound);
    if (rc < 0) {
      fprintf(stderr, "awf-proxy: --listen %s: %s\n",
              awf_sockaddr_format((struct sockaddr *)&o->listen[i], text, sizeof(text)),
              uv_strerror(rc));
      return AWF_EXIT_ERROR;
    }
    fprintf(stderr, "awf-proxy: listening on %s\n",
            awf_sockaddr_format((struct sockaddr *)&bound, text, sizeof(text)));
  }
  for (size_t i = 0; i < o->n_tlisten; i++) {
    struct sockaddr_storage bound;
    int rc = listen_all(a, (struct sockaddr *)&o->tlisten[i], true, &bound);
    if (rc < 0) {
      fprintf(stderr, "awf-proxy: --transparent-listen %s: %s\n",
              awf_sockaddr_format((struct sockaddr *)&o->tlisten[i], text, sizeof(text)),
              uv_strerror(rc));
      return AWF_EXIT_ERROR;
    }
    fprintf(stderr, "awf-proxy: transparent listening on %s\n",
            awf_sockaddr_format((struct sockaddr *)&bound, text, sizeof(text)));
  }
  struct worker *w0 = &a->w[0];
  struct awf_dns_server_config dcfg = {
      .acl = o->acl,
      .policy = o->policy,
      .resolver = w0->resolver,
      .log = w0->log,
      .audit = o->audit,
      .dlp = o->dlp_table,
      .log_failed = on_dns_log_failed,
      .log_failed_arg = w0,
  };
  for (size_t i = 0; i < o->n_dns_listen; i++) {
    struct sockaddr_storage bound;
    int rc = awf_dns_server_new(&w0->loop, &dcfg, (struct sockaddr *)&o->dns_listen[i], &bound,
                                &a->dns[a->n_dns]);
    if (rc < 0) {
      fprintf(stderr, "awf-proxy: --dns-listen %s: %s\n",
              awf_sockaddr_format((struct sockaddr *)&o->dns_listen[i], text, sizeof(text)),
              uv_strerror(rc));
      return AWF_EXIT_ERROR;
    }
    a->n_dns++;
    fprintf(stderr, "awf-proxy: dns listening on %s\n",
            awf_sockaddr_format((struct sockaddr *)&bound, text, sizeof(text)));
  }
  return 0;
}

static void start_signals(struct app *a) {
  uv_loop_t *loop = &a->w[0].loop;
  signal(SIGPIPE, SIG_IGN);
  uv_signal_init(loop, &a->sig_term);
  uv_signal_init(loop, &a->sig_int);
  uv_signal_init(loop, &a->sig_hup);
  a->sig_term.data = a->sig_int.data = a->sig_hup.data = a;
  /* Before the first "listening" line: a supervisor may send SIGTERM as
   * soon as it reads it, and the default action would skip the drain. */
  uv_signal_start(&a->sig_term, on_stop_signal, SIGTERM);
  uv_signal_start(&a->sig_int, on_stop_signal, SIGINT);
  uv_signal_start(&a->sig_hup, on_hup, SIGHUP);
  a->signals = true;
}

/* After the loops ended: every worker's resources, then the log. */
static int finish(struct app *a, int status) {
  bool left_open = false;
  for (unsigned i = 0; i < a->n; i++) {
    struct worker *w = &a->w[i];
    if (w->loop_ready && uv_loop_close(&w->loop) < 0)
      left_open = true;
    if (w->log && w->log != a->log)
      awf_logfile_close(w->log);
  }
  if (left_open)
    fprintf(stderr, "awf-proxy: warning: handles left open at exit\n");
  awf_proxy_group_free(a->group);
  free(a->w);
  if (!a->log)
    return status;
  int log_err;
  unsigned long lost = awf_logfile_finish(a->log, &log_err);
  awf_logfile_close(a->log);
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

static int run(struct awf_options *o) {
  struct app a;
  memset(&a, 0, sizeof(a));
  char err[512];
  int rc;

  if (awf_acl_count(o->acl, AWF_ACL_ALLOW) == 0 && !o->audit)
    fprintf(stderr,
            "awf-proxy: warning: no --allow-domains given: every request will be denied\n");
  warn_open_proxy(o);
  a.n = o->workers ? o->workers : cpus_allowed();
  if (a.n > AWF_MAX_WORKERS)
    a.n = AWF_MAX_WORKERS;
  a.w = calloc(a.n, sizeof(*a.w));
  if (!a.w) {
    fprintf(stderr, "awf-proxy: out of memory\n");
    return AWF_EXIT_ERROR;
  }
  for (unsigned i = 0; i < a.n; i++) {
    a.w[i].app = &a;
    a.w[i].index = i;
    atomic_init(&a.w[i].cmd, 0);
  }
  struct awf_resolver_options ro;
  awf_resolver_options_default(&ro);
  ro.servers = o->dns_servers;
  awf_options_debug_start(o, "awf-proxy", &ro, NULL);
  /* Worker 0's resolver first: a bad --dns-servers is a usage error before
   * the log is touched. */
  int status = worker_init(&a.w[0], &ro);
  if (status != 0) {
    worker_unwind(&a.w[0]);
    return finish(&a, status);
  }
  awf_options_debug_start(o, "awf-proxy", &ro, a.w[0].resolver);
  rc = awf_logfile_open(o->log_file, &a.log);
  if (rc < 0) {
    fprintf(stderr, "awf-proxy: --log-file: cannot open '%s': %s\n", o->log_file,
            strerror(-rc));
    worker_unwind(&a.w[0]);
    return finish(&a, AWF_EXIT_USAGE);
  }
  if (awf_logfile_write_run(a.log, AWF_VERSION, NULL) < 0)
    fprintf(stderr, "awf-proxy: warning: access log write failed\n");
  if ((rc = awf_options_start_intercept(o, err, sizeof(err))) < 0) {
    fprintf(stderr, "awf-proxy: %s\n", err);
    worker_unwind(&a.w[0]);
    return finish(&a, AWF_EXIT_ERROR);
  }
  if (a.n > 1) {
    struct awf_proxy_config cfg;
    awf_options_to_config(o, &cfg);
    a.group = awf_proxy_group_new(cfg.max_connections, cfg.max_connections_per_client);
    if (!a.group) {
      fprintf(stderr, "awf-proxy: out of memory\n");
      status = AWF_EXIT_ERROR;
    }
  }
  for (unsigned i = 1; i < a.n && status == 0; i++)
    status = worker_init(&a.w[i], &ro);
  for (unsigned i = 0; i < a.n && status == 0; i++)
    status = worker_engine(&a, &a.w[i], o);
  if (status == 0) {
    start_signals(&a);
    status = start_listeners(&a, o);
  }
  if (status != 0) {
    a.stopping = true;
    close_dns_servers(&a);
    for (unsigned i = 0; i < a.n; i++)
      worker_unwind(&a.w[i]);
    return finish(&a, status);
  }
  unsigned started = 1;
  for (; started < a.n; started++) {
    rc = pthread_create(&a.w[started].thread, NULL, worker_main, &a.w[started]);
    if (rc != 0) {
      fprintf(stderr, "awf-proxy: cannot start worker %u: %s\n", started, strerror(rc));
      status = AWF_EXIT_ERROR;
      stop_all(&a); /* the ones running stop on their loop, the rest below */
      break;
    }
  }
  uv_run(&a.w[0].loop, UV_RUN_DEFAULT);
  for (unsigned i = 1; i < a.n; i++) {
    if (i < started)
      pthread_join(a.w[i].thread, NULL);
    else
      worker_main(&a.w[i]);
  }
  return finish(&a, status);
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
