/* Unit tests for acl/addr_policy.c: every denied range, the IPv4-embedding
 * IPv6 forms, and --allow-destination-cidrs parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "addr_policy.h"
#include "hostname.h"

/* The policy's verdict on a textual address: NULL or the range name. */
static const char *verdict(const awf_addr_policy *p, const char *addr)
{
  struct sockaddr_storage ss;
  if (awf_ip_literal_parse(addr, strlen(addr), &ss) == 0)
    fail_msg("test address '%s' does not parse", addr);
  return awf_addr_policy_check(p, (const struct sockaddr *)&ss);
}

static void denied(const awf_addr_policy *p, const char *addr, const char *range)
{
  const char *v = verdict(p, addr);
  if (v == NULL || strcmp(v, range) != 0)
    fail_msg("%s: got %s, want %s", addr, v ? v : "(allowed)", range);
}

static void allowed(const awf_addr_policy *p, const char *addr)
{
  const char *v = verdict(p, addr);
  if (v != NULL)
    fail_msg("%s: denied as %s, want allowed", addr, v);
}

static void test_ipv4_ranges(void **state)
{
  (void)state;
  awf_addr_policy *p = awf_addr_policy_new();
  assert_non_null(p);
  static const struct {
    const char *addr, *range;
  } deny[] = {
      {"0.0.0.0", "unspecified"},          {"0.255.255.255", "unspecified"},
      {"10.0.0.0", "rfc1918"},             {"10.255.255.255", "rfc1918"},
      {"100.64.0.0", "cgnat"},             {"100.127.255.255", "cgnat"},
      {"127.0.0.1", "loopback"},           {"127.255.255.254", "loopback"},
      {"127.0.0.0", "loopback"},           {"169.254.169.254", "link_local"},
      {"169.254.0.0", "link_local"},       {"169.254.255.255", "link_local"},
      {"172.16.0.0", "rfc1918"},           {"172.31.255.255", "rfc1918"},
      {"192.168.0.0", "rfc1918"},          {"192.168.255.255", "rfc1918"},
      {"192.0.0.0", "ietf_protocol"},      {"192.0.0.170", "ietf_protocol"},
      {"192.0.2.1", "documentation"},      {"198.51.100.7", "documentation"},
      {"203.0.113.255", "documentation"},  {"198.18.0.0", "benchmarking"},
      {"198.19.255.255", "benchmarking"},  {"224.0.0.1", "multicast"},
      {"239.255.255.255", "multicast"},    {"240.0.0.0", "reserved"},
      {"254.255.255.255", "reserved"},     {"255.255.255.254", "reserved"},
      {"255.255.255.255", "broadcast"},
  };
  for (size_t i = 0; i < sizeof deny / sizeof deny[0]; i++)
    denied(p, deny[i].addr, deny[i].range);
  /* Just outside each range, and ordinary public addresses. */
  static const char *const pass[] = {
      "1.0.0.0",        "9.255.255.255", "11.0.0.0",      "100.63.255.255", "100.128.0.0",
      "126.255.255.255", "128.0.0.0",    "169.253.255.255", "169.255.0.0",  "172.15.255.255",
      "172.32.0.0",     "192.167.255.255", "192.169.0.0", "192.0.1.0",      "192.0.3.0",
      "198.17.255.255", "198.20.0.0",    "198.51.99.255", "203.0.114.0",    "223.255.255.255",
      "8.8.8.8",        "1.1.1.1",       "140.82.112.3",
  };
  for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++)
    allowed(p, pass[i]);
  awf_addr_policy_free(p);
}

static void test_ipv6_ranges(void **state)
{
  (void)state;
  awf_addr_policy *p = awf_addr_policy_new();
  assert_non_null(p);
  denied(p, "::", "unspecified");
  denied(p, "::1", "loopback");
  denied(p, "0:0::1", "loopback");
  denied(p, "fe80::1", "link_local");
  denied(p, "febf:ffff::1", "link_local");
  denied(p, "fec0::1", "site_local");
  denied(p, "feff::1", "site_local");
  denied(p, "fc00::1", "ula");
  denied(p, "fdff:ffff::1", "ula");
  denied(p, "ff02::1", "multicast");
  denied(p, "ff00::", "multicast");
  denied(p, "2001:db8::1", "documentation");
  denied(p, "100::1", "discard");
  allowed(p, "2606:4700::1");
  allowed(p, "2001:4860:4860::8888");
  allowed(p, "fbff:ffff::1");
  allowed(p, "fe7f::1");
  allowed(p, "2001:db9::1");
  allowed(p, "100:0:0:1::1");
  awf_addr_policy_free(p);
}

