/* test_dns_server.c: the DNS server's decision functions, then the server
 * itself on a libuv loop, with a resolver pointed at a fake upstream on
 * 127.0.0.1 that this file serves between loop turns. Nothing here talks to
 * the host's resolver. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "acl_fixture.h"
#include "dns_server.h"

/* ---- building queries --------------------------------------------------- */

struct qopt {
  uint16_t flags;  /* header flags; RD by default below */
  uint16_t qclass; /* 0: IN */
  bool edns;
  uint16_t edns_size;
  uint8_t edns_version;
};

/* A query for name (dotted, "." the root) into buf; returns its length. */
static size_t mkquery(uint8_t *buf, uint16_t id, const char *name, uint16_t qtype,
                      const struct qopt *o) {
  struct qopt def = {.flags = 0x0100};
  if (!o)
    o = &def;
  size_t n = 0;
  buf[n++] = (uint8_t)(id >> 8);
  buf[n++] = (uint8_t)id;
  buf[n++] = (uint8_t)(o->flags >> 8);
  buf[n++] = (uint8_t)o->flags;
  const uint8_t counts[8] = {0, 1, 0, 0, 0, 0, 0, o->edns ? 1 : 0};
  memcpy(buf + n, counts, 8);
  n += 8;
  if (strcmp(name, ".") != 0) {
    while (*name) {
      const char *dot = strchr(name, '.');
      size_t l = dot ? (size_t)(dot - name) : strlen(name);
      buf[n++] = (uint8_t)l;
      memcpy(buf + n, name, l);
      n += l;
      name += l + (dot ? 1 : 0);
    }
  }
  buf[n++] = 0;
  uint16_t qclass = o->qclass ? o->qclass : AWF_DNS_CLASS_IN;
  buf[n++] = (uint8_t)(qtype >> 8);
  buf[n++] = (uint8_t)qtype;
  buf[n++] = (uint8_t)(qclass >> 8);
  buf[n++] = (uint8_t)qclass;
  if (o->edns) {
    const uint8_t opt[11] = {
        0, 0, 41, (uint8_t)(o->edns_size >> 8), (uint8_t)o->edns_size, 0, o->edns_version, 0,
        0, 0, 0};
    memcpy(buf + n, opt, sizeof(opt));
    n += sizeof(opt);
  }
  return n;
}

static void parse(const char *name, uint16_t qtype, const struct qopt *o,
                  struct awf_dns_query *q) {
  uint8_t buf[600];
  size_t n = mkquery(buf, 7, name, qtype, o);
  assert_int_equal(awf_dns_parse_query(buf, n, q), AWF_DNS_PARSE_OK);
}

/* ---- decision functions ------------------------------------------------- */

static enum awf_acl_verdict either(const awf_acl *acl, const char *name) {
  return awf_policy_acl_any(acl, name, strlen(name));
}

static void test_acl_either_protocol(void **state) {
  (void)state;
  awf_acl *acl = acl_of("https://tls.test,http://plain.test,both.test,1.2.3.4",
                        "https://bad.both.test,worse.both.test");
  assert_int_equal(either(acl, "tls.test"), AWF_ACL_ALLOWED);
  assert_int_equal(either(acl, "a.plain.test"), AWF_ACL_ALLOWED);
  assert_int_equal(either(acl, "both.test"), AWF_ACL_ALLOWED);
  /* Blocked for TLS only: still reachable over HTTP, so it resolves. */
  assert_int_equal(either(acl, "bad.both.test"), AWF_ACL_ALLOWED);
  assert_int_equal(either(acl, "worse.both.test"), AWF_ACL_BLOCKED);
  assert_int_equal(either(acl, "x.worse.both.test"), AWF_ACL_BLOCKED);
  assert_int_equal(either(acl, "other.test"), AWF_ACL_NOT_ALLOWED);
  assert_int_equal(either(acl, "1.2.3.4"), AWF_ACL_ALLOWED);
  assert_int_equal(either(acl, "1.2.3.5"), AWF_ACL_IP_LITERAL);
  assert_int_equal(either(acl, "a!b.test"), AWF_ACL_INVALID_NAME);
  awf_acl_free(acl);
  /* A block for plain HTTP only, and no allow rule for it at all. */
  acl = acl_of("ok.test", "http://nope.test");
  assert_int_equal(either(acl, "nope.test"), AWF_ACL_BLOCKED);
  awf_acl_free(acl);
}

static void decide(const awf_acl *acl, bool audit, const char *name, uint16_t qtype,
                   const struct qopt *o, struct awf_dns_verdict *v) {
  struct awf_dns_query q;
  parse(name, qtype, o, &q);
  memset(v, 0xa5, sizeof(*v)); /* every field must be written */
  struct awf_policy p = {.acl = acl, .audit = audit};
  awf_dns_decide(&p, &q, v);
}

static void expect(const struct awf_dns_verdict *v, enum awf_dns_action a, const char *reason,
                   bool would_deny) {
  assert_int_equal(v->action, a);
  assert_string_equal(awf_reason_name(v->reason), reason);
  assert_int_equal(v->would_deny, would_deny);
}

static void test_decide_admitted(void **state) {
  (void)state;
  awf_acl *acl = acl_of("allowed.test", NULL);
  struct awf_dns_verdict v;
  decide(acl, false, "allowed.test", AWF_DNS_TYPE_A, NULL, &v);
  expect(&v, AWF_DNS_ACT_RESOLVE, "allowed", false);
  decide(acl, false, "API.Allowed.TEST", AWF_DNS_TYPE_AAAA, NULL, &v);
  expect(&v, AWF_DNS_ACT_RESOLVE, "allowed", false);
  /* Every other type of an admitted name: answered empty, never asked. */
  const uint16_t others[] = {AWF_DNS_TYPE_TXT,
                             AWF_DNS_TYPE_MX,
                             AWF_DNS_TYPE_HTTPS,
                             AWF_DNS_TYPE_SVCB,
                             AWF_DNS_TYPE_ANY,
                             AWF_DNS_TYPE_CNAME,
                             AWF_DNS_TYPE_NS,
                             AWF_DNS_TYPE_PTR,
                             AWF_DNS_TYPE_SRV,
                             0,
                             65535};
  for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
    decide(acl, false, "x.allowed.test", others[i], NULL, &v);
    expect(&v, AWF_DNS_ACT_NODATA, "allowed", false);
  }
  awf_acl_free(acl);
}

static void test_decide_denied(void **state) {
  (void)state;
  awf_acl *acl = acl_of("allowed.test", "bad.allowed.test");
  struct awf_dns_verdict v;
  decide(acl, false, "secret.attacker.example", AWF_DNS_TYPE_TXT, NULL, &v);
  expect(&v, AWF_DNS_ACT_BLOCK, "not_allowed", false);
  decide(acl, false, "evil.test", AWF_DNS_TYPE_A, NULL, &v);
  expect(&v, AWF_DNS_ACT_BLOCK, "not_allowed", false);
  decide(acl, false, "notallowed.test", AWF_DNS_TYPE_HTTPS, NULL, &v);
  expect(&v, AWF_DNS_ACT_BLOCK, "not_allowed", false);
  decide(acl, false, "x.bad.allowed.test", AWF_DNS_TYPE_A, NULL, &v);
  expect(&v, AWF_DNS_ACT_BLOCK, "blocked", false);
  /* A name that only ends like an allowed one. */
  decide(acl, false, "allowed.test.evil.test", AWF_DNS_TYPE_A, NULL, &v);
  expect(&v, AWF_DNS_ACT_BLOCK, "not_allowed", false);
  decide(acl, false, "notallowed.test", AWF_DNS_TYPE_A, NULL, &v);
  expect(&v, AWF_DNS_ACT_BLOCK, "not_allowed", false);
  awf_acl_free(acl);

  /* An empty allowlist admits nothing. */
  acl = acl_of(NULL, NULL);
  decide(acl, false, "allowed.test", AWF_DNS_TYPE_A, NULL, &v);
  expect(&v, AWF_DNS_ACT_BLOCK, "not_allowed", false);
  awf_acl_free(acl);
}

