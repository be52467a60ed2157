/* supervisor.c: start the sandbox, wire its network to the proxy, wait. */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "cgroup.h"
#include "denials.h"
#include "dns_server.h"
#include "exitcodes.h"
#include "fdpass.h"
#include "host_access.h"
#include "logfile.h"
#include "netaddr.h"
#include "nflog.h"
#include "proxy.h"
#include "refused.h"
#include "unixlog.h"
#include "resolver.h"
#include "workers.h"
#include "privileges.h"
#include "rootfs.h"
#include "sandbox_steps.h"
#include "seccomp_filter.h"
#include "stepsummary.h"
#include "trust.h"
#include "ttystate.h"
#include "unixgate.h"
#include "userns.h"

#define KILL_GRACE_MS 10000

struct supervisor {
  uv_loop_t loop;
  const struct awf_sandbox_plan *plan;
  pid_t child;
  int exit_status;
  bool child_done, timed_out, stopping;
  awf_resolver *resolver;
  awf_logfile *log;
  awf_proxy *proxy;
  awf_proxy_group *group;   /* --workers N > 1: the connection cap the engines share */
  awf_workers *workers;     /* the other N-1 engines (NULL: one) */
  awf_intercept *intercept; /* --ssl-bump: the run's CA and TLS contexts (may be NULL) */
  awf_dns_server *dns[2];   /* IPv4 and IPv6 */
  awf_refused *refused;     /* what the sandbox's firewall refused (may be NULL) */
  awf_unixlog *unixlog;     /* the UNIX gate's decisions (may be NULL) */
  awf_denials *denials;
  awf_dns_memory *dns_memory; /* --allow-ssh: the names answered per address */
  awf_stepsummary *summary;   /* GITHUB_STEP_SUMMARY (may be NULL) */
  uv_signal_t sig_chld;
  uv_signal_t fwd[7];
  uv_timer_t timeout;
  unsigned dns_open;
  awf_unixgate *unix_gate;
  int unix_diag;               /* NETLINK_SOCK_DIAG made in the sandbox's namespace */
  struct awf_host_access host; /* --enable-host-access: the host's services */
};

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

/* ---- inside the new namespaces -------------------------------------------- */

static int gate_channel[2] = {-1, -1}; /* the filter's listener, command -> awf */

static int prepare_command(void *arg) {
  const struct awf_sandbox_plan *plan = arg;
  char err[512];
  int listener = -1;
  int dropped = plan->rootless
                    ? awf_privileges_drop_keep_groups(plan->uid, plan->gid, err, sizeof(err))
                    : awf_privileges_drop(plan->uid, plan->gid, plan->groups, plan->ngroups,
                                          err, sizeof(err));
  if (dropped < 0 || awf_seccomp_install_gated(&listener, err, sizeof(err)) < 0) {
    fprintf(stderr, "awf: %s\n", err);
    return AWF_EXIT_FAILURE;
  }
  int rc = awf_unixgate_hand_over(gate_channel[1], listener);
  close(listener); /* the command must not answer its own connects */
  close(gate_channel[1]);
  if (rc < 0) {
    fprintf(stderr, "awf: cannot hand the UNIX socket gate to awf: %s\n", strerror(-rc));
    return AWF_EXIT_FAILURE;
  }
  return 0;
}

/* The sockets rootless awf makes inside the sandbox's network namespace and
 * hands to the engine outside. They go in this order, the NFLOG one last (it
 * may be missing), after one per --secret-endpoint (SK_EP0...). */
enum {
  SK_PROXY,
  SK_TPROXY4,
  SK_TPROXY6,
  SK_DNS4_UDP,
  SK_DNS4_TCP,
  SK_DNS6_UDP,
  SK_DNS6_TCP,
  SK_NFLOG,
  SK_EP0,
  SK_N = SK_EP0 + AWF_SECRET_ENDPOINTS_MAX
};
#define SK_FIXED SK_NFLOG /* the sockets every run has */

static const int families[2] = {AF_INET, AF_INET6}; /* index = s->dns[] slot */

/* 127.0.0.1 or [::1] with this port. */
static int loopback_addr(int family, uint16_t port, struct sockaddr_storage *a) {
  memset(a, 0, sizeof(*a));
  if (family == AF_INET)
    return uv_ip4_addr("127.0.0.1", port, (struct sockaddr_in *)a);
  return uv_ip6_addr("::1", port, (struct sockaddr_in6 *)a);
}

static void close_fds(int *fds, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (fds[i] >= 0) {
      close(fds[i]);
      fds[i] = -1;
    }
}

/* A TCP socket bound to the loopback port (not listening yet). */
static int bind_tcp(int family, uint16_t port, char *err, size_t errlen) {
  struct sockaddr_storage a;
  char text[AWF_ADDRSTRLEN];
  loopback_addr(family, port, &a);
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int on = 1;
  if (fd >= 0 && family == AF_INET6 &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) {
    close(fd);
    fd = -1;
  }
  socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, len) < 0) {
    close(fd);
    fd = -1;
  }
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot listen on %s inside the sandbox: %s",
             awf_sockaddr_format((struct sockaddr *)&a, text, sizeof(text)), strerror(e));
    return -e;
  }
  return fd;
}

