/* Unit tests for acl/addr_policy.c: every denied range, the IPv4-embedding
 * IPv6 forms, and --allow-destination-cidrs parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "addr_policy.h"
#include "hostname.h"

/* The policy's verdict on a textual address: NULL or the range name. */
static const char *verdict(const awf_addr_policy *p, const char *addr) {
  struct sockaddr_storage ss;
  if (awf_ip_literal_parse(addr, strlen(addr), &ss) == 0)
    fail_msg("test address '%s' does not parse", addr);
  return awf_addr_policy_check(p, (const struct sockaddr *)&ss);
}

static void denied(const awf_addr_policy *p, const char *addr, const char *range) {
  const char *v = verdict(p, addr);
  if (v == NULL || strcmp(v, range) != 0)
    fail_msg("%s: got %s, want %s", addr, v ? v : "(allowed)", range);
}

static void allowed(const awf_addr_policy *p, const char *addr) {
  const char *v = verdict(p, addr);
  if (v != NULL)
    fail_msg("%s: denied as %s, want allowed", addr, v);
}

/* The IANA Special-Purpose Address Registries, written out again here (not
 * taken from addr_policy.c) with the verdict expected on each row's first,
 * middle and last address: "row" is the row's own verdict, "allowed" means
 * dialled. Where a more specific row or an embedded IPv4 address decides, the
 * expected verdict is spelled out. */
struct reg_row {
  const char *cidr, *verdict, *first, *mid, *last;
};

static const struct reg_row reg4[] = {
    {"0.0.0.0/8", "this_network", "this_host", "row", "row"},
    {"0.0.0.0/32", "this_host", "row", "row", "row"},
    {"10.0.0.0/8", "private_use", "row", "row", "row"},
    {"100.64.0.0/10", "shared_address_space", "row", "row", "row"},
    {"127.0.0.0/8", "loopback", "row", "row", "row"},
    {"169.254.0.0/16", "link_local", "row", "row", "row"},
    {"172.16.0.0/12", "private_use", "row", "row", "row"},
    {"192.0.0.0/24", "ietf_protocol_assignments", "ipv4_service_continuity", "row", "row"},
    {"192.0.0.0/29", "ipv4_service_continuity", "row", "row", "row"},
    {"192.0.0.8/32", "ipv4_dummy", "row", "row", "row"},
    {"192.0.0.9/32", "allowed", "row", "row", "row"},
    {"192.0.0.10/32", "allowed", "row", "row", "row"},
    {"192.0.0.170/32", "nat64_discovery", "row", "row", "row"},
    {"192.0.0.171/32", "nat64_discovery", "row", "row", "row"},
    {"192.0.2.0/24", "documentation", "row", "row", "row"},
    {"192.31.196.0/24", "allowed", "row", "row", "row"},
    {"192.52.193.0/24", "allowed", "row", "row", "row"},
    {"192.88.99.0/24", "deprecated_6to4_relay", "row", "row", "row"},
    {"192.88.99.2/32", "6a44_relay", "row", "row", "row"},
    {"192.168.0.0/16", "private_use", "row", "row", "row"},
    {"192.175.48.0/24", "allowed", "row", "row", "row"},
    {"198.18.0.0/15", "benchmarking", "row", "row", "row"},
    {"198.51.100.0/24", "documentation", "row", "row", "row"},
    {"203.0.113.0/24", "documentation", "row", "row", "row"},
    {"240.0.0.0/4", "reserved", "row", "row", "limited_broadcast"},
    {"255.255.255.255/32", "limited_broadcast", "row", "row", "row"},
    /* not in the registry */
    {"224.0.0.0/4", "multicast", "row", "row", "row"},
};

