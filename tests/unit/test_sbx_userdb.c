/* Unit tests for sandbox/userdb.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "userdb.h"
#include "tmpdir_fixture.h"

#define MEM(s) (s), (sizeof(s) - 1)

static int setup(void **state) { return tmp_setup(state, "/tmp/awf-test-userdb-XXXXXX", "db"); }

static int teardown(void **state) { return tmp_teardown(state); }

/* ---- passwd ---- */

static const char passwd[] = "# local users\n"
                             "\n"
                             "root:x:0:0:root:/root:/bin/bash\n"
                             "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                             "+nisuser::2000:2000:::\n"
                             "runner:x:1001:118:GitHub runner,,,:/home/runner:/bin/bash\n"
                             "nohome:x:1002:1002:::\n"
                             "zeros:x:0001003:01003::/z:/bin/sh\n";

static void test_lookup_basic(void **state) {
  struct awf_userdb_user u;
  char err[256];

  (void)state;
  assert_int_equal(awf_userdb_user_by_uid_mem(MEM(passwd), "/etc/passwd", 1001, &u, err,
                                              sizeof err),
                   0);
  assert_string_equal(u.name, "runner");
  assert_int_equal(u.uid, 1001);
  assert_int_equal(u.gid, 118);
  assert_string_equal(u.home, "/home/runner");
  assert_string_equal(u.shell, "/bin/bash");

  assert_int_equal(awf_userdb_user_by_uid_mem(MEM(passwd), "p", 0, &u, err, sizeof err), 0);
  assert_string_equal(u.name, "root");
  assert_string_equal(u.home, "/root");
}

static void test_empty_home_and_shell_default(void **state) {
  struct awf_userdb_user u;
  char err[256];

  (void)state;
  assert_int_equal(awf_userdb_user_by_uid_mem(MEM(passwd), "p", 1002, &u, err, sizeof err), 0);
  assert_string_equal(u.name, "nohome");
  assert_string_equal(u.home, "/");
  assert_string_equal(u.shell, "/bin/sh");
}

static void test_leading_zeros(void **state) {
  struct awf_userdb_user u;
  char err[256];

  (void)state;
  assert_int_equal(awf_userdb_user_by_uid_mem(MEM(passwd), "p", 1003, &u, err, sizeof err), 0);
  assert_string_equal(u.name, "zeros");
  assert_int_equal(u.gid, 1003);
}

static void test_nis_lines_are_not_entries(void **state) {
  struct awf_userdb_user u;
  char err[256];

  (void)state;
  assert_int_equal(awf_userdb_user_by_uid_mem(MEM(passwd), "/etc/passwd", 2000, &u, err,
                                              sizeof err),
                   -ENOENT);
  /* Comments, blank and NIS lines are not "malformed". */
  assert_string_equal(err, "uid 2000 not found in /etc/passwd");
}

static void test_not_found_message(void **state) {
  struct awf_userdb_user u;
  char err[256];

  (void)state;
  assert_int_equal(awf_userdb_user_by_uid_mem(MEM(passwd), "/etc/passwd", 1234, &u, err,
                                              sizeof err),
                   -ENOENT);
  assert_string_equal(err, "uid 1234 not found in /etc/passwd");
  assert_int_equal(awf_userdb_user_by_uid_mem("", 0, "/etc/passwd", 0, &u, err, sizeof err),
                   -ENOENT);
}

/* Every kind of malformed line is skipped, even when it names the uid, and
 * counted in the message. */
