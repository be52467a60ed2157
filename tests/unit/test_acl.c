/* Unit tests for acl/acl.c: rule parsing, every rejection, and matching. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "hostname.h"

#define H AWF_PROTO_HTTP
#define T AWF_PROTO_TLS
#define OK AWF_ACL_ALLOWED
#define NO AWF_ACL_NOT_ALLOWED
#define BLK AWF_ACL_BLOCKED
#define IPL AWF_ACL_IP_LITERAL
#define BAD AWF_ACL_INVALID_NAME

static awf_acl *acl_with(const char *allow, const char *block) {
  char err[256];
  awf_acl *a = awf_acl_new();
  assert_non_null(a);
  if (allow != NULL && awf_acl_add_list(a, AWF_ACL_ALLOW, allow, err, sizeof err) != 0)
    fail_msg("allow list '%s': %s", allow, err);
  if (block != NULL && awf_acl_add_list(a, AWF_ACL_BLOCK, block, err, sizeof err) != 0)
    fail_msg("block list '%s': %s", block, err);
  return a;
}

static enum awf_acl_verdict chk(const awf_acl *a, const char *host, enum awf_acl_proto p) {
  return awf_acl_check(a, host, strlen(host), p);
}

/* The verdict for both protocols. */
static void expect(const awf_acl *a, const char *host, enum awf_acl_verdict want) {
  enum awf_acl_verdict h = chk(a, host, H), t = chk(a, host, T);
  if (h != want || t != want)
    fail_msg("'%s': http %s, tls %s, want %s", host, awf_acl_verdict_name(h),
             awf_acl_verdict_name(t), awf_acl_verdict_name(want));
}

static void expect_p(const awf_acl *a, const char *host, enum awf_acl_proto p,
                     enum awf_acl_verdict want) {
  enum awf_acl_verdict v = chk(a, host, p);
  if (v != want)
    fail_msg("'%s' over %s: %s, want %s", host, p == H ? "http" : "tls",
             awf_acl_verdict_name(v), awf_acl_verdict_name(want));
}

static void test_domain_and_subdomains(void **state) {
  (void)state;
  awf_acl *a = acl_with("github.com", NULL);
  expect(a, "github.com", OK);
  expect(a, "api.github.com", OK);
  expect(a, "a.b.github.com", OK);
  expect(a, "notgithub.com", NO);
  expect(a, "github.com.evil.net", NO);
  expect(a, "github.co", NO);
  expect(a, "hub.com", NO);
  expect(a, "com", NO);
  expect(a, "github-com.net", NO);
  expect(a, "xgithub.com", NO);
  expect(a, "api.github.comx", NO);
  expect(a, "api-github.com", NO);
  awf_acl_free(a);
}

static void test_subdomains_only(void **state) {
  (void)state;
  awf_acl *a = acl_with("*.github.com", NULL);
  expect(a, "github.com", NO);
  expect(a, "api.github.com", OK);
  expect(a, "a.b.c.github.com", OK);
  expect(a, "notgithub.com", NO);
  expect(a, "x.notgithub.com", NO);
  awf_acl_free(a);

  a = acl_with("*.*.example.com", NULL);
  expect(a, "example.com", NO);
  expect(a, "a.example.com", NO);
  expect(a, "a.b.example.com", OK);
  expect(a, "a.b.c.example.com", OK);
  awf_acl_free(a);
}

