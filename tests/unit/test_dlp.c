/* Unit tests for proxy/policy/dlp.c: every pattern with true and false
 * positives, the views (percent-decoded, DNS names), literals, redaction,
 * and the streaming scanner across chunk boundaries. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlp.h"

#define B62_36 "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8" /* 36 letters and digits */

static awf_dlp *D;

static int setup(void **state) {
  (void)state;
  D = awf_dlp_new();
  return D ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  awf_dlp_free(D);
  return 0;
}

static const char *scan(enum awf_dlp_view v, const char *s) {
  return awf_dlp_scan(D, v, s, strlen(s));
}

/* s (raw) is found as kind, and in a sentence around it. */
static void found(const char *kind, const char *s) {
  char buf[8192];
  const char *got = scan(AWF_DLP_RAW, s);
  if (!got || strcmp(got, kind) != 0)
    fail_msg("%s: expected %s, got %s", s, kind, got ? got : "nothing");
  snprintf(buf, sizeof(buf), "Authorization: Bearer %s\r\n", s);
  assert_string_equal(scan(AWF_DLP_RAW, buf), kind);
  snprintf(buf, sizeof(buf), "{\"token\":\"%s\"}", s);
  assert_string_equal(scan(AWF_DLP_RAW, buf), kind);
}

static void not_found(const char *s) {
  const char *got = scan(AWF_DLP_RAW, s);
  if (got)
    fail_msg("%s: expected nothing, got %s", s, got);
}

static void test_github(void **state) {
  (void)state;
  found("github_token", "ghp_" B62_36);
  found("github_token", "gho_" B62_36);
  found("github_token", "ghu_" B62_36);
  found("github_token", "ghs_" B62_36);
  found("github_token", "ghr_" B62_36);
  found("github_token", "ghp_" B62_36 "xyz"); /* longer: its first 36 */
  not_found("ghp_"
            "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r"); /* 35 */
  not_found("ghx_" B62_36);                         /* no such prefix */
  not_found("ghp-" B62_36);
  not_found("xghp_" B62_36);                             /* inside a word */
  not_found("ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7-8"); /* a '-' in the tail */
  not_found("GHP_" B62_36);                              /* raw: case matters */
  found("github_pat", "github_pat_11ABCDEFG0123456789abc_"
                      "0123456789abcdefghijABCDEFGHIJ0123456789abcdefghijABCDEFGHI");
  not_found("github_pat_11ABCDEFG0123456789abc_0123456789"); /* short */
}

static void test_openai(void **state) {
  (void)state;
  found("openai_key", "sk-proj-abcDEF123_-abcDEF123_-abcDEF123_-abcDEF123_");
  found("openai_key", "sk-svcacct-abcDEF123_-abcDEF123_-abcDEF123_-abcDEF123_");
  found("openai_key", "sk-admin-abcDEF123_-abcDEF123_-abcDEF123_-abcDEF123_");
  found("openai_key", "sk-abcdefghijklmnopqrstT3BlbkFJabcdefghijklmnopqrst");
  not_found("sk-proj-abc");
  not_found("sk-abcdefghijklmnopqrstT3BlbkFJabcdefghijklmnopqrs");    /* 47 */
  not_found("sk-abcdefghijklmnopqrstT3BlbkFJabcdefghijklmnopqrstu");  /* 49 */
  not_found("task-abcdefghijklmnopqrstT3BlbkFJabcdefghijklmnopqrst"); /* inside a word */
  not_found("sk_live_abcdefghijklmnopqrstT3BlbkFJabcdefghijklmnopqrst");
}

static void test_anthropic(void **state) {
  (void)state;
  found("anthropic_key", "sk-ant-api03-abcdefghijABCDEFGHIJ0123456789_-xyzXYZ");
  not_found("sk-ant-api03-short");
  not_found("desk-ant-api03-abcdefghijABCDEFGHIJ0123456789_-xyzXYZ");
}