static void test_malformed_lines_skipped(void **state) {
  static const char bad[] = "six:x:500:500:gecos:/home/six\n"      /* 6 fields */
                            "eight:x:500:500:g:/h:/bin/sh:extra\n" /* 8 fields */
                            "alpha:x:5x0:500::/h:/bin/sh\n"        /* bad uid */
                            "neg:x:-500:500::/h:/bin/sh\n"         /* sign */
                            "plus:x:+500:500::/h:/bin/sh\n"        /* sign */
                            "space:x: 500:500::/h:/bin/sh\n"       /* blank */
                            "big:x:4294967295:500::/h:/bin/sh\n"   /* (uid_t)-1 */
                            "huge:x:99999999999:500::/h:/bin/sh\n" /* overflow */
                            "nouid:x::500::/h:/bin/sh\n"           /* empty uid */
                            "badgid:x:500:g::/h:/bin/sh\n"         /* bad gid */
                            ":x:500:500::/h:/bin/sh\n"             /* empty name */
                            "ct\x1brl:x:500:500::/h:/bin/sh\n"     /* control byte */
                            "nul\0x:x:500:500::/h:/bin/sh\n"       /* NUL */
                            "\n"
                            "ok:x:501:501::/h:/bin/sh";
  struct awf_userdb_user u;
  char err[256];

  (void)state;
  assert_int_equal(awf_userdb_user_by_uid_mem(MEM(bad), "/etc/passwd", 500, &u, err,
                                              sizeof err),
                   -ENOENT);
  assert_string_equal(err, "uid 500 not found in /etc/passwd (13 malformed lines skipped)");
  /* The good line after them, without a final newline, is found. */
  assert_int_equal(awf_userdb_user_by_uid_mem(MEM(bad), "p", 501, &u, err, sizeof err), 0);
  assert_string_equal(u.name, "ok");
  assert_string_equal(u.shell, "/bin/sh");
}

static void test_one_malformed_singular(void **state) {
  static const char bad[] = "six:x:500:500:gecos:/home/six\n";
  struct awf_userdb_user u;
  char err[256];

  (void)state;
  assert_int_equal(awf_userdb_user_by_uid_mem(MEM(bad), "f", 500, &u, err, sizeof err),
                   -ENOENT);
  assert_string_equal(err, "uid 500 not found in f (1 malformed line skipped)");
}

static void test_first_match_wins(void **state) {
  static const char dup[] = "broken:x:700:700::/b\n"
                            "first:x:700:1::/one:/bin/sh\n"
                            "second:x:700:2::/two:/bin/sh\n";
  struct awf_userdb_user u;
  char err[256];

  (void)state;
  assert_int_equal(awf_userdb_user_by_uid_mem(MEM(dup), "p", 700, &u, err, sizeof err), 0);
  assert_string_equal(u.name, "first");
  assert_string_equal(u.home, "/one");
}

static void test_max_uid(void **state) {
  static const char d[] = "top:x:4294967294:4294967294::/t:/bin/sh\n";
  struct awf_userdb_user u;
  char err[256];

  (void)state;
  assert_int_equal(awf_userdb_user_by_uid_mem(MEM(d), "p", 4294967294u, &u, err, sizeof err),
                   0);
  assert_int_equal(u.gid, 4294967294u);
}

/* A huge line (long gecos) before and within the wanted entry. */
static void test_huge_lines(void **state) {
  size_t big = 1 << 20, off = 0;
  char *d = malloc(2 * big + 256);
  struct awf_userdb_user u;
  char err[256];

  (void)state;
  assert_non_null(d);
  off += (size_t)sprintf(d + off, "a:x:1:1:");
  memset(d + off, 'g', big);
  off += big;
  off += (size_t)sprintf(d + off, ":/a:/bin/sh\nb:x:2:2:");
  memset(d + off, 'h', big);
  off += big;
  off += (size_t)sprintf(d + off, ":/b:/bin/zsh");
  assert_int_equal(awf_userdb_user_by_uid_mem(d, off, "p", 2, &u, err, sizeof err), 0);
  assert_string_equal(u.name, "b");
  assert_string_equal(u.shell, "/bin/zsh");
  free(d);
}

static void test_field_too_long(void **state) {
  size_t off = 0;
  char *d = malloc(3 * AWF_USERDB_PATH_MAX + 512);
  struct awf_userdb_user u;
  char err[256];

  (void)state;
  assert_non_null(d);
  off += (size_t)sprintf(d + off, "# c\nlong:x:42:42::/");
  memset(d + off, 'h', AWF_USERDB_PATH_MAX - 2); /* home of exactly PATH_MAX - 1 bytes */
  off += AWF_USERDB_PATH_MAX - 2;
  off += (size_t)sprintf(d + off, ":/bin/sh\nlonger:x:43:43::/");
  memset(d + off, 'h', AWF_USERDB_PATH_MAX - 1); /* PATH_MAX bytes: no room for NUL */
  off += AWF_USERDB_PATH_MAX - 1;
  off += (size_t)sprintf(d + off, ":/bin/sh\n");

  assert_int_equal(awf_userdb_user_by_uid_mem(d, off, "/etc/passwd", 42, &u, err, sizeof err),
                   0);
  assert_int_equal(strlen(u.home), AWF_USERDB_PATH_MAX - 1);
  assert_int_equal(awf_userdb_user_by_uid_mem(d, off, "/etc/passwd", 43, &u, err, sizeof err),
                   -ENAMETOOLONG);
  assert_string_equal(err, "/etc/passwd:3: home directory of uid 43 is too long");
  free(d);
}

