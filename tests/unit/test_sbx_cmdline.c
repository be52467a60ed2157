/* Unit tests for sandbox/cmdline.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmdline.h"

static void test_needs_shell_each_char(void **state) {
  const char *set = "|&;<>()$`\\\"' *?[#~=%\t\n\r\v\f";
  const char *p;

  (void)state;
  for (p = set; *p; p++) {
    char word[8];

    snprintf(word, sizeof word, "ab%cc", *p);
    assert_true(awf_cmdline_needs_shell(word));
    word[0] = *p;
    word[1] = '\0';
    assert_true(awf_cmdline_needs_shell(word));
  }
  /* The documented set is exactly what is checked. */
  assert_string_equal(set, AWF_CMDLINE_SHELL_CHARS);
}

static void test_plain_words(void **state) {
  const char *plain[] = {"python3",
                         "/usr/bin/env",
                         "a-b_c.d/e+f,g@h:i",
                         "node20",
                         "./run.sh",
                         "x!y",
                         "{a}",
                         "]",
                         "\xc3\xa9t\xc3\xa9",
                         ""};
  size_t i;

  (void)state;
  for (i = 0; i < sizeof plain / sizeof plain[0]; i++)
    assert_false(awf_cmdline_needs_shell(plain[i]));
}

static void test_argv_direct(void **state) {
  char *argv[] = {"python3", NULL};
  const char *out[4];

  (void)state;
  assert_int_equal(awf_cmdline_argv(1, argv, out, 4), 1);
  assert_ptr_equal(out[0], argv[0]);
  assert_null(out[1]);
  /* Room for the word and its NULL is enough. */
  assert_int_equal(awf_cmdline_argv(1, argv, out, 2), 1);
  assert_int_equal(awf_cmdline_argv(1, argv, out, 1), -ENOBUFS);
}

static void test_argv_shell(void **state) {
  char *argv[] = {"curl -s https://example.com | head -1", NULL};
  const char *out[4];

  (void)state;
  assert_int_equal(awf_cmdline_argv(1, argv, out, 4), 3);
  assert_string_equal(out[0], "/bin/sh");
  assert_string_equal(out[1], "-c");
  assert_ptr_equal(out[2], argv[0]);
  assert_null(out[3]);
  assert_int_equal(awf_cmdline_argv(1, argv, out, 3), -ENOBUFS);
}

/* Several words are exec'd as given, shell syntax and all. */
static void test_argv_several_words(void **state) {
  char *argv[] = {"bash", "-c", "echo $HOME; exit 3", "a b", NULL};
  const char *out[5];
  int i;

  (void)state;
  assert_int_equal(awf_cmdline_argv(4, argv, out, 5), 4);
  for (i = 0; i < 4; i++)
    assert_ptr_equal(out[i], argv[i]);
  assert_null(out[4]);
  assert_int_equal(awf_cmdline_argv(4, argv, out, 4), -ENOBUFS);
}

static void test_argv_invalid(void **state) {
  char *empty[] = {"", NULL};
  char *null_first[] = {NULL};
  char *hole[] = {"a", NULL, "c", NULL};
  const char *out[8];

  (void)state;
  assert_int_equal(awf_cmdline_argv(0, empty, out, 8), -EINVAL);
  assert_int_equal(awf_cmdline_argv(-1, empty, out, 8), -EINVAL);
  assert_int_equal(awf_cmdline_argv(1, empty, out, 8), -EINVAL);
  assert_int_equal(awf_cmdline_argv(1, null_first, out, 8), -EINVAL);
  assert_int_equal(awf_cmdline_argv(1, NULL, out, 8), -EINVAL);
  assert_int_equal(awf_cmdline_argv(3, hole, out, 8), -EINVAL);
}

/* Statuses from real children. */
static int child_status(int how) {
  pid_t pid = fork();
  int st;

  assert_true(pid >= 0);
  if (pid == 0) {
    if (how >= 0)
      _exit(how);
    signal(-how, SIG_DFL);
    raise(-how);
    _exit(99);
  }
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return st;
}

