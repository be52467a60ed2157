/* fuzz_url_rules.c: libFuzzer target for URL rules and the request-target
 * normaliser (proxy/policy/url_rules.c).
 *
 * Input: rules-file text (a line starting with '!' goes to the block list),
 * a NUL, then a request target (origin form, "/path?query"). Without a NUL
 * the whole input is the target and there are no rules. Checked:
 * - every reading of the path (awf_url_reading) is a normal form: starts
 *   with '/', no "//", no "." or ".." segment, only visible ASCII without
 *   '#' or '?', every '%' followed by two upper-case hex digits that do not
 *   encode an unreserved character, at most one byte longer than the input
 *   (only "" grows, to "/"); the slash readings hold no %2F, %5C or '\',
 *   the params readings no ';';
 * - each reading is a fixed point of its own reading and of the RFC one;
 * - when the RFC reading refuses the path, every reading does;
 * - when all readings agree, the raw target and its normal form (with the
 *   query) get the same verdict from the rules, for each of a few hosts and
 *   methods;
 * - the readings written as allow rules (when they hold no '*') are accepted
 *   and admit the target on their host, and each reading alone as a block
 *   rule blocks it, whatever the allow rules;
 * - a refused rules text adds no rule and writes a bounded message.
 */
#include "fuzz_check.h"
#include "url_rules.h"

#include <errno.h>

#define ERR_LEN 128

static bool unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

static int uhex(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static void check_normal_form(const char *p, size_t n) {
  FUZZ_CHECK(n >= 1 && p[0] == '/');
  FUZZ_CHECK(p[n] == '\0');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '#' && c != '?');
    if (c == '%') {
      FUZZ_CHECK(i + 2 < n + 1 && uhex(p[i + 1]) >= 0 && uhex(p[i + 2]) >= 0);
      FUZZ_CHECK(!unreserved((unsigned char)(uhex(p[i + 1]) * 16 + uhex(p[i + 2]))));
    }
    if (c == '/')
      FUZZ_CHECK(i + 1 >= n || p[i + 1] != '/');
  }
  for (size_t i = 1; i <= n;) { /* segments */
    size_t j = i;
    while (j < n && p[j] != '/')
      j++;
    FUZZ_CHECK(!(j - i == 1 && p[i] == '.'));
    FUZZ_CHECK(!(j - i == 2 && p[i] == '.' && p[i + 1] == '.'));
    i = j + 1;
  }
}

static bool is_slash(const char *p, size_t i, size_t n) {
  return p[i] == '\\' ||
         (p[i] == '%' && i + 2 < n + 1 &&
          ((p[i + 1] == '2' && p[i + 2] == 'F') || (p[i + 1] == '5' && p[i + 2] == 'C')));
}

/* A reading: a normal form, without what the reading replaced, and a fixed
 * point of its own reading and of the RFC one. */
static void check_reading(const char *p, size_t n, enum awf_url_reading k) {
  check_normal_form(p, n);
  bool sl = k == AWF_URL_READ_SLASH || k == AWF_URL_READ_SLASH_PARAMS ||
            k == AWF_URL_READ_PARAMS_SLASH;
  bool pa = k == AWF_URL_READ_PARAMS || k == AWF_URL_READ_SLASH_PARAMS ||
            k == AWF_URL_READ_PARAMS_SLASH;
  for (size_t i = 0; i < n; i++) {
    FUZZ_CHECK(!(sl && is_slash(p, i, n)));
    FUZZ_CHECK(!(pa && p[i] == ';'));
  }
  char *again = malloc(n + 2);
  FUZZ_CHECK(again != NULL);
  enum awf_url_reading ks[2] = {k, AWF_URL_READ_RFC};
  for (int j = 0; j < 2; j++) {
    FUZZ_CHECK(awf_url_normalize_path_as(p, n, ks[j], again, n + 2) == (int)n);
    FUZZ_CHECK(memcmp(again, p, n + 1) == 0);
  }
  free(again);
}

/* "http://h.test" + path as a rule; it must be accepted. */
static void add_path_rule(awf_url_rules *r, enum awf_url_list which, const char *path, int n) {
  char rule[4096 + 16], err[ERR_LEN];
  int k = snprintf(rule, sizeof(rule), "http://h.test%.*s", n, path);
  FUZZ_CHECK(awf_url_rules_add(r, which, rule, (size_t)k, err, sizeof(err)) == 0);
}