static void test_in_label_wildcards(void **state) {
  (void)state;
  awf_acl *a = acl_with("api-*.example.com", NULL);
  expect(a, "api-v1.example.com", OK);
  expect(a, "API-V1.Example.COM.", OK);
  expect(a, "api-x.example.com", OK);
  expect(a, "api-.example.com", NO); /* '*' matches at least one byte */
  expect(a, "api.example.com", NO);
  expect(a, "example.com", NO);
  expect(a, "x.api-v1.example.com", NO); /* exactly one label in front */
  expect(a, "api-v1.example.com.evil.net", NO);
  expect(a, "api-v1.xexample.com", NO);
  expect(a, "xapi-v1.example.com", NO);
  awf_acl_free(a);

  a = acl_with("*.cdn-*.example.com", NULL);
  expect(a, "a.cdn-1.example.com", OK);
  expect(a, "a.b.cdn-eu.example.com", OK);
  expect(a, "cdn-1.example.com", NO);
  expect(a, "a.cdn-.example.com", NO);
  expect(a, "a.cdn.example.com", NO);
  expect(a, "a.xcdn-1.example.com", NO);
  awf_acl_free(a);

  a = acl_with("*github.com,a.*.example.org,*-*.x.net,w*.x*.example.io,*a*b*.y.com", NULL);
  expect(a, "xgithub.com", OK);
  expect(a, "github.com", NO);
  expect(a, "a.xgithub.com", NO);
  expect(a, "a.x.example.org", OK);
  expect(a, "a.example.org", NO);
  expect(a, "a.x.y.example.org", NO);
  expect(a, "b.x.example.org", NO);
  expect(a, "a-b.x.net", OK);
  expect(a, "a-b-c.x.net", OK);
  expect(a, "a-.x.net", NO);
  expect(a, "-b.x.net", NO);
  expect(a, "ab.x.net", NO);
  expect(a, "w1.x1.example.io", OK);
  expect(a, "w1.x.example.io", NO);
  expect(a, "w1.example.io", NO);
  expect(a, "z.w1.x1.example.io", NO);
  expect(a, "xaxbx.y.com", OK);
  expect(a, "xaaxbbx.y.com", OK);
  expect(a, "axbx.y.com", NO);
  expect(a, "xaxb.y.com", NO);
  expect(a, "xabx.y.com", NO);
  awf_acl_free(a);
}

/* Reference: '*' is one or more bytes, by plain recursion. */
static int ref_glob(const char *p, const char *s) {
  if (*p == '\0')
    return *s == '\0';
  if (*p == '*') {
    for (const char *t = s + 1; t <= s + strlen(s); t++)
      if (*s != '\0' && ref_glob(p + 1, t))
        return 1;
    return 0;
  }
  return *s == *p && ref_glob(p + 1, s + 1);
}

static uint32_t lcg(uint32_t *st) {
  *st = *st * 1103515245u + 12345u;
  return *st >> 16;
}

static void test_glob_against_reference(void **state) {
  (void)state;
  static const char alpha[] = "ab-";
  uint32_t st = 12345;
  char err[256];
  for (int round = 0; round < 3000; round++) {
    char pat[12], name[12], rule[40], host[40];
    size_t pl = 1 + lcg(&st) % 7, nl = 1 + lcg(&st) % 8;
    for (size_t i = 0; i < pl; i++) {
      bool star = lcg(&st) % 3 == 0 && (i == 0 || pat[i - 1] != '*');
      pat[i] = star ? '*' : alpha[lcg(&st) % 3];
    }
    pat[pl] = '\0';
    for (size_t i = 0; i < nl; i++)
      name[i] = alpha[lcg(&st) % 3];
    name[nl] = '\0';
    if (strcmp(pat, "*") == 0)
      continue; /* a leading "*." is the any-depth form, tested elsewhere */
    snprintf(rule, sizeof rule, "%s.t.com", pat);
    snprintf(host, sizeof host, "%s.t.com", name);
    awf_acl *a = awf_acl_new();
    assert_non_null(a);
    if (awf_acl_add_list(a, AWF_ACL_ALLOW, rule, err, sizeof err) != 0)
      fail_msg("rule '%s': %s", rule, err);
    enum awf_acl_verdict want = ref_glob(pat, name) ? OK : NO;
    expect(a, host, want);
    awf_acl_free(a);
  }
}

static void test_protocols(void **state) {
  (void)state;
  awf_acl *a = acl_with("https://tls.com,http://plain.com,both.com,https://slash.com/,"
                        "HTTPS://Upper.COM,http://*.sub.org,https://api-*.pat.net",
                        NULL);
  expect_p(a, "tls.com", T, OK);
  expect_p(a, "tls.com", H, NO);
  expect_p(a, "x.tls.com", T, OK);
  expect_p(a, "x.tls.com", H, NO);
  expect_p(a, "plain.com", H, OK);
  expect_p(a, "plain.com", T, NO);
  expect(a, "both.com", OK);
  expect_p(a, "slash.com", T, OK);
  expect_p(a, "slash.com", H, NO);
  expect_p(a, "upper.com", T, OK);
  expect_p(a, "a.sub.org", H, OK);
  expect_p(a, "a.sub.org", T, NO);
  expect_p(a, "sub.org", H, NO);
  expect_p(a, "api-1.pat.net", T, OK);
  expect_p(a, "api-1.pat.net", H, NO);
  awf_acl_free(a);

  /* http://x and https://x together admit both. */
  a = acl_with("https://x.com,http://x.com", NULL);
  expect(a, "x.com", OK);
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 2);
  awf_acl_free(a);
}

