/* fuzz_url_rules.c: libFuzzer target for URL rules and the request-target
 * normaliser (proxy/policy/url_rules.c).
 *
 * Input: rules-file text (a line starting with '!' goes to the block list),
 * a NUL, then a request target (origin form, "/path?query"). Without a NUL
 * the whole input is the target and there are no rules. Checked:
 * - the normal form of the path: starts with '/', no "//", no "." or ".."
 *   segment, only visible ASCII without '#' or '?', every '%' followed by
 *   two upper-case hex digits that do not encode an unreserved character,
 *   at most one byte longer than the input (only "" grows, to "/");
 * - normalising is idempotent;
 * - the raw target and its normal form (with the query) get the same
 *   verdict from the rules, for each of a few hosts and methods;
 * - a rule written as the normal form (when it holds no '*') is accepted and
 *   admits the target on its host; the same as a block rule blocks it, and a
 *   block rule wins over the allow rule;
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

  /* the normaliser */
  size_t cap = pl + 2;
  char *norm = malloc(cap + ql + 1);
  FUZZ_CHECK(norm != NULL);
  int n = awf_url_normalize_path(target, pl, norm, cap);
  if (n >= 0) {
    check_normal_form(norm, (size_t)n);
    FUZZ_CHECK((size_t)n <= (pl > 0 ? pl : 1));
    char *again = malloc((size_t)n + 2);
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(awf_url_normalize_path(norm, (size_t)n, again, (size_t)n + 2) == n);
    FUZZ_CHECK(memcmp(again, norm, (size_t)n + 1) == 0);
    free(again);
  } else {
    FUZZ_CHECK(n == -EINVAL);
  }

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
  if (n >= 0) {
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

  /* the normal form as a rule admits it, and as a block rule blocks it */
  if (n >= 0 && !memchr(norm, '*', (size_t)n) && n < 4000) {
    char rule[4096 + 16];
    int k = snprintf(rule, sizeof(rule), "http://h.test%.*s", n, norm);
    char err[ERR_LEN];
    awf_url_rules *a = awf_url_rules_new();
    FUZZ_CHECK(a != NULL);
    FUZZ_CHECK(awf_url_rules_add(a, AWF_URL_ALLOW, rule, (size_t)k, err, sizeof(err)) == 0);
    FUZZ_CHECK(awf_url_rules_check(a, AWF_URL_HTTP, "h.test", 6, "GET", target, tlen) ==
               AWF_URL_ALLOWED);
    FUZZ_CHECK(awf_url_rules_add(a, AWF_URL_BLOCK, rule, (size_t)k, err, sizeof(err)) == 0);
    FUZZ_CHECK(awf_url_rules_check(a, AWF_URL_HTTP, "h.test", 6, "GET", target, tlen) ==
               AWF_URL_BLOCKED);
    awf_url_rules_free(a);
  }
  free(norm);
  free(target);
  return 0;
}
