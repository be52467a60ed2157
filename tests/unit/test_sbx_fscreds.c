/* Unit tests for sandbox/fscreds.c: file access with the caller's rights. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fscreds.h"

#define NOBODY 65534

static int can_open(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  close(fd);
  return 0;
}

static void test_caller_rights_then_back(void **state) {
  (void)state;
  if (geteuid() != 0) {
    print_message("skipped: switching file rights needs root\n");
    skip();
  }
  char path[] = "/tmp/awf-test-fscreds-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(chmod(path, 0600), 0);
  gid_t before[AWF_FSCREDS_MAX_GROUPS];
  int nbefore = getgroups(AWF_FSCREDS_MAX_GROUPS, before);

  unlink("/tmp/awf-test-fscreds-new");
  const gid_t groups[] = {NOBODY, 4243};
  struct awf_fscreds_saved saved;
  assert_int_equal(awf_fscreds_enter(NOBODY, NOBODY, groups, 2, &saved), 0);
  assert_int_equal(can_open(path), -EACCES); /* root's 0600 file: no DAC override */
  int fd2 = open("/tmp/awf-test-fscreds-new", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  assert_true(fd2 >= 0);
  struct stat st;
  assert_int_equal(fstat(fd2, &st), 0);
  close(fd2);
  assert_int_equal(st.st_uid, NOBODY); /* created as the caller */
  assert_int_equal(getgroups(0, NULL), 2);
  assert_int_equal(awf_fscreds_leave(&saved), 0);

  assert_int_equal(can_open(path), 0);
  assert_int_equal(getgroups(0, NULL), nbefore);
  assert_int_equal(awf_fscreds_leave(&saved), 0); /* a second leave changes nothing */
  unlink("/tmp/awf-test-fscreds-new");
  unlink(path);
}

static void test_too_many_groups(void **state) {
  (void)state;
  static gid_t many[AWF_FSCREDS_MAX_GROUPS + 1];
  struct awf_fscreds_saved saved;
  assert_int_equal(awf_fscreds_enter(NOBODY, NOBODY, many, AWF_FSCREDS_MAX_GROUPS + 1, &saved),
                   -E2BIG);
  assert_int_equal(awf_fscreds_leave(&saved), 0);
}

/* Rootless awf already is the caller: without the right to set groups,
 * asking for its own ids changes nothing and succeeds; asking for another
 * uid still fails. In a child that gives up root for good. */
static void test_already_the_caller(void **state) {
  (void)state;
  if (geteuid() != 0) {
    print_message("skipped: needs root to become nobody in a child\n");
    skip();
  }
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    gid_t g = NOBODY;
    if (setgroups(1, &g) != 0 || setresgid(NOBODY, NOBODY, NOBODY) != 0 ||
        setresuid(NOBODY, NOBODY, NOBODY) != 0)
      _exit(2);
    struct awf_fscreds_saved saved;
    gid_t other = 4243;
    if (awf_fscreds_enter(NOBODY, NOBODY, &other, 1, &saved) != 0 || saved.active)
      _exit(3);
    if (awf_fscreds_leave(&saved) != 0)
      _exit(4);
    if (awf_fscreds_enter(0, 0, NULL, 0, &saved) != -EPERM)
      _exit(5);
    _exit(0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_caller_rights_then_back),
      cmocka_unit_test(test_too_many_groups),
      cmocka_unit_test(test_already_the_caller),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
