/* Unit tests for proxy/log/metrics.c: counting, summing instances (also
 * while their writer runs on another thread), the bounded denied-hosts
 * table, and the Prometheus text rendering. The events sink feeding it is
 * covered here too (events.c counts every final record). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "metrics.h"

static struct awf_log_record rec(const char *event, enum awf_decision d, enum awf_reason r) {
  struct awf_log_record x;
  awf_log_record_init(&x);
  x.event = event;
  x.decision = d;
  x.reason = r;
  return x;
}

/* The text of one scrape of the instances. */
static char *render(const struct awf_metrics *const *src, size_t n) {
  struct awf_metrics *sum = malloc(sizeof(*sum));
  assert_non_null(sum);
  awf_metrics_sum(sum, src, n);
  struct awf_buf b;
  awf_buf_init(&b, 1 << 20);
  struct awf_metrics_build bi = {"1.2.3", "abc\"def", "static"};
  assert_int_equal(awf_metrics_render(sum, &bi, &b), 0);
  free(sum);
  char *s = strdup(awf_buf_at(&b, 0));
  awf_buf_free(&b);
  return s;
}

static char *render1(const struct awf_metrics *m) {
  const struct awf_metrics *src[1] = {m};
  return render(src, 1);
}

static void has(const char *text, const char *line) {
  char *want;
  assert_true(asprintf(&want, "\n%s\n", line) > 0);
  if (!strstr(text, want))
    fail_msg("missing line '%s' in:\n%s", line, text);
  free(want);
}

static void lacks(const char *text, const char *needle) {
  if (strstr(text, needle))
    fail_msg("unexpected '%s' in:\n%s", needle, text);
}

static void test_records_by_event_decision_reason(void **state) {
  (void)state;
  static struct awf_metrics m;
  awf_metrics_init(&m);
  struct awf_log_record r = rec("http", AWF_ALLOW, AWF_REASON_ALLOWED);
  r.bytes_up = 10;
  r.bytes_down = 1000;
  awf_metrics_note_record(&m, &r, "a.test", 6);
  awf_metrics_note_record(&m, &r, "a.test", 6);
  r = rec("connect", AWF_DENY, AWF_REASON_NOT_ALLOWED);
  awf_metrics_note_record(&m, &r, "evil.test", 9);
  r = rec("dns", AWF_DENY, AWF_REASON_NOT_ALLOWED);
  awf_metrics_note_record(&m, &r, "evil.test", 9);
  r = rec("tls", AWF_DENY, AWF_REASON_DNS_FAILURE); /* not a policy denial */
  awf_metrics_note_record(&m, &r, "gone.test", 9);
  r = rec("weird", AWF_DECISION_NONE, AWF_REASON_NONE);
  awf_metrics_note_record(&m, &r, NULL, 0);
  awf_metrics_note_record(NULL, &r, NULL, 0); /* no metrics: nothing */
  char *t = render1(&m);
  has(t, "awf_requests_total{event=\"http\",decision=\"allow\",reason=\"allowed\"} 2");
  has(t, "awf_requests_total{event=\"dns\",decision=\"deny\",reason=\"not_allowed\"} 1");
  has(t, "awf_connections_total{event=\"connect\",decision=\"deny\",reason=\"not_allowed\"} 1");
  has(t, "awf_connections_total{event=\"tls\",decision=\"deny\",reason=\"dns_failure\"} 1");
  has(t, "awf_connections_total{event=\"other\",decision=\"none\",reason=\"none\"} 1");
  has(t, "awf_relayed_bytes_total{direction=\"up\"} 20");
  has(t, "awf_relayed_bytes_total{direction=\"down\"} 2000");
  has(t, "awf_denied_hosts_top{host=\"evil.test\"} 2");
  lacks(t, "gone.test");
  lacks(t, "a.test\"}");
  has(t, "awf_build_info{version=\"1.2.3\",commit=\"abc\\\"def\",flavour=\"static\"} 1");
  /* Every family has its HELP and TYPE. */
  has(t, "# TYPE awf_requests_total counter");
  has(t, "# TYPE awf_connections_active gauge");
  has(t, "# TYPE awf_upstream_connect_seconds histogram");
  has(t, "# TYPE awf_rule_reloads_total counter");
  assert_non_null(strstr(t, "# HELP awf_build_info "));
  free(t);
}