static void test_aws(void **state) {
  (void)state;
  found("aws_access_key_id", "AKIAIOSFODNN7EXAMPLE");
  found("aws_access_key_id", "ASIAIOSFODNN7EXAMPLE");
  not_found("AKIAIOSFODNN7EXAMPL");   /* 15 */
  not_found("AKIAIOSFODNN7EXAMPLEX"); /* 17: not a key id */
  not_found("AKIAiosfodnn7example");  /* lower case */
  not_found("XAKIAIOSFODNN7EXAMPLE"); /* inside a word */
  not_found("AKIAIOSFODNN7EXAMPLEabc");
  not_found("the word AKIA alone, or AKIADNE the name");
  not_found("ABIAIOSFODNN7EXAMPLE");
}

static void test_google(void **state) {
  (void)state;
  found("google_api_key", "AIzaSyA-abcdefghijklmnopqrstuvwxyz12345");
  not_found("AIzaSyA-abcdefghijklmnopqrstuvwxyz1234"); /* 34 */
  not_found("xAIzaSyA-abcdefghijklmnopqrstuvwxyz12345");
  not_found("aiZaSyA-abcdefghijklmnopqrstuvwxyz12345");
}

static void test_slack(void **state) {
  (void)state;
  found("slack_token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx");
  found("slack_token", "xoxp-123456789012-abcdef");
  found("slack_token", "xoxa-2-1234567890");
  found("slack_token", "xoxs-1234567890");
  found("slack_token", "xoxr-1234567890");
  not_found("xoxe-1234567890");
  not_found("xoxb-abcdefghijkl"); /* no digit first */
  not_found("xoxb-1234");
  not_found("fooxoxb-1234567890");
}