static void test_name_too_long(void **state) {
  char d[AWF_USERDB_NAME_MAX + 64];
  struct awf_userdb_user u;
  char err[256];
  size_t off;

  (void)state;
  memset(d, 'n', AWF_USERDB_NAME_MAX + 1);
  off = AWF_USERDB_NAME_MAX + 1;
  off += (size_t)sprintf(d + off, ":x:9:9::/h:/bin/sh");
  assert_int_equal(awf_userdb_user_by_uid_mem(d, off, "p", 9, &u, err, sizeof err),
                   -ENAMETOOLONG);
  assert_non_null(strstr(err, "user name of uid 9"));
  /* One byte shorter fits. */
  assert_int_equal(awf_userdb_user_by_uid_mem(d + 1, off - 1, "p", 9, &u, err, sizeof err), 0);
  assert_int_equal(strlen(u.name), AWF_USERDB_NAME_MAX);
}

static void test_lookup_from_file(void **state) {
  struct tmp *t = *state;
  struct awf_userdb_user u;
  char err[256], expect[256];

  tmp_write_file(t->path, MEM(passwd));
  assert_int_equal(awf_userdb_user_by_uid(t->path, 1001, &u, err, sizeof err), 0);
  assert_string_equal(u.name, "runner");
  assert_int_equal(awf_userdb_user_by_uid(t->path, 1234, &u, err, sizeof err), -ENOENT);
  snprintf(expect, sizeof expect, "uid 1234 not found in %s", t->path);
  assert_string_equal(err, expect);
  unlink(t->path);
  assert_int_equal(awf_userdb_user_by_uid(t->path, 0, &u, err, sizeof err), -ENOENT);
  assert_non_null(strstr(err, "No such file"));
  assert_int_equal(awf_userdb_user_by_uid(t->dir, 0, &u, err, sizeof err), -EISDIR);
}

/* ---- group ---- */

static const char group[] =
    "root:x:0:\n"
    "# admins\n"
    "sudo:x:27:runner\n"
    "docker:x:999:alice,runner,bob\n"
    "adm:x:4:runnerx,xrunner,Runner, runner,runner \n" /* near misses only */
    "users:x:100:bob,runner\n"
    "again:x:27:runner\n"    /* duplicate gid */
    "primary:x:118:runner\n" /* the primary gid */
    "nomembers:x:50\n"
    "empty:x:51:\n"
    "trailing:x:52:runner,\n"
    "badgid:x:5x:runner\n"
    "toomany:x:53:runner:extra\n"
    "+nis:x:54:runner\n"
    "nul:x:55:run\0ner,runner\n"
    "last:x:7:runner";

static void test_groups_basic(void **state) {
  gid_t g[16];
  size_t n;
  char err[256];

  (void)state;
  assert_int_equal(awf_userdb_groups_mem(MEM(group), "/etc/group", "runner", 118, g, 16, &n,
                                         err, sizeof err),
                   0);
  assert_int_equal(n, 6);
  assert_int_equal(g[0], 118);
  assert_int_equal(g[1], 7);
  assert_int_equal(g[2], 27);
  assert_int_equal(g[3], 52);
  assert_int_equal(g[4], 100);
  assert_int_equal(g[5], 999);
}

static void test_groups_none(void **state) {
  gid_t g[4];
  size_t n;
  char err[256];

  (void)state;
  assert_int_equal(awf_userdb_groups_mem(MEM(group), "f", "nobody", 65534, g, 4, &n, err,
                                         sizeof err),
                   0);
  assert_int_equal(n, 1);
  assert_int_equal(g[0], 65534);
  assert_int_equal(awf_userdb_groups_mem("", 0, "f", "x", 5, g, 1, &n, err, sizeof err), 0);
  assert_int_equal(n, 1);
}