static void test_conn_states_and_reloads(void **state) {
  (void)state;
  static struct awf_metrics m;
  awf_metrics_init(&m);
  awf_metrics_conn_state(&m, -1, 0); /* accepted */
  awf_metrics_conn_state(&m, -1, 0);
  awf_metrics_conn_state(&m, 0, 1);
  awf_metrics_conn_state(&m, 0, AWF_METRICS_STATE_TUNNEL);
  awf_metrics_conn_state(&m, 1, 5);
  awf_metrics_conn_state(&m, 5, -1); /* freed */
  awf_metrics_reload(&m, true);
  awf_metrics_reload(&m, true);
  awf_metrics_reload(&m, false);
  char *t = render1(&m);
  has(t, "awf_connections_accepted_total 2");
  has(t, "awf_connections_active{state=\"accepted\"} 0");
  has(t, "awf_connections_active{state=\"tunnel\"} 1");
  has(t, "awf_connections_active{state=\"closing\"} 0");
  has(t, "awf_tunnels_active 1");
  has(t, "awf_rule_reloads_total 2");
  has(t, "awf_rule_reload_failures_total 1");
  free(t);
}

static void test_histogram_cumulative(void **state) {
  (void)state;
  static struct awf_metrics m;
  awf_metrics_init(&m);
  awf_metrics_observe(&m.connect, 100);      /* <= 0.5 ms */
  awf_metrics_observe(&m.connect, 500);      /* on the bound: in it */
  awf_metrics_observe(&m.connect, 3000);     /* 5 ms bucket */
  awf_metrics_observe(&m.connect, 60000000); /* +Inf */
  awf_metrics_observe(&m.dns, 2000);
  char *t = render1(&m);
  has(t, "awf_upstream_connect_seconds_bucket{le=\"0.0005\"} 2");
  has(t, "awf_upstream_connect_seconds_bucket{le=\"0.0025\"} 2");
  has(t, "awf_upstream_connect_seconds_bucket{le=\"0.005\"} 3");
  has(t, "awf_upstream_connect_seconds_bucket{le=\"10\"} 3");
  has(t, "awf_upstream_connect_seconds_bucket{le=\"+Inf\"} 4");
  has(t, "awf_upstream_connect_seconds_count 4");
  has(t, "awf_upstream_connect_seconds_sum 60.003600");
  has(t, "awf_dns_lookup_seconds_bucket{le=\"0.0025\"} 1");
  has(t, "awf_dns_lookup_seconds_count 1");
  free(t);
}

static void test_label_escaping(void **state) {
  (void)state;
  struct awf_buf b;
  awf_buf_init(&b, 64);
  const char in[] = "a\\b\"c\nd\x01\xc3\xa9";
  assert_int_equal(awf_metrics_append_label(&b, in, sizeof(in) - 1), 0);
  assert_string_equal(awf_buf_at(&b, 0), "a\\\\b\\\"c\\nd???");
  awf_buf_free(&b);
  /* A denied host with such bytes comes out escaped, cut at a NUL. */
  static struct awf_metrics m;
  awf_metrics_init(&m);
  struct awf_log_record r = rec("http", AWF_DENY, AWF_REASON_INVALID_NAME);
  awf_metrics_note_record(&m, &r, "x\"y\nz\0tail", 10);
  char *t = render1(&m);
  has(t, "awf_denied_hosts_top{host=\"x\\\"y\\nz\"} 1");
  free(t);
}

static void test_top_bounded_and_merged(void **state) {
  (void)state;
  static struct awf_metrics a, b;
  awf_metrics_init(&a);
  awf_metrics_init(&b);
  struct awf_log_record r = rec("connect", AWF_DENY, AWF_REASON_NOT_ALLOWED);
  /* A frequent host among many one-off ones is never pushed out. */
  for (int i = 0; i < 1000; i++) {
    char host[32];
    int n = snprintf(host, sizeof(host), "once-%d.test", i);
    awf_metrics_note_record(&a, &r, host, (size_t)n);
    if (i % 10 == 0)
      awf_metrics_note_record(&a, &r, "often.test", 10);
  }
  for (int i = 0; i < 30; i++)
    awf_metrics_note_record(&b, &r, "often.test", 10);
  for (int i = 0; i < 5; i++)
    awf_metrics_note_record(&b, &r, "b-only.test", 11);
  const struct awf_metrics *src[2] = {&a, &b};
  char *t = render(src, 2);
  /* 100 in a, 30 in b: summed by name, and first. */
  const char *first = strstr(t, "awf_denied_hosts_top{");
  assert_non_null(first);
  const char *want = "awf_denied_hosts_top{host=\"often.test\"} ";
  assert_true(strncmp(first, want, strlen(want)) == 0);
  unsigned long long n = strtoull(first + strlen(want), NULL, 10);
  assert_true(n >= 130);
  int lines = 0;
  for (const char *p = t; (p = strstr(p, "\nawf_denied_hosts_top{")); p++)
    lines++;
  assert_int_equal(lines, AWF_METRICS_TOP_SHOWN);
  free(t);
  /* The per-instance table itself is bounded. */
  size_t used = 0;
  for (size_t i = 0; i < AWF_METRICS_TOP_SLOTS; i++)
    used += a.denied.slot[i].host[0] != '\0';
  assert_int_equal(used, AWF_METRICS_TOP_SLOTS);
}

