/* Unit tests for proxy/client_limits.c: per-client counts, the limit, entries
 * freed with the last connection, address keys, the logging rate limit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "client_limits.h"

static struct sockaddr_storage addr_of(const char *ip, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
  } else {
    assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
  }
  return ss;
}

static int acquire(awf_client_limits *t, const char *ip, uint16_t port, awf_client_entry **e) {
  struct sockaddr_storage ss = addr_of(ip, port);
  return awf_client_limits_acquire(t, (struct sockaddr *)&ss, e);
}

static void test_default_is_a_fair_share(void **state) {
  (void)state;
  assert_int_equal(awf_client_limit_default(4096), 512);
  assert_int_equal(awf_client_limit_default(1000000), 125000);
  assert_int_equal(awf_client_limit_default(600), 75);
  assert_int_equal(awf_client_limit_default(512), 64); /* the floor */
  assert_int_equal(awf_client_limit_default(100), 64);
  assert_int_equal(awf_client_limit_default(64), 64);
  assert_int_equal(awf_client_limit_default(2), 2); /* never above the cap */
  assert_int_equal(awf_client_limit_default(1), 1);
}

static void test_limit_per_client(void **state) {
  (void)state;
  awf_client_limits *t = awf_client_limits_new(3, 100, 42);
  assert_non_null(t);
  awf_client_entry *held[3], *e = NULL, *other = NULL;
  /* Any source port: the client is its address. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(acquire(t, "127.0.0.1", (uint16_t)(40000 + i), &held[i]), 0);
  assert_ptr_equal(held[0], held[2]);
  assert_int_equal(acquire(t, "127.0.0.1", 40003, &e), -EDQUOT);
  assert_ptr_equal(e, held[0]);
  assert_int_equal(acquire(t, "127.0.0.1", 40004, &e), -EDQUOT);
  /* Another client is not affected. */
  assert_int_equal(acquire(t, "127.0.0.2", 1, &other), 0);
  assert_ptr_not_equal(other, held[0]);
  assert_int_equal(awf_client_limits_clients(t), 2);
  /* One ends: one more is admitted, and only one. */
  awf_client_limits_release(t, held[1]);
  assert_int_equal(acquire(t, "127.0.0.1", 40005, &held[1]), 0);
  assert_int_equal(acquire(t, "127.0.0.1", 40006, &e), -EDQUOT);
  /* The last connection frees the entry. */
  for (int i = 0; i < 3; i++)
    awf_client_limits_release(t, held[i]);
  awf_client_limits_release(t, other);
  assert_int_equal(awf_client_limits_clients(t), 0);
  assert_int_equal(acquire(t, "127.0.0.1", 1, &e), 0);
  awf_client_limits_release(t, e);
  awf_client_limits_free(t);
}

static void test_keys(void **state) {
  (void)state;
  awf_client_limits *t = awf_client_limits_new(1, 100, 7);
  assert_non_null(t);
  awf_client_entry *a, *b, *c, *d, *x;
  assert_int_equal(acquire(t, "10.0.0.1", 1, &a), 0);
  /* An IPv4-mapped IPv6 address is the same client. */
  assert_int_equal(acquire(t, "::ffff:10.0.0.1", 2, &x), -EDQUOT);
  assert_ptr_equal(x, a);
  /* IPv6 addresses are clients of their own, also ::a00:1 (not mapped). */
  assert_int_equal(acquire(t, "::a00:1", 3, &b), 0);
  assert_int_equal(acquire(t, "2001:db8::1", 4, &c), 0);
  assert_int_equal(acquire(t, "2001:db8::2", 5, &d), 0);
  assert_int_equal(acquire(t, "2001:db8::1", 6, &x), -EDQUOT);
  assert_int_equal(awf_client_limits_clients(t), 4);
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof(sun));
  sun.sun_family = AF_UNIX;
  x = (awf_client_entry *)&sun;
  assert_int_equal(awf_client_limits_acquire(t, (struct sockaddr *)&sun, &x), -EAFNOSUPPORT);
  assert_null(x);
  assert_int_equal(awf_client_limits_acquire(t, NULL, &x), -EAFNOSUPPORT);
  awf_client_limits_release(t, a);
  awf_client_limits_release(t, b);
  awf_client_limits_release(t, c);
  awf_client_limits_release(t, d);
  awf_client_limits_release(t, NULL); /* ignored */
  assert_int_equal(awf_client_limits_clients(t), 0);
  awf_client_limits_free(t);
  assert_null(awf_client_limits_new(0, 100, 1));
  awf_client_limits_free(NULL);
}

/* Many clients, more than buckets: every one counted apart, all freed. */
static void test_many_clients(void **state) {
  (void)state;
  enum { N = 20000 };
  static awf_client_entry *e[N];
  awf_client_limits *t = awf_client_limits_new(2, 64, 99);
  assert_non_null(t);
  char ip[64];
  for (int i = 0; i < N; i++) {
    snprintf(ip, sizeof(ip), "2001:db8::%x:%x", i >> 8, i & 0xff);
    assert_int_equal(acquire(t, ip, 1, &e[i]), 0);
    assert_int_equal(acquire(t, ip, 2, &e[i]), 0);
    awf_client_entry *x;
    assert_int_equal(acquire(t, ip, 3, &x), -EDQUOT);
  }
  assert_int_equal(awf_client_limits_clients(t), N);
  for (int i = N - 1; i >= 0; i--) {
    awf_client_limits_release(t, e[i]);
    awf_client_limits_release(t, e[i]);
  }
  assert_int_equal(awf_client_limits_clients(t), 0);
  awf_client_limits_free(t);
  /* Entries still held are freed with the table (ASan would see a leak). */
  t = awf_client_limits_new(2, 64, 99);
  assert_non_null(t);
  assert_int_equal(acquire(t, "192.0.2.1", 1, &e[0]), 0);
  awf_client_limits_free(t);
}