/* Rootless, in the sandbox's PID 1: the sockets of awf's listeners, bound in
 * this (the sandbox's) network namespace, and the NFLOG socket (-1 when the
 * kernel has none: a warning, as in the root path). */
static int make_sandbox_sockets(const struct awf_cli *cli, int fds[SK_N], char *err,
                                size_t errlen) {
  for (size_t i = 0; i < SK_N; i++)
    fds[i] = -1;
  int rc = fds[SK_PROXY] = bind_tcp(AF_INET, AWF_SANDBOX_PROXY_PORT, err, errlen);
  if (rc >= 0)
    rc = fds[SK_TPROXY4] = bind_tcp(AF_INET, AWF_SANDBOX_TRANSPARENT_PORT, err, errlen);
  if (rc >= 0)
    rc = fds[SK_TPROXY6] = bind_tcp(AF_INET6, AWF_SANDBOX_TRANSPARENT_PORT, err, errlen);
  for (size_t i = 0; rc >= 0 && i < cli->proxy.n_endpoints; i++)
    rc = fds[SK_EP0 + i] = bind_tcp(AF_INET, (uint16_t)(AWF_SANDBOX_ENDPOINT_PORT + i), err,
                                    errlen);
  for (size_t i = 0; rc >= 0 && i < 2; i++) {
    struct sockaddr_storage a;
    char text[AWF_ADDRSTRLEN];
    loopback_addr(families[i], AWF_SANDBOX_DNS_PORT, &a);
    rc = awf_dns_server_bind((struct sockaddr *)&a, &fds[SK_DNS4_UDP + 2 * i],
                             &fds[SK_DNS4_TCP + 2 * i], NULL);
    if (rc < 0)
      snprintf(err, errlen, "cannot start the DNS server on %s inside the sandbox: %s",
               awf_sockaddr_format((struct sockaddr *)&a, text, sizeof(text)), strerror(-rc));
  }
  if (rc < 0) {
    close_fds(fds, SK_N);
    return rc;
  }
  fds[SK_NFLOG] = awf_nflog_open(AWF_NFLOG_GROUP);
  if (fds[SK_NFLOG] < 0) {
    fprintf(stderr, "awf: warning: refused packets will not be logged: %s\n",
            strerror(-fds[SK_NFLOG]));
    fds[SK_NFLOG] = -1;
  }
  return 0;
}

/* Rootless, a step inside failed: say it, with AppArmor's part when it is
 * the likely cause (it lets the namespace be made, then refuses its
 * capabilities). */
__attribute__((noreturn)) static void rootless_fail(int rc, const char *err) {
  struct awf_userns_facts f;
  awf_userns_gather(&f);
  f.err = -rc;
  if ((rc == -EPERM || rc == -EACCES) && f.apparmor_restrict == 1 && !f.privileged) {
    char why[768];
    awf_userns_explain(&f, why, sizeof(why));
    fprintf(stderr, "awf: %s\nawf: rootless: %s\n", err, why);
  } else {
    fprintf(stderr, "awf: %s\n", err);
  }
  _exit(AWF_EXIT_FAILURE);
}

/* Rootless, in the sandbox's PID 1, before its root is built: wait for the
 * id maps ('m'), set up the network, send the sockets made in it ('S'), and
 * take the UNIX gate's report pipe ('g'). */
static int rootless_network(const struct awf_sandbox_plan *plan, int chan) {
  char tag = 0, err[1024];
  int fds[SK_N], report = -1;
  size_t n;
  if (awf_fdpass_recv(chan, &tag, fds, 0, 0, &n) < 0 || tag != 'm')
    _exit(AWF_EXIT_FAILURE); /* awf gave up (its error is already printed) */
  /* Mapped: from now on this process runs as the command's uid, with every
   * capability in the namespace. Neither the command nor another process of
   * that uid may ptrace it or read its memory (set only now: its id maps are
   * written through its /proc files, which this makes root's). */
  prctl(PR_SET_DUMPABLE, 0);
  int rc = awf_step_configure_sandbox_net(plan->cli, err, sizeof(err));
  if (rc == 0)
    rc = make_sandbox_sockets(plan->cli, fds, err, sizeof(err));
  if (rc < 0)
    rootless_fail(rc, err);
  /* On the wire: the fixed ones, the endpoints', then NFLOG's if any. */
  size_t nep = plan->cli->proxy.n_endpoints, k = SK_FIXED;
  int wire[SK_N];
  memcpy(wire, fds, sizeof(int) * SK_FIXED);
  for (size_t i = 0; i < nep; i++)
    wire[k++] = fds[SK_EP0 + i];
  if (fds[SK_NFLOG] >= 0)
    wire[k++] = fds[SK_NFLOG];
  rc = awf_fdpass_send(chan, 'S', wire, k);
  close_fds(fds, SK_N);
  if (rc < 0 || awf_fdpass_recv(chan, &tag, &report, 0, 1, &n) < 0 || tag != 'g')
    _exit(AWF_EXIT_FAILURE);
  return n ? report : -1;
}

/* --ssl-bump: the run's CA, made by awf after the clone (trust.h), for the
 * root about to be built. */
