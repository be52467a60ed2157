/* dns_server.c: the allowlist-filtered DNS server (see dns_server.h).
 *
 * One UDP socket and one TCP listener share an address. Every message,
 * whichever way it came, goes through handle_message(): parse (dns_msg.c),
 * decide (awf_dns_decide), then answer at once, or start a lookup whose
 * answer is sent from the resolver's callback. A query waiting for its
 * lookup is a heap "job" on the server's list, so close() can cancel it.
 *
 * Bounds: lookups in flight (max_pending), TCP connections (max_tcp), per
 * connection: pipelined queries in flight, bytes queued for writing, and the
 * read buffer (one message of at most 65535 bytes plus its prefix). A TCP
 * message must complete within the idle timeout. UDP answers are sent with
 * try_send: when the socket buffer is full the answer is dropped, as the
 * network may drop it, and the client asks again; nothing queues. */
#include "dns_server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "hostname.h"
#include "list.h"
#include "netaddr.h"

#define UDP_RECV_BUF 4096 /* longer datagrams arrive cut: FORMERR */
#define RESPONSE_BUF 2048
#define TCP_BUF_MIN 512
#define TCP_BUF_MAX (2 + AWF_DNS_TCP_MAX)
#define TCP_JOBS_PER_CONN 8 /* pipelined queries in flight (RFC 7766 6.2.1.1) */
#define TCP_WRITE_HIGH_WATER (64 * 1024)
#define TCP_BACKLOG 128
#define BIND_TRIES 20

/* The largest answer we build: header, question, every address as AAAA, OPT.
 * TCP answers use the whole buffer, so they are never truncated. */
_Static_assert(12 + AWF_DNS_WIRE_NAME_MAX + 4 + AWF_RESOLVE_MAX_ADDRS * 28 + 11 <= RESPONSE_BUF,
               "RESPONSE_BUF holds a full answer");

struct dns_conn;

/* One query, from receipt to log line. Lives on the stack while handled
 * synchronously, on the heap (linked in s->jobs) while its lookup runs. */
struct dns_job {
  awf_dns_server *s;
  struct awf_list link; /* in s->jobs */
  awf_resolve_req *req;
  struct dns_conn *conn; /* TCP: NULL once the connection is gone */
  bool tcp;
  struct sockaddr_storage peer; /* UDP: where the answer goes */
  char client[AWF_ADDRSTRLEN];
  uint64_t start_ms; /* uv_now() */
  struct awf_dns_verdict v;
  struct awf_dns_query q;
  char resolved[AWF_ADDRSTRLEN]; /* private_destination: an address refused */
};

struct dns_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  awf_dns_server *s;
  struct awf_list link; /* in s->conns */
  uint8_t *buf;         /* bytes received, not yet a whole message */
  size_t len, cap;
  unsigned jobs;    /* lookups in flight for this connection */
  unsigned writes;  /* uv_write requests not yet completed */
  unsigned handles; /* open: tcp, timer */
  bool reading, eof, closing;
  char client[AWF_ADDRSTRLEN];
};

struct tcp_write {
  uv_write_t req;
  struct dns_conn *c;
  uint8_t data[];
};

struct awf_dns_server {
  uv_loop_t *loop;
  struct awf_dns_server_config cfg;
  struct awf_policy judge;      /* the policy over cfg's ACLs, audit and host access */
  struct awf_event_sink events; /* cfg's log and denials */
  uv_udp_t udp;
  uv_tcp_t tcp;
  unsigned open_handles; /* udp, tcp listener */
  struct awf_list conns; /* struct dns_conn */
  unsigned nconns;
  struct awf_list jobs; /* struct dns_job: lookups in flight */
  unsigned njobs;
  bool closing;
  void (*done)(void *);
  void *done_arg;
  uint8_t udp_buf[UDP_RECV_BUF]; /* each datagram is handled inside its callback */
};

/* ---- the decision ------------------------------------------------------- */

