/* test_logs.c: logs/: the per-host aggregation (open records paired with
 * their final records, the host cap, the percentile histogram, the
 * --allow-domains line), the escapes, line parsing and the bounded reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <errno.h>

#include "linereader.h"
#include "logagg.h"
#include "logline.h"
#include "logreport.h"

static struct awf_logev ev(const char *event, uint64_t conn, const char *host, bool deny,
                           const char *reason) {
  return (struct awf_logev){.run = "r1",
                            .event = event,
                            .conn = conn,
                            .req = 1,
                            .host = host,
                            .host_len = host ? strlen(host) : 0,
                            .port = 443,
                            .deny = deny,
                            .reason = reason,
                            .bytes_up = -1,
                            .bytes_down = -1,
                            .duration_ms = -1};
}

static const struct awf_loghost *find(awf_logagg *a, const char *name) {
  const struct awf_loghost *const *h;
  size_t n = awf_logagg_hosts(a, &h);
  for (size_t i = 0; i < n; i++)
    if (h[i]->name_len == strlen(name) && memcmp(h[i]->name, name, h[i]->name_len) == 0)
      return h[i];
  return NULL;
}

static void test_open_counted_only_without_final(void **state) {
  (void)state;
  awf_logagg *a = awf_logagg_new(0);
  struct awf_logev e = ev("open", 1, "a.test", false, "allowed");
  awf_logagg_add(a, &e);
  e = ev("connect", 1, "a.test", false, "allowed");
  e.bytes_up = 10, e.bytes_down = 20;
  awf_logagg_add(a, &e);
  e = ev("open", 2, "a.test", true, "not_allowed"); /* never closed */
  awf_logagg_add(a, &e);
  e = ev("open", 1, "a.test", false, "allowed"); /* same conn, another run */
  e.run = "r2";
  awf_logagg_add(a, &e);
  awf_logagg_finish(a);
  const struct awf_loghost *x = find(a, "a.test");
  assert_non_null(x);
  assert_int_equal(x->events, 3);
  assert_int_equal(x->allowed, 2);
  assert_int_equal(x->denied, 1);
  assert_int_equal(x->bytes_down, 20);
  assert_string_equal(x->first_reason, "not_allowed");
  assert_int_equal(awf_logagg_totals(a)->open_only, 2);
  awf_logagg_free(a);
}

/* Many opens closed in a shuffled order: the table's deletions keep every
 * later entry findable. */
