/* logprotect.c: see logprotect.h. */
#include "logprotect.h"
#include "errbuf.h"
#include "mountinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif

/* Longest mountinfo line handled (two escaped paths and options). */
#define MOUNTINFO_LINE_MAX 16384
/* Most places (the file and the directories above it) bound in the sandbox. */
#define MAX_TARGETS 256
#define POOL_SIZE (64 * 1024)

/* ---- pure helpers -------------------------------------------------------- */

int awf_logprotect_fs_path(const char *link, const char *mount_point, const char *root_in_fs,
                           char *out, size_t outlen) {
  const char *rest = link;
  size_t n = strlen(mount_point);
  int len;

  if (link[0] != '/')
    return -EINVAL;
  if (strcmp(mount_point, "/") != 0) {
    if (strncmp(link, mount_point, n) != 0 || (link[n] != '/' && link[n] != '\0'))
      return -EINVAL;
    rest = link + n;
  }
  if (strcmp(root_in_fs, "/") == 0)
    len = snprintf(out, outlen, "%s", rest[0] ? rest : "/");
  else
    len = snprintf(out, outlen, "%s%s", root_in_fs, strcmp(rest, "/") == 0 ? "" : rest);
  return len < 0 || (size_t)len >= outlen ? -ENAMETOOLONG : 0;
}

const char *awf_logprotect_below(const char *fs_path, const char *root_in_fs) {
  size_t n = strlen(root_in_fs);

  if (strcmp(fs_path, root_in_fs) == 0)
    return "";
  if (strcmp(root_in_fs, "/") == 0)
    return fs_path[0] == '/' ? fs_path : NULL;
  if (strncmp(fs_path, root_in_fs, n) == 0 && fs_path[n] == '/')
    return fs_path + n;
  return NULL;
}

/* ---- outside, before the sandbox: where the file lies --------------------- */

static int mount_id_of(int fd, unsigned long *id) {
  struct statx stx;

  if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0)
    return errno ? -errno : -EIO; /* never 0: *id is set only on success */
  if (!(stx.stx_mask & STATX_MNT_ID))
    return -ENOSYS; /* before Linux 5.8 */
  *id = (unsigned long)stx.stx_mnt_id;
  return 0;
}

struct locate {
  unsigned long id;
  const char *link;
  struct awf_logprotect *lp;
  int found;
};

static int locate_mount(void *ctx, const struct awf_mountinfo *m) {
  struct locate *l = ctx;

  if (m->id != l->id)
    return 0;
  if (strlen(m->devid) >= sizeof l->lp->devid)
    return -ENAMETOOLONG;
  strcpy(l->lp->devid, m->devid);
  int rc = awf_logprotect_fs_path(l->link, m->mount_point, m->root, l->lp->fs_path,
                                  sizeof l->lp->fs_path);
  if (rc < 0)
    return rc;
  l->found = 1;
  return 1;
}

/* devid and fs_path of the open file; 1 when its mount is in no mountinfo
 * (an anonymous pipe, a socket). */
static int locate(struct awf_logprotect *lp) {
  char fdpath[64], link[PATH_MAX], buf[MOUNTINFO_LINE_MAX];
  struct locate l = {.link = link, .lp = lp};
  int rc = mount_id_of(lp->fd, &l.id);

  if (rc < 0)
    return rc;
  snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", lp->fd);
  ssize_t n = readlink(fdpath, link, sizeof link);
  if (n < 0)
    return -errno;
  if ((size_t)n >= sizeof link)
    return -ENAMETOOLONG;
  link[n] = '\0';
  if (link[0] != '/')
    return 1; /* "pipe:[123]", "socket:[456]": no path anywhere */
  rc = awf_mountinfo_each("/proc/self/mountinfo", buf, sizeof buf, locate_mount, &l);
  if (rc < 0)
    return rc;
  return l.found ? 0 : 1;
}