static void receive_trust(const struct awf_sandbox_plan *plan, int chan,
                          struct awf_rootfs_spec *rootfs, struct awf_rootfs_trust *trust) {
  char err[512];
  if (!awf_options_intercepts(&plan->cli->proxy))
    return;
  int rc = awf_trust_receive(chan, trust, err, sizeof(err));
  if (rc < 0) {
    if (rc != -EPIPE) /* else awf gave up first: its error is already printed */
      fprintf(stderr, "awf: %s\n", err);
    _exit(AWF_EXIT_FAILURE);
  }
  rootfs->trust = trust;
}

__attribute__((noreturn)) static void sandbox_main(const struct awf_sandbox_plan *plan,
                                                   int go_fd) {
  char err[1024];
  /* If awf dies, so does the sandbox: PID 1 dying ends the namespace. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct awf_unix_id ids[AWF_UNIXGATE_MAX_ALLOWED];
  struct awf_unixgate_config gc = {.uid = plan->uid,
                                   .gid = plan->gid,
                                   .groups = plan->groups,
                                   .ngroups = plan->ngroups,
                                   .report_fd = -1,
                                   .allowed_ids = ids,
                                   .keep_groups = true};
  int diag = -1;
  struct awf_rootfs_spec rootfs = plan->rootfs;
  struct awf_rootfs_trust trust;
  if (plan->rootless) {
    gc.report_fd = rootless_network(plan, go_fd);
    receive_trust(plan, go_fd, &rootfs, &trust);
    gc.allowed = plan->cli->allow_unix_sockets;
    int rc = (diag = awf_unixgate_diag_socket()) < 0 ? diag : 0;
    if (rc < 0)
      snprintf(err, sizeof(err), "cannot list the sandbox's UNIX sockets: %s", strerror(-rc));
    else
      rc = awf_unixgate_resolve(&gc, ids, &gc.n_allowed_ids, err, sizeof(err));
    if (rc < 0)
      rootless_fail(rc, err);
    gc.allowed = NULL; /* resolved: the host's paths are gone once the root is built */
  } else {
    receive_trust(plan, go_fd, &rootfs, &trust);
    char go;
    ssize_t n;
    do
      n = read(go_fd, &go, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
      _exit(AWF_EXIT_FAILURE); /* awf gave up (its error is already printed) */
  }
  close(go_fd);
  if (sethostname(AWF_SANDBOX_HOSTNAME, strlen(AWF_SANDBOX_HOSTNAME)) < 0 ||
      awf_rootfs_build(&rootfs, err, sizeof(err)) < 0) {
    int e = errno;
    if (!err[0])
      snprintf(err, sizeof(err), "%s", strerror(e));
    if (plan->rootless)
      rootless_fail(-e, err);
    fprintf(stderr, "awf: %s\n", err);
    _exit(AWF_EXIT_FAILURE);
  }
  /* The access log, where the sandbox shows it: read-only, unremovable. */
  if (awf_logprotect_apply(&plan->log, err, sizeof(err)) < 0) {
    fprintf(stderr, "awf: %s\n", err);
    _exit(AWF_EXIT_FAILURE);
  }
  /* Rootless, the UNIX gate runs here (awf outside cannot enter the
   * sandbox's namespaces), now that the sandbox's /proc is mounted: the pids
   * it is told are the sandbox's. It runs until PID 1 ends with the command. */
  awf_unixgate *gate;
  if (plan->rootless &&
      awf_unixgate_start(&gc, gate_channel[0], diag, &gate, err, sizeof(err)) < 0) {
    fprintf(stderr, "awf: %s\n", err);
    _exit(AWF_EXIT_FAILURE);
  }
  struct awf_init_command cmd = plan->command;
  cmd.prepare = prepare_command;
  cmd.prepare_arg = (void *)plan;
  cmd.prepare_fd = gate_channel[1];
  awf_init_run(&cmd);
}

/* ---- outside: the proxy's loop -------------------------------------------- */

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

static void on_proxy_done(void *arg) {
  struct supervisor *s = arg;
  s->proxy = NULL;
  awf_resolver_close(s->resolver);
}

static void on_dns_done(void *arg) {
  struct supervisor *s = arg;
  if (--s->dns_open > 0)
    return;
  if (s->proxy)
    awf_proxy_shutdown(s->proxy, on_proxy_done, s);
  else if (s->resolver)
    awf_resolver_close(s->resolver);
}

/* The command is over: close everything so the loop ends. */
static void stop_all(struct supervisor *s) {
  if (s->stopping)
    return;
  s->stopping = true;
  awf_workers_stop(s->workers); /* each drains on its own thread */
  close_handle((uv_handle_t *)&s->sig_chld);
  for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
    close_handle((uv_handle_t *)&s->fwd[i]);
  close_handle((uv_handle_t *)&s->timeout);
  awf_refused_close(s->refused); /* reads the last reports first */
  s->refused = NULL;
  awf_unixlog_close(s->unixlog);
  s->unixlog = NULL;
  for (size_t i = 0; i < 2; i++)
    if (s->dns[i])
      s->dns_open++;
  for (size_t i = 0; i < 2; i++)
    if (s->dns[i]) {
      awf_dns_server_close(s->dns[i], on_dns_done, s);
      s->dns[i] = NULL;
    }
  if (s->dns_open)
    return;
  if (s->proxy)
    awf_proxy_shutdown(s->proxy, on_proxy_done, s);
  else if (s->resolver)
    awf_resolver_close(s->resolver);
}

