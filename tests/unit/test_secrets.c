/* test_secrets.c: the secrets store (secrets.h): host rules, values,
 * placeholders, head rewriting, response scrubbing, streaming bodies. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "secrets.h"

#define KEY "sk-proj-Abc123Def456Ghi789" /* 26 bytes, letters digits and '-' */
#define TOKEN "ghp_0123456789abcdefABCDEF0123456789abcd"

/* A deterministic "random" source: a counter hashed (splitmix64). */
static int fake_random(void *buf, size_t len, void *arg) {
  uint64_t *state = arg;
  unsigned char *b = buf;
  for (size_t i = 0; i < len; i++) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    b[i] = (unsigned char)(z ^ (z >> 31));
  }
  return 0;
}

static int failing_random(void *buf, size_t len, void *arg) {
  (void)buf, (void)len, (void)arg;
  return -EIO;
}

static awf_secrets *make(uint64_t seed) {
  char err[256];
  awf_secrets *s = awf_secrets_new();
  assert_non_null(s);
  assert_int_equal(awf_secrets_add(s, "OPENAI_API_KEY=API.openai.com", err, sizeof(err)), 0);
  assert_int_equal(awf_secrets_add(s, "GH_TOKEN=api.github.com, *.github.com", err,
                                   sizeof(err)),
                   0);
  assert_int_equal(awf_secrets_set_value(s, 0, KEY, strlen(KEY), err, sizeof(err)), 0);
  assert_int_equal(awf_secrets_set_value(s, 1, TOKEN, strlen(TOKEN), err, sizeof(err)), 0);
  assert_int_equal(awf_secrets_seal(s, fake_random, &seed, err, sizeof(err)), 0);
  return s;
}

static const char *ph_of(const awf_secrets *s, size_t i) {
  size_t len;
  return awf_secrets_placeholder(s, i, &len);
}

static void test_specs(void **state) {
  (void)state;
  char err[256];
  awf_secrets *s = awf_secrets_new();
  assert_int_equal(awf_secrets_add(s, "noequals", err, sizeof(err)), -EINVAL);
  assert_int_equal(awf_secrets_add(s, "1BAD=x.com", err, sizeof(err)), -EINVAL);
  assert_int_equal(awf_secrets_add(s, "OK=", err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "no host"));
  assert_int_equal(awf_secrets_add(s, "OK=bad host", err, sizeof(err)), -EINVAL);
  assert_int_equal(awf_secrets_add(s, "OK=a.*.com", err, sizeof(err)), -EINVAL);
  assert_int_equal(awf_secrets_count(s), 1); /* OK was made before its hosts failed */
  assert_int_equal(awf_secrets_add(s, "K2=a.example.com,a.example.com", err, sizeof(err)), 0);
  const char *hosts[4];
  assert_int_equal(awf_secrets_hosts(s, 1, hosts, 4), 1);
  assert_int_equal(awf_secrets_set_in_body(s, "NOPE", err, sizeof(err)), -EINVAL);
  assert_int_equal(awf_secrets_set_in_body(s, "K2", err, sizeof(err)), 0);
  assert_true(awf_secrets_in_body(s, 1));
  assert_string_equal(awf_secrets_header(s, 1), "Authorization");
  assert_int_equal(awf_secrets_set_header(s, "K2", "x-api-key", err, sizeof(err)), 0);
  assert_string_equal(awf_secrets_header(s, 1), "x-api-key");
  char name[64];
  const char *path;
  assert_int_equal(awf_secrets_split_file_spec("K2=/run/key", name, sizeof(name), &path, err,
                                               sizeof(err)),
                   0);
  assert_string_equal(name, "K2");
  assert_string_equal(path, "/run/key");
  assert_int_equal(awf_secrets_split_file_spec("K2=", name, sizeof(name), &path, err,
                                               sizeof(err)),
                   -EINVAL);
  awf_secrets_free(s);
}

static void test_values(void **state) {
  (void)state;
  char err[256];
  awf_secrets *s = awf_secrets_new();
  assert_int_equal(awf_secrets_add(s, "K=x.com", err, sizeof(err)), 0);
  assert_int_equal(awf_secrets_set_value(s, 0, "short12345a", 11, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "11 bytes"));
  assert_null(strstr(err, "short12345a")); /* never the value */
  assert_int_equal(awf_secrets_set_value(s, 0, "with space 12345", 16, err, sizeof(err)),
                   -EINVAL);
  assert_int_equal(awf_secrets_set_value(s, 0, "line\nbreak123456", 16, err, sizeof(err)),
                   -EINVAL);
  uint64_t seed = 1;
  assert_int_equal(awf_secrets_seal(s, fake_random, &seed, err, sizeof(err)), -EINVAL);
  assert_int_equal(awf_secrets_set_value(s, 0, "exactly12chr", 12, err, sizeof(err)), 0);
  assert_int_equal(awf_secrets_seal(s, failing_random, NULL, err, sizeof(err)), -EIO);
  assert_int_equal(awf_secrets_seal(s, fake_random, &seed, err, sizeof(err)), 0);
  awf_secrets_free(s);
}

