/* Unit tests for proxy/policy/rate_limit.c: token buckets per host, driven by
 * a fake clock (the milliseconds passed in). Burst, refill, periods, bytes
 * buckets with debt, Retry-After, host matching, the global form's bounded
 * table, and the flag grammar. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rate_limit.h"

#define T0 1000000u /* the fake clock's start: any value works */

static awf_rate_limits *with(enum awf_rate_kind kind, const char *entry) {
  awf_rate_limits *rl = awf_rate_limits_new(AWF_RATE_HOSTS_DEFAULT, 7);
  assert_non_null(rl);
  char err[256] = "";
  assert_int_equal(awf_rate_limits_add(rl, kind, entry, err, sizeof(err)), 0);
  return rl;
}

static unsigned admit(awf_rate_limits *rl, const char *host, uint64_t now) {
  return awf_rate_limits_admit(rl, host, strlen(host), now, true);
}

static void charge(awf_rate_limits *rl, const char *host, uint64_t bytes, uint64_t now) {
  awf_rate_limits_charge(rl, host, strlen(host), bytes, now);
}

static void test_burst_then_refused(void **state) {
  (void)state;
  awf_rate_limits *rl = with(AWF_RATE_REQUESTS, "api.example.com=3/m");
  for (int i = 0; i < 3; i++)
    assert_int_equal(admit(rl, "api.example.com", T0), 0);
  /* 3/m: a unit comes back every 20 s. */
  assert_int_equal(admit(rl, "api.example.com", T0), 20);
  assert_int_equal(admit(rl, "api.example.com", T0 + 1), 20); /* 19.999 s: rounded up */
  assert_int_equal(admit(rl, "api.example.com", T0 + 19000), 1);
  assert_int_equal(admit(rl, "api.example.com", T0 + 19001), 1); /* never 0 */
  awf_rate_limits_free(rl);
}

static void test_refill(void **state) {
  (void)state;
  awf_rate_limits *rl = with(AWF_RATE_REQUESTS, "api.example.com=3/m");
  for (int i = 0; i < 3; i++)
    assert_int_equal(admit(rl, "api.example.com", T0), 0);
  assert_int_not_equal(admit(rl, "api.example.com", T0 + 19999), 0);
  assert_int_equal(admit(rl, "api.example.com", T0 + 20000), 0); /* exactly one back */
  assert_int_not_equal(admit(rl, "api.example.com", T0 + 20000), 0);
  /* A long pause refills to the burst, never beyond it. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(admit(rl, "api.example.com", T0 + 3600000), 0);
  assert_int_equal(admit(rl, "api.example.com", T0 + 3600000), 20);
  /* A clock that steps back adds nothing. */
  assert_int_not_equal(admit(rl, "api.example.com", T0), 0);
  awf_rate_limits_free(rl);
}

static void test_refused_takes_nothing(void **state) {
  (void)state;
  awf_rate_limits *rl = with(AWF_RATE_REQUESTS, "a.example=1/s");
  assert_int_equal(admit(rl, "a.example", T0), 0);
  for (int i = 0; i < 100; i++) /* hammering while empty does not push the refill back */
    assert_int_equal(admit(rl, "a.example", T0 + 500), 1);
  assert_int_equal(admit(rl, "a.example", T0 + 1000), 0);
  awf_rate_limits_free(rl);
}

static void test_periods(void **state) {
  (void)state;
  awf_rate_limits *s = with(AWF_RATE_REQUESTS, "x.example=2/s");
  awf_rate_limits *m = with(AWF_RATE_REQUESTS, "x.example=2/m");
  awf_rate_limits *h = with(AWF_RATE_REQUESTS, "x.example=2/h");
  awf_rate_limits *all[3] = {s, m, h};
  for (int k = 0; k < 3; k++) {
    assert_int_equal(admit(all[k], "x.example", T0), 0);
    assert_int_equal(admit(all[k], "x.example", T0), 0);
  }
  assert_int_equal(admit(s, "x.example", T0), 1);    /* 500 ms, rounded up */
  assert_int_equal(admit(m, "x.example", T0), 30);   /* 2/m: one per 30 s */
  assert_int_equal(admit(h, "x.example", T0), 1800); /* 2/h: one per 30 min */
  assert_int_equal(admit(s, "x.example", T0 + 500), 0);
  assert_int_not_equal(admit(m, "x.example", T0 + 29999), 0);
  assert_int_equal(admit(m, "x.example", T0 + 30000), 0);
  assert_int_equal(admit(h, "x.example", T0 + 1800000), 0);
  for (int k = 0; k < 3; k++)
    awf_rate_limits_free(all[k]);
}

