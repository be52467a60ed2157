/* test_denials.c: the end-of-run summary of denials. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "denials.h"

/* The reason a log name stands for: the tests read as the summary does. */
static enum awf_reason R(const char *name) {
  for (int r = 1; r < AWF_REASON_COUNT; r++)
    if (strcmp(awf_reason_name((enum awf_reason)r), name) == 0)
      return (enum awf_reason)r;
  fail_msg("no reason is named %s", name);
  return AWF_REASON_NONE;
}

static char *summary(const awf_denials *d) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  awf_denials_print(d, f);
  fclose(f);
  return text;
}

/* A DNS label holding a '.' is summarised escaped: it cannot pass for the
 * name of more labels that --allow-domains would admit. */
static void test_dotted_label_not_summarised_as_two(void **state) {
  (void)state;
  awf_denials *d = awf_denials_new();
  assert_non_null(d);
  awf_denials_add_text(d, "a\\.b.example", 12, 0, R("invalid_name"));
  awf_denials_add_text(d, "a.b.example", 11, 0, R("not_allowed"));
  char *s = summary(d);
  assert_non_null(strstr(s, "  a\\.b.example  invalid_name\n"));
  assert_non_null(strstr(s, "  a.b.example  not_allowed\n"));
  assert_non_null(strstr(s, "--allow-domains a.b.example\n")); /* only the real name */
  free(s);
  awf_denials_free(d);
}

/* Hosts with bytes a terminal should not get are shown escaped, not dropped. */
static void test_unprintable_host_escaped(void **state) {
  (void)state;
  awf_denials *d = awf_denials_new();
  awf_denials_add(d, "e\x1b[2Jvil\\.test", 14, 80, R("invalid_name"));
  awf_denials_add(d, "\xff", 1, 443, R("invalid_name"));
  awf_denials_add(d, "ok.test", 7, 443, R("not_allowed"));
  awf_denials_add(d, "ok.test", 7, 443, R("not_allowed"));
  awf_denials_add_text(d, "raw\x1b", 4, 0, R("invalid_name")); /* not escaped: refused */
  char *s = summary(d);
  assert_non_null(strstr(s, "  e\\027[2Jvil\\\\.test:80  invalid_name\n"));
  assert_non_null(strstr(s, "  \\255:443  invalid_name\n"));
  assert_non_null(strstr(s, "  ok.test:443  not_allowed (2 times)\n"));
  assert_null(strchr(s, '\x1b'));
  assert_int_equal(awf_denials_count(d), 3);
  free(s);
  awf_denials_free(d);
}

static void note(awf_denials *d, const char *host, int port, enum awf_reason reason,
                 const char *detail, bool would) {
  struct awf_denial_fact f = {.host = host,
                              .host_len = strlen(host),
                              .port = port,
                              .reason = reason,
                              .detail = detail,
                              .would = would};
  awf_denials_note(d, &f);
}

/* Each reason gets the fix that fits it, in one line that pastes. */
static void test_fix_per_reason(void **state) {
  (void)state;
  awf_denials *d = awf_denials_new();
  note(d, "other.test", 443, R("not_allowed"), NULL, false);
  note(d, "api.example.test", 80, R("scheme_not_allowed"), "http", false);
  note(d, "198.51.100.10", 22, R("port_not_allowed"), NULL, false);
  note(d, "198.51.100.10", 8443, R("no_protocol_for_port"), NULL, false);
  note(d, "db.corp.test", 443, R("private_destination"), "10.0.0.5", false);
  note(d, "v6.corp.test", 443, R("private_destination"), "fd00::5", false);
  note(d, "5.6.7.8", 443, R("ip_literal"), NULL, false);
  note(d, "bad.test", 443, R("blocked"), NULL, false);
  note(d, "198.51.100.10", 443, R("udp_not_allowed"), NULL, false);
  note(d, "down.test", 443, R("dns_failure"), NULL, false);
  note(d, "slow.test", 443, R("timeout"), NULL, false);
  char *s = summary(d);
  assert_non_null(strstr(s, "awf: 9 destinations were denied:\n"));
  assert_non_null(
      strstr(s, "  db.corp.test:443  private_destination  (resolved to 10.0.0.5)\n"));
  assert_non_null(strstr(s, "http://api.example.test admits this one"));
  assert_non_null(strstr(s, "--tls-ports 8443 for TLS or --http-ports 8443 for plain HTTP"));
  assert_non_null(strstr(s, "  bad.test:443  blocked  (a --block-domains rule matches it)\n"));
  assert_non_null(
      strstr(s, "awf: to allow them: --allow-domains other.test,http://api.example.test,"
                "5.6.7.8 --allow-ports 22 --allow-destination-cidrs "
                "10.0.0.5/32,fd00::5/128\n"));
  /* failures come last, apart, and are never in the paste line */
  assert_true(strstr(s, "awf: 2 destinations could not be reached (not a policy denial):\n"
                        "  down.test:443  dns_failure\n  slow.test:443  timeout\n") >
              strstr(s, "awf: to allow them:"));
  assert_null(strstr(s, "down.test,"));
  assert_null(strstr(s, ",bad.test"));
  free(s);
  awf_denials_free(d);
}

/* Many names under one parent: the parent. A few: each name. Never a
 * top-level domain or a "co.uk"-style suffix. */
