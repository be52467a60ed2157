/* Unit tests for common/list.h: the intrusive doubly linked list. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "list.h"

struct item {
  int v;
  struct awf_list link;
};

/* The values front to back, checking the back links agree. */
static size_t collect(struct awf_list *h, int *out, size_t max) {
  struct awf_list *it;
  size_t n = 0;
  awf_list_each(it, h) {
    assert_ptr_equal(it->next->prev, it);
    assert_ptr_equal(it->prev->next, it);
    assert_true(n < max);
    out[n++] = awf_list_entry(it, struct item, link)->v;
  }
  size_t back = 0;
  awf_list_each_reverse(it, h) {
    assert_int_equal(awf_list_entry(it, struct item, link)->v, out[n - 1 - back]);
    back++;
  }
  assert_int_equal(back, n);
  return n;
}

static void test_empty(void **state) {
  struct awf_list h;
  struct awf_list *it;
  (void)state;
  awf_list_init(&h);
  assert_true(awf_list_empty(&h));
  assert_null(awf_list_first(&h, struct item, link));
  assert_null(awf_list_last(&h, struct item, link));
  awf_list_each(it, &h)
    fail();
}

static void test_push_front_and_back(void **state) {
  struct awf_list h;
  struct item it[4] = {{.v = 1}, {.v = 2}, {.v = 3}, {.v = 4}};
  int got[4];
  (void)state;
  awf_list_init(&h);
  awf_list_push_back(&h, &it[1].link);  /* 2 */
  awf_list_push_front(&h, &it[0].link); /* 1 2 */
  awf_list_push_back(&h, &it[2].link);  /* 1 2 3 */
  awf_list_push_front(&h, &it[3].link); /* 4 1 2 3 */
  assert_int_equal(collect(&h, got, 4), 4);
  assert_int_equal(got[0], 4);
  assert_int_equal(got[1], 1);
  assert_int_equal(got[2], 2);
  assert_int_equal(got[3], 3);
  assert_ptr_equal(awf_list_first(&h, struct item, link), &it[3]);
  assert_ptr_equal(awf_list_last(&h, struct item, link), &it[2]);
}

/* Removing the first, a middle and the last element, and one twice. */
static void test_remove_anywhere(void **state) {
  struct awf_list h;
  struct item it[5];
  int got[5];
  (void)state;
  awf_list_init(&h);
  for (int i = 0; i < 5; i++) {
    it[i].v = i;
    awf_list_push_back(&h, &it[i].link);
  }
  awf_list_remove(&it[0].link);
  awf_list_remove(&it[2].link);
  awf_list_remove(&it[4].link);
  awf_list_remove(&it[4].link); /* unlinked already: no effect */
  assert_int_equal(collect(&h, got, 5), 2);
  assert_int_equal(got[0], 1);
  assert_int_equal(got[1], 3);
  awf_list_remove(&it[1].link);
  awf_list_remove(&it[3].link);
  assert_true(awf_list_empty(&h));
  /* A removed node can join again. */
  awf_list_push_front(&h, &it[2].link);
  assert_int_equal(collect(&h, got, 5), 1);
  assert_int_equal(got[0], 2);
}

/* The _safe walk lets the body remove (and free) the current node. */
static void test_each_safe_removes(void **state) {
  struct awf_list h;
  struct awf_list *pos, *tmp;
  struct item it[6];
  int got[6];
  (void)state;
  awf_list_init(&h);
  for (int i = 0; i < 6; i++) {
    it[i].v = i;
    awf_list_push_back(&h, &it[i].link);
  }
  awf_list_each_safe(pos, tmp, &h) {
    struct item *x = awf_list_entry(pos, struct item, link);
    if (x->v % 2 == 0) {
      awf_list_remove(pos);
      pos->next = pos->prev = NULL; /* as if freed: the walk must not look */
    }
  }
  assert_int_equal(collect(&h, got, 6), 3);
  assert_int_equal(got[0], 1);
  assert_int_equal(got[1], 3);
  assert_int_equal(got[2], 5);
  awf_list_each_safe(pos, tmp, &h)
    awf_list_remove(pos);
  assert_true(awf_list_empty(&h));
}

/* Drain from the front, as a queue, many times over. */
static void test_queue_order(void **state) {
  struct awf_list h;
  struct item it[100];
  struct item *x;
  int want = 0;
  (void)state;
  awf_list_init(&h);
  for (int i = 0; i < 100; i++) {
    it[i].v = i;
    awf_list_push_back(&h, &it[i].link);
  }
  while ((x = awf_list_first(&h, struct item, link)) != NULL) {
    assert_int_equal(x->v, want++);
    awf_list_remove(&x->link);
  }
  assert_int_equal(want, 100);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),           cmocka_unit_test(test_push_front_and_back),
      cmocka_unit_test(test_remove_anywhere), cmocka_unit_test(test_each_safe_removes),
      cmocka_unit_test(test_queue_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
