/* textfile.c: see textfile.h. */
#include "textfile.h"
#include "errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK 65536

static int read_all(int fd, const char *path, size_t max, char **buf, size_t *len, char *err,
                    size_t errsz) {
  char *data = NULL;
  size_t n = 0, cap = 0;

  for (;;) {
    ssize_t r;

    if (cap - n < CHUNK && cap < max + 2) {
      /* One byte beyond max lets us tell "exactly max" from "more";
             * the other is for the terminating NUL. */
      size_t want = cap < CHUNK ? CHUNK : cap * 2;
      char *p;

      if (want > max + 2)
        want = max + 2;
      p = realloc(data, want);
      if (p == NULL) {
        free(data);
        return awf_errbuf_fail(err, errsz, -ENOMEM, "%s: out of memory", path);
      }
      data = p;
      cap = want;
    }
    /* Leave one byte for the terminating NUL. */
    r = read(fd, data + n, cap - n - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int e = errno;

      free(data);
      return awf_errbuf_fail(err, errsz, -e, "%s: %s", path, strerror(e));
    }
    if (r == 0)
      break;
    n += (size_t)r;
    if (n > max) {
      free(data);
      return awf_errbuf_fail(err, errsz, -EFBIG, "%s: larger than %zu bytes", path, max);
    }
  }
  data[n] = '\0';
  *buf = data;
  *len = n;
  return 0;
}

int awf_textfile_read(const char *path, size_t max, char **buf, size_t *len, char *err,
                      size_t errsz) {
  int fd, rc;

  *buf = NULL;
  *len = 0;
  if (path == NULL || *path == '\0')
    return awf_errbuf_fail(err, errsz, -EINVAL, "empty file name");
  if (max > SIZE_MAX / 2)
    return awf_errbuf_fail(err, errsz, -EINVAL, "%s: size limit too large", path);
  do
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int e = errno;

    return awf_errbuf_fail(err, errsz, -e, "%s: %s", path, strerror(e));
  }
  rc = read_all(fd, path, max, buf, len, err, errsz);
  close(fd);
  return rc;
}