size_t awf_dns_local_answer(const struct awf_dns_query *q, struct awf_dns_rr *rr,
                            unsigned *rcode) {
  static const uint8_t v6[16] = {[15] = 1};
  memset(rr, 0, sizeof(*rr));
  rr->ttl = AWF_DNS_ANSWER_TTL_MAX;
  *rcode = AWF_DNS_NOERROR;
  if (awf_name_under(q->qname, q->qname_len, "localhost")) {
    if (q->qtype == AWF_DNS_TYPE_A) {
      rr->type = AWF_DNS_TYPE_A;
      memcpy(rr->u.a, (uint8_t[4]){127, 0, 0, 1}, 4);
      return 1;
    }
    if (q->qtype == AWF_DNS_TYPE_AAAA) {
      rr->type = AWF_DNS_TYPE_AAAA;
      memcpy(rr->u.aaaa, v6, 16);
      return 1;
    }
    return 0; /* NODATA */
  }
  bool one = (q->qname_len == strlen(AWF_DNS_PTR_LOOPBACK4) &&
              memcmp(q->qname, AWF_DNS_PTR_LOOPBACK4, q->qname_len) == 0) ||
             (q->qname_len == strlen(AWF_DNS_PTR_LOOPBACK6) &&
              memcmp(q->qname, AWF_DNS_PTR_LOOPBACK6, q->qname_len) == 0);
  if (!one) {
    *rcode = AWF_DNS_NXDOMAIN; /* other loopback addresses have no name here */
    return 0;
  }
  if (q->qtype != AWF_DNS_TYPE_PTR)
    return 0;
  rr->type = AWF_DNS_TYPE_PTR;
  rr->u.target = "localhost";
  return 1;
}

/* What an admitted name gets. No DNS name is an IP literal (numeric TLDs do
 * not exist): nothing to look up, and the resolver must not be handed one. */
static enum awf_dns_action admitted_action(const struct awf_dns_query *q) {
  struct sockaddr_storage ss;
  if (awf_ip_literal_parse(q->qname, q->qname_len, &ss) != 0)
    return AWF_DNS_ACT_NODATA;
  if (q->qtype == AWF_DNS_TYPE_A || q->qtype == AWF_DNS_TYPE_AAAA)
    return AWF_DNS_ACT_RESOLVE;
  return AWF_DNS_ACT_NODATA;
}

bool awf_dns_host_answer(const struct awf_host_access *h, const struct awf_dns_query *q,
                         struct awf_dns_rr *rr, size_t *n) {
  *n = 0;
  if (!h || !q->has_question || !q->name_ok || !q->class_in ||
      awf_host_access_check(h, q->qname, q->qname_len, 0) == AWF_HOST_NONE)
    return false;
  memset(rr, 0, sizeof(*rr));
  rr->ttl = AWF_DNS_ANSWER_TTL_MAX;
  int family = q->qtype == AWF_DNS_TYPE_A      ? AF_INET
               : q->qtype == AWF_DNS_TYPE_AAAA ? AF_INET6
                                               : 0;
  for (size_t i = 0; family && i < h->n_alias; i++) {
    const struct sockaddr_storage *a = &h->alias[i];
    if (a->ss_family != family)
      continue;
    rr->type = q->qtype;
    if (family == AF_INET)
      memcpy(rr->u.a, &((const struct sockaddr_in *)a)->sin_addr, 4);
    else
      memcpy(rr->u.aaaa, &((const struct sockaddr_in6 *)a)->sin6_addr, 16);
    *n = 1;
    break;
  }
  return true;
}

void awf_dns_decide(const struct awf_policy *policy, const struct awf_dns_query *q,
                    struct awf_dns_verdict *v) {
  struct awf_ask_facts f = {.kind = AWF_ASK_DNS,
                            .host = q->qname,
                            .host_len = q->qname_len,
                            .dns = {.name_ok = q->has_question && q->name_ok,
                                    .class_in = q->class_in}};
  struct awf_verdict pv = awf_policy_judge(policy, &f);
  v->decision = pv.decision;
  v->reason = pv.reason;
  v->would_deny = pv.would_deny;
  v->dlp = pv.dlp;
  if (pv.decision == AWF_DENY) /* a non-name or another class: no answer to give */
    v->action = pv.reason == AWF_REASON_INVALID_NAME ||
                        pv.reason == AWF_REASON_UNSUPPORTED_CLASS
                    ? AWF_DNS_ACT_REFUSE
                    : AWF_DNS_ACT_BLOCK;
  else if (pv.host_access)
    v->action = AWF_DNS_ACT_HOST;
  else if (pv.reason == AWF_REASON_LOOPBACK)
    v->action = AWF_DNS_ACT_LOCAL;
  else
    v->action = admitted_action(q);
}

