/* test_upstream_proxy.c: the parent proxy's URL, NO_PROXY, the CONNECT
 * request, and the strict parser of its answer (read a few bytes at a time,
 * never past the head). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream_proxy.h"

static struct awf_upstream_proxy parse_ok(const char *url) {
  struct awf_upstream_proxy p;
  char err[256] = "";
  int rc = awf_upstream_proxy_parse(url, &p, err, sizeof(err));
  if (rc != 0)
    fail_msg("%s: %s", url, err);
  return p;
}

static void parse_bad(const char *url, const char *why) {
  struct awf_upstream_proxy p;
  char err[256] = "";
  assert_int_equal(awf_upstream_proxy_parse(url, &p, err, sizeof(err)), -1);
  if (!strstr(err, why))
    fail_msg("%s: '%s' does not say '%s'", url, err, why);
}

static void test_url_forms(void **state) {
  (void)state;
  struct awf_upstream_proxy p = parse_ok("http://proxy.corp:3128");
  assert_string_equal(p.host, "proxy.corp");
  assert_int_equal(p.port, 3128);
  assert_string_equal(p.auth, "");
  p = parse_ok("HTTP://Proxy.Corp:8080/");
  assert_string_equal(p.host, "proxy.corp");
  assert_int_equal(p.port, 8080);
  p = parse_ok("http://proxy.corp");
  assert_int_equal(p.port, 80);
  p = parse_ok("10.0.0.1:3128"); /* no scheme: http */
  assert_string_equal(p.host, "10.0.0.1");
  assert_int_equal(p.port, 3128);
  p = parse_ok("http://[fd00::1]:3128");
  assert_string_equal(p.host, "fd00::1");
}

static void test_url_credentials(void **state) {
  (void)state;
  struct awf_upstream_proxy p = parse_ok("http://user:pass@proxy:3128");
  assert_string_equal(p.auth, "Basic dXNlcjpwYXNz"); /* user:pass */
  assert_string_equal(p.host, "proxy");
  /* Percent-decoded; the last '@' ends the userinfo. */
  p = parse_ok("http://us%40er:p@ss:w%25@proxy:3128");
  assert_string_equal(p.auth, "Basic dXNAZXI6cEBzczp3JQ=="); /* us@er:p@ss:w% */
  assert_string_equal(p.host, "proxy");
  p = parse_ok("http://onlyuser@proxy:1");
  assert_string_equal(p.auth, "Basic b25seXVzZXI6"); /* onlyuser: */
  p = parse_ok("http://a:@proxy:1");
  assert_string_equal(p.auth, "Basic YTo="); /* a: */
}

static void test_url_refused(void **state) {
  (void)state;
  parse_bad("https://proxy:3128", "https:// parent proxies are not supported");
  parse_bad("socks5://proxy:1080", "the scheme must be http://");
  parse_bad("http://proxy:3128/x", "a path");
  parse_bad("http://proxy:3128?x", "a path");
  parse_bad("http://proxy:3128#x", "a path");
  parse_bad("http://proxy:0", "bad host or port");
  parse_bad("http://proxy:65536", "bad host or port");
  parse_bad("http://", "no host");
  parse_bad("http://u:p@", "no host");
  parse_bad("http://pro xy:1", "bad host or port");
  parse_bad("http://u%zz:p@proxy:1", "bad user or password");
  parse_bad("http://u%0d%0aX:p@proxy:1", "bad user or password"); /* no CR LF */
  parse_bad("http://u:p%0@proxy:1", "bad user or password");
  parse_bad("http://u%3Ax:p@proxy:1", "may not contain ':'");
}

