/* listener.c: the engine's outer layer: listening sockets, accepting under a
 * connection cap and the client limits, classifying a redirected connection
 * (which mode takes it), and shutdown. A connection's life is conn.c's; its
 * work is the modes' (http_proxy.c, tunnel.c, ssh_gate.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>

#include "conn.h"
#include "host_access.h"
#include "http_proxy.h"
#include "ssh_gate.h"
#include "tunnel.h"

struct listener {
  uv_tcp_t tcp;
  awf_proxy *proxy;
  struct awf_list link; /* in awf_proxy.listeners */
  bool transparent;     /* connections were redirected here by nftables */
  /* Base-URL mode (--secret-endpoint): plain HTTP for this upstream only. */
  const struct awf_secret_endpoint *endpoint;
  bool paused; /* a connection is waiting in the kernel queue (at the cap) */
};

static void on_log_write_failed(void *arg, int err) { conn_log_failed(arg, err); }

static void maybe_finish_shutdown(awf_proxy *p);
static void resume_accepting(awf_proxy *p);
static void on_failed_listener_closed(uv_handle_t *h);

/* From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>,
 * which clash with <netinet/in.h>. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

/* Where the client meant to go, before the redirect. */
static int original_dst(uv_tcp_t *tcp, struct sockaddr_storage *out) {
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)tcp, &fd) < 0)
    return -EBADF;
  struct sockaddr_storage local;
  socklen_t len = sizeof(local);
  if (getsockname(fd, (struct sockaddr *)&local, &len) < 0)
    return -errno;
  len = sizeof(*out);
  memset(out, 0, sizeof(*out));
  int rc = local.ss_family == AF_INET6
               ? getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, out, &len)
               : getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, out, &len);
  if (rc < 0)
    return -errno;
  /* Without a redirect, conntrack reports the listener's own address. */
  if (awf_sockaddr_equal((struct sockaddr *)out, (struct sockaddr *)&local))
    return -ENOENT;
  return 0;
}

static void conn_deny_port(struct conn *c, enum awf_reason reason) {
  conn_log_refusal(c, NULL, reason);
  conn_close(c);
}

static int start_transparent(struct conn *c, struct listener *l) {
  awf_proxy *p = l->proxy;
  c->transparent = true;
  int rc = original_dst(&c->client_handle, &c->orig_dst);
  if (rc < 0) {
    memset(&c->orig_dst, 0, sizeof(c->orig_dst));
    conn_log_refusal(c, NULL, AWF_REASON_NOT_REDIRECTED);
    conn_close(c);
    return 0;
  }
  awf_sockaddr_format((struct sockaddr *)&c->orig_dst, c->orig_dst_addr,
                      sizeof(c->orig_dst_addr));
  /* The original port says what the connection carries (policy.h). */
  struct awf_ask_facts f = {.kind = AWF_ASK_PORT,
                            .dst = (struct sockaddr *)&c->orig_dst,
                            .port = awf_sockaddr_port((struct sockaddr *)&c->orig_dst)};
  struct awf_verdict v = awf_policy_judge(&p->policy, &f);
  switch (v.mode) {
  case AWF_MODE_HOST: rc = tunnel_start_host(c); break;
  case AWF_MODE_SSH: rc = ssh_conn_start(c); break;
  case AWF_MODE_TLS: rc = tunnel_start_transparent(c); break;
  case AWF_MODE_HTTP: rc = http_conn_start(c); break;
  case AWF_MODE_NONE: conn_deny_port(c, v.reason); return 0;
  }
  if (rc < 0)
    conn_close(c);
  return 0;
}

#define CLIENT_LIMIT_LOG_MS 1000

static void on_refused_closed(uv_handle_t *h) { free(h->data); }

/* Reset at once (TCP RST, nothing read): costs nothing under a flood. */
static void reset_refused(struct conn *c) {
  if (uv_tcp_close_reset(&c->client_handle, on_refused_closed) < 0)
    uv_close((uv_handle_t *)&c->client_handle, on_refused_closed);
}