size_t awf_dns_select_addrs(const struct awf_addr_list *l, uint16_t qtype,
                            const awf_addr_policy *policy, uint32_t ttl, struct awf_dns_rr *rrs,
                            size_t max, size_t *refused) {
  int family = qtype == AWF_DNS_TYPE_A ? AF_INET : qtype == AWF_DNS_TYPE_AAAA ? AF_INET6 : -1;
  size_t n = 0, bad = 0;
  size_t count = l->n < AWF_RESOLVE_MAX_ADDRS ? l->n : AWF_RESOLVE_MAX_ADDRS;
  for (size_t i = 0; i < count; i++) {
    const struct sockaddr_storage *ss = &l->addr[i];
    if (ss->ss_family != family)
      continue;
    if (awf_addr_policy_check(policy, (const struct sockaddr *)ss) != NULL) {
      bad++;
      continue;
    }
    if (n == max)
      continue;
    struct awf_dns_rr *rr = &rrs[n++];
    memset(rr, 0, sizeof(*rr));
    rr->owner = NULL;
    rr->type = qtype;
    rr->ttl = ttl;
    if (family == AF_INET)
      memcpy(rr->u.a, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    else
      memcpy(rr->u.aaaa, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
  }
  if (refused)
    *refused = bad;
  return n;
}

/* ---- answering and logging ---------------------------------------------- */

static void conn_close(struct dns_conn *c);
static void conn_pump(struct dns_conn *c);

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void log_job(const struct dns_job *j, enum awf_decision decision, enum awf_reason reason,
                    int answers) {
  awf_dns_server *s = j->s;
  struct awf_log_record r;
  char tbuf[AWF_DNS_TYPE_NAME_SIZE];
  char name[AWF_DNS_NAME_TEXT_SIZE];
  size_t name_len = awf_dns_name_text(&j->q, name, sizeof(name));
  awf_log_record_init(&r);
  r.ts_ms = wall_ms();
  r.event = "dns";
  r.conn = awf_log_next_conn(); /* one record per message: nothing to join */
  r.client = j->client;
  r.decision = decision;
  r.reason = reason;
  r.would_deny = j->v.would_deny;
  r.dlp = j->v.dlp;
  uint64_t now = uv_now(s->loop);
  r.duration_ms = now > j->start_ms ? (int64_t)(now - j->start_ms) : 0;
  if (j->q.has_question) {
    /* Escaped, so a label holding a '.' cannot pass for two labels; `qname`
     * is the same name under its old key. */
    r.host = r.qname = name;
    r.host_len = r.qname_len = name_len;
    r.qtype = awf_dns_type_name(j->q.qtype, tbuf, sizeof(tbuf));
  }
  r.answers = answers;
  r.resolved = j->resolved[0] ? j->resolved : NULL;
  /* One record per message: no open record; the name is escaped text. */
  awf_event_log(&s->events, &r, &(struct awf_event_unit){.host_escaped = true});
}

static void on_conn_written(uv_write_t *req, int status) {
  struct tcp_write *w = (struct tcp_write *)req;
  struct dns_conn *c = w->c;
  free(w);
  c->writes--;
  if (c->closing)
    return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  uv_timer_again(&c->timer);
  conn_pump(c);
}

/* Returns 0 once the answer is queued, else -errno (the connection is then
 * closing). */
static int tcp_send(struct dns_conn *c, const uint8_t *msg, size_t len) {
  if (c->closing)
    return -ECANCELED;
  struct tcp_write *w = malloc(sizeof(*w) + 2 + len);
  if (!w || awf_dns_tcp_prefix(w->data, len) < 0) {
    free(w);
    conn_close(c);
    return -ENOMEM;
  }
  memcpy(w->data + 2, msg, len);
  w->c = c;
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)(len + 2));
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_conn_written);
  if (rc < 0) {
    free(w);
    conn_close(c);
    return rc;
  }
  c->writes++;
  return 0;
}

/* Build and send the answer; returns the number of answer records sent
 * (fewer than nrr when a UDP answer was truncated; 0 when nothing could be
 * sent). */
