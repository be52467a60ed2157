/* Unit tests for sandbox/rootfs.c (root only).
 *
 * Each case runs in a forked child that enters new mount and PID namespaces,
 * makes its mounts slaves (nothing it mounts reaches the host), prepares its
 * fixtures there (a tmpfs submount inside /usr, a fake Docker socket in
 * /run), then forks the PID 1 of the new PID namespace, which builds the
 * sandbox's root and checks it from the inside, reporting through a pipe.
 * The test process's own mount table must be the same after each case, and
 * what the sandbox wrote through a read-write -v must be on the host. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rootfs.h"
#include "sbx_child.h"

#define RESOLV "nameserver 198.18.0.1\noptions ndots:1 # awf's own\n"
#define HOSTS "127.0.0.1 localhost\n127.0.1.1 awf # awf's own\n"
#define MISSING "/nonexistent/awf-rootfs-missing"

struct fixture {
  char base[64]; /* /tmp/awf-rootfs-XXXXXX: seen in the sandbox through /tmp */
  char home[128], ro[128], rw[128], file[128], secret[128];
};

/* Top-level paths that merged /usr makes symlinks. */
static const char *const tops[] = {"/bin", "/sbin", "/lib", "/lib64"};
#define TOPS (sizeof(tops) / sizeof(tops[0]))

struct rootfs_case {
  const struct fixture *fx;
  char host_links[TOPS][PATH_MAX]; /* the host's targets, "" for a directory */
  struct awf_rootfs_spec spec;
  struct awf_rootfs_mount mounts[3];
  int (*prepare)(int out);                            /* in the new mount namespace */
  int (*check)(int out, const struct rootfs_case *c); /* in PID 1, after the build */
  bool block_mount_setattr;                           /* exercise the mountinfo fallback */
  bool shared_host; /* start from a namespace of shared mounts */
};

static int skip_unless_root(void) {
  if (geteuid() == 0)
    return 0;
  fprintf(stderr, "skipped: needs root (mount and PID namespaces, pivot_root)\n");
  return 1;
}

/* ---- small file helpers ---------------------------------------------------- */

static int write_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return -errno;
  ssize_t n = write(fd, text, strlen(text));
  int e = n == (ssize_t)strlen(text) ? 0 : (n < 0 ? -errno : -EIO);
  close(fd);
  return e;
}

static int read_text(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  ssize_t n = read(fd, buf, size - 1);
  int e = n < 0 ? -errno : 0;
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  return e;
}

static int count_entries(const char *dir, bool numeric_only) {
  DIR *d = opendir(dir);
  if (!d)
    return -errno;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (!numeric_only || strspn(e->d_name, "0123456789") == strlen(e->d_name))
      n++;
  }
  closedir(d);
  return n;
}

/* ---- checks made inside ---------------------------------------------------- */

static int expect_absent(int out, const char *path) {
  struct stat st;
  if (lstat(path, &st) == 0 || errno != ENOENT)
    return sbx_fail(out, "%s is visible in the sandbox", path);
  return 0;
}

static int expect_erofs(int out, const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    close(fd);
    return sbx_fail(out, "%s could be created (read-only expected)", path);
  }
  if (errno != EROFS)
    return sbx_fail(out, "creating %s: %s, not EROFS", path, strerror(errno));
  return 0;
}

static int expect_writable(int out, const char *path, const char *text) {
  int rc = write_text(path, text);
  if (rc < 0)
    return sbx_fail(out, "writing %s: %s", path, strerror(-rc));
  return 0;
}

static int expect_content(int out, const char *path, const char *text) {
  char buf[4096];
  int rc = read_text(path, buf, sizeof(buf));
  if (rc < 0)
    return sbx_fail(out, "reading %s: %s", path, strerror(-rc));
  if (strcmp(buf, text) != 0)
    return sbx_fail(out, "%s holds \"%s\", not \"%s\"", path, buf, text);
  return 0;
}