int awf_logprotect_open(const char *path, struct awf_logprotect *lp, char *err, size_t errlen) {
  struct stat st;
  int rc;

  memset(lp, 0, sizeof *lp);
  lp->fd = -1;
  lp->path = path;
  lp->kind = AWF_LOG_UNGUARDED;
  if (path == NULL || strcmp(path, "-") == 0)
    return 0;
  /* as logfile.c opens it: appended to, created 0640 */
  lp->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
  if (lp->fd < 0)
    return awf_errbuf_fail(err, errlen, -errno, "--log-file %s: %s", path, strerror(errno));
  if (fstat(lp->fd, &st) < 0) {
    rc = awf_errbuf_fail(err, errlen, -errno, "--log-file %s: %s", path, strerror(errno));
    goto fail;
  }
  if (S_ISCHR(st.st_mode))
    return 0; /* /dev/null, a terminal: nothing stored to rewrite */
  if (S_ISREG(st.st_mode) && st.st_nlink != 1) {
    rc = awf_errbuf_fail(err, errlen, -EMLINK,
                         "--log-file %s has %lu hard links: the command could rewrite the "
                         "log through another one; use a file of its own",
                         path, (unsigned long)st.st_nlink);
    goto fail;
  }
  lp->kind = S_ISREG(st.st_mode) ? AWF_LOG_REGULAR : AWF_LOG_SPECIAL;
  lp->dev = st.st_dev;
  lp->ino = st.st_ino;
  rc = locate(lp);
  if (rc == 1 && lp->kind == AWF_LOG_SPECIAL) {
    lp->kind = AWF_LOG_UNGUARDED; /* a pipe of the caller's shell: never in the sandbox */
    return 0;
  }
  if (rc == 0)
    return 0;
  rc = awf_errbuf_fail(err, errlen, rc < 0 ? rc : -ENOENT,
                       "--log-file %s: cannot tell which mount it lies on, so it cannot be "
                       "kept from the command: %s",
                       path, strerror(rc < 0 ? -rc : ENOENT));
fail:
  close(lp->fd);
  lp->fd = -1;
  return rc;
}

/* ---- inside the sandbox ----------------------------------------------------- */

/* What is bound, collected first (mountinfo is read whole before anything is
 * mounted): paths in a static pool, no malloc (this runs in a child cloned
 * from a threaded process). */
static char pool[POOL_SIZE];
static struct target {
  size_t off;
  int file;
} targets[MAX_TARGETS];

struct collect {
  const struct awf_logprotect *lp;
  char *err;
  size_t errlen;
  size_t n, used;
};

static int add_target(struct collect *c, const char *path, int file) {
  size_t len = strlen(path) + 1;

  if (c->n == MAX_TARGETS || len > sizeof pool - c->used)
    return awf_errbuf_fail(c->err, c->errlen, -E2BIG,
                           "--log-file %s: the sandbox shows it in too many places (more "
                           "than %d directories and mounts) to protect them all",
                           c->lp->path, MAX_TARGETS);
  memcpy(pool + c->used, path, len);
  targets[c->n++] = (struct target){c->used, file};
  c->used += len;
  return 0;
}

static const char *type_name(mode_t mode) {
  return S_ISFIFO(mode) ? "a FIFO" : S_ISSOCK(mode) ? "a socket" : "a block device";
}

/* The file is at path, reached on its mount (fd): note it, or refuse it. */
static int found_file(struct collect *c, int fd, const char *path) {
  const struct awf_logprotect *lp = c->lp;
  struct stat st;

  if (fstat(fd, &st) < 0 || st.st_dev != lp->dev || st.st_ino != lp->ino)
    return 0;
  if (lp->kind == AWF_LOG_SPECIAL)
    return awf_errbuf_fail(c->err, c->errlen, -EPERM,
                           "--log-file %s is %s that the sandbox shows at %s, where the "
                           "command could open it too: use a regular file",
                           lp->path, type_name(st.st_mode), path);
  return add_target(c, path, 1);
}

/* Walk from the mount's mount point down to the file, one component at a
 * time without following links, staying on this mount: each directory on
 * the way is noted, then the file. Where another mount covers the path the
 * walk stops: that mount, if of the same filesystem, has a line of its own. */