/* --allow-clients: a client outside the list is reset like one over its
 * limit, before it counts anywhere. Logged at most once a second in all, so
 * that a scan from many addresses cannot fill the log. Returns true when c
 * was refused (and is being freed). */
static bool refuse_unlisted_client(awf_proxy *p, struct conn *c, const struct sockaddr *peer) {
  if (peer && awf_addr_policy_listed(p->cfg.allow_clients, peer))
    return false;
  if (group_unlisted_log_due(p, uv_now(p->loop), CLIENT_LIMIT_LOG_MS)) {
    if (peer)
      awf_sockaddr_format(peer, c->client_addr, sizeof(c->client_addr));
    else
      snprintf(c->client_addr, sizeof(c->client_addr), "unknown");
    conn_log_refusal(c, NULL, AWF_REASON_CLIENT_NOT_ALLOWED);
    awf_proxy_diag(p, AWF_LOG_WARN,
                   "client %s is not in --allow-clients; resetting its "
                   "connections",
                   c->client_addr);
  }
  reset_refused(c);
  return true;
}

/* Count the new connection against its client's limit. A client over it is
 * reset at once, before the connection counts towards max_connections: a
 * flood from one client is drained from the kernel queue and can never
 * pause accepting for the others. Logged at most once a second per client.
 * Returns true when c was refused (and is being freed). */
static bool refuse_over_client_limit(awf_proxy *p, struct conn *c,
                                     const struct sockaddr *peer) {
  awf_client_entry *e = NULL;
  bool log_refusal;
  int rc = awf_client_limits_admit(p->client_limits, peer, uv_now(p->loop), CLIENT_LIMIT_LOG_MS,
                                   &e, &log_refusal);
  if (rc != -EDQUOT) {
    c->client_entry = rc == 0 ? e : NULL; /* not counted: admitted all the same */
    return false;
  }
  if (log_refusal) {
    awf_sockaddr_format(peer, c->client_addr, sizeof(c->client_addr));
    conn_log_refusal(c, NULL, AWF_REASON_CLIENT_LIMIT);
    awf_proxy_diag(
        p, AWF_LOG_WARN,
        "client %s holds %u connections (--max-connections-per-client); resetting more",
        c->client_addr, p->cfg.max_connections_per_client);
  }
  reset_refused(c);
  return true;
}

/* Accept one connection, for which a place under the cap was taken
 * (group_take); a connection that does not open gives it back. */
static int accept_one(struct listener *l) {
  awf_proxy *p = l->proxy;
  struct conn *c = calloc(1, sizeof(*c));
  if (!c) {
    group_give(p);
    return UV_ENOMEM;
  }
  c->proxy = p;
  c->id = awf_log_next_conn();
  uv_tcp_init(p->loop, &c->client_handle);
  c->client_handle.data = c;
  int rc = uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&c->client_handle);
  if (rc < 0) {
    uv_close((uv_handle_t *)&c->client_handle, on_refused_closed); /* before its memory goes */
    group_give(p);
    return rc;
  }
  struct sockaddr_storage peer;
  int len = sizeof(peer);
  bool have_peer = uv_tcp_getpeername(&c->client_handle, (struct sockaddr *)&peer, &len) == 0;
  if ((p->cfg.allow_clients &&
       refuse_unlisted_client(p, c, have_peer ? (struct sockaddr *)&peer : NULL)) ||
      (have_peer && p->client_limits &&
       refuse_over_client_limit(p, c, (struct sockaddr *)&peer))) {
    group_give(p);
    return 0;
  }
  conn_open_tcp(c, p);

  if (have_peer)
    awf_sockaddr_format((struct sockaddr *)&peer, c->client_addr, sizeof(c->client_addr));
  else
    snprintf(c->client_addr, sizeof(c->client_addr), "unknown");
  uv_tcp_nodelay(&c->client_handle, 1);
  if (l->transparent)
    return start_transparent(c, l);
  if (l->endpoint ? http_conn_start_endpoint(c, l->endpoint) < 0 : http_conn_start(c) < 0)
    conn_close(c);
  return 0;
}

