/* Unit tests for sandbox/cgroup.c's parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "cgroup.h"

static void test_size(void **state) {
  (void)state;
  uint64_t v = 0;
  assert_int_equal(awf_cgroup_parse_size("512m", &v), 0);
  assert_true(v == UINT64_C(512) << 20);
  assert_int_equal(awf_cgroup_parse_size("6g", &v), 0);
  assert_true(v == UINT64_C(6) << 30);
  assert_int_equal(awf_cgroup_parse_size("6G", &v), 0);
  assert_true(v == UINT64_C(6) << 30);
  assert_int_equal(awf_cgroup_parse_size("64MB", &v), 0);
  assert_true(v == UINT64_C(64) << 20);
  assert_int_equal(awf_cgroup_parse_size("2048k", &v), 0);
  assert_true(v == UINT64_C(2) << 20);
  assert_int_equal(awf_cgroup_parse_size("1t", &v), 0);
  assert_true(v == UINT64_C(1) << 40);
  assert_int_equal(awf_cgroup_parse_size("1048576", &v), 0);
  assert_true(v == UINT64_C(1) << 20);
  v = 7;
  const char *bad[] = {"",
                       "0",
                       "1048575",
                       "1023k",
                       "m",
                       "-1g",
                       "+1g",
                       " 1g",
                       "1g ",
                       "1.5g",
                       "1x",
                       "1gg",
                       "1kb2",
                       "0x100000",
                       "1025t",
                       "99999999999999999999",
                       "18446744073709551616",
                       NULL};
  for (size_t i = 0; bad[i]; i++) {
    assert_int_equal(awf_cgroup_parse_size(bad[i], &v), -EINVAL);
    assert_true(v == 7);
  }
  assert_int_equal(awf_cgroup_parse_size(NULL, &v), -EINVAL);
}

static void test_pids(void **state) {
  (void)state;
  uint64_t v = 0;
  assert_int_equal(awf_cgroup_parse_pids("1000", &v), 0);
  assert_true(v == 1000);
  assert_int_equal(awf_cgroup_parse_pids("1", &v), 0);
  assert_true(v == 1);
  assert_int_equal(awf_cgroup_parse_pids("4194304", &v), 0);
  assert_true(v == 4194304);
  const char *bad[] = {"",    "0",   "-1",  "4194305", "99999999999999999999999",
                       "10 ", "1e3", "1.5", "max",     NULL};
  for (size_t i = 0; bad[i]; i++)
    assert_int_equal(awf_cgroup_parse_pids(bad[i], &v), -EINVAL);
}

static void test_cpus(void **state) {
  (void)state;
  uint64_t q = 0;
  assert_int_equal(awf_cgroup_parse_cpus("1.5", &q), 0);
  assert_true(q == 150000);
  assert_int_equal(awf_cgroup_parse_cpus("2", &q), 0);
  assert_true(q == 200000);
  assert_int_equal(awf_cgroup_parse_cpus("0.01", &q), 0);
  assert_true(q == 1000);
  assert_int_equal(awf_cgroup_parse_cpus(".5", &q), 0);
  assert_true(q == 50000);
  assert_int_equal(awf_cgroup_parse_cpus("4096", &q), 0);
  assert_true(q == UINT64_C(409600000));
  const char *bad[] = {"",    "0",   "0.0",  "0.009", "-1", "+1", "4096.5", "1e3",
                       "inf", "nan", "0x10", "1.5.",  " 1", "1 ", ".",      NULL};
  for (size_t i = 0; bad[i]; i++)
    assert_int_equal(awf_cgroup_parse_cpus(bad[i], &q), -EINVAL);
}

static void test_defaults(void **state) {
  (void)state;
  struct awf_cgroup_limits l;
  awf_cgroup_limits_default(&l);
  assert_true(l.memory == UINT64_C(6) << 30);
  assert_string_equal(l.memory_text, "6g");
  assert_true(l.pids == 1000);
  assert_true(l.cpu_quota_us == 0);
  for (int c = 0; c < AWF_CG_N; c++)
    assert_false(l.explicit_[c]);
}

static const char hybrid_cgroup[] = "9:name=systemd:/\n"
                                    "8:pids:/\n"
                                    "4:memory:/process_api/80a0\n"
                                    "2:cpu,cpuacct:/a:b/c\n"
                                    "0::/\n";

static void test_proc_path(void **state) {
  (void)state;
  char out[256];
  assert_int_equal(awf_cgroup_proc_path(hybrid_cgroup, "memory", out, sizeof(out)), 0);
  assert_string_equal(out, "/process_api/80a0");
  assert_int_equal(awf_cgroup_proc_path(hybrid_cgroup, "pids", out, sizeof(out)), 0);
  assert_string_equal(out, "/");
  assert_int_equal(awf_cgroup_proc_path(hybrid_cgroup, "cpu", out, sizeof(out)), 0);
  assert_string_equal(out, "/a:b/c"); /* the path may hold ':' */
  assert_int_equal(awf_cgroup_proc_path(hybrid_cgroup, "cpuacct", out, sizeof(out)), 0);
  assert_int_equal(awf_cgroup_proc_path(hybrid_cgroup, NULL, out, sizeof(out)), 0);
  assert_string_equal(out, "/");
  /* "name=systemd" is not the "systemd" controller; "cpus" is not "cpu" */
  assert_int_equal(awf_cgroup_proc_path(hybrid_cgroup, "systemd", out, sizeof(out)), -ENOENT);
  assert_int_equal(awf_cgroup_proc_path("1:cpuset:/x\n", "cpu", out, sizeof(out)), -ENOENT);
  assert_int_equal(awf_cgroup_proc_path("0::/user.slice/u.scope\n", "memory", out, sizeof(out)),
                   -ENOENT);
  assert_int_equal(awf_cgroup_proc_path("0::/user.slice/u.scope", NULL, out, sizeof(out)), 0);
  assert_string_equal(out, "/user.slice/u.scope");
  assert_int_equal(awf_cgroup_proc_path("garbage\n\n0::relative\n", NULL, out, sizeof(out)),
                   -ENOENT);
  assert_int_equal(awf_cgroup_proc_path("0::/abcdefgh\n", NULL, out, 5), -ENAMETOOLONG);
  assert_int_equal(awf_cgroup_proc_path("", NULL, out, sizeof(out)), -ENOENT);
}