static void on_sigchld(uv_signal_t *h, int signum) {
  (void)signum;
  struct supervisor *s = h->data;
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid != s->child)
      continue;
    s->child_done = true;
    s->exit_status = s->timed_out ? AWF_EXIT_TIMEOUT : awf_init_exit_code(status);
    stop_all(s);
  }
}

static void on_forward(uv_signal_t *h, int signum) {
  struct supervisor *s = h->data;
  if (!s->child_done)
    kill(s->child, signum); /* init passes it on to the command */
}

static void on_timeout(uv_timer_t *t) {
  struct supervisor *s = t->data;
  if (s->child_done)
    return;
  if (!s->timed_out) {
    fprintf(stderr, "awf: --agent-timeout reached: stopping the command\n");
    s->timed_out = true;
    kill(s->child, SIGTERM);
    uv_timer_start(t, on_timeout, KILL_GRACE_MS, 0);
  } else {
    kill(s->child, SIGKILL);
  }
}

static bool admitted_for_ssh(const char *name, void *arg) {
  return awf_acl_check(arg, name, strlen(name), AWF_PROTO_TLS) == AWF_ACL_ALLOWED;
}

/* --allow-ssh judges port 22 by the name the command resolved: through awf's
 * DNS (noted by the DNS servers) or the sandbox's /etc/hosts (pinned here). */
/* The log's run record. Under --dlp the command is written with every
 * token or secret in its arguments masked, as the access records are. */
static int write_run_record(struct supervisor *s) {
  char *const *argv = s->plan->command.argv;
  const awf_dlp *d = s->plan->cli->proxy.dlp_table;
  if (!d || !argv)
    return awf_logfile_write_run(s->log, AWF_VERSION, (const char *const *)argv);
  size_t n = 0;
  while (argv[n])
    n++;
  char **masked = calloc(n + 1, sizeof(char *));
  int rc = masked ? 0 : -ENOMEM;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (!(masked[i] = strdup(argv[i])))
      rc = -ENOMEM;
    else if (awf_dlp_redact(d, AWF_DLP_TEXT, masked[i], strlen(masked[i])) < 0 ||
             awf_dlp_redact(d, AWF_DLP_NAME, masked[i], strlen(masked[i])) < 0)
      rc = -ENOMEM; /* as text, and as names (folded, dots removed) */
  }
  if (rc == 0)
    rc = awf_logfile_write_run(s->log, AWF_VERSION, (const char *const *)masked);
  for (size_t i = 0; masked && i < n; i++)
    free(masked[i]);
  free(masked);
  return rc;
}

static int make_dns_memory(struct supervisor *s, char *err, size_t errlen) {
  const struct awf_sandbox_plan *plan = s->plan;
  if (!plan->cli->proxy.ssh_acl)
    return 0;
  s->dns_memory = awf_dns_memory_new(0);
  if (!s->dns_memory) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  if (plan->rootfs.hosts)
    awf_dns_memory_load_hosts(s->dns_memory, plan->rootfs.hosts, strlen(plan->rootfs.hosts),
                              admitted_for_ssh, plan->cli->proxy.ssh_acl);
  return 0;
}

/* The run CA's certificate as PEM (malloc()ed), NULL without --ssl-bump. */
static char *run_ca_pem(const struct supervisor *s, size_t *len) {
  return s->intercept ? awf_intercept_ca_pem(s->intercept, len) : NULL;
}

static int start_services(struct supervisor *s, char *err, size_t errlen) {
  const struct awf_cli *cli = s->plan->cli;
  struct awf_resolver_options ro;
  awf_resolver_options_default(&ro);
  ro.servers = cli->proxy.dns_servers;
  awf_options_debug_start(&cli->proxy, "awf", &ro, NULL);
  int rc = awf_resolver_new(&s->loop, &ro, &s->resolver, err, errlen);
  if (rc == 0)
    rc = make_dns_memory(s, err, errlen);
  if (rc < 0)
    return rc;
  awf_options_debug_start(&cli->proxy, "awf", &ro, s->resolver);
  /* A log file was opened with the caller's rights before the sandbox was
   * made (awf_main.c, logprotect.h); "-" is stdout. */
  int log_fd = s->plan->log.fd;
  rc = log_fd >= 0 ? awf_logfile_open_fd(log_fd, &s->log)
                   : awf_logfile_open(cli->proxy.log_file, &s->log);
  if (rc < 0) {
    snprintf(err, errlen, "--log-file %s: %s", cli->proxy.log_file, strerror(-rc));
    return rc;
  }
  awf_stepsummary_attach(s->summary, s->log); /* every record, log file or not */
  rc = write_run_record(s);
  if (rc < 0)
    fprintf(stderr, "awf: warning: access log write failed: %s\n", strerror(-rc));
  if (awf_options_intercepts(&cli->proxy)) {
    char msg[512];
    rc = awf_intercept_new(cli->proxy.url_rules, cli->proxy.secrets, &s->intercept, msg,
                           sizeof(msg));
    if (rc < 0) {
      snprintf(err, errlen, "%s: %s", cli->proxy.ssl_bump ? "--ssl-bump" : "--secret", msg);
      return rc;
    }
  }
  struct awf_proxy_config cfg;
  awf_options_to_config(&cli->proxy, &cfg);
  cfg.intercept = s->intercept;
  /* The sandbox's only clients are its own loopback addresses: a limit per
   * client below the global cap would only cut the command's connections. */
  cfg.max_connections_per_client = 0;
  cfg.resolver = s->resolver;
  cfg.log = s->log;
  cfg.denials = s->denials;
  cfg.dns_memory = s->dns_memory;
  if (cli->host_access) {
    awf_host_access_default(&s->host);
    s->host.ports = cli->host_ports;
    cfg.host_access = &s->host;
  }
  unsigned n = cli->proxy.workers ? cli->proxy.workers : 1; /* awf: one unless asked */
  if (n > 1) {
    if (!(s->group = awf_proxy_group_new(cfg.max_connections, 0))) {
      snprintf(err, errlen, "out of memory");
      return -ENOMEM;
    }
    cfg.group = s->group;
    if ((rc = awf_workers_new(n - 1, &cfg, &ro, &s->workers, err, errlen)) < 0)
      return rc;
  }
  rc = awf_proxy_new(&s->loop, &cfg, &s->proxy);
  if (rc < 0) {
    snprintf(err, errlen, "cannot start the proxy: %s", strerror(-rc));
    return rc;
  }
  return 0;
}

