/* test_denials.c: the end-of-run summary of denials. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "denials.h"

static char *summary(const awf_denials *d) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  awf_denials_print(d, f);
  fclose(f);
  return text;
}

/* A DNS label holding a '.' is summarised escaped: it cannot pass for the
 * name of more labels that --allow-domains would admit. */
static void test_dotted_label_not_summarised_as_two(void **state) {
  (void)state;
  awf_denials *d = awf_denials_new();
  assert_non_null(d);
  awf_denials_add_text(d, "a\\.b.example", 12, 0, "invalid_name");
  awf_denials_add_text(d, "a.b.example", 11, 0, "not_allowed");
  char *s = summary(d);
  assert_non_null(strstr(s, "  a\\.b.example  invalid_name\n"));
  assert_non_null(strstr(s, "  a.b.example  not_allowed\n"));
  assert_non_null(strstr(s, "--allow-domains a.b.example\n")); /* only the real name */
  free(s);
  awf_denials_free(d);
}

/* Hosts with bytes a terminal should not get are shown escaped, not dropped. */
static void test_unprintable_host_escaped(void **state) {
  (void)state;
  awf_denials *d = awf_denials_new();
  awf_denials_add(d, "e\x1b[2Jvil\\.test", 14, 80, "invalid_name");
  awf_denials_add(d, "\xff", 1, 443, "invalid_name");
  awf_denials_add(d, "ok.test", 7, 443, "not_allowed");
  awf_denials_add(d, "ok.test", 7, 443, "not_allowed");
  awf_denials_add_text(d, "raw\x1b", 4, 0, "invalid_name"); /* not escaped: refused */
  char *s = summary(d);
  assert_non_null(strstr(s, "  e\\027[2Jvil\\\\.test:80  invalid_name\n"));
  assert_non_null(strstr(s, "  \\255:443  invalid_name\n"));
  assert_non_null(strstr(s, "  ok.test:443  not_allowed (2 times)\n"));
  assert_null(strchr(s, '\x1b'));
  assert_int_equal(awf_denials_count(d), 3);
  free(s);
  awf_denials_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dotted_label_not_summarised_as_two),
      cmocka_unit_test(test_unprintable_host_escaped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