/* A host binary runs, and its /proc/self/exe is itself. */
static int expect_readlink_runs(int out) {
  int p[2];
  if (pipe(p) < 0)
    return sbx_fail(out, "pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    execl("/usr/bin/readlink", "readlink", "/proc/self/exe", (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  char buf[256] = "";
  size_t used = 0;
  ssize_t n;
  while (used + 1 < sizeof(buf) && (n = read(p[0], buf + used, sizeof(buf) - 1 - used)) > 0)
    used += (size_t)n;
  buf[used] = '\0';
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || strcmp(buf, "/usr/bin/readlink\n") != 0)
    return sbx_fail(out, "readlink /proc/self/exe: status %#x, output \"%s\"", (unsigned)st,
                    buf);
  return 0;
}

static int check_etc(int out) {
  const char *secret[] = {"/etc/shadow",
                          "/etc/gshadow",
                          "/etc/sudoers",
                          "/etc/sudoers.d",
                          "/etc/ssh/ssh_host_ed25519_key",
                          "/etc/ssl/private/awf"};
  for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
    if (expect_absent(out, secret[i]))
      return 1;
  char buf[64];
  if (read_text("/etc/passwd", buf, sizeof(buf)) < 0 || strncmp(buf, "root:", 5) != 0)
    return sbx_fail(out, "/etc/passwd is not readable or does not start with root:");
  struct stat st;
  if (stat("/etc/resolv.conf", &st) < 0 || (st.st_mode & 07777) != 0644)
    return sbx_fail(out, "/etc/resolv.conf: missing or mode %o", (unsigned)st.st_mode);
  if (expect_content(out, "/etc/resolv.conf", RESOLV) ||
      expect_content(out, "/etc/hostname", "awf\n") || expect_content(out, "/etc/hosts", HOSTS))
    return 1;
  if (stat("/etc/ssl/certs", &st) < 0 || !S_ISDIR(st.st_mode))
    return sbx_fail(out, "/etc/ssl/certs is missing");
  return expect_erofs(out, "/etc/passwd") || expect_erofs(out, "/etc/awf-probe");
}

/* Merged /usr: the host's top-level symlinks are the same symlinks inside,
 * and they lead somewhere. */
static int check_symlinks_kept(int out, const struct rootfs_case *c) {
  for (size_t i = 0; i < TOPS; i++) {
    char inside[PATH_MAX];
    ssize_t n = readlink(tops[i], inside, sizeof(inside) - 1);
    inside[n > 0 ? n : 0] = '\0';
    if (strcmp(inside, c->host_links[i]) != 0)
      return sbx_fail(out, "%s -> \"%s\" inside, \"%s\" on the host", tops[i], inside,
                      c->host_links[i]);
    struct stat st;
    if (n > 0 && stat(tops[i], &st) < 0)
      return sbx_fail(out, "%s -> %s dangles", tops[i], inside);
  }
  return 0;
}

static int check_dev(int out) {
  if (expect_writable(out, "/dev/null", "x"))
    return 1;
  char z[4] = {1, 1, 1, 1};
  int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, z, sizeof(z)) != (ssize_t)sizeof(z) || z[0] || z[3])
    return sbx_fail(out, "/dev/zero does not read zeros");
  close(fd);
  struct stat st;
  if (stat("/dev/pts", &st) < 0 || !S_ISDIR(st.st_mode))
    return sbx_fail(out, "/dev/pts is missing");
  fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return sbx_fail(out, "opening /dev/ptmx: %s", strerror(errno));
  close(fd);
  char link[64];
  ssize_t n = readlink("/dev/fd", link, sizeof(link) - 1);
  if (n < 0 || (link[n] = '\0', strcmp(link, "/proc/self/fd") != 0))
    return sbx_fail(out, "/dev/fd is not a symlink to /proc/self/fd");
  if (stat("/dev/shm", &st) < 0 || (st.st_mode & 07777) != 01777)
    return sbx_fail(out, "/dev/shm is not a 1777 directory");
  if (expect_writable(out, "/dev/shm/awf", "x"))
    return 1;
  return expect_absent(out, "/dev/mem") || expect_absent(out, "/dev/kmsg");
}

