/* tmpdir_fixture.h: a cmocka fixture for tests that read a file of their
 * own: a fresh directory under /tmp (mkdtemp) with one file path in it,
 * removed afterwards. Include after <cmocka.h>. */
#ifndef AWF_TMPDIR_FIXTURE_H
#define AWF_TMPDIR_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tmp {
  char dir[64];
  char path[128];
};

/* dir_template: "/tmp/awf-test-NAME-XXXXXX"; file: the name inside it. */
static inline int tmp_setup(void **state, const char *dir_template, const char *file) {
  struct tmp *t = calloc(1, sizeof *t);

  if (t == NULL || strlen(dir_template) >= sizeof t->dir) {
    free(t);
    return -1;
  }
  strcpy(t->dir, dir_template);
  if (mkdtemp(t->dir) == NULL) {
    free(t);
    return -1;
  }
  snprintf(t->path, sizeof t->path, "%s/%s", t->dir, file);
  *state = t;
  return 0;
}

static inline int tmp_teardown(void **state) {
  struct tmp *t = *state;

  unlink(t->path);
  rmdir(t->dir);
  free(t);
  return 0;
}

static inline void tmp_write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");

  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

#endif