static void test_decide_loopback(void **state) {
  (void)state;
  awf_acl *acl = acl_of("allowed.test", NULL);
  struct awf_dns_verdict v;
  struct awf_dns_query q;
  struct awf_dns_rr rr;
  unsigned rcode;
  const char *local[] = {
      "localhost", "x.localhost", "1.0.0.127.in-addr.arpa", "5.4.3.127.in-addr.arpa",
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"};
  for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
    decide(acl, false, local[i], AWF_DNS_TYPE_PTR, NULL, &v);
    expect(&v, AWF_DNS_ACT_LOCAL, "loopback", false);
  }
  /* Only whole labels: these are ordinary, denied names. */
  const char *not_local[] = {"notlocalhost", "localhost.evil.test", "1.0.0.128.in-addr.arpa",
                             "x127.in-addr.arpa"};
  for (size_t i = 0; i < sizeof(not_local) / sizeof(not_local[0]); i++) {
    decide(acl, false, not_local[i], AWF_DNS_TYPE_A, NULL, &v);
    expect(&v, AWF_DNS_ACT_BLOCK, "not_allowed", false);
  }
  parse("localhost", AWF_DNS_TYPE_AAAA, NULL, &q);
  assert_int_equal(awf_dns_local_answer(&q, &rr, &rcode), 1);
  assert_int_equal(rcode, AWF_DNS_NOERROR);
  assert_int_equal(rr.type, AWF_DNS_TYPE_AAAA);
  assert_int_equal(rr.u.aaaa[15], 1);
  parse("localhost", AWF_DNS_TYPE_TXT, NULL, &q);
  assert_int_equal(awf_dns_local_answer(&q, &rr, &rcode), 0); /* NODATA */
  assert_int_equal(rcode, AWF_DNS_NOERROR);
  parse("1.0.0.127.in-addr.arpa", AWF_DNS_TYPE_PTR, NULL, &q);
  assert_int_equal(awf_dns_local_answer(&q, &rr, &rcode), 1);
  assert_string_equal(rr.u.target, "localhost");
  parse("2.0.0.127.in-addr.arpa", AWF_DNS_TYPE_PTR, NULL, &q);
  assert_int_equal(awf_dns_local_answer(&q, &rr, &rcode), 0);
  assert_int_equal(rcode, AWF_DNS_NXDOMAIN);
  awf_acl_free(acl);
}

static void test_host_answer(void **state) {
  (void)state;
  struct awf_host_access ha;
  awf_host_access_default(&ha);
  struct awf_dns_query q;
  struct awf_dns_rr rr;
  size_t n;
  parse("host.docker.internal", AWF_DNS_TYPE_A, NULL, &q);
  assert_false(awf_dns_host_answer(NULL, &q, &rr, &n)); /* no host access: an ordinary name */
  assert_true(awf_dns_host_answer(&ha, &q, &rr, &n));
  assert_int_equal(n, 1);
  assert_int_equal(rr.type, AWF_DNS_TYPE_A);
  assert_memory_equal(rr.u.a, ((uint8_t[4]){198, 18, 0, 2}), 4);
  parse("HOST.awf.internal", AWF_DNS_TYPE_AAAA, NULL, &q);
  assert_true(awf_dns_host_answer(&ha, &q, &rr, &n));
  assert_int_equal(n, 1);
  assert_int_equal(rr.type, AWF_DNS_TYPE_AAAA);
  uint8_t v6[16];
  inet_pton(AF_INET6, AWF_HOST_ALIAS_ADDR6, v6);
  assert_memory_equal(rr.u.aaaa, v6, 16);
  parse("host.docker.internal", AWF_DNS_TYPE_TXT, NULL, &q);
  assert_true(awf_dns_host_answer(&ha, &q, &rr, &n));
  assert_int_equal(n, 0); /* NODATA: nothing else is the host's */
  parse("x.host.docker.internal", AWF_DNS_TYPE_A, NULL, &q);
  assert_false(awf_dns_host_answer(&ha, &q, &rr, &n));
  parse("host.docker.internal", AWF_DNS_TYPE_A, &(struct qopt){.flags = 0x0100, .qclass = 3},
        &q);
  assert_false(awf_dns_host_answer(&ha, &q, &rr, &n)); /* CHAOS: refused as usual */
}

static void test_decide_names_and_classes(void **state) {
  (void)state;
  awf_acl *acl = acl_of("allowed.test", NULL);
  struct awf_dns_verdict v;
  /* Bytes the parser flags (space, control, DEL, 8-bit): invalid_name. */
  const char *bad[] = {"a b.allowed.test", "a\x01.allowed.test", "a\x7f.allowed.test",
                       "\xc3\xa9.allowed.test", "."};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    decide(acl, false, bad[i], AWF_DNS_TYPE_A, NULL, &v);
    expect(&v, AWF_DNS_ACT_REFUSE, "invalid_name", false);
    decide(acl, true, bad[i], AWF_DNS_TYPE_A, NULL, &v);
    expect(&v, AWF_DNS_ACT_REFUSE, "invalid_name", false);
  }
  /* Printable but not host-name syntax: the ACL says invalid_name. */
  decide(acl, true, "a!b.allowed.test", AWF_DNS_TYPE_A, NULL, &v);
  expect(&v, AWF_DNS_ACT_REFUSE, "invalid_name", false);
  /* CHAOS (version.bind and friends), HESIOD, ANY class: refused. */
  const uint16_t classes[] = {3, 4, 255};
  for (size_t i = 0; i < 3; i++) {
    struct qopt o = {.flags = 0x0100, .qclass = classes[i]};
    decide(acl, false, "allowed.test", AWF_DNS_TYPE_A, &o, &v);
    expect(&v, AWF_DNS_ACT_REFUSE, "unsupported_class", false);
    decide(acl, true, "version.bind", AWF_DNS_TYPE_TXT, &o, &v);
    expect(&v, AWF_DNS_ACT_REFUSE, "unsupported_class", false);
  }
  /* A query without a question never reaches decide through the server,
   * but the function must still refuse it. */
  struct awf_dns_query q;
  memset(&q, 0, sizeof(q));
  struct awf_policy audit = {.acl = acl, .audit = true};
  awf_dns_decide(&audit, &q, &v);
  expect(&v, AWF_DNS_ACT_REFUSE, "invalid_name", false);
  awf_acl_free(acl);
}

static void test_decide_ip_literals(void **state) {
  (void)state;
  awf_acl *acl = acl_of("allowed.test,1.2.3.4,::1", NULL);
  struct awf_dns_verdict v;
  decide(acl, false, "1.2.3.4", AWF_DNS_TYPE_A, NULL, &v);
  expect(&v, AWF_DNS_ACT_NODATA, "allowed", false); /* never handed to the resolver */
  decide(acl, false, "::1", AWF_DNS_TYPE_AAAA, NULL, &v);
  expect(&v, AWF_DNS_ACT_NODATA, "allowed", false);
  decide(acl, false, "5.6.7.8", AWF_DNS_TYPE_A, NULL, &v);
  expect(&v, AWF_DNS_ACT_BLOCK, "ip_literal", false);
  decide(acl, true, "5.6.7.8", AWF_DNS_TYPE_A, NULL, &v);
  expect(&v, AWF_DNS_ACT_NODATA, "ip_literal", true);
  awf_acl_free(acl);
}

static void test_decide_audit(void **state) {
  (void)state;
  awf_acl *acl = acl_of("allowed.test", "blocked.test");
  struct awf_dns_verdict v;
  decide(acl, true, "evil.test", AWF_DNS_TYPE_A, NULL, &v);
  expect(&v, AWF_DNS_ACT_RESOLVE, "not_allowed", true);
  decide(acl, true, "x.blocked.test", AWF_DNS_TYPE_AAAA, NULL, &v);
  expect(&v, AWF_DNS_ACT_RESOLVE, "blocked", true);
  decide(acl, true, "evil.test", AWF_DNS_TYPE_TXT, NULL, &v);
  expect(&v, AWF_DNS_ACT_NODATA, "not_allowed", true); /* audit still never forwards TXT */
  decide(acl, true, "allowed.test", AWF_DNS_TYPE_A, NULL, &v);
  expect(&v, AWF_DNS_ACT_RESOLVE, "allowed", false);
  awf_acl_free(acl);
}

static void add_addr(struct awf_addr_list *l, const char *text) {
  struct sockaddr_storage *ss = &l->addr[l->n++];
  memset(ss, 0, sizeof(*ss));
  if (strchr(text, ':')) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
  }
}