static int check_proc_and_sys(int out) {
  if (expect_readlink_runs(out))
    return 1;
  int pids = count_entries("/proc", true);
  if (pids < 1 || pids > 3)
    return sbx_fail(out, "/proc shows %d processes (the sandbox's only expected)", pids);
  int fd = open("/proc/sys/kernel/hostname", O_WRONLY | O_CLOEXEC);
  if (fd >= 0 || errno != EROFS)
    return sbx_fail(out, "/proc/sys is writable (%s)", fd >= 0 ? "opened" : strerror(errno));
  fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC); /* absent without MAGIC_SYSRQ */
  if (fd >= 0 || (errno != EROFS && errno != ENOENT))
    return sbx_fail(out, "/proc/sysrq-trigger: %s", fd >= 0 ? "writable" : strerror(errno));
  if (mkdir("/sys/awf", 0755) == 0 || errno != EROFS)
    return sbx_fail(out, "/sys is not read-only: %s", strerror(errno));
  struct stat st;
  if (stat("/sys/class", &st) < 0)
    return sbx_fail(out, "/sys is empty");
  return 0;
}

/* Only the mounted set is there; the rest of the host is not. */
static int check_hidden(int out) {
  const char *hidden[] = {"/root",
                          "/srv",
                          "/var/log",
                          "/home",
                          "/work",
                          "/run/docker.sock",
                          "/var/run/docker.sock",
                          "/mnt/unlisted",
                          "/.awf-oldroot"};
  for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
    if (expect_absent(out, hidden[i]))
      return 1;
  if (mkdir("/awf-probe", 0755) == 0 || errno != EROFS)
    return sbx_fail(out, "the root is not read-only");
  char cwd[64];
  if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, "/") != 0)
    return sbx_fail(out, "the working directory is not /");
  return 0;
}

static int check_layout(int out, const struct rootfs_case *c) {
  const struct fixture *fx = c->fx;
  char path[PATH_MAX];
  if (check_etc(out) || check_symlinks_kept(out, c) || check_dev(out) ||
      check_proc_and_sys(out) || check_hidden(out))
    return 1;
  if (expect_erofs(out, "/usr/awf-probe") || expect_erofs(out, "/usr/local/awf-probe"))
    return 1;
  if (expect_erofs(out, "/mnt/ro/awf-probe") ||
      expect_content(out, "/mnt/ro/ro-marker", "ro\n"))
    return 1;
  if (expect_writable(out, "/mnt/rw/from-sandbox", "inside\n"))
    return 1;
  if (expect_content(out, "/etc/awf-test.txt", "hello\n") ||
      expect_erofs(out, "/etc/awf-test.txt"))
    return 1;
  snprintf(path, sizeof(path), "%s/from-sandbox", fx->home);
  if (expect_writable(out, path, "home\n"))
    return 1;
  snprintf(path, sizeof(path), "%s/tmp-marker", fx->base);
  if (expect_content(out, path, "host tmp\n")) /* the host's /tmp, shared */
    return 1;
  snprintf(path, sizeof(path), "%s/tmp-probe", fx->base);
  if (expect_writable(out, path, "x"))
    return 1;
  return unlink(path) < 0 ? sbx_fail(out, "unlink %s: %s", path, strerror(errno)) : 0;
}

static int check_private_tmp(int out, const struct rootfs_case *c) {
  struct stat st;
  if (stat("/tmp", &st) < 0 || (st.st_mode & 07777) != 01777)
    return sbx_fail(out, "/tmp is not a 1777 directory");
  int n = count_entries("/tmp", false);
  if (n != 0)
    return sbx_fail(out, "the private /tmp holds %d entries", n);
  if (expect_absent(out, c->fx->base) || expect_absent(out, "/nonexistent"))
    return 1;
  return expect_writable(out, "/tmp/x", "x");
}

/* With mount_setattr refused, the mountinfo walk makes the submounts read-only. */
static int check_fallback(int out, const struct rootfs_case *c) {
  (void)c;
  if (expect_erofs(out, "/usr/awf-probe") || expect_erofs(out, "/usr/local/awf-probe") ||
      expect_erofs(out, "/mnt/ro/awf-probe") ||
      expect_writable(out, "/mnt/rw/fallback", "x\n") ||
      expect_writable(out, "/dev/null", "x") || check_proc_and_sys(out) || check_hidden(out))
    return 1;
  return 0;
}

static int check_home_in_read_only_tree(int out, const struct rootfs_case *c) {
  (void)c;
  if (expect_writable(out, "/usr/local/awf-home/f", "x") || expect_erofs(out, "/usr/local/f") ||
      expect_erofs(out, "/usr/f"))
    return 1;
  return 0;
}

