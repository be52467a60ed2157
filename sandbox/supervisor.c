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
#include "host_access.h"
#include "logfile.h"
#include "netaddr.h"
#include "nflog.h"
#include "proxy.h"
#include "refused.h"
#include "unixlog.h"
#include "resolver.h"
#include "privileges.h"
#include "rootfs.h"
#include "sandbox_steps.h"
#include "seccomp_filter.h"
#include "stepsummary.h"
#include "ttystate.h"
#include "unixgate.h"

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
  awf_dns_server *dns[2];   /* IPv4 and IPv6 */
  awf_refused *refused;     /* what the sandbox's firewall refused (may be NULL) */
  awf_unixlog *unixlog;     /* the UNIX gate's decisions (may be NULL) */
  awf_denials *denials;
  awf_dns_memory *dns_memory; /* --allow-ssh: the names answered per address */
  awf_stepsummary *summary; /* GITHUB_STEP_SUMMARY (may be NULL) */
  uv_signal_t sig_chld;
  uv_signal_t fwd[7];
  uv_timer_t timeout;
  unsigned dns_open;
  awf_unixgate *unix_gate;
  int unix_diag;            /* NETLINK_SOCK_DIAG made in the sandbox's namespace */
  struct awf_host_access host; /* --enable-host-access: the host's services */
};

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

/* ---- inside the new namespaces -------------------------------------------- */

static int gate_channel[2] = {-1, -1}; /* the filter's listener, command -> awf */