static void test_select_addrs(void **state) {
  (void)state;
  char err[128];
  awf_addr_policy *p = awf_addr_policy_new();
  assert_non_null(p);
  assert_int_equal(awf_addr_policy_allow_cidrs(p, "10.1.0.0/16", err, sizeof(err)), 0);
  struct awf_addr_list l;
  memset(&l, 0, sizeof(l));
  add_addr(&l, "93.184.216.34");
  add_addr(&l, "10.0.0.1");        /* rfc1918: refused */
  add_addr(&l, "10.1.2.3");        /* inside --allow-destination-cidrs */
  add_addr(&l, "169.254.169.254"); /* metadata: refused */
  add_addr(&l, "2606:2800::1");
  add_addr(&l, "::ffff:10.0.0.1"); /* mapped private: refused */
  add_addr(&l, "fd00::1");         /* ula: refused */
  l.ttl_s = 77;

  struct awf_dns_rr rrs[AWF_RESOLVE_MAX_ADDRS];
  size_t refused = 99;
  size_t n = awf_dns_select_addrs(&l, AWF_DNS_TYPE_A, p, 30, rrs, AWF_RESOLVE_MAX_ADDRS,
                                  &refused);
  assert_int_equal(n, 2);
  assert_int_equal(refused, 2);
  const uint8_t a0[4] = {93, 184, 216, 34}, a1[4] = {10, 1, 2, 3};
  assert_memory_equal(rrs[0].u.a, a0, 4);
  assert_memory_equal(rrs[1].u.a, a1, 4);
  for (size_t i = 0; i < n; i++) {
    assert_null(rrs[i].owner);
    assert_int_equal(rrs[i].type, AWF_DNS_TYPE_A);
    assert_int_equal(rrs[i].ttl, 30);
  }

  n = awf_dns_select_addrs(&l, AWF_DNS_TYPE_AAAA, p, 5, rrs, AWF_RESOLVE_MAX_ADDRS, &refused);
  assert_int_equal(n, 1);
  assert_int_equal(refused, 2);
  assert_int_equal(rrs[0].type, AWF_DNS_TYPE_AAAA);
  assert_int_equal(rrs[0].ttl, 5);
  struct in6_addr want;
  inet_pton(AF_INET6, "2606:2800::1", &want);
  assert_memory_equal(rrs[0].u.aaaa, &want, 16);

  /* A cap on the output: the count is still right, nothing written past it. */
  memset(rrs, 0xee, sizeof(rrs));
  n = awf_dns_select_addrs(&l, AWF_DNS_TYPE_A, p, 30, rrs, 1, NULL);
  assert_int_equal(n, 1);
  assert_int_equal(rrs[1].type, 0xeeee);

  /* Other types get nothing; an out-of-range count is clamped. */
  assert_int_equal(awf_dns_select_addrs(&l, AWF_DNS_TYPE_TXT, p, 30, rrs, 16, &refused), 0);
  assert_int_equal(refused, 0);
  l.n = 1000;
  n = awf_dns_select_addrs(&l, AWF_DNS_TYPE_A, p, 30, rrs, AWF_RESOLVE_MAX_ADDRS, &refused);
  assert_int_equal(n, 2);
  awf_addr_policy_free(p);
}

/* ---- the server on a loop ----------------------------------------------- */

#define SEEN_MAX 256
#define PUBLIC_V4 "93.184.216.34"
#define PUBLIC_V6 "2606:2800::1"

#define UP_TCP_MAX 8

/* A TCP connection to the fake upstream: c-ares retries there when the UDP
 * answer had TC set. */
struct up_tcp {
  int fd; /* -1: free slot */
  uint8_t buf[1024];
  size_t len;
};

struct fx {
  uv_loop_t loop;
  int up_fd;  /* the fake upstream (UDP), served by pump() */
  int up_lfd; /* its TCP listener, same port */
  struct up_tcp up_conns[UP_TCP_MAX];
  struct sockaddr_in up_addr;
  char seen[SEEN_MAX][AWF_DNS_NAME_MAX + 1];
  size_t nseen;
  awf_acl *acl;
  awf_addr_policy *policy;
  awf_resolver *res;
  awf_logfile *log;
  char logpath[64];
  awf_dns_server *srv;
  struct sockaddr_storage bound;
  int done_calls;
};

/* The upstream's zone: names starting "slow" are never answered, "many"
 * gets 16 AAAA, "private" a private A, "mixed" a private and a public A,
 * "evil.test" a public A; other *.allowed.test names a public A and AAAA;
 * the rest NXDOMAIN. TTL 300 everywhere. */
static void upstream_answer(struct fx *f, const uint8_t *msg, size_t len,
                            const struct sockaddr_in *peer, int tcp_fd) {
  struct awf_dns_query q;
  if (awf_dns_parse_query(msg, len, &q) != AWF_DNS_PARSE_OK)
    return;
  if (f->nseen < SEEN_MAX)
    memcpy(f->seen[f->nseen++], q.qname, q.qname_len + 1);
  if (strncmp(q.qname, "slow", 4) == 0)
    return;
  struct awf_dns_rr rrs[AWF_RESOLVE_MAX_ADDRS];
  memset(rrs, 0, sizeof(rrs));
  size_t n = 0;
  unsigned rcode = AWF_DNS_NOERROR;
  const char *v4[2] = {NULL, NULL}, *v6 = NULL;
  bool suffix = q.qname_len >= 12 && strcmp(q.qname + q.qname_len - 12, "allowed.test") == 0;
  if (strncmp(q.qname, "many", 4) == 0) {
    for (; q.qtype == AWF_DNS_TYPE_AAAA && n < AWF_RESOLVE_MAX_ADDRS; n++) {
      char text[64];
      snprintf(text, sizeof(text), "2606:2800::%zx", n + 1);
      rrs[n].type = AWF_DNS_TYPE_AAAA;
      inet_pton(AF_INET6, text, rrs[n].u.aaaa);
    }
  } else if (strncmp(q.qname, "private", 7) == 0) {
    v4[0] = "10.0.0.1";
  } else if (strncmp(q.qname, "mixed", 5) == 0) {
    v4[0] = "10.0.0.1";
    v4[1] = PUBLIC_V4;
  } else if (strcmp(q.qname, "evil.test") == 0 || (suffix && strncmp(q.qname, "nx", 2) != 0)) {
    v4[0] = PUBLIC_V4;
    v6 = PUBLIC_V6;
  } else {
    rcode = AWF_DNS_NXDOMAIN;
  }
  for (int i = 0; i < 2 && q.qtype == AWF_DNS_TYPE_A; i++)
    if (v4[i]) {
      rrs[n].type = AWF_DNS_TYPE_A;
      inet_pton(AF_INET, v4[i], rrs[n++].u.a);
    }
  if (v6 && q.qtype == AWF_DNS_TYPE_AAAA) {
    rrs[n].type = AWF_DNS_TYPE_AAAA;
    inet_pton(AF_INET6, v6, rrs[n++].u.aaaa);
  }
  for (size_t i = 0; i < n; i++)
    rrs[i].ttl = 300;
  uint8_t out[4096];
  size_t limit = tcp_fd >= 0 ? sizeof(out) - 2 : awf_dns_udp_limit(&q);
  int olen = awf_dns_build_response(&q, rcode, rrs, n, limit, out + 2, sizeof(out) - 2, NULL);
  assert_true(olen > 0);
  if (tcp_fd < 0) {
    sendto(f->up_fd, out + 2, (size_t)olen, 0, (const struct sockaddr *)peer, sizeof(*peer));
    return;
  }
  awf_dns_tcp_prefix(out, (size_t)olen);
  assert_int_equal(send(tcp_fd, out, (size_t)olen + 2, MSG_NOSIGNAL), olen + 2);
}

static void upstream_tcp(struct fx *f) {
  int fd = accept4(f->up_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  for (int i = 0; fd >= 0 && i < UP_TCP_MAX; i++)
    if (f->up_conns[i].fd < 0) {
      f->up_conns[i].fd = fd;
      f->up_conns[i].len = 0;
      fd = -1;
    }
  if (fd >= 0)
    close(fd);
  for (int i = 0; i < UP_TCP_MAX; i++) {
    struct up_tcp *c = &f->up_conns[i];
    if (c->fd < 0)
      continue;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      close(c->fd);
      c->fd = -1;
      continue;
    }
    if (n > 0)
      c->len += (size_t)n;
    const uint8_t *msg;
    size_t mlen;
    while (awf_dns_tcp_next(c->buf, c->len, &msg, &mlen) == 1) {
      upstream_answer(f, msg, mlen, NULL, c->fd);
      memmove(c->buf, c->buf + 2 + mlen, c->len - 2 - mlen);
      c->len -= 2 + mlen;
    }
  }
}