static void test_exit_status_real(void **state) {
  (void)state;
  assert_int_equal(awf_cmdline_exit_status(child_status(0)), 0);
  assert_int_equal(awf_cmdline_exit_status(child_status(1)), 1);
  assert_int_equal(awf_cmdline_exit_status(child_status(42)), 42);
  assert_int_equal(awf_cmdline_exit_status(child_status(255)), 255);
  assert_int_equal(awf_cmdline_exit_status(child_status(-SIGKILL)), 128 + SIGKILL);
  assert_int_equal(awf_cmdline_exit_status(child_status(-SIGTERM)), 128 + SIGTERM);
  assert_int_equal(awf_cmdline_exit_status(child_status(-SIGUSR1)), 128 + SIGUSR1);
}

static void test_exit_status_synthetic(void **state) {
  int sig;

  (void)state;
  for (sig = 1; sig < 65; sig++) {
    if (sig == 0x7f)
      continue;
    assert_int_equal(awf_cmdline_exit_status(sig), 128 + sig);        /* signaled */
    assert_int_equal(awf_cmdline_exit_status(sig | 0x80), 128 + sig); /* core dumped */
  }
  assert_int_equal(awf_cmdline_exit_status(7 << 8), 7);
  assert_int_equal(awf_cmdline_exit_status((SIGSTOP << 8) | 0x7f), -EINVAL); /* stopped */
  assert_int_equal(awf_cmdline_exit_status(0xffff), -EINVAL);                /* continued */
}

static void test_exec_failure_table(void **state) {
  static const int not_found[] = {ENOENT, ENOTDIR, ENAMETOOLONG, ELOOP};
  static const int cannot[] = {EACCES, EPERM,   ENOEXEC, EISDIR, ETXTBSY, E2BIG,
                               ENOMEM, ELIBBAD, EFAULT,  EINVAL, EIO,     0};
  size_t i;

  (void)state;
  for (i = 0; i < sizeof not_found / sizeof not_found[0]; i++) {
    assert_int_equal(awf_cmdline_exec_failure_status(not_found[i]), AWF_EXIT_NOT_FOUND);
    assert_int_equal(awf_cmdline_exec_failure_status(-not_found[i]), AWF_EXIT_NOT_FOUND);
  }
  for (i = 0; i < sizeof cannot / sizeof cannot[0]; i++) {
    assert_int_equal(awf_cmdline_exec_failure_status(cannot[i]), AWF_EXIT_CANNOT_EXEC);
    assert_int_equal(awf_cmdline_exec_failure_status(-cannot[i]), AWF_EXIT_CANNOT_EXEC);
  }
  assert_int_equal(AWF_EXIT_NOT_FOUND, 127);
  assert_int_equal(AWF_EXIT_CANNOT_EXEC, 126);
  assert_int_equal(AWF_EXIT_FAILURE, 125);
  assert_int_equal(AWF_EXIT_TIMEOUT, 124);
}

/* The errno a real execve gives, mapped. */
static int exec_errno(const char *path) {
  char *const argv[] = {(char *)path, NULL};
  char *const envp[] = {NULL};

  execve(path, argv, envp);
  return errno;
}

static void test_exec_failure_real(void **state) {
  char dir[] = "/tmp/awf-test-cmdline-XXXXXX", file[64];
  FILE *f;

  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(file, sizeof file, "%s/script", dir);
  f = fopen(file, "w");
  assert_non_null(f);
  fputs("#!/bin/sh\nexit 0\n", f);
  fclose(f);

  assert_int_equal(awf_cmdline_exec_failure_status(exec_errno("/nonexistent/awf-x")), 127);
  assert_int_equal(awf_cmdline_exec_failure_status(exec_errno(dir)), 126);  /* EACCES */
  assert_int_equal(awf_cmdline_exec_failure_status(exec_errno(file)), 126); /* not +x */
  {
    char notdir[96];

    snprintf(notdir, sizeof notdir, "%s/x", file);
    assert_int_equal(exec_errno(notdir), ENOTDIR);
    assert_int_equal(awf_cmdline_exec_failure_status(exec_errno(notdir)), 127);
  }
  unlink(file);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_needs_shell_each_char),
      cmocka_unit_test(test_plain_words),
      cmocka_unit_test(test_argv_direct),
      cmocka_unit_test(test_argv_shell),
      cmocka_unit_test(test_argv_several_words),
      cmocka_unit_test(test_argv_invalid),
      cmocka_unit_test(test_exit_status_real),
      cmocka_unit_test(test_exit_status_synthetic),
      cmocka_unit_test(test_exec_failure_table),
      cmocka_unit_test(test_exec_failure_real),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
