/* hostpath.c: see hostpath.h. */
#include "hostpath.h"
#include "errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LINKS 40 /* as the kernel's own path walk */

struct walk {
  char rest[PATH_MAX]; /* what is left to resolve, from pos */
  size_t pos;
  char cur[PATH_MAX]; /* resolved so far: no links in it */
  int fd;             /* O_PATH of cur */
  int links;
  uid_t refused_owner;
  char *err;
  size_t errlen;
};

static int walk_fail(struct walk *w, int e, const char *what) {
  char q[PATH_MAX / 4];

  awf_errbuf_quote(w->cur, strlen(w->cur), q, sizeof q);
  return awf_errbuf_fail(w->err, w->errlen, -e, "%s (resolved as far as \"%s\"): %s", what, q,
                         strerror(e));
}

static int reopen_root(struct walk *w) {
  int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0)
    return walk_fail(w, errno, "opening /");
  if (w->fd >= 0)
    close(w->fd);
  w->fd = fd;
  strcpy(w->cur, "/");
  return 0;
}

/* The next component of rest, copied into name when it fits; its length
 * (0 at the end, more than NAME_MAX when it does not fit). */
static size_t next_component(struct walk *w, char name[NAME_MAX + 1]) {
  w->pos += strspn(w->rest + w->pos, "/");
  size_t len = strcspn(w->rest + w->pos, "/");
  if (len <= NAME_MAX) {
    memcpy(name, w->rest + w->pos, len);
    name[len] = '\0';
  }
  w->pos += len;
  return len;
}

static int step_up(struct walk *w) {
  int fd = openat(w->fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0)
    return walk_fail(w, errno, "opening ..");
  close(w->fd);
  w->fd = fd;
  char *slash = strrchr(w->cur, '/');
  if (slash == w->cur)
    w->cur[1] = '\0';
  else if (slash != NULL)
    *slash = '\0';
  return 0;
}

/* link (the O_PATH of a symlink, st its stat): check its owner, then put its
 * text in front of what is left. */
static int follow_link(struct walk *w, int link, const struct stat *st, const char *name) {
  char text[PATH_MAX], joined[PATH_MAX];

  if (st->st_uid == w->refused_owner) {
    char q[NAME_MAX * 4 + 8];
    awf_errbuf_quote(name, strlen(name), q, sizeof q);
    return awf_errbuf_fail(w->err, w->errlen, -ELOOP,
                           "\"%s\" in %s is a symbolic link owned by uid %u, the user the "
                           "command runs as, who could have planted it: awf does not follow "
                           "it; name the path it points to instead",
                           q, w->cur, (unsigned)st->st_uid);
  }
  if (++w->links > MAX_LINKS)
    return walk_fail(w, ELOOP, "more than 40 symbolic links");
  ssize_t n = readlinkat(link, "", text, sizeof text);
  if (n < 0)
    return walk_fail(w, errno, "reading a symbolic link");
  if ((size_t)n >= sizeof text)
    return walk_fail(w, ENAMETOOLONG, "reading a symbolic link");
  text[n] = '\0';
  int len = snprintf(joined, sizeof joined, "%s/%s", text, w->rest + w->pos);
  if (len < 0 || (size_t)len >= sizeof joined)
    return walk_fail(w, ENAMETOOLONG, "following a symbolic link");
  memcpy(w->rest, joined, (size_t)len + 1);
  w->pos = 0;
  return text[0] == '/' ? reopen_root(w) : 0;
}

/* One component below w->fd: descend, or follow it if it is a link. */
static int step_down(struct walk *w, const char *name) {
  struct stat st;
  int fd = openat(w->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

  if (fd < 0)
    return walk_fail(w, errno, name);
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    return walk_fail(w, e, name);
  }
  if (S_ISLNK(st.st_mode)) {
    int rc = follow_link(w, fd, &st, name);
    close(fd);
    return rc;
  }
  size_t used = strlen(w->cur);
  if (used + 1 + strlen(name) >= sizeof w->cur) {
    close(fd);
    return walk_fail(w, ENAMETOOLONG, name);
  }
  if (used > 1)
    w->cur[used++] = '/';
  strcpy(w->cur + used, name);
  close(w->fd);
  w->fd = fd;
  return 0;
}

int awf_hostpath_resolve(const char *path, uid_t refused_owner, char out[PATH_MAX], int *fd,
                         char *err, size_t errlen) {
  struct walk w = {.fd = -1, .refused_owner = refused_owner, .err = err, .errlen = errlen};
  char name[NAME_MAX + 1];
  int rc;

  if (path == NULL || path[0] != '/')
    return awf_errbuf_fail(err, errlen, -EINVAL, "not an absolute path");
  if (strlen(path) >= sizeof w.rest)
    return awf_errbuf_fail(err, errlen, -ENAMETOOLONG, "a path of %zu bytes", strlen(path));
  strcpy(w.rest, path);
  rc = reopen_root(&w);
  while (rc == 0) {
    size_t len = next_component(&w, name);
    if (len == 0)
      break;
    if (len > NAME_MAX)
      rc = walk_fail(&w, ENAMETOOLONG, "a path component");
    else if (strcmp(name, ".") == 0)
      continue;
    else if (strcmp(name, "..") == 0)
      rc = step_up(&w);
    else
      rc = step_down(&w, name);
  }
  if (rc < 0) {
    if (w.fd >= 0)
      close(w.fd);
    return rc;
  }
  strcpy(out, w.cur);
  *fd = w.fd;
  return 0;
}