static size_t seen_count(const struct fx *f, const char *needle) {
  size_t c = 0;
  for (size_t i = 0; i < f->nseen; i++)
    c += strstr(f->seen[i], needle) != NULL;
  return c;
}

/* One round: the loop without blocking, then the upstream's mail. */
static void pump_once(struct fx *f) {
  uv_run(&f->loop, UV_RUN_NOWAIT);
  uint8_t buf[4096];
  struct sockaddr_in peer;
  socklen_t pl = sizeof(peer);
  ssize_t n;
  while ((n = recvfrom(f->up_fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&peer,
                       &pl)) >= 0) {
    upstream_answer(f, buf, (size_t)n, &peer, -1);
    pl = sizeof(peer);
  }
  upstream_tcp(f);
  usleep(300);
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pump_for(struct fx *f, unsigned ms) {
  uint64_t end = mono_ms() + ms;
  while (mono_ms() < end)
    pump_once(f);
}

static int fx_setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  char err[256];
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  /* UDP and TCP on one port, as c-ares expects: take a UDP port, then try
   * its TCP twin. */
  for (int tries = 0; tries < 50; tries++) {
    f->up_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    f->up_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(f->up_fd >= 0 && f->up_lfd >= 0);
    memset(&f->up_addr, 0, sizeof(f->up_addr));
    f->up_addr.sin_family = AF_INET;
    f->up_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->up_fd, (struct sockaddr *)&f->up_addr, sizeof(f->up_addr)), 0);
    socklen_t sl = sizeof(f->up_addr);
    getsockname(f->up_fd, (struct sockaddr *)&f->up_addr, &sl);
    if (bind(f->up_lfd, (struct sockaddr *)&f->up_addr, sizeof(f->up_addr)) == 0)
      break;
    close(f->up_fd);
    close(f->up_lfd);
    f->up_fd = f->up_lfd = -1;
  }
  assert_true(f->up_lfd >= 0);
  assert_int_equal(listen(f->up_lfd, 8), 0);
  for (int i = 0; i < UP_TCP_MAX; i++)
    f->up_conns[i].fd = -1;

  f->acl = acl_of("allowed.test", "blocked.allowed.test");
  f->policy = awf_addr_policy_new();
  assert_non_null(f->policy);

  struct awf_resolver_options ro;
  char servers[64];
  awf_resolver_options_default(&ro);
  snprintf(servers, sizeof(servers), "127.0.0.1:%u", ntohs(f->up_addr.sin_port));
  ro.servers = servers;
  ro.timeout_ms = 1000;
  ro.tries = 1;
  assert_int_equal(awf_resolver_new(&f->loop, &ro, &f->res, err, sizeof(err)), 0);

  strcpy(f->logpath, "/tmp/awf-test-dns-XXXXXX");
  int fd = mkstemp(f->logpath);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(awf_logfile_open(f->logpath, &f->log), 0);
  *state = f;
  return 0;
}

static void on_server_done(void *arg) {
  struct fx *f = arg;
  f->done_calls++;
}

static void fx_close_server(struct fx *f) {
  if (!f->srv)
    return;
  awf_dns_server_close(f->srv, on_server_done, f);
  f->srv = NULL;
  for (int i = 0; i < 100 && f->done_calls == 0; i++)
    pump_once(f);
  assert_int_equal(f->done_calls, 1);
}

static int fx_teardown(void **state) {
  struct fx *f = *state;
  fx_close_server(f);
  awf_resolver_close(f->res);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0); /* every handle was closed */
  assert_int_equal(f->done_calls <= 1, 1);
  awf_logfile_close(f->log);
  unlink(f->logpath);
  awf_acl_free(f->acl);
  awf_addr_policy_free(f->policy);
  close(f->up_fd);
  close(f->up_lfd);
  for (int i = 0; i < UP_TCP_MAX; i++)
    if (f->up_conns[i].fd >= 0)
      close(f->up_conns[i].fd);
  free(f);
  return 0;
}

static void fx_start(struct fx *f, bool audit, unsigned max_pending, unsigned max_tcp,
                     unsigned idle_ms) {
  struct awf_dns_server_config cfg = {
      .acl = f->acl,
      .policy = f->policy,
      .resolver = f->res,
      .log = f->log,
      .audit = audit,
      .max_pending = max_pending,
      .max_tcp = max_tcp,
      .tcp_idle_timeout_ms = idle_ms,
  };
  struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(awf_dns_server_new(&f->loop, &cfg, (struct sockaddr *)&any, &f->bound,
                                      &f->srv),
                   0);
  assert_int_equal(f->bound.ss_family, AF_INET);
  assert_int_not_equal(((struct sockaddr_in *)&f->bound)->sin_port, 0);
}

static char *read_log(const struct fx *f) {
  static char buf[256 * 1024];
  int fd = open(f->logpath, O_RDONLY);
  assert_true(fd >= 0);
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  assert_true(n >= 0);
  buf[n] = '\0';
  return buf;
}

/* The number of log lines containing every one of the NULL-terminated
 * strings. */
static int log_lines(const struct fx *f, ...) {
  char *text = read_log(f);
  int hits = 0;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    va_list ap;
    va_start(ap, f);
    bool all = true;
    const char *s;
    while ((s = va_arg(ap, const char *)) != NULL)
      all = all && strstr(line, s) != NULL;
    va_end(ap);
    hits += all;
  }
  return hits;
}

/* -- clients -- */

static int udp_client(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  assert_true(fd >= 0);
  return fd;
}

static void udp_send(const struct fx *f, int fd, const uint8_t *msg, size_t len) {
  ssize_t n = sendto(fd, msg, len, 0, (const struct sockaddr *)&f->bound,
                     sizeof(struct sockaddr_in));
  assert_int_equal(n, (ssize_t)len);
}

/* The next reply on fd within timeout_ms, or -1. */
static ssize_t udp_recv(struct fx *f, int fd, uint8_t *buf, size_t cap, unsigned timeout_ms) {
  uint64_t end = mono_ms() + timeout_ms;
  do {
    pump_once(f);
    ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
    if (n >= 0)
      return n;
  } while (mono_ms() < end);
  return -1;
}

static ssize_t udp_ask(struct fx *f, const uint8_t *q, size_t qlen, uint8_t *buf, size_t cap) {
  int fd = udp_client();
  udp_send(f, fd, q, qlen);
  ssize_t n = udp_recv(f, fd, buf, cap, 3000);
  close(fd);
  return n;
}

struct hdr {
  uint16_t id, flags, qd, an, ns, ar;
};

static struct hdr get_hdr(const uint8_t *b, ssize_t n) {
  struct hdr h;
  assert_true(n >= 12);
  h.id = (uint16_t)(b[0] << 8 | b[1]);
  h.flags = (uint16_t)(b[2] << 8 | b[3]);
  h.qd = (uint16_t)(b[4] << 8 | b[5]);
  h.an = (uint16_t)(b[6] << 8 | b[7]);
  h.ns = (uint16_t)(b[8] << 8 | b[9]);
  h.ar = (uint16_t)(b[10] << 8 | b[11]);
  return h;
}

#define RCODE(h) ((h).flags & 0xF)
#define TC(h) (((h).flags & 0x0200) != 0)

/* Offset of the first answer: past the header and the (uncompressed)
 * question we sent. */
static size_t first_answer(const uint8_t *b, size_t n) {
  size_t off = 12;
  while (off < n && b[off] != 0)
    off += 1u + b[off];
  return off + 1 + 4;
}