static void test_pem(void **state) {
  (void)state;
  found("private_key", "-----BEGIN PRIVATE KEY-----");
  found("private_key", "-----BEGIN RSA PRIVATE KEY-----");
  found("private_key", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE");
  found("private_key", "-----BEGIN OPENSSH PRIVATE KEY-----");
  found("private_key", "-----BEGIN ENCRYPTED PRIVATE KEY-----");
  found("private_key", "-----BEGIN PGP PRIVATE KEY BLOCK-----");
  not_found("-----BEGIN CERTIFICATE-----");
  not_found("-----BEGIN PUBLIC KEY-----");
  not_found("-----BEGIN RSA PUBLIC KEY-----");
  not_found("-----BEGIN NOTPRIVATE KEY-----");
  not_found("-----BEGIN PRIVATE KEY");
  not_found("-----BEGIN private key-----");
}

#define JWT_H "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
#define JWT_P "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
#define JWT_S "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"

static void test_jwt(void **state) {
  (void)state;
  found("jwt", JWT_H "." JWT_P "." JWT_S);
  found("jwt", "eyJhbGciOiJub25lIn0." JWT_P "."); /* alg none: no signature */
  not_found(JWT_H "." JWT_P);                     /* two segments */
  not_found("eyJhbGc." JWT_P "." JWT_S);          /* header too short */
  not_found("AAAAeyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." JWT_P "." JWT_S); /* inside a blob */
  not_found("ZXlKaGJHY2lPaUpJVXpJMU5pSjk=eyJhbGciOiJIUzI1NiJ9+/eyJ==");   /* base64 blob */
  not_found("eyJ is a common prefix of base64 JSON: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
  not_found("ayJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." JWT_P "." JWT_S);
}

static void test_empty_and_null(void **state) {
  (void)state;
  assert_null(awf_dlp_scan(D, AWF_DLP_TEXT, "", 0));
  assert_null(awf_dlp_scan(NULL, AWF_DLP_TEXT, "ghp_" B62_36, 40));
  not_found("GET /index.html HTTP/1.1 Host: example.com");
}

/* ---- views ---------------------------------------------------------------- */

static void test_percent_decoded(void **state) {
  (void)state;
  const char *url = "/search?q=%67hp_" B62_36 "&x=1";
  assert_null(scan(AWF_DLP_RAW, url));
  assert_string_equal(scan(AWF_DLP_TEXT, url), "github_token");
  /* Every byte escaped. */
  char enc[256] = "/p?t=";
  const char *tok = "AKIAIOSFODNN7EXAMPLE";
  for (const char *p = tok; *p; p++)
    snprintf(enc + strlen(enc), sizeof(enc) - strlen(enc), "%%%02X", (unsigned char)*p);
  assert_null(scan(AWF_DLP_RAW, enc));
  assert_string_equal(scan(AWF_DLP_TEXT, enc), "aws_access_key_id");
  /* '+' is a space in a query: a form-encoded PEM header. */
  assert_string_equal(scan(AWF_DLP_TEXT, "k=-----BEGIN+RSA+PRIVATE+KEY-----"), "private_key");
  /* A stray '%' is left alone. */
  assert_null(scan(AWF_DLP_TEXT, "/100%?a=%zz&b=%4"));
}

static void test_names(void **state) {
  (void)state;
  /* A token in one label, as DNS lower-cases it. */
  assert_string_equal(scan(AWF_DLP_NAME, "akiaiosfodnn7example.evil.example"),
                      "aws_access_key_id");
  /* Split across labels. */
  assert_string_equal(scan(AWF_DLP_NAME,
                           "ghp_a1b2c3d4e5f6g7h8.i9j0k1l2m3n4o5p6q7r8.evil.example"),
                      "github_token");
  assert_string_equal(scan(AWF_DLP_NAME, "x.akiaiosfo.dnn7example.evil.example"),
                      "aws_access_key_id");
  /* The raw view of a name is not split: no match there. */
  assert_null(scan(AWF_DLP_RAW, "ghp_a1b2c3d4e5f6g7h8.i9j0k1l2m3n4o5p6q7r8.evil.example"));
  /* Ordinary names. */
  assert_null(scan(AWF_DLP_NAME, "api.github.com"));
  assert_null(scan(AWF_DLP_NAME, "registry.npmjs.org"));
  assert_null(scan(AWF_DLP_NAME, "s3.ap-southeast-1.amazonaws.com"));
  assert_null(scan(AWF_DLP_NAME, "akia.example.com"));
}

/* ---- literals ------------------------------------------------------------- */

static void test_literals(void **state) {
  (void)state;
  awf_dlp *d = awf_dlp_new();
  assert_non_null(d);
  const char *secret = "s3cr3t-v4lue-0f-th3-run";
  assert_int_equal(awf_dlp_add_literal(d, "secret:API_KEY", secret, strlen(secret)), 0);
  assert_int_equal(awf_dlp_add_literal(d, "secret:X", "short", 5), -EINVAL);
  assert_int_equal(awf_dlp_add_literal(d, "", secret, strlen(secret)), -EINVAL);
  assert_int_equal(awf_dlp_add_literal(d, "bad kind", secret, strlen(secret)), -EINVAL);
  char big[AWF_DLP_KIND_MAX + 2];
  memset(big, 'k', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  assert_int_equal(awf_dlp_add_literal(d, big, secret, strlen(secret)), -EINVAL);

  const char *hdr = "x-api-key: s3cr3t-v4lue-0f-th3-run";
  assert_string_equal(awf_dlp_scan(d, AWF_DLP_RAW, hdr, strlen(hdr)), "secret:API_KEY");
  const char *part = "x-api-key: s3cr3t-v4lue-0f-th3-ru";
  assert_null(awf_dlp_scan(d, AWF_DLP_RAW, part, strlen(part)));
  const char *enc = "/q?k=s3cr3t%2Dv4lue%2D0f%2Dth3%2Drun";
  assert_string_equal(awf_dlp_scan(d, AWF_DLP_TEXT, enc, strlen(enc)), "secret:API_KEY");
  /* A DNS name, lower-cased and split. */
  awf_dlp_add_literal(d, "secret:MIXED", "MiXeDCaseValue99", 16);
  const char *name = "mixedcase.value99.evil.example";
  assert_string_equal(awf_dlp_scan(d, AWF_DLP_NAME, name, strlen(name)), "secret:MIXED");
  /* Self-overlapping value (KMP's failure links), any bytes. */
  const char lit[] = "aaaaaaab\0\xff";
  assert_int_equal(awf_dlp_add_literal(d, "secret:BIN", lit, sizeof(lit) - 1), 0);
  const char text[] = "aaaaaaaaaaaaaaaaaab\0\xff";
  assert_string_equal(awf_dlp_scan(d, AWF_DLP_RAW, text, sizeof(text) - 1), "secret:BIN");
  assert_null(awf_dlp_scan(d, AWF_DLP_RAW, text, sizeof(text) - 2));
  /* The built-in patterns still apply. */
  assert_string_equal(awf_dlp_scan(d, AWF_DLP_RAW, "AKIAIOSFODNN7EXAMPLE", 20),
                      "aws_access_key_id");
  /* A long value is matched by its first AWF_DLP_LITERAL_MAX bytes. */
  char *lng = malloc(AWF_DLP_LITERAL_MAX + 100);
  for (size_t i = 0; i < AWF_DLP_LITERAL_MAX + 100; i++)
    lng[i] = (char)('!' + (i * 7) % 90);
  assert_int_equal(awf_dlp_add_literal(d, "secret:LONG", lng, AWF_DLP_LITERAL_MAX + 100), 0);
  assert_string_equal(awf_dlp_scan(d, AWF_DLP_RAW, lng, AWF_DLP_LITERAL_MAX), "secret:LONG");
  assert_null(awf_dlp_scan(d, AWF_DLP_RAW, lng, AWF_DLP_LITERAL_MAX - 1));
  free(lng);
  awf_dlp_free(d);
}

/* ---- redaction ------------------------------------------------------------- */

static void test_redact(void **state) {
  (void)state;
  char url[] = "http://example.com/x?a=1&t=ghp_" B62_36 "&b=2";
  assert_int_equal(awf_dlp_redact(D, AWF_DLP_TEXT, url, strlen(url)), 1);
  assert_null(strstr(url, "ghp_"));
  assert_non_null(strstr(url, "http://example.com/x?a=1&t=****"));
  assert_non_null(strstr(url, "****&b=2"));
  /* Found only decoded: the escaped bytes are masked. */
  char enc[] = "/x?t=%67hp_" B62_36 "&b=2";
  assert_true(awf_dlp_redact(D, AWF_DLP_TEXT, enc, strlen(enc)) >= 1);
  assert_string_equal(enc, "/x?t=******************************************&b=2");
  /* A name split across labels. */
  char name[] = "ghp_a1b2c3d4e5f6g7h8.i9j0k1l2m3n4o5p6q7r8.evil.example";
  assert_int_equal(awf_dlp_redact(D, AWF_DLP_NAME, name, strlen(name)), 1);
  assert_string_equal(name, "*****************************************.evil.example");
  char clean[] = "/nothing/here";
  assert_int_equal(awf_dlp_redact(D, AWF_DLP_TEXT, clean, strlen(clean)), 0);
  assert_string_equal(clean, "/nothing/here");
}

/* ---- streams ---------------------------------------------------------------- */

/* body fed in pieces of `step` bytes; returns the kind found. */
static const char *stream(const awf_dlp *d, const char *body, size_t n, size_t step,
                          size_t limit) {
  awf_dlp_stream *st = awf_dlp_stream_new(d, limit);
  assert_non_null(st);
  const char *kind = NULL;
  for (size_t i = 0; i < n && !kind; i += step)
    kind = awf_dlp_stream_feed(st, body + i, n - i < step ? n - i : step);
  if (!kind)
    kind = awf_dlp_stream_finish(st);
  awf_dlp_stream_free(st);
  return kind;
}

static void test_stream_boundaries(void **state) {
  (void)state;
  static const struct {
    const char *tok, *kind;
  } toks[] = {
      {"ghp_" B62_36, "github_token"},    {"AKIAIOSFODNN7EXAMPLE", "aws_access_key_id"},
      {JWT_H "." JWT_P "." JWT_S, "jwt"}, {"-----BEGIN RSA PRIVATE KEY-----", "private_key"},
      {"%67hp_" B62_36, "github_token"},
  };
  size_t big = 3 * 8192;
  char *body = malloc(big + 256);
  for (size_t t = 0; t < sizeof(toks) / sizeof(toks[0]); t++) {
    size_t tl = strlen(toks[t].tok);
    /* At several offsets (across every chunk edge), in chunks of several sizes. */
    size_t offs[] = {0, 1, 4095, 4096, 4100, 8190, big - tl};
    size_t steps[] = {1, 2, 3, 7, 64, 4096, 5000, big + 256};
    for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
      memset(body, ' ', big);
      memcpy(body + offs[o], toks[t].tok, tl);
      for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        const char *got = stream(D, body, big, steps[s], AWF_DLP_BODY_MAX);
        if (!got || strcmp(got, toks[t].kind) != 0)
          fail_msg("%s at %zu in steps of %zu: got %s", toks[t].kind, offs[o], steps[s],
                   got ? got : "nothing");
      }
    }
  }
  /* No false positive from a trailing boundary a chunk's end hides: an AWS
   * id with one more upper-case byte in the next chunk. */
  const char *aws21 = "x AKIAIOSFODNN7EXAMPLEX y";
  for (size_t s = 1; s < strlen(aws21); s++)
    assert_null(stream(D, aws21, strlen(aws21), s, AWF_DLP_BODY_MAX));
  /* Nor a leading one: a prefix inside a word cut by a chunk's start. */
  const char *inword = "xAKIAIOSFODNN7EXAMPLE";
  for (size_t s = 1; s < strlen(inword); s++)
    assert_null(stream(D, inword, strlen(inword), s, AWF_DLP_BODY_MAX));
  /* At the very end the boundary is the end. */
  assert_string_equal(stream(D, "k=AKIAIOSFODNN7EXAMPLE", 22, 5, AWF_DLP_BODY_MAX),
                      "aws_access_key_id");
  free(body);
}

static void test_stream_limit_and_literal(void **state) {
  (void)state;
  char body[600];
  memset(body, '.', sizeof(body));
  memcpy(body + 500, "ghp_" B62_36, 40);
  assert_null(stream(D, body, sizeof(body), 100, 400)); /* past the bound */
  assert_string_equal(stream(D, body, sizeof(body), 100, 600), "github_token");

  awf_dlp *d = awf_dlp_new();
  const char *secret = "0123456789-the-real-value";
  awf_dlp_add_literal(d, "secret:TOKEN", secret, strlen(secret));
  memset(body, 'z', sizeof(body));
  memcpy(body + 290, secret, strlen(secret));
  for (size_t s = 1; s < 40; s++)
    assert_string_equal(stream(d, body, sizeof(body), s, 1000), "secret:TOKEN");
  awf_dlp_free(d);
}

/* A pathological input stays linear: a megabyte of prefixes. */
static void test_linear(void **state) {
  (void)state;
  size_t n = 1 << 20;
  char *s = malloc(n);
  for (size_t i = 0; i < n; i++)
    s[i] = "eyJ.ghp_AKIA-sk-xoxb--"[i % 22];
  assert_null(awf_dlp_scan(D, AWF_DLP_TEXT, s, n));
  memset(s, 'e', n);
  for (size_t i = 0; i + 5 <= n; i += 5)
    memcpy(s + i, i % 2 ? "eyJa." : ".eyJb", 5);
  (void)awf_dlp_scan(D, AWF_DLP_NAME, s, n);
  free(s);
}

static void test_kinds(void **state) {
  (void)state;
  size_t i = 0;
  for (; awf_dlp_builtin_kind(i); i++)
    for (size_t j = 0; j < i; j++)
      assert_string_not_equal(awf_dlp_builtin_kind(i), awf_dlp_builtin_kind(j));
  assert_int_equal(i, 9);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_github),
      cmocka_unit_test(test_openai),
      cmocka_unit_test(test_anthropic),
      cmocka_unit_test(test_aws),
      cmocka_unit_test(test_google),
      cmocka_unit_test(test_slack),
      cmocka_unit_test(test_pem),
      cmocka_unit_test(test_jwt),
      cmocka_unit_test(test_empty_and_null),
      cmocka_unit_test(test_percent_decoded),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_literals),
      cmocka_unit_test(test_redact),
      cmocka_unit_test(test_stream_boundaries),
      cmocka_unit_test(test_stream_limit_and_literal),
      cmocka_unit_test(test_linear),
      cmocka_unit_test(test_kinds),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
