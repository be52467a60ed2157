/* Unit tests for sandbox/mountinfo.c and the pure parts of sandbox/logprotect.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logprotect.h"
#include "mountinfo.h"

static void test_parse_fields_and_escapes(void **state) {
  char line[] = "36 35 98:0 /mnt\\040dir/a\\134b /home/u\\011x rw,noatime master:1 - ext3 "
                "/dev/root rw,errors=continue";
  struct awf_mountinfo m;

  (void)state;
  assert_int_equal(awf_mountinfo_parse(line, &m), 0);
  assert_int_equal(m.id, 36);
  assert_string_equal(m.devid, "98:0");
  assert_string_equal(m.root, "/mnt dir/a\\b");
  assert_string_equal(m.mount_point, "/home/u\tx");
  assert_string_equal(m.options, "rw,noatime");
  assert_false(awf_mountinfo_read_only(&m));
}

static void test_parse_rejects_short_or_bad_lines(void **state) {
  char short_line[] = "36 35 98:0 / /";
  char bad_id[] = "x6 35 98:0 / / rw";
  char empty[] = "";
  struct awf_mountinfo m;

  (void)state;
  assert_int_equal(awf_mountinfo_parse(short_line, &m), -EINVAL);
  assert_int_equal(awf_mountinfo_parse(bad_id, &m), -EINVAL);
  assert_int_equal(awf_mountinfo_parse(empty, &m), -EINVAL);
}

static void test_read_only_option(void **state) {
  struct awf_mountinfo m = {.options = "ro,nosuid"};

  (void)state;
  assert_true(awf_mountinfo_read_only(&m));
  m.options = "rw,relatime";
  assert_false(awf_mountinfo_read_only(&m));
  m.options = "rw,errors=ro"; /* not a flag of its own */
  assert_false(awf_mountinfo_read_only(&m));
  m.options = "nosuid,ro";
  assert_true(awf_mountinfo_read_only(&m));
}

static int count_lines(void *ctx, const struct awf_mountinfo *m) {
  size_t *n = ctx;

  assert_true(m->mount_point[0] == '/');
  (*n)++;
  return 0;
}

static int stop_at_second(void *ctx, const struct awf_mountinfo *m) {
  size_t *n = ctx;

  (void)m;
  return ++*n == 2 ? 7 : 0;
}

static void test_each_reads_a_file_and_stops_on_request(void **state) {
  char path[] = "/tmp/awf-mountinfo-XXXXXX", buf[128];
  const char text[] = "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
                      "2 1 0:5 / /proc rw,nosuid - proc proc rw\n"
                      "3 1 0:6 / /tmp rw - tmpfs tmpfs rw"; /* no final newline */
  int fd = mkstemp(path);
  size_t n = 0;

  (void)state;
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
  close(fd);
  assert_int_equal(awf_mountinfo_each(path, buf, sizeof buf, count_lines, &n), 0);
  assert_int_equal(n, 3);
  n = 0;
  assert_int_equal(awf_mountinfo_each(path, buf, sizeof buf, stop_at_second, &n), 7);
  n = 0;
  assert_int_equal(awf_mountinfo_each(path, buf, 16, count_lines, &n), -ENAMETOOLONG);
  unlink(path);
  assert_int_equal(awf_mountinfo_each(path, buf, sizeof buf, count_lines, &n), -ENOENT);
}

static void test_fs_path(void **state) {
  char out[PATH_MAX];

  (void)state;
  assert_int_equal(awf_logprotect_fs_path("/home/u/a/log", "/home", "/", out, sizeof out), 0);
  assert_string_equal(out, "/u/a/log");
  assert_int_equal(awf_logprotect_fs_path("/home/u/a/log", "/", "/", out, sizeof out), 0);
  assert_string_equal(out, "/home/u/a/log");
  assert_int_equal(awf_logprotect_fs_path("/data/log", "/data", "/srv/x", out, sizeof out), 0);
  assert_string_equal(out, "/srv/x/log");
  assert_int_equal(awf_logprotect_fs_path("/data", "/data", "/srv/x/log", out, sizeof out), 0);
  assert_string_equal(out, "/srv/x/log");
  assert_int_equal(awf_logprotect_fs_path("/datax/log", "/data", "/", out, sizeof out),
                   -EINVAL);
  assert_int_equal(awf_logprotect_fs_path("pipe:[7]", "/", "/", out, sizeof out), -EINVAL);
  assert_int_equal(awf_logprotect_fs_path("/a/log", "/a", "/root", out, 8), -ENAMETOOLONG);
}

static void test_below(void **state) {
  (void)state;
  assert_string_equal(awf_logprotect_below("/u/a/log", "/"), "/u/a/log");
  assert_string_equal(awf_logprotect_below("/u/a/log", "/u"), "/a/log");
  assert_string_equal(awf_logprotect_below("/u/a/log", "/u/a/log"), "");
  assert_null(awf_logprotect_below("/u/a/log", "/u/ab"));
  assert_null(awf_logprotect_below("/u/a/log", "/u/a/log/x"));
  assert_null(awf_logprotect_below("/u", "/v"));
}

static void test_open_nothing_for_stdout_or_none(void **state) {
  struct awf_logprotect lp;
  char err[256];

  (void)state;
  assert_int_equal(awf_logprotect_open(NULL, &lp, err, sizeof err), 0);
  assert_int_equal(lp.fd, -1);
  assert_int_equal(lp.kind, AWF_LOG_UNGUARDED);
  assert_int_equal(awf_logprotect_open("-", &lp, err, sizeof err), 0);
  assert_int_equal(lp.fd, -1);
}

static void test_open_refuses_a_second_link(void **state) {
  char dir[] = "/tmp/awf-logprotect-XXXXXX", log[PATH_MAX], other[PATH_MAX], err[256];
  struct awf_logprotect lp;

  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(log, sizeof log, "%s/log", dir);
  snprintf(other, sizeof other, "%s/other", dir);
  assert_int_equal(awf_logprotect_open(log, &lp, err, sizeof err), 0);
  assert_true(lp.fd >= 0);
  assert_int_equal(lp.kind, AWF_LOG_REGULAR);
  assert_true(lp.fs_path[0] == '/' && strstr(lp.fs_path, "/log") != NULL);
  close(lp.fd);
  assert_int_equal(link(log, other), 0);
  assert_int_equal(awf_logprotect_open(log, &lp, err, sizeof err), -EMLINK);
  assert_int_equal(lp.fd, -1);
  assert_non_null(strstr(err, "2 hard links"));
  unlink(other);
  unlink(log);
  rmdir(dir);
}

static void test_open_leaves_a_character_device_alone(void **state) {
  struct awf_logprotect lp;
  char err[256];

  (void)state;
  assert_int_equal(awf_logprotect_open("/dev/null", &lp, err, sizeof err), 0);
  assert_int_equal(lp.kind, AWF_LOG_UNGUARDED);
  close(lp.fd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_fields_and_escapes),
      cmocka_unit_test(test_parse_rejects_short_or_bad_lines),
      cmocka_unit_test(test_read_only_option),
      cmocka_unit_test(test_each_reads_a_file_and_stops_on_request),
      cmocka_unit_test(test_fs_path),
      cmocka_unit_test(test_below),
      cmocka_unit_test(test_open_nothing_for_stdout_or_none),
      cmocka_unit_test(test_open_refuses_a_second_link),
      cmocka_unit_test(test_open_leaves_a_character_device_alone),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