static int check_later_over_earlier(int out, const struct rootfs_case *c) {
  (void)c;
  if (expect_absent(out, "/mnt/a/ro-marker") || expect_writable(out, "/mnt/a/later", "x"))
    return 1;
  return 0;
}

/* ---- cases that must fail, before anything is mounted ----------------------- */

struct bad_mount {
  struct awf_rootfs_mount m;
  int rc;
  const char *named; /* the message must contain it */
};

static int check_bad_mounts(int out, const struct rootfs_case *c) {
  const struct bad_mount bad[] = {
      {{MISSING, "/data", false}, -ENOENT, MISSING},
      {{c->fx->rw, "data", false}, -EINVAL, "data"},
      {{c->fx->rw, "/data/../etc", false}, -EINVAL, "/data/../etc"},
      {{c->fx->rw, "//", false}, -EINVAL, "cannot be /"},
      {{"relative", "/data", false}, -EINVAL, "relative"},
      {{c->fx->rw, "/.awf-oldroot/x", false}, -EINVAL, "reserved"},
      {{c->fx->rw, "/./.awf-oldroot/x", false}, -EINVAL, ". or .."},
      /* root-only: the caller (uid 1000 here) could not open it, so awf will not */
      {{c->fx->secret, "/data", false}, -EACCES, "secret"},
  };
  struct stat root_before, root_after;
  if (stat("/", &root_before) < 0)
    return sbx_fail(out, "stat /: %s", strerror(errno));
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct awf_rootfs_spec spec = c->spec;
    struct awf_rootfs_mount mounts[2] = {{c->fx->ro, "/mnt/ro", true}, bad[i].m};
    spec.mounts = mounts;
    spec.n_mounts = 2;
    char err[512] = "";
    int rc = awf_rootfs_build(&spec, err, sizeof(err));
    if (rc != bad[i].rc || !strstr(err, bad[i].named))
      return sbx_fail(out, "-v %s:%s: rc %d, message \"%s\"", bad[i].m.host, bad[i].m.sandbox,
                      rc, err);
  }
  /* still the host's root, no tmpfs on /tmp: nothing was done */
  if (stat("/", &root_after) < 0 || root_after.st_dev != root_before.st_dev ||
      root_after.st_ino != root_before.st_ino || expect_absent(out, "/tmp/.awf-oldroot"))
    return sbx_fail(out, "a refused spec changed the root");
  return 0;
}

/* ---- fixtures inside the case's namespace ------------------------------------ */

/* A submount inside a read-only tree and a Docker socket in /run, both only
 * in this mount namespace. */
static int prepare_submount_and_socket(int out) {
  if (mount("awf-test", "/usr/local", "tmpfs", 0, "mode=0755") < 0)
    return sbx_fail(out, "tmpfs on /usr/local: %s", strerror(errno));
  if (mkdir("/usr/local/awf-home", 0755) < 0)
    return sbx_fail(out, "mkdir /usr/local/awf-home: %s", strerror(errno));
  if (mount("awf-test", "/run", "tmpfs", 0, "mode=0755") < 0)
    return sbx_fail(out, "tmpfs on /run: %s", strerror(errno));
  if (write_text("/run/docker.sock", "") < 0)
    return sbx_fail(out, "creating a fake /run/docker.sock");
  return 0;
}

static int block_mount_setattr(int out) {
  scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
  if (!f || seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(mount_setattr), 0) < 0 ||
      seccomp_load(f) < 0)
    return sbx_fail(out, "cannot filter mount_setattr");
  seccomp_release(f);
  if (mount_setattr(AT_FDCWD, "/", 0, &(struct mount_attr){0}, sizeof(struct mount_attr)) ==
          0 ||
      errno != ENOSYS)
    return sbx_fail(out, "mount_setattr is not refused with ENOSYS");
  return 0;
}

static int sandbox_pid1(int out, const struct rootfs_case *c) {
  if (getpid() != 1)
    return sbx_fail(out, "not PID 1 of a new PID namespace");
  if (c->block_mount_setattr && block_mount_setattr(out))
    return 1;
  if (c->check == check_bad_mounts)
    return c->check(out, c);
  char err[512] = "";
  int rc = awf_rootfs_build(&c->spec, err, sizeof(err));
  if (rc < 0)
    return sbx_fail(out, "awf_rootfs_build: %d: %s", rc, err);
  return c->check(out, c);
}

