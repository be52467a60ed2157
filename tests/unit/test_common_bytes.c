/* Unit tests for common/bytes.h: the length-checked read cursor. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "bytes.h"

static void test_reads_big_endian_numbers(void **state) {
  static const uint8_t in[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a};
  struct awf_bytes c;
  uint8_t a;
  uint16_t b;
  uint32_t d, e;
  (void)state;
  awf_bytes_init(&c, in, sizeof(in));
  assert_int_equal(awf_bytes_u8(&c, &a), AWF_BYTES_OK);
  assert_int_equal(awf_bytes_u16(&c, &b), AWF_BYTES_OK);
  assert_int_equal(awf_bytes_u24(&c, &d), AWF_BYTES_OK);
  assert_int_equal(awf_bytes_u32(&c, &e), AWF_BYTES_OK);
  assert_int_equal(a, 0x01);
  assert_int_equal(b, 0x0203);
  assert_int_equal(d, 0x040506);
  assert_int_equal(e, 0x0708090a);
  assert_int_equal(awf_bytes_left(&c), 0);
  assert_ptr_equal(awf_bytes_ptr(&c), in + sizeof(in));
}

/* A read that does not fit leaves the output and the position alone, and
 * every later read fails the same way, even one that would fit. */
static void test_error_is_sticky_and_moves_nothing(void **state) {
  static const uint8_t in[] = {0xaa, 0xbb, 0xcc};
  struct awf_bytes c;
  uint32_t v = 0x11111111;
  uint8_t b = 0x22;
  (void)state;
  awf_bytes_init(&c, in, sizeof(in));
  assert_int_equal(awf_bytes_u32(&c, &v), AWF_BYTES_SHORT);
  assert_int_equal(v, 0x11111111);
  assert_int_equal(awf_bytes_u8(&c, &b), AWF_BYTES_SHORT);
  assert_int_equal(b, 0x22);
  assert_null(awf_bytes_take(&c, 0));
  assert_int_equal(awf_bytes_skip(&c, 0), AWF_BYTES_SHORT);
  assert_int_equal(awf_bytes_left(&c), 0);
  assert_ptr_equal(awf_bytes_ptr(&c), in);
  assert_int_equal(awf_bytes_error(&c), AWF_BYTES_SHORT);
}

/* Lengths an attacker picks: none may wrap the bounds check. */
static void test_hostile_lengths(void **state) {
  static const uint8_t in[8] = {0};
  static const size_t sizes[] = {
      9, 16, SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 7, SIZE_MAX / 2 + 1, (size_t)UINT32_MAX + 1};
  (void)state;
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    struct awf_bytes c, sub;
    awf_bytes_init(&c, in, sizeof(in));
    assert_non_null(awf_bytes_take(&c, 3));
    assert_null(awf_bytes_take(&c, sizes[i]));
    assert_int_equal(awf_bytes_error(&c), AWF_BYTES_SHORT);
    awf_bytes_init(&c, in, sizeof(in));
    assert_non_null(awf_bytes_take(&c, 3));
    assert_int_equal(awf_bytes_skip(&c, sizes[i]), AWF_BYTES_SHORT);
    awf_bytes_init(&c, in, sizeof(in));
    assert_non_null(awf_bytes_take(&c, 3));
    assert_int_equal(awf_bytes_sub(&c, sizes[i], &sub), AWF_BYTES_SHORT);
    assert_int_equal(awf_bytes_error(&sub), AWF_BYTES_SHORT);
    assert_int_equal(awf_bytes_left(&sub), 0);
  }
  /* Exactly to the end is fine, one more is not. */
  struct awf_bytes c;
  awf_bytes_init(&c, in, sizeof(in));
  assert_non_null(awf_bytes_take(&c, sizeof(in)));
  assert_null(awf_bytes_take(&c, 1));
}

static void test_null_input_is_empty(void **state) {
  struct awf_bytes c;
  uint8_t v;
  (void)state;
  awf_bytes_init(&c, NULL, 100);
  assert_int_equal(awf_bytes_left(&c), 0);
  assert_int_equal(awf_bytes_u8(&c, &v), AWF_BYTES_SHORT);
  awf_bytes_init(&c, NULL, 0);
  assert_int_equal(awf_bytes_skip(&c, 0), AWF_BYTES_OK);
  assert_int_equal(awf_bytes_skip(&c, 1), AWF_BYTES_SHORT);
}