static void test_no_proxy(void **state) {
  (void)state;
  struct awf_upstream_proxy p = parse_ok("http://proxy:3128");
  assert_false(awf_upstream_proxy_bypass(&p, "github.com"));
  assert_int_equal(awf_upstream_proxy_set_no_proxy(&p, "localhost, .corp.example,10.1.2.3 "
                                                       "github.com.,[::1]"),
                   0);
  assert_true(awf_upstream_proxy_bypass(&p, "localhost"));
  assert_true(awf_upstream_proxy_bypass(&p, "corp.example"));
  assert_true(awf_upstream_proxy_bypass(&p, "a.b.corp.example"));
  assert_false(awf_upstream_proxy_bypass(&p, "xcorp.example"));
  assert_true(awf_upstream_proxy_bypass(&p, "github.com"));
  assert_true(awf_upstream_proxy_bypass(&p, "api.github.com"));
  assert_false(awf_upstream_proxy_bypass(&p, "notgithub.com"));
  assert_true(awf_upstream_proxy_bypass(&p, "10.1.2.3"));
  assert_false(awf_upstream_proxy_bypass(&p, "10.1.2.33"));
  assert_true(awf_upstream_proxy_bypass(&p, "::1"));
  assert_int_equal(awf_upstream_proxy_set_no_proxy(&p, "*"), 0);
  assert_true(awf_upstream_proxy_bypass(&p, "anything.test"));
  assert_int_equal(awf_upstream_proxy_set_no_proxy(&p, ""), 0);
  assert_false(awf_upstream_proxy_bypass(&p, "anything.test"));
  char big[AWF_UPSTREAM_NO_PROXY_MAX + 1];
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  assert_int_equal(awf_upstream_proxy_set_no_proxy(&p, big), -1);
}

static void test_connect_request(void **state) {
  (void)state;
  char out[AWF_CONNECT_REQUEST_MAX];
  struct awf_upstream_proxy p = parse_ok("http://proxy:3128");
  int n = awf_connect_request(out, sizeof(out), &p, "github.com", 443);
  assert_int_equal(n, (int)strlen(out));
  assert_string_equal(out, "CONNECT github.com:443 HTTP/1.1\r\nHost: github.com:443\r\n\r\n");
  n = awf_connect_request(out, sizeof(out), &p, "2001:db8::1", 22);
  assert_true(n > 0);
  assert_string_equal(out,
                      "CONNECT [2001:db8::1]:22 HTTP/1.1\r\nHost: [2001:db8::1]:22\r\n\r\n");
  p = parse_ok("http://user:pass@proxy:3128");
  n = awf_connect_request(out, sizeof(out), &p, "example.com", 80);
  assert_true(n > 0);
  assert_string_equal(out, "CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n"
                           "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n");
  /* A name that could write a header is refused, as is no name at all. */
  assert_int_equal(awf_connect_request(out, sizeof(out), &p, "a.com\r\nX: y", 443), -1);
  assert_int_equal(awf_connect_request(out, sizeof(out), &p, "a.com x", 443), -1);
  assert_int_equal(awf_connect_request(out, sizeof(out), &p, "", 443), -1);
  assert_int_equal(awf_connect_request(out, 10, &p, "a.com", 443), -1);
}

/* Feed s as a reader would (want() bytes at a time): the status reached,
 * how many bytes were taken, and the code. */
static enum awf_connect_status feed(const char *s, size_t *taken, int *code) {
  size_t len = strlen(s), got = 0;
  char *buf = malloc(len + 1);
  assert_non_null(buf);
  enum awf_connect_status st = AWF_CONNECT_NEED_MORE;
  *code = 0;
  while (st == AWF_CONNECT_NEED_MORE && got < len) {
    size_t want = awf_connect_response_want(buf, got);
    assert_true(want >= 1 && want <= 4);
    if (want > len - got)
      want = len - got;
    memcpy(buf + got, s + got, want);
    got += want;
    st = awf_connect_response_parse(buf, got, code);
  }
  *taken = got;
  free(buf);
  return st;
}

