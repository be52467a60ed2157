/* Unit tests for proxy/dns_memory.c: the address -> names table that judges
 * SSH by the name the command resolved: names kept per address, expiry with
 * the TTL plus grace, LRU eviction within the bound, /etc/hosts pins. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "dns_memory.h"

static struct sockaddr_storage addr_of(const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(22);
  } else {
    assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    s6->sin6_family = AF_INET6;
  }
  return ss;
}

static int note(awf_dns_memory *m, const char *ip, const char *name, uint64_t now,
                uint32_t ttl) {
  struct sockaddr_storage ss = addr_of(ip);
  return awf_dns_memory_note(m, (struct sockaddr *)&ss, name, now, ttl);
}

static size_t lookup(awf_dns_memory *m, const char *ip, uint64_t now,
                     struct awf_dns_memory_name *out, size_t max) {
  struct sockaddr_storage ss = addr_of(ip);
  return awf_dns_memory_lookup(m, (struct sockaddr *)&ss, now, out, max);
}

static void test_names_of_an_address_most_recent_first(void **state) {
  (void)state;
  awf_dns_memory *m = awf_dns_memory_new(0);
  assert_non_null(m);
  struct awf_dns_memory_name out[AWF_DNS_MEMORY_NAMES_MAX];
  assert_int_equal(lookup(m, "192.0.2.1", 0, out, 16), 0);
  /* A CDN address answered for an allowed and another name: both kept. */
  assert_int_equal(note(m, "192.0.2.1", "github.com", 1000, 30), 0);
  assert_int_equal(note(m, "192.0.2.1", "evil.test", 2000, 30), 0);
  assert_int_equal(note(m, "192.0.2.2", "other.test", 2000, 30), 0);
  assert_int_equal(lookup(m, "192.0.2.1", 3000, out, 16), 2);
  assert_string_equal(out[0].name, "evil.test");
  assert_string_equal(out[1].name, "github.com");
  assert_false(out[0].pinned);
  /* Answered again: first again, and the pair is not duplicated. */
  assert_int_equal(note(m, "192.0.2.1", "github.com", 4000, 30), 0);
  assert_int_equal(lookup(m, "192.0.2.1", 4000, out, 16), 2);
  assert_string_equal(out[0].name, "github.com");
  assert_int_equal(awf_dns_memory_count(m), 3);
  /* max bounds what is written. */
  assert_int_equal(lookup(m, "192.0.2.1", 4000, out, 1), 1);
  assert_string_equal(out[0].name, "github.com");
  /* Another address, port and family matter not for the key... */
  assert_int_equal(lookup(m, "192.0.2.3", 4000, out, 16), 0);
  /* ...but an IPv4-mapped IPv6 address is the IPv4 one. */
  assert_int_equal(lookup(m, "::ffff:192.0.2.2", 4000, out, 16), 1);
  assert_string_equal(out[0].name, "other.test");
  awf_dns_memory_free(m);
}

static void test_ipv6(void **state) {
  (void)state;
  awf_dns_memory *m = awf_dns_memory_new(0);
  struct awf_dns_memory_name out[4];
  assert_int_equal(note(m, "2001:db8::1", "v6.test", 0, 30), 0);
  assert_int_equal(lookup(m, "2001:db8::1", 1, out, 4), 1);
  assert_string_equal(out[0].name, "v6.test");
  assert_int_equal(lookup(m, "2001:db8::2", 1, out, 4), 0);
  awf_dns_memory_free(m);
}

static void test_expiry_is_ttl_plus_grace(void **state) {
  (void)state;
  awf_dns_memory *m = awf_dns_memory_new(0);
  struct awf_dns_memory_name out[4];
  assert_int_equal(note(m, "192.0.2.1", "a.test", 10000, 30), 0);
  uint64_t end = 10000 + (30 + AWF_DNS_MEMORY_GRACE_S) * 1000ull;
  assert_int_equal(lookup(m, "192.0.2.1", end - 1, out, 4), 1);
  assert_int_equal(lookup(m, "192.0.2.1", end, out, 4), 0);
  assert_int_equal(awf_dns_memory_count(m), 0); /* dropped by the lookup */
  /* A refresh moves the expiry on, never back. */
  assert_int_equal(note(m, "192.0.2.1", "a.test", 10000, 300), 0);
  assert_int_equal(note(m, "192.0.2.1", "a.test", 10000, 1), 0);
  assert_int_equal(lookup(m, "192.0.2.1", 10000 + (200 + AWF_DNS_MEMORY_GRACE_S) * 1000ull, out,
                          4),
                   1);
  awf_dns_memory_free(m);
}