/* Length-prefixed vectors: the child is the body, the parent skips it. */
static void test_vectors(void **state) {
  static const uint8_t in[] = {0x02, 'h',  'i',  0x00, 0x01, 'x', 0x00, 0x00, 0x01,
                               'y',  0x00, 0x00, 0x00, 0x01, 'z', 0x05, 'a'};
  struct awf_bytes c, sub;
  size_t n;
  uint8_t b;
  (void)state;
  awf_bytes_init(&c, in, sizeof(in));
  assert_int_equal(awf_bytes_vec(&c, 1, &sub, &n), AWF_BYTES_OK);
  assert_int_equal(n, 2);
  assert_int_equal(awf_bytes_left(&sub), 2);
  assert_memory_equal(awf_bytes_take(&sub, 2), "hi", 2);
  assert_int_equal(awf_bytes_u8(&sub, &b), AWF_BYTES_SHORT); /* the child ends with it */
  assert_int_equal(awf_bytes_error(&c), AWF_BYTES_OK);       /* the parent does not care */
  assert_int_equal(awf_bytes_vec(&c, 2, &sub, &n), AWF_BYTES_OK);
  assert_memory_equal(awf_bytes_take(&sub, n), "x", 1);
  assert_int_equal(awf_bytes_vec(&c, 3, &sub, &n), AWF_BYTES_OK);
  assert_memory_equal(awf_bytes_take(&sub, n), "y", 1);
  assert_int_equal(awf_bytes_vec(&c, 4, &sub, &n), AWF_BYTES_OK);
  assert_memory_equal(awf_bytes_take(&sub, n), "z", 1);
  /* A length past the end: refused, and the parent is in error. */
  assert_int_equal(awf_bytes_vec(&c, 1, &sub, &n), AWF_BYTES_SHORT);
  assert_int_equal(awf_bytes_error(&c), AWF_BYTES_SHORT);
  /* A truncated length prefix. */
  awf_bytes_init(&c, in, 1);
  awf_bytes_skip(&c, 1);
  assert_int_equal(awf_bytes_vec(&c, 2, &sub, &n), AWF_BYTES_SHORT);
}

/* Two ends: past what arrived is MORE, past what was declared is SHORT. */
static void test_partial_input(void **state) {
  static const uint8_t in[] = {0x00, 0x04, 'a', 'b'};
  struct awf_bytes c, sub;
  size_t n;
  uint8_t b;
  (void)state;
  awf_bytes_init_partial(&c, in, 6, sizeof(in));
  assert_int_equal(awf_bytes_vec(&c, 2, &sub, &n), AWF_BYTES_OK);
  assert_int_equal(n, 4);
  assert_non_null(awf_bytes_take(&sub, 2));
  assert_int_equal(awf_bytes_u8(&sub, &b), AWF_BYTES_MORE);
  /* The parent skipped the whole body; its next read has not arrived. */
  assert_int_equal(awf_bytes_left(&c), 0);
  assert_int_equal(awf_bytes_u8(&c, &b), AWF_BYTES_SHORT);

  awf_bytes_init_partial(&c, in, 8, sizeof(in));
  assert_int_equal(awf_bytes_skip(&c, 6), AWF_BYTES_OK); /* beyond what arrived */
  assert_int_equal(awf_bytes_u8(&c, &b), AWF_BYTES_MORE);
  awf_bytes_init_partial(&c, in, 8, sizeof(in));
  assert_null(awf_bytes_take(&c, 9)); /* SHORT wins over MORE */
  assert_int_equal(awf_bytes_error(&c), AWF_BYTES_SHORT);
  awf_bytes_init_partial(&c, in, 8, sizeof(in));
  assert_null(awf_bytes_take(&c, SIZE_MAX));
  assert_int_equal(awf_bytes_error(&c), AWF_BYTES_SHORT);
  /* arrived is clipped to declared */
  awf_bytes_init_partial(&c, in, 2, SIZE_MAX);
  assert_non_null(awf_bytes_take(&c, 2));
  assert_int_equal(awf_bytes_u8(&c, &b), AWF_BYTES_SHORT);
}

static void test_copy(void **state) {
  static const uint8_t in[] = {1, 2, 3};
  uint8_t out[3] = {9, 9, 9};
  struct awf_bytes c;
  (void)state;
  awf_bytes_init(&c, in, sizeof(in));
  assert_int_equal(awf_bytes_copy(&c, out, 4), AWF_BYTES_SHORT);
  assert_int_equal(out[0], 9);
  awf_bytes_init(&c, in, sizeof(in));
  assert_int_equal(awf_bytes_copy(&c, out, 3), AWF_BYTES_OK);
  assert_memory_equal(out, in, 3);
}

static void test_tokens(void **state) {
  static const char text[] = "one\n\nthree\nlast";
  const char *want[] = {"one", "", "three", "last"};
  struct awf_bytes c;
  const uint8_t *p;
  size_t n, i = 0;
  (void)state;
  awf_bytes_init(&c, text, strlen(text));
  while (awf_bytes_token(&c, '\n', &p, &n)) {
    assert_true(i < 4);
    assert_int_equal(n, strlen(want[i]));
    assert_memory_equal(p, want[i], n);
    i++;
  }
  assert_int_equal(i, 4);
  assert_int_equal(awf_bytes_error(&c), AWF_BYTES_OK);
  /* A trailing delimiter ends the last token, with no empty one after it. */
  awf_bytes_init(&c, "a\n", 2);
  assert_true(awf_bytes_token(&c, '\n', &p, &n));
  assert_false(awf_bytes_token(&c, '\n', &p, &n));
  /* Tokens need the whole input. */
  awf_bytes_init_partial(&c, "ab", 4, 2);
  assert_false(awf_bytes_token(&c, '\n', &p, &n));
  assert_int_equal(awf_bytes_error(&c), AWF_BYTES_MORE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reads_big_endian_numbers),
      cmocka_unit_test(test_error_is_sticky_and_moves_nothing),
      cmocka_unit_test(test_hostile_lengths),
      cmocka_unit_test(test_null_input_is_empty),
      cmocka_unit_test(test_vectors),
      cmocka_unit_test(test_partial_input),
      cmocka_unit_test(test_copy),
      cmocka_unit_test(test_tokens),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