static void test_block_wins(void **state) {
  (void)state;
  awf_acl *a = acl_with("github.com,*.example.com,1.2.3.4",
                        "api.github.com,*.cdn-*.example.com,https://evil.github.com,1.2.3.4");
  expect(a, "github.com", OK);
  expect(a, "www.github.com", OK);
  expect(a, "api.github.com", BLK);
  expect(a, "x.api.github.com", BLK);
  expect(a, "a.cdn-1.example.com", BLK);
  expect(a, "cdn-1.example.com", OK);
  expect_p(a, "evil.github.com", T, BLK);
  expect_p(a, "evil.github.com", H, OK);
  expect(a, "1.2.3.4", BLK);
  awf_acl_free(a);

  /* A block rule above an allowed name. */
  a = acl_with("api.github.com", "github.com");
  expect(a, "api.github.com", BLK);
  awf_acl_free(a);

  /* Blocks with no allow rule at all. */
  a = acl_with(NULL, "evil.com");
  expect(a, "evil.com", BLK);
  expect(a, "good.com", NO);
  awf_acl_free(a);
}

static void test_empty_allowlist_denies(void **state) {
  (void)state;
  awf_acl *a = awf_acl_new();
  assert_non_null(a);
  expect(a, "github.com", NO);
  expect(a, "com", NO);
  expect(a, "8.8.8.8", IPL);
  expect(a, "::1", IPL);
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 0);
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, " , ,, ", NULL, 0), 0);
  expect(a, "github.com", NO);
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 0);
  awf_acl_free(a);
}

static void test_ip_rules(void **state) {
  (void)state;
  awf_acl *a = acl_with("1.2.3.4,0:0::1,[2001:db8::5],https://5.6.7.8,github.com", "9.9.9.9");
  expect(a, "1.2.3.4", OK);
  expect(a, "1.2.3.5", IPL);
  expect(a, "::1", OK);
  expect(a, "0:0:0:0:0:0:0:1", OK);
  expect(a, "::2", IPL);
  expect(a, "2001:db8::5", OK);
  expect(a, "2001:DB8:0::5", OK);
  expect(a, "::ffff:1.2.3.4", OK); /* the mapped form dials the same host */
  expect_p(a, "5.6.7.8", T, OK);
  expect_p(a, "5.6.7.8", H, IPL);
  expect(a, "9.9.9.9", BLK);
  expect(a, "::ffff:9.9.9.9", BLK);
  expect(a, "140.82.112.3", IPL); /* github.com's address is not github.com */
  /* Non-strict forms are not literals, and not names either. */
  expect(a, "01.2.3.4", BAD);
  expect(a, "1.2.3", BAD);
  expect(a, "0x1.0x2.0x3.0x4", BAD);
  expect(a, "16909060", BAD);
  expect(a, "[::1]", BAD);
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 5);
  awf_acl_free(a);

  /* "::1", "[::1]" and "0:0::1" are one rule. */
  a = acl_with("::1,[::1],0:0::1,::ffff:1.2.3.4,1.2.3.4", NULL);
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 2);
  awf_acl_free(a);
}

static void test_case_dot_and_invalid_names(void **state) {
  (void)state;
  awf_acl *a = acl_with("GitHub.COM.,under_score.org", NULL);
  expect(a, "github.com", OK);
  expect(a, "GitHub.COM.", OK);
  expect(a, "API.GITHUB.COM", OK);
  expect(a, "x_y.github.com", OK);
  expect(a, "under_score.org", OK);
  expect(a, "github.com..", BAD);
  expect(a, "a..github.com", BAD);
  expect(a, ".github.com", BAD);
  expect(a, "", BAD);
  expect(a, ".", BAD);
  expect(a,
         "gith\xc3\xbc"
         "b.com",
         BAD);
  expect(a, "github.com:443", BAD);
  expect(a, "github.com/x", BAD);
  expect(a, "git hub.com", BAD);
  expect(a, "*.github.com", BAD);
  expect(a, "0x7f.0.0.1", BAD);
  expect(a, "a.github.0x1", BAD);
  expect(a, "api.github.123", BAD);

  char host[400];
  memset(host, 'a', 64);
  strcpy(host + 64, ".github.com");
  expect(a, host, BAD); /* 64-byte label */
  memset(host, 'a', 63);
  strcpy(host + 63, ".github.com");
  expect(a, host, OK); /* 63-byte label */

  /* 127 labels "a." then github.com is over 253 bytes; 121 is fine. */
  size_t o = 0;
  for (int i = 0; i < 121; i++) {
    host[o++] = 'a';
    host[o++] = '.';
  }
  strcpy(host + o, "github.com");
  assert_int_equal(strlen(host), 252);
  expect(a, host, OK);
  memmove(host + 2, host, strlen(host) + 1);
  expect(a, host, BAD); /* 254 bytes */

  /* The length counts: NUL bytes are not a terminator. */
  assert_int_equal(awf_acl_check(a, "github.com\0.evil.net", 20, T), BAD);
  assert_int_equal(awf_acl_check(a, "github.com.evil.net", 10, T), OK);
  assert_int_equal(awf_acl_check(NULL, "github.com", 10, T), BAD);
  assert_int_equal(awf_acl_check(a, NULL, 0, T), BAD);
  awf_acl_free(a);
}