static int prepare_command(void *arg) {
  const struct awf_sandbox_plan *plan = arg;
  char err[512];
  int listener = -1;
  if (awf_privileges_drop(plan->uid, plan->gid, plan->groups, plan->ngroups, err,
                          sizeof(err)) < 0 ||
      awf_seccomp_install_gated(&listener, err, sizeof(err)) < 0) {
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

__attribute__((noreturn)) static void sandbox_main(const struct awf_sandbox_plan *plan,
                                                   int go_fd) {
  char err[1024];
  /* If awf dies, so does the sandbox: PID 1 dying ends the namespace. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  char go;
  ssize_t n;
  do
    n = read(go_fd, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1)
    _exit(AWF_EXIT_FAILURE); /* awf gave up (its error is already printed) */
  close(go_fd);
  if (sethostname(AWF_SANDBOX_HOSTNAME, strlen(AWF_SANDBOX_HOSTNAME)) < 0 ||
      awf_rootfs_build(&plan->rootfs, err, sizeof(err)) < 0) {
    fprintf(stderr, "awf: %s\n", err[0] ? err : strerror(errno));
    _exit(AWF_EXIT_FAILURE);
  }
  /* The access log, where the sandbox shows it: read-only, unremovable. */
  if (awf_logprotect_apply(&plan->log, err, sizeof(err)) < 0) {
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
  rc = awf_logfile_write_run(s->log, AWF_VERSION, (const char *const *)s->plan->command.argv);
  if (rc < 0)
    fprintf(stderr, "awf: warning: access log write failed: %s\n", strerror(-rc));
  struct awf_proxy_config cfg;
  awf_options_to_config(&cli->proxy, &cfg);
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
  rc = awf_proxy_new(&s->loop, &cfg, &s->proxy);
  if (rc < 0) {
    snprintf(err, errlen, "cannot start the proxy: %s", strerror(-rc));
    return rc;
  }
  return 0;
}

static const int families[2] = {AF_INET, AF_INET6}; /* index = s->dns[] slot */

/* 127.0.0.1 or [::1] with this port. */
static int loopback_addr(int family, uint16_t port, struct sockaddr_storage *a) {
  memset(a, 0, sizeof(*a));
  if (family == AF_INET)
    return uv_ip4_addr("127.0.0.1", port, (struct sockaddr_in *)a);
  return uv_ip6_addr("::1", port, (struct sockaddr_in6 *)a);
}

/* After the sandbox's network is up: the gate answers the command's connects. */
static int start_unix_gate(struct supervisor *s, char *err, size_t errlen) {
  const struct awf_sandbox_plan *p = s->plan;
  struct awf_unixgate_config gc = {p->uid, p->gid, p->groups, p->ngroups,
                                   p->cli->allow_unix_sockets, -1};
  /* The gate's decisions reach the access log and the summary through a pipe. */
  if (awf_unixlog_start(&s->loop, s->log, s->denials, &gc.report_fd, &s->unixlog) < 0)
    fprintf(stderr, "awf: warning: refused UNIX socket connections will not be logged\n");
  int rc = awf_unixgate_start(&gc, gate_channel[0], s->unix_diag, &s->unix_gate, err, errlen);
  gate_channel[0] = s->unix_diag = -1; /* the gate's now, even on failure */
  return rc;
}

/* Called while this thread is inside the sandbox's network namespace: every
 * socket made here belongs to it for good, while the engine and its upstream
 * connections stay in awf's own namespace. */
static int listen_in_sandbox(struct supervisor *s, char *err, size_t errlen) {
  const struct awf_cli *cli = s->plan->cli;
  struct sockaddr_storage a;
  char text[AWF_ADDRSTRLEN];
  int rc = loopback_addr(AF_INET, AWF_SANDBOX_PROXY_PORT, &a);
  if (rc == 0)
    rc = awf_proxy_listen(s->proxy, (struct sockaddr *)&a, NULL);
  for (size_t i = 0; rc == 0 && i < 2; i++) {
    loopback_addr(families[i], AWF_SANDBOX_TRANSPARENT_PORT, &a);
    rc = awf_proxy_listen_transparent(s->proxy, (struct sockaddr *)&a, NULL);
  }
  if (rc < 0) {
    snprintf(err, errlen, "cannot listen on %s inside the sandbox: %s",
             awf_sockaddr_format((struct sockaddr *)&a, text, sizeof(text)), uv_strerror(rc));
    return rc;
  }
  struct awf_dns_server_config dc;
  memset(&dc, 0, sizeof(dc));
  dc.acl = cli->proxy.acl;
  dc.policy = cli->proxy.policy;
  dc.resolver = s->resolver;
  dc.log = s->log;
  dc.audit = cli->proxy.audit;
  dc.denials = s->denials;
  dc.ssh_acl = cli->proxy.ssh_acl;
  dc.memory = s->dns_memory;
  dc.host_access = cli->host_access ? &s->host : NULL;
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
          lost, lost == 1 ? "" : "s", !path || strcmp(path, "-") == 0 ? "standard output" : path);
  if (err < 0)
    fprintf(stderr, " (%s)", strerror(-err));
  fprintf(stderr, "%s\n", summary ? "; the denials listed above are complete (counted in "
                                     "memory), the log is not" : "");
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
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, gate_channel) < 0 ||
      pipe2(go, O_CLOEXEC) < 0) {
    fprintf(stderr, "awf: pipe: %s\n", strerror(errno));
    return AWF_EXIT_FAILURE;
  }
  /* clone(2) without a new stack behaves like fork(2), with namespaces. */
  pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
                                            CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD,
                             NULL, NULL, NULL, NULL);
  if (pid < 0) {
    fprintf(stderr, "awf: cannot create the sandbox's namespaces: %s (awf needs root and a "
                    "kernel with mount, PID, network, IPC and UTS namespaces)\n",
            strerror(errno));
    return AWF_EXIT_FAILURE;
  }
  if (pid == 0) {
    close(go[1]);
    close(gate_channel[0]);
    sandbox_main(plan, go[0]);
  }
  close(go[0]);
  close(gate_channel[1]);
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
  awf_cgroup *cg; /* before the sandbox runs anything: all of it is limited */
  int rc = awf_cgroup_create(&plan->cli->limits, &cg, err, sizeof(err));
  if (rc == 0)
    rc = awf_cgroup_attach(cg, pid, err, sizeof(err));
  if (rc == 0)
    rc = start_services(&s, err, sizeof(err));
  if (rc == 0)
    rc = awf_step_enter_sandbox_net(pid, &home_ns, err, sizeof(err));
  if (rc == 0) {
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
    rc = start_unix_gate(&s, err, sizeof(err));
  if (rc < 0) {
    fprintf(stderr, "awf: %s\n", err);
    close(go[1]); /* the sandbox sees EOF and exits */
    kill(pid, SIGKILL);
    s.exit_status = AWF_EXIT_FAILURE;
    s.timed_out = false;
    stop_all(&s);
    uv_run(&s.loop, UV_RUN_DEFAULT);
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
    awf_stepsummary_free(s.summary);
    awf_ttystate_stderr_block(saved_stderr);
    return AWF_EXIT_FAILURE;
  }
  if (write(go[1], "g", 1) != 1) {
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
  return s.exit_status;
}