static int respond_ede(struct dns_job *j, unsigned rcode, const struct awf_dns_rr *rrs,
                       size_t nrr, const struct awf_dns_ede *ede) {
  uint8_t out[RESPONSE_BUF];
  size_t limit = j->tcp ? sizeof(out) : awf_dns_udp_limit(&j->q);
  size_t nans = 0;
  int len = awf_dns_build_response_ede(&j->q, rcode, rrs, nrr, ede, limit, out, sizeof(out),
                                       &nans);
  int rc = -ECANCELED;
  if (len < 0)
    return 0;
  if (j->tcp) {
    if (j->conn)
      rc = tcp_send(j->conn, out, (size_t)len);
  } else if (!j->s->closing) {
    uv_buf_t b = uv_buf_init((char *)out, (unsigned)len);
    rc = uv_udp_try_send(&j->s->udp, &b, 1, (const struct sockaddr *)&j->peer);
  }
  return rc >= 0 ? (int)nans : 0;
}

static int respond(struct dns_job *j, unsigned rcode, const struct awf_dns_rr *rrs,
                   size_t nrr) {
  return respond_ede(j, rcode, rrs, nrr, NULL);
}

/* A denial by policy: NXDOMAIN, so getaddrinfo fails at once (EAI_NONAME)
 * instead of retrying a "temporary" REFUSED, with the reason in an EDE. */
static int respond_blocked(struct dns_job *j) {
  char text[AWF_DNS_EDE_TEXT_MAX];
  snprintf(text, sizeof(text), "awf: denied by policy (%s)", awf_reason_name(j->v.reason));
  struct awf_dns_ede ede = {.info_code = AWF_DNS_EDE_BLOCKED, .text = text};
  return respond_ede(j, AWF_DNS_NXDOMAIN, NULL, 0, &ede);
}

/* The addresses answered, for judging SSH by the name (dns_memory.h). */
static void remember_answer(const struct dns_job *j, const struct awf_dns_rr *rrs, size_t n) {
  awf_dns_memory *m = j->s->cfg.memory;
  for (size_t i = 0; m && i < n; i++) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (rrs[i].type == AWF_DNS_TYPE_A) {
      ss.ss_family = AF_INET;
      memcpy(&((struct sockaddr_in *)&ss)->sin_addr, rrs[i].u.a, 4);
    } else {
      ss.ss_family = AF_INET6;
      memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, rrs[i].u.aaaa, 16);
    }
    (void)awf_dns_memory_note(m, (struct sockaddr *)&ss, j->q.qname, uv_now(j->s->loop),
                              rrs[i].ttl);
  }
}

static void answer_lookup(struct dns_job *j, int status, const struct awf_addr_list *l) {
  enum awf_decision decision = AWF_ALLOW;
  enum awf_reason reason = j->v.reason;
  int answers;
  if (status == 0) {
    struct awf_dns_rr rrs[AWF_RESOLVE_MAX_ADDRS];
    uint32_t ttl = l->ttl_s < AWF_DNS_ANSWER_TTL_MAX ? l->ttl_s : AWF_DNS_ANSWER_TTL_MAX;
    size_t refused = 0;
    size_t n = awf_dns_select_addrs(l, j->q.qtype, j->s->cfg.policy, ttl, rrs,
                                    AWF_RESOLVE_MAX_ADDRS, &refused);
    if (n == 0 && refused > 0) {
      decision = AWF_DENY;
      reason = AWF_REASON_PRIVATE_DESTINATION;
      for (size_t i = 0; i < l->n && !j->resolved[0]; i++) /* the first, for the summary */
        if (l->addr[i].ss_family == (j->q.qtype == AWF_DNS_TYPE_A ? AF_INET : AF_INET6))
          awf_sockaddr_format_ip((const struct sockaddr *)&l->addr[i], j->resolved,
                                 sizeof(j->resolved));
    }
    remember_answer(j, rrs, n);
    answers = respond(j, AWF_DNS_NOERROR, rrs, n);
  } else if (status == -ENOENT) {
    /* The resolver cannot tell "no such name" from "no address at all";
     * either way the client gets nothing to connect to. */
    answers = respond(j, AWF_DNS_NXDOMAIN, NULL, 0);
  } else {
    decision = AWF_DENY;
    reason = status == -EAGAIN || status == -ENOMEM ? AWF_REASON_OVERLOADED
                                                    : AWF_REASON_DNS_FAILURE;
    answers = respond(j, AWF_DNS_SERVFAIL, NULL, 0);
  }
  log_job(j, decision, reason, answers);
}