static void test_take_false_only_checks(void **state) {
  (void)state;
  awf_rate_limits *rl = with(AWF_RATE_REQUESTS, "x.example=1/m");
  for (int i = 0; i < 5; i++)
    assert_int_equal(awf_rate_limits_admit(rl, "x.example", 9, T0, false), 0);
  assert_int_equal(admit(rl, "x.example", T0), 0);
  assert_int_equal(awf_rate_limits_admit(rl, "x.example", 9, T0, false), 60);
  awf_rate_limits_free(rl);
}

static void test_bytes_bucket(void **state) {
  (void)state;
  awf_rate_limits *rl = with(AWF_RATE_BYTES, "dl.example=1K/m");
  /* Admission takes nothing from a bytes bucket; bytes do. */
  assert_int_equal(admit(rl, "dl.example", T0), 0);
  assert_int_equal(admit(rl, "dl.example", T0), 0);
  charge(rl, "dl.example", 1000, T0);
  assert_int_equal(admit(rl, "dl.example", T0), 0); /* 24 bytes left */
  charge(rl, "dl.example", 24, T0);
  /* Empty: 1024 bytes a minute come back at 1 byte per 58.6 ms. */
  assert_int_equal(admit(rl, "dl.example", T0), 1);
  assert_int_equal(admit(rl, "dl.example", T0 + 58), 1);
  assert_int_equal(admit(rl, "dl.example", T0 + 59), 0);
  awf_rate_limits_free(rl);
}

static void test_bytes_debt(void **state) {
  (void)state;
  awf_rate_limits *rl = with(AWF_RATE_BYTES, "dl.example=1K/s");
  /* A transfer is never cut: it drives the bucket below zero, and new
   * requests wait until the average is back under the limit. */
  charge(rl, "dl.example", 1024 + 10 * 1024, T0);
  assert_int_equal(admit(rl, "dl.example", T0),
                   11); /* 10 KiB of debt at 1 KiB/s, plus a byte */
  assert_int_not_equal(admit(rl, "dl.example", T0 + 10000), 0);
  assert_int_equal(admit(rl, "dl.example", T0 + 10001), 0);
  /* An absurd charge saturates instead of wrapping round to credit. */
  charge(rl, "dl.example", UINT64_MAX, T0 + 10001);
  assert_int_not_equal(admit(rl, "dl.example", T0 + 10001), 0);
  assert_int_not_equal(admit(rl, "dl.example", T0 + 3600000), 0);
  awf_rate_limits_free(rl);
}

static void test_bytes_suffixes(void **state) {
  (void)state;
  static const struct {
    const char *entry;
    uint64_t bytes; /* the burst */
  } cases[] = {{"h=100/s", 100}, {"h=2k/s", 2048}, {"h=3M/s", 3u << 20}, {"h=1G/s", 1u << 30}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    awf_rate_limits *rl = with(AWF_RATE_BYTES, cases[i].entry);
    charge(rl, "h", cases[i].bytes - 1, T0);
    assert_int_equal(admit(rl, "h", T0), 0);
    charge(rl, "h", 1, T0);
    assert_int_not_equal(admit(rl, "h", T0), 0);
    awf_rate_limits_free(rl);
  }
}

static void test_requests_and_bytes_together(void **state) {
  (void)state;
  awf_rate_limits *rl = with(AWF_RATE_REQUESTS, "x.example=10/s");
  char err[256];
  assert_int_equal(awf_rate_limits_add(rl, AWF_RATE_BYTES, "x.example=1K/s", err, sizeof(err)),
                   0);
  charge(rl, "x.example", 5000, T0);
  /* Out of bytes: refused, and the refusal takes no request unit. */
  assert_int_equal(admit(rl, "x.example", T0), 4);
  assert_int_equal(admit(rl, "x.example", T0 + 3905), 0);
  for (int i = 0; i < 9; i++)
    assert_int_equal(admit(rl, "x.example", T0 + 3905), 0);
  assert_int_equal(admit(rl, "x.example", T0 + 3905), 1);
  awf_rate_limits_free(rl);
}