static void test_log_rate_limit(void **state) {
  (void)state;
  awf_client_limits *t = awf_client_limits_new(1, 100, 3);
  assert_non_null(t);
  awf_client_entry *a, *b, *x;
  assert_int_equal(acquire(t, "127.0.0.1", 1, &a), 0);
  assert_int_equal(acquire(t, "127.0.0.2", 1, &b), 0);
  assert_int_equal(acquire(t, "127.0.0.1", 2, &x), -EDQUOT);
  assert_true(awf_client_limits_log_due(x, 0, 1000)); /* the first, even at time 0 */
  for (uint64_t ms = 0; ms < 1000; ms += 10)
    assert_false(awf_client_limits_log_due(x, ms, 1000));
  assert_true(awf_client_limits_log_due(b, 500, 1000)); /* per client */
  assert_true(awf_client_limits_log_due(x, 1000, 1000));
  assert_false(awf_client_limits_log_due(x, 1999, 1000));
  assert_true(awf_client_limits_log_due(x, 5000, 1000));
  assert_false(awf_client_limits_log_due(NULL, 5000, 1000));
  awf_client_limits_release(t, a);
  awf_client_limits_release(t, b);
  awf_client_limits_free(t);
}

/* admit: the limit as acquire; a refusal gives no entry, and says whether
 * it is the one to log (once per interval per client). */
static void test_admit(void **state) {
  (void)state;
  awf_client_limits *t = awf_client_limits_new(1, 64, 3);
  struct sockaddr_storage a = addr_of("127.0.0.1", 1), b = addr_of("127.0.0.2", 1);
  awf_client_entry *e, *x;
  bool log;
  assert_int_equal(awf_client_limits_admit(t, (struct sockaddr *)&a, 0, 1000, &e, &log), 0);
  assert_non_null(e);
  assert_false(log);
  assert_int_equal(awf_client_limits_admit(t, (struct sockaddr *)&a, 10, 1000, &x, &log),
                   -EDQUOT);
  assert_null(x);
  assert_true(log);
  assert_int_equal(awf_client_limits_admit(t, (struct sockaddr *)&a, 500, 1000, &x, &log),
                   -EDQUOT);
  assert_false(log);
  assert_int_equal(awf_client_limits_admit(t, (struct sockaddr *)&a, 1010, 1000, &x, &log),
                   -EDQUOT);
  assert_true(log);
  assert_int_equal(awf_client_limits_admit(t, (struct sockaddr *)&b, 1010, 1000, &x, &log), 0);
  awf_client_limits_release(t, x);
  awf_client_limits_release(t, e);
  assert_int_equal(awf_client_limits_clients(t), 0);
  awf_client_limits_free(t);
}

#define THREADS 4
#define ROUNDS 20000

struct racer {
  awf_client_limits *t;
  int id;
};

/* Each thread takes and gives back connections of two clients, one its own
 * and one shared by all: the table must stay exact under the races. */
static void *racer_main(void *p) {
  struct racer *r = p;
  char own[32];
  snprintf(own, sizeof(own), "10.0.0.%d", r->id + 1);
  struct sockaddr_storage mine = addr_of(own, 1), shared = addr_of("10.9.9.9", 1);
  for (int i = 0; i < ROUNDS; i++) {
    awf_client_entry *a[3], *s;
    bool log;
    for (int k = 0; k < 3; k++)
      if (awf_client_limits_admit(r->t, (struct sockaddr *)&mine, 0, 1, &a[k], &log) != 0)
        return (void *)1; /* its own client: never over its limit of 3 */
    if (awf_client_limits_admit(r->t, (struct sockaddr *)&mine, 0, 1, &s, &log) != -EDQUOT)
      return (void *)1;
    int rc = awf_client_limits_admit(r->t, (struct sockaddr *)&shared, 0, 1, &s, &log);
    if (rc == 0)
      awf_client_limits_release(r->t, s);
    else if (rc != -EDQUOT)
      return (void *)1;
    for (int k = 0; k < 3; k++)
      awf_client_limits_release(r->t, a[k]);
  }
  return NULL;
}

static void test_threads_share_one_table(void **state) {
  (void)state;
  awf_client_limits *t = awf_client_limits_new(3, 4096, 5);
  struct racer r[THREADS];
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) {
    r[i] = (struct racer){.t = t, .id = i};
    assert_int_equal(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) {
    void *ret;
    pthread_join(th[i], &ret);
    assert_null(ret);
  }
  assert_int_equal(awf_client_limits_clients(t), 0); /* every entry freed once */
  awf_client_limits_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_is_a_fair_share),
      cmocka_unit_test(test_limit_per_client),
      cmocka_unit_test(test_keys),
      cmocka_unit_test(test_many_clients),
      cmocka_unit_test(test_log_rate_limit),
      cmocka_unit_test(test_admit),
      cmocka_unit_test(test_threads_share_one_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