static void test_bounded_least_recent_goes(void **state) {
  (void)state;
  awf_dns_memory *m = awf_dns_memory_new(8);
  struct awf_dns_memory_name out[4];
  char ip[32];
  for (int i = 0; i < 8; i++) {
    snprintf(ip, sizeof(ip), "192.0.2.%d", i + 1);
    assert_int_equal(note(m, ip, "n.test", (uint64_t)i, 30), 0);
  }
  /* .1 answered again: now .2 is the least recent. */
  assert_int_equal(note(m, "192.0.2.1", "n.test", 10, 30), 0);
  assert_int_equal(note(m, "192.0.2.100", "n.test", 11, 30), 0);
  assert_int_equal(awf_dns_memory_count(m), 8);
  assert_int_equal(lookup(m, "192.0.2.2", 12, out, 4), 0);
  assert_int_equal(lookup(m, "192.0.2.1", 12, out, 4), 1);
  assert_int_equal(lookup(m, "192.0.2.100", 12, out, 4), 1);
  /* A flood of answers never grows it. */
  for (int i = 0; i < 1000; i++) {
    snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
    assert_int_equal(note(m, ip, "flood.test", 100, 30), 0);
  }
  assert_int_equal(awf_dns_memory_count(m), 8);
  awf_dns_memory_free(m);
}

static void test_bad_input(void **state) {
  (void)state;
  awf_dns_memory *m = awf_dns_memory_new(4);
  struct sockaddr_storage un;
  memset(&un, 0, sizeof(un));
  un.ss_family = AF_UNIX;
  assert_int_equal(awf_dns_memory_note(m, (struct sockaddr *)&un, "a.test", 0, 30), -EINVAL);
  assert_int_equal(note(m, "192.0.2.1", "", 0, 30), -EINVAL);
  char longname[300];
  memset(longname, 'a', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  assert_int_equal(note(m, "192.0.2.1", longname, 0, 30), -EINVAL);
  struct awf_dns_memory_name out[2];
  assert_int_equal(awf_dns_memory_lookup(m, (struct sockaddr *)&un, 0, out, 2), 0);
  assert_int_equal(awf_dns_memory_count(m), 0);
  awf_dns_memory_free(m);
  awf_dns_memory_free(NULL);
}

static bool keep_test(const char *name, void *arg) {
  (void)arg;
  return strstr(name, ".test") != NULL;
}

static void test_hosts_pins_never_expire_nor_evicted(void **state) {
  (void)state;
  awf_dns_memory *m = awf_dns_memory_new(8);
  static const char hosts[] = "127.0.0.1\tlocalhost\n"
                              "# a comment 192.0.2.9 commented.test\n"
                              "192.0.2.1  Git.Test gitalias.test   # trailing comment\n"
                              "2001:db8::5 six.test\r\n"
                              "fe80::1%eth0 scoped.test\n"
                              "not-an-address bad.test\n"
                              "192.0.2.2 bad..name other.example\n"
                              "192.0.2.3";
  assert_int_equal(awf_dns_memory_load_hosts(m, hosts, strlen(hosts), keep_test, NULL), 3);
  struct awf_dns_memory_name out[4];
  assert_int_equal(lookup(m, "192.0.2.1", UINT64_MAX - 1, out, 4), 2);
  assert_string_equal(out[0].name, "git.test"); /* normalised, in file order */
  assert_string_equal(out[1].name, "gitalias.test");
  assert_true(out[0].pinned);
  assert_int_equal(lookup(m, "2001:db8::5", 0, out, 4), 1);
  assert_int_equal(lookup(m, "127.0.0.1", 0, out, 4), 0); /* keep() said no */
  assert_int_equal(lookup(m, "192.0.2.2", 0, out, 4), 0);
  /* Answers come first, pins after them; a flood evicts answers only. */
  assert_int_equal(note(m, "192.0.2.1", "answered.test", 5, 30), 0);
  assert_int_equal(lookup(m, "192.0.2.1", 6, out, 4), 3);
  assert_string_equal(out[0].name, "answered.test");
  assert_string_equal(out[1].name, "git.test");
  for (int i = 0; i < 100; i++) {
    char ip[32];
    snprintf(ip, sizeof(ip), "10.1.0.%d", i);
    assert_int_equal(note(m, ip, "flood.test", 10, 30), 0);
  }
  assert_int_equal(lookup(m, "192.0.2.1", 11, out, 4), 2);
  assert_int_equal(lookup(m, "2001:db8::5", 11, out, 4), 1);
  /* At most half the table is pinned. */
  struct sockaddr_storage ss = addr_of("192.0.2.50");
  assert_int_equal(awf_dns_memory_pin(m, (struct sockaddr *)&ss, "four.test"), 0);
  assert_int_equal(awf_dns_memory_pin(m, (struct sockaddr *)&ss, "five.test"), -ENOSPC);
  /* A pinned pair answered by DNS stays pinned. */
  assert_int_equal(note(m, "192.0.2.1", "git.test", 20, 1), 0);
  assert_int_equal(lookup(m, "192.0.2.1", UINT64_MAX - 1, out, 4), 2);
  awf_dns_memory_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names_of_an_address_most_recent_first),
      cmocka_unit_test(test_ipv6),
      cmocka_unit_test(test_expiry_is_ttl_plus_grace),
      cmocka_unit_test(test_bounded_least_recent_goes),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_hosts_pins_never_expire_nor_evicted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