static void job_unlink(struct dns_job *j) {
  awf_dns_server *s = j->s;
  awf_list_remove(&j->link);
  s->njobs--;
  if (j->conn)
    j->conn->jobs--;
}

static void on_resolved(int status, const struct awf_addr_list *addrs, void *arg) {
  struct dns_job *j = arg;
  struct dns_conn *c = j->conn;
  j->req = NULL;
  job_unlink(j);
  answer_lookup(j, status, addrs);
  free(j);
  if (c)
    conn_pump(c); /* room for the next pipelined query */
}

static void start_lookup(struct dns_job *j) {
  awf_dns_server *s = j->s;
  struct awf_addr_list list;
  if (s->njobs >= s->cfg.max_pending) {
    answer_lookup(j, -EAGAIN, NULL);
    return;
  }
  struct dns_job *pj = malloc(sizeof(*pj));
  if (!pj) {
    answer_lookup(j, -ENOMEM, NULL);
    return;
  }
  *pj = *j;
  int rc = awf_resolve(s->cfg.resolver, j->q.qname, &list, on_resolved, pj, &pj->req);
  if (rc == 0) {
    awf_list_push_front(&s->jobs, &pj->link);
    s->njobs++;
    if (pj->conn)
      pj->conn->jobs++;
    return;
  }
  free(pj);
  answer_lookup(j, rc == 1 ? 0 : rc, rc == 1 ? &list : NULL);
}

/* One message from a client. Returns -EBADMSG for a message that gets no
 * answer at all (a response, or shorter than a header): over TCP the caller
 * closes the connection. */
static int handle_message(awf_dns_server *s, struct dns_conn *c, const struct sockaddr *peer,
                          const uint8_t *msg, size_t len, bool cut) {
  struct dns_job j;
  memset(&j, 0, sizeof(j));
  j.s = s;
  j.start_ms = uv_now(s->loop);
  if (c) {
    j.tcp = true;
    j.conn = c;
    memcpy(j.client, c->client, sizeof(j.client));
  } else {
    memcpy(&j.peer, peer, awf_sockaddr_len(peer));
    awf_sockaddr_format(peer, j.client, sizeof(j.client));
  }

  int st = awf_dns_parse_query(msg, len, &j.q);
  if (st == AWF_DNS_PARSE_OK && cut) {
    st = AWF_DNS_PARSE_FORMERR;
    j.q.rcode = AWF_DNS_FORMERR;
  }
  switch (st) {
  case AWF_DNS_PARSE_OK: break;
  case AWF_DNS_PARSE_DROP: log_job(&j, AWF_DENY, AWF_REASON_BAD_REQUEST, -1); return -EBADMSG;
  case AWF_DNS_PARSE_NOTIMP:
    log_job(&j, AWF_DENY, AWF_REASON_NOT_IMPLEMENTED, respond(&j, j.q.rcode, NULL, 0));
    return 0;
  default: /* FORMERR, BADVERS */
    log_job(&j, AWF_DENY, AWF_REASON_BAD_REQUEST, respond(&j, j.q.rcode, NULL, 0));
    return 0;
  }

  awf_dns_decide(&s->judge, &j.q, &j.v);
  switch (j.v.action) {
  case AWF_DNS_ACT_HOST: {
    struct awf_dns_rr host_rr;
    size_t host_n;
    awf_dns_host_answer(s->cfg.host_access, &j.q, &host_rr, &host_n);
    log_job(&j, j.v.decision, j.v.reason, respond(&j, AWF_DNS_NOERROR, &host_rr, host_n));
    break;
  }
  case AWF_DNS_ACT_REFUSE:
    log_job(&j, j.v.decision, j.v.reason, respond(&j, AWF_DNS_REFUSED, NULL, 0));
    break;
  case AWF_DNS_ACT_BLOCK: log_job(&j, j.v.decision, j.v.reason, respond_blocked(&j)); break;
  case AWF_DNS_ACT_LOCAL: {
    struct awf_dns_rr rr;
    unsigned rcode;
    size_t n = awf_dns_local_answer(&j.q, &rr, &rcode);
    log_job(&j, j.v.decision, j.v.reason, respond(&j, rcode, &rr, n));
    break;
  }
  case AWF_DNS_ACT_NODATA:
    log_job(&j, j.v.decision, j.v.reason, respond(&j, AWF_DNS_NOERROR, NULL, 0));
    break;
  case AWF_DNS_ACT_RESOLVE: start_lookup(&j); break;
  }
  return 0;
}

