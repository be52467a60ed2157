/* Unit tests for common/textfile.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "textfile.h"
#include "tmpdir_fixture.h"

static int setup(void **state) {
  return tmp_setup(state, "/tmp/awf-test-textfile-XXXXXX", "f");
}

static int teardown(void **state) { return tmp_teardown(state); }

static void test_reads_bytes_with_nuls(void **state) {
  struct tmp *t = *state;
  const char data[] = "a\0b\nno newline";
  char *buf, err[256];
  size_t len;

  tmp_write_file(t->path, data, sizeof data - 1);
  assert_int_equal(awf_textfile_read(t->path, 1024, &buf, &len, err, sizeof err), 0);
  assert_int_equal(len, sizeof data - 1);
  assert_memory_equal(buf, data, len);
  assert_int_equal(buf[len], '\0');
  free(buf);
}

static void test_empty_file(void **state) {
  struct tmp *t = *state;
  char *buf, err[256];
  size_t len = 99;

  tmp_write_file(t->path, "", 0);
  assert_int_equal(awf_textfile_read(t->path, 0, &buf, &len, err, sizeof err), 0);
  assert_int_equal(len, 0);
  assert_non_null(buf);
  assert_int_equal(buf[0], '\0');
  free(buf);
}

static void test_size_cap_boundary(void **state) {
  struct tmp *t = *state;
  char *buf, err[256];
  size_t len;

  tmp_write_file(t->path, "0123456789", 10);
  assert_int_equal(awf_textfile_read(t->path, 10, &buf, &len, err, sizeof err), 0);
  assert_int_equal(len, 10);
  free(buf);
  assert_int_equal(awf_textfile_read(t->path, 9, &buf, &len, err, sizeof err), -EFBIG);
  assert_null(buf);
  assert_non_null(strstr(err, t->path));
  assert_non_null(strstr(err, "larger than 9 bytes"));
}

/* Larger than the read chunk and not a multiple of it: growth is exact. */
static void test_large_file(void **state) {
  struct tmp *t = *state;
  size_t n = 3 * 65536 + 12345, i, len;
  char *data = malloc(n), *buf, err[256];

  assert_non_null(data);
  for (i = 0; i < n; i++)
    data[i] = (char)(i * 7);
  tmp_write_file(t->path, data, n);
  assert_int_equal(awf_textfile_read(t->path, n, &buf, &len, err, sizeof err), 0);
  assert_int_equal(len, n);
  assert_memory_equal(buf, data, n);
  free(buf);
  assert_int_equal(awf_textfile_read(t->path, n - 1, &buf, &len, err, sizeof err), -EFBIG);
  free(data);
}

static void test_errors_name_the_path(void **state) {
  struct tmp *t = *state;
  char *buf, err[256];
  size_t len;

  assert_int_equal(awf_textfile_read(t->path, 10, &buf, &len, err, sizeof err), -ENOENT);
  assert_non_null(strstr(err, t->path));
  assert_int_equal(awf_textfile_read(t->dir, 10, &buf, &len, err, sizeof err), -EISDIR);
  assert_int_equal(awf_textfile_read("", 10, &buf, &len, err, sizeof err), -EINVAL);
  assert_int_equal(awf_textfile_read(NULL, 10, &buf, &len, err, sizeof err), -EINVAL);
  assert_int_equal(awf_textfile_read(t->dir, SIZE_MAX, &buf, &len, err, sizeof err), -EINVAL);
}

/* A FIFO, as with --env-file <(...): read to EOF. */
static void test_fifo(void **state) {
  struct tmp *t = *state;
  char *buf, err[256];
  size_t len;
  pid_t pid;
  int status;

  assert_int_equal(mkfifo(t->path, 0600), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    FILE *f = fopen(t->path, "w");

    if (f == NULL)
      _exit(1);
    fputs("A=1\nB=2\n", f);
    _exit(fclose(f) == 0 ? 0 : 1);
  }
  assert_int_equal(awf_textfile_read(t->path, 100, &buf, &len, err, sizeof err), 0);
  assert_int_equal(len, 8);
  assert_memory_equal(buf, "A=1\nB=2\n", 8);
  free(buf);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_reads_bytes_with_nuls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_size_cap_boundary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_errors_name_the_path, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