/* The whole mount table of this process; NULL if it cannot be read. */
static char *read_mountinfo(void) {
  size_t cap = 1 << 16, used = 0;
  char *buf = malloc(cap);
  int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  while (buf && fd >= 0) {
    if (used + 1 == cap) {
      char *bigger = realloc(buf, cap *= 2);
      if (!bigger)
        break;
      buf = bigger;
    }
    ssize_t n = read(fd, buf + used, cap - 1 - used);
    if (n <= 0) {
      if (n == 0) {
        buf[used] = '\0';
        close(fd);
        return buf;
      }
      break;
    }
    used += (size_t)n;
  }
  free(buf);
  if (fd >= 0)
    close(fd);
  return NULL;
}

/* The first line of `after` not in `before`, or NULL. Network namespaces that
 * other tests pin under /run/netns meanwhile are not ours. */
static const char *new_mount(const char *before, const char *after, char *line, size_t size) {
  for (const char *p = after; *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
    snprintf(line, size, "%.*s", (int)len, p);
    if (!strstr(before, line) && !strstr(line, " /run/netns"))
      return line;
    p += len;
  }
  return NULL;
}

/* Enter the new namespaces, prepare, and start PID 1. slave_first: make the
 * mounts slaves before preparing (which mounts); without it the first mount
 * of all is awf_rootfs_build's own. */
static int run_sandbox(int out, const struct rootfs_case *c, bool slave_first) {
  if (unshare(CLONE_NEWNS | CLONE_NEWPID) < 0)
    return sbx_fail(out, "unshare: %s", strerror(errno));
  if (slave_first && mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
    return sbx_fail(out, "make-rslave: %s", strerror(errno));
  if (c->prepare && c->prepare(out))
    return 1;
  pid_t pid = fork();
  if (pid < 0)
    return sbx_fail(out, "fork: %s", strerror(errno));
  if (pid == 0)
    _exit(sandbox_pid1(out, c));
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(st))
    return sbx_fail(out, "PID 1 died: status %#x", (unsigned)st);
  return WEXITSTATUS(st);
}

/* A stand-in host whose every mount is shared (as on systemd hosts): the
 * sandbox's namespace is a copy of it, so its mounts are peers and would
 * propagate back unless awf_rootfs_build cuts that first. */
static int run_under_shared_host(int out, const struct rootfs_case *c) {
  if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SHARED, NULL) < 0)
    return sbx_fail(out, "a shared stand-in host: %s", strerror(errno));
  char *before = read_mountinfo();
  pid_t pid = fork();
  if (pid == 0)
    _exit(run_sandbox(out, c, false));
  int st = 0;
  while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  char *after = read_mountinfo(), line[4096];
  int rc = !before || !after || pid < 0        ? sbx_fail(out, "mountinfo or fork failed")
           : !WIFEXITED(st) || WEXITSTATUS(st) ? 1
           : new_mount(before, after, line, sizeof(line))
               ? sbx_fail(out, "a mount reached the shared stand-in host: %s", line)
               : 0;
  free(before);
  free(after);
  return rc;
}

static int run_in_namespaces(int out, const void *arg) {
  const struct rootfs_case *c = arg;
  return c->shared_host ? run_under_shared_host(out, c) : run_sandbox(out, c, true);
}

/* ---- the host side --------------------------------------------------------------- */

static void run_case(const struct rootfs_case *c) {
  char *before = read_mountinfo(), line[4096];
  assert_non_null(before);
  sbx_expect_child_ok(run_in_namespaces, c);
  char *after = read_mountinfo();
  assert_non_null(after);
  if (new_mount(before, after, line, sizeof(line)))
    fail_msg("a mount appeared on the host: %s", line);
  free(before);
  free(after);
}

/* The full case: home, a read-only and a read-write -v, a file -v, the
 * submount and Docker socket fixtures. */