static void test_pending_table_deletions(void **state) {
  (void)state;
  enum { N = 20000 };
  awf_logagg *a = awf_logagg_new(0);
  static uint64_t order[N];
  for (uint64_t i = 0; i < N; i++) {
    struct awf_logev e = ev("open", i + 1, "h.test", false, "allowed");
    awf_logagg_add(a, &e);
    order[i] = i + 1;
  }
  srand(7);
  for (size_t i = N - 1; i > 0; i--) {
    size_t j = (size_t)rand() % (i + 1);
    uint64_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (size_t i = 0; i < N - 5; i++) {
    struct awf_logev e = ev("http", order[i], "h.test", false, "allowed");
    awf_logagg_add(a, &e);
  }
  awf_logagg_finish(a);
  assert_int_equal(awf_logagg_totals(a)->open_only, 5);
  assert_int_equal(find(a, "h.test")->events, N);
  awf_logagg_free(a);
}

static void test_host_cap_and_order(void **state) {
  (void)state;
  awf_logagg *a = awf_logagg_new(3);
  const char *names[] = {"big.test", "small.test", "deny.test", "x1.test", "x2.test"};
  for (size_t i = 0; i < 5; i++) {
    struct awf_logev e = ev("http", i + 1, names[i], i == 2, i == 2 ? "blocked" : "allowed");
    e.bytes_down = i == 0 ? 1000 : 1;
    awf_logagg_add(a, &e);
  }
  awf_logagg_finish(a);
  const struct awf_loghost *const *h;
  size_t n = awf_logagg_hosts(a, &h);
  assert_int_equal(n, 4);
  assert_string_equal(h[0]->name, "deny.test");
  assert_string_equal(h[1]->name, "big.test");
  assert_string_equal(h[2]->name, "small.test");
  assert_true(h[3]->others);
  assert_int_equal(h[3]->events, 2);
  awf_logagg_free(a);
}

static void test_destination_without_host(void **state) {
  (void)state;
  awf_logagg *a = awf_logagg_new(0);
  struct awf_logev e = ev("tcp", 1, NULL, true, "port_not_allowed");
  e.original_dst = "192.0.2.1:22";
  awf_logagg_add(a, &e);
  e.original_dst = "[2001:db8::1]:22";
  awf_logagg_add(a, &e);
  e.original_dst = "2001:db8::2"; /* icmp: a bare address */
  awf_logagg_add(a, &e);
  e = ev("unix", 2, NULL, true, "unix_socket_not_allowed");
  e.path = "/tmp/s";
  e.path_len = 6;
  awf_logagg_add(a, &e);
  awf_logagg_finish(a);
  assert_non_null(find(a, "192.0.2.1"));
  assert_non_null(find(a, "2001:db8::1"));
  assert_non_null(find(a, "2001:db8::2"));
  assert_non_null(find(a, "unix:/tmp/s"));
  awf_logagg_free(a);
}

static void test_percentiles(void **state) {
  (void)state;
  awf_logagg *a = awf_logagg_new(0);
  assert_int_equal(awf_logagg_percentile(a, 50), -1);
  for (int i = 1; i <= 50; i++) { /* exact range */
    struct awf_logev e = ev("http", (uint64_t)i, "a.test", false, "allowed");
    e.duration_ms = i;
    awf_logagg_add(a, &e);
  }
  assert_int_equal(awf_logagg_percentile(a, 50), 25);
  assert_int_equal(awf_logagg_percentile(a, 100), 50);
  awf_logagg_free(a);
  a = awf_logagg_new(0);
  for (int64_t v = 1; v <= 100000; v++) {
    struct awf_logev e = ev("http", (uint64_t)v, "a.test", false, "allowed");
    e.duration_ms = v;
    awf_logagg_add(a, &e);
  }
  const double ps[] = {50, 95, 99};
  for (size_t i = 0; i < 3; i++) {
    int64_t got = awf_logagg_percentile(a, ps[i]), want = (int64_t)(ps[i] * 1000);
    assert_true(got >= want);
    assert_true(got <= want + want / 32);
  }
  struct awf_logev e = ev("http", 1, "a.test", false, "allowed");
  e.duration_ms = INT64_MAX;
  awf_logagg_add(a, &e);
  assert_int_equal(awf_logagg_percentile(a, 100), INT64_MAX);
  awf_logagg_free(a);
}

static void test_allow_domains_line(void **state) {
  (void)state;
  awf_logagg *a = awf_logagg_new(0);
  struct {
    const char *host, *event, *reason;
    bool deny, would;
  } in[] = {
      {"evil.test", "http", "not_allowed", true, false},
      {"plain.test", "http", "scheme_not_allowed", true, false},
      {"tls.test", "connect", "scheme_not_allowed", true, false},
      {"audit.test", "connect", "not_allowed", false, true},
      {"blocked.test", "http", "blocked", true, false},
      {"a|b.test", "http", "not_allowed", true, false},
      {"0123456789abcdef0123.leak.test", "dns", "not_allowed", true, false},
      {"ok.test", "http", "allowed", false, false},
  };
  for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
    struct awf_logev e = ev(in[i].event, i + 1, in[i].host, in[i].deny, in[i].reason);
    e.would_deny = in[i].would;
    awf_logagg_add(a, &e);
  }
  awf_logagg_finish(a);
  char out[256];
  size_t n = awf_logagg_allow_domains(a, out, sizeof(out));
  assert_int_equal(n, strlen(out));
  assert_string_equal(out, "evil.test,http://plain.test,https://tls.test,audit.test");
  assert_int_equal(awf_logagg_allow_domains(a, out, 12), 9); /* whole names only */
  assert_string_equal(out, "evil.test");
  awf_logagg_free(a);
}

