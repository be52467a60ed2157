/* Unit tests for sandbox/nft_ruleset.c: the sandbox's firewall policy text. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nft_ruleset.h"

static uint8_t ports[65536 / 8];

static void set_port(unsigned p) { ports[p >> 3] |= (uint8_t)(1u << (p & 7)); }

static int setup(void **state) {
  (void)state;
  memset(ports, 0, sizeof(ports));
  return 0;
}

static char *build(uint16_t tport, uint16_t dport) {
  struct awf_nft_spec spec = {.tcp_ports = ports, .transparent_port = tport, .dns_port = dport};
  char *text = NULL;
  long n = awf_nft_ruleset(&spec, &text);
  assert_true(n > 0);
  assert_int_equal((size_t)n, strlen(text));
  return text;
}

static void test_default_ports_redirected_dns_and_drop(void **state) {
  (void)state;
  set_port(80);
  set_port(443);
  char *t = build(15001, 15053);
  assert_non_null(strstr(t, "table inet awf {"));
  assert_non_null(strstr(t, "tcp dport { 80, 443 } redirect to :15001\n"));
  assert_non_null(strstr(t, "udp dport 53 redirect to :15053\n"));
  assert_non_null(strstr(t, "tcp dport 53 redirect to :15053\n"));
  assert_non_null(strstr(t, "type filter hook output priority 0; policy drop;"));
  /* TCP that is not let out is reset, so connect() fails at once */
  assert_true(strstr(t, "ip6 daddr ::1 accept") <
              strstr(t, "meta l4proto tcp reject with tcp reset"));
  /* DNS is redirected before loopback is exempted: 127.0.0.1:53 too */
  assert_true(strstr(t, "udp dport 53") < strstr(t, "ip daddr 127.0.0.0/8 return"));
  /* loopback is exempted before the TCP redirect: the explicit proxy port */
  assert_true(strstr(t, "ip6 daddr ::1 return") < strstr(t, "tcp dport { 80"));
  free(t);
}

static void test_refused_packets_logged_before_reject(void **state) {
  (void)state;
  set_port(443);
  struct awf_nft_spec spec = {.tcp_ports = ports,
                              .transparent_port = 1,
                              .dns_port = 2,
                              .nflog_group = 7};
  char *t = NULL;
  assert_true(awf_nft_ruleset(&spec, &t) > 0);
  /* once per destination, so a flood to one cannot hide the others */
  assert_non_null(
      strstr(t, "  set refused4 { type ipv4_addr . inet_proto . inet_service; size 4096;"));
  assert_non_null(
      strstr(t, "  set refused6 { type ipv6_addr . inet_proto . inet_service; size 4096;"));
  const char *log = strstr(t,
                           "    meta l4proto { tcp, udp } ip daddr . meta l4proto . th dport "
                           "!= @refused4 add @refused4");
  assert_non_null(log);
  assert_non_null(strstr(t, "limit rate 200/second burst 400 packets log group 7\n"));
  assert_non_null(strstr(t, "    meta l4proto != { tcp, udp } limit rate 20/second burst 50 "
                            "packets log group 7\n"));
  /* after what is let out, before the reset and the policy's drop */
  assert_true(strstr(t, "ip6 daddr ::1 accept") < log);
  assert_true(log < strstr(t, "meta l4proto tcp reject with tcp reset"));
  free(t);
  t = build(1, 2); /* no group: no log rule */
  assert_null(strstr(t, "log group"));
  free(t);
}

static void test_ranges_folded(void **state) {
  (void)state;
  for (unsigned p = 8000; p <= 8999; p++)
    set_port(p);
  set_port(22);
  set_port(65535);
  char *t = build(1, 2);
  assert_non_null(strstr(t, "tcp dport { 22, 8000-8999, 65535 } redirect to :1\n"));
  free(t);
}

static void test_every_port_is_one_range(void **state) {
  (void)state;
  memset(ports, 0xff, sizeof(ports));
  char *t = build(15001, 15053);
  assert_non_null(strstr(t, "tcp dport { 1-65535 }"));
  free(t);
}

static void test_alternating_ports_fit(void **state) {
  (void)state;
  for (unsigned p = 1; p <= 65535; p += 2)
    set_port(p);
  char *t = build(15001, 15053);
  assert_non_null(strstr(t, "{ 1, 3, 5, "));
  assert_non_null(strstr(t, ", 65533, 65535 }"));
  free(t);
}

static void test_host_alias_redirected_on_every_port(void **state) {
  (void)state;
  set_port(443);
  struct awf_nft_spec spec = {.tcp_ports = ports,
                              .transparent_port = 151,
                              .dns_port = 153,
                              .host_alias4 = "198.18.0.2",
                              .host_alias6 = "fd00:198:18::2"};
  char *t = NULL;
  assert_true(awf_nft_ruleset(&spec, &t) > 0);
  const char *h4 = strstr(t, "    ip daddr 198.18.0.2 tcp dport 1-65535 redirect to :151\n");
  const char *h6 = strstr(t,
                          "    ip6 daddr fd00:198:18::2 tcp dport 1-65535 redirect to :151\n");
  assert_non_null(h4);
  assert_non_null(h6);
  /* DNS to the host's address is still awf's DNS; the rest is the listener's */
  assert_true(strstr(t, "tcp dport 53 redirect") < h4);
  assert_true(h6 < strstr(t, "tcp dport { 443 }"));
  free(t);
  t = build(151, 153); /* no host access: no rule names the address */
  assert_null(strstr(t, "198.18.0.2"));
  assert_null(strstr(t, "fd00:198:18::2"));
  free(t);
}

static void test_rejects_empty_and_zero(void **state) {
  (void)state;
  char *t = (char *)1;
  struct awf_nft_spec spec = {.tcp_ports = ports, .transparent_port = 15001, .dns_port = 15053};
  assert_int_equal(awf_nft_ruleset(&spec, &t), -EINVAL); /* no port at all */
  assert_null(t);
  set_port(443);
  spec.dns_port = 0;
  assert_int_equal(awf_nft_ruleset(&spec, &t), -EINVAL);
  spec.dns_port = 15053;
  spec.transparent_port = 0;
  assert_int_equal(awf_nft_ruleset(&spec, &t), -EINVAL);
  spec.transparent_port = 15001;
  spec.tcp_ports = NULL;
  assert_int_equal(awf_nft_ruleset(&spec, &t), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_default_ports_redirected_dns_and_drop, setup),
      cmocka_unit_test_setup(test_refused_packets_logged_before_reject, setup),
      cmocka_unit_test_setup(test_ranges_folded, setup),
      cmocka_unit_test_setup(test_every_port_is_one_range, setup),
      cmocka_unit_test_setup(test_alternating_ports_fit, setup),
      cmocka_unit_test_setup(test_host_alias_redirected_on_every_port, setup),
      cmocka_unit_test_setup(test_rejects_empty_and_zero, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