static void test_server_udp_answers(void **state) {
  struct fx *f = *state;
  fx_start(f, false, 0, 0, 0);
  uint8_t q[600], r[2048];
  ssize_t n;

  /* Admitted A: the upstream's address, the TTL capped at 30. */
  size_t ql = mkquery(q, 0x1234, "www.Allowed.test", AWF_DNS_TYPE_A, NULL);
  n = udp_ask(f, q, ql, r, sizeof(r));
  struct hdr h = get_hdr(r, n);
  assert_int_equal(h.id, 0x1234);
  assert_true(h.flags & 0x8000);
  assert_int_equal(RCODE(h), AWF_DNS_NOERROR);
  assert_int_equal(h.an, 1);
  size_t a = first_answer(r, (size_t)n);
  assert_int_equal(r[a] << 8 | r[a + 1], 0xC00C);
  assert_int_equal(r[a + 2] << 8 | r[a + 3], AWF_DNS_TYPE_A);
  uint32_t ttl = (uint32_t)r[a + 6] << 24 | (uint32_t)r[a + 7] << 16 | r[a + 8] << 8 | r[a + 9];
  assert_int_equal(ttl, AWF_DNS_ANSWER_TTL_MAX);
  const uint8_t pub4[4] = {93, 184, 216, 34};
  assert_memory_equal(r + a + 12, pub4, 4);
  /* The question echoed with the client's case (0x20 randomisation). */
  assert_memory_equal(r + 12, q + 12, ql - 12);

  /* AAAA of the same name: answered from the resolver's cache. */
  size_t before = f->nseen;
  ql = mkquery(q, 2, "www.allowed.test", AWF_DNS_TYPE_AAAA, NULL);
  n = udp_ask(f, q, ql, r, sizeof(r));
  h = get_hdr(r, n);
  assert_int_equal(RCODE(h), AWF_DNS_NOERROR);
  assert_int_equal(h.an, 1);
  a = first_answer(r, (size_t)n);
  assert_int_equal(r[a + 2] << 8 | r[a + 3], AWF_DNS_TYPE_AAAA);
  assert_int_equal(f->nseen, before);

  /* Other types of an admitted name: NODATA, nothing asked upstream. */
  const uint16_t others[] = {AWF_DNS_TYPE_TXT, AWF_DNS_TYPE_MX, AWF_DNS_TYPE_HTTPS,
                             AWF_DNS_TYPE_ANY};
  for (size_t i = 0; i < 4; i++) {
    ql = mkquery(q, 3, "fresh.allowed.test", others[i], NULL);
    n = udp_ask(f, q, ql, r, sizeof(r));
    h = get_hdr(r, n);
    assert_int_equal(RCODE(h), AWF_DNS_NOERROR);
    assert_int_equal(h.an, 0);
  }
  assert_int_equal(seen_count(f, "fresh"), 0);

  /* Denied names, any type: NXDOMAIN (blocked) and never forwarded. */
  const char *denied[] = {"secret.attacker.example", "evil.test", "x.blocked.allowed.test"};
  for (size_t i = 0; i < 3; i++) {
    ql = mkquery(q, 4, denied[i], i == 0 ? AWF_DNS_TYPE_TXT : AWF_DNS_TYPE_A, NULL);
    n = udp_ask(f, q, ql, r, sizeof(r));
    h = get_hdr(r, n);
    assert_int_equal(RCODE(h), AWF_DNS_NXDOMAIN);
    assert_int_equal(h.an, 0);
  }
  assert_int_equal(seen_count(f, "attacker"), 0);
  assert_int_equal(seen_count(f, "evil"), 0);
  assert_int_equal(seen_count(f, "blocked"), 0);

  /* Only private addresses: NODATA. A private and a public one: the public. */
  ql = mkquery(q, 5, "private.allowed.test", AWF_DNS_TYPE_A, NULL);
  n = udp_ask(f, q, ql, r, sizeof(r));
  h = get_hdr(r, n);
  assert_int_equal(RCODE(h), AWF_DNS_NOERROR);
  assert_int_equal(h.an, 0);
  ql = mkquery(q, 6, "mixed.allowed.test", AWF_DNS_TYPE_A, NULL);
  n = udp_ask(f, q, ql, r, sizeof(r));
  h = get_hdr(r, n);
  assert_int_equal(h.an, 1);
  assert_memory_equal(r + first_answer(r, (size_t)n) + 12, pub4, 4);

  /* No such name. */
  ql = mkquery(q, 7, "nx.allowed.test", AWF_DNS_TYPE_A, NULL);
  n = udp_ask(f, q, ql, r, sizeof(r));
  h = get_hdr(r, n);
  assert_int_equal(RCODE(h), AWF_DNS_NXDOMAIN);

  /* EDNS echoed. */
  struct qopt eo = {.flags = 0x0100, .edns = true, .edns_size = 4096};
  ql = mkquery(q, 8, "www.allowed.test", AWF_DNS_TYPE_A, &eo);
  n = udp_ask(f, q, ql, r, sizeof(r));
  h = get_hdr(r, n);
  assert_int_equal(h.an, 1);
  assert_int_equal(h.ar, 1);

  /* A denied name asked with EDNS: NXDOMAIN whose OPT carries the Extended
   * DNS Error "Blocked" (RFC 8914) naming awf's policy. */
  ql = mkquery(q, 9, "evil.test", AWF_DNS_TYPE_A, &eo);
  n = udp_ask(f, q, ql, r, sizeof(r));
  h = get_hdr(r, n);
  assert_int_equal(RCODE(h), AWF_DNS_NXDOMAIN);
  assert_int_equal(h.an, 0);
  assert_int_equal(h.ar, 1);
  {
    static const char text[] = "awf: denied by policy (not_allowed)";
    size_t tl = sizeof(text) - 1;
    /* The OPT record is last: root, type 41, size, ttl, rdlen, option. */
    const uint8_t *opt = r + n - (11 + 6 + tl);
    assert_int_equal(opt[0], 0);
    assert_int_equal(opt[1] << 8 | opt[2], AWF_DNS_TYPE_OPT);
    assert_int_equal(opt[9] << 8 | opt[10], 6 + tl);
    assert_int_equal(opt[11] << 8 | opt[12], AWF_DNS_OPT_EDE);
    assert_int_equal(opt[13] << 8 | opt[14], 2 + tl);
    assert_int_equal(opt[15] << 8 | opt[16], AWF_DNS_EDE_BLOCKED);
    assert_memory_equal(opt + 17, text, tl);
  }

  /* Loopback names are answered here, never forwarded nor denied. */
  ql = mkquery(q, 10, "localhost", AWF_DNS_TYPE_A, NULL);
  n = udp_ask(f, q, ql, r, sizeof(r));
  h = get_hdr(r, n);
  assert_int_equal(RCODE(h), AWF_DNS_NOERROR);
  assert_int_equal(h.an, 1);
  assert_memory_equal(r + n - 4, "\x7f\0\0\x01", 4);
  ql = mkquery(q, 11, "1.0.0.127.in-addr.arpa", AWF_DNS_TYPE_PTR, NULL);
  n = udp_ask(f, q, ql, r, sizeof(r));
  h = get_hdr(r, n);
  assert_int_equal(RCODE(h), AWF_DNS_NOERROR);
  assert_int_equal(h.an, 1);
  assert_memory_equal(r + n - 11, "\x09localhost\0", 11);
  ql = mkquery(q, 12, "1.1.0.127.in-addr.arpa", AWF_DNS_TYPE_PTR, NULL);
  h = get_hdr(r, udp_ask(f, q, ql, r, sizeof(r)));
  assert_int_equal(RCODE(h), AWF_DNS_NXDOMAIN);
  assert_int_equal(seen_count(f, "arpa"), 0);
  assert_int_equal(seen_count(f, "localhost"), 0);
  assert_int_equal(log_lines(f, "\"qname\":\"1.1.0.127.in-addr.arpa\"",
                             "\"decision\":\"allow\"", "\"reason\":\"loopback\"", NULL),
                   1);

  assert_int_equal(log_lines(f, "\"event\":\"dns\"",
                             "\"client\":\"127.0.0.1:", "\"decision\":\"allow\"",
                             "\"reason\":\"allowed\"", "\"qname\":\"www.allowed.test\"",
                             "\"qtype\":\"A\"", "\"answers\":1", "\"duration_ms\":", NULL),
                   2);
  assert_int_equal(log_lines(f, "\"qname\":\"secret.attacker.example\"", "\"qtype\":\"TXT\"",
                             "\"decision\":\"deny\"", "\"reason\":\"not_allowed\"",
                             "\"answers\":0", NULL),
                   1);
  assert_int_equal(log_lines(f, "\"qname\":\"x.blocked.allowed.test\"",
                             "\"reason\":\"blocked\"", NULL),
                   1);
  assert_int_equal(log_lines(f, "\"qname\":\"private.allowed.test\"", "\"decision\":\"deny\"",
                             "\"reason\":\"private_destination\"", "\"answers\":0", NULL),
                   1);
  assert_int_equal(log_lines(f, "\"qname\":\"fresh.allowed.test\"", "\"qtype\":\"HTTPS\"",
                             "\"decision\":\"allow\"", "\"answers\":0", NULL),
                   1);
  assert_int_equal(log_lines(f, "\"qname\":\"nx.allowed.test\"", "\"decision\":\"allow\"",
                             "\"answers\":0", NULL),
                   1);
  assert_int_equal(log_lines(f, "would_deny", NULL), 0);
  assert_int_equal(log_lines(f, "\"event\":\"dns\"", NULL),
                   17); /* 13, the blocked name and 3 loopback names */
}