static void test_md_escape(void **state) {
  (void)state;
  struct awf_buf b;
  awf_buf_init(&b, 4096);
  const char in[] = "x|y<script>*_[a](javascript:1)`#&\"\x1b\n\xc3\xa9 ok";
  assert_int_equal(awf_md_escape(&b, in, sizeof(in) - 1), 0);
  assert_int_equal(awf_buf_append(&b, "", 1), 0);
  assert_string_equal(b.data,
                      "x\\|y&lt;script&gt;\\*\\_\\[a\\]\\(javascript\\:1\\)\\`\\#&amp;&quot;"
                      "\\\\x1b\\\\x0a\\\\xc3\\\\xa9 ok");
  awf_buf_reset(&b);
  assert_int_equal(awf_text_escape(&b, "a\\b\x1b[2J\x9b", 8), 0);
  assert_int_equal(awf_buf_append(&b, "", 1), 0);
  assert_string_equal(b.data, "a\\\\b\\x1b[2J\\x9b");
  awf_buf_free(&b);
}

static void expect_bad(const char *line, const char *msg) {
  struct awf_logline l;
  char err[256] = "";
  assert_int_equal(awf_logline_parse(line, strlen(line), &l, err, sizeof(err)), -EINVAL);
  if (!strstr(err, msg))
    fail_msg("%s: got '%s', want '%s'", line, err, msg);
}

static void test_logline(void **state) {
  (void)state;
  expect_bad("nope", "not JSON");
  expect_bad("[1]", "not a JSON object");
  expect_bad("{\"event\":\"http\",\"conn\":1,\"decision\":\"allow\"}", "missing \"run\"");
  expect_bad("{\"run\":\"r\",\"event\":\"http\",\"decision\":\"allow\"}", "missing \"conn\"");
  expect_bad("{\"run\":\"r\",\"event\":\"http\",\"conn\":1}", "missing \"decision\"");
  expect_bad("{\"run\":\"r\",\"event\":\"http\",\"conn\":-1,\"decision\":\"allow\"}",
             "\"conn\" is not a non-negative integer");
  expect_bad("{\"run\":\"r\",\"event\":\"http\",\"conn\":1,\"decision\":\"allow\",\"host\":5}",
             "\"host\" is not a string");
  expect_bad("{\"run\":\"r\",\"event\":\"http\",\"conn\":1,\"decision\":\"allow\",\"conn\":2}",
             "duplicate");
  struct awf_logline l;
  char err[256];
  const char ok[] = "{\"run\":\"r\",\"event\":\"dns\",\"conn\":3,\"qname\":\"a\\u0000b\","
                    "\"decision\":\"deny\",\"reason\":\"not_allowed\",\"duration_ms\":4}";
  /* jansson refuses \u0000 without JSON_ALLOW_NUL: a malformed line */
  assert_int_equal(awf_logline_parse(ok, sizeof(ok) - 1, &l, err, sizeof(err)), -EINVAL);
  const char ok2[] = "{\"run\":\"r\",\"event\":\"dns\",\"conn\":3,\"qname\":\"a.test\","
                     "\"decision\":\"deny\",\"reason\":\"not_allowed\",\"duration_ms\":4}";
  assert_int_equal(awf_logline_parse(ok2, sizeof(ok2) - 1, &l, err, sizeof(err)), 0);
  assert_string_equal(l.ev.host, "a.test");
  assert_true(l.ev.deny);
  assert_int_equal(l.ev.duration_ms, 4);
  assert_int_equal(l.ev.port, -1);
  assert_int_equal(l.status, -1);
  awf_logline_free(&l);
  /* log_lost: the writer's count of records it could not write, no decision */
  expect_bad("{\"run\":\"r\",\"event\":\"log_lost\"}", "missing \"lost\"");
  const char lost[] = "{\"run\":\"r\",\"event\":\"log_lost\",\"lost\":25}";
  assert_int_equal(awf_logline_parse(lost, sizeof(lost) - 1, &l, err, sizeof(err)), 0);
  awf_logagg *a = awf_logagg_new(0);
  assert_non_null(a);
  awf_logagg_add(a, &l.ev);
  awf_logagg_add(a, &l.ev);
  awf_logagg_finish(a);
  assert_int_equal(awf_logagg_totals(a)->lost, 50);
  assert_int_equal(awf_logagg_totals(a)->events, 0);
  awf_logagg_free(a);
  awf_logline_free(&l);
  /* config: awf-proxy's reload, no decision, not counted as an event */
  expect_bad("{\"run\":\"r\",\"event\":\"config\"}", "missing \"ok\"");
  expect_bad("{\"run\":\"r\",\"event\":\"config\",\"ok\":1}", "missing \"ok\"");
  expect_bad("{\"run\":\"r\",\"event\":\"config\",\"ok\":false,\"line\":\"3\"}",
             "\"line\" is not a non-negative integer");
  const char cfg[] = "{\"run\":\"r\",\"event\":\"config\",\"ok\":false,\"error\":\"bad\","
                     "\"file\":\"f.yml\",\"line\":3}";
  assert_int_equal(awf_logline_parse(cfg, sizeof(cfg) - 1, &l, err, sizeof(err)), 0);
  assert_int_equal(l.ok, 0);
  assert_string_equal(l.error, "bad");
  a = awf_logagg_new(0);
  assert_non_null(a);
  awf_logagg_add(a, &l.ev);
  awf_logagg_finish(a);
  assert_int_equal(awf_logagg_totals(a)->events, 0);
  assert_int_equal(awf_logagg_totals(a)->records, 1);
  awf_logagg_free(a);
  awf_logline_free(&l);
}