/* --workers: the other engines accept on the sockets the first listens on
 * (made inside the sandbox: shared, never bound again), then run. */
static int start_workers(struct supervisor *s, char *err, size_t errlen) {
  int rc = 0;
  for (unsigned i = 0; rc == 0 && i < awf_workers_count(s->workers); i++)
    rc = awf_proxy_share_listeners(s->proxy, awf_workers_engine(s->workers, i));
  if (rc == 0 && (rc = awf_workers_start(s->workers)) < 0)
    rc = uv_translate_sys_error(-rc);
  if (rc < 0)
    snprintf(err, errlen, "cannot start the workers: %s", uv_strerror(rc));
  return rc;
}

/* --ssl-bump: the run CA's certificate, with the host's bundle, to the
 * sandbox's PID 1, which waits for it before building its root. */
static int send_trust(const struct supervisor *s, int chan, char *err, size_t errlen) {
  size_t len = 0;
  char *pem = run_ca_pem(s, &len);
  char why[512];
  struct awf_trust_material m;
  if (!pem) {
    snprintf(err, errlen, "--ssl-bump: no CA certificate (out of memory)");
    return -ENOMEM;
  }
  int rc = awf_trust_make(pem, len, s->plan->trust_host_bundle, s->plan->trust_host_bundle_len,
                          &m, why, sizeof(why));
  free(pem);
  if (rc < 0) {
    snprintf(err, errlen, "--ssl-bump: %s", why);
    return -EINVAL;
  }
  rc = awf_trust_send(chan, &m);
  awf_trust_free(&m);
  if (rc < 0)
    snprintf(err, errlen, "--ssl-bump: cannot hand the CA to the sandbox: %s", strerror(-rc));
  return rc;
}

/* After the sandbox's network is up: the gate answers the command's connects. */
static int start_unix_gate(struct supervisor *s, char *err, size_t errlen) {
  const struct awf_sandbox_plan *p = s->plan;
  struct awf_unixgate_config gc = {.uid = p->uid,
                                   .gid = p->gid,
                                   .groups = p->groups,
                                   .ngroups = p->ngroups,
                                   .allowed = p->cli->allow_unix_sockets,
                                   .report_fd = -1};
  /* The gate's decisions reach the access log and the summary through a pipe. */
  if (awf_unixlog_start(&s->loop, s->log, s->denials, &gc.report_fd, &s->unixlog) < 0)
    fprintf(stderr, "awf: warning: refused UNIX socket connections will not be logged\n");
  int rc = awf_unixgate_start(&gc, gate_channel[0], s->unix_diag, &s->unix_gate, err, errlen);
  gate_channel[0] = s->unix_diag = -1; /* the gate's now, even on failure */
  return rc;
}

static void dns_config(const struct supervisor *s, struct awf_dns_server_config *dc) {
  const struct awf_cli *cli = s->plan->cli;
  memset(dc, 0, sizeof(*dc));
  dc->acl = cli->proxy.acl;
  dc->policy = cli->proxy.policy;
  dc->resolver = s->resolver;
  dc->log = s->log;
  dc->audit = cli->proxy.audit;
  dc->denials = s->denials;
  dc->ssh_acl = cli->proxy.ssh_acl;
  dc->memory = s->dns_memory;
  dc->host_access = cli->host_access ? &s->host : NULL;
  dc->dlp = cli->proxy.dlp_table;
}

/* Rootless: the sandbox's PID 1 made the listeners' sockets in its network
 * namespace; the engine takes them over here. Each fd is taken, even on
 * failure. */
