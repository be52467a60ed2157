/* Unit tests for acl/hostname.c: name normalisation and strict IP literals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "hostname.h"

static int norm(const char *in, char *out) {
  return awf_hostname_normalize(in, strlen(in), out, AWF_HOSTNAME_MAX + 1);
}

static void assert_norm(const char *in, const char *want) {
  char out[AWF_HOSTNAME_MAX + 1];
  int n = norm(in, out);
  if (n < 0)
    fail_msg("'%s' rejected, want '%s'", in, want);
  assert_int_equal(n, (int)strlen(want));
  assert_string_equal(out, want);
}

static void assert_bad(const char *in) {
  char out[AWF_HOSTNAME_MAX + 1];
  int n = norm(in, out);
  if (n != -EINVAL)
    fail_msg("'%s' accepted as '%s'", in, out);
  assert_string_equal(out, ""); /* nothing half-written is left behind */
}

static void test_normalize_case_and_dot(void **state) {
  (void)state;
  assert_norm("github.com", "github.com");
  assert_norm("GitHub.COM.", "github.com");
  assert_norm("API.GitHub.Com", "api.github.com");
  assert_norm("localhost", "localhost");
  assert_norm("a", "a");
  assert_norm("_dmarc.example.com", "_dmarc.example.com");
  assert_norm("my-host_1.x-y.org", "my-host_1.x-y.org");
  assert_norm("127.0.0.1.nip.io", "127.0.0.1.nip.io"); /* numeric labels, not last */
  assert_norm("1.2.3.4a", "1.2.3.4a");
  assert_norm("0x7f.example.com", "0x7f.example.com"); /* only the last label */
}

static void test_normalize_rejects(void **state) {
  (void)state;
  assert_bad("");
  assert_bad(".");
  assert_bad("..");
  assert_bad("a..b");
  assert_bad(".a");
  assert_bad("a.b..");
  assert_bad("a b");
  assert_bad("a\tb");
  assert_bad("a/b");
  assert_bad("a:443");
  assert_bad("a*b.com");
  assert_bad("[::1]");
  assert_bad("caf\xc3\xa9.com");
  assert_bad("a\x7f.com");
  assert_bad("a@b.com");
  assert_bad("a%2eb.com");
}

static void test_normalize_numeric_last_label(void **state) {
  (void)state;
  /* Names that clients read as IPv4 addresses are never domains. */
  assert_bad("1.2.3.4");
  assert_bad("1.2.3");
  assert_bad("127.1");
  assert_bad("2130706433");
  assert_bad("0x7f.0.0.1");
  assert_bad("01.2.3.4");
  assert_bad("256.1.1.1");
  assert_bad("1.2.3.4.5");
  assert_bad("1.2.3.4.");
  assert_bad("a.0x7f");
  assert_bad("a.0X7F");
  assert_bad("a.0x");
  assert_bad("x.0xample"); /* any last label starting "0x" */
  assert_bad("example.123");
}

static void test_normalize_lengths(void **state) {
  (void)state;
  char in[600], out[AWF_HOSTNAME_MAX + 1];
  char want[AWF_HOSTNAME_MAX + 1];

  /* Labels: 63 bytes fine, 64 not. */
  memset(in, 'a', 63);
  strcpy(in + 63, ".com");
  assert_int_equal(norm(in, out), 67);
  memset(in, 'a', 64);
  strcpy(in + 64, ".com");
  assert_int_equal(norm(in, out), -EINVAL);

  /* Names: 253 bytes fine (and with a trailing dot, 254), 254 not. */
  for (int i = 0; i < 4; i++) {
    memset(in + i * 64, 'b', 63);
    in[i * 64 + 63] = '.';
  }
  in[253] = '\0'; /* 3 x 64 + 61 bytes, last label 61 'b' */
  in[252] = 'c';
  assert_int_equal(strlen(in), 253);
  memcpy(want, in, 254);
  assert_norm(in, want);
  in[253] = '.';
  in[254] = '\0';
  assert_norm(in, want);
  in[253] = 'c';
  assert_int_equal(norm(in, out), -EINVAL);

  /* Output buffer too small for the name. */
  assert_int_equal(awf_hostname_normalize("github.com", 10, out, 10), -EINVAL);
  assert_int_equal(awf_hostname_normalize("github.com", 10, out, 11), 10);
  assert_int_equal(awf_hostname_normalize(NULL, 0, out, sizeof out), -EINVAL);
}

static void test_normalize_embedded_nul(void **state) {
  (void)state;
  char out[AWF_HOSTNAME_MAX + 1];
  /* The length counts, not the NUL: "a.com\0.evil" is not a.com. */
  assert_int_equal(awf_hostname_normalize("a.com\0evil.net", 14, out, sizeof out), -EINVAL);
  /* Only the first len bytes are read. */
  assert_int_equal(awf_hostname_normalize("a.comXYZ", 5, out, sizeof out), 5);
  assert_string_equal(out, "a.com");
}

static int lit(const char *s, struct sockaddr_storage *ss) {
  return awf_ip_literal_parse(s, strlen(s), ss);
}