static const char mountinfo[] =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 master:3 - cgroup cgroup "
    "rw,cpu,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 /process_api /sys/fs/cgroup/my\\040memory rw,relatime - cgroup cgroup "
    "rw,memory\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
    "50 22 0:50 / /mnt/fake rw - tmpfs memory rw,memory\n";

static void test_find_mount(void **state) {
  (void)state;
  struct awf_cgroup_mount m;
  assert_int_equal(awf_cgroup_find_mount(mountinfo, "cpu", &m), 0);
  assert_string_equal(m.point, "/sys/fs/cgroup/cpu,cpuacct");
  assert_string_equal(m.root, "/");
  assert_int_equal(awf_cgroup_find_mount(mountinfo, "cpuacct", &m), 0);
  assert_string_equal(m.point, "/sys/fs/cgroup/cpu,cpuacct");
  assert_int_equal(awf_cgroup_find_mount(mountinfo, "memory", &m), 0);
  assert_string_equal(m.point, "/sys/fs/cgroup/my memory"); /* \040 decoded */
  assert_string_equal(m.root, "/process_api");
  assert_int_equal(awf_cgroup_find_mount(mountinfo, NULL, &m), 0);
  assert_string_equal(m.point, "/sys/fs/cgroup/unified");
  /* no pids hierarchy; a tmpfs named "memory" is no cgroup; name=systemd is no controller */
  assert_int_equal(awf_cgroup_find_mount(mountinfo, "pids", &m), -ENOENT);
  assert_int_equal(awf_cgroup_find_mount(mountinfo, "systemd", &m), -ENOENT);
  assert_int_equal(awf_cgroup_find_mount("", NULL, &m), -ENOENT);
  assert_int_equal(awf_cgroup_find_mount("1 2 3 4\n - cgroup2\n", NULL, &m), -ENOENT);
  /* pure v2, no hybrid */
  assert_int_equal(awf_cgroup_find_mount("30 23 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 "
                                         "cgroup2 rw,nsdelegate,memory_recursiveprot",
                                         NULL, &m),
                   0);
  assert_string_equal(m.point, "/sys/fs/cgroup");
}