struct bad_case {
  const char *entry;
  const char *why; /* a substring of the reason */
};

static void test_rejections(void **state) {
  (void)state;
  static const char lbl64[] =
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com";
  char long_name[300];
  for (int i = 0; i < 4; i++) {
    memset(long_name + i * 64, 'b', 63);
    long_name[i * 64 + 63] = '.';
  }
  strcpy(long_name + 256, "com"); /* 259 bytes */
  const struct bad_case cases[] = {
      {"*", "wildcard alone"},
      {"*.*", "wildcard alone"},
      {"**", "wildcard alone"},
      {"*.", "wildcard alone"},
      {".*", "wildcard alone"},
      {"*.*.*", "wildcard alone"},
      {"https://*.*", "wildcard alone"},
      {"..", "empty label"},
      {"a..b.com", "empty label"},
      {".github.com", "did you mean github.com (covers subdomains)?"},
      {".a..b.com", "empty label"},
      {".x.123", "numeric top-level label"},
      {"github.com..", "empty label"},
      {"git hub.com", "whitespace"},
      {"git\thub.com", "whitespace"},
      {"\"github.com\"", "quotes"},
      {"'github.com'", "quotes"},
      {"github.com;", "';'"},
      {"git#hub.com", "'#'"},
      {"git\\hub.com", "'\\'"},
      {"git\x01hub.com", "control character"},
      {"git\x7fhub.com", "control character"},
      {"caf\xc3\xa9.com", "non-ASCII"},
      {"github.com:443", "port suffix"},
      {"https://github.com:443/", "port suffix"},
      {"[::1]:443", "port suffix"},
      {"github.com:", "port suffix"},
      {"1::2::3", "IPv6"},
      {"[::1", "without ']'"},
      {"[1.2.3.4]", "IPv6"},
      {"[::1]x", "after ']'"},
      {"ftp://x.com", "unsupported scheme"},
      {"://x.com", "unsupported scheme"},
      {"https://x.com/path", "path"},
      {"x.com//", "path"},
      {"https://", "no host"},
      {"/", "no host"},
      {lbl64, "label longer than 63"},
      {long_name, "longer than 253"},
      {"a.*", "top-level"},
      {"example.*", "top-level"},
      {"a**b.com", "'**'"},
      {"1.2.3", "numeric top-level"},
      {"01.2.3.4", "numeric top-level"},
      {"0x7f.0.0.1", "numeric top-level"},
      {"256.1.1.1", "numeric top-level"},
      {"1.2.3.4.5", "numeric top-level"},
      {"a.0x1f", "numeric top-level"},
      {"a@b.com", "invalid character '@'"},
      {"a%b.com", "invalid character '%'"},
      {"a,b", NULL}, /* two entries, both fine: not a rejection */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char err[512];
    if (cases[i].why == NULL)
      continue;
    awf_acl *a = awf_acl_new();
    assert_non_null(a);
    memset(err, 0, sizeof err);
    int rc = awf_acl_add_list(a, AWF_ACL_ALLOW, cases[i].entry, err, sizeof err);
    if (rc != -EINVAL)
      fail_msg("'%s' accepted (rc %d)", cases[i].entry, rc);
    if (strstr(err, "invalid rule '") != err || strstr(err, cases[i].why) == NULL)
      fail_msg("'%s': message '%s' lacks '%s'", cases[i].entry, err, cases[i].why);
    assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 0);
    /* Block lists reject the same. */
    assert_int_equal(awf_acl_add_list(a, AWF_ACL_BLOCK, cases[i].entry, NULL, 0), -EINVAL);
    awf_acl_free(a);
  }
}