static void test_ipv4_in_ipv6(void **state)
{
  (void)state;
  awf_addr_policy *p = awf_addr_policy_new();
  assert_non_null(p);
  /* mapped ::ffff:0:0/96 */
  denied(p, "::ffff:127.0.0.1", "loopback");
  denied(p, "::ffff:7f00:1", "loopback");
  denied(p, "::ffff:10.1.2.3", "rfc1918");
  denied(p, "::ffff:169.254.169.254", "link_local");
  denied(p, "::ffff:100.64.0.1", "cgnat");
  denied(p, "::ffff:0.0.0.0", "unspecified");
  denied(p, "::ffff:255.255.255.255", "broadcast");
  denied(p, "::ffff:224.0.0.1", "multicast");
  allowed(p, "::ffff:8.8.8.8");
  /* compatible ::/96 */
  denied(p, "::127.0.0.1", "loopback");
  denied(p, "::192.168.1.1", "rfc1918");
  denied(p, "::0.0.0.2", "unspecified");
  allowed(p, "::8.8.8.8");
  /* translated ::ffff:0:0:0/96 */
  denied(p, "::ffff:0:10.0.0.1", "rfc1918");
  denied(p, "::ffff:0:127.0.0.1", "loopback");
  allowed(p, "::ffff:0:8.8.4.4");
  /* NAT64 64:ff9b::/96 */
  denied(p, "64:ff9b::10.0.0.1", "rfc1918");
  denied(p, "64:ff9b::169.254.169.254", "link_local");
  denied(p, "64:ff9b::7f00:1", "loopback");
  allowed(p, "64:ff9b::8.8.8.8");
  allowed(p, "64:ff9b:0:0:1::a00:1"); /* outside the /96 */
  /* 6to4 2002::/16 */
  denied(p, "2002:7f00:1::", "loopback");
  denied(p, "2002:a9fe:a9fe::1", "link_local");
  denied(p, "2002:c0a8:101:1::1", "rfc1918");
  allowed(p, "2002:808:808::1");
  awf_addr_policy_free(p);
}

static void test_allow_cidrs(void **state)
{
  (void)state;
  char err[128];
  awf_addr_policy *p = awf_addr_policy_new();
  assert_non_null(p);
  assert_int_equal(
      awf_addr_policy_allow_cidrs(p, " 10.0.0.0/8, fd00::/8 ,127.0.0.1,", err, sizeof err), 0);
  allowed(p, "10.1.2.3");
  allowed(p, "10.255.255.255");
  denied(p, "172.16.0.1", "rfc1918");
  allowed(p, "fd12::1");
  denied(p, "fc00::1", "ula");
  allowed(p, "127.0.0.1");
  denied(p, "127.0.0.2", "loopback");
  denied(p, "::1", "loopback");
  /* The IPv6 forms of an admitted IPv4 address are admitted too. */
  allowed(p, "::ffff:10.1.2.3");
  allowed(p, "::ffff:127.0.0.1");
  allowed(p, "64:ff9b::10.9.9.9");
  allowed(p, "2002:a00:1::");
  denied(p, "::ffff:127.0.0.2", "loopback");
  awf_addr_policy_free(p);

  /* Prefix edges, host bits set, /0, odd lengths. */
  p = awf_addr_policy_new();
  assert_non_null(p);
  assert_int_equal(awf_addr_policy_allow_cidrs(p, "192.168.1.77/24,172.16.0.0/13,fe80::1/9", err,
                                               sizeof err),
                   0);
  allowed(p, "192.168.1.0");
  allowed(p, "192.168.1.255");
  denied(p, "192.168.2.0", "rfc1918");
  denied(p, "192.168.0.255", "rfc1918");
  allowed(p, "172.23.255.255");
  denied(p, "172.24.0.0", "rfc1918");
  allowed(p, "fe80::1234");
  allowed(p, "fec0::1");
  denied(p, "fc00::1", "ula");
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
  /* Empty lists add nothing and succeed. */
  assert_int_equal(awf_addr_policy_allow_cidrs(p, "", err, sizeof err), 0);
  assert_int_equal(awf_addr_policy_allow_cidrs(p, " , ,", err, sizeof err), 0);
  awf_addr_policy_free(p);
}

static void test_cidr_rejections(void **state)
{
  (void)state;
  static const char *const bad[] = {
      "10.0.0.1/33", "10.0.0.0/8x", "10.0.0.0/",  "10.0.0.0/08",  "::/129",     "010.0.0.0/8",
      "10.0.0/8",    "abc",         "10.0.0.0/8/8", "[::1]/128",  "10.0.0.0/-1", "10.0.0.0 /8",
      "10.0.0.0/ 8", "/8",          "10.0.0.0/1000", "fe80::1%eth0/64", "0x0a.0.0.0/8",
      "1.2.3.4.5",   "example.com", "10.0.0.0/+8", "::1/0128",
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
  denied(p, "10.1.1.1", "rfc1918");
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

static void test_many_cidrs(void **state)
{
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
  denied(p, "10.255.1.0", "rfc1918");
  allowed(p, "192.168.5.5");
  awf_addr_policy_free(p);
}

static void test_families_and_null(void **state)
{
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
  assert_string_equal(awf_addr_policy_check(NULL, (const struct sockaddr *)&ss), "rfc1918");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ipv4_ranges),       cmocka_unit_test(test_ipv6_ranges),
      cmocka_unit_test(test_ipv4_in_ipv6),      cmocka_unit_test(test_allow_cidrs),
      cmocka_unit_test(test_cidr_rejections),   cmocka_unit_test(test_many_cidrs),
      cmocka_unit_test(test_families_and_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
