/* test_http_target.c: request-target parsing, mostly the ways a URI can be
 * made to mean a different host to us than to the next parser. Inputs are
 * exact-size heap copies without a NUL, so ASan flags any read past them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_target.h"

typedef enum awf_target_status (*parse_fn)(const char *, size_t, struct awf_http_target *);

/* Parse a heap copy; on OK, turn path into an offset (it points into the
 * freed copy afterwards) or -1 when it is not inside the input. */
static enum awf_target_status run(parse_fn fn, const char *s, size_t len,
                                  struct awf_http_target *t, long *path_off) {
  char *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  if (len)
    memcpy(copy, s, len);
  memset(t, 0x5a, sizeof(*t));
  enum awf_target_status st = fn(copy, len, t);
  *path_off = -1;
  if (st == AWF_TARGET_OK && t->path != NULL && t->path >= copy && t->path <= copy + len)
    *path_off = (long)(t->path - copy);
  free(copy);
  return st;
}

static enum awf_target_status abs_n(const char *s, size_t len, struct awf_http_target *t,
                                    long *off) {
  return run(awf_target_parse_absolute, s, len, t, off);
}

static enum awf_target_status auth_n(const char *s, size_t len, struct awf_http_target *t,
                                     long *off) {
  return run(awf_target_parse_authority, s, len, t, off);
}

static void expect_abs_status(const char *s, enum awf_target_status want) {
  struct awf_http_target t;
  long off;
  enum awf_target_status st = abs_n(s, strlen(s), &t, &off);
  if (st != want)
    fail_msg("absolute \"%s\": got %s, want %s", s, awf_target_status_name(st),
             awf_target_status_name(want));
}

static void expect_auth_status(const char *s, enum awf_target_status want) {
  struct awf_http_target t;
  long off;
  enum awf_target_status st = auth_n(s, strlen(s), &t, &off);
  if (st != want)
    fail_msg("authority \"%s\": got %s, want %s", s, awf_target_status_name(st),
             awf_target_status_name(want));
}

/* Absolute URI that must parse to host/port and a path `path` ("" = none). */
static void expect_abs(const char *s, const char *host, unsigned port, const char *path,
                       bool userinfo) {
  struct awf_http_target t;
  long off;
  size_t len = strlen(s);
  enum awf_target_status st = abs_n(s, len, &t, &off);
  if (st != AWF_TARGET_OK)
    fail_msg("absolute \"%s\": %s", s, awf_target_status_name(st));
  assert_string_equal(t.host, host);
  assert_int_equal(t.host_len, strlen(host));
  assert_int_equal(t.port, port);
  assert_int_equal(t.had_userinfo, userinfo);
  assert_int_equal(t.path_len, strlen(path));
  if (*path == '\0') {
    assert_string_equal(t.path, "/"); /* a literal, not the freed copy */
  } else {
    /* The path is the tail of the input. */
    assert_int_equal(off, (long)(len - strlen(path)));
    assert_memory_equal(s + off, path, strlen(path));
  }
}

static void test_absolute_basic(void **state) {
  (void)state;
  expect_abs("http://example.com/", "example.com", 80, "/", false);
  expect_abs("http://example.com/a/b?q=1&r=%20", "example.com", 80, "/a/b?q=1&r=%20", false);
  expect_abs("HTTP://Example.COM:8080/Path", "example.com", 8080, "/Path", false);
  expect_abs("hTtP://x/", "x", 80, "/", false);
  expect_abs("http://1.2.3.4/", "1.2.3.4", 80, "/", false);
  expect_abs("http://under_score.example-host.com/", "under_score.example-host.com", 80, "/",
             false);
  expect_abs("http://xn--caf-dma.example/", "xn--caf-dma.example", 80, "/", false);
  expect_abs("http://example.com./", "example.com.", 80, "/", false);
  /* Bytes a path may carry but a host may not, and '@' after the host. */
  expect_abs("http://a.com/@b.com", "a.com", 80, "/@b.com", false);
  expect_abs("http://a.com/x?u=http://b.com@c.com:81/", "a.com", 80,
             "/x?u=http://b.com@c.com:81/", false);
  expect_abs("http://a.com/p\\q", "a.com", 80, "/p\\q", false);
}