static void test_server_udp_malformed(void **state) {
  struct fx *f = *state;
  fx_start(f, false, 0, 0, 0);
  uint8_t q[600], r[2048];
  int fd = udp_client();

  /* Shorter than a header, a response, an empty datagram: no reply. */
  const uint8_t shorty[5] = {1, 2, 3, 4, 5};
  udp_send(f, fd, shorty, sizeof(shorty));
  size_t ql = mkquery(q, 9, "www.allowed.test", AWF_DNS_TYPE_A, NULL);
  q[2] |= 0x80; /* QR */
  udp_send(f, fd, q, ql);
  udp_send(f, fd, q, 0);
  assert_int_equal(udp_recv(f, fd, r, sizeof(r), 200), -1);

  /* A header promising a question that is not there: FORMERR, id kept. */
  const uint8_t noq[12] = {0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  udp_send(f, fd, noq, sizeof(noq));
  ssize_t n = udp_recv(f, fd, r, sizeof(r), 2000);
  struct hdr h = get_hdr(r, n);
  assert_int_equal(h.id, 0xabcd);
  assert_int_equal(RCODE(h), AWF_DNS_FORMERR);

  /* Trailing garbage: FORMERR. */
  ql = mkquery(q, 10, "www.allowed.test", AWF_DNS_TYPE_A, NULL);
  q[ql++] = 0xff;
  udp_send(f, fd, q, ql);
  h = get_hdr(r, udp_recv(f, fd, r, sizeof(r), 2000));
  assert_int_equal(RCODE(h), AWF_DNS_FORMERR);
  assert_int_equal(h.an, 0);

  /* A datagram larger than the receive buffer arrives cut: FORMERR, even
   * when what fits is a well-formed query (4096 bytes, thanks to an EDNS
   * option) and only the rest is garbage. */
  static uint8_t big[9000];
  struct qopt bo = {.flags = 0x0100, .edns = true, .edns_size = 1232};
  ql = mkquery(big, 11, "www.allowed.test", AWF_DNS_TYPE_A, &bo);
  size_t dlen = 4096 - ql - 4;
  big[ql - 2] = (uint8_t)((dlen + 4) >> 8), big[ql - 1] = (uint8_t)(dlen + 4);
  big[ql] = 0xfd, big[ql + 1] = 0xe9; /* option 65001, local use */
  big[ql + 2] = (uint8_t)(dlen >> 8), big[ql + 3] = (uint8_t)dlen;
  memset(big + ql + 4, 0, sizeof(big) - ql - 4);
  struct awf_dns_query bq;
  assert_int_equal(awf_dns_parse_query(big, 4096, &bq), AWF_DNS_PARSE_OK);
  udp_send(f, fd, big, sizeof(big));
  h = get_hdr(r, udp_recv(f, fd, r, sizeof(r), 2000));
  assert_int_equal(h.id, 11);
  assert_int_equal(RCODE(h), AWF_DNS_FORMERR);

  /* Opcode STATUS (2): NOTIMP. */
  struct qopt st = {.flags = 2 << 11};
  ql = mkquery(q, 12, "www.allowed.test", AWF_DNS_TYPE_A, &st);
  udp_send(f, fd, q, ql);
  h = get_hdr(r, udp_recv(f, fd, r, sizeof(r), 2000));
  assert_int_equal(RCODE(h), AWF_DNS_NOTIMP);

  /* EDNS version 1: BADVERS (16): 0 in the header, 1 in the OPT's TTL. */
  struct qopt ev = {.flags = 0x0100, .edns = true, .edns_size = 1232, .edns_version = 1};
  ql = mkquery(q, 13, "www.allowed.test", AWF_DNS_TYPE_A, &ev);
  udp_send(f, fd, q, ql);
  n = udp_recv(f, fd, r, sizeof(r), 2000);
  h = get_hdr(r, n);
  assert_int_equal(RCODE(h), 0);
  assert_int_equal(h.ar, 1);
  assert_int_equal(r[n - 11 + 5], 1); /* extended rcode: 16 >> 4 */

  /* Random bytes with a readable header never crash it; then it still answers. */
  srand(42);
  for (int i = 0; i < 300; i++) {
    uint8_t junk[64];
    size_t len = (size_t)(rand() % (int)sizeof(junk));
    for (size_t k = 0; k < len; k++)
      junk[k] = (uint8_t)rand();
    udp_send(f, fd, junk, len);
    pump_once(f);
  }
  while (recv(fd, r, sizeof(r), MSG_DONTWAIT) >= 0)
    ;
  ql = mkquery(q, 14, "www.allowed.test", AWF_DNS_TYPE_A, NULL);
  udp_send(f, fd, q, ql);
  for (;;) { /* replies to the junk may still be in flight */
    n = udp_recv(f, fd, r, sizeof(r), 3000);
    assert_true(n >= 12);
    if (get_hdr(r, n).id == 14)
      break;
  }
  h = get_hdr(r, n);
  assert_int_equal(h.an, 1);
  close(fd);

  assert_true(log_lines(f, "\"decision\":\"deny\"", "\"reason\":\"bad_request\"", NULL) >= 6);
  assert_true(log_lines(f, "\"reason\":\"not_implemented\"", NULL) >= 1);
}

static void test_server_truncation(void **state) {
  struct fx *f = *state;
  fx_start(f, false, 0, 0, 0);
  uint8_t q[600], r[2048];
  /* 16 AAAA records (448 bytes) after a long name overflow 512 bytes. */
  const char *name = "many.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.allowed.test";
  size_t ql = mkquery(q, 20, name, AWF_DNS_TYPE_AAAA, NULL);
  ssize_t n = udp_ask(f, q, ql, r, sizeof(r));
  struct hdr h = get_hdr(r, n);
  assert_true(n <= 512);
  assert_true(TC(h));
  assert_true(h.an < 16);
  /* With a large EDNS size, all of them. */
  struct qopt eo = {.flags = 0x0100, .edns = true, .edns_size = 1232};
  ql = mkquery(q, 21, name, AWF_DNS_TYPE_AAAA, &eo);
  n = udp_ask(f, q, ql, r, sizeof(r));
  h = get_hdr(r, n);
  assert_false(TC(h));
  assert_int_equal(h.an, 16);
  assert_int_equal(log_lines(f, "\"qname\":\"many.", "\"answers\":16", NULL), 1);
}

/* -- TCP -- */

static int tcp_client(const struct fx *f) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  /* Blocking connect completes in the kernel's accept queue. */
  assert_int_equal(connect(fd, (const struct sockaddr *)&f->bound, sizeof(struct sockaddr_in)),
                   0);
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  return fd;
}