static const char *hosts[] = {"h.test", "a.h.test", "x.test"};
static const char *methods[] = {"GET", "POST", "DELETE"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 8192)
    return 0;
  const uint8_t *nul = memchr(data, 0, size);
  const uint8_t *tdata = nul ? nul + 1 : data;
  size_t tlen = nul ? size - (size_t)(nul + 1 - data) : size;
  char *target = (char *)fuzz_dup(tdata, tlen);
  const char *q = memchr(target, '?', tlen);
  size_t pl = q ? (size_t)(q - target) : tlen, ql = tlen - pl;

  /* the normaliser: every reading */
  size_t cap = pl + 2;
  char *rd[AWF_URL_READINGS];
  int rn[AWF_URL_READINGS];
  bool same = true;
  for (int k = 0; k < AWF_URL_READINGS; k++) {
    rd[k] = malloc(cap + ql + 1);
    FUZZ_CHECK(rd[k] != NULL);
    rn[k] = awf_url_normalize_path_as(target, pl, (enum awf_url_reading)k, rd[k], cap);
    if (rn[k] < 0) {
      FUZZ_CHECK(rn[k] == -EINVAL);
      same = false;
      continue;
    }
    FUZZ_CHECK(rn[0] >= 0); /* the RFC reading refuses no less than the others */
    check_reading(rd[k], (size_t)rn[k], (enum awf_url_reading)k);
    FUZZ_CHECK((size_t)rn[k] <= (pl > 0 ? pl : 1));
    same &= rn[k] == rn[0] && memcmp(rd[k], rd[0], (size_t)rn[0]) == 0;
  }
  int n = rn[0];
  char *norm = rd[0];
  /* the rules of the input */
  awf_url_rules *r = awf_url_rules_new();
  FUZZ_CHECK(r != NULL);
  if (nul) {
    size_t rl = (size_t)(nul - data);
    const char *text = (const char *)data;
    for (size_t i = 0; i < rl;) {
      const char *nl = memchr(text + i, '\n', rl - i);
      size_t ll = nl ? (size_t)(nl - (text + i)) : rl - i;
      bool block = ll > 0 && text[i] == '!';
      enum awf_url_list which = block ? AWF_URL_BLOCK : AWF_URL_ALLOW;
      char err[ERR_LEN];
      memset(err, 'x', sizeof(err));
      size_t before = awf_url_rules_count(r, which);
      int rc = awf_url_rules_add_text(r, which, text + i + block, ll - block, "f", err,
                                      sizeof(err));
      if (rc < 0) {
        FUZZ_CHECK(rc == -EINVAL);
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
        FUZZ_CHECK(awf_url_rules_count(r, which) == before);
      }
      i += ll + 1;
    }
  }
  if (same) {
    memcpy(norm + n, q ? q : "", ql);
    for (size_t h = 0; h < sizeof(hosts) / sizeof(hosts[0]); h++)
      for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
        const char *host = hosts[h];
        enum awf_url_verdict raw = awf_url_rules_check(r, AWF_URL_HTTP, host, strlen(host),
                                                       methods[m], target, tlen);
        enum awf_url_verdict normal = awf_url_rules_check(r, AWF_URL_HTTP, host, strlen(host),
                                                          methods[m], norm, (size_t)n + ql);
        FUZZ_CHECK(raw == normal);
      }
  }
  awf_url_rules_free(r);

  /* the readings as allow rules admit it, each as a block rule blocks it */
  bool plain = true;
  for (int k = 0; k < AWF_URL_READINGS; k++)
    plain &= rn[k] >= 0 && rn[k] < 4000 && !memchr(rd[k], '*', (size_t)rn[k]);
  if (plain) {
    awf_url_rules *a = awf_url_rules_new();
    FUZZ_CHECK(a != NULL);
    for (int k = 0; k < AWF_URL_READINGS; k++)
      add_path_rule(a, AWF_URL_ALLOW, rd[k], rn[k]);
    FUZZ_CHECK(awf_url_rules_check(a, AWF_URL_HTTP, "h.test", 6, "GET", target, tlen) ==
               AWF_URL_ALLOWED);
    awf_url_rules_free(a);
    for (int k = 0; k < AWF_URL_READINGS; k++) {
      awf_url_rules *b = awf_url_rules_new();
      FUZZ_CHECK(b != NULL);
      add_path_rule(b, AWF_URL_ALLOW, "/*", 2);
      add_path_rule(b, AWF_URL_BLOCK, rd[k], rn[k]);
      FUZZ_CHECK(awf_url_rules_check(b, AWF_URL_HTTP, "h.test", 6, "GET", target, tlen) ==
                 AWF_URL_BLOCKED);
      awf_url_rules_free(b);
    }
  }
  for (int k = 0; k < AWF_URL_READINGS; k++)
    free(rd[k]);
  free(target);
  return 0;
}