static void test_host_matching(void **state) {
  (void)state;
  awf_rate_limits *rl = with(AWF_RATE_REQUESTS, "example.com=1/m");
  char err[256];
  assert_int_equal(awf_rate_limits_add(rl, AWF_RATE_REQUESTS, "*.wild.test=1/m", err,
                                       sizeof(err)),
                   0);
  /* As the ACL matches: a name covers its subdomains, and they share the
   * rule's one bucket. */
  assert_int_equal(admit(rl, "EXAMPLE.com.", T0), 0);
  assert_int_not_equal(admit(rl, "api.example.com", T0), 0);
  assert_int_equal(admit(rl, "notexample.com", T0), 0); /* no rule: no limit */
  assert_int_equal(admit(rl, "notexample.com", T0), 0);
  assert_int_equal(admit(rl, "wild.test", T0), 0); /* *. covers subdomains only */
  assert_int_equal(admit(rl, "wild.test", T0), 0);
  assert_int_equal(admit(rl, "a.b.wild.test", T0), 0);
  assert_int_not_equal(admit(rl, "c.wild.test", T0), 0);
  awf_rate_limits_free(rl);
}

static void test_every_matching_rule_applies(void **state) {
  (void)state;
  awf_rate_limits *rl = with(AWF_RATE_REQUESTS, "example.com=100/s");
  char err[256];
  assert_int_equal(awf_rate_limits_add(rl, AWF_RATE_REQUESTS, "api.example.com=2/m", err,
                                       sizeof(err)),
                   0);
  assert_int_equal(admit(rl, "api.example.com", T0), 0);
  assert_int_equal(admit(rl, "api.example.com", T0), 0);
  assert_int_equal(admit(rl, "api.example.com", T0), 30);
  assert_int_equal(admit(rl, "www.example.com", T0), 0); /* only the wide rule */
  awf_rate_limits_free(rl);
}

static void test_ip_rule(void **state) {
  (void)state;
  awf_rate_limits *rl = with(AWF_RATE_REQUESTS, "127.0.0.1=1/m");
  char err[256];
  assert_int_equal(awf_rate_limits_add(rl, AWF_RATE_REQUESTS, "::1=1/m", err, sizeof(err)), 0);
  assert_int_equal(admit(rl, "127.0.0.1", T0), 0);
  assert_int_not_equal(admit(rl, "127.0.0.1", T0), 0);
  assert_int_equal(admit(rl, "::1", T0), 0);
  assert_int_not_equal(admit(rl, "::1", T0), 0);
  assert_int_equal(admit(rl, "127.0.0.2", T0), 0);
  awf_rate_limits_free(rl);
}

static void test_global_form_is_per_host(void **state) {
  (void)state;
  awf_rate_limits *rl = with(AWF_RATE_REQUESTS, "2/m");
  assert_int_equal(admit(rl, "a.example", T0), 0);
  assert_int_equal(admit(rl, "a.example", T0), 0);
  assert_int_equal(admit(rl, "a.example", T0), 30);
  assert_int_equal(admit(rl, "A.Example.", T0), 30); /* one host, however written */
  assert_int_equal(admit(rl, "b.example", T0), 0);   /* a bucket of its own */
  assert_int_equal(admit(rl, "sub.a.example", T0), 0);
  assert_int_equal(awf_rate_limits_hosts(rl), 3);
  awf_rate_limits_free(rl);
}

static void test_host_rule_overrides_global(void **state) {
  (void)state;
  awf_rate_limits *rl = with(AWF_RATE_REQUESTS, "1/m");
  char err[256];
  assert_int_equal(awf_rate_limits_add(rl, AWF_RATE_REQUESTS, "api.example.com=3/m", err,
                                       sizeof(err)),
                   0);
  assert_int_equal(awf_rate_limits_add(rl, AWF_RATE_BYTES, "1K/m", err, sizeof(err)), 0);
  for (int i = 0; i < 3; i++) /* its own rule, not the global 1/m */
    assert_int_equal(admit(rl, "api.example.com", T0), 0);
  assert_int_equal(admit(rl, "api.example.com", T0), 20);
  assert_int_equal(admit(rl, "other.example", T0), 0);
  assert_int_equal(admit(rl, "other.example", T0), 60);
  /* The requests rule does not exempt it from the global bytes rule. */
  charge(rl, "api.example.com", 2048, T0 + 60000);
  assert_int_not_equal(admit(rl, "api.example.com", T0 + 60000), 0);
  awf_rate_limits_free(rl);
}