/* ---- UDP ---------------------------------------------------------------- */

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  awf_dns_server *s = h->data;
  buf->base = (char *)s->udp_buf;
  buf->len = sizeof(s->udp_buf);
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags) {
  (void)buf;
  awf_dns_server *s = h->data;
  /* nread < 0: an error (ICMP from an earlier answer); addr NULL: nothing. */
  if (nread < 0 || !addr || s->closing)
    return;
  if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
    return;
  handle_message(s, NULL, addr, s->udp_buf, (size_t)nread, (flags & UV_UDP_PARTIAL) != 0);
}

/* ---- TCP ---------------------------------------------------------------- */

static void maybe_finish(awf_dns_server *s) {
  if (!s->closing || s->open_handles > 0 || s->nconns > 0)
    return;
  if (s->done)
    s->done(s->done_arg);
  free(s);
}

static void on_conn_handle_closed(uv_handle_t *h) {
  struct dns_conn *c = h->data;
  if (--c->handles > 0)
    return;
  awf_dns_server *s = c->s;
  awf_list_remove(&c->link);
  s->nconns--;
  free(c->buf);
  free(c);
  maybe_finish(s);
}

/* Lookups still running for c keep running: their answers are logged and
 * have nowhere to go. */
static void conn_close(struct dns_conn *c) {
  if (c->closing)
    return;
  c->closing = true;
  struct awf_list *it;
  for (it = c->s->jobs.next; it != &c->s->jobs && c->jobs > 0; it = it->next) {
    struct dns_job *j = awf_list_entry(it, struct dns_job, link);
    if (j->conn == c) {
      j->conn = NULL;
      c->jobs--;
    }
  }
  uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_conn_timer(uv_timer_t *t) {
  struct dns_conn *c = t->data;
  if (c->jobs > 0) {
    uv_timer_again(t); /* the resolver's own timeout ends the wait */
    return;
  }
  conn_close(c);
}

static void on_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct dns_conn *c = h->data;
  if (c->len == c->cap && c->cap < TCP_BUF_MAX) {
    size_t ncap = c->cap ? c->cap * 2 : TCP_BUF_MIN;
    if (ncap > TCP_BUF_MAX)
      ncap = TCP_BUF_MAX;
    uint8_t *nb = realloc(c->buf, ncap);
    if (nb) {
      c->buf = nb;
      c->cap = ncap;
    }
  }
  /* No room (a failed realloc): libuv reports UV_ENOBUFS and we close. */
  buf->base = c->buf ? (char *)c->buf + c->len : NULL;
  buf->len = c->buf ? c->cap - c->len : 0;
}

static void on_conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  struct dns_conn *c = st->data;
  if (nread == 0 || c->closing)
    return;
  if (nread < 0) {
    if (nread != UV_EOF) {
      conn_close(c);
      return;
    }
    /* A half-close: answer what was asked, then close. */
    c->eof = true;
    uv_read_stop(st);
    c->reading = false;
  } else {
    c->len += (size_t)nread;
  }
  conn_pump(c);
}

static bool conn_has_room(const struct dns_conn *c) {
  return c->jobs < TCP_JOBS_PER_CONN &&
         uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) < TCP_WRITE_HIGH_WATER;
}

/* Handle the whole messages buffered while there is room, then read on or
 * pause. Called after a read, a completed write and a finished lookup. */