static void test_placeholders(void **state) {
  (void)state;
  awf_secrets *a = make(1), *b = make(2);
  for (size_t i = 0; i < 2; i++) {
    size_t vlen, plen;
    const char *v = awf_secrets_value(a, i, &vlen);
    const char *p = awf_secrets_placeholder(a, i, &plen);
    assert_int_equal(vlen, plen);                 /* same length */
    assert_int_equal(strlen(p), plen);            /* NUL-terminated */
    assert_memory_equal(p, AWF_SECRET_MARKER, 5); /* the marker */
    assert_memory_not_equal(p, v, vlen);          /* not the value */
    assert_string_not_equal(p, ph_of(b, i));      /* distinct per run */
    for (size_t k = 5; k < plen; k++)             /* the value's alphabet: no '+', '/'... */
      assert_non_null(strchr("0123456789abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_",
                             p[k]));
  }
  assert_string_not_equal(ph_of(a, 0), ph_of(a, 1)); /* distinct per secret */
  /* A hex value gets a hex placeholder after the marker. */
  char err[256];
  awf_secrets *h = awf_secrets_new();
  assert_int_equal(awf_secrets_add(h, "H=x.com", err, sizeof(err)), 0);
  assert_int_equal(awf_secrets_set_value(h, 0, "0123456789abcdef0123", 20, err, sizeof(err)),
                   0);
  uint64_t seed = 3;
  assert_int_equal(awf_secrets_seal(h, fake_random, &seed, err, sizeof(err)), 0);
  const char *p = ph_of(h, 0);
  assert_int_equal(strspn(p + 5, "0123456789abcdef"), 15);
  awf_secrets_free(h);
  awf_secrets_free(a);
  awf_secrets_free(b);
}

static void test_hosts(void **state) {
  (void)state;
  awf_secrets *s = make(1);
  assert_true(awf_secrets_bound(s, 0, "api.openai.com", 14));
  assert_false(awf_secrets_bound(s, 0, "openai.com", 10));
  assert_false(awf_secrets_bound(s, 0, "xapi.openai.com", 15));
  assert_false(awf_secrets_bound(s, 0, "api.openai.com.evil", 19));
  assert_true(awf_secrets_bound(s, 1, "uploads.github.com", 18));
  assert_true(awf_secrets_bound(s, 1, "api.github.com", 14));
  assert_false(awf_secrets_bound(s, 1, "github.com", 10)); /* "*." is subdomains only */
  assert_false(awf_secrets_bound(s, 1, "evilgithub.com", 14));
  assert_true(awf_secrets_any_host(s, "a.b.github.com", 14));
  assert_false(awf_secrets_any_host(s, "example.com", 11));
  assert_int_equal(awf_secrets_mask_for(s, "api.openai.com", 14), 1);
  awf_secrets_free(s);
}

/* A head with both placeholders in the query and in headers. */
static char *head_with(const awf_secrets *s, size_t *len) {
  char *h = NULL;
  int n = asprintf(&h,
                   "GET /v1/%s?key=%s&t=%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer "
                   "%s\r\nX-Other: %s\r\n%s: x\r\n\r\n",
                   ph_of(s, 0), ph_of(s, 0), ph_of(s, 1), ph_of(s, 0), ph_of(s, 0), ph_of(s, 1),
                   ph_of(s, 0));
  assert_true(n > 0);
  *len = (size_t)n;
  return h;
}

static void test_rewrite_head(void **state) {
  (void)state;
  awf_secrets *s = make(1);
  size_t len;
  char *h = head_with(s, &len);
  struct awf_secret_use u = {0};
  awf_secrets_rewrite_head(s, "api.openai.com", 14, h, len, &u);
  assert_int_equal(u.injected, 1);
  assert_int_equal(u.misdirected, 2); /* GH_TOKEN's placeholder, for another host */
  assert_int_equal(strlen(h), len);
  char *want = NULL;
  assert_true(asprintf(&want,
                       "GET /v1/%s?key=%s&t=%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer "
                       "%s\r\nX-Other: %s\r\n%s: x\r\n\r\n",
                       ph_of(s, 0), KEY, ph_of(s, 1), ph_of(s, 0), KEY, ph_of(s, 1),
                       ph_of(s, 0)) > 0);
  assert_string_equal(h, want); /* path, Host and header names untouched */
  free(want);
  free(h);

  /* Another host: nothing replaced, both reported. */
  h = head_with(s, &len);
  char *orig = strdup(h);
  memset(&u, 0, sizeof(u));
  awf_secrets_rewrite_head(s, "example.com", 11, h, len, &u);
  assert_string_equal(h, orig);
  assert_int_equal(u.injected, 0);
  assert_int_equal(u.misdirected, 3);
  /* Malformed heads do not crash and edit nothing beyond them. */
  awf_secrets_rewrite_head(s, "api.openai.com", 14, h, 10, &u);
  awf_secrets_rewrite_head(s, "api.openai.com", 14, h, 0, &u);
  awf_secrets_rewrite_head(NULL, "api.openai.com", 14, h, len, &u);
  free(orig);
  free(h);
  awf_secrets_free(s);
}