static void layout_case(struct rootfs_case *c, const struct fixture *fx) {
  memset(c, 0, sizeof(*c));
  c->fx = fx;
  c->prepare = prepare_submount_and_socket;
  c->check = check_layout;
  c->mounts[0] = (struct awf_rootfs_mount){fx->ro, "/mnt/ro", true};
  c->mounts[1] = (struct awf_rootfs_mount){fx->rw, "/mnt/rw", false};
  c->mounts[2] = (struct awf_rootfs_mount){fx->file, "/etc/awf-test.txt", true};
  c->spec = (struct awf_rootfs_spec){.home = fx->home,
                                     .mounts = c->mounts,
                                     .n_mounts = 3,
                                     .resolv_conf = RESOLV,
                                     .hosts = HOSTS,
                                     .uid = 1000,
                                     .gid = 1000};
  for (size_t i = 0; i < TOPS; i++) {
    ssize_t n = readlink(tops[i], c->host_links[i], PATH_MAX - 1);
    c->host_links[i][n > 0 ? n : 0] = '\0';
  }
}

static void test_layout(void **state) {
  if (skip_unless_root())
    skip();
  const struct fixture *fx = *state;
  struct rootfs_case c;
  layout_case(&c, fx);
  run_case(&c);
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/from-sandbox", fx->rw);
  char buf[64];
  assert_int_equal(read_text(path, buf, sizeof(buf)), 0);
  assert_string_equal(buf, "inside\n");
  snprintf(path, sizeof(path), "%s/from-sandbox", fx->home);
  assert_int_equal(read_text(path, buf, sizeof(buf)), 0);
  assert_string_equal(buf, "home\n");
}

static void test_mountinfo_fallback(void **state) {
  if (skip_unless_root())
    skip();
  const struct fixture *fx = *state;
  struct rootfs_case c;
  layout_case(&c, fx);
  c.check = check_fallback;
  c.block_mount_setattr = true;
  run_case(&c);
  char path[PATH_MAX], buf[64];
  snprintf(path, sizeof(path), "%s/fallback", fx->rw);
  assert_int_equal(read_text(path, buf, sizeof(buf)), 0);
}

static int check_only_hidden(int out, const struct rootfs_case *c) {
  (void)c;
  return check_hidden(out);
}

static void test_nothing_propagates_to_a_shared_host(void **state) {
  if (skip_unless_root())
    skip();
  struct rootfs_case c;
  layout_case(&c, *state);
  c.prepare = NULL;
  c.check = check_only_hidden;
  c.shared_host = true;
  run_case(&c);
}

static void test_private_tmp(void **state) {
  if (skip_unless_root())
    skip();
  struct rootfs_case c = {.fx = *state, .check = check_private_tmp};
  c.spec = (struct awf_rootfs_spec){.home = "/nonexistent/awf-home",
                                    .private_tmp = true,
                                    .resolv_conf = RESOLV};
  run_case(&c);
}

static void test_home_inside_read_only_tree(void **state) {
  if (skip_unless_root())
    skip();
  struct rootfs_case c = {.fx = *state,
                          .prepare = prepare_submount_and_socket,
                          .check = check_home_in_read_only_tree};
  c.spec = (struct awf_rootfs_spec){.home = "/usr/local/awf-home", .resolv_conf = RESOLV};
  run_case(&c);
}

static void test_later_mount_over_earlier(void **state) {
  if (skip_unless_root())
    skip();
  const struct fixture *fx = *state;
  struct rootfs_case c = {.fx = fx, .check = check_later_over_earlier};
  c.mounts[0] = (struct awf_rootfs_mount){fx->ro, "/mnt/a", true};
  c.mounts[1] = (struct awf_rootfs_mount){fx->rw, "/mnt/a", false};
  c.spec = (struct awf_rootfs_spec){.mounts = c.mounts, .n_mounts = 2, .resolv_conf = RESOLV};
  run_case(&c);
}

static void test_bad_mounts_refused_before_mounting(void **state) {
  if (skip_unless_root())
    skip();
  struct rootfs_case c = {.fx = *state, .check = check_bad_mounts};
  c.spec = (struct awf_rootfs_spec){.resolv_conf = RESOLV, .uid = 1000, .gid = 1000};
  run_case(&c);
}

/* ---- the fixture on the host --------------------------------------------------- */