static int walk_mount(struct collect *c, const struct awf_mountinfo *m, const char *rest) {
  char path[PATH_MAX];
  unsigned long id = 0;
  int rc = 0, fd;
  size_t len = strlen(m->mount_point);

  if (len >= sizeof path)
    return 0;
  memcpy(path, m->mount_point, len + 1);
  fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0)
    return 0; /* not reachable */
  if (mount_id_of(fd, &id) < 0 || id != m->id) {
    close(fd);
    return 0; /* covered by a later mount: hidden */
  }
  while (rc == 0) {
    rest += strspn(rest, "/");
    size_t n = strcspn(rest, "/");
    if (n == 0) {
      rc = found_file(c, fd, path);
      break;
    }
    if (len + (len > 1) + n >= sizeof path || n > NAME_MAX) {
      rc = awf_errbuf_fail(c->err, c->errlen, -ENAMETOOLONG,
                           "--log-file %s: its path in the sandbox, below %s, is too long",
                           c->lp->path, m->mount_point);
      break;
    }
    char name[NAME_MAX + 1];
    memcpy(name, rest, n);
    name[n] = '\0';
    rest += n;
    int next = openat(fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    close(fd);
    fd = next;
    if (fd < 0)
      return 0;
    if (len > 1)
      path[len++] = '/';
    memcpy(path + len, name, n + 1);
    len += n;
    struct stat st;
    if (mount_id_of(fd, &id) < 0 || id != m->id || fstat(fd, &st) < 0)
      break;
    if (rest[strspn(rest, "/")] != '\0') {
      if (!S_ISDIR(st.st_mode))
        break;
      rc = add_target(c, path, 0);
    }
  }
  close(fd);
  return rc;
}

static int collect_mount(void *ctx, const struct awf_mountinfo *m) {
  struct collect *c = ctx;
  const char *rest;

  if (strcmp(m->devid, c->lp->devid) != 0)
    return 0;
  rest = awf_logprotect_below(c->lp->fs_path, m->root);
  if (rest == NULL)
    return 0;
  /* A read-only mount already refuses writes, renames and unlinks; not a
   * FIFO's opening, though. */
  if (c->lp->kind == AWF_LOG_REGULAR && awf_mountinfo_read_only(m))
    return 0;
  return walk_mount(c, m, rest);
}

static int protect(struct collect *c) {
  const struct awf_logprotect *lp = c->lp;
  const unsigned long ro = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;

  /* directories first: a recursive bind keeps what is mounted below */
  for (size_t i = 0; i < c->n; i++) {
    const char *p = pool + targets[i].off;

    if (!targets[i].file && mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
      return awf_errbuf_fail(c->err, c->errlen, -errno,
                             "--log-file %s: binding its directory %s onto itself (so it "
                             "cannot be moved): %s",
                             lp->path, p, strerror(errno));
  }
  for (size_t i = 0; i < c->n; i++) {
    const char *p = pool + targets[i].off;
    struct statvfs sv;
    struct stat st;

    if (!targets[i].file)
      continue;
    if (mount(p, p, NULL, MS_BIND, NULL) < 0 || mount(NULL, p, NULL, ro, NULL) < 0)
      return awf_errbuf_fail(c->err, c->errlen, -errno,
                             "--log-file %s: binding it read-only onto itself at %s: %s",
                             lp->path, p, strerror(errno));
    if (statvfs(p, &sv) < 0 || !(sv.f_flag & ST_RDONLY) || stat(p, &st) < 0 ||
        st.st_dev != lp->dev || st.st_ino != lp->ino)
      return awf_errbuf_fail(c->err, c->errlen, -EIO,
                             "--log-file %s: %s is not the read-only log after binding it",
                             lp->path, p);
  }
  return 0;
}

int awf_logprotect_apply(const struct awf_logprotect *lp, char *err, size_t errlen) {
  char buf[MOUNTINFO_LINE_MAX];
  struct collect c = {.lp = lp, .err = err, .errlen = errlen};
  int rc;

  if (lp->fd >= 0)
    close(lp->fd); /* awf's own descriptor: not the sandbox's */
  if (lp->kind == AWF_LOG_UNGUARDED)
    return 0;
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  rc = awf_mountinfo_each("/proc/self/mountinfo", buf, sizeof buf, collect_mount, &c);
  if (rc < 0 && (err == NULL || errlen == 0 || err[0] == '\0'))
    rc = awf_errbuf_fail(err, errlen, rc,
                         "--log-file %s: reading the sandbox's /proc/self/mountinfo: %s",
                         lp->path, strerror(-rc));
  return rc < 0 ? rc : protect(&c);
}