static void conn_pump(struct dns_conn *c) {
  while (!c->closing && conn_has_room(c)) {
    const uint8_t *msg;
    size_t mlen;
    int rc = awf_dns_tcp_next(c->buf, c->len, &msg, &mlen);
    if (rc == 0)
      break;
    if (rc < 0 || handle_message(c->s, c, NULL, msg, mlen, false) < 0) {
      conn_close(c);
      return;
    }
    if (c->closing)
      return;
    memmove(c->buf, c->buf + 2 + mlen, c->len - 2 - mlen);
    c->len -= 2 + mlen;
    uv_timer_again(&c->timer); /* the idle clock restarts with each whole message */
  }
  if (c->closing)
    return;
  if (c->len == 0 && c->cap > TCP_BUF_MIN) {
    free(c->buf); /* a big message passed: don't keep its buffer */
    c->buf = NULL;
    c->cap = 0;
  }
  if (c->eof) {
    if (c->jobs == 0 && c->writes == 0)
      conn_close(c);
    return;
  }
  bool want = conn_has_room(c);
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_conn_alloc, on_conn_read) < 0) {
      conn_close(c);
      return;
    }
    c->reading = true;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
}

static void free_handle(uv_handle_t *h) { free(h); }

/* At the cap (or out of memory) a connection is still accepted, then closed
 * at once: left in the kernel queue it would stop libuv from accepting. */
static void reject_conn(awf_dns_server *s) {
  uv_tcp_t *t = malloc(sizeof(*t));
  if (!t)
    return;
  uv_tcp_init(s->loop, t);
  (void)uv_accept((uv_stream_t *)&s->tcp, (uv_stream_t *)t);
  uv_close((uv_handle_t *)t, free_handle);
}

static void on_tcp_conn(uv_stream_t *server, int status) {
  awf_dns_server *s = server->data;
  if (status < 0 || s->closing)
    return;
  struct dns_conn *c = s->nconns < s->cfg.max_tcp ? calloc(1, sizeof(*c)) : NULL;
  if (!c) {
    reject_conn(s);
    return;
  }
  c->s = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles = 2;
  awf_list_push_front(&s->conns, &c->link);
  s->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
    conn_close(c);
    return;
  }
  struct sockaddr_storage peer;
  int plen = sizeof(peer);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) == 0)
    awf_sockaddr_format((struct sockaddr *)&peer, c->client, sizeof(c->client));
  uv_tcp_nodelay(&c->tcp, 1);
  uv_timer_start(&c->timer, on_conn_timer, s->cfg.tcp_idle_timeout_ms,
                 s->cfg.tcp_idle_timeout_ms);
  conn_pump(c);
}

/* ---- setup and teardown ------------------------------------------------- */

static int bind_socket(int type, const struct sockaddr *addr) {
  int fd = socket(addr->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  if (type == SOCK_STREAM)
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, addr, awf_sockaddr_len(addr)) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  return fd;
}

/* UDP and TCP on one port. For port 0 the UDP socket picks the port and TCP
 * follows; if that port's TCP side is taken, pick again. */
static int bind_pair(const struct sockaddr *listen, int *ufd, int *tfd,
                     struct sockaddr_storage *bound) {
  bool any_port = awf_sockaddr_port(listen) == 0;
  for (int i = 0; i < BIND_TRIES; i++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int u = bind_socket(SOCK_DGRAM, listen);
    if (u < 0)
      return u;
    if (getsockname(u, (struct sockaddr *)&ss, &sl) < 0) {
      int err = -errno;
      close(u);
      return err;
    }
    int t = bind_socket(SOCK_STREAM, (struct sockaddr *)&ss);
    if (t >= 0) {
      *ufd = u;
      *tfd = t;
      *bound = ss;
      return 0;
    }
    close(u);
    if (t != -EADDRINUSE || !any_port)
      return t;
  }
  return -EADDRINUSE;
}

static void on_server_handle_closed(uv_handle_t *h) {
  awf_dns_server *s = h->data;
  s->open_handles--;
  maybe_finish(s);
}

static void config_defaults(struct awf_dns_server_config *c) {
  if (c->max_pending == 0)
    c->max_pending = AWF_DNS_DEFAULT_MAX_PENDING;
  if (c->max_tcp == 0)
    c->max_tcp = AWF_DNS_DEFAULT_MAX_TCP;
  if (c->tcp_idle_timeout_ms == 0)
    c->tcp_idle_timeout_ms = AWF_DNS_DEFAULT_TCP_IDLE_MS;
}

int awf_dns_server_bind(const struct sockaddr *listen, int *ufd, int *tfd,
                        struct sockaddr_storage *bound) {
  if (!listen || (listen->sa_family != AF_INET && listen->sa_family != AF_INET6))
    return -EAFNOSUPPORT;
  struct sockaddr_storage addr;
  int rc = bind_pair(listen, ufd, tfd, &addr);
  if (rc == 0 && bound)
    *bound = addr;
  return rc;
}