static const struct reg_row reg6[] = {
    {"::1/128", "loopback", "row", "row", "row"},
    {"::/128", "unspecified", "row", "row", "row"},
    /* The embedding rows: first 0.0.0.0, middle 128.0.0.0, last 255.255.255.255. */
    {"::ffff:0:0/96", "ipv4_mapped", "this_host", "allowed", "limited_broadcast"},
    {"64:ff9b::/96", "allowed", "this_host", "allowed", "limited_broadcast"},
    /* last: the u octet is not zero, no layout that can be read */
    {"64:ff9b:1::/48", "nat64_local", "this_host", "allowed", "row"},
    {"100::/64", "discard_only", "row", "row", "row"},
    {"100:0:0:1::/64", "dummy_prefix", "row", "row", "row"},
    /* 2001:: is Teredo with server 0.0.0.0 */
    {"2001::/23", "ietf_protocol_assignments", "this_host", "row", "row"},
    /* middle: server 128.0.0.0, client ~0.0.0.0 */
    {"2001::/32", "teredo", "this_host", "limited_broadcast", "limited_broadcast"},
    {"2001:1::1/128", "allowed", "row", "row", "row"},
    {"2001:1::2/128", "allowed", "row", "row", "row"},
    {"2001:1::3/128", "allowed", "row", "row", "row"},
    {"2001:2::/48", "benchmarking", "row", "row", "row"},
    {"2001:3::/32", "allowed", "row", "row", "row"},
    {"2001:4:112::/48", "allowed", "row", "row", "row"},
    {"2001:10::/28", "deprecated_orchid", "row", "row", "row"},
    {"2001:20::/28", "allowed", "row", "row", "row"},
    {"2001:30::/28", "allowed", "row", "row", "row"},
    {"2001:db8::/32", "documentation", "row", "row", "row"},
    /* 6to4 of 0.0.0.0, 128.0.0.0, 255.255.255.255 */
    {"2002::/16", "6to4", "this_host", "row", "limited_broadcast"},
    {"2620:4f:8000::/48", "allowed", "row", "row", "row"},
    {"3fff::/20", "documentation", "row", "row", "row"},
    {"5f00::/16", "srv6_sid", "row", "row", "row"},
    {"fc00::/7", "unique_local", "row", "row", "row"},
    {"fe80::/10", "link_local", "row", "row", "row"},
    /* not in the registry */
    {"ff00::/8", "multicast", "row", "row", "row"},
    {"fec0::/10", "site_local", "row", "row", "row"},
    {"::/96", "ipv4_compatible", "unspecified", "allowed", "limited_broadcast"},
    {"::ffff:0:0:0/96", "ipv4_translated", "this_host", "allowed", "limited_broadcast"},
};

/* Parse "addr/len" into bytes (IPv4 in the first 4) and the length. */
static int parse_row(const char *cidr, uint8_t net[16], unsigned *len) {
  char buf[64];
  const char *slash = strchr(cidr, '/');
  assert_non_null(slash);
  size_t n = (size_t)(slash - cidr);
  assert_true(n < sizeof buf);
  memcpy(buf, cidr, n);
  buf[n] = '\0';
  *len = (unsigned)atoi(slash + 1);
  memset(net, 0, 16);
  if (inet_pton(AF_INET, buf, net) == 1)
    return AF_INET;
  assert_int_equal(inet_pton(AF_INET6, buf, net), 1);
  return AF_INET6;
}

/* The first (which 0), middle (1: the first with the bit after the prefix
 * set) or last (2) address of net/len. */
static void probe(const uint8_t net[16], unsigned len, unsigned bits, int which,
                  uint8_t out[16]) {
  memcpy(out, net, 16);
  for (unsigned b = len; b < bits; b++) {
    uint8_t bit = (uint8_t)(0x80u >> (b % 8));
    if (which == 2 || (which == 1 && b == len))
      out[b / 8] |= bit;
    else
      out[b / 8] &= (uint8_t)~bit;
  }
}

static const char *verdict_of(const awf_addr_policy *p, int family, const uint8_t a[16]) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (family == AF_INET) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    memcpy(&s4->sin_addr, a, 4);
  } else {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    memcpy(&s6->sin6_addr, a, 16);
  }
  return awf_addr_policy_check(p, (const struct sockaddr *)&ss);
}

static void expect_bytes(const awf_addr_policy *p, int family, const uint8_t a[16],
                         const char *want, const char *what) {
  char text[INET6_ADDRSTRLEN];
  const char *v = verdict_of(p, family, a);
  bool ok = strcmp(want, "allowed") == 0 ? v == NULL : v != NULL && strcmp(v, want) == 0;
  if (!ok) {
    inet_ntop(family, a, text, sizeof text);
    fail_msg("%s %s: got %s, want %s", what, text, v ? v : "allowed", want);
  }
}

