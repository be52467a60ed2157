/* mountinfo.c: see mountinfo.h. */
#include "mountinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s) {
  char *o = s;

  for (; *s; s++) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
        s[3] >= '0' && s[3] <= '7') {
      *o++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
      s += 3;
    } else {
      *o++ = *s;
    }
  }
  *o = '\0';
}

int awf_mountinfo_parse(char *line, struct awf_mountinfo *m) {
  char *field[6], *p = line, *end;

  for (int i = 0; i < 6; i++) {
    p += strspn(p, " ");
    if (*p == '\0')
      return -EINVAL;
    field[i] = p;
    p += strcspn(p, " ");
    if (*p != '\0')
      *p++ = '\0';
  }
  errno = 0;
  m->id = strtoul(field[0], &end, 10);
  if (errno != 0 || end == field[0] || *end != '\0')
    return -EINVAL;
  unescape_octal(field[3]);
  unescape_octal(field[4]);
  m->devid = field[2];
  m->root = field[3];
  m->mount_point = field[4];
  m->options = field[5];
  return 0;
}

int awf_mountinfo_read_only(const struct awf_mountinfo *m) {
  for (const char *o = m->options; *o;) {
    size_t len = strcspn(o, ",");

    if (len == 2 && strncmp(o, "ro", 2) == 0)
      return 1;
    o += len + (o[len] == ',');
  }
  return 0;
}

static int each_line(char *line, awf_mountinfo_fn fn, void *ctx) {
  struct awf_mountinfo m;
  int rc = awf_mountinfo_parse(line, &m);

  return rc < 0 ? rc : fn(ctx, &m);
}

int awf_mountinfo_each(const char *path, char *buf, size_t bufsz, awf_mountinfo_fn fn,
                       void *ctx) {
  size_t used = 0;
  int rc = 0, fd;

  if (bufsz < 2)
    return -EINVAL;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  while (rc == 0) {
    ssize_t n = read(fd, buf + used, bufsz - 1 - used);
    char *start = buf, *nl;

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = -errno;
      break;
    }
    used += (size_t)n;
    buf[used] = '\0';
    while (rc == 0 && (nl = memchr(start, '\n', used - (size_t)(start - buf))) != NULL) {
      *nl = '\0';
      rc = each_line(start, fn, ctx);
      start = nl + 1;
    }
    used -= (size_t)(start - buf);
    if (n == 0) {
      if (rc == 0 && used > 0)
        rc = each_line(start, fn, ctx);
      break;
    }
    if (rc == 0 && used == bufsz - 1)
      rc = -ENAMETOOLONG;
    memmove(buf, start, used);
  }
  close(fd);
  return rc;
}