static int adopt_sandbox_sockets(struct supervisor *s, int *fds, size_t n, char *err,
                                 size_t errlen) {
  int rc = awf_proxy_listen_fd(s->proxy, fds[SK_PROXY], false);
  fds[SK_PROXY] = -1;
  for (size_t i = SK_TPROXY4; i <= SK_TPROXY6; i++) {
    if (rc == 0)
      rc = awf_proxy_listen_fd(s->proxy, fds[i], true);
    else
      close(fds[i]);
    fds[i] = -1;
  }
  const struct awf_options *o = &s->plan->cli->proxy;
  for (size_t i = 0; i < o->n_endpoints; i++) {
    if (rc == 0)
      rc = awf_proxy_listen_endpoint_fd(s->proxy, fds[SK_EP0 + i], &o->endpoints[i]);
    else
      close(fds[SK_EP0 + i]);
    fds[SK_EP0 + i] = -1;
  }
  if (rc < 0) {
    close_fds(fds, n);
    snprintf(err, errlen, "cannot listen inside the sandbox: %s", uv_strerror(rc));
    return rc;
  }
  struct awf_dns_server_config dc;
  dns_config(s, &dc);
  for (size_t i = 0; i < 2; i++) {
    int u = fds[SK_DNS4_UDP + 2 * i], t = fds[SK_DNS4_TCP + 2 * i];
    fds[SK_DNS4_UDP + 2 * i] = fds[SK_DNS4_TCP + 2 * i] = -1;
    if (rc == 0)
      rc = awf_dns_server_new_fds(&s->loop, &dc, u, t, &s->dns[i]);
    else {
      close(u);
      close(t);
    }
  }
  if (rc < 0) {
    close_fds(fds, n);
    snprintf(err, errlen, "cannot start the DNS server inside the sandbox: %s", strerror(-rc));
    return rc;
  }
  if (fds[SK_NFLOG] >= 0 &&
      awf_refused_start(&s->loop, fds[SK_NFLOG], s->log, s->denials, &s->refused) < 0)
    fprintf(stderr, "awf: warning: refused packets will not be logged: %s\n", strerror(ENOMEM));
  return 0;
}

/* Rootless, outside: the ids are mapped ('m'); the sandbox sends the sockets
 * of its network ('S'); the engine takes them, and the UNIX gate (in the
 * sandbox's PID 1) gets the access log's report pipe with the go ('g'). */
static int rootless_setup(struct supervisor *s, int chan, char *err, size_t errlen) {
  int fds[SK_N], wire[SK_N];
  size_t n;
  char tag = 0;
  size_t nep = s->plan->cli->proxy.n_endpoints;
  int rc = awf_fdpass_send(chan, 'm', NULL, 0);
  if (rc == 0)
    rc = awf_fdpass_recv(chan, &tag, wire, SK_FIXED + nep, SK_FIXED + nep + 1, &n);
  if (rc < 0 || tag != 'S') {
    if (rc == 0)
      close_fds(wire, n);
    err[0] = '\0'; /* the sandbox said why on stderr */
    return rc < 0 ? rc : -EPROTO;
  }
  for (size_t i = 0; i < SK_N; i++)
    fds[i] = -1;
  memcpy(fds, wire, sizeof(int) * SK_FIXED);
  for (size_t i = 0; i < nep; i++)
    fds[SK_EP0 + i] = wire[SK_FIXED + i];
  if (n > SK_FIXED + nep)
    fds[SK_NFLOG] = wire[n - 1];
  rc = adopt_sandbox_sockets(s, fds, SK_N, err, errlen);
  if (rc < 0)
    return rc;
  int report = -1;
  if (awf_unixlog_start(&s->loop, s->log, s->denials, &report, &s->unixlog) < 0)
    fprintf(stderr, "awf: warning: refused UNIX socket connections will not be logged\n");
  rc = awf_fdpass_send(chan, 'g', &report, report >= 0 ? 1 : 0);
  if (report >= 0)
    close(report);
  if (rc < 0)
    snprintf(err, errlen, "cannot start the sandbox: %s", strerror(-rc));
  return rc;
}

/* Called while this thread is inside the sandbox's network namespace: every
 * socket made here belongs to it for good, while the engine and its upstream
 * connections stay in awf's own namespace. */
static int listen_in_sandbox(struct supervisor *s, char *err, size_t errlen) {
  struct sockaddr_storage a;
  char text[AWF_ADDRSTRLEN];
  int rc = loopback_addr(AF_INET, AWF_SANDBOX_PROXY_PORT, &a);
  if (rc == 0)
    rc = awf_proxy_listen(s->proxy, (struct sockaddr *)&a, NULL);
  for (size_t i = 0; rc == 0 && i < 2; i++) {
    loopback_addr(families[i], AWF_SANDBOX_TRANSPARENT_PORT, &a);
    rc = awf_proxy_listen_transparent(s->proxy, (struct sockaddr *)&a, NULL);
  }
  const struct awf_options *o = &s->plan->cli->proxy;
  for (size_t i = 0; rc == 0 && i < o->n_endpoints; i++) {
    loopback_addr(AF_INET, (uint16_t)(AWF_SANDBOX_ENDPOINT_PORT + i), &a);
    rc = awf_proxy_listen_endpoint(s->proxy, (struct sockaddr *)&a, NULL, &o->endpoints[i]);
  }
  if (rc < 0) {
    snprintf(err, errlen, "cannot listen on %s inside the sandbox: %s",
             awf_sockaddr_format((struct sockaddr *)&a, text, sizeof(text)), uv_strerror(rc));
    return rc;
  }
  struct awf_dns_server_config dc;
  dns_config(s, &dc);
  for (size_t i = 0; rc == 0 && i < 2; i++) {
    loopback_addr(families[i], AWF_SANDBOX_DNS_PORT, &a);
    rc = awf_dns_server_new(&s->loop, &dc, (struct sockaddr *)&a, NULL, &s->dns[i]);
  }
  if (rc < 0) {
    snprintf(err, errlen, "cannot start the DNS server on %s inside the sandbox: %s",
             awf_sockaddr_format((struct sockaddr *)&a, text, sizeof(text)), strerror(-rc));
    return rc;
  }
  if ((s->unix_diag = awf_unixgate_diag_socket()) < 0) {
    rc = s->unix_diag;
    snprintf(err, errlen, "cannot list the sandbox's UNIX sockets: %s", strerror(-rc));
    return rc;
  }
  /* The firewall's reports of what it refused arrive in this namespace. */
  int fd = awf_nflog_open(AWF_NFLOG_GROUP);
  if (fd < 0 || awf_refused_start(&s->loop, fd, s->log, s->denials, &s->refused) < 0)
    fprintf(stderr, "awf: warning: refused packets will not be logged: %s\n",
            strerror(fd < 0 ? -fd : ENOMEM));
  return 0;
}