static void tcp_send_raw(int fd, const void *p, size_t n) {
  assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void tcp_send_msg(int fd, const uint8_t *msg, size_t n) {
  uint8_t pre[2] = {(uint8_t)(n >> 8), (uint8_t)n};
  tcp_send_raw(fd, pre, 2);
  tcp_send_raw(fd, msg, n);
}

/* One framed message: its length; 0 when the server closed; -1 on timeout. */
static ssize_t tcp_recv_msg(struct fx *f, int fd, uint8_t *buf, size_t cap,
                            unsigned timeout_ms) {
  uint8_t acc[70000];
  size_t have = 0;
  uint64_t end = mono_ms() + timeout_ms;
  while (mono_ms() < end) {
    pump_once(f);
    /* Read no further than this message, so the next stays in the socket. */
    size_t want = have < 2 ? 2 - have : (size_t)(acc[0] << 8 | acc[1]) + 2 - have;
    ssize_t n = recv(fd, acc + have, want, MSG_DONTWAIT);
    if (n == 0)
      return 0;
    if (n < 0) {
      if (errno == ECONNRESET)
        return 0;
      continue;
    }
    have += (size_t)n;
    if (have >= 2) {
      size_t len = (size_t)(acc[0] << 8 | acc[1]);
      if (have == len + 2) {
        assert_true(len <= cap);
        memcpy(buf, acc + 2, len);
        return (ssize_t)len;
      }
    }
  }
  return -1;
}

static void test_server_tcp(void **state) {
  struct fx *f = *state;
  fx_start(f, false, 0, 0, 0);
  uint8_t q[600], q2[600], r[2048];
  int fd = tcp_client(f);

  /* Two queries in one segment; the denied one can overtake the lookup. */
  size_t l1 = mkquery(q, 31, "tcp.allowed.test", AWF_DNS_TYPE_A, NULL);
  size_t l2 = mkquery(q2, 32, "evil.test", AWF_DNS_TYPE_TXT, NULL);
  uint8_t both[1200];
  both[0] = 0, both[1] = (uint8_t)l1;
  memcpy(both + 2, q, l1);
  both[2 + l1] = 0, both[3 + l1] = (uint8_t)l2;
  memcpy(both + 4 + l1, q2, l2);
  tcp_send_raw(fd, both, 4 + l1 + l2);
  bool got31 = false, got32 = false;
  for (int i = 0; i < 2; i++) {
    ssize_t n = tcp_recv_msg(f, fd, r, sizeof(r), 3000);
    struct hdr h = get_hdr(r, n);
    if (h.id == 31) {
      got31 = true;
      assert_int_equal(h.an, 1);
    } else {
      assert_int_equal(h.id, 32);
      got32 = true;
      assert_int_equal(RCODE(h), AWF_DNS_NXDOMAIN);
    }
  }
  assert_true(got31 && got32);

  /* One message dribbled in a byte at a time. */
  l1 = mkquery(q, 33, "tcp.allowed.test", AWF_DNS_TYPE_AAAA, NULL);
  uint8_t pre[2] = {0, (uint8_t)l1};
  tcp_send_raw(fd, pre, 1);
  pump_for(f, 5);
  tcp_send_raw(fd, pre + 1, 1);
  for (size_t i = 0; i < l1; i++) {
    tcp_send_raw(fd, q + i, 1);
    pump_once(f);
  }
  ssize_t n = tcp_recv_msg(f, fd, r, sizeof(r), 3000);
  struct hdr h = get_hdr(r, n);
  assert_int_equal(h.id, 33);
  assert_int_equal(h.an, 1);

  /* TCP answers are not truncated, whatever the EDNS size. */
  const char *name = "many.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.allowed.test";
  l1 = mkquery(q, 34, name, AWF_DNS_TYPE_AAAA, NULL);
  tcp_send_msg(fd, q, l1);
  n = tcp_recv_msg(f, fd, r, sizeof(r), 3000);
  h = get_hdr(r, n);
  assert_int_equal(h.id, 34);
  assert_false(TC(h));
  assert_int_equal(h.an, 16);
  assert_true(n > 512);

  /* A response (QR=1) over TCP: no answer, the connection is closed. */
  l1 = mkquery(q, 35, "tcp.allowed.test", AWF_DNS_TYPE_A, NULL);
  q[2] |= 0x80;
  tcp_send_msg(fd, q, l1);
  assert_int_equal(tcp_recv_msg(f, fd, r, sizeof(r), 2000), 0);
  close(fd);

  /* A zero length prefix closes the connection. */
  fd = tcp_client(f);
  tcp_send_raw(fd, "\0\0", 2);
  assert_int_equal(tcp_recv_msg(f, fd, r, sizeof(r), 2000), 0);
  close(fd);

  /* Half-close after a query still gets the answer, then the close. */
  fd = tcp_client(f);
  l1 = mkquery(q, 36, "half.allowed.test", AWF_DNS_TYPE_A, NULL);
  tcp_send_msg(fd, q, l1);
  shutdown(fd, SHUT_WR);
  n = tcp_recv_msg(f, fd, r, sizeof(r), 3000);
  h = get_hdr(r, n);
  assert_int_equal(h.id, 36);
  assert_int_equal(h.an, 1);
  assert_int_equal(tcp_recv_msg(f, fd, r, sizeof(r), 2000), 0);
  close(fd);

  /* A maximum-size message (65535 bytes of garbage after a header): FORMERR. */
  fd = tcp_client(f);
  static uint8_t huge[65535];
  memset(huge, 0, sizeof(huge));
  mkquery(huge, 37, "tcp.allowed.test", AWF_DNS_TYPE_A, NULL);
  uint8_t hp[2] = {0xff, 0xff};
  tcp_send_raw(fd, hp, 2);
  size_t sent = 0;
  while (sent < sizeof(huge)) {
    ssize_t k = send(fd, huge + sent, sizeof(huge) - sent, MSG_NOSIGNAL);
    if (k > 0)
      sent += (size_t)k;
    pump_once(f);
  }
  n = tcp_recv_msg(f, fd, r, sizeof(r), 3000);
  h = get_hdr(r, n);
  assert_int_equal(h.id, 37);
  assert_int_equal(RCODE(h), AWF_DNS_FORMERR);
  close(fd);

  assert_int_equal(log_lines(f, "\"qname\":\"evil.test\"", "\"qtype\":\"TXT\"",
                             "\"reason\":\"not_allowed\"", NULL),
                   1);
  assert_int_equal(log_lines(f, "\"qname\":\"tcp.allowed.test\"", "\"answers\":1", NULL), 2);
}

static void test_server_tcp_limits(void **state) {
  struct fx *f = *state;
  fx_start(f, false, 0, 1, 300);
  uint8_t q[600], r[2048];

  int c1 = tcp_client(f);
  size_t ql = mkquery(q, 40, "one.allowed.test", AWF_DNS_TYPE_A, NULL);
  tcp_send_msg(c1, q, ql);
  assert_true(tcp_recv_msg(f, c1, r, sizeof(r), 3000) > 0);

  /* Over the cap: accepted and closed at once. */
  int c2 = tcp_client(f);
  assert_int_equal(tcp_recv_msg(f, c2, r, sizeof(r), 2000), 0);
  close(c2);

  /* A message that never completes: closed after the idle timeout. */
  tcp_send_raw(c1, "\0\x20\x01", 3);
  uint64_t t0 = mono_ms();
  assert_int_equal(tcp_recv_msg(f, c1, r, sizeof(r), 3000), 0);
  assert_true(mono_ms() - t0 >= 200);
  close(c1);

  /* Its slot is free again. */
  pump_for(f, 20);
  int c3 = tcp_client(f);
  tcp_send_msg(c3, q, ql);
  assert_true(tcp_recv_msg(f, c3, r, sizeof(r), 3000) > 0);
  close(c3);
}

static void test_server_pending_cap_and_close(void **state) {
  struct fx *f = *state;
  fx_start(f, false, 1, 0, 0);
  uint8_t q[600], r[2048];
  int fd = udp_client();
  size_t ql = mkquery(q, 50, "slow1.allowed.test", AWF_DNS_TYPE_A, NULL);
  udp_send(f, fd, q, ql);
  pump_for(f, 20);
  /* The one lookup slot is taken: the next one fails at once. */
  ql = mkquery(q, 51, "slow2.allowed.test", AWF_DNS_TYPE_A, NULL);
  udp_send(f, fd, q, ql);
  ssize_t n = udp_recv(f, fd, r, sizeof(r), 500);
  struct hdr h = get_hdr(r, n);
  assert_int_equal(h.id, 51);
  assert_int_equal(RCODE(h), AWF_DNS_SERVFAIL);
  assert_int_equal(seen_count(f, "slow2"), 0);
  /* A cached or refused query needs no slot. */
  ql = mkquery(q, 52, "evil.test", AWF_DNS_TYPE_A, NULL);
  udp_send(f, fd, q, ql);
  h = get_hdr(r, udp_recv(f, fd, r, sizeof(r), 500));
  assert_int_equal(RCODE(h), AWF_DNS_NXDOMAIN);

  /* A TCP client waiting on a lookup when the server closes. */
  int t = tcp_client(f);
  ql = mkquery(q, 53, "slow3.allowed.test", AWF_DNS_TYPE_A, NULL);
  tcp_send_msg(t, q, ql);
  pump_for(f, 20);

  fx_close_server(f);
  assert_int_equal(log_lines(f, "\"qname\":\"slow2.allowed.test\"", "\"decision\":\"deny\"",
                             "\"reason\":\"overloaded\"", NULL),
                   1);
  assert_int_equal(log_lines(f, "\"qname\":\"slow1.allowed.test\"",
                             "\"reason\":\"shutting_down\"", NULL),
                   1);
  /* slow3 hit the cap too (slow1 still held the slot). */
  assert_int_equal(log_lines(f, "\"qname\":\"slow3.allowed.test\"", "\"reason\":\"overloaded\"",
                             NULL),
                   1);
  assert_int_equal(recv(fd, r, sizeof(r), MSG_DONTWAIT), -1); /* slow1 got no answer */
  close(fd);
  close(t);
}

static void test_server_lookup_failure(void **state) {
  struct fx *f = *state;
  fx_start(f, false, 0, 0, 0);
  uint8_t q[600], r[2048];
  size_t ql = mkquery(q, 60, "slow.allowed.test", AWF_DNS_TYPE_A, NULL);
  ssize_t n = udp_ask(f, q, ql, r, sizeof(r)); /* the resolver times out after 1 s */
  struct hdr h = get_hdr(r, n);
  assert_int_equal(h.id, 60);
  assert_int_equal(RCODE(h), AWF_DNS_SERVFAIL);
  assert_int_equal(log_lines(f, "\"qname\":\"slow.allowed.test\"", "\"decision\":\"deny\"",
                             "\"reason\":\"dns_failure\"", "\"answers\":0", NULL),
                   1);
}

static void test_server_tcp_conn_closed_during_lookup(void **state) {
  struct fx *f = *state;
  fx_start(f, false, 0, 0, 0);
  uint8_t q[600];
  int t = tcp_client(f);
  size_t ql = mkquery(q, 70, "slow.allowed.test", AWF_DNS_TYPE_A, NULL);
  tcp_send_msg(t, q, ql);
  pump_for(f, 30);
  /* A reset, so the server sees the connection gone, not a half-close: the
   * lookup outlives the connection. */
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(t, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(t);
  pump_for(f, 1500);
  assert_int_equal(log_lines(f, "\"qname\":\"slow.allowed.test\"", "\"reason\":\"dns_failure\"",
                             "\"answers\":0", NULL),
                   1);
}

static void test_server_audit(void **state) {
  struct fx *f = *state;
  fx_start(f, true, 0, 0, 0);
  uint8_t q[600], r[2048];
  size_t ql = mkquery(q, 80, "evil.test", AWF_DNS_TYPE_A, NULL);
  ssize_t n = udp_ask(f, q, ql, r, sizeof(r));
  struct hdr h = get_hdr(r, n);
  assert_int_equal(RCODE(h), AWF_DNS_NOERROR);
  assert_int_equal(h.an, 1);
  ql = mkquery(q, 81, "evil.test", AWF_DNS_TYPE_TXT, NULL);
  h = get_hdr(r, udp_ask(f, q, ql, r, sizeof(r)));
  assert_int_equal(RCODE(h), AWF_DNS_NOERROR);
  assert_int_equal(h.an, 0);
  ql = mkquery(q, 82, "a b.test", AWF_DNS_TYPE_A, NULL);
  h = get_hdr(r, udp_ask(f, q, ql, r, sizeof(r)));
  assert_int_equal(RCODE(h), AWF_DNS_REFUSED);
  assert_int_equal(log_lines(f, "\"qname\":\"evil.test\"", "\"qtype\":\"A\"",
                             "\"decision\":\"allow\"", "\"would_deny\":true",
                             "\"reason\":\"not_allowed\"", "\"answers\":1", NULL),
                   1);
  /* The space is shown escaped (RFC 1035 \DDD), under host and qname alike. */
  assert_int_equal(log_lines(f, "\"host\":\"a\\\\032b.test\"", "\"qname\":\"a\\\\032b.test\"",
                             "\"decision\":\"deny\"", "\"reason\":\"invalid_name\"", NULL),
                   1);
  assert_int_equal(seen_count(f, "evil.test"), 2); /* A and AAAA, nothing for TXT */
}

static void test_server_bad_args(void **state) {
  struct fx *f = *state;
  struct awf_dns_server_config cfg = {.acl = f->acl,
                                      .policy = f->policy,
                                      .resolver = f->res,
                                      .log = f->log};
  struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  awf_dns_server *s = (awf_dns_server *)&cfg;
  assert_int_equal(awf_dns_server_new(&f->loop, NULL, (struct sockaddr *)&lo, NULL, &s),
                   -EINVAL);
  assert_null(s);
  assert_int_equal(awf_dns_server_new(&f->loop, &cfg, NULL, NULL, &s), -EINVAL);
  struct awf_dns_server_config nores = cfg;
  nores.resolver = NULL;
  assert_int_equal(awf_dns_server_new(&f->loop, &nores, (struct sockaddr *)&lo, NULL, &s),
                   -EINVAL);
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  assert_int_equal(awf_dns_server_new(&f->loop, &cfg, (struct sockaddr *)&un, NULL, &s),
                   -EAFNOSUPPORT);

  /* A port whose UDP side is taken. */
  int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_int_equal(bind(u, (struct sockaddr *)&lo, sizeof(lo)), 0);
  struct sockaddr_in taken;
  socklen_t sl = sizeof(taken);
  getsockname(u, (struct sockaddr *)&taken, &sl);
  assert_int_equal(awf_dns_server_new(&f->loop, &cfg, (struct sockaddr *)&taken, NULL, &s),
                   -EADDRINUSE);
  close(u);
  /* A port whose TCP side is taken. */
  int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_int_equal(bind(t, (struct sockaddr *)&lo, sizeof(lo)), 0);
  assert_int_equal(listen(t, 1), 0);
  sl = sizeof(taken);
  getsockname(t, (struct sockaddr *)&taken, &sl);
  assert_int_equal(awf_dns_server_new(&f->loop, &cfg, (struct sockaddr *)&taken, NULL, &s),
                   -EADDRINUSE);
  close(t);
  assert_null(s);

  /* A server closed right away, and close(NULL), are fine; no done given. */
  assert_int_equal(awf_dns_server_new(&f->loop, &cfg, (struct sockaddr *)&lo, NULL, &s), 0);
  awf_dns_server_close(s, NULL, NULL);
  awf_dns_server_close(NULL, NULL, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void on_log_failed(void *arg, int err) {
  int *seen = arg;
  *seen = err;
}

static void test_server_log_failure_reported(void **state) {
  struct fx *f = *state;
  awf_logfile *full;
  if (awf_logfile_open("/dev/full", &full) < 0)
    skip();
  int seen = 0;
  struct awf_dns_server_config cfg = {.acl = f->acl,
                                      .policy = f->policy,
                                      .resolver = f->res,
                                      .log = full,
                                      .log_failed = on_log_failed,
                                      .log_failed_arg = &seen};
  struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(awf_dns_server_new(&f->loop, &cfg, (struct sockaddr *)&lo, &f->bound,
                                      &f->srv),
                   0);
  uint8_t q[600], r[2048];
  size_t ql = mkquery(q, 90, "evil.test", AWF_DNS_TYPE_A, NULL);
  struct hdr h = get_hdr(r, udp_ask(f, q, ql, r, sizeof(r)));
  assert_int_equal(RCODE(h), AWF_DNS_NXDOMAIN); /* answered all the same */
  assert_int_equal(seen, -ENOSPC);
  fx_close_server(f);
  awf_logfile_close(full);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_acl_either_protocol),
      cmocka_unit_test(test_decide_admitted),
      cmocka_unit_test(test_decide_denied),
      cmocka_unit_test(test_decide_loopback),
      cmocka_unit_test(test_host_answer),
      cmocka_unit_test(test_decide_names_and_classes),
      cmocka_unit_test(test_decide_ip_literals),
      cmocka_unit_test(test_decide_audit),
      cmocka_unit_test(test_select_addrs),
      cmocka_unit_test_setup_teardown(test_server_udp_answers, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_server_udp_malformed, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_server_truncation, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_server_tcp, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_server_tcp_limits, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_server_pending_cap_and_close, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_server_lookup_failure, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_server_tcp_conn_closed_during_lookup, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_server_audit, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_server_bad_args, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_server_log_failure_reported, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
