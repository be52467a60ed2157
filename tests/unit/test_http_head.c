/* test_http_head.c: the heads the proxy reads and writes (proxy/http_head.c),
 * driven by llhttp the way http_proxy.c drives them. Mostly request
 * smuggling: framing is regenerated, never copied, and Connection may not
 * nominate a header the framing or the routing depends on. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_head.h"

/* ---- a minimal driver ---------------------------------------------------------- */

struct drv {
  llhttp_t p;
  struct awf_head h;
  unsigned host_headers;
  uint32_t url_off, url_len, status_off, status_len;
  bool transparent, head_request, client_close;
  int status; /* request: awf_req_head_complete; response: resp result */
  bool origin_form;
  struct awf_req_facts facts;
  struct awf_resp_plan plan;
  struct awf_buf out; /* the head built */
  bool header_refused;
};

static struct drv *drv_of(llhttp_t *p) { return p->data; }

static int d_url(llhttp_t *p, const char *at, size_t len) {
  struct drv *d = drv_of(p);
  if (d->url_len == 0)
    d->url_off = (uint32_t)d->h.buf.len;
  d->url_len += (uint32_t)len;
  return awf_head_append(&d->h, at, len) < 0 ? -1 : 0;
}

static int d_status(llhttp_t *p, const char *at, size_t len) {
  struct drv *d = drv_of(p);
  if (d->status_len == 0)
    d->status_off = (uint32_t)d->h.buf.len;
  d->status_len += (uint32_t)len;
  return awf_head_append(&d->h, at, len) < 0 ? -1 : 0;
}

static int d_field(llhttp_t *p, const char *at, size_t len) {
  return awf_head_field(&drv_of(p)->h, at, len) < 0 ? -1 : 0;
}

static int d_value(llhttp_t *p, const char *at, size_t len) {
  return awf_head_value(&drv_of(p)->h, at, len) < 0 ? -1 : 0;
}

static int d_req_value_complete(llhttp_t *p) {
  struct drv *d = drv_of(p);
  const struct awf_hdr *x = awf_head_value_complete(&d->h);
  if (awf_req_check_header(&d->h, x, &d->host_headers) < 0) {
    d->header_refused = true;
    return -1;
  }
  return 0;
}

static int d_resp_value_complete(llhttp_t *p) {
  awf_head_value_complete(&drv_of(p)->h);
  return 0;
}

static int d_req_headers_complete(llhttp_t *p) {
  struct drv *d = drv_of(p);
  d->status = awf_req_head_complete(p, &d->h, d->host_headers, d->h.buf.data + d->url_off,
                                    d->url_len, d->transparent, 8080, &d->facts,
                                    &d->origin_form);
  if (d->status == 0)
    assert_int_equal(awf_build_request_head(&d->out, &d->facts, &d->h), 0);
  return HPE_PAUSED;
}

static int d_resp_headers_complete(llhttp_t *p) {
  struct drv *d = drv_of(p);
  d->status = awf_resp_head_complete(p, &d->h, d->head_request, d->client_close, &d->plan);
  if (d->status >= 0)
    assert_int_equal(awf_build_response_head(&d->out, p->status_code,
                                             d->status_len ? d->h.buf.data + d->status_off : "",
                                             d->status_len, &d->h, &d->plan),
                     0);
  return HPE_PAUSED;
}

static const llhttp_settings_t req_settings = {
    .on_url = d_url,
    .on_header_field = d_field,
    .on_header_value = d_value,
    .on_header_value_complete = d_req_value_complete,
    .on_headers_complete = d_req_headers_complete,
};

static const llhttp_settings_t resp_settings = {
    .on_status = d_status,
    .on_header_field = d_field,
    .on_header_value = d_value,
    .on_header_value_complete = d_resp_value_complete,
    .on_headers_complete = d_resp_headers_complete,
};

static void drv_init(struct drv *d, bool response) {
  memset(d, 0, sizeof(*d));
  awf_head_init(&d->h, 64 * 1024);
  awf_buf_init(&d->out, 128 * 1024);
  d->status = -100; /* "never reached on_headers_complete" */
  llhttp_init(&d->p, response ? HTTP_RESPONSE : HTTP_REQUEST,
              response ? &resp_settings : &req_settings);
  d->p.data = d;
}

static void drv_run(struct drv *d, const char *text) {
  llhttp_execute(&d->p, text, strlen(text));
}