/* ".example.com" (other tools' "and subdomains") points at the bare name,
 * which already covers them; the same in block lists, files and with a
 * scheme, and only when the rest is a valid rule. */
static void test_leading_dot_suggests_the_bare_name(void **state) {
  (void)state;
  char err[512];
  awf_acl *a = awf_acl_new();
  assert_non_null(a);
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, "ok.com,.Example.com.", err, sizeof err),
                   -EINVAL);
  assert_string_equal(err,
                      "invalid rule '.Example.com.': a leading dot is not allowed: did you "
                      "mean Example.com (covers subdomains)?");
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_BLOCK, "https://.*.cdn.net", err, sizeof err),
                   -EINVAL);
  assert_non_null(strstr(err, "did you mean *.cdn.net (covers subdomains)?"));
  static const char file[] = "ok.org\n.npmjs.org # registry\n";
  assert_int_equal(awf_acl_add_text(a, AWF_ACL_ALLOW, file, sizeof file - 1, "r.txt", err,
                                    sizeof err),
                   -EINVAL);
  assert_non_null(strstr(err, "r.txt:2: invalid rule '.npmjs.org': "));
  assert_non_null(strstr(err, "did you mean npmjs.org"));
  /* Nothing suggested for what would still be wrong without the dot. */
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, ".bad_label!.com", err, sizeof err),
                   -EINVAL);
  assert_null(strstr(err, "did you mean"));
  /* A longest name still fits its suggestion. */
  char name[AWF_HOSTNAME_MAX + 1];
  memset(name, 'a', sizeof name);
  for (size_t i = 63; i < AWF_HOSTNAME_MAX - 4; i += 64)
    name[i] = '.';
  memcpy(name + AWF_HOSTNAME_MAX - 4, ".com", 4);
  name[0] = '.';
  name[AWF_HOSTNAME_MAX] = '\0';
  char big[1024];
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, name, big, sizeof big), -EINVAL);
  assert_non_null(strstr(big, name + 1));
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 0);
  assert_int_equal(awf_acl_count(a, AWF_ACL_BLOCK), 0);
  awf_acl_free(a);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The listing gives each rule once, normalised, per list. */
static void test_format_lists_normalised_rules(void **state) {
  (void)state;
  char err[256], buf[512];
  awf_acl *a = awf_acl_new();
  assert_non_null(a);
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW,
                                    "GitHub.com.,*.npmjs.org,https://api-*.x.com,http://[::1],"
                                    "1.2.3.4,*.cdn-*.y.net,github.com,https://github.com",
                                    err, sizeof err),
                   0);
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_BLOCK, "bad.github.com", err, sizeof err), 0);
  size_t need = awf_acl_format(a, AWF_ACL_ALLOW, buf, sizeof buf);
  assert_int_equal(need, strlen(buf));
  char *items[16];
  size_t n = 0;
  for (char *tok = strtok(buf, ","); tok && n < 16; tok = strtok(NULL, ","))
    items[n++] = tok;
  qsort(items, n, sizeof items[0], cmp_str);
  static const char *const want[] = {"*.cdn-*.y.net",     "*.npmjs.org",  "1.2.3.4",
                                     "github.com",        "http://[::1]", "https://api-*.x.com",
                                     "https://github.com"};
  assert_int_equal(n, sizeof want / sizeof want[0]);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(items[i], want[i]);
  assert_int_equal(awf_acl_format(a, AWF_ACL_BLOCK, buf, sizeof buf), strlen("bad.github.com"));
  assert_string_equal(buf, "bad.github.com");
  /* Truncated, terminated, and the length needed still told. */
  char small[8];
  assert_int_equal(awf_acl_format(a, AWF_ACL_ALLOW, small, sizeof small), need);
  assert_int_equal(strlen(small), sizeof small - 1);
  awf_acl *empty = awf_acl_new();
  assert_int_equal(awf_acl_format(empty, AWF_ACL_ALLOW, buf, sizeof buf), 0);
  assert_string_equal(buf, "");
  awf_acl_free(empty);
  awf_acl_free(a);
}