int awf_dns_server_new_fds(uv_loop_t *loop, const struct awf_dns_server_config *cfg, int ufd,
                           int tfd, awf_dns_server **out) {
  if (out)
    *out = NULL;
  awf_dns_server *s = NULL;
  if (loop && cfg && cfg->acl && cfg->policy && cfg->resolver && out)
    s = calloc(1, sizeof(*s));
  if (!s) {
    close(ufd);
    close(tfd);
    return loop && cfg && cfg->acl && cfg->policy && cfg->resolver && out ? -ENOMEM : -EINVAL;
  }
  s->loop = loop;
  s->cfg = *cfg;
  s->judge = (struct awf_policy){.acl = cfg->acl,
                                 .ssh_acl = cfg->ssh_acl,
                                 .host_access = cfg->host_access,
                                 .dlp = cfg->dlp,
                                 .audit = cfg->audit};
  s->events = (struct awf_event_sink){.log = cfg->log,
                                      .denials = cfg->denials,
                                      .write_failed = cfg->log_failed,
                                      .write_failed_arg = cfg->log_failed_arg,
                                      .dlp = cfg->dlp,
                                      .metrics = cfg->metrics};
  awf_list_init(&s->conns);
  awf_list_init(&s->jobs);
  config_defaults(&s->cfg);

  uv_udp_init(loop, &s->udp);
  uv_tcp_init(loop, &s->tcp);
  s->udp.data = s->tcp.data = s;
  s->open_handles = 2;
  int rc = uv_udp_open(&s->udp, ufd);
  if (rc < 0)
    close(ufd);
  else /* uv_udp_open turned SO_REUSEADDR on: another socket could bind our port */
    (void)setsockopt(ufd, SOL_SOCKET, SO_REUSEADDR, &(int){0}, sizeof(int));
  if (rc == 0) {
    rc = uv_tcp_open(&s->tcp, tfd);
    if (rc < 0)
      close(tfd);
  } else {
    close(tfd);
  }
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&s->tcp, TCP_BACKLOG, on_tcp_conn);
  if (rc == 0)
    rc = uv_udp_recv_start(&s->udp, on_udp_alloc, on_udp_recv);
  if (rc < 0) {
    s->closing = true; /* freed once both handles are closed */
    uv_close((uv_handle_t *)&s->udp, on_server_handle_closed);
    uv_close((uv_handle_t *)&s->tcp, on_server_handle_closed);
    return rc;
  }
  *out = s;
  return 0;
}

int awf_dns_server_new(uv_loop_t *loop, const struct awf_dns_server_config *cfg,
                       const struct sockaddr *listen, struct sockaddr_storage *bound,
                       awf_dns_server **out) {
  if (out)
    *out = NULL;
  if (!loop || !cfg || !cfg->acl || !cfg->policy || !cfg->resolver || !listen || !out)
    return -EINVAL;
  int ufd = -1, tfd = -1;
  int rc = awf_dns_server_bind(listen, &ufd, &tfd, bound);
  return rc < 0 ? rc : awf_dns_server_new_fds(loop, cfg, ufd, tfd, out);
}

void awf_dns_server_set_acl(awf_dns_server *s, const awf_acl *acl) {
  s->cfg.acl = acl;
  s->judge.acl = acl;
}

void awf_dns_server_close(awf_dns_server *s, void (*done)(void *arg), void *arg) {
  if (!s || s->closing)
    return;
  s->closing = true;
  s->done = done;
  s->done_arg = arg;
  struct dns_job *j;
  while ((j = awf_list_first(&s->jobs, struct dns_job, link)) != NULL) {
    awf_resolve_cancel(j->req);
    job_unlink(j);
    log_job(j, AWF_DENY, AWF_REASON_SHUTTING_DOWN, 0);
    free(j);
  }
  uv_udp_recv_stop(&s->udp);
  uv_close((uv_handle_t *)&s->udp, on_server_handle_closed);
  uv_close((uv_handle_t *)&s->tcp, on_server_handle_closed);
  struct awf_list *it;
  awf_list_each(it, &s->conns)
    conn_close(awf_list_entry(it, struct dns_conn, link));
}