static void start_signals(struct supervisor *s) {
  uv_signal_init(&s->loop, &s->sig_chld);
  s->sig_chld.data = s;
  uv_signal_start(&s->sig_chld, on_sigchld, SIGCHLD);
  for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
    uv_signal_init(&s->loop, &s->fwd[i]);
    s->fwd[i].data = s;
    uv_signal_start(&s->fwd[i], on_forward, forwarded[i]);
  }
  uv_timer_init(&s->loop, &s->timeout);
  s->timeout.data = s;
  if (s->plan->cli->agent_timeout_ms)
    uv_timer_start(&s->timeout, on_timeout, s->plan->cli->agent_timeout_ms, 0);
}

/* The summary is counted in memory and stays whole; the log is not. awf's
 * status stays the command's. */
static void warn_log_incomplete(const char *path, unsigned long lost, int err, bool summary) {
  fprintf(stderr,
          "awf: warning: the access log is incomplete: %lu record%s could not be written to %s",
          lost, lost == 1 ? "" : "s",
          !path || strcmp(path, "-") == 0 ? "standard output" : path);
  if (err < 0)
    fprintf(stderr, " (%s)", strerror(-err));
  fprintf(stderr, "%s\n",
          summary ? "; the denials listed above are complete (counted in "
                    "memory), the log is not"
                  : "");
}