static void test_table_bound(void **state) {
  (void)state;
  awf_rate_limits *rl = awf_rate_limits_new(3, 1);
  char err[256];
  assert_int_equal(awf_rate_limits_add(rl, AWF_RATE_REQUESTS, "1/m", err, sizeof(err)), 0);
  assert_int_equal(admit(rl, "h1", T0), 0);
  assert_int_equal(admit(rl, "h2", T0 + 10000), 0);
  assert_int_equal(admit(rl, "h3", T0 + 20000), 0);
  assert_int_equal(awf_rate_limits_hosts(rl), 3);
  /* Full, and the oldest (h1) refills at T0 + 60 s: a fourth host fails
   * closed until then. */
  assert_int_equal(admit(rl, "h4", T0 + 30000), 30);
  assert_int_equal(awf_rate_limits_hosts(rl), 3);
  /* Hosts in the table go on as before. */
  assert_int_equal(admit(rl, "h3", T0 + 30000), 50);
  /* Once h1 has refilled it makes room; the others are kept. */
  assert_int_equal(admit(rl, "h4", T0 + 60000), 0);
  assert_int_equal(awf_rate_limits_hosts(rl), 3);
  assert_int_equal(admit(rl, "h2", T0 + 60000), 10);
  assert_int_equal(admit(rl, "h4", T0 + 60000), 60);
  /* h3 refills at T0 + 80 s and makes room: h1 comes back with a full
   * bucket, exactly what it had when it was dropped. */
  assert_int_equal(admit(rl, "h1", T0 + 70000), 10);
  assert_int_equal(admit(rl, "h1", T0 + 80000), 0);
  awf_rate_limits_free(rl);
}

static void test_table_many_hosts(void **state) {
  (void)state;
  awf_rate_limits *rl = awf_rate_limits_new(64, 1);
  char err[256], host[32];
  assert_int_equal(awf_rate_limits_add(rl, AWF_RATE_REQUESTS, "1/s", err, sizeof(err)), 0);
  /* 10000 hosts a second apart: each refilled before it could be dropped,
   * so the table never grows beyond its bound and never refuses. */
  for (unsigned i = 0; i < 10000; i++) {
    snprintf(host, sizeof(host), "h%u.example", i);
    assert_int_equal(admit(rl, host, T0 + (uint64_t)i * 20), 0);
    assert_true(awf_rate_limits_hosts(rl) <= 64);
  }
  awf_rate_limits_free(rl);
}

static void test_lru_touch(void **state) {
  (void)state;
  awf_rate_limits *rl = awf_rate_limits_new(2, 1);
  char err[256];
  assert_int_equal(awf_rate_limits_add(rl, AWF_RATE_REQUESTS, "2/m", err, sizeof(err)), 0);
  assert_int_equal(admit(rl, "h1", T0), 0);
  assert_int_equal(admit(rl, "h2", T0), 0);
  assert_int_equal(admit(rl, "h1", T0 + 1000), 0); /* h1 used last: h2 is the oldest */
  /* At T0 + 30 s h2 has refilled, h1 has not: h2 goes, h1 keeps its count
   * (one unit back since, not the two of a new entry). */
  assert_int_equal(admit(rl, "h3", T0 + 30000), 0);
  assert_int_equal(awf_rate_limits_hosts(rl), 2);
  assert_int_equal(admit(rl, "h1", T0 + 30000), 0);
  assert_int_equal(admit(rl, "h1", T0 + 30000), 30);
  awf_rate_limits_free(rl);
}

static void test_no_rules_admit_everything(void **state) {
  (void)state;
  assert_int_equal(awf_rate_limits_admit(NULL, "x", 1, T0, true), 0);
  awf_rate_limits_charge(NULL, "x", 1, 100, T0);
  awf_rate_limits *rl = awf_rate_limits_new(4, 1);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(admit(rl, "x", T0), 0);
  charge(rl, "x", 1u << 30, T0);
  assert_int_equal(admit(rl, "x", T0), 0);
  assert_int_equal(awf_rate_limits_hosts(rl), 0);
  awf_rate_limits_free(rl);
  assert_null(awf_rate_limits_new(0, 1));
}