static void test_error_message_quotes_entry(void **state) {
  (void)state;
  char err[256];
  awf_acl *a = awf_acl_new();
  assert_non_null(a);
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, "ok.com, github.com:443 ,x.com", err,
                                    sizeof err),
                   -EINVAL);
  assert_non_null(strstr(err, "'github.com:443'"));
  /* Unprintable bytes are escaped, not copied into the message. */
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, "a\x1b[31m.com", err, sizeof err),
                   -EINVAL);
  assert_non_null(strstr(err, "'a\\x1b[31m.com'"));
  assert_null(strchr(err, '\x1b'));
  /* Long entries are cut. */
  char lng[400];
  memset(lng, 'x', sizeof lng - 1);
  lng[sizeof lng - 1] = '\0';
  lng[200] = ' ';
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, lng, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "...'"));
  assert_true(strlen(err) < 200);
  /* A small buffer is truncated and terminated. */
  memset(err, 'z', sizeof err);
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, "*", err, 8), -EINVAL);
  assert_int_equal(strlen(err), 7);
  /* Nothing of a failed call was added. */
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 0);
  expect(a, "ok.com", NO);
  awf_acl_free(a);
}

static void test_list_syntax_and_dedup(void **state) {
  (void)state;
  awf_acl *a = acl_with(" a.com , ,b.com,,\tc.com\t,", NULL);
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 3);
  expect(a, "a.com", OK);
  expect(a, "b.com", OK);
  expect(a, "c.com", OK);
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, "A.com,a.com.,a.com", NULL, 0), 0);
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 3);
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, "*.a.com,*.A.com,api-*.a.com,API-*.a.com",
                                    NULL, 0),
                   0);
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 5);
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, "https://a.com,https://a.com/", NULL, 0),
                   0);
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 6);
  assert_int_equal(awf_acl_count(a, AWF_ACL_BLOCK), 0);
  /* The same rule in the other list is another rule. */
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_BLOCK, "a.com,api-*.a.com", NULL, 0), 0);
  assert_int_equal(awf_acl_count(a, AWF_ACL_BLOCK), 2);
  expect(a, "b.com", OK);
  expect(a, "a.com", BLK);

  /* Bad arguments. */
  assert_int_equal(awf_acl_add_list(a, (enum awf_acl_list)7, "x.com", NULL, 0), -EINVAL);
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, NULL, NULL, 0), -EINVAL);
  assert_int_equal(awf_acl_add_list(NULL, AWF_ACL_ALLOW, "x.com", NULL, 0), -EINVAL);
  assert_int_equal(awf_acl_count(NULL, AWF_ACL_ALLOW), 0);
  assert_int_equal(awf_acl_count(a, (enum awf_acl_list)7), 0);
  awf_acl_free(a);
  awf_acl_free(NULL);
}

static void test_rules_file(void **state) {
  (void)state;
  char err[256];
  static const char text[] = "# allowed hosts\r\n"
                             "github.com\r\n"
                             "  *.npmjs.org , pypi.org # python\n"
                             "\n"
                             "# https://commented.out\n"
                             "https://tls.only.net,\n"
                             "last.org";
  awf_acl *a = awf_acl_new();
  assert_non_null(a);
  assert_int_equal(awf_acl_add_text(a, AWF_ACL_ALLOW, text, sizeof text - 1, "rules.txt", err,
                                    sizeof err),
                   0);
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 5);
  expect(a, "api.github.com", OK);
  expect(a, "registry.npmjs.org", OK);
  expect(a, "pypi.org", OK);
  expect(a, "python", NO);
  expect(a, "commented.out", NO);
  expect_p(a, "tls.only.net", T, OK);
  expect_p(a, "tls.only.net", H, NO);
  expect(a, "last.org", OK);

  /* Errors name file:line, and nothing of the file is added. */
  static const char bad[] = "ok1.com\n# comment\nok2.com, bad entry.com\nok3.com\n";
  assert_int_equal(awf_acl_add_text(a, AWF_ACL_BLOCK, bad, sizeof bad - 1, "block.txt", err,
                                    sizeof err),
                   -EINVAL);
  assert_non_null(strstr(err, "block.txt:3: invalid rule 'bad entry.com': whitespace"));
  assert_int_equal(awf_acl_count(a, AWF_ACL_BLOCK), 0);

  /* A NUL byte inside the text is an error, not an end. */
  static const char nul[] = "ok.com\nev\0il.com\n";
  assert_int_equal(awf_acl_add_text(a, AWF_ACL_ALLOW, nul, sizeof nul - 1, "nul.txt", err,
                                    sizeof err),
                   -EINVAL);
  assert_non_null(strstr(err, "nul.txt:2:"));
  assert_non_null(strstr(err, "ev\\x00il.com"));

  /* Only len bytes are read; no origin still names the line. */
  assert_int_equal(awf_acl_add_text(a, AWF_ACL_ALLOW, "x.org\n*", 6, NULL, err, sizeof err), 0);
  expect(a, "x.org", OK);
  assert_int_equal(awf_acl_add_text(a, AWF_ACL_ALLOW, "x.org\n*", 7, NULL, err, sizeof err),
                   -EINVAL);
  assert_non_null(strstr(err, ":2: invalid rule '*'"));
  /* '#' in a list (no comments there) is an error, in a file a comment. */
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_ALLOW, "y.org#c", NULL, 0), -EINVAL);
  assert_int_equal(awf_acl_add_text(a, AWF_ACL_ALLOW, "y.org#c", 7, "f", NULL, 0), 0);
  expect(a, "y.org", OK);
  expect(a, "y.orgc", NO);
  assert_int_equal(awf_acl_add_text(a, AWF_ACL_ALLOW, "", 0, "empty", NULL, 0), 0);
  awf_acl_free(a);
}

