/* Unit tests for common/buf.c: the capped growable buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "buf.h"

static void buf_append_respects_cap(void **state) {
  (void)state;
  struct awf_buf b;
  awf_buf_init(&b, 10);
  assert_int_equal(awf_buf_append(&b, "hello", 5), 0);
  assert_int_equal(awf_buf_append(&b, "world!", 6), -E2BIG);
  assert_int_equal(b.len, 5);
  assert_memory_equal(b.data, "hello", 5);
  assert_int_equal(awf_buf_append(&b, "world", 5), 0);
  assert_int_equal(b.len, 10);
  assert_memory_equal(b.data, "helloworld", 10);
  assert_int_equal(awf_buf_append(&b, "x", 1), -E2BIG);
  assert_int_equal(awf_buf_append(&b, "", 0), 0);
  assert_int_equal(b.len, 10);
  assert_true(b.cap <= b.max);
  /* A length that would wrap len + n must not slip past the cap. */
  assert_int_equal(awf_buf_append(&b, "x", SIZE_MAX), -E2BIG);
  awf_buf_free(&b);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
}

static void buf_grows_to_exact_max(void **state) {
  (void)state;
  struct awf_buf b;
  const size_t max = 100003; /* not a power of two */
  awf_buf_init(&b, max);
  for (size_t i = 0; i < max; i++)
    assert_int_equal(awf_buf_append(&b, &"abcdefg"[i % 7], 1), 0);
  assert_int_equal(b.len, max);
  assert_int_equal(awf_buf_append(&b, "z", 1), -E2BIG);
  for (size_t i = 0; i < max; i++)
    assert_int_equal(b.data[i], "abcdefg"[i % 7]);
  awf_buf_free(&b);
}

static void buf_printf_and_cap(void **state) {
  (void)state;
  struct awf_buf b;
  awf_buf_init(&b, 16);
  assert_int_equal(awf_buf_printf(&b, "%d-%s", 42, "ab"), 0);
  assert_int_equal(b.len, 5);
  assert_memory_equal(b.data, "42-ab", 5);
  assert_int_equal(awf_buf_printf(&b, "%s", "0123456789ab"), -E2BIG);
  assert_int_equal(b.len, 5);
  assert_memory_equal(b.data, "42-ab", 5);
  assert_int_equal(awf_buf_printf(&b, "%s", "0123456789a"), 0);
  assert_int_equal(b.len, 16);
  assert_memory_equal(b.data, "42-ab0123456789a", 16);
  assert_int_equal(awf_buf_printf(&b, "%s", ""), 0);
  assert_int_equal(b.len, 16);
  awf_buf_free(&b);
}

static void buf_reset_keeps_memory(void **state) {
  (void)state;
  struct awf_buf b;
  awf_buf_init(&b, 4096);
  char big[3000];
  memset(big, 'q', sizeof(big));
  assert_int_equal(awf_buf_append(&b, big, sizeof(big)), 0);
  char *data = b.data;
  size_t cap = b.cap;
  awf_buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_int_equal(awf_buf_append(&b, "x", 1), 0);
  assert_ptr_equal(b.data, data);
  assert_int_equal(b.cap, cap);
  assert_int_equal(b.len, 1);
  awf_buf_free(&b);
}

/* Sizes an attacker (or a bug) can make up: none may wrap the cap check or
 * reach the allocator, and the buffer is left as it was. */
static void buf_hostile_sizes(void **state) {
  (void)state;
  struct awf_buf b;
  static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2 + 1, (size_t)1 << 40, 65};
  awf_buf_init(&b, 64);
  assert_int_equal(awf_buf_append(&b, "abc", 3), 0);
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    assert_int_equal(awf_buf_append(&b, "x", sizes[i]), -E2BIG);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "abc");
  }
  assert_true(b.cap <= b.max);
  /* Filling to the byte, then one past it. */
  char fill[61];
  memset(fill, 'f', sizeof(fill));
  assert_int_equal(awf_buf_append(&b, fill, sizeof(fill)), 0);
  assert_int_equal(b.len, 64);
  assert_int_equal(awf_buf_append(&b, "x", 1), -E2BIG);
  assert_int_equal(awf_buf_printf(&b, "%c", 'x'), -E2BIG);
  assert_int_equal(b.len, 64);
  assert_int_equal(b.data[64], '\0');
  awf_buf_free(&b);
}

/* With no cap to speak of, growing to SIZE_MAX bytes (no room left for the
 * NUL) fails as out of memory before the allocator is asked, never as a
 * wrapped small allocation. */
static void buf_unbounded_cap_fails_cleanly(void **state) {
  (void)state;
  struct awf_buf b;
  awf_buf_init(&b, SIZE_MAX);
  assert_int_equal(awf_buf_append(&b, "ab", 2), 0);
  assert_int_equal(awf_buf_append(&b, "x", SIZE_MAX - 2), -ENOMEM);
  assert_int_equal(awf_buf_printf(&b, "%s", "y"), 0);               /* still usable */
  assert_int_equal(awf_buf_append(&b, "x", SIZE_MAX - 2), -E2BIG);  /* past max */
  assert_int_equal(awf_buf_append(&b, "x", SIZE_MAX - 3), -ENOMEM); /* to max */
  assert_int_equal(b.len, 3);
  assert_string_equal(b.data, "aby");
  awf_buf_free(&b);
}

/* printf output longer than the room already allocated takes the second,
 * growing pass and still respects the cap. */
static void buf_printf_grows(void **state) {
  (void)state;
  struct awf_buf b;
  char want[1001];
  awf_buf_init(&b, 1000);
  assert_int_equal(awf_buf_append(&b, "<", 1), 0);
  assert_int_equal(awf_buf_printf(&b, "%0998d", 7), 0);
  assert_int_equal(b.len, 999);
  assert_int_equal(awf_buf_printf(&b, "%s", "12"), -E2BIG);
  assert_int_equal(awf_buf_printf(&b, "%s", ">"), 0);
  memset(want, '0', sizeof(want));
  want[0] = '<';
  want[998] = '7';
  want[999] = '>';
  want[1000] = '\0';
  assert_string_equal(b.data, want);
  awf_buf_free(&b);
}

/* Operations on a buffer that never allocated. */
static void buf_empty_buffer(void **state) {
  (void)state;
  struct awf_buf b;
  awf_buf_init(&b, 8);
  awf_buf_reset(&b);
  assert_non_null(awf_buf_at(&b, 0));
  assert_string_equal(awf_buf_at(&b, 0), "");
  assert_int_equal(awf_buf_append(&b, NULL, 0), 0);
  assert_null(b.data);
  assert_int_equal(awf_buf_printf(&b, "%s", ""), 0);
  assert_int_equal(b.len, 0);
  awf_buf_free(&b);
  awf_buf_free(&b); /* twice is harmless */
  assert_null(b.data);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(buf_append_respects_cap),
      cmocka_unit_test(buf_grows_to_exact_max),
      cmocka_unit_test(buf_printf_and_cap),
      cmocka_unit_test(buf_reset_keeps_memory),
      cmocka_unit_test(buf_hostile_sizes),
      cmocka_unit_test(buf_unbounded_cap_fails_cleanly),
      cmocka_unit_test(buf_printf_grows),
      cmocka_unit_test(buf_empty_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