static void test_linereader(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  const char data[] = "one\n\n0123456789ABCDEF0123\nlast";
  assert_int_equal(write(p[1], data, sizeof(data) - 1), (ssize_t)sizeof(data) - 1);
  struct awf_linereader r;
  assert_int_equal(awf_linereader_init(&r, p[0], 8), 0);
  const char *line;
  size_t len;
  unsigned flags;
  assert_int_equal(awf_linereader_next(&r, false, &line, &len, &flags), 1);
  assert_int_equal(len, 3);
  assert_memory_equal(line, "one", 3);
  assert_int_equal(awf_linereader_next(&r, false, &line, &len, &flags), 1);
  assert_int_equal(len, 0);
  assert_int_equal(flags, 0);
  assert_int_equal(awf_linereader_next(&r, false, &line, &len, &flags), 1);
  assert_int_equal(flags, AWF_LINE_TOO_LONG);
  assert_int_equal(r.lineno, 3);
  close(p[1]);
  /* following: the partial last line waits */
  assert_int_equal(awf_linereader_next(&r, false, &line, &len, &flags), 0);
  assert_int_equal(awf_linereader_next(&r, true, &line, &len, &flags), 1);
  assert_int_equal(flags, AWF_LINE_UNTERMINATED);
  assert_int_equal(len, 4);
  assert_memory_equal(line, "last", 4);
  assert_int_equal(r.lineno, 4);
  assert_int_equal(awf_linereader_next(&r, true, &line, &len, &flags), 0);
  awf_linereader_free(&r);
  close(p[0]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_counted_only_without_final),
      cmocka_unit_test(test_pending_table_deletions),
      cmocka_unit_test(test_host_cap_and_order),
      cmocka_unit_test(test_destination_without_host),
      cmocka_unit_test(test_percentiles),
      cmocka_unit_test(test_allow_domains_line),
      cmocka_unit_test(test_md_escape),
      cmocka_unit_test(test_logline),
      cmocka_unit_test(test_linereader),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
