/* Unit tests for sandbox/pathenv.c, over a fake file system. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathenv.h"

#define TC "/opt/hostedtoolcache"
#define SYS AWF_PATHENV_SYSTEM

/* A fake tree: the directories that exist. */
struct fakefs {
  const char *const *dirs;
  size_t exists_calls;
};

static int fake_exists(void *ud, const char *path) {
  struct fakefs *fs = ud;
  const char *const *d;

  fs->exists_calls++;
  for (d = fs->dirs; d != NULL && *d != NULL; d++)
    if (strcmp(*d, path) == 0)
      return 1;
  return 0;
}

static struct awf_pathenv_spec spec_for(struct fakefs *fs) {
  struct awf_pathenv_spec s = {0};

  s.exists = fake_exists;
  s.ud = fs;
  return s;
}

static char out[AWF_PATHENV_MAX];

static void build(const struct awf_pathenv_spec *s, size_t *dropped) {
  int rc = awf_pathenv_build(s, out, sizeof out, dropped);

  assert_int_equal(rc, 0);
}

static void test_system_only(void **state) {
  struct fakefs fs = {0};
  struct awf_pathenv_spec s = spec_for(&fs);
  size_t dropped = 99;

  (void)state;
  build(&s, &dropped);
  assert_string_equal(out, SYS);
  assert_int_equal(dropped, 0);
  assert_int_equal(fs.exists_calls, 0);
}

static void test_awf_path_filtered_and_first(void **state) {
  const char *dirs[] = {"/home/u/.local/bin", "/usr/bin", "/opt/tool/bin", NULL};
  struct fakefs fs = {dirs, 0};
  struct awf_pathenv_spec s = spec_for(&fs);
  size_t dropped;

  (void)state;
  s.awf_path = "/home/u/.local/bin:/gone/bin:/usr/bin:/opt/tool/bin";
  build(&s, &dropped);
  assert_string_equal(out, "/home/u/.local/bin:/usr/bin:/opt/tool/bin:"
                           "/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin");
  assert_int_equal(dropped, 1);
}

static void test_awf_path_normalised_and_unsafe_dropped(void **state) {
  const char *dirs[] = {"/a", "/b/c", "/", NULL};
  struct fakefs fs = {dirs, 0};
  struct awf_pathenv_spec s = spec_for(&fs);
  size_t dropped;

  (void)state;
  /* Empty entries and "." would mean the working directory. */
  s.awf_path = ":.:bin:./x:/a/:/a//:////b//c///:/a:::/:~/bin:/b/c\x1b[1m:";
  build(&s, &dropped);
  assert_string_equal(out, "/a:/b/c:/:" SYS);
  assert_int_equal(dropped, 5); /* ".", "bin", "./x", "~/bin", the escape */
  /* exists() sees normalised paths only; duplicates are not asked again. */
  assert_int_equal(fs.exists_calls, 3);
}

static void test_github_path_last_line_first(void **state) {
  struct fakefs fs = {0};
  struct awf_pathenv_spec s = spec_for(&fs);
  static const char gp[] = "/first/bin\n"
                           "\n"
                           "relative/bin\n"
                           "/second/bin\r\n"
                           "/l1:/l2\n"
                           "/usr/bin\n"
                           "/first/bin/\n"
                           "/last/bin";
  size_t dropped;

  (void)state;
  s.github_path = gp;
  s.github_path_len = sizeof gp - 1;
  build(&s, &dropped);
  /* /first/bin appears twice: its later line (prepended last) wins. */
  /* Before the system directories: /usr/bin keeps its place from the file. */
  assert_string_equal(out, "/last/bin:/first/bin:/usr/bin:/l1:/l2:/second/bin:"
                           "/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin");
  assert_int_equal(dropped, 1);
}

static void test_github_path_nul_and_trailing_newline(void **state) {
  struct fakefs fs = {0};
  struct awf_pathenv_spec s = spec_for(&fs);
  static const char gp[] = "/ok1\n/bad\0/x\n/ok2\n\n";
  size_t dropped;

  (void)state;
  s.github_path = gp;
  s.github_path_len = sizeof gp - 1;
  build(&s, &dropped);
  assert_string_equal(out, "/ok2:/ok1:" SYS);
  assert_int_equal(dropped, 1);
  /* github_path_len is honoured: nothing past it is read. */
  s.github_path_len = 4;
  build(&s, &dropped);
  assert_string_equal(out, "/ok1:" SYS);
}

static void test_github_path_huge_line(void **state) {
  struct fakefs fs = {0};
  struct awf_pathenv_spec s = spec_for(&fs);
  size_t n = 1 << 20;
  char *gp = malloc(n + 16);
  size_t dropped;

  (void)state;
  assert_non_null(gp);
  gp[0] = '/';
  memset(gp + 1, 'd', n - 1);
  memcpy(gp + n, "\n/small", 7);
  s.github_path = gp;
  s.github_path_len = n + 7;
  build(&s, &dropped);
  assert_string_equal(out, "/small:" SYS);
  assert_int_equal(dropped, 1);
  free(gp);
}

static void test_entry_length_limit(void **state) {
  struct fakefs fs = {0};
  struct awf_pathenv_spec s = spec_for(&fs);
  char gp[2 * AWF_PATHENV_ENTRY_MAX + 2];
  size_t dropped, a = AWF_PATHENV_ENTRY_MAX;

  (void)state;
  gp[0] = '/';
  memset(gp + 1, 'a', a - 1); /* exactly ENTRY_MAX bytes */
  gp[a] = '\n';
  gp[a + 1] = '/';
  memset(gp + a + 2, 'b', a); /* ENTRY_MAX + 1 bytes */
  s.github_path = gp;
  s.github_path_len = sizeof gp;
  build(&s, &dropped);
  assert_int_equal(strlen(out), strlen(SYS) + 1 + a);
  assert_int_equal(dropped, 1);
  assert_int_equal(out[1], 'a');
  assert_int_equal(out[a], ':');
}