static void on_connection(uv_stream_t *server, int status) {
  struct listener *l = server->data;
  awf_proxy *p = l->proxy;
  if (status < 0) {
    awf_proxy_diag(p, AWF_LOG_WARN, "accept: %s", uv_strerror(status));
    return;
  }
  if (p->shutting_down)
    return;
  /* At the cap, leaving the connection unaccepted makes libuv stop polling
   * this listener until uv_accept is called again: no busy loop. */
  if (!group_take(p)) {
    if (!l->paused)
      awf_proxy_diag(p, AWF_LOG_WARN, "connection limit (%u) reached; accepting paused",
                     p->cfg.max_connections);
    l->paused = true;
    return;
  }
  accept_one(l);
}

static void resume_accepting(awf_proxy *p) {
  struct awf_list *it;
  awf_list_each(it, &p->listeners) {
    struct listener *l = awf_list_entry(it, struct listener, link);
    if (!l->paused || p->shutting_down)
      continue;
    if (!group_take(p))
      return;
    l->paused = false;
    accept_one(l);
  }
}

/* A connection is gone (conn.c): room for one more, or the last one. */
static void on_conn_released(awf_proxy *p) {
  group_give(p);
  resume_accepting(p);
  maybe_finish_shutdown(p);
}

/* Another engine of the group made room under the shared cap. */
static void on_wake(uv_async_t *h) { resume_accepting(h->data); }

static void on_log_flush(uv_prepare_t *h) {
  awf_proxy *p = h->data;
  int rc = awf_logfile_flush(p->cfg.log);
  if (rc < 0)
    conn_log_failed(p, rc);
}

int awf_proxy_new(uv_loop_t *loop, const struct awf_proxy_config *cfg, awf_proxy **out) {
  awf_proxy *p = calloc(1, sizeof(*p));
  if (!p)
    return -ENOMEM;
  p->loop = loop;
  p->cfg = *cfg;
  p->metrics = cfg->metrics ? cfg->metrics : &p->own_metrics;
  p->conn_released = on_conn_released;
  p->start_intercepted = http_conn_start_intercepted;
  p->policy = (struct awf_policy){.acl = p->cfg.acl,
                                  .ssh_acl = p->cfg.ssh_acl,
                                  .allow_ports = &p->cfg.allow_ports,
                                  .tls_ports = &p->cfg.tls_ports,
                                  .http_ports = &p->cfg.http_ports,
                                  .host_access = p->cfg.host_access,
                                  .url_rules = p->cfg.url_rules,
                                  .dlp = p->cfg.dlp,
                                  .audit = p->cfg.audit,
                                  .secrets = p->cfg.secrets,
                                  .secret_allow_plaintext = p->cfg.secret_allow_plaintext};
  p->events = (struct awf_event_sink){.log = p->cfg.log,
                                      .denials = p->cfg.denials,
                                      .write_failed = on_log_write_failed,
                                      .write_failed_arg = p,
                                      .dlp = p->cfg.dlp,
                                      .metrics = p->metrics};
  awf_list_init(&p->listeners);
  awf_list_init(&p->conns);
  if (!p->cfg.max_connections)
    p->cfg.max_connections = 4096;
  /* First, while nothing needs a loop turn to be undone. */
  if (p->cfg.group) {
    p->client_limits = group_client_limits(p->cfg.group);
    if (group_join(p, on_wake) < 0) {
      free(p);
      return -ENOMEM;
    }
    p->open_handles++;
  } else if (p->cfg.max_connections_per_client &&
             p->cfg.max_connections_per_client < p->cfg.max_connections) {
    p->client_limits = awf_client_limits_new(p->cfg.max_connections_per_client,
                                             p->cfg.max_connections,
                                             uv_hrtime() ^ (uint64_t)(uintptr_t)p);
    if (!p->client_limits) {
      free(p);
      return -ENOMEM;
    }
  }
  uv_timer_init(loop, &p->grace_timer);
  p->grace_timer.data = p;
  p->open_handles++;
  /* Access-log lines of one loop iteration leave in one write, just before
   * the loop waits again, instead of a write(2) per request. The handle
   * never keeps the loop alive by itself. */
  uv_prepare_init(loop, &p->log_flush);
  p->log_flush.data = p;
  p->open_handles++;
  if (p->cfg.log) {
    awf_logfile_set_batching(p->cfg.log, true);
    uv_prepare_start(&p->log_flush, on_log_flush);
  }
  uv_unref((uv_handle_t *)&p->log_flush);
  p->upool = awf_upool_new(loop);
  if (p->upool)
    p->open_handles++;
  *out = p;
  return 0;
}