static const char *expected(const struct reg_row *r, int which) {
  const char *e = which == 0 ? r->first : which == 1 ? r->mid : r->last;
  return strcmp(e, "row") == 0 ? r->verdict : e;
}

/* Each IPv6 form that embeds v4, with the verdict expected for it when the
 * IPv4 address itself gets e4. */
static void check_embeddings(const awf_addr_policy *p, const uint8_t v4[4], const char *e4,
                             const char *cidr) {
  bool global = strcmp(e4, "allowed") == 0;
  uint8_t a[16];
  /* mapped, translated, NAT64, local NAT64 /96 and /48 layouts: the IPv4 verdict */
  static const uint8_t pre[4][12] = {{[10] = 0xff, [11] = 0xff},
                                     {[8] = 0xff, [9] = 0xff},
                                     {0x00, 0x64, 0xff, 0x9b},
                                     {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}};
  for (size_t i = 0; i < 4; i++) {
    memcpy(a, pre[i], 12);
    memcpy(a + 12, v4, 4);
    expect_bytes(p, AF_INET6, a, e4, cidr);
  }
  uint8_t l48[16] = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01, v4[0], v4[1], 0, v4[2], v4[3]};
  expect_bytes(p, AF_INET6, l48, e4, cidr);
  /* compatible: ::0.0.0.0 and ::0.0.0.1 are :: and ::1 */
  memset(a, 0, 12);
  memcpy(a + 12, v4, 4);
  uint32_t host = (uint32_t)v4[0] << 24 | (uint32_t)v4[1] << 16 | (uint32_t)v4[2] << 8 | v4[3];
  expect_bytes(p, AF_INET6, a, host == 0 ? "unspecified" : host == 1 ? "loopback" : e4, cidr);
  /* 6to4, Teredo server (client 1.2.3.4), Teredo client (server 8.8.8.8):
   * denied, as the embedded address's range when that is denied. */
  uint8_t s6[16] = {0x20, 0x02, v4[0], v4[1], v4[2], v4[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  expect_bytes(p, AF_INET6, s6, global ? "6to4" : e4, cidr);
  uint8_t ts[16] = {0x20, 0x01, 0, 0, v4[0],        v4[1],        v4[2],        v4[3],
                    0,    0,    0, 0, (uint8_t)~1u, (uint8_t)~2u, (uint8_t)~3u, (uint8_t)~4u};
  expect_bytes(p, AF_INET6, ts, global ? "teredo" : e4, cidr);
  uint8_t tc[16] = {0x20,
                    0x01,
                    0,
                    0,
                    8,
                    8,
                    8,
                    8,
                    0,
                    0,
                    0,
                    0,
                    (uint8_t)~v4[0],
                    (uint8_t)~v4[1],
                    (uint8_t)~v4[2],
                    (uint8_t)~v4[3]};
  expect_bytes(p, AF_INET6, tc, global ? "teredo" : e4, cidr);
}

/* Every row on its first, middle and last address; for IPv4 rows also each
 * IPv6 form embedding those addresses. */
static void check_rows(const awf_addr_policy *p, const struct reg_row *rows, size_t n,
                       int family) {
  for (size_t i = 0; i < n; i++) {
    uint8_t net[16], a[16];
    unsigned len;
    assert_int_equal(parse_row(rows[i].cidr, net, &len), family);
    for (int which = 0; which < 3; which++) {
      probe(net, len, family == AF_INET ? 32 : 128, which, a);
      expect_bytes(p, family, a, expected(&rows[i], which), rows[i].cidr);
      if (family == AF_INET)
        check_embeddings(p, a, expected(&rows[i], which), rows[i].cidr);
    }
  }
}

static void test_ipv4_registry_rows(void **state) {
  (void)state;
  awf_addr_policy *p = awf_addr_policy_new();
  assert_non_null(p);
  check_rows(p, reg4, sizeof reg4 / sizeof reg4[0], AF_INET);
  /* Just outside the rows, and ordinary public addresses. */
  static const char *const pass[] = {
      "1.0.0.0",         "9.255.255.255",   "11.0.0.0",       "100.63.255.255",
      "100.128.0.0",     "126.255.255.255", "128.0.0.0",      "169.253.255.255",
      "169.255.0.0",     "172.15.255.255",  "172.32.0.0",     "192.167.255.255",
      "192.169.0.0",     "191.255.255.255", "192.0.1.0",      "192.0.3.0",
      "192.88.98.255",   "192.88.100.0",    "192.31.195.255", "192.31.197.0",
      "198.17.255.255",  "198.20.0.0",      "198.51.99.255",  "203.0.114.0",
      "223.255.255.255", "8.8.8.8",         "1.1.1.1",        "140.82.112.3",
  };
  for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++)
    allowed(p, pass[i]);
  denied(p, "192.0.0.11", "ietf_protocol_assignments");
  denied(p, "192.0.0.169", "ietf_protocol_assignments");
  denied(p, "192.0.0.172", "ietf_protocol_assignments");
  denied(p, "192.88.99.1", "deprecated_6to4_relay");
  denied(p, "169.254.169.254", "link_local");
  awf_addr_policy_free(p);
}