static void test_response_ok(void **state) {
  (void)state;
  size_t taken;
  int code;
  static const char head[] = "HTTP/1.1 200 Connection established\r\n\r\n";
  char s[200];
  snprintf(s, sizeof(s), "%sSSH-2.0-banner\r\n", head); /* origin bytes follow at once */
  assert_int_equal(feed(s, &taken, &code), AWF_CONNECT_DONE);
  assert_int_equal(taken, strlen(head)); /* not one byte more */
  assert_int_equal(code, 200);
  assert_int_equal(feed("HTTP/1.0 200 OK\r\nVia: 1.1 squid\r\nX-A:b\r\n\r\n\r\n", &taken,
                        &code),
                   AWF_CONNECT_DONE);
  assert_int_equal(code, 200);
  assert_int_equal(feed("HTTP/1.1 204\r\n\r\n", &taken, &code), AWF_CONNECT_DONE);
  assert_int_equal(code, 204);
  assert_int_equal(
      feed("HTTP/1.1 407 Proxy Authentication Required\r\n"
           "Proxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 5\r\n\r\nhello",
           &taken, &code),
      AWF_CONNECT_DONE);
  assert_int_equal(code, 407);
  assert_int_equal(feed("HTTP/1.1 200 OK\r\n", &taken, &code), AWF_CONNECT_NEED_MORE);
  assert_int_equal(code, 200);
  assert_int_equal(feed("HTTP/1.1 20", &taken, &code), AWF_CONNECT_NEED_MORE);
}

static void test_response_bad(void **state) {
  (void)state;
  static const char *const bad[] = {
      "SSH-2.0-x\r\n\r\n",
      "HTTP/2 200\r\n\r\n",
      "HTTP/1.1 20x OK\r\n\r\n",
      "HTTP/1.1  200 OK\r\n\r\n",
      "HTTP/1.1 099 X\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 200 OK\n\n",                /* bare LF */
      "HTTP/1.1 200 OK\r\r\n\r\n",          /* bare CR */
      "HTTP/1.1 200 OK\r\n folded\r\n\r\n", /* obs-fold */
      "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
      "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n",
      "HTTP/1.1 200 O\x7fK\r\n\r\n",
      "http/1.1 200 OK\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    size_t taken;
    int code;
    if (feed(bad[i], &taken, &code) != AWF_CONNECT_BAD)
      fail_msg("accepted: %s", bad[i]);
  }
  /* A NUL in a value. */
  char nul[] = "HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n";
  int code;
  assert_int_equal(awf_connect_response_parse(nul, sizeof(nul) - 1, &code), AWF_CONNECT_BAD);
  /* Bytes after the head: the reader never has them, and they are refused. */
  static const char extra[] = "HTTP/1.1 200 OK\r\n\r\nX";
  assert_int_equal(awf_connect_response_parse(extra, strlen(extra), &code), AWF_CONNECT_BAD);
}

static void test_response_too_long(void **state) {
  (void)state;
  size_t n = AWF_CONNECT_RESPONSE_MAX + 100;
  char *s = malloc(n + 1);
  assert_non_null(s);
  size_t k = (size_t)snprintf(s, n + 1, "HTTP/1.1 200 OK\r\n");
  while (k + 8 < n) {
    memcpy(s + k, "A: bbb\r\n", 8);
    k += 8;
  }
  s[k] = '\0';
  size_t taken;
  int code;
  assert_int_equal(feed(s, &taken, &code), AWF_CONNECT_BAD);
  assert_true(taken <= AWF_CONNECT_RESPONSE_MAX);
  free(s);
}

static void test_want(void **state) {
  (void)state;
  assert_int_equal(awf_connect_response_want("", 0), 4);
  assert_int_equal(awf_connect_response_want("HTTP", 4), 4);
  assert_int_equal(awf_connect_response_want("OK\r", 3), 3);
  assert_int_equal(awf_connect_response_want("OK\r\n", 4), 2);
  assert_int_equal(awf_connect_response_want("OK\r\n\r", 5), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url_forms),
      cmocka_unit_test(test_url_credentials),
      cmocka_unit_test(test_url_refused),
      cmocka_unit_test(test_no_proxy),
      cmocka_unit_test(test_connect_request),
      cmocka_unit_test(test_response_ok),
      cmocka_unit_test(test_response_bad),
      cmocka_unit_test(test_response_too_long),
      cmocka_unit_test(test_want),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
