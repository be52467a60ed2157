/* Unit tests for sandbox/hostpath.c: realpath(3) that will not follow the
 * command user's symbolic links. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostpath.h"

#define PLANTER 4242 /* the uid the "command" runs as */

struct tree {
  char dir[64]; /* realpath'd temporary directory */
};

static void path_of(const struct tree *t, const char *rel, char out[PATH_MAX]) {
  snprintf(out, PATH_MAX, "%s/%s", t->dir, rel);
}

static void make_dir(const struct tree *t, const char *rel) {
  char p[PATH_MAX];
  path_of(t, rel, p);
  assert_int_equal(mkdir(p, 0755), 0);
}

static void make_link(const struct tree *t, const char *rel, const char *text, uid_t owner) {
  char p[PATH_MAX];
  path_of(t, rel, p);
  assert_int_equal(symlink(text, p), 0);
  if (owner != 0)
    assert_int_equal(lchown(p, owner, owner), 0);
}

/* dir/a/b (dirs), dir/file, and links of root: rel -> a/b, abs -> DIR/a. */
static int setup(void **state) {
  struct tree *t = calloc(1, sizeof *t);
  char tmpl[] = "/tmp/awf-test-hostpath-XXXXXX", abs[PATH_MAX];

  if (t == NULL || mkdtemp(tmpl) == NULL || realpath(tmpl, t->dir) == NULL)
    return -1;
  make_dir(t, "a");
  make_dir(t, "a/b");
  close(open(strcat(strcpy(abs, t->dir), "/file"), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  make_link(t, "rel", "a/b", 0);
  path_of(t, "a", abs);
  make_link(t, "abs", abs, 0);
  *state = t;
  return 0;
}

static int teardown(void **state) {
  struct tree *t = *state;
  char cmd[PATH_MAX + 16];

  snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
  if (system(cmd) != 0)
    return -1;
  free(t);
  return 0;
}

/* Resolves to want (relative to the tree), and the fd is that object. */
static void expect_resolves(const struct tree *t, const char *rel, uid_t refused,
                            const char *want) {
  char in[PATH_MAX], out[PATH_MAX], expect[PATH_MAX], err[512] = "";
  struct stat a, b;
  int fd = -1;

  path_of(t, rel, in);
  path_of(t, want, expect);
  if (want[0] == '\0')
    snprintf(expect, sizeof expect, "%s", t->dir);
  int rc = awf_hostpath_resolve(in, refused, out, &fd, err, sizeof err);
  if (rc != 0)
    fail_msg("%s: %d %s", in, rc, err);
  assert_string_equal(out, expect);
  assert_int_equal(fstat(fd, &a), 0);
  assert_int_equal(stat(expect, &b), 0);
  assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
  close(fd);
}

static void expect_error(const char *path, uid_t refused, int want, const char *msg_part) {
  char out[PATH_MAX], err[512] = "";
  int fd = -1;
  int rc = awf_hostpath_resolve(path, refused, out, &fd, err, sizeof err);

  if (rc != want)
    fail_msg("%s: got %d (%s), wanted %d", path ? path : "(null)", rc, err, want);
  assert_int_equal(fd, -1);
  if (msg_part != NULL && strstr(err, msg_part) == NULL)
    fail_msg("%s: message \"%s\" lacks \"%s\"", path ? path : "(null)", err, msg_part);
}

static void test_plain_paths(void **state) {
  struct tree *t = *state;
  expect_resolves(t, "a/b", PLANTER, "a/b");
  expect_resolves(t, "a//b/", PLANTER, "a/b");
  expect_resolves(t, "./a/./b/..", PLANTER, "a");
  expect_resolves(t, "a/b/../../file", PLANTER, "file");
  expect_resolves(t, "", PLANTER, "");
}

static void test_root_links_followed(void **state) {
  struct tree *t = *state;
  expect_resolves(t, "rel", PLANTER, "a/b");
  expect_resolves(t, "rel/..", PLANTER, "a");
  expect_resolves(t, "abs/b", PLANTER, "a/b");
}

static void need_root(void) {
  if (geteuid() != 0) {
    print_message("skipped: giving a symlink to another uid (lchown) needs root\n");
    skip();
  }
}

static void test_planted_link_refused(void **state) {
  struct tree *t = *state;
  char p[PATH_MAX];

  need_root();
  make_link(t, "planted", "/etc", PLANTER);
  path_of(t, "planted", p);
  expect_error(p, PLANTER, -ELOOP, "\"planted\"");
  path_of(t, "planted/passwd", p);
  expect_error(p, PLANTER, -ELOOP, "owned by uid 4242");
  /* the same link is followed when nobody is refused, or somebody else is */
  const uid_t others[] = {AWF_HOSTPATH_ANY_OWNER, 1000};
  path_of(t, "planted/..", p);
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
    char out[PATH_MAX], err[256] = "";
    int fd = -1;
    if (awf_hostpath_resolve(p, others[i], out, &fd, err, sizeof err) != 0)
      fail_msg("%s: %s", p, err);
    assert_string_equal(out, "/"); /* /etc/.. */
    close(fd);
  }
}

/* A root link leading to a planted one: the planted one is still refused. */
static void test_planted_link_behind_root_link(void **state) {
  struct tree *t = *state;
  char p[PATH_MAX];

  need_root();
  make_link(t, "a/b/trap", "/", PLANTER);
  path_of(t, "rel/trap/etc", p);
  expect_error(p, PLANTER, -ELOOP, "\"trap\"");
}

static void test_errors(void **state) {
  struct tree *t = *state;
  char p[PATH_MAX];

  expect_error("relative/path", PLANTER, -EINVAL, "absolute");
  expect_error(NULL, PLANTER, -EINVAL, NULL);
  path_of(t, "missing/x", p);
  expect_error(p, PLANTER, -ENOENT, "missing");
  path_of(t, "file/x", p);
  expect_error(p, PLANTER, -ENOTDIR, NULL);
  make_link(t, "loop1", "loop2", 0);
  make_link(t, "loop2", "loop1", 0);
  path_of(t, "loop1", p);
  expect_error(p, PLANTER, -ELOOP, "40");
  char longname[NAME_MAX + 8];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  path_of(t, longname, p);
  expect_error(p, PLANTER, -ENAMETOOLONG, NULL);
  char huge[PATH_MAX + 8];
  memset(huge, '/', sizeof huge - 1);
  huge[sizeof huge - 1] = '\0';
  expect_error(huge, PLANTER, -ENAMETOOLONG, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_plain_paths, setup, teardown),
      cmocka_unit_test_setup_teardown(test_root_links_followed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_planted_link_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_planted_link_behind_root_link, setup, teardown),
      cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