static void drv_free(struct drv *d) {
  awf_head_release(&d->h);
  awf_buf_free(&d->out);
}

/* The head built, as a C string (the buffer is not NUL-terminated). */
static const char *out_str(struct drv *d) {
  static char s[4096];
  snprintf(s, sizeof(s), "%.*s", (int)d->out.len, d->out.data ? d->out.data : "");
  return s;
}

/* ---- requests -------------------------------------------------------------------- */

static int request_status(const char *head, bool transparent) {
  struct drv d;
  drv_init(&d, false);
  d.transparent = transparent;
  drv_run(&d, head);
  int st = d.header_refused ? 400 : d.status;
  drv_free(&d);
  return st;
}

static void test_connection_may_not_nominate_framing(void **state) {
  (void)state;
  static const char *const bad[] = {"Content-Length",
                                    "close, content-length",
                                    "keep-alive,CONTENT-LENGTH",
                                    "Transfer-Encoding",
                                    "Host",
                                    " x, host ,y"};
  char head[512];
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    snprintf(head, sizeof(head),
             "POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\nConnection: %s\r\n"
             "Content-Length: 3\r\n\r\nabc",
             bad[i]);
    assert_int_equal(request_status(head, false), 400);
    snprintf(head, sizeof(head),
             "POST / HTTP/1.1\r\nHost: a.test\r\nConnection: %s\r\nContent-Length: 3\r\n\r\n",
             bad[i]);
    assert_int_equal(request_status(head, true), 400);
  }
  /* Nominating headers that are hop-by-hop anyway is ordinary. */
  assert_int_equal(request_status("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n"
                                  "Connection: keep-alive, Upgrade, TE\r\nUpgrade: x\r\n\r\n",
                                  false),
                   0);
  /* A token that merely contains the name is another token. */
  assert_int_equal(request_status("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n"
                                  "Connection: x-content-length\r\n\r\n",
                                  false),
                   0);
}

static void test_request_content_length_regenerated(void **state) {
  (void)state;
  struct drv d;
  drv_init(&d, false);
  drv_run(&d, "POST http://A.test:81/p?q HTTP/1.1\r\nHost: elsewhere\r\n"
              "Content-Length: 005\r\nX-Private: 1\r\nConnection: X-Private\r\n\r\nhello");
  assert_int_equal(d.status, 0);
  assert_int_equal(d.facts.framing, AWF_FRAME_LENGTH);
  assert_int_equal(d.facts.length, 5);
  assert_string_equal(out_str(&d),
                      "POST /p?q HTTP/1.1\r\nHost: a.test:81\r\nContent-Length: 5\r\n\r\n");
  drv_free(&d);
}

static void test_request_chunked_regenerated(void **state) {
  (void)state;
  struct drv d;
  drv_init(&d, false);
  drv_run(&d, "PUT http://a.test/ HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: Chunked\r\n"
              "TE: trailers\r\nKeep-Alive: 5\r\nProxy-Authorization: x\r\n\r\n");
  assert_int_equal(d.status, 0);
  assert_int_equal(d.facts.framing, AWF_FRAME_CHUNKED);
  assert_string_equal(out_str(&d),
                      "PUT / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n");
  drv_free(&d);
}

static void test_request_without_body_has_no_framing(void **state) {
  (void)state;
  struct drv d;
  drv_init(&d, false);
  drv_run(&d, "GET http://[::1]:8080?x HTTP/1.0\r\nAccept: */*\r\n\r\n");
  assert_int_equal(d.status, 0);
  assert_int_equal(d.facts.framing, AWF_FRAME_NONE);
  assert_true(d.facts.close); /* HTTP/1.0 */
  assert_string_equal(out_str(&d),
                      "GET /?x HTTP/1.1\r\nHost: [::1]:8080\r\nAccept: */*\r\n\r\n");
  drv_free(&d);
}