/* Tool directories: only the versions the job's variables name, after
 * GITHUB_PATH and before the rest; missing ones are dropped. */
static void test_tool_dirs(void **state) {
  const char *dirs[] = {TC "/go/1.22.2/x64/bin", TC "/Java/17/x64/bin", "/usr/bin", NULL};
  struct fakefs fs = {dirs, 0};
  struct awf_pathenv_spec s = spec_for(&fs);
  const char *tools[] = {
      TC "/go/1.22.2/x64/bin", NULL, "", TC "/gone/bin", TC "/Java/17/x64/bin/", "relative/bin",
      TC "/go/1.22.2/x64/bin"};
  static const char gp[] = "/gh/one\n";
  size_t dropped;

  (void)state;
  s.tool_dirs = tools;
  s.n_tool_dirs = sizeof tools / sizeof tools[0];
  s.awf_path = "/usr/bin";
  s.github_path = gp;
  s.github_path_len = sizeof gp - 1;
  build(&s, &dropped);
  assert_string_equal(out, "/gh/one:" TC "/go/1.22.2/x64/bin:" TC "/Java/17/x64/bin:/usr/bin:"
                           "/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin");
  assert_int_equal(dropped, 2); /* /gone/bin, relative/bin */
}

/* The buffer bounds the result; room is kept for the system dirs. */
static void test_bounded_output(void **state) {
  const char *dirs[] = {"/aaaa", "/bbbb", NULL};
  struct fakefs fs = {dirs, 0};
  struct awf_pathenv_spec s = spec_for(&fs);
  char small[sizeof SYS + 6];
  size_t dropped;

  (void)state;
  s.awf_path = "/aaaa:/bbbb";
  assert_int_equal(awf_pathenv_build(&s, small, sizeof SYS, &dropped), 0);
  assert_string_equal(small, SYS);
  assert_int_equal(dropped, 2);
  assert_int_equal(awf_pathenv_build(&s, small, sizeof small, &dropped), 0);
  assert_string_equal(small, "/aaaa:" SYS);
  assert_int_equal(dropped, 1);
  assert_int_equal(awf_pathenv_build(&s, small, sizeof SYS - 1, &dropped), -EINVAL);
}

/* Thousands of entries: capped at AWF_PATHENV_ENTRIES_MAX. */
static void test_entry_count_bound(void **state) {
  struct fakefs fs = {0};
  struct awf_pathenv_spec s = spec_for(&fs);
  size_t n = 3000, i, off = 0, dropped, colons = 0;
  char *gp = malloc(n * 8);
  const char *p;

  (void)state;
  assert_non_null(gp);
  for (i = 0; i < n; i++)
    off += (size_t)sprintf(gp + off, "/%zu\n", i);
  s.github_path = gp;
  s.github_path_len = off;
  build(&s, &dropped);
  for (p = out; *p; p++)
    colons += *p == ':';
  assert_int_equal(colons + 1, AWF_PATHENV_ENTRIES_MAX);
  assert_int_equal(dropped, n + 6 - AWF_PATHENV_ENTRIES_MAX);
  /* The system directories always keep their room. */
  assert_true(strncmp(out, "/2999:/2998:", 12) == 0);
  assert_string_equal(out + strlen(out) - strlen(SYS), SYS);
  free(gp);
}

static void test_bad_args(void **state) {
  struct fakefs fs = {0};
  struct awf_pathenv_spec s = spec_for(&fs);

  (void)state;
  s.exists = NULL;
  assert_int_equal(awf_pathenv_build(&s, out, sizeof out, NULL), -EINVAL);
  s = spec_for(&fs);
  assert_int_equal(awf_pathenv_build(&s, out, sizeof out, NULL), 0);
  assert_int_equal(awf_pathenv_build(&s, NULL, sizeof out, NULL), -EINVAL);
}

/* Everything at once, in the documented order. */
static void test_full_order(void **state) {
  const char *dirs[] = {"/home/u/bin", "/sbin", TC "/go/1.22.2/x64/bin", NULL};
  struct fakefs fs = {dirs, 0};
  struct awf_pathenv_spec s = spec_for(&fs);
  static const char gp[] = "/gh/one\n" TC "/node/20.1.0/x64/bin\n";
  const char *tools[] = {TC "/go/1.22.2/x64/bin"};

  (void)state;
  s.awf_path = "/home/u/bin:/sbin";
  s.github_path = gp;
  s.github_path_len = sizeof gp - 1;
  s.tool_dirs = tools;
  s.n_tool_dirs = 1;
  build(&s, NULL);
  assert_string_equal(out, TC "/node/20.1.0/x64/bin:/gh/one:" TC "/go/1.22.2/x64/bin:"
                              "/home/u/bin:/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                              "/usr/bin:/bin");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_system_only),
      cmocka_unit_test(test_awf_path_filtered_and_first),
      cmocka_unit_test(test_awf_path_normalised_and_unsafe_dropped),
      cmocka_unit_test(test_github_path_last_line_first),
      cmocka_unit_test(test_github_path_nul_and_trailing_newline),
      cmocka_unit_test(test_github_path_huge_line),
      cmocka_unit_test(test_entry_length_limit),
      cmocka_unit_test(test_tool_dirs),
      cmocka_unit_test(test_bounded_output),
      cmocka_unit_test(test_entry_count_bound),
      cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_full_order),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