static void test_scrub(void **state) {
  (void)state;
  awf_secrets *s = make(1);
  char buf[256];
  snprintf(buf, sizeof(buf), "echo: %s and %s and %s", KEY, TOKEN, KEY);
  size_t len = strlen(buf);
  assert_int_equal(awf_secrets_scrub(s, buf, len), 3);
  assert_int_equal(strlen(buf), len);
  assert_null(strstr(buf, KEY));
  assert_null(strstr(buf, TOKEN));
  assert_non_null(strstr(buf, ph_of(s, 0)));
  assert_non_null(strstr(buf, ph_of(s, 1)));
  awf_secrets_free(s);
}

/* Feed text in pieces of `step` bytes; return what came out. */
static char *stream_all(struct awf_secret_stream *st, const char *text, size_t step) {
  size_t len = strlen(text);
  char *all = calloc(1, len + 1);
  char *out = malloc(AWF_SECRET_STREAM_OUT(len));
  size_t n = 0;
  for (size_t off = 0; off < len; off += step) {
    size_t k = len - off < step ? len - off : step;
    size_t w = awf_secret_stream_feed(st, text + off, k, out);
    memcpy(all + n, out, w);
    n += w;
  }
  size_t w = awf_secret_stream_finish(st, out);
  memcpy(all + n, out, w);
  n += w;
  assert_int_equal(n, len);
  free(out);
  return all;
}

static void test_stream_split(void **state) {
  (void)state;
  awf_secrets *s = make(1);
  char *in = NULL, *want = NULL;
  assert_true(asprintf(&in, "{\"k\":\"%s\",\"g\":\"%s\",\"k2\":\"%s\"}AWFP", ph_of(s, 0),
                       ph_of(s, 1), ph_of(s, 0)) > 0);
  assert_true(asprintf(&want, "{\"k\":\"%s\",\"g\":\"%s\",\"k2\":\"%s\"}AWFP", KEY, ph_of(s, 1),
                       KEY) > 0);
  for (size_t step = 1; step <= strlen(in); step++) {
    struct awf_secret_stream st;
    awf_secret_stream_init(&st, s, true, 1 /* OPENAI_API_KEY only */, UINT64_MAX);
    char *got = stream_all(&st, in, step);
    assert_string_equal(got, want);
    assert_int_equal(st.hits, 1);
    free(got);
  }
  /* Reverse: values back to placeholders, across every split. */
  for (size_t step = 1; step <= strlen(want); step++) {
    struct awf_secret_stream st;
    awf_secret_stream_init(&st, s, false, UINT64_MAX, UINT64_MAX);
    char *got = stream_all(&st, want, step);
    assert_null(strstr(got, KEY));
    free(got);
  }
  free(in);
  free(want);
  awf_secrets_free(s);
}

static void test_stream_limit(void **state) {
  (void)state;
  awf_secrets *s = make(1);
  char *in = NULL;
  char pad[AWF_SECRET_MAX_LEN + 100];
  memset(pad, '.', sizeof(pad) - 1);
  pad[sizeof(pad) - 1] = '\0';
  assert_true(asprintf(&in, "%s%s%s", KEY, pad, KEY) > 0);
  struct awf_secret_stream st;
  awf_secret_stream_init(&st, s, false, UINT64_MAX, 20); /* the first value only */
  char *got = stream_all(&st, in, 5); /* the first value straddles the limit */
  assert_memory_equal(got, ph_of(s, 0), strlen(KEY));
  assert_non_null(strstr(got, KEY)); /* past the limit: passed as it came */
  assert_int_equal(st.hold_len, 0);
  free(got);
  /* No secret in the mask: bytes pass untouched and nothing is held. */
  awf_secret_stream_init(&st, s, false, 0, UINT64_MAX);
  char out[AWF_SECRET_STREAM_OUT(8)];
  assert_int_equal(awf_secret_stream_feed(&st, "sk-proj-", 8, out), 8);
  free(in);
  awf_secrets_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_specs),        cmocka_unit_test(test_values),
      cmocka_unit_test(test_placeholders), cmocka_unit_test(test_hosts),
      cmocka_unit_test(test_rewrite_head), cmocka_unit_test(test_scrub),
      cmocka_unit_test(test_stream_split), cmocka_unit_test(test_stream_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