static void test_many_rules(void **state) {
  (void)state;
  enum { N = 10000 };
  char buf[128], err[256];
  awf_acl *a = awf_acl_new();
  assert_non_null(a);
  /* Four kinds of rule, interleaved, added one call at a time and also as a
   * file, so the table grows through many rehashes. */
  size_t cap = (size_t)N * 40, len = 0;
  char *file = malloc(cap);
  assert_non_null(file);
  for (unsigned i = 0; i < N; i++) {
    switch (i % 4) {
    case 0: snprintf(buf, sizeof buf, "d%u.t%u.com", i, i % 97); break;
    case 1: snprintf(buf, sizeof buf, "*.d%u.t%u.com", i, i % 97); break;
    case 2: snprintf(buf, sizeof buf, "api-*.d%u.t%u.com", i, i % 97); break;
    default: snprintf(buf, sizeof buf, "https://d%u.t%u.com", i, i % 97); break;
    }
    if (i % 2 == 0) {
      if (awf_acl_add_list(a, AWF_ACL_ALLOW, buf, err, sizeof err) != 0)
        fail_msg("%s: %s", buf, err);
    } else {
      len += (size_t)snprintf(file + len, cap - len, "%s\n", buf);
    }
  }
  assert_int_equal(awf_acl_add_text(a, AWF_ACL_ALLOW, file, len, "many", err, sizeof err), 0);
  free(file);
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), N);
  assert_int_equal(awf_acl_add_list(a, AWF_ACL_BLOCK, "x.d4.t4.com", err, sizeof err), 0);

  for (unsigned i = 0; i < N; i++) {
    char name[96], sub[96], api[96], other[96];
    unsigned t = i % 97;
    snprintf(name, sizeof name, "d%u.t%u.com", i, t);
    snprintf(sub, sizeof sub, "x.d%u.t%u.com", i, t);
    snprintf(api, sizeof api, "api-v2.d%u.t%u.com", i, t);
    snprintf(other, sizeof other, "d%u.t%u.com", i + N, t);
    switch (i % 4) {
    case 0:
      expect(a, name, OK);
      expect(a, sub, i == 4 ? BLK : OK);
      expect(a, api, OK);
      break;
    case 1:
      expect(a, name, NO);
      expect(a, sub, OK);
      expect(a, api, OK);
      break;
    case 2:
      expect(a, name, NO);
      expect(a, sub, NO);
      expect(a, api, OK);
      break;
    default:
      expect_p(a, name, T, OK);
      expect_p(a, name, H, NO);
      expect_p(a, sub, T, OK);
      break;
    }
    expect(a, other, NO);
  }
  expect(a, "t1.com", NO);
  expect(a, "com", NO);
  awf_acl_free(a);
}