int awf_supervise(const struct awf_sandbox_plan *plan) {
  struct supervisor s;
  char err[1024] = "";
  memset(&s, 0, sizeof(s));
  s.plan = plan;
  s.exit_status = AWF_EXIT_FAILURE;
  s.denials = awf_denials_new();
  if (!s.denials || uv_loop_init(&s.loop) < 0) {
    fprintf(stderr, "awf: out of memory\n");
    return AWF_EXIT_FAILURE;
  }
  /* Signals that arrive before the loop watches them must not kill awf and
   * leave the sandbox orphaned: uv_signal handlers are installed first. */
  start_signals(&s);

  int go[2];
  s.unix_diag = -1;
  /* go: the sandbox waits on it; rootless, both sides talk over it (fdpass.h). */
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, gate_channel) < 0 ||
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, go) < 0) {
    fprintf(stderr, "awf: socketpair: %s\n", strerror(errno));
    return AWF_EXIT_FAILURE;
  }
  /* clone(2) without a new stack behaves like fork(2), with namespaces; a
   * user namespace, rootless, is made first and owns the others. */
  pid_t pid = (pid_t)syscall(SYS_clone,
                             CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                                 CLONE_NEWUTS | SIGCHLD | (plan->rootless ? CLONE_NEWUSER : 0),
                             NULL, NULL, NULL, NULL);
  if (pid < 0 && plan->rootless) {
    int e = errno;
    struct awf_userns_facts f;
    awf_userns_gather(&f);
    f.err = e;
    awf_userns_explain(&f, err, sizeof(err));
    fprintf(stderr, "awf: rootless: cannot create the sandbox's user namespace: %s\n", err);
  } else if (pid < 0) {
    fprintf(stderr,
            "awf: cannot create the sandbox's namespaces: %s (awf needs root and a "
            "kernel with mount, PID, network, IPC and UTS namespaces)\n",
            strerror(errno));
  }
  if (pid < 0) {
    for (size_t i = 0; i < 2; i++) {
      close(go[i]);
      close(gate_channel[i]);
      gate_channel[i] = -1;
    }
    stop_all(&s); /* only the signal handles are open */
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_loop_close(&s.loop);
    awf_denials_free(s.denials);
    return AWF_EXIT_FAILURE;
  }
  if (pid == 0) {
    close(go[1]);
    if (!plan->rootless) { /* rootless, the gate is the sandbox's PID 1's */
      close(gate_channel[0]);
      gate_channel[0] = -1;
    }
    sandbox_main(plan, go[0]);
  }
  close(go[0]);
  close(gate_channel[1]);
  if (plan->rootless) { /* the gate runs in the sandbox's PID 1 */
    close(gate_channel[0]);
    gate_channel[0] = -1;
  }
  s.child = pid;
  int saved_stderr = awf_ttystate_stderr_unblock(); /* the command has the original */
  /* A client that closes before reading its answer, an origin that resets
   * mid-upload, a log pipe no one reads: EPIPE, never a signal that ends awf
   * (and the sandbox with it). Set after the clone, so the command keeps the
   * disposition awf was started with. */
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_DUMPABLE, 0); /* nothing in the sandbox may ptrace or read awf */
  if (!plan->cli->no_step_summary)
    s.summary = awf_stepsummary_new(getenv("GITHUB_STEP_SUMMARY"));

  int home_ns = -1;
  awf_cgroup *cg = NULL; /* before the sandbox runs anything: all of it is limited */
  int rc = plan->rootless ? awf_userns_write_maps(pid, plan->uid, plan->gid, err, sizeof(err))
                          : 0;
  if (rc == 0)
    rc = awf_cgroup_create(&plan->cli->limits, &cg, err, sizeof(err));
  if (rc == 0)
    rc = awf_cgroup_attach(cg, pid, err, sizeof(err));
  if (rc == 0)
    rc = start_services(&s, err, sizeof(err));
  if (rc == 0 && plan->rootless)
    rc = rootless_setup(&s, go[1], err, sizeof(err));
  else if (rc == 0)
    rc = awf_step_enter_sandbox_net(pid, &home_ns, err, sizeof(err));
  if (rc == 0 && !plan->rootless) {
    rc = awf_step_configure_sandbox_net(plan->cli, err, sizeof(err));
    if (rc == 0)
      rc = listen_in_sandbox(&s, err, sizeof(err));
    char err2[256];
    if (awf_step_leave_sandbox_net(home_ns, err2, sizeof(err2)) < 0) {
      /* awf's own connections would go nowhere: nothing sensible is left */
      fprintf(stderr, "awf: %s\n", err2);
      kill(pid, SIGKILL);
      _exit(AWF_EXIT_FAILURE);
    }
  }
  if (rc == 0)
    rc = start_workers(&s, err, sizeof(err));
  if (rc == 0 && !plan->rootless)
    rc = start_unix_gate(&s, err, sizeof(err));
  /* The sandbox takes it before 'g' (root) or after (rootless: 'g' came
   * with the report pipe in rootless_setup). */
  if (rc == 0 && awf_options_intercepts(&plan->cli->proxy))
    rc = send_trust(&s, go[1], err, sizeof(err));
  if (rc < 0) {
    if (err[0])
      fprintf(stderr, "awf: %s\n", err);
    close(go[1]); /* the sandbox sees EOF and exits */
    kill(pid, SIGKILL);
    s.exit_status = AWF_EXIT_FAILURE;
    s.timed_out = false;
    stop_all(&s);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    awf_workers_free(s.workers);
    awf_proxy_group_free(s.group);
    waitpid(pid, NULL, 0);
    awf_unixgate_stop(s.unix_gate);
    if (s.unix_diag >= 0)
      close(s.unix_diag);
    if (gate_channel[0] >= 0)
      close(gate_channel[0]);
    awf_cgroup_finish(cg, AWF_EXIT_FAILURE);
    uv_loop_close(&s.loop);
    awf_logfile_close(s.log);
    awf_denials_free(s.denials);
    awf_dns_memory_free(s.dns_memory);
    awf_intercept_free(s.intercept);
    awf_stepsummary_free(s.summary);
    awf_ttystate_stderr_block(saved_stderr);
    return AWF_EXIT_FAILURE;
  }
  if (!plan->rootless && write(go[1], "g", 1) != 1) {
    fprintf(stderr, "awf: cannot start the sandbox: %s\n", strerror(errno));
    kill(pid, SIGKILL);
  }
  close(go[1]);

  uv_run(&s.loop, UV_RUN_DEFAULT);
  /* The command is gone. It may have stopped the terminal's output: awf's
   * own lines below (the OOM report, the summary) would block on it. */
  if (plan->tty)
    awf_ttystate_restore(plan->tty);
  awf_ttystate_stderr_block(saved_stderr);
  awf_unixgate_stop(s.unix_gate);
  awf_cgroup_finish(cg, s.exit_status);
  uv_loop_close(&s.loop);
  awf_workers_free(s.workers); /* their last lines reach the log first */
  awf_proxy_group_free(s.group);
  int log_err;
  unsigned long lost = awf_logfile_finish(s.log, &log_err);
  awf_logfile_close(s.log);
  awf_denials_print(s.denials, stderr);
  if (lost)
    warn_log_incomplete(plan->cli->proxy.log_file, lost, log_err,
                        awf_denials_count(s.denials) > 0);
  awf_denials_free(s.denials);
  if (s.summary && awf_stepsummary_write(s.summary, plan->uid, plan->gid, plan->groups,
                                         plan->ngroups, err, sizeof(err)) < 0)
    fprintf(stderr, "awf: warning: GITHUB_STEP_SUMMARY: %s\n", err);
  awf_stepsummary_free(s.summary);
  awf_dns_memory_free(s.dns_memory);
  awf_intercept_free(s.intercept);
  return s.exit_status;
}