static void test_collapse_to_parent(void **state) {
  (void)state;
  awf_denials *d = awf_denials_new();
  const char *many[] = {"a.cdn.test", "b.cdn.test", "c.cdn.test", "d.cdn.test"};
  for (size_t i = 0; i < 4; i++)
    note(d, many[i], 443, R("not_allowed"), NULL, false);
  note(d, "x.few.test", 443, R("not_allowed"), NULL, false);
  note(d, "y.few.test", 443, R("not_allowed"), NULL, false);
  const char *uk[] = {"a.co.uk", "b.co.uk", "c.co.uk", "d.co.uk"};
  for (size_t i = 0; i < 4; i++)
    note(d, uk[i], 443, R("not_allowed"), NULL, false);
  char *s = summary(d);
  assert_non_null(strstr(s, "--allow-domains cdn.test,x.few.test,y.few.test,a.co.uk,b.co.uk,"
                            "c.co.uk,d.co.uk\n"));
  free(s);
  awf_denials_free(d);
}

/* A name that carries data in a label is listed, flagged, never suggested. */
static void test_exfiltration_names_not_suggested(void **state) {
  (void)state;
  assert_true(
      awf_denials_looks_like_data("c2VjcmV0IHRva2VuIGdvZXMgaGVyZSBhbmQgaGVyZQ.evil.test"));
  assert_true(awf_denials_looks_like_data("4f2a9c81d3e6b7a05f2a9c81.evil.test"));
  assert_true(awf_denials_looks_like_data("user-a1b2c3d4e5f6g7.evil.test"));
  assert_false(awf_denials_looks_like_data("objects.githubusercontent.com"));
  assert_false(awf_denials_looks_like_data("registry.npmjs.org"));
  assert_false(awf_denials_looks_like_data("s3.us-east-1.amazonaws.com"));
  awf_denials *d = awf_denials_new();
  note(d, "4f2a9c81d3e6b7a05f2a9c81.evil.test", 0, R("not_allowed"), NULL, false);
  note(d, "ok.test", 443, R("not_allowed"), NULL, false);
  char *s = summary(d);
  assert_non_null(strstr(s,
                         "  4f2a9c81d3e6b7a05f2a9c81.evil.test  not_allowed  [looks like data "
                         "encoded in the name: not suggested]\n"));
  assert_non_null(strstr(s, "--allow-domains ok.test\n"));
  free(s);
  awf_denials_free(d);
}

/* --audit: what was admitted but would have been denied has its own heading
 * and is in the paste line; what the firewall really dropped stays denied. */
static void test_audit_would_deny(void **state) {
  (void)state;
  awf_denials *d = awf_denials_new();
  note(d, "other.test", 443, R("not_allowed"), NULL, true);
  note(d, "other.test", 443, R("not_allowed"), NULL, true);
  note(d, "198.51.100.10", 443, R("udp_not_allowed"), NULL, false);
  char *s = summary(d);
  assert_non_null(
      strstr(s, "awf: 1 destination was denied:\n  198.51.100.10:443  udp_not_allowed"));
  assert_non_null(strstr(s, "awf: --audit: 1 destination would have been denied:\n"
                            "  other.test:443  not_allowed (2 times)\n"));
  assert_non_null(strstr(s, "awf: to allow them: --allow-domains other.test\n"));
  free(s);
  awf_denials_free(d);
}

/* SSH: a name --allow-ssh would admit goes on the paste line as --allow-ssh
 * (never --allow-domains: that would open HTTP and TLS instead); an address
 * no name led to has no fix but a name. */
static void test_ssh_not_allowed_suggests_allow_ssh(void **state) {
  (void)state;
  awf_denials *d = awf_denials_new();
  note(d, "gitlab.test", 22, R("ssh_not_allowed"), NULL, false);
  note(d, "gitlab.test", 22, R("ssh_not_allowed"), NULL, false);
  note(d, "4f2a9c81d3e6b7a05f2a9c81.evil.test", 22, R("ssh_not_allowed"), NULL, false);
  note(d, "198.51.100.11", 22, R("unknown_destination"), NULL, false);
  note(d, "other.test", 443, R("not_allowed"), NULL, false);
  char *s = summary(d);
  assert_non_null(strstr(s, "awf: 4 destinations were denied:\n"));
  assert_non_null(strstr(s, "  gitlab.test:22  ssh_not_allowed (2 times)\n"));
  assert_non_null(
      strstr(s, "  4f2a9c81d3e6b7a05f2a9c81.evil.test:22  ssh_not_allowed  [looks like "
                "data encoded in the name: not suggested]\n"));
  assert_non_null(strstr(s,
                         "  198.51.100.11:22  unknown_destination  (SSH to an address that no "
                         "name awf answered leads to: connect by a name in --allow-ssh)\n"));
  assert_non_null(strstr(s, "awf: to allow them: --allow-domains other.test --allow-ssh "
                            "gitlab.test\n"));
  assert_null(strstr(s, "198.51.100.11,"));
  assert_null(strstr(s, "--allow-ports"));
  free(s);
  awf_denials_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dotted_label_not_summarised_as_two),
      cmocka_unit_test(test_unprintable_host_escaped),
      cmocka_unit_test(test_fix_per_reason),
      cmocka_unit_test(test_collapse_to_parent),
      cmocka_unit_test(test_exfiltration_names_not_suggested),
      cmocka_unit_test(test_audit_would_deny),
      cmocka_unit_test(test_ssh_not_allowed_suggests_allow_ssh),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