static void test_ipv6_registry_rows(void **state) {
  (void)state;
  awf_addr_policy *p = awf_addr_policy_new();
  assert_non_null(p);
  check_rows(p, reg6, sizeof reg6 / sizeof reg6[0], AF_INET6);
  /* Global unicast outside every row; everything outside 2000::/3 that no
   * row names is reserved or unassigned. */
  allowed(p, "2606:4700::1");
  allowed(p, "2001:4860:4860::8888");
  allowed(p, "2001:200::");
  allowed(p, "2000::");
  allowed(p, "3fff:1000::");
  allowed(p, "2001:db9::1");
  allowed(p, "2620:4f:7fff:ffff:ffff:ffff:ffff:ffff");
  allowed(p, "2620:4f:8001::");
  denied(p, "1fff:ffff::1", "reserved");
  denied(p, "4000::1", "reserved");
  denied(p, "::1:0:0:0", "reserved");
  denied(p, "100:0:0:2::", "reserved");
  denied(p, "fbff:ffff::1", "reserved");
  denied(p, "fe7f::1", "reserved");
  denied(p, "5eff::1", "reserved");
  denied(p, "2001:1::4", "ietf_protocol_assignments");
  denied(p, "2001:1::", "ietf_protocol_assignments");
  awf_addr_policy_free(p);
}

static void test_embedded_ipv4(void **state) {
  (void)state;
  awf_addr_policy *p = awf_addr_policy_new();
  assert_non_null(p);
  /* textual forms of the embeddings the row tests build from bytes */
  denied(p, "::ffff:127.0.0.1", "loopback");
  denied(p, "::ffff:169.254.169.254", "link_local");
  allowed(p, "::ffff:8.8.8.8");
  denied(p, "::192.168.1.1", "private_use");
  allowed(p, "::8.8.8.8");
  denied(p, "::ffff:0:10.0.0.1", "private_use");
  denied(p, "64:ff9b::10.0.0.1", "private_use");
  allowed(p, "64:ff9b::8.8.8.8");
  /* local-use NAT64: the /96 subdivision, RFC 6052's /48 layout, and other
   * layouts (here a /64 prefix) that can't be read */
  denied(p, "64:ff9b:1::127.0.0.1", "loopback");
  allowed(p, "64:ff9b:1::8.8.8.8");
  denied(p, "64:ff9b:1:7f00:0:100::", "loopback");
  denied(p, "64:ff9b:1:a9fe:a9:fe00::", "link_local");
  allowed(p, "64:ff9b:1:808:8:800::");
  denied(p, "64:ff9b:1:7f00:0:1::", "nat64_local"); /* suffix not zero */
  denied(p, "64:ff9b:1:808:1:8:800::", "nat64_local");
  denied(p, "64:ff9b:1:abcd:0:808:808:0", "nat64_local");
  denied(p, "64:ff9b:1:0:100::", "nat64_local"); /* the u octet */
  denied(p, "64:ff9b:1::0.1.0.0", "this_network");
  denied(p, "64:ff9b:0:0:1::a00:1", "reserved"); /* in neither NAT64 prefix */
  /* 6to4 and Teredo are denied whatever they carry */
  denied(p, "2002:c0a8:101::", "private_use");
  denied(p, "2002:7f00:1::1", "loopback");
  denied(p, "2002:808:808::1", "6to4");
  /* RFC 4380's example: client 192.0.2.45 */
  denied(p, "2001:0:4136:e378:8000:63bf:3fff:fdd2", "documentation");
  denied(p, "2001:0:4136:e378:8000:63bf:fefd:fcfb", "teredo"); /* client 1.2.3.4 */
  denied(p, "2001:0:808:808::80ff:fffe", "loopback");          /* client 127.0.0.1 */
  denied(p, "2001:0:a00:1::f7f7:f7f7", "private_use");         /* server 10.0.0.1 */
  awf_addr_policy_free(p);
}