static void test_groups_bounded(void **state) {
  gid_t g[6];
  size_t n;
  char err[256];

  (void)state;
  /* Exactly enough room. */
  assert_int_equal(awf_userdb_groups_mem(MEM(group), "f", "runner", 118, g, 6, &n, err,
                                         sizeof err),
                   0);
  assert_int_equal(n, 6);
  /* One short: -ERANGE and the number needed. */
  assert_int_equal(awf_userdb_groups_mem(MEM(group), "/etc/group", "runner", 118, g, 5, &n, err,
                                         sizeof err),
                   -ERANGE);
  assert_int_equal(n, 6);
  assert_string_equal(err, "user \"runner\" is in 6 groups in /etc/group, more than the 5 "
                           "allowed");
}

static void test_groups_bad_args(void **state) {
  gid_t g[2];
  size_t n;
  char err[256];

  (void)state;
  assert_int_equal(awf_userdb_groups_mem(MEM(group), "f", "", 1, g, 2, &n, err, sizeof err),
                   -EINVAL);
  assert_int_equal(awf_userdb_groups_mem(MEM(group), "f", NULL, 1, g, 2, &n, err, sizeof err),
                   -EINVAL);
  assert_int_equal(awf_userdb_groups_mem(MEM(group), "f", "runner", 1, g, 0, &n, err,
                                         sizeof err),
                   -EINVAL);
}

/* A group with 200000 members, the user last; and a huge list without it. */
static void test_groups_huge_member_list(void **state) {
  size_t members = 200000, i, off = 0;
  char *d = malloc(members * 12 + 256);
  gid_t g[4];
  size_t n;
  char err[256];

  (void)state;
  assert_non_null(d);
  off += (size_t)sprintf(d + off, "big:x:3000:");
  for (i = 0; i < members; i++)
    off += (size_t)sprintf(d + off, "u%zu,", i);
  off += (size_t)sprintf(d + off, "target\nother:x:3001:");
  for (i = 0; i < members / 2; i++)
    off += (size_t)sprintf(d + off, "u%zu,", i);
  assert_int_equal(awf_userdb_groups_mem(d, off, "f", "target", 10, g, 4, &n, err, sizeof err),
                   0);
  assert_int_equal(n, 2);
  assert_int_equal(g[1], 3000);
  free(d);
}

/* Many distinct groups: sorted ascending whatever the file order. */
static void test_groups_many_sorted(void **state) {
  size_t count = 3000, i, off = 0, n;
  char *d = malloc(count * 40);
  gid_t *g = calloc(count + 1, sizeof *g);
  char err[256];

  (void)state;
  assert_non_null(d);
  assert_non_null(g);
  for (i = 0; i < count; i++)
    off += (size_t)sprintf(d + off, "g%zu:x:%zu:me\n", i, (i * 7919) % count + 10);
  assert_int_equal(awf_userdb_groups_mem(d, off, "f", "me", 5, g, count + 1, &n, err,
                                         sizeof err),
                   0);
  assert_int_equal(n, count + 1);
  assert_int_equal(g[0], 5);
  for (i = 1; i < n; i++)
    assert_int_equal(g[i], (gid_t)(i - 1 + 10));
  free(d);
  free(g);
}

static void test_groups_from_file(void **state) {
  struct tmp *t = *state;
  gid_t g[16];
  size_t n;
  char err[256];

  tmp_write_file(t->path, MEM(group));
  assert_int_equal(awf_userdb_groups(t->path, "runner", 118, g, 16, &n, err, sizeof err), 0);
  assert_int_equal(n, 6);
  unlink(t->path);
  assert_int_equal(awf_userdb_groups(t->path, "runner", 118, g, 16, &n, err, sizeof err),
                   -ENOENT);
  assert_int_equal(n, 0);
  assert_non_null(strstr(err, t->path));
}

/* ---- ids and the invoking user ---- */