void awf_proxy_set_rules(awf_proxy *p, const awf_acl *acl, const awf_url_rules *url_rules,
                         const struct awf_port_set *allow_ports) {
  p->cfg.acl = acl;
  p->cfg.url_rules = url_rules;
  p->cfg.allow_ports = *allow_ports; /* p->policy.allow_ports points here */
  p->policy.acl = acl;
  p->policy.url_rules = url_rules;
}

/* A listener whose socket is set up by `open` (bind here, or adopt an fd),
 * then listening and on the engine's list. */
static int add_listener(awf_proxy *p, bool transparent,
                        const struct awf_secret_endpoint *endpoint,
                        int (*open)(uv_tcp_t *tcp, const void *arg), const void *arg,
                        uv_tcp_t **tcp) {
  struct listener *l = calloc(1, sizeof(*l));
  if (!l)
    return UV_ENOMEM;
  l->proxy = p;
  l->transparent = transparent;
  l->endpoint = endpoint;
  uv_tcp_init(p->loop, &l->tcp);
  l->tcp.data = l;
  int rc = open(&l->tcp, arg);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
  if (rc < 0) {
    uv_close((uv_handle_t *)&l->tcp, on_failed_listener_closed);
    return rc;
  }
  awf_list_push_front(&p->listeners, &l->link);
  p->open_handles++;
  if (tcp)
    *tcp = &l->tcp;
  return 0;
}

/* The socket is created here, in the calling thread's network namespace, and
 * keeps it: awf calls this from inside the sandbox's namespace. */
static int bind_addr(uv_tcp_t *tcp, const void *arg) {
  const struct sockaddr *addr = arg;
  return uv_tcp_bind(tcp, addr, addr->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
}

static int listen_on(awf_proxy *p, const struct sockaddr *addr, struct sockaddr_storage *bound,
                     bool transparent, const struct awf_secret_endpoint *endpoint) {
  uv_tcp_t *tcp;
  int rc = add_listener(p, transparent, endpoint, bind_addr, addr, &tcp);
  if (rc == 0 && bound) {
    int len = sizeof(*bound);
    uv_tcp_getsockname(tcp, (struct sockaddr *)bound, &len);
  }
  return rc;
}

/* A socket bound elsewhere (inside a network namespace awf cannot enter:
 * rootless awf, supervisor.c) keeps the namespace it was made in. */
static int adopt_fd(uv_tcp_t *tcp, const void *arg) {
  int fd = *(const int *)arg;
  int rc = uv_tcp_open(tcp, fd);
  if (rc < 0)
    close(fd); /* not the handle's */
  return rc;
}

struct awf_metrics *awf_proxy_metrics(awf_proxy *p) {
  return p->metrics;
}

int awf_proxy_listen_fd(awf_proxy *p, int fd, bool transparent) {
  return add_listener(p, transparent, NULL, adopt_fd, &fd, NULL);
}

int awf_proxy_listen_endpoint_fd(awf_proxy *p, int fd, const struct awf_secret_endpoint *ep) {
  return add_listener(p, false, ep, adopt_fd, &fd, NULL);
}

int awf_proxy_listen_endpoint(awf_proxy *p, const struct sockaddr *addr,
                              struct sockaddr_storage *bound,
                              const struct awf_secret_endpoint *ep) {
  return listen_on(p, addr, bound, false, ep);
}

int awf_proxy_listen(awf_proxy *p, const struct sockaddr *addr,
                     struct sockaddr_storage *bound) {
  return listen_on(p, addr, bound, false, NULL);
}

int awf_proxy_listen_transparent(awf_proxy *p, const struct sockaddr *addr,
                                 struct sockaddr_storage *bound) {
  return listen_on(p, addr, bound, true, NULL);
}

int awf_proxy_listen_dup(awf_proxy *p, int fd, bool transparent) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0)
    return uv_translate_sys_error(errno);
  return awf_proxy_listen_fd(p, copy, transparent);
}