static void test_allow_cidrs(void **state) {
  (void)state;
  char err[128];
  awf_addr_policy *p = awf_addr_policy_new();
  assert_non_null(p);
  assert_int_equal(awf_addr_policy_allow_cidrs(p, " 10.0.0.0/8, fd00::/8 ,127.0.0.1,", err,
                                               sizeof err),
                   0);
  allowed(p, "10.1.2.3");
  allowed(p, "10.255.255.255");
  denied(p, "172.16.0.1", "private_use");
  allowed(p, "fd12::1");
  denied(p, "fc00::1", "unique_local");
  allowed(p, "127.0.0.1");
  denied(p, "127.0.0.2", "loopback");
  denied(p, "::1", "loopback");
  /* The IPv6 forms of an admitted IPv4 address are admitted too. */
  allowed(p, "::ffff:10.1.2.3");
  allowed(p, "::ffff:127.0.0.1");
  allowed(p, "64:ff9b::10.9.9.9");
  denied(p, "2002:a00:1::", "6to4"); /* 6to4 and Teredo need an IPv6 CIDR */
  denied(p, "::ffff:127.0.0.2", "loopback");
  awf_addr_policy_free(p);

  /* Prefix edges, host bits set, /0, odd lengths. */
  p = awf_addr_policy_new();
  assert_non_null(p);
  assert_int_equal(awf_addr_policy_allow_cidrs(p, "192.168.1.77/24,172.16.0.0/13,fe80::1/9",
                                               err, sizeof err),
                   0);
  allowed(p, "192.168.1.0");
  allowed(p, "192.168.1.255");
  denied(p, "192.168.2.0", "private_use");
  denied(p, "192.168.0.255", "private_use");
  allowed(p, "172.23.255.255");
  denied(p, "172.24.0.0", "private_use");
  allowed(p, "fe80::1234");
  allowed(p, "fec0::1");
  denied(p, "fc00::1", "unique_local");
  awf_addr_policy_free(p);

  p = awf_addr_policy_new();
  assert_non_null(p);
  assert_int_equal(awf_addr_policy_allow_cidrs(p, "0.0.0.0/0", err, sizeof err), 0);
  allowed(p, "127.0.0.1");
  allowed(p, "255.255.255.255");
  denied(p, "::1", "loopback"); /* an IPv4 CIDR says nothing of IPv6 space */
  assert_int_equal(awf_addr_policy_allow_cidrs(p, "::/0", err, sizeof err), 0);
  allowed(p, "::1");
  allowed(p, "ff02::1");
  allowed(p, "2002:7f00:1::");   /* an IPv6 CIDR admits 6to4, Teredo and */
  allowed(p, "2001::ffff:ffff"); /* unreadable local NAT64 layouts too */
  allowed(p, "64:ff9b:1:0:100::");
  /* Empty lists add nothing and succeed. */
  assert_int_equal(awf_addr_policy_allow_cidrs(p, "", err, sizeof err), 0);
  assert_int_equal(awf_addr_policy_allow_cidrs(p, " , ,", err, sizeof err), 0);
  awf_addr_policy_free(p);
}

