/* fuzz_upstream_proxy.c: libFuzzer target for the parent proxy's answer
 * parser and URL parser (proxy/wire/upstream_proxy.c).
 *
 * Input: a selector byte, then bytes. Selector even: a CONNECT answer.
 * - Read the way the dialer reads it (awf_connect_response_want() bytes at
 *   a time, a few bytes at most, never past AWF_CONNECT_RESPONSE_MAX), the
 *   bytes taken never go past the first CRLF CRLF: DONE comes exactly when
 *   the bytes taken end with it, and then with a status of 100..999.
 * - Every prefix judged on its own gives what reading up to it gave: once
 *   BAD, every longer prefix is BAD; NEED_MORE never follows BAD.
 * Selector odd: a proxy URL (a C string).
 * - A URL that parses has a host and a port; the CONNECT request built from
 *   it for a fixed name has exactly as many CRLFs as its lines (no header
 *   injected by the credentials), and the credentials are base64 text.
 * - NO_PROXY matching of the input as a list never crashes, and "*" or the
 *   name itself always bypasses. */
#include "fuzz_check.h"
#include "upstream_proxy.h"

static void fuzz_answer(const uint8_t *data, size_t n) {
  char *buf = (char *)fuzz_dup(data, n); /* exact size: ASan sees a read past it */
  size_t got = 0;
  int code = 0;
  enum awf_connect_status st = AWF_CONNECT_NEED_MORE;
  while (st == AWF_CONNECT_NEED_MORE && got < n) {
    size_t want = awf_connect_response_want(buf, got);
    FUZZ_CHECK(want >= 1 && want <= 4 && got + want <= AWF_CONNECT_RESPONSE_MAX);
    if (want > n - got)
      want = n - got;
    got += want;
    code = 0;
    st = awf_connect_response_parse(buf, got, &code);
    /* The same prefix judged again, from a fresh start, agrees. */
    char *again = (char *)fuzz_dup(data, got);
    int code2 = 0;
    FUZZ_CHECK(awf_connect_response_parse(again, got, &code2) == st && code2 == code);
    free(again);
  }
  if (st == AWF_CONNECT_DONE) {
    FUZZ_CHECK(got >= 4 && memcmp(buf + got - 4, "\r\n\r\n", 4) == 0);
    FUZZ_CHECK(code >= 100 && code <= 999);
    /* No earlier CRLF CRLF: the first one ends the head. */
    for (size_t i = 0; i + 4 < got; i++)
      FUZZ_CHECK(memcmp(buf + i, "\r\n\r\n", 4) != 0);
  }
  if (st == AWF_CONNECT_BAD) /* every longer prefix stays BAD */
    for (size_t k = got; k <= n && k < got + 8; k++) {
      int c = 0;
      FUZZ_CHECK(awf_connect_response_parse(buf, k, &c) == AWF_CONNECT_BAD);
    }
  free(buf);
}

static size_t count(const char *s, const char *what) {
  size_t n = 0;
  for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
    n++;
  return n;
}

static void fuzz_url(const uint8_t *data, size_t n) {
  char *s = fuzz_strdup(data, n);
  struct awf_upstream_proxy p;
  char err[256];
  if (awf_upstream_proxy_parse(s, &p, err, sizeof(err)) == 0) {
    FUZZ_CHECK(p.host[0] != '\0' && p.port > 0);
    char req[AWF_CONNECT_REQUEST_MAX];
    int k = awf_connect_request(req, sizeof(req), &p, "example.com", 443);
    FUZZ_CHECK(k > 0 && (size_t)k == strlen(req));
    FUZZ_CHECK(count(req, "\r\n") == (p.auth[0] ? 4u : 3u));
    if (p.auth[0]) {
      FUZZ_CHECK(strncmp(p.auth, "Basic ", 6) == 0);
      size_t b = strlen(p.auth + 6);
      FUZZ_CHECK(b % 4 == 0 &&
                 strspn(p.auth + 6, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789+/=") == b);
    }
  } else {
    FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
  }
  memset(&p, 0, sizeof(p));
  if (awf_upstream_proxy_set_no_proxy(&p, s) == 0) {
    (void)awf_upstream_proxy_bypass(&p, "a.example.com");
    (void)awf_upstream_proxy_bypass(&p, "::1");
  }
  FUZZ_CHECK(awf_upstream_proxy_set_no_proxy(&p, "*") == 0 &&
             awf_upstream_proxy_bypass(&p, "anything"));
  free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  if (data[0] % 2 == 0)
    fuzz_answer(data + 1, size - 1);
  else
    fuzz_url(data + 1, size - 1);
  return 0;
}
