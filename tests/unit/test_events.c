/* Unit tests for proxy/log/events.c: the one access-log sink writes a
 * unit's open record before its final one, and is where denials are counted
 * for the summary. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events.h"

struct sink {
  FILE *file;
  awf_logfile *log;
  awf_denials *denials;
  struct awf_event_sink s;
};

static int setup(void **state) {
  struct sink *k = calloc(1, sizeof(*k));
  k->file = tmpfile();
  assert_non_null(k->file);
  assert_int_equal(awf_logfile_open_fd(dup(fileno(k->file)), &k->log), 0);
  k->denials = awf_denials_new();
  k->s = (struct awf_event_sink){.log = k->log, .denials = k->denials};
  *state = k;
  return 0;
}

static int teardown(void **state) {
  struct sink *k = *state;
  awf_logfile_close(k->log);
  awf_denials_free(k->denials);
  fclose(k->file);
  free(k);
  return 0;
}

/* What was written so far, as one string (caller frees). */
static char *written(struct sink *k) {
  awf_logfile_flush(k->log);
  long n = lseek(fileno(k->file), 0, SEEK_END);
  char *s = calloc(1, (size_t)n + 1);
  assert_int_equal(pread(fileno(k->file), s, (size_t)n, 0), n);
  return s;
}

static size_t count(const char *text, const char *needle) {
  size_t n = 0;
  for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

static char *summary(struct sink *k) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  awf_denials_print(k->denials, f);
  fclose(f);
  return buf;
}

static struct awf_log_record record(const char *event, const char *host, int port,
                                    enum awf_decision d, enum awf_reason r) {
  struct awf_log_record rec;
  awf_log_record_init(&rec);
  rec.ts_ms = 1700000000000;
  rec.event = event;
  rec.conn = 7;
  rec.host = host;
  rec.host_len = host ? strlen(host) : 0;
  rec.port = port;
  rec.decision = d;
  rec.reason = r;
  return rec;
}

static void test_open_then_final(void **state) {
  struct sink *k = *state;
  struct awf_log_record r = record("connect", "ok.test", 443, AWF_ALLOW, AWF_REASON_ALLOWED);
  awf_event_open(&k->s, &r);
  awf_event_log(&k->s, &r, &(struct awf_event_unit){0}); /* its open was written */
  r = record("http", "other.test", 80, AWF_DENY, AWF_REASON_NOT_ALLOWED);
  awf_event_log(&k->s, &r, &(struct awf_event_unit){.write_open = true});
  char *s = written(k);
  assert_int_equal(count(s, "\"event\":\"open\""), 2);
  assert_int_equal(count(s, "\"kind\":\"connect\""), 1);
  assert_int_equal(count(s, "\"kind\":\"http\",\"host\":\"other.test\",\"port\":80,"
                            "\"decision\":\"deny\",\"reason\":\"not_allowed\""),
                   1);
  assert_int_equal(count(s, "\"event\":\"connect\""), 1);
  assert_int_equal(count(s, "\n"), 4);
  free(s);
  assert_int_equal(awf_denials_count(k->denials), 1); /* the admitted one is not a denial */
}