static void test_cidr_rejections(void **state) {
  (void)state;
  static const char *const bad[] = {
      "10.0.0.1/33",     "10.0.0.0/8x",  "10.0.0.0/",   "10.0.0.0/08",  "::/129",
      "010.0.0.0/8",     "10.0.0/8",     "abc",         "10.0.0.0/8/8", "[::1]/128",
      "10.0.0.0/-1",     "10.0.0.0 /8",  "10.0.0.0/ 8", "/8",           "10.0.0.0/1000",
      "fe80::1%eth0/64", "0x0a.0.0.0/8", "1.2.3.4.5",   "example.com",  "10.0.0.0/+8",
      "::1/0128",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char err[128], want[64];
    awf_addr_policy *p = awf_addr_policy_new();
    assert_non_null(p);
    memset(err, 0, sizeof err);
    if (awf_addr_policy_allow_cidrs(p, bad[i], err, sizeof err) != -EINVAL)
      fail_msg("'%s' accepted", bad[i]);
    snprintf(want, sizeof want, "invalid CIDR '%s'", bad[i]);
    if (strstr(err, want) == NULL)
      fail_msg("'%s': message '%s'", bad[i], err);
    awf_addr_policy_free(p);
  }

  /* A bad entry leaves the policy as it was. */
  char err[128];
  awf_addr_policy *p = awf_addr_policy_new();
  assert_non_null(p);
  assert_int_equal(awf_addr_policy_allow_cidrs(p, "10.0.0.0/8,10.0.0.1/33", err, sizeof err),
                   -EINVAL);
  assert_non_null(strstr(err, "prefix length over 32"));
  denied(p, "10.1.1.1", "private_use");
  /* Over-long entries are cut in the message. */
  char lng[300];
  memset(lng, '1', sizeof lng - 1);
  lng[sizeof lng - 1] = '\0';
  assert_int_equal(awf_addr_policy_allow_cidrs(p, lng, err, sizeof err), -EINVAL);
  assert_true(strlen(err) < sizeof err - 1);
  assert_int_equal(awf_addr_policy_allow_cidrs(p, "x", NULL, 0), -EINVAL);
  assert_int_equal(awf_addr_policy_allow_cidrs(p, NULL, err, sizeof err), -EINVAL);
  assert_int_equal(awf_addr_policy_allow_cidrs(NULL, "10.0.0.0/8", err, sizeof err), -EINVAL);
  awf_addr_policy_free(p);
}

static void test_many_cidrs(void **state) {
  (void)state;
  char list[8192], err[128];
  size_t o = 0;
  for (int i = 0; i < 256; i++)
    o += (size_t)snprintf(list + o, sizeof list - o, "10.%d.0.0/24,", i);
  list[o - 1] = '\0';
  awf_addr_policy *p = awf_addr_policy_new();
  assert_non_null(p);
  assert_int_equal(awf_addr_policy_allow_cidrs(p, list, err, sizeof err), 0);
  assert_int_equal(awf_addr_policy_allow_cidrs(p, "192.168.0.0/16", err, sizeof err), 0);
  allowed(p, "10.0.0.1");
  allowed(p, "10.255.0.255");
  denied(p, "10.255.1.0", "private_use");
  allowed(p, "192.168.5.5");
  awf_addr_policy_free(p);
}

static void test_families_and_null(void **state) {
  (void)state;
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  assert_string_equal(awf_addr_policy_check(NULL, (const struct sockaddr *)&sun),
                      "unsupported_family");
  assert_string_equal(awf_addr_policy_check(NULL, NULL), "unsupported_family");
  /* A NULL policy is the default policy, with nothing extra admitted. */
  denied(NULL, "127.0.0.1", "loopback");
  allowed(NULL, "8.8.8.8");
  awf_addr_policy_free(NULL);

  /* The port plays no part. */
  struct sockaddr_storage ss;
  assert_int_equal(awf_ip_literal_parse("10.0.0.1", 8, &ss), AF_INET);
  ((struct sockaddr_in *)&ss)->sin_port = htons(443);
  assert_string_equal(awf_addr_policy_check(NULL, (const struct sockaddr *)&ss), "private_use");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ipv4_registry_rows), cmocka_unit_test(test_ipv6_registry_rows),
      cmocka_unit_test(test_embedded_ipv4),      cmocka_unit_test(test_allow_cidrs),
      cmocka_unit_test(test_cidr_rejections),    cmocka_unit_test(test_many_cidrs),
      cmocka_unit_test(test_families_and_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