static void test_verdict_names(void **state) {
  (void)state;
  assert_string_equal(awf_acl_verdict_name(AWF_ACL_ALLOWED), "allowed");
  assert_string_equal(awf_acl_verdict_name(AWF_ACL_NOT_ALLOWED), "not_allowed");
  assert_string_equal(awf_acl_verdict_name(AWF_ACL_BLOCKED), "blocked");
  assert_string_equal(awf_acl_verdict_name(AWF_ACL_IP_LITERAL), "ip_literal");
  assert_string_equal(awf_acl_verdict_name(AWF_ACL_INVALID_NAME), "invalid_name");
  assert_string_equal(awf_acl_verdict_name((enum awf_acl_verdict)99), "unknown");
}

/* awf_acl_add_entry with exact: the name alone (a ruleset's subdomains:
 * false), beside the same name's other rules; wildcards refused. */
static void test_exact_entry(void **state) {
  (void)state;
  char why[256];
  awf_acl *a = acl_with(NULL, NULL);
  assert_int_equal(awf_acl_add_entry(a, AWF_ACL_ALLOW, " api.example.com ", 17, true, why,
                                     sizeof why),
                   0);
  expect(a, "api.example.com", OK);
  expect(a, "API.example.com.", OK);
  expect(a, "x.api.example.com", NO);
  expect(a, "example.com", NO);
  assert_int_equal(awf_acl_add_entry(a, AWF_ACL_ALLOW, "https://tls.example.com", 23, true, why,
                                     sizeof why),
                   0);
  expect_p(a, "tls.example.com", T, OK);
  expect_p(a, "tls.example.com", H, NO);
  assert_int_equal(awf_acl_add_entry(a, AWF_ACL_BLOCK, "bad.api.example.com", 19, false, why,
                                     sizeof why),
                   0);
  assert_int_equal(awf_acl_add_entry(a, AWF_ACL_ALLOW, "1.2.3.4", 7, true, why, sizeof why), 0);
  expect(a, "1.2.3.4", OK);
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 3);
  /* An exact block leaves the subdomains alone. */
  assert_int_equal(awf_acl_add_entry(a, AWF_ACL_ALLOW, "tree.example.com", 16, false, why,
                                     sizeof why),
                   0);
  assert_int_equal(awf_acl_add_entry(a, AWF_ACL_BLOCK, "tree.example.com", 16, true, why,
                                     sizeof why),
                   0);
  expect(a, "tree.example.com", BLK);
  expect(a, "sub.tree.example.com", OK);
  char text[512];
  awf_acl_format(a, AWF_ACL_ALLOW, text, sizeof text);
  assert_non_null(strstr(text, "api.example.com (no subdomains)"));
  assert_non_null(strstr(text, "1.2.3.4"));
  assert_null(strstr(text, "1.2.3.4 ("));
  assert_int_equal(awf_acl_add_entry(a, AWF_ACL_ALLOW, "*.example.com", 13, true, why,
                                     sizeof why),
                   -EINVAL);
  assert_non_null(strstr(why, "wildcard"));
  assert_int_equal(awf_acl_add_entry(a, AWF_ACL_ALLOW, "api-*.example.com", 17, true, why,
                                     sizeof why),
                   -EINVAL);
  assert_int_equal(awf_acl_add_entry(a, AWF_ACL_ALLOW, "a..b", 4, false, why, sizeof why),
                   -EINVAL);
  assert_non_null(strstr(why, "empty label"));
  assert_int_equal(awf_acl_add_entry(a, AWF_ACL_ALLOW, "  ", 2, false, why, sizeof why),
                   -EINVAL);
  assert_int_equal(awf_acl_count(a, AWF_ACL_ALLOW), 4);
  awf_acl_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_domain_and_subdomains),
      cmocka_unit_test(test_subdomains_only),
      cmocka_unit_test(test_in_label_wildcards),
      cmocka_unit_test(test_glob_against_reference),
      cmocka_unit_test(test_protocols),
      cmocka_unit_test(test_block_wins),
      cmocka_unit_test(test_empty_allowlist_denies),
      cmocka_unit_test(test_ip_rules),
      cmocka_unit_test(test_case_dot_and_invalid_names),
      cmocka_unit_test(test_rejections),
      cmocka_unit_test(test_leading_dot_suggests_the_bare_name),
      cmocka_unit_test(test_format_lists_normalised_rules),
      cmocka_unit_test(test_error_message_quotes_entry),
      cmocka_unit_test(test_list_syntax_and_dedup),
      cmocka_unit_test(test_rules_file),
      cmocka_unit_test(test_many_rules),
      cmocka_unit_test(test_verdict_names),
      cmocka_unit_test(test_exact_entry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