static void test_request_malformed_heads(void **state) {
  (void)state;
  /* Transfer-Encoding llhttp does not take as chunked-last: refused before
   * the head could go upstream (llhttp fails it only afterwards). */
  assert_int_equal(request_status("POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\n"
                                  "Transfer-Encoding: chunked  \t\r\n\r\n",
                                  false),
                   400);
  assert_int_equal(request_status("POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\n"
                                  "Transfer-Encoding: gzip\r\n\r\n",
                                  false),
                   400);
  assert_int_equal(request_status("GET http://a.test/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                                  false),
                   400);
  assert_int_equal(request_status("GET http://a.test/ HTTP/1.1\r\n\r\n", false), 400);
  assert_int_equal(request_status("GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n", false), 400);
  assert_int_equal(request_status("GET https://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
                                  false),
                   400);
}

/* Which refused heads are named not_a_proxy_request: a path sent to the proxy port
 * is named for what it is; any other bad head is a bad request. */
static bool request_origin_form(const char *head, bool transparent) {
  struct drv d;
  drv_init(&d, false);
  d.transparent = transparent;
  drv_run(&d, head);
  assert_int_equal(d.status, 400);
  bool r = d.origin_form;
  drv_free(&d);
  return r;
}

static void test_request_refusal_reason(void **state) {
  (void)state;
  assert_true(request_origin_form("GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n", false));
  assert_false(
      request_origin_form("GET https://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", false));
  assert_false(request_origin_form("GET /p HTTP/1.1\r\nHost: a b\r\n\r\n", true));
}

static void test_transparent_target(void **state) {
  (void)state;
  struct drv d;
  drv_init(&d, false);
  d.transparent = true;
  drv_run(&d, "GET /p HTTP/1.1\r\nHost:  Allowed.Test:9999 \r\n\r\n");
  assert_int_equal(d.status, 0);
  assert_string_equal(d.facts.target.host, "allowed.test");
  assert_int_equal(d.facts.target.port, 8080); /* where the client dialled, not Host's */
  assert_string_equal(out_str(&d), "GET /p HTTP/1.1\r\nHost: allowed.test:8080\r\n\r\n");
  drv_free(&d);
  assert_int_equal(request_status("GET /p HTTP/1.1\r\nHost: [::1]\r\n\r\n", true), 0);
  assert_int_equal(request_status("GET /p HTTP/1.1\r\nHost: a b\r\n\r\n", true), 400);
  assert_int_equal(request_status("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", true),
                   400);
}

static void test_scan_head(void **state) {
  (void)state;
  struct awf_scan s;
  static const char *const bad[] = {"GET / HTTP/1.1\nHost: a\r\n\r\n",
                                    "GET / HTTP/1.1\r\nHost: a\rX\r\n\r\n",
                                    "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
                                    "GET / HTTP/1.1\r\n: b\r\n\r\n"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    awf_scan_restart(&s);
    assert_int_equal(awf_scan_head(&s, bad[i], strlen(bad[i])), -1);
  }
  const char *ok = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nbody\n\0\r";
  awf_scan_restart(&s);
  for (size_t i = 0; i < 35; i++) /* byte by byte: the state carries over */
    assert_int_equal(awf_scan_head(&s, ok + i, 1), 0);
  assert_false(s.active);
}

/* ---- responses -------------------------------------------------------------------- */

static int response(struct drv *d, const char *text, bool head_request, bool client_close) {
  drv_init(d, true);
  d->head_request = head_request;
  d->client_close = client_close;
  drv_run(d, text);
  return d->status;
}

static void test_response_connection_may_not_nominate_framing(void **state) {
  (void)state;
  struct drv d;
  assert_int_equal(response(&d,
                            "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\n"
                            "Content-Length: 5\r\n\r\n",
                            false, false),
                   -1);
  drv_free(&d);
  assert_int_equal(response(&d,
                            "HTTP/1.1 200 OK\r\nConnection: close, Transfer-Encoding\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n",
                            false, false),
                   -1);
  drv_free(&d);
  assert_int_equal(response(&d, "HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n", false, false),
                   -1);
  drv_free(&d);
}

static void test_response_length_regenerated(void **state) {
  (void)state;
  struct drv d;
  assert_int_equal(response(&d,
                            "HTTP/1.1 200 OK\r\nContent-Length: 007\r\nX-A: b\r\n"
                            "Connection: X-A, keep-alive\r\n\r\n",
                            false, false),
                   0);
  assert_int_equal(d.plan.out, AWF_FRAME_LENGTH);
  assert_true(d.plan.reusable);
  assert_string_equal(out_str(&d), "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n");
  drv_free(&d);
  /* HEAD: the length is kept, no body follows (1). */
  assert_int_equal(response(&d, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", true, false),
                   1);
  assert_string_equal(out_str(&d), "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n");
  drv_free(&d);
}

static void test_response_rechunked_or_closed(void **state) {
  (void)state;
  struct drv d;
  /* Read until close: re-chunked for a keep-alive client, not reusable. */
  assert_int_equal(response(&d, "HTTP/1.0 200 OK\r\n\r\n", false, false), 0);
  assert_int_equal(d.plan.in, AWF_FRAME_CLOSE);
  assert_int_equal(d.plan.out, AWF_FRAME_CHUNKED);
  assert_false(d.plan.reusable);
  assert_string_equal(out_str(&d), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  drv_free(&d);
  /* The same for a client that closes after it: raw, then the close. */
  assert_int_equal(response(&d, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false,
                            true),
                   0);
  assert_int_equal(d.plan.out, AWF_FRAME_CLOSE);
  assert_string_equal(out_str(&d), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
  drv_free(&d);
}

static void test_response_interim_and_bad_heads(void **state) {
  (void)state;
  struct drv d;
  /* A 1xx declaring a body: the body is skipped (1), the head has no framing. */
  assert_int_equal(response(&d, "HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n",
                            false, true),
                   1);
  assert_string_equal(out_str(&d), "HTTP/1.1 100 Continue\r\n\r\n");
  drv_free(&d);
  /* llhttp takes a one-digit status: refused. */
  assert_int_equal(response(&d, "HTTP/1.1 2 OK\r\nContent-Length: 0\r\n\r\n", false, false),
                   -1);
  drv_free(&d);
  /* A control byte in the reason phrase: the phrase is dropped. */
  assert_int_equal(response(&d, "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", false,
                            false),
                   0);
  assert_string_equal(out_str(&d), "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n");
  drv_free(&d);
}

/* A length a signed 64-bit reader cannot hold is refused both ways: passed
 * on, an upstream (or client) would refuse it or read another framing. */
static void test_content_length_beyond_int64(void **state) {
  (void)state;
  assert_int_equal(request_status("POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\n"
                                  "Content-Length: 9223372036854775807\r\n\r\n",
                                  false),
                   0);
  assert_int_equal(request_status("POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\n"
                                  "Content-Length: 9223372036854775808\r\n\r\n",
                                  false),
                   400);
  assert_int_equal(request_status("POST http://a.test/ HTTP/1.1\r\nHost: a.test\r\n"
                                  "Content-Length: 000012250041186427047478\r\n\r\n",
                                  false),
                   400);
  struct drv d;
  assert_int_equal(response(&d,
                            "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n",
                            false, false),
                   0);
  drv_free(&d);
  assert_int_equal(response(&d,
                            "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n",
                            false, false),
                   -1);
  drv_free(&d);
}

static void test_well_formed(void **state) {
  (void)state;
  struct awf_head h;
  awf_head_init(&h, 1024);
  assert_int_equal(awf_head_field(&h, "A", 1), 0);
  assert_int_equal(awf_head_value(&h, "b\r\n c", 5), 0);
  awf_head_value_complete(&h);
  assert_false(awf_head_well_formed(&h));
  awf_head_reset(&h);
  assert_int_equal(awf_head_field(&h, "A", 1), 0);
  awf_head_value_complete(&h); /* an empty value */
  assert_int_equal(h.hdrs[0].val_len, 0);
  assert_true(awf_head_well_formed(&h));
  awf_head_release(&h);
}

static void test_header_limit(void **state) {
  (void)state;
  struct awf_head h;
  awf_head_init(&h, 64 * 1024);
  for (unsigned i = 0; i < AWF_MAX_HEADERS; i++) {
    assert_int_equal(awf_head_field(&h, "X", 1), 0);
    assert_int_equal(awf_head_value(&h, "y", 1), 0);
  }
  assert_int_equal(awf_head_field(&h, "X", 1), -E2BIG);
  awf_head_release(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connection_may_not_nominate_framing),
      cmocka_unit_test(test_request_content_length_regenerated),
      cmocka_unit_test(test_request_chunked_regenerated),
      cmocka_unit_test(test_request_without_body_has_no_framing),
      cmocka_unit_test(test_request_malformed_heads),
      cmocka_unit_test(test_request_refusal_reason),
      cmocka_unit_test(test_transparent_target),
      cmocka_unit_test(test_scan_head),
      cmocka_unit_test(test_response_connection_may_not_nominate_framing),
      cmocka_unit_test(test_response_length_regenerated),
      cmocka_unit_test(test_response_rechunked_or_closed),
      cmocka_unit_test(test_response_interim_and_bad_heads),
      cmocka_unit_test(test_content_length_beyond_int64),
      cmocka_unit_test(test_well_formed),
      cmocka_unit_test(test_header_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