static void test_grammar(void **state) {
  (void)state;
  static const struct {
    enum awf_rate_kind kind;
    const char *entry;
    const char *why; /* NULL: accepted */
  } cases[] = {
      {AWF_RATE_REQUESTS, "api.example.com=10/s", NULL},
      {AWF_RATE_REQUESTS, " api.example.com = 10/m ", NULL},
      {AWF_RATE_REQUESTS, "*.example.com=1/h", NULL},
      {AWF_RATE_REQUESTS, "5/s", NULL},
      {AWF_RATE_REQUESTS, "1000000/s", NULL},
      {AWF_RATE_REQUESTS, "1000001/s", "N from 1 to 1000000"},
      {AWF_RATE_REQUESTS, "0/s", "N from 1 to 1000000"},
      {AWF_RATE_REQUESTS, "x=10", "not [HOST=]N/s"},
      {AWF_RATE_REQUESTS, "x=10/d", "not [HOST=]N/s"},
      {AWF_RATE_REQUESTS, "x=10K/s", "not [HOST=]N/s"}, /* suffixes are for bytes */
      {AWF_RATE_REQUESTS, "x=-1/s", "not [HOST=]N/s"},
      {AWF_RATE_REQUESTS, "x=ten/s", "not [HOST=]N/s"},
      {AWF_RATE_REQUESTS, "x=99999999999999999999/s", "not [HOST=]N/s"},
      {AWF_RATE_REQUESTS, "=10/s", "no host before '='"},
      {AWF_RATE_REQUESTS, "a.com,b.com=10/s", "one host per entry"},
      {AWF_RATE_REQUESTS, "https://a.com=10/s", "no scheme"},
      {AWF_RATE_REQUESTS, ".a.com=10/s", "leading dot"},
      {AWF_RATE_REQUESTS, "a..com=10/s", "invalid rule"},
      {AWF_RATE_REQUESTS, "", "not [HOST=]N/s"},
      {AWF_RATE_BYTES, "dl.example=10M/m", NULL},
      {AWF_RATE_BYTES, "1G/h", NULL},
      {AWF_RATE_BYTES, "1024G/s", NULL},
      {AWF_RATE_BYTES, "1025G/s", "from 1 to 1T"},
      {AWF_RATE_BYTES, "10T/s", "from 1 to 1T"},
      {AWF_RATE_BYTES, "M/s", "from 1 to 1T"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    awf_rate_limits *rl = awf_rate_limits_new(4, 1);
    char err[512] = "";
    int rc = awf_rate_limits_add(rl, cases[i].kind, cases[i].entry, err, sizeof(err));
    if (!cases[i].why) {
      assert_int_equal(rc, 0);
      assert_int_equal(awf_rate_limits_count(rl, cases[i].kind), 1);
    } else {
      assert_int_equal(rc, -EINVAL);
      assert_int_equal(awf_rate_limits_count(rl, cases[i].kind), 0);
      if (!strstr(err, cases[i].why))
        fail_msg("%s: '%s' lacks '%s'", cases[i].entry, err, cases[i].why);
      char quoted[128];
      snprintf(quoted, sizeof(quoted), "'%s'", cases[i].entry);
      assert_non_null(strstr(err, quoted)); /* the message names the entry */
    }
    awf_rate_limits_free(rl);
  }
}

static void test_rules_bound_and_format(void **state) {
  (void)state;
  awf_rate_limits *rl = awf_rate_limits_new(4, 1);
  char err[256], entry[64], text[256];
  for (unsigned i = 0; i < AWF_RATE_RULES_MAX; i++) {
    snprintf(entry, sizeof(entry), "h%u.example=1/s", i);
    assert_int_equal(awf_rate_limits_add(rl, AWF_RATE_REQUESTS, entry, err, sizeof(err)), 0);
  }
  assert_int_equal(awf_rate_limits_add(rl, AWF_RATE_BYTES, "1K/s", err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "at most 64"));
  awf_rate_limits_free(rl);

  rl = with(AWF_RATE_REQUESTS, "a.example=1/s");
  assert_int_equal(awf_rate_limits_add(rl, AWF_RATE_REQUESTS, "5/m", err, sizeof(err)), 0);
  assert_int_equal(awf_rate_limits_add(rl, AWF_RATE_BYTES, "1M/m", err, sizeof(err)), 0);
  awf_rate_limits_format(rl, AWF_RATE_REQUESTS, text, sizeof(text));
  assert_string_equal(text, "a.example=1/s,5/m");
  awf_rate_limits_format(rl, AWF_RATE_BYTES, text, sizeof(text));
  assert_string_equal(text, "1M/m");
  awf_rate_limits_free(rl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_burst_then_refused),
      cmocka_unit_test(test_refill),
      cmocka_unit_test(test_refused_takes_nothing),
      cmocka_unit_test(test_periods),
      cmocka_unit_test(test_take_false_only_checks),
      cmocka_unit_test(test_bytes_bucket),
      cmocka_unit_test(test_bytes_debt),
      cmocka_unit_test(test_bytes_suffixes),
      cmocka_unit_test(test_requests_and_bytes_together),
      cmocka_unit_test(test_host_matching),
      cmocka_unit_test(test_every_matching_rule_applies),
      cmocka_unit_test(test_ip_rule),
      cmocka_unit_test(test_global_form_is_per_host),
      cmocka_unit_test(test_host_rule_overrides_global),
      cmocka_unit_test(test_table_bound),
      cmocka_unit_test(test_table_many_hosts),
      cmocka_unit_test(test_lru_touch),
      cmocka_unit_test(test_no_rules_admit_everything),
      cmocka_unit_test(test_grammar),
      cmocka_unit_test(test_rules_bound_and_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