static void assert_v4(const char *s, const char *canon) {
  struct sockaddr_storage ss;
  char buf[INET_ADDRSTRLEN];
  memset(&ss, 0xaa, sizeof ss);
  if (lit(s, &ss) != AF_INET)
    fail_msg("'%s' not an IPv4 literal", s);
  const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
  assert_int_equal(sin->sin_family, AF_INET);
  assert_int_equal(sin->sin_port, 0);
  assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf));
  assert_string_equal(buf, canon);
}

static void assert_v6(const char *s, const char *canon) {
  struct sockaddr_storage ss;
  char buf[INET6_ADDRSTRLEN];
  memset(&ss, 0xaa, sizeof ss);
  if (lit(s, &ss) != AF_INET6)
    fail_msg("'%s' not an IPv6 literal", s);
  const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
  assert_int_equal(sin6->sin6_family, AF_INET6);
  assert_int_equal(sin6->sin6_port, 0);
  assert_int_equal(sin6->sin6_scope_id, 0);
  assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf));
  assert_string_equal(buf, canon);
}

static void assert_not_lit(const char *s) {
  struct sockaddr_storage ss;
  if (lit(s, &ss) != 0)
    fail_msg("'%s' taken as an IP literal", s);
}

static void test_ip_literal_v4(void **state) {
  (void)state;
  assert_v4("1.2.3.4", "1.2.3.4");
  assert_v4("0.0.0.0", "0.0.0.0");
  assert_v4("255.255.255.255", "255.255.255.255");
  assert_v4("127.0.0.1", "127.0.0.1");
  assert_v4("10.0.0.10", "10.0.0.10");
  assert_not_lit("1.2.3");
  assert_not_lit("01.2.3.4");
  assert_not_lit("1.2.3.04");
  assert_not_lit("00.0.0.0");
  assert_not_lit("0x7f.0.0.1");
  assert_not_lit("1.2.3.4.5");
  assert_not_lit("256.1.1.1");
  assert_not_lit("1.2.3.256");
  assert_not_lit("1.2.3.4.");
  assert_not_lit(".1.2.3.4");
  assert_not_lit("1..2.3");
  assert_not_lit("1.2.3.");
  assert_not_lit("1.2.3.4 ");
  assert_not_lit(" 1.2.3.4");
  assert_not_lit("+1.2.3.4");
  assert_not_lit("1.2.3.-4");
  assert_not_lit("2130706433");
  assert_not_lit("1234.1.1.1");
  assert_not_lit("1.2.3.4/32");
  assert_not_lit("");
  assert_not_lit("github.com");
}

static void test_ip_literal_v6(void **state) {
  (void)state;
  assert_v6("::1", "::1");
  assert_v6("0:0::1", "::1");
  assert_v6("0:0:0:0:0:0:0:1", "::1");
  assert_v6("::", "::");
  assert_v6("2606:4700::1", "2606:4700::1");
  assert_v6("2606:4700:0000:0000:0000:0000:0000:0001", "2606:4700::1");
  assert_v6("FE80::ABCD", "fe80::abcd");
  assert_v6("::ffff:1.2.3.4", "::ffff:1.2.3.4");
  assert_not_lit("[::1]");
  assert_not_lit("fe80::1%eth0");
  assert_not_lit("1::2::3");
  assert_not_lit(":::");
  assert_not_lit("1:2:3:4:5:6:7:8:9");
  assert_not_lit("12345::1");
  assert_not_lit("::ffff:1.2.3");
  assert_not_lit("::ffff:01.2.3.4");
  assert_not_lit("::g");
  assert_not_lit(":");
  assert_not_lit("::1 ");
  /* Over-long text is refused before any copy. */
  char lng[200];
  memset(lng, '0', sizeof lng - 1);
  lng[sizeof lng - 1] = '\0';
  lng[0] = ':';
  lng[1] = ':';
  assert_not_lit(lng);
}

static void test_ip_literal_length_bounded(void **state) {
  (void)state;
  struct sockaddr_storage ss;
  /* Only len bytes are considered. */
  assert_int_equal(awf_ip_literal_parse("1.2.3.4junk", 7, &ss), AF_INET);
  assert_int_equal(awf_ip_literal_parse("::1junk", 3, &ss), AF_INET6);
  assert_int_equal(awf_ip_literal_parse("1.2.3.4\0", 8, &ss), 0);
  assert_int_equal(awf_ip_literal_parse(NULL, 0, &ss), 0);
  assert_int_equal(awf_ip_literal_parse("1.2.3.4", 7, NULL), AF_INET);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_normalize_case_and_dot),
      cmocka_unit_test(test_normalize_rejects),
      cmocka_unit_test(test_normalize_numeric_last_label),
      cmocka_unit_test(test_normalize_lengths),
      cmocka_unit_test(test_normalize_embedded_nul),
      cmocka_unit_test(test_ip_literal_v4),
      cmocka_unit_test(test_ip_literal_v6),
      cmocka_unit_test(test_ip_literal_length_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