static void test_dir(void **state) {
  (void)state;
  struct awf_cgroup_mount m;
  char out[256];
  strcpy(m.root, "/");
  strcpy(m.point, "/sys/fs/cgroup");
  assert_int_equal(awf_cgroup_dir(&m, "/", out, sizeof(out)), 0);
  assert_string_equal(out, "/sys/fs/cgroup");
  assert_int_equal(awf_cgroup_dir(&m, "/system.slice/x.service", out, sizeof(out)), 0);
  assert_string_equal(out, "/sys/fs/cgroup/system.slice/x.service");
  strcpy(m.root, "/process_api");
  strcpy(m.point, "/sys/fs/cgroup/memory");
  assert_int_equal(awf_cgroup_dir(&m, "/process_api/80a0", out, sizeof(out)), 0);
  assert_string_equal(out, "/sys/fs/cgroup/memory/80a0");
  assert_int_equal(awf_cgroup_dir(&m, "/process_api", out, sizeof(out)), 0);
  assert_string_equal(out, "/sys/fs/cgroup/memory");
  assert_int_equal(awf_cgroup_dir(&m, "/process_apix/1", out, sizeof(out)), -ENOENT);
  assert_int_equal(awf_cgroup_dir(&m, "/other", out, sizeof(out)), -ENOENT);
  assert_int_equal(awf_cgroup_dir(&m, "/process_api/80a0", out, 10), -ENAMETOOLONG);
}

static void test_list_has(void **state) {
  (void)state;
  assert_true(awf_cgroup_list_has("cpu memory pids\n", "pids"));
  assert_true(awf_cgroup_list_has("cpu memory pids\n", "cpu"));
  assert_true(awf_cgroup_list_has("rw,cpu,cpuacct", "cpuacct"));
  assert_false(awf_cgroup_list_has("cpuset io memory", "cpu"));
  assert_false(awf_cgroup_list_has("", "cpu"));
  assert_false(awf_cgroup_list_has("cpu", ""));
}

static void test_keyed_value(void **state) {
  (void)state;
  uint64_t v = 0;
  const char events[] = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
  assert_int_equal(awf_cgroup_keyed_value(events, "oom_kill", &v), 0);
  assert_true(v == 2);
  assert_int_equal(awf_cgroup_keyed_value(events, "oom", &v), 0);
  assert_true(v == 3);
  assert_int_equal(awf_cgroup_keyed_value(events, "max", &v), 0);
  assert_true(v == 12);
  const char v1[] = "oom_kill_disable 0\nunder_oom 0\noom_kill 1";
  assert_int_equal(awf_cgroup_keyed_value(v1, "oom_kill", &v), 0);
  assert_true(v == 1);
  assert_int_equal(awf_cgroup_keyed_value(v1, "oom", &v), -ENOENT);
  assert_int_equal(awf_cgroup_keyed_value("oom_kill x\n", "oom_kill", &v), -ENOENT);
  assert_int_equal(awf_cgroup_keyed_value("oom_kill 1x\n", "oom_kill", &v), -EINVAL);
  assert_int_equal(awf_cgroup_keyed_value("", "oom_kill", &v), -ENOENT);
}

static void test_starttime(void **state) {
  (void)state;
  unsigned long long st = 0;
  const char stat[] = "1164 (a) b) c) S 1 1164 1164 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 "
                      "58785 4096 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1\n";
  assert_int_equal(awf_cgroup_stat_starttime(stat, &st), 0);
  assert_true(st == 58785);
  assert_int_equal(awf_cgroup_stat_starttime("12 (x) S 1 2 3", &st), -EINVAL);
  assert_int_equal(awf_cgroup_stat_starttime("no paren", &st), -EINVAL);
  assert_int_equal(awf_cgroup_stat_starttime("", &st), -EINVAL);
}

static void test_name(void **state) {
  (void)state;
  pid_t pid = 0;
  unsigned long long st = 0;
  assert_int_equal(awf_cgroup_parse_name("awf-1164-58785", &pid, &st), 0);
  assert_int_equal(pid, 1164);
  assert_true(st == 58785);
  const char *bad[] = {"awf-",      "awf-1",    "awf-1-",   "awf--1-2",          "awf-0-5",
                       "awf-1-2-3", "awf-1-2x", "xawf-1-2", "awf-99999999999-1", "awf-1- 2",
                       "awf-+1-2",  NULL};
  for (size_t i = 0; bad[i]; i++)
    assert_int_equal(awf_cgroup_parse_name(bad[i], &pid, &st), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_size),        cmocka_unit_test(test_pids),
      cmocka_unit_test(test_cpus),        cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_proc_path),   cmocka_unit_test(test_find_mount),
      cmocka_unit_test(test_dir),         cmocka_unit_test(test_list_has),
      cmocka_unit_test(test_keyed_value), cmocka_unit_test(test_starttime),
      cmocka_unit_test(test_name),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
