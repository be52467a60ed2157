/* Unit tests for sandbox/userns.c (why user namespaces are refused, and the
 * fix) and sandbox/fdpass.c (descriptors over a socketpair). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdpass.h"
#include "userns.h"

static struct awf_userns_facts open_system(int err) {
  struct awf_userns_facts f = {.err = err,
                               .max_user_namespaces = 15000,
                               .unprivileged_userns_clone = -1,
                               .apparmor_restrict = -1,
                               .seccomp_filtered = false,
                               .privileged = false};
  return f;
}

static void explain(const struct awf_userns_facts *f, char *out, size_t outlen) {
  memset(out, 'x', outlen);
  awf_userns_explain(f, out, outlen);
  assert_non_null(memchr(out, '\0', outlen));
}

static void test_max_user_namespaces_zero(void **state) {
  (void)state;
  char out[1024];
  struct awf_userns_facts f = open_system(ENOSPC);
  f.max_user_namespaces = 0;
  f.seccomp_filtered = true; /* the knob wins: it alone explains it */
  explain(&f, out, sizeof(out));
  assert_non_null(strstr(out, "user.max_user_namespaces is 0"));
  assert_non_null(strstr(out, "sysctl -w user.max_user_namespaces="));
  assert_non_null(strstr(out, "sudo awf"));
}

static void test_limit_reached(void **state) {
  (void)state;
  char out[1024];
  struct awf_userns_facts f = open_system(ENOSPC);
  explain(&f, out, sizeof(out));
  assert_non_null(strstr(out, "limit on user namespaces is reached"));
  assert_non_null(strstr(out, "15000"));
}

static void test_debian_knob(void **state) {
  (void)state;
  char out[1024];
  struct awf_userns_facts f = open_system(EPERM);
  f.unprivileged_userns_clone = 0;
  explain(&f, out, sizeof(out));
  assert_non_null(strstr(out, "kernel.unprivileged_userns_clone is 0"));
  assert_non_null(strstr(out, "sysctl -w kernel.unprivileged_userns_clone=1"));
  /* it binds unprivileged callers only */
  f.privileged = true;
  explain(&f, out, sizeof(out));
  assert_null(strstr(out, "unprivileged_userns_clone"));
}

static void test_apparmor(void **state) {
  (void)state;
  char out[1024];
  struct awf_userns_facts f = open_system(EPERM);
  f.apparmor_restrict = 1;
  explain(&f, out, sizeof(out));
  assert_non_null(strstr(out, "kernel.apparmor_restrict_unprivileged_userns is 1"));
  assert_non_null(strstr(out, "packaging/apparmor/awf"));
  assert_non_null(strstr(out, "apparmor_parser -r"));
  f.apparmor_restrict = 0;
  explain(&f, out, sizeof(out));
  assert_null(strstr(out, "AppArmor"));
}

static void test_seccomp(void **state) {
  (void)state;
  char out[1024];
  struct awf_userns_facts f = open_system(EPERM);
  f.seccomp_filtered = true;
  explain(&f, out, sizeof(out));
  assert_non_null(strstr(out, "a seccomp filter refuses to create user namespaces"));
  assert_non_null(strstr(out, "CLONE_NEWUSER"));
  assert_non_null(strstr(out, "Operation not permitted"));
  /* without a filter, EPERM is the kernel's or an LSM's */
  f.seccomp_filtered = false;
  explain(&f, out, sizeof(out));
  assert_null(strstr(out, "seccomp"));
  assert_non_null(strstr(out, "refused to create a user namespace"));
}

static void test_nesting_and_short_buffer(void **state) {
  (void)state;
  char out[1024], small[16];
  struct awf_userns_facts f = open_system(EUSERS);
  explain(&f, out, sizeof(out));
  assert_non_null(strstr(out, "nested user namespaces"));
  explain(&f, small, sizeof(small));
  assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void test_wanted(void **state) {
  (void)state;
  assert_true(awf_userns_wanted(true));
  if (geteuid() != 0)
    assert_true(awf_userns_wanted(false));
}

static void test_fdpass_roundtrip(void **state) {
  (void)state;
  int sp[2], fds[3], got[AWF_FDPASS_MAX];
  size_t n = 99;
  char tag = 0;
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
  for (int i = 0; i < 3; i++)
    fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
  assert_int_equal(awf_fdpass_send(sp[0], 'S', fds, 3), 0);
  assert_int_equal(awf_fdpass_recv(sp[1], &tag, got, 2, 3, &n), 0);
  assert_int_equal(tag, 'S');
  assert_int_equal(n, 3);
  for (int i = 0; i < 3; i++) {
    struct stat a, b;
    assert_int_equal(fstat(fds[i], &a), 0);
    assert_int_equal(fstat(got[i], &b), 0);
    assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    assert_true(got[i] != fds[i]);
    assert_int_equal(fcntl(got[i], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    close(got[i]);
  }
  /* a tag alone */
  assert_int_equal(awf_fdpass_send(sp[0], 'm', NULL, 0), 0);
  assert_int_equal(awf_fdpass_recv(sp[1], &tag, got, 0, 0, &n), 0);
  assert_int_equal(tag, 'm');
  assert_int_equal(n, 0);
  /* too many or too few: refused, and nothing leaks */
  assert_int_equal(awf_fdpass_send(sp[0], 'S', fds, 3), 0);
  assert_int_equal(awf_fdpass_recv(sp[1], &tag, got, 0, 1, &n), -EBADMSG);
  assert_int_equal(awf_fdpass_send(sp[0], 'S', fds, 1), 0);
  assert_int_equal(awf_fdpass_recv(sp[1], &tag, got, 2, 3, &n), -EBADMSG);
  assert_int_equal(awf_fdpass_send(sp[0], 'S', fds, AWF_FDPASS_MAX + 1), -E2BIG);
  /* the peer gone */
  close(sp[0]);
  assert_int_equal(awf_fdpass_recv(sp[1], &tag, got, 0, 0, &n), -EPIPE);
  close(sp[1]);
  for (int i = 0; i < 3; i++)
    close(fds[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_max_user_namespaces_zero),
      cmocka_unit_test(test_limit_reached),
      cmocka_unit_test(test_debian_knob),
      cmocka_unit_test(test_apparmor),
      cmocka_unit_test(test_seccomp),
      cmocka_unit_test(test_nesting_and_short_buffer),
      cmocka_unit_test(test_wanted),
      cmocka_unit_test(test_fdpass_roundtrip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