static int setup(void **state) {
  static struct fixture fx;
  snprintf(fx.base, sizeof(fx.base), "/tmp/awf-rootfs-XXXXXX");
  if (!mkdtemp(fx.base))
    return -1;
  snprintf(fx.home, sizeof(fx.home), "%s/home", fx.base);
  snprintf(fx.ro, sizeof(fx.ro), "%s/ro", fx.base);
  snprintf(fx.rw, sizeof(fx.rw), "%s/rw", fx.base);
  snprintf(fx.file, sizeof(fx.file), "%s/file.txt", fx.base);
  char path[PATH_MAX];
  /* -v host paths are opened with the caller's rights: the fixture's own
   * directory must be searchable by the spec's uid; secret/key is not. */
  snprintf(path, sizeof(path), "%s/secret", fx.base);
  snprintf(fx.secret, sizeof(fx.secret), "%s/secret/key", fx.base);
  if (chmod(fx.base, 0755) < 0 || mkdir(path, 0700) < 0 || write_text(fx.secret, "key\n") < 0)
    return -1;
  if (mkdir(fx.home, 0755) < 0 || mkdir(fx.ro, 0755) < 0 || mkdir(fx.rw, 0755) < 0 ||
      write_text(fx.file, "hello\n") < 0)
    return -1;
  snprintf(path, sizeof(path), "%s/ro-marker", fx.ro);
  if (write_text(path, "ro\n") < 0)
    return -1;
  snprintf(path, sizeof(path), "%s/tmp-marker", fx.base);
  if (write_text(path, "host tmp\n") < 0)
    return -1;
  *state = &fx;
  return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int teardown(void **state) {
  const struct fixture *fx = *state;
  return fx ? nftw(fx->base, remove_entry, 16, FTW_DEPTH | FTW_PHYS) : 0;
}

/* Pure: which host file a sandbox path shows (PATH is filtered with it). */
static void expect_host(const struct awf_rootfs_spec *spec, const char *path,
                        const char *want) {
  char out[PATH_MAX];
  int rc = awf_rootfs_host_path_of(spec, path, out, sizeof(out));
  if (want == NULL) {
    assert_int_equal(rc, -ENOENT);
  } else {
    assert_int_equal(rc, 0);
    assert_string_equal(out, want);
  }
}

static void test_host_path_of(void **state) {
  (void)state;
  const struct awf_rootfs_mount mounts[] = {{"/srv/tools", "/opt/tools", true},
                                            {"/data/new", "/opt/tools/bin", false},
                                            {"/x", "/work", false}};
  struct awf_rootfs_spec spec = {.home = "/home/u", .mounts = mounts, .n_mounts = 3};
  expect_host(&spec, "/usr/local/bin", "/usr/local/bin");
  expect_host(&spec, "/lib32", "/lib32");
  expect_host(&spec, "/home/u/.local/bin", "/home/u/.local/bin");
  expect_host(&spec, "/home/user2/bin", NULL); /* not a prefix by bytes */
  expect_host(&spec, "/tmp/bin", "/tmp/bin");
  expect_host(&spec, "/opt/tools/lib", "/srv/tools/lib"); /* -v over /opt */
  expect_host(&spec, "/opt/tools/bin/x", "/data/new/x");  /* the later -v wins */
  expect_host(&spec, "/work", "/x");
  expect_host(&spec, "/workspace", NULL);
  expect_host(&spec, "/root/bin", NULL);
  expect_host(&spec, "/etc", NULL);
  expect_host(&spec, "relative/bin", NULL);
  spec.private_tmp = true;
  expect_host(&spec, "/tmp/bin", NULL); /* a fresh tmpfs */
  spec.home = "/";
  expect_host(&spec, "/anything", NULL); /* a home of / is never bound */
  char small[8];
  assert_int_equal(awf_rootfs_host_path_of(&spec, "/usr/local/bin", small, sizeof(small)),
                   -ENAMETOOLONG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_host_path_of),
      cmocka_unit_test(test_layout),
      cmocka_unit_test(test_mountinfo_fallback),
      cmocka_unit_test(test_nothing_propagates_to_a_shared_host),
      cmocka_unit_test(test_private_tmp),
      cmocka_unit_test(test_home_inside_read_only_tree),
      cmocka_unit_test(test_later_mount_over_earlier),
      cmocka_unit_test(test_bad_mounts_refused_before_mounting),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