static void test_absolute_no_path(void **state) {
  (void)state;
  expect_abs("http://example.com", "example.com", 80, "", false);
  expect_abs("http://example.com:81", "example.com", 81, "", false);
  expect_abs("http://[::1]", "::1", 80, "", false);
  /* A query without a path: path points at '?' and callers prepend '/'. */
  expect_abs("http://example.com?x=1", "example.com", 80, "?x=1", false);
  expect_abs("http://example.com:8080?", "example.com", 8080, "?", false);
}

static void test_absolute_ports(void **state) {
  (void)state;
  expect_abs("http://a.com:1/", "a.com", 1, "/", false);
  expect_abs("http://a.com:65535/", "a.com", 65535, "/", false);
  expect_abs("http://a.com:00080/", "a.com", 80, "/", false);
  /* RFC 3986 allows an empty port; it means the default. */
  expect_abs("http://a.com:/", "a.com", 80, "/", false);
  expect_abs("http://a.com:", "a.com", 80, "", false);
  expect_abs("http://[::1]:/", "::1", 80, "/", false);
  const char *bad[] = {
      "http://a.com:0/",          "http://a.com:00000/", "http://a.com:65536/",
      "http://a.com:99999/",      "http://a.com:+80/",   "http://a.com:-1/",
      "http://a.com:80a/",        "http://a.com:0x50/",  "http://a.com:1:2/",
      "http://a.com:000080/",     "http://a.com::80/",   "http://[::1]:0/",
      "http://a.com:4294967376/",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_abs_status(bad[i], AWF_TARGET_BAD_PORT);
}

static void test_absolute_scheme(void **state) {
  (void)state;
  const char *bad[] = {
      "https://a.com/",
      "HTTPS://a.com/",
      "ftp://a.com/",
      "/index.html",
      "http:/a.com/",
      "http:a.com",
      "",
      "http",
      "http:",
      "http:/",
      "ws://a.com/",
      "httpx://a.com/",
      "a.com:80",
      "*",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_abs_status(bad[i], AWF_TARGET_BAD_SCHEME);
}

static void test_userinfo(void **state) {
  (void)state;
  expect_abs("http://allowed.com@evil.com/", "evil.com", 80, "/", true);
  expect_abs("http://user:pass@host.com:81/x", "host.com", 81, "/x", true);
  expect_abs("http://a@b@c.com/", "c.com", 80, "/", true);
  expect_abs("http://allowed.com:80@evil.com", "evil.com", 80, "", true);
  expect_abs("http://@evil.com/", "evil.com", 80, "/", true);
  expect_abs("http://u%40x:p!$&'()*+,;=~@evil.com/", "evil.com", 80, "/", true);
  /* No percent-decoding: an escaped '/' does not end the userinfo early. */
  expect_abs("http://allowed.com%2f@evil.com/", "evil.com", 80, "/", true);
  /* The userinfo ends at the authority: an '@' in the query is not one. */
  expect_abs("http://evil.com?@allowed.com/", "evil.com", 80, "?@allowed.com/", false);
  expect_abs("http://evil.com/@allowed.com", "evil.com", 80, "/@allowed.com", false);
  /* A userinfo with nothing after it has no host. */
  expect_abs_status("http://allowed.com@/", AWF_TARGET_BAD_HOST);
  expect_abs_status("http://allowed.com@:80/", AWF_TARGET_BAD_HOST);
  /* Bytes no userinfo has, which some parsers read as delimiters. */
  expect_abs_status("http://a.com\\@b.com/", AWF_TARGET_BAD_SYNTAX);
  expect_abs_status("http://[::1]@b.com/", AWF_TARGET_BAD_SYNTAX);
  expect_abs_status("http://a\"b@c.com/", AWF_TARGET_BAD_SYNTAX);
  expect_abs_status("http://a|b@c.com/", AWF_TARGET_BAD_SYNTAX);
  expect_abs_status("http://a\xff@c.com/", AWF_TARGET_BAD_SYNTAX);
}

/* '#' never belongs in a request target; refusing it removes the question
 * of which side of it the '@' falls on. */
static void test_fragment(void **state) {
  (void)state;
  expect_abs_status("http://evil.com#@allowed.com/", AWF_TARGET_BAD_SYNTAX);
  expect_abs_status("http://a.com/#frag", AWF_TARGET_BAD_SYNTAX);
  expect_abs_status("http://a.com#", AWF_TARGET_BAD_SYNTAX);
  expect_abs_status("http://a.com/x?y#z", AWF_TARGET_BAD_SYNTAX);
}

static void test_backslash(void **state) {
  (void)state;
  expect_abs_status("http://a.com\\@b.com/", AWF_TARGET_BAD_SYNTAX);
  expect_abs_status("http://a.com\\/", AWF_TARGET_BAD_HOST);
  expect_abs_status("http://a.com\\b.com/", AWF_TARGET_BAD_HOST);
  expect_abs_status("http:\\\\a.com/", AWF_TARGET_BAD_SCHEME);
}

static void test_control_bytes(void **state) {
  (void)state;
  const char *bad[] = {
      "http://a.com/ x",   "http://a.com/\t",   "http://a.com/\r\n", "http://a .com/",
      "http://a.com/\x7f", "http://a.com/\x01", " http://a.com/",    "http://a.com/\x1f",
      "https://a.com/ x", /* the control byte is reported before the scheme */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_abs_status(bad[i], AWF_TARGET_BAD_SYNTAX);
  /* NUL inside the given length. */
  struct awf_http_target t;
  long off;
  static const char nul_path[] = "http://a.com/x\0y";
  assert_int_equal(abs_n(nul_path, sizeof(nul_path) - 1, &t, &off), AWF_TARGET_BAD_SYNTAX);
  static const char nul_host[] = "http://a.com\0.evil.com/";
  assert_int_equal(abs_n(nul_host, sizeof(nul_host) - 1, &t, &off), AWF_TARGET_BAD_SYNTAX);
  static const char nul_auth[] = "a.com\0.evil.com:443";
  assert_int_equal(auth_n(nul_auth, sizeof(nul_auth) - 1, &t, &off), AWF_TARGET_BAD_SYNTAX);
  /* The length given is what counts, not a NUL terminator. */
  assert_int_equal(abs_n("http://a.com/xyz", 13, &t, &off), AWF_TARGET_OK);
  assert_int_equal(t.path_len, 1);
}

static void test_host_chars(void **state) {
  (void)state;
  const char *bad[] = {
      "http://a%2ecom/", "http://evil.com%2f/", "http://a!b.com/",
      "http://a$b.com/", "http://a&b.com/",     "http://a'b.com/",
      "http://a(b.com/", "http://a)b.com/",     "http://a*b.com/",
      "http://a+b.com/", "http://a,b.com/",     "http://a;b.com/",
      "http://a=b.com/", "http://a~b.com/",     "http://a\"b.com/",
      "http://a<b.com/", "http://a>b.com/",     "http://a[b.com/",
      "http://a]b.com/", "http://a{b.com/",     "http://a|b.com/",
      "http://a^b.com/", "http://a`b.com/",     "http://caf\xc3\xa9.com/",
      "http://\x80/",    "http:///x",           "http://",
      "http://:80/",     "http://?x",           "http:///",
      "http://::1/",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_abs_status(bad[i], AWF_TARGET_BAD_HOST);
}

static void test_host_length(void **state) {
  (void)state;
  char uri[400], host[300];
  struct awf_http_target t;
  long off;
  for (size_t n = 250; n <= 256; n++) {
    for (int dot = 0; dot <= 1; dot++) {
      memset(host, 'a', n);
      if (dot)
        host[n - 1] = '.';
      host[n] = '\0';
      int len = snprintf(uri, sizeof(uri), "http://%s/", host);
      enum awf_target_status st = abs_n(uri, (size_t)len, &t, &off);
      bool fits = n <= 253 || (dot && n == 254);
      assert_int_equal(st, fits ? AWF_TARGET_OK : AWF_TARGET_BAD_HOST);
      if (fits) {
        assert_int_equal(t.host_len, n);
        assert_memory_equal(t.host, host, n + 1);
      }
      len = snprintf(uri, sizeof(uri), "%s:443", host);
      st = auth_n(uri, (size_t)len, &t, &off);
      assert_int_equal(st, fits ? AWF_TARGET_OK : AWF_TARGET_BAD_HOST);
    }
  }
}

static void test_ipv6(void **state) {
  (void)state;
  struct awf_http_target t;
  long off;
  expect_abs("http://[::1]:8080/x", "::1", 8080, "/x", false);
  assert_int_equal(abs_n("http://[::1]/", 13, &t, &off), AWF_TARGET_OK);
  assert_true(t.host_is_ipv6);
  /* One address, one spelling. */
  expect_abs("http://[0:0:0:0:0:0:0:1]/", "::1", 80, "/", false);
  expect_abs("http://[2001:DB8::A]/", "2001:db8::a", 80, "/", false);
  expect_abs("http://[::FFFF:127.0.0.1]/", "::ffff:127.0.0.1", 80, "/", false);
  expect_abs("http://u@[::1]:81/", "::1", 81, "/", true);
  assert_int_equal(abs_n("http://1.2.3.4/", 15, &t, &off), AWF_TARGET_OK);
  assert_false(t.host_is_ipv6);
  const char *bad[] = {
      "http://[::1%25eth0]/",
      "http://[fe80::1%25lo]:80/",
      "http://[fe80::1%lo]/",
      "http://[]/",
      "http://[::1/",
      "http://[::1]x/",
      "http://[::1]]/",
      "http://[1.2.3.4]/",
      "http://[v1.x]/",
      "http://[::1::2]/",
      "http://[:::1]/",
      "http://[12345::]/",
      "http://[::1]a:80/",
      "http://[",
      "http://[::g]/",
      "http://[0000:0000:0000:0000:0000:0000:0000:0000:1]/",
      "http://[0000:0000:0000:0000:0000:0000:000.000.000.001]/",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_abs_status(bad[i], AWF_TARGET_BAD_HOST);
}

static void expect_auth(const char *s, const char *host, unsigned port, bool v6) {
  struct awf_http_target t;
  long off;
  enum awf_target_status st = auth_n(s, strlen(s), &t, &off);
  if (st != AWF_TARGET_OK)
    fail_msg("authority \"%s\": %s", s, awf_target_status_name(st));
  assert_string_equal(t.host, host);
  assert_int_equal(t.host_len, strlen(host));
  assert_int_equal(t.port, port);
  assert_int_equal(t.host_is_ipv6, v6);
  assert_null(t.path);
  assert_int_equal(t.path_len, 0);
  assert_false(t.had_userinfo);
}

static void test_authority(void **state) {
  (void)state;
  expect_auth("example.com:443", "example.com", 443, false);
  expect_auth("Example.COM:8443", "example.com", 8443, false);
  expect_auth("[::1]:443", "::1", 443, true);
  expect_auth("[2001:DB8::1]:1", "2001:db8::1", 1, true);
  expect_auth("1.2.3.4:22", "1.2.3.4", 22, false);
  expect_auth("a.com:00443", "a.com", 443, false);
  expect_auth("a.com:65535", "a.com", 65535, false);

  const char *bad_port[] = {
      "example.com", "example.com:", "example.com:0", "example.com:65536", "[::1]",    "[::1]:",
      "a.com:+443",  "a.com:443a",   "a.com:1:2",     "a.com:000443",      "a.com:-1",
  };
  for (size_t i = 0; i < sizeof(bad_port) / sizeof(bad_port[0]); i++)
    expect_auth_status(bad_port[i], AWF_TARGET_BAD_PORT);

  const char *bad_host[] = {
      ":443", "::1:443", "[fe80::1%25eth0]:443", "a%2e.com:443", "[::1]x:443", "a!b.com:443",
      "",     "[]:443",  "caf\xc3\xa9.com:443",
  };
  for (size_t i = 0; i < sizeof(bad_host) / sizeof(bad_host[0]); i++)
    expect_auth_status(bad_host[i], AWF_TARGET_BAD_HOST);

  const char *bad_syntax[] = {
      "http://x:443",   "https://x.com:443", "user@x.com:443", "a.com@b.com:443", "x.com:443/",
      "x.com:443/path", "x.com:443?",        "x.com:443#",     "a\\b.com:443",    "x.com :443",
      "x.com: 443",     " x.com:443",        "x.com:443\r\n",  "x.com:443\x7f",
  };
  for (size_t i = 0; i < sizeof(bad_syntax) / sizeof(bad_syntax[0]); i++)
    expect_auth_status(bad_syntax[i], AWF_TARGET_BAD_SYNTAX);
}

static void test_status_names(void **state) {
  (void)state;
  assert_string_equal(awf_target_status_name(AWF_TARGET_OK), "ok");
  assert_string_equal(awf_target_status_name(AWF_TARGET_BAD_SCHEME), "bad_scheme");
  assert_string_equal(awf_target_status_name(AWF_TARGET_BAD_HOST), "bad_host");
  assert_string_equal(awf_target_status_name(AWF_TARGET_BAD_PORT), "bad_port");
  assert_string_equal(awf_target_status_name(AWF_TARGET_BAD_SYNTAX), "bad_syntax");
}

/* What any OK result must satisfy, whatever the input. */
static void check_result(const char *s, size_t len, bool absolute) {
  struct awf_http_target t;
  long off;
  enum awf_target_status st = absolute ? abs_n(s, len, &t, &off) : auth_n(s, len, &t, &off);
  assert_true(st <= AWF_TARGET_OK && st >= AWF_TARGET_BAD_SYNTAX);
  if (st != AWF_TARGET_OK)
    return;
  assert_true(t.host_len > 0 && t.host_len <= 254);
  assert_int_equal(strlen(t.host), t.host_len);
  assert_true(t.port >= 1);
  if (t.host_is_ipv6) {
    struct in6_addr a;
    assert_int_equal(inet_pton(AF_INET6, t.host, &a), 1);
  } else {
    for (size_t i = 0; i < t.host_len; i++)
      assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz0123456789.-_", t.host[i]));
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    assert_true(ch > 0x20 && ch != 0x7f && ch != '#');
  }
  if (!absolute) {
    assert_null(t.path);
    assert_int_equal(t.path_len, 0);
    return;
  }
  if (t.path_len == 0) {
    assert_string_equal(t.path, "/");
  } else {
    assert_true(off >= 0 && (size_t)off + t.path_len == len);
    assert_true(s[off] == '/' || s[off] == '?');
  }
}

static uint32_t xorshift(uint32_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

/* Random bytes, random strings over the URI alphabet, and valid targets
 * with bytes overwritten. */
static void test_fuzz(void **state) {
  (void)state;
  static const char alphabet[] = "httpHTTP:/[]@?#%.-_:09aZ\\ \x01\x7f\xff!$&'()*+,;=~";
  static const char *seeds[] = {
      "http://user:pw@www.example.com:8080/a/b?c=d",
      "http://[2001:db8::1]:80/x?y",
      "www.example.com:443",
      "[::1]:443",
  };
  uint32_t x = 0xdeadbeef;
  char buf[300];
  for (int iter = 0; iter < 60000; iter++) {
    size_t len = xorshift(&x) % sizeof(buf);
    int mode = iter % 3;
    if (mode == 0) {
      for (size_t i = 0; i < len; i++)
        buf[i] = (char)xorshift(&x);
    } else if (mode == 1) {
      for (size_t i = 0; i < len; i++)
        buf[i] = alphabet[xorshift(&x) % (sizeof(alphabet) - 1)];
      if (len >= 7 && iter % 2)
        memcpy(buf, "http://", 7);
    } else {
      const char *seed = seeds[xorshift(&x) % 4];
      len = strlen(seed);
      memcpy(buf, seed, len);
      for (int k = 0; k < 3; k++)
        buf[xorshift(&x) % len] = alphabet[xorshift(&x) % (sizeof(alphabet) - 1)];
      len -= xorshift(&x) % 3 == 0 ? xorshift(&x) % len : 0;
    }
    check_result(buf, len, true);
    check_result(buf, len, false);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_absolute_basic), cmocka_unit_test(test_absolute_no_path),
      cmocka_unit_test(test_absolute_ports), cmocka_unit_test(test_absolute_scheme),
      cmocka_unit_test(test_userinfo),       cmocka_unit_test(test_fragment),
      cmocka_unit_test(test_backslash),      cmocka_unit_test(test_control_bytes),
      cmocka_unit_test(test_host_chars),     cmocka_unit_test(test_host_length),
      cmocka_unit_test(test_ipv6),           cmocka_unit_test(test_authority),
      cmocka_unit_test(test_status_names),   cmocka_unit_test(test_fuzz),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