static void test_denials_counted_here(void **state) {
  struct sink *k = *state;
  struct awf_log_record r = record("http", "a.test", 80, AWF_ALLOW, AWF_REASON_NOT_ALLOWED);
  r.would_deny = true; /* --audit: would have been one */
  awf_event_log(&k->s, &r, &(struct awf_event_unit){0});
  r = record("http", "api.test", 80, AWF_DENY, AWF_REASON_SCHEME_NOT_ALLOWED);
  awf_event_log(&k->s, &r, &(struct awf_event_unit){0});
  r = record("connect", "tls.test", 443, AWF_DENY, AWF_REASON_SCHEME_NOT_ALLOWED);
  awf_event_log(&k->s, &r, &(struct awf_event_unit){0});
  /* no name: the address the client dialled */
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(25)};
  inet_pton(AF_INET, "192.0.2.9", &dst.sin_addr);
  r = record("tcp", NULL, 25, AWF_DENY, AWF_REASON_PORT_NOT_ALLOWED);
  awf_event_log(&k->s, &r, &(struct awf_event_unit){.dst = (struct sockaddr *)&dst});
  /* a UNIX socket: its path */
  r = record("unix", NULL, -1, AWF_DENY, AWF_REASON_UNIX_SOCKET_NOT_ALLOWED);
  r.path = "/run/x.sock";
  r.path_len = strlen(r.path);
  awf_event_log(&k->s, &r, &(struct awf_event_unit){0});
  /* DNS: the name is escaped text already */
  r = record("dns", "a\\.b.test", -1, AWF_DENY, AWF_REASON_NOT_ALLOWED);
  awf_event_log(&k->s, &r, &(struct awf_event_unit){.host_escaped = true});
  assert_int_equal(awf_denials_count(k->denials), 6);
  char *s = summary(k);
  assert_non_null(strstr(s, "a.test:80  not_allowed"));
  assert_non_null(strstr(s, "http://api.test"));
  assert_non_null(strstr(s, "https://tls.test"));
  assert_non_null(strstr(s, "192.0.2.9:25  port_not_allowed"));
  assert_non_null(strstr(s, "--allow-unix-socket /run/x.sock"));
  assert_non_null(strstr(s, "a\\.b.test  not_allowed"));
  assert_non_null(strstr(s, "would have been denied"));
  free(s);
}

static void test_no_log_no_denials(void **state) {
  (void)state;
  struct awf_event_sink none = {0};
  struct awf_log_record r = record("http", "a.test", 80, AWF_DENY, AWF_REASON_NOT_ALLOWED);
  awf_event_log(&none, &r, &(struct awf_event_unit){.write_open = true}); /* nothing to do */
  r.ts_ms = 0;
  awf_event_log(&none, &r, &(struct awf_event_unit){0});
  assert_true(r.ts_ms > 0); /* stamped now */
}

/* --dlp: a record that names a match has the match masked in host, url,
 * sni and qname, in the open and final records and in the summary; the
 * caller's fields are left alone. Without the table the fields go whole. */
static void test_dlp_match_masked(void **state) {
  struct sink *k = *state;
  awf_dlp *d = awf_dlp_new();
  assert_non_null(d);
  assert_int_equal(awf_dlp_add_literal(d, "secret:K", "s3cr3t-value-1", 14), 0);
  k->s.dlp = d;
  static const char host[] = "akiaiosfodnn7example.ok.test";
  static const char url[] =
      "http://akiaiosfodnn7example.ok.test/x?a=ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8&b="
      "s3cr3t%2Dvalue-1";
  struct awf_log_record r = record("http", host, 80, AWF_DENY, AWF_REASON_DLP_MATCH);
  r.url = url;
  r.url_len = strlen(url);
  r.dlp = "github_token";
  awf_event_log(&k->s, &r, &(struct awf_event_unit){.write_open = true});
  assert_string_equal(r.host, host); /* the caller's */
  char *text = written(k);
  assert_int_equal(count(text, "\"dlp\":\"github_token\""), 2); /* open and final */
  assert_null(strstr(text, "akiaiosfodnn7example"));
  assert_null(strstr(text, "ghp_"));
  assert_null(strstr(text, "s3cr3t"));
  assert_int_equal(count(text, "\"host\":\"********************.ok.test\""), 2);
  free(text);
  char *sum = summary(k);
  assert_null(strstr(sum, "akiaiosfodnn7example"));
  free(sum);
  /* A record without a kind is written as it is. */
  struct awf_log_record plain = record("http", "ghp.ok.test", 80, AWF_ALLOW,
                                       AWF_REASON_ALLOWED);
  awf_event_log(&k->s, &plain, &(struct awf_event_unit){0});
  text = written(k);
  assert_non_null(strstr(text, "ghp.ok.test"));
  free(text);
  k->s.dlp = NULL;
  awf_dlp_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_open_then_final, setup, teardown),
      cmocka_unit_test_setup_teardown(test_denials_counted_here, setup, teardown),
      cmocka_unit_test(test_no_log_no_denials),
      cmocka_unit_test_setup_teardown(test_dlp_match_masked, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
