/* Unit tests for common/errbuf.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "errbuf.h"

static void test_fail_formats_and_returns_code(void **state) {
  char err[64];

  (void)state;
  assert_int_equal(awf_errbuf_fail(err, sizeof err, -ENOENT, "uid %u in %s", 7u, "/p"),
                   -ENOENT);
  assert_string_equal(err, "uid 7 in /p");
}

static void test_fail_truncates_and_tolerates_null(void **state) {
  char err[6];

  (void)state;
  assert_int_equal(awf_errbuf_fail(err, sizeof err, -EINVAL, "%s", "0123456789"), -EINVAL);
  assert_string_equal(err, "01234");
  assert_int_equal(awf_errbuf_fail(NULL, 100, -E2BIG, "x"), -E2BIG);
  err[0] = 'z';
  assert_int_equal(awf_errbuf_fail(err, 0, -E2BIG, "x"), -E2BIG);
  assert_int_equal(err[0], 'z');
}

static void test_quote_escapes(void **state) {
  char out[128];
  const char in[] = "a\x1b[31m\"\\\n\x7f\xff\0z";

  (void)state;
  awf_errbuf_quote(in, sizeof in - 1, out, sizeof out);
  assert_string_equal(out, "a\\x1b[31m\\\"\\\\\\x0a\\x7f\\xff\\x00z");
}

static void test_quote_exact_fit_has_no_ellipsis(void **state) {
  char out[4];

  (void)state;
  assert_string_equal(awf_errbuf_quote("abc", 3, out, sizeof out), "abc");
  assert_string_equal(awf_errbuf_quote("", 0, out, sizeof out), "");
}

static void test_quote_cuts_with_ellipsis(void **state) {
  char out[8];

  (void)state;
  assert_string_equal(awf_errbuf_quote("abcdefghij", 10, out, sizeof out), "abcd...");
  /* An escape is never cut in half. */
  assert_string_equal(awf_errbuf_quote("ab\x01\x02zzzz", 8, out, sizeof out), "ab...");
}

/* Every output size: terminated, within bounds, a prefix of the full rendering. */
static void test_quote_all_sizes(void **state) {
  const char in[] = "x\x01y\"z\\w\x80 long tail of text";
  char full[256], out[64];
  size_t sz;

  (void)state;
  awf_errbuf_quote(in, sizeof in - 1, full, sizeof full);
  for (sz = 1; sz <= sizeof out; sz++) {
    size_t l;

    memset(out, 'Q', sizeof out);
    awf_errbuf_quote(in, sizeof in - 1, out, sz);
    l = strlen(out);
    assert_true(l < sz);
    if (strcmp(out, full) != 0) {
      size_t keep = l >= 3 && strcmp(out + l - 3, "...") == 0 ? l - 3 : l;

      assert_memory_equal(out, full, keep);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fail_formats_and_returns_code),
      cmocka_unit_test(test_fail_truncates_and_tolerates_null),
      cmocka_unit_test(test_quote_escapes),
      cmocka_unit_test(test_quote_exact_fit_has_no_ellipsis),
      cmocka_unit_test(test_quote_cuts_with_ellipsis),
      cmocka_unit_test(test_quote_all_sizes),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