static void test_render_too_big_leaves_buffer(void **state) {
  (void)state;
  static struct awf_metrics m;
  awf_metrics_init(&m);
  struct awf_buf b;
  awf_buf_init(&b, 100);
  assert_int_equal(awf_buf_append(&b, "keep", 4), 0);
  assert_int_equal(awf_metrics_render(&m, NULL, &b), -E2BIG);
  assert_int_equal(b.len, 4);
  assert_string_equal(awf_buf_at(&b, 0), "keep");
  awf_buf_free(&b);
}

/* The events sink counts every final record, and names a denial without a
 * host by the address dialled. */
static void test_events_sink_counts(void **state) {
  (void)state;
  static struct awf_metrics m;
  awf_metrics_init(&m);
  struct awf_event_sink s = {.metrics = &m};
  struct awf_log_record r = rec("tls", AWF_DENY, AWF_REASON_NOT_ALLOWED);
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000207)};
  awf_event_log(&s, &r, &(struct awf_event_unit){.dst = (struct sockaddr *)&dst});
  r = rec("http", AWF_DENY, AWF_REASON_NOT_ALLOWED);
  r.host = "evil.test";
  r.host_len = 9;
  awf_event_log(&s, &r, &(struct awf_event_unit){0});
  char *t = render1(&m);
  has(t, "awf_connections_total{event=\"tls\",decision=\"deny\",reason=\"not_allowed\"} 1");
  has(t, "awf_requests_total{event=\"http\",decision=\"deny\",reason=\"not_allowed\"} 1");
  has(t, "awf_denied_hosts_top{host=\"192.0.2.7\"} 1");
  has(t, "awf_denied_hosts_top{host=\"evil.test\"} 1");
  free(t);
}

/* A writer thread replaces hosts while another sums: every host read is one
 * that was written whole, never a mix of two. */
static struct awf_metrics race_m;
static volatile int race_stop;

static void *race_writer(void *arg) {
  (void)arg;
  struct awf_log_record r = rec("connect", AWF_DENY, AWF_REASON_NOT_ALLOWED);
  char host[AWF_METRICS_HOST_MAX];
  for (unsigned i = 0; !__atomic_load_n(&race_stop, __ATOMIC_RELAXED); i++) {
    char c = (char)('a' + i % 26);
    size_t n = 20 + i % 80;
    memset(host, c, n);
    awf_metrics_note_record(&race_m, &r, host, n);
    awf_metrics_add(&race_m.bytes_up, 1);
  }
  return NULL;
}

static void test_sum_while_writing(void **state) {
  (void)state;
  awf_metrics_init(&race_m);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, race_writer, NULL), 0);
  static struct awf_metrics sum;
  const struct awf_metrics *src[1] = {&race_m};
  uint64_t last = 0;
  for (int k = 0; k < 300; k++) {
    awf_metrics_sum(&sum, src, 1);
    assert_true(sum.bytes_up >= last); /* a counter never goes back */
    last = sum.bytes_up;
    for (size_t i = 0; i < AWF_METRICS_TOP_SLOTS; i++) {
      const char *h = sum.denied.slot[i].host;
      for (size_t j = 1; h[j]; j++)
        if (h[j] != h[0])
          fail_msg("torn host '%s'", h);
    }
  }
  __atomic_store_n(&race_stop, 1, __ATOMIC_RELAXED);
  pthread_join(th, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_records_by_event_decision_reason),
      cmocka_unit_test(test_conn_states_and_reloads),
      cmocka_unit_test(test_histogram_cumulative),
      cmocka_unit_test(test_label_escaping),
      cmocka_unit_test(test_top_bounded_and_merged),
      cmocka_unit_test(test_render_too_big_leaves_buffer),
      cmocka_unit_test(test_events_sink_counts),
      cmocka_unit_test(test_sum_while_writing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