int awf_proxy_share_listeners(awf_proxy *from, awf_proxy *to) {
  struct awf_list *it;
  awf_list_each(it, &from->listeners) {
    struct listener *l = awf_list_entry(it, struct listener, link);
    uv_os_fd_t fd;
    int rc = uv_fileno((uv_handle_t *)&l->tcp, &fd);
    if (rc < 0)
      return rc;
    /* The same kind: a --secret-endpoint listener stays one on every engine. */
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0)
      return uv_translate_sys_error(errno);
    rc = l->endpoint ? awf_proxy_listen_endpoint_fd(to, copy, l->endpoint)
                     : awf_proxy_listen_fd(to, copy, l->transparent);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static void on_engine_handle_closed(uv_handle_t *h) {
  awf_proxy *p = h->data;
  p->open_handles--;
  maybe_finish_shutdown(p);
}

static void on_upool_closed(void *arg) {
  awf_proxy *p = arg;
  p->open_handles--;
  maybe_finish_shutdown(p);
}

static void on_failed_listener_closed(uv_handle_t *h) { free(h->data); }

static void on_listener_closed(uv_handle_t *h) {
  struct listener *l = h->data;
  awf_proxy *p = l->proxy;
  free(l);
  p->open_handles--;
  maybe_finish_shutdown(p);
}

static void maybe_finish_shutdown(awf_proxy *p) {
  if (!p->shutting_down || p->nconns > 0)
    return;
  if (!uv_is_closing((uv_handle_t *)&p->grace_timer)) {
    uv_timer_stop(&p->grace_timer);
    uv_close((uv_handle_t *)&p->grace_timer, on_engine_handle_closed);
    uv_close((uv_handle_t *)&p->log_flush, on_engine_handle_closed);
    if (p->cfg.group) {
      group_leave(p); /* no engine wakes this one from here on */
      uv_close((uv_handle_t *)&p->wake, on_engine_handle_closed);
    }
    if (p->upool)
      awf_upool_close(p->upool, on_upool_closed, p);
    p->upool = NULL;
    return;
  }
  if (p->open_handles > 0)
    return;
  /* Every connection has logged: write it out, then lines go straight through. */
  if (p->cfg.log)
    awf_logfile_set_batching(p->cfg.log, false);
  void (*done)(void *) = p->done;
  void *arg = p->done_arg;
  if (!p->cfg.group)
    awf_client_limits_free(p->client_limits);
  free(p);
  if (done)
    done(arg);
}

static void on_grace_expired(uv_timer_t *t) {
  awf_proxy *p = t->data;
  struct awf_list *it, *next;
  awf_list_each_safe(it, next, &p->conns)
    conn_close(awf_list_entry(it, struct conn, link));
}

void awf_proxy_shutdown(awf_proxy *p, void (*done)(void *arg), void *arg) {
  if (p->shutting_down)
    return;
  p->shutting_down = true;
  p->done = done;
  p->done_arg = arg;
  struct awf_list *it, *next;
  awf_list_each(it, &p->listeners) {
    struct listener *l = awf_list_entry(it, struct listener, link);
    uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
  }
  awf_list_init(&p->listeners); /* forgotten: each frees itself once closed */
  /* Idle keep-alive connections have nothing to finish. */
  awf_list_each_safe(it, next, &p->conns) {
    struct conn *c = awf_list_entry(it, struct conn, link);
    if (c->state == CONN_HTTP && c->timer_kind == T_IDLE)
      conn_close(c);
  }
  uv_timer_start(&p->grace_timer, on_grace_expired, p->cfg.shutdown_grace_ms, 0);
  maybe_finish_shutdown(p);
}