static void test_parse_id(void **state) {
  unsigned int v;

  (void)state;
  assert_int_equal(awf_userdb_parse_id("0", 1, &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(awf_userdb_parse_id("4294967294", 10, &v), 0);
  assert_int_equal(v, 4294967294u);
  assert_int_equal(awf_userdb_parse_id("0000001000", 10, &v), 0);
  assert_int_equal(v, 1000);
  assert_int_equal(awf_userdb_parse_id("4294967295", 10, &v), -EINVAL);
  assert_int_equal(awf_userdb_parse_id("9999999999", 10, &v), -EINVAL);
  assert_int_equal(awf_userdb_parse_id("00000000001", 11, &v), -EINVAL);
  assert_int_equal(awf_userdb_parse_id("", 0, &v), -EINVAL);
  assert_int_equal(awf_userdb_parse_id(NULL, 0, &v), -EINVAL);
  assert_int_equal(awf_userdb_parse_id("-1", 2, &v), -EINVAL);
  assert_int_equal(awf_userdb_parse_id("+1", 2, &v), -EINVAL);
  assert_int_equal(awf_userdb_parse_id(" 1", 2, &v), -EINVAL);
  assert_int_equal(awf_userdb_parse_id("1 ", 2, &v), -EINVAL);
  assert_int_equal(awf_userdb_parse_id("0x10", 4, &v), -EINVAL);
  assert_int_equal(awf_userdb_parse_id("1\0002", 3, &v), -EINVAL);
}

static void test_invoker_sudo(void **state) {
  struct awf_userdb_invoker inv;

  (void)state;
  awf_userdb_invoker("1001", "118", 0, 0, &inv);
  assert_int_equal(inv.uid, 1001);
  assert_int_equal(inv.gid, 118);
  assert_true(inv.gid_known);
  assert_true(inv.via_sudo);

  /* sudo run by root itself: SUDO_UID=0 is valid. */
  awf_userdb_invoker("0", "0", 0, 0, &inv);
  assert_int_equal(inv.uid, 0);
  assert_true(inv.via_sudo);
}

static void test_invoker_sudo_gid_missing_or_bad(void **state) {
  static const char *const bad[] = {NULL, "", "x", "-1", "4294967295", "12 "};
  struct awf_userdb_invoker inv;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    awf_userdb_invoker("1001", bad[i], 0, 0, &inv);
    assert_int_equal(inv.uid, 1001);
    assert_true(inv.via_sudo);
    assert_false(inv.gid_known);
  }
}

static void test_invoker_bad_sudo_uid_falls_back(void **state) {
  static const char *const bad[] = {"",      "abc",   "-1",  "4294967295",
                                    " 1000", "1000x", "1e3", "99999999999"};
  struct awf_userdb_invoker inv;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    awf_userdb_invoker(bad[i], "118", 0, 0, &inv);
    assert_int_equal(inv.uid, 0);
    assert_int_equal(inv.gid, 0);
    assert_true(inv.gid_known);
    assert_false(inv.via_sudo);
  }
  awf_userdb_invoker(NULL, "118", 0, 5, &inv);
  assert_int_equal(inv.uid, 0);
  assert_int_equal(inv.gid, 5);
  assert_false(inv.via_sudo);
}

/* A non-root caller cannot pose as someone else through SUDO_UID. */
static void test_invoker_ignores_sudo_when_not_root(void **state) {
  struct awf_userdb_invoker inv;

  (void)state;
  awf_userdb_invoker("0", "0", 1000, 1000, &inv);
  assert_int_equal(inv.uid, 1000);
  assert_int_equal(inv.gid, 1000);
  assert_true(inv.gid_known);
  assert_false(inv.via_sudo);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lookup_basic),
      cmocka_unit_test(test_empty_home_and_shell_default),
      cmocka_unit_test(test_leading_zeros),
      cmocka_unit_test(test_nis_lines_are_not_entries),
      cmocka_unit_test(test_not_found_message),
      cmocka_unit_test(test_malformed_lines_skipped),
      cmocka_unit_test(test_one_malformed_singular),
      cmocka_unit_test(test_first_match_wins),
      cmocka_unit_test(test_max_uid),
      cmocka_unit_test(test_huge_lines),
      cmocka_unit_test(test_field_too_long),
      cmocka_unit_test(test_name_too_long),
      cmocka_unit_test_setup_teardown(test_lookup_from_file, setup, teardown),
      cmocka_unit_test(test_groups_basic),
      cmocka_unit_test(test_groups_none),
      cmocka_unit_test(test_groups_bounded),
      cmocka_unit_test(test_groups_bad_args),
      cmocka_unit_test(test_groups_huge_member_list),
      cmocka_unit_test(test_groups_many_sorted),
      cmocka_unit_test_setup_teardown(test_groups_from_file, setup, teardown),
      cmocka_unit_test(test_parse_id),
      cmocka_unit_test(test_invoker_sudo),
      cmocka_unit_test(test_invoker_sudo_gid_missing_or_bad),
      cmocka_unit_test(test_invoker_bad_sudo_uid_falls_back),
      cmocka_unit_test(test_invoker_ignores_sudo_when_not_root),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
