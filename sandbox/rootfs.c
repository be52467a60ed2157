/* rootfs.c: see rootfs.h.
 *
 * The order: check the spec and resolve the host paths it names while the
 * host's root is still the root (so symlinks resolve as the user sees them);
 * make every mount a slave; mount a tmpfs on /tmp and pivot_root into it with
 * the old root put at OLDROOT, where the host's tree, its /tmp included, stays
 * whole; fill the new root from OLDROOT paths; detach the old root; mount
 * /proc; make the root read-only. Building inside the new root rather than in
 * a directory entered at the end means that mount targets resolve symlinks
 * (merged /usr, /etc/localtime) as the sandbox will see them. */
#include "rootfs.h"
#include "errbuf.h"
#include "fscreds.h"
#include "hostpath.h"
#include "mountinfo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Where the host's root stays while the new one is built. */
#define OLDROOT_NAME ".awf-oldroot"
#define OLDROOT "/" OLDROOT_NAME

/* Longest /proc/self/mountinfo line handled (two escaped paths and options). */
#define MOUNTINFO_LINE_MAX 16384

/* Mount attributes, applied to a mount or to a whole tree. */
enum { ATTR_RO = 1, ATTR_NOSUID = 2, ATTR_NODEV = 4, ATTR_NOEXEC = 8 };
#define ATTR_SYSTEM (ATTR_RO | ATTR_NOSUID | ATTR_NODEV)
#define ATTR_USER (ATTR_NOSUID | ATTR_NODEV)

struct build {
  const struct awf_rootfs_spec *spec;
  char *err;
  size_t errlen;
  const char *proc;           /* a procfs to read mountinfo from, changes once */
  char (*resolved)[PATH_MAX]; /* [0] the home ("" to skip), [1 + i] -v host path i */
  int *source;                /* O_PATH of each, then the detached copy of its tree; -1 */
};

/* Top-level trees of host binaries and libraries. */
static const char *const system_trees[] = {"/usr",   "/bin",   "/sbin",   "/lib",
                                           "/lib32", "/lib64", "/libx32", "/opt"};

/* The /etc entries programs need to run. An allowlist: shadow, gshadow,
 * sudoers and /etc/ssh's host keys are never among them. */
static const char *const etc_entries[] = {
    /* certificates and TLS configuration */
    "/etc/ssl", "/etc/ca-certificates", "/etc/ca-certificates.conf", "/etc/pki",
    "/etc/crypto-policies", "/etc/gnutls",
    /* users, groups and the name services that need no daemon */
    "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/hosts",
    "/etc/gai.conf", "/etc/networks", "/etc/protocols", "/etc/services", "/etc/rpc",
    /* the dynamic linker, alternatives */
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
    /* time, locale, file types */
    "/etc/localtime", "/etc/timezone", "/etc/locale.alias", "/etc/locale.conf",
    "/etc/mime.types", "/etc/magic", "/etc/magic.mime",
    /* shells and terminals */
    "/etc/profile", "/etc/profile.d", "/etc/bash.bashrc", "/etc/shells", "/etc/inputrc",
    "/etc/terminfo",
    /* what system this is */
    "/etc/os-release", "/etc/lsb-release", "/etc/debian_version", "/etc/mtab",
    /* language runtimes and tools */
    "/etc/perl", "/etc/dotnet", "/etc/fonts", "/etc/gitconfig", "/etc/pip.conf", "/etc/npmrc",
    "/etc/wgetrc", "/etc/ssh/ssh_config", "/etc/ssh/ssh_config.d"};

/* /etc directories bound by name prefix (/etc/java-17-openjdk, /etc/python3.11). */
static const char *const etc_prefixes[] = {"java-", "python3"};

/* Private keys that may sit inside the bound certificate trees: covered. */
static const char *const masked_dirs[] = {"/etc/ssl/private", "/etc/pki/tls/private"};

/* Host symlinks kept in the empty /var. */
static const char *const var_links[] = {"/var/run", "/var/lock"};

/* Host device nodes bound into the new /dev. */
static const char *const dev_nodes[] = {"/dev/null",   "/dev/zero",    "/dev/full",
                                        "/dev/random", "/dev/urandom", "/dev/tty"};

/* /dev symlinks: name, target. */
static const char *const dev_links[][2] = {{"/dev/ptmx", "pts/ptmx"},
                                           {"/dev/fd", "/proc/self/fd"},
                                           {"/dev/stdin", "/proc/self/fd/0"},
                                           {"/dev/stdout", "/proc/self/fd/1"},
                                           {"/dev/stderr", "/proc/self/fd/2"}};

/* Parts of the new /proc made read-only: a uid 0 without capabilities may
 * still write sysctls and sysrq-trigger (the checks are on the uid). */
static const char *const proc_read_only[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq",
                                             "/proc/bus"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ------------------------------------------------------------ */

/* A failed step: "<what>: <strerror(e)>", and -e as the result. */
__attribute__((format(printf, 3, 4))) static int fail(struct build *b, int e, const char *fmt,
                                                      ...) {
  char what[1024];
  va_list ap;

  if (e <= 0)
    e = EIO;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return awf_errbuf_fail(b->err, b->errlen, -e, "%s: %s", what, strerror(e));
}

/* OLDROOT + host path, i.e. the host's path as seen from the new root. */
static int host_path(struct build *b, char out[PATH_MAX], const char *host) {
  int n = snprintf(out, PATH_MAX, "%s%s", OLDROOT, host);

  if (n < 0 || n >= PATH_MAX)
    return fail(b, ENAMETOOLONG, "%s", host);
  return 0;
}

/* mkdir -p, each directory created with exactly `mode` (not the umask's). */
static int make_dirs(struct build *b, const char *path, mode_t mode) {
  char p[PATH_MAX];
  size_t len = strlen(path);
  struct stat st;

  if (len >= sizeof p)
    return fail(b, ENAMETOOLONG, "creating directory %s", path);
  memcpy(p, path, len + 1);
  for (char *s = p + 1;; s++) {
    char c = *s;

    if (c != '/' && c != '\0')
      continue;
    *s = '\0';
    if (mkdir(p, mode) == 0) {
      if (chmod(p, mode) < 0)
        return fail(b, errno, "setting the mode of %s", p);
    } else if (errno != EEXIST) {
      return fail(b, errno, "creating directory %s", p);
    }
    *s = c;
    if (c == '\0')
      break;
  }
  if (stat(path, &st) < 0)
    return fail(b, errno, "creating directory %s", path);
  if (!S_ISDIR(st.st_mode))
    return fail(b, ENOTDIR, "creating directory %s", path);
  return 0;
}

/* The directory holding path, created. */
static int make_parent(struct build *b, const char *path) {
  char p[PATH_MAX];
  size_t len = strlen(path);
  char *slash;

  if (len >= sizeof p)
    return fail(b, ENAMETOOLONG, "%s", path);
  memcpy(p, path, len + 1);
  slash = strrchr(p, '/');
  if (slash == NULL || slash == p)
    return 0;
  *slash = '\0';
  return make_dirs(b, p, 0755);
}

/* An empty file to mount a file on (an existing non-directory will do). */
static int make_file(struct build *b, const char *path) {
  struct stat st;
  int fd, rc = make_parent(b, path);

  if (rc < 0)
    return rc;
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0644);
  if (fd >= 0) {
    close(fd);
    return 0;
  }
  if (errno != EEXIST)
    return fail(b, errno, "creating %s", path);
  if (stat(path, &st) < 0)
    return fail(b, errno, "creating %s", path);
  if (S_ISDIR(st.st_mode))
    return fail(b, EISDIR, "mounting a file on %s", path);
  return 0;
}

/* A file of awf's in the new root: len bytes of data. */
static int write_bytes(struct build *b, const char *path, const void *data, size_t len,
                       mode_t mode) {
  const char *text = data;
  size_t done = 0;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, mode);

  if (fd < 0)
    return fail(b, errno, "creating %s", path);
  if (fchmod(fd, mode) < 0) {
    int e = errno;

    close(fd);
    return fail(b, e, "setting the mode of %s", path);
  }
  while (done < len) {
    ssize_t n = write(fd, text + done, len - done);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;

      close(fd);
      return fail(b, e, "writing %s", path);
    }
    done += (size_t)n;
  }
  if (close(fd) < 0)
    return fail(b, errno, "writing %s", path);
  return 0;
}

/* The host's symlink `host` (src is its OLDROOT path) recreated at target. */
static int copy_symlink(struct build *b, const char *src, const char *host,
                        const char *target) {
  char link[PATH_MAX];
  ssize_t n = readlink(src, link, sizeof link);
  int rc;

  if (n < 0)
    return fail(b, errno, "reading the symlink %s", host);
  if ((size_t)n >= sizeof link)
    return fail(b, ENAMETOOLONG, "reading the symlink %s", host);
  link[n] = '\0';
  if ((rc = make_parent(b, target)) < 0)
    return rc;
  if (symlink(link, target) < 0)
    return fail(b, errno, "creating the symlink %s -> %s", target, link);
  return 0;
}

static int write_file(struct build *b, const char *path, const char *text, mode_t mode) {
  return write_bytes(b, path, text, strlen(text), mode);
}

static int mkdir_mode(struct build *b, const char *path, mode_t mode) {
  if (mkdir(path, mode) < 0 && errno != EEXIST)
    return fail(b, errno, "creating directory %s", path);
  if (chmod(path, mode) < 0)
    return fail(b, errno, "setting the mode of %s", path);
  return 0;
}

static int mount_fs(struct build *b, const char *type, const char *target, unsigned long flags,
                    const char *options) {
  if (mount(type, target, type, flags, options) < 0)
    return fail(b, errno, "mounting a new %s on %s", type, target);
  return 0;
}

/* ---- mount attributes ----------------------------------------------------- */

/* The flags of the mount at path that a remount must keep. */
static unsigned long kept_flags(unsigned long st) {
  static const unsigned long map[][2] = {
      {ST_RDONLY, MS_RDONLY},    {ST_NOSUID, MS_NOSUID},   {ST_NODEV, MS_NODEV},
      {ST_NOEXEC, MS_NOEXEC},    {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME},
      {ST_RELATIME, MS_RELATIME}};
  unsigned long ms = 0;

  for (size_t i = 0; i < COUNT(map); i++)
    if (st & map[i][0])
      ms |= map[i][1];
  return ms;
}

static unsigned long attrs_ms(unsigned attrs) {
  return ((attrs & ATTR_RO) ? MS_RDONLY : 0) | ((attrs & ATTR_NOSUID) ? MS_NOSUID : 0) |
         ((attrs & ATTR_NODEV) ? MS_NODEV : 0) | ((attrs & ATTR_NOEXEC) ? MS_NOEXEC : 0);
}

/* One mount: its flags plus attrs, by a bind remount. */
static int remount_one(struct build *b, const char *path, unsigned attrs) {
  struct statvfs sv;

  if (statvfs(path, &sv) < 0)
    return fail(b, errno, "reading the mount flags of %s", path);
  if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | kept_flags(sv.f_flag) | attrs_ms(attrs),
            NULL) < 0)
    return fail(b, errno, "remounting %s%s", path, (attrs & ATTR_RO) ? " read-only" : "");
  return 0;
}

static int is_under(const char *path, const char *top) {
  size_t n = strlen(top);

  if (strcmp(top, "/") == 0)
    return path[0] == '/';
  return strncmp(path, top, n) == 0 && path[n] == '/';
}

struct submounts {
  struct build *b;
  const char *top;
  unsigned attrs;
};

/* A mountinfo line: remount its mount if its mount point is under top. */
static int remount_if_under(void *ctx, const struct awf_mountinfo *m) {
  struct submounts *u = ctx;

  return is_under(m->mount_point, u->top) ? remount_one(u->b, m->mount_point, u->attrs) : 0;
}

/* Every mount below top (not top itself), found in mountinfo. Remounts
 * change no mount's place in the list, so reading on while remounting is
 * safe. */
static int remount_submounts(struct build *b, const char *top, unsigned attrs) {
  char path[PATH_MAX], buf[MOUNTINFO_LINE_MAX];
  struct submounts u = {b, top, attrs};
  int rc;

  snprintf(path, sizeof path, "%s/self/mountinfo", b->proc);
  if (b->err != NULL && b->errlen > 0)
    b->err[0] = '\0';
  rc = awf_mountinfo_each(path, buf, sizeof buf, remount_if_under, &u);
  if (rc < 0 && (b->err == NULL || b->errlen == 0 || b->err[0] == '\0'))
    rc = fail(b, -rc, "reading %s (to find the submounts of %s)", path, top);
  return rc;
}

/* Without mount_setattr (kernels before 5.12, or filtered): remount the
 * mount and, for a tree, each submount listed in mountinfo. */
static int remount_tree(struct build *b, const char *path, unsigned attrs, int recursive) {
  char top[PATH_MAX];
  int rc;

  if (realpath(path, top) == NULL)
    return fail(b, errno, "resolving %s", path);
  rc = remount_one(b, top, attrs);
  if (rc == 0 && recursive)
    rc = remount_submounts(b, top, attrs);
  return rc;
}

/* mount_setattr(2) of attrs: 0 done, 1 when the kernel cannot (before
 * 5.12: remount instead), or a negative errno. */
static int setattr_with_api(int dirfd, const char *path, unsigned flags, unsigned attrs) {
#ifdef MOUNT_ATTR_RDONLY
  struct mount_attr ma = {.attr_set = ((attrs & ATTR_RO) ? MOUNT_ATTR_RDONLY : 0) |
                                      ((attrs & ATTR_NOSUID) ? MOUNT_ATTR_NOSUID : 0) |
                                      ((attrs & ATTR_NODEV) ? MOUNT_ATTR_NODEV : 0) |
                                      ((attrs & ATTR_NOEXEC) ? MOUNT_ATTR_NOEXEC : 0)};

  if (mount_setattr(dirfd, path, flags, &ma, sizeof ma) == 0)
    return 0;
  if (errno != ENOSYS && errno != EPERM && errno != EINVAL && errno != EOPNOTSUPP)
    return -errno;
#else
  (void)dirfd, (void)path, (void)flags, (void)attrs;
#endif
  return 1;
}

/* Add attrs to the mount at path, and to all its submounts if recursive. */
static int set_attrs(struct build *b, const char *path, unsigned attrs, int recursive) {
  int rc = setattr_with_api(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, attrs);

  if (rc < 0)
    return fail(b, -rc, "setting the mount attributes of %s", path);
  return rc == 0 ? 0 : remount_tree(b, path, attrs, recursive);
}

/* ---- binds ------------------------------------------------------------------ */

/* Bind src (shown as `host`) on target, recursively, with attrs throughout. */
static int bind_tree(struct build *b, const char *src, const char *host, const char *target,
                     unsigned attrs) {
  if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) < 0)
    return fail(b, errno, "binding %s on %s", host, target);
  return set_attrs(b, target, attrs, 1);
}

/* The host's path `host` at target in the sandbox: a symlink is recreated,
 * a directory or a file is bound on a mount point made to match. A missing
 * path is skipped if optional. */
static int place_host_path(struct build *b, const char *host, const char *target,
                           unsigned attrs, int optional) {
  char src[PATH_MAX];
  struct stat st;
  int rc = host_path(b, src, host);

  if (rc < 0)
    return rc;
  if (lstat(src, &st) < 0) {
    if (optional && (errno == ENOENT || errno == ENOTDIR))
      return 0;
    return fail(b, errno, "%s", host);
  }
  if (S_ISLNK(st.st_mode))
    return copy_symlink(b, src, host, target);
  rc = S_ISDIR(st.st_mode) ? make_dirs(b, target, 0755) : make_file(b, target);
  if (rc < 0)
    return rc;
  return bind_tree(b, src, host, target, attrs);
}

/* ---- checking the spec, before anything is mounted ---------------------------- */

/* A -v target: absolute, not the root, no "." or "..", not the old root's place. */
static int check_sandbox_path(struct build *b, const struct awf_rootfs_mount *m) {
  const char *p = m->sandbox, *first, *c;
  size_t len, n = strlen(OLDROOT_NAME);

  if (p == NULL || p[0] != '/')
    return fail(b, EINVAL, "-v %s:%s: the sandbox path must be absolute", m->host,
                p ? p : "(null)");
  if (strlen(p) >= PATH_MAX)
    return fail(b, ENAMETOOLONG, "-v %s:%s", m->host, p);
  first = p + strspn(p, "/");
  if (*first == '\0')
    return fail(b, EINVAL, "-v %s:%s: the sandbox path cannot be /", m->host, p);
  if (strncmp(first, OLDROOT_NAME, n) == 0 && (first[n] == '/' || first[n] == '\0'))
    return fail(b, EINVAL, "-v %s:%s: %s is reserved for awf", m->host, p, OLDROOT);
  for (c = first; *c; c += len) {
    c += strspn(c, "/");
    len = strcspn(c, "/");
    if ((len == 2 && strncmp(c, "..", 2) == 0) || (len == 1 && c[0] == '.'))
      return fail(b, EINVAL, "-v %s:%s: the sandbox path may not contain . or ..", m->host, p);
  }
  return 0;
}

/* The home, resolved; "" when absent or when it is the host's root. */
static int resolve_home(struct build *b) {
  const char *home = b->spec->home;
  char *out = b->resolved[0];

  out[0] = '\0';
  if (home == NULL || home[0] == '\0' || b->spec->fresh_home)
    return 0;
  if (home[0] != '/')
    return fail(b, EINVAL, "the home directory %s is not an absolute path", home);
  char why[AWF_ERRBUF_SIZE];
  int rc = awf_hostpath_resolve(home, AWF_HOSTPATH_ANY_OWNER, out, &b->source[0], why,
                                sizeof why);
  if (rc == -ENOENT || rc == -ENOTDIR) {
    out[0] = '\0';
    return 0;
  }
  if (rc < 0) {
    out[0] = '\0';
    return awf_errbuf_fail(b->err, b->errlen, rc, "the home directory %s: %s", home, why);
  }
  if (strcmp(out, "/") == 0)
    out[0] = '\0'; /* never the whole host read-write */
  return 0;
}

/* Links of the command's user in -v host paths are not followed: it could
 * have planted them in an earlier run. A command run as root owns what root
 * owns, so there the owner tells nothing (see rootfs.h). */
static uid_t refused_link_owner(const struct awf_rootfs_spec *s) {
  return s->uid == 0 ? AWF_HOSTPATH_ANY_OWNER : s->uid;
}

static int resolve_mount_sources(struct build *b);

/* The home as passwd says (root's rights); the -v host paths as the caller
 * could open them (fscreds.h): root's rights would let a caller who may only
 * sudo awf bind /root's files. */
static int resolve_sources(struct build *b) {
  const struct awf_rootfs_spec *s = b->spec;
  struct awf_fscreds_saved saved;
  int rc = resolve_home(b);

  if (rc < 0 || s->n_mounts == 0)
    return rc;
  rc = awf_fscreds_enter(s->uid, s->gid, s->groups, s->ngroups, &saved);
  if (rc < 0)
    return fail(b, -rc, "taking the caller's file rights");
  rc = resolve_mount_sources(b);
  int back = awf_fscreds_leave(&saved);
  if (rc == 0 && back < 0)
    rc = fail(b, -back, "taking back root's file rights");
  return rc;
}

static int resolve_mount_sources(struct build *b) {
  const struct awf_rootfs_spec *s = b->spec;
  int rc;

  for (size_t i = 0; i < s->n_mounts; i++) {
    const struct awf_rootfs_mount *m = &s->mounts[i];

    if (m->host == NULL || m->host[0] != '/')
      return fail(b, EINVAL, "-v %s:%s: the host path must be absolute",
                  m->host ? m->host : "(null)", m->sandbox ? m->sandbox : "(null)");
    if ((rc = check_sandbox_path(b, m)) < 0)
      return rc;
    char why[AWF_ERRBUF_SIZE];
    rc = awf_hostpath_resolve(m->host, refused_link_owner(s), b->resolved[1 + i],
                              &b->source[1 + i], why, sizeof why);
    if (rc < 0)
      return awf_errbuf_fail(b->err, b->errlen, rc, "-v %s:%s: host path %s: %s", m->host,
                             m->sandbox, m->host, why);
  }
  return 0;
}

/* ---- the steps ---------------------------------------------------------------- */

/* Nothing done from here on may reach the host's mount namespace. */
static int make_mounts_slave(struct build *b) {
  if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
    return fail(b, errno, "making every mount a slave of the host's (mount --make-rslave /)");
  return 0;
}

/* A tmpfs on /tmp becomes the root; the host's root (whose /tmp is no longer
 * covered once the tmpfs has moved) is kept at OLDROOT until the end. */
static int enter_new_root(struct build *b) {
  int rc = mount_fs(b, "tmpfs", "/tmp", MS_NOSUID | MS_NODEV, "mode=0755");

  if (rc < 0)
    return rc;
  if (mkdir("/tmp" OLDROOT, 0700) < 0)
    return fail(b, errno, "creating directory /tmp%s", OLDROOT);
  if (syscall(SYS_pivot_root, "/tmp", "/tmp" OLDROOT) < 0)
    return fail(b, errno, "pivot_root into the new root (a tmpfs on /tmp)");
  if (chdir("/") < 0)
    return fail(b, errno, "chdir into the new root");
  return 0;
}

static int bind_system_trees(struct build *b) {
  for (size_t i = 0; i < COUNT(system_trees); i++) {
    int rc = place_host_path(b, system_trees[i], system_trees[i], ATTR_SYSTEM, 1);

    if (rc < 0)
      return rc;
  }
  return 0;
}

/* The /etc directories whose names start with one of etc_prefixes. */
static int bind_etc_by_prefix(struct build *b) {
  char buf[8192], name[PATH_MAX];
  int fd = open(OLDROOT "/etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

  if (fd < 0)
    return fail(b, errno, "opening /etc");
  for (;;) {
    ssize_t n = getdents64(fd, buf, sizeof buf);

    if (n <= 0) {
      if (n < 0)
        rc = fail(b, errno, "reading /etc");
      break;
    }
    for (ssize_t off = 0; off < n && rc == 0;) {
      const struct dirent64 *d = (const struct dirent64 *)(buf + off);

      off += d->d_reclen;
      for (size_t i = 0; i < COUNT(etc_prefixes) && rc == 0; i++) {
        if (strncmp(d->d_name, etc_prefixes[i], strlen(etc_prefixes[i])) != 0)
          continue;
        snprintf(name, sizeof name, "/etc/%s", d->d_name);
        rc = place_host_path(b, name, name, ATTR_SYSTEM, 1);
      }
    }
    if (rc < 0)
      break;
  }
  close(fd);
  return rc;
}

/* An empty read-only tmpfs over the private-key directories of bound trees. */
static int mask_private_keys(struct build *b) {
  for (size_t i = 0; i < COUNT(masked_dirs); i++) {
    struct stat st;
    int rc;

    if (lstat(masked_dirs[i], &st) < 0 || !S_ISDIR(st.st_mode))
      continue;
    rc = mount_fs(b, "tmpfs", masked_dirs[i], MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "mode=0755");
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int bind_etc(struct build *b) {
  int rc = mkdir_mode(b, "/etc", 0755);

  for (size_t i = 0; rc == 0 && i < COUNT(etc_entries); i++) {
    if (b->spec->hosts != NULL && strcmp(etc_entries[i], "/etc/hosts") == 0)
      continue; /* awf writes its own */
    rc = place_host_path(b, etc_entries[i], etc_entries[i], ATTR_SYSTEM, 1);
  }
  if (rc == 0)
    rc = bind_etc_by_prefix(b);
  if (rc == 0)
    rc = mask_private_keys(b);
  return rc;
}

/* awf's own resolv.conf (never the host's), hosts and hostname. */
static int write_etc_files(struct build *b) {
  int rc = 0;

  if (b->spec->resolv_conf != NULL)
    rc = write_file(b, "/etc/resolv.conf", b->spec->resolv_conf, 0644);
  if (rc == 0 && b->spec->hosts != NULL)
    rc = write_file(b, "/etc/hosts", b->spec->hosts, 0644);
  if (rc == 0)
    rc = write_file(b, "/etc/hostname", AWF_SANDBOX_HOSTNAME "\n", 0644);
  return rc;
}

/* ---- trust in the run's CA (--ssl-bump) ------------------------------------- */

/* Where the host's /etc/ssl/certs stays visible, and the hashed directory
 * that replaces it. */
#define TRUST_HOST_CERTS AWF_TRUST_DIR "/host-certs"
#define TRUST_CERTS AWF_TRUST_DIR "/certs"

/* The other bundle paths distributions use, covered by the bundle where the
 * host has a file there (a link into /etc/ssl/certs already leads to it). */
static const char *const bundle_paths[] = {"/etc/pki/tls/certs/ca-bundle.crt",
                                           "/etc/ssl/cert.pem", "/etc/pki/tls/cert.pem"};

/* A read-only bind of src on target (a plain bind: one mount). */
static int bind_read_only(struct build *b, const char *src, const char *target) {
  if (mount(src, target, NULL, MS_BIND, NULL) < 0)
    return fail(b, errno, "binding %s on %s", src, target);
  return set_attrs(b, target, ATTR_SYSTEM | ATTR_NOEXEC, 0);
}

/* In TRUST_CERTS, a link to TRUST_HOST_CERTS/<name> for every entry of the
 * host's directory but the bundle, whose place takes a link to awf's. */
static int link_host_certs(struct build *b) {
  char buf[8192], link[PATH_MAX], name[PATH_MAX];
  int fd = open(TRUST_HOST_CERTS, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

  if (fd < 0)
    return fail(b, errno, "opening %s", TRUST_HOST_CERTS);
  for (;;) {
    ssize_t n = getdents64(fd, buf, sizeof buf);

    if (n <= 0) {
      if (n < 0)
        rc = fail(b, errno, "reading /etc/ssl/certs");
      break;
    }
    for (ssize_t off = 0; off < n && rc == 0;) {
      const struct dirent64 *d = (const struct dirent64 *)(buf + off);

      off += d->d_reclen;
      if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0 ||
          strcmp(d->d_name, "ca-certificates.crt") == 0)
        continue;
      if (snprintf(link, sizeof link, "%s/%s", TRUST_HOST_CERTS, d->d_name) >=
              (int)sizeof link ||
          snprintf(name, sizeof name, "%s/%s", TRUST_CERTS, d->d_name) >= (int)sizeof name)
        rc = fail(b, ENAMETOOLONG, "/etc/ssl/certs/%s", d->d_name);
      else if (symlink(link, name) < 0)
        rc = fail(b, errno, "creating the symlink %s -> %s", name, link);
    }
    if (rc < 0)
      break;
  }
  close(fd);
  return rc;
}

/* The run CA under the first free <hash>.<n> of TRUST_CERTS (the host may
 * hold a certificate whose subject hashes the same). */
static int link_ca_by_hash(struct build *b) {
  char name[PATH_MAX];

  for (unsigned i = 0; i < 100; i++) {
    snprintf(name, sizeof name, "%s/%08lx.%u", TRUST_CERTS, b->spec->trust->ca_hash, i);
    if (symlink(AWF_TRUST_CA, name) == 0)
      return 0;
    if (errno != EEXIST)
      return fail(b, errno, "creating the symlink %s -> %s", name, AWF_TRUST_CA);
  }
  return fail(b, EEXIST, "no free name for the run CA in /etc/ssl/certs");
}

/* /etc/ssl/certs replaced by a directory of links: the host's entries, the
 * bundle, and the run CA by its subject hash (openssl -CApath). */
static int replace_cert_dir(struct build *b) {
  struct stat st;
  int rc;

  if (stat("/etc/ssl/certs", &st) < 0 || !S_ISDIR(st.st_mode))
    return 0; /* no hashed directory on the host: the variables still work */
  rc = make_dirs(b, TRUST_HOST_CERTS, 0755);
  if (rc == 0)
    rc = bind_read_only(b, "/etc/ssl/certs", TRUST_HOST_CERTS);
  if (rc == 0)
    rc = make_dirs(b, TRUST_CERTS, 0755);
  if (rc == 0)
    rc = link_host_certs(b);
  if (rc == 0 && symlink(AWF_TRUST_BUNDLE, TRUST_CERTS "/ca-certificates.crt") < 0)
    rc = fail(b, errno, "creating the symlink %s/ca-certificates.crt", TRUST_CERTS);
  if (rc == 0)
    rc = link_ca_by_hash(b);
  if (rc == 0)
    rc = bind_read_only(b, TRUST_CERTS, "/etc/ssl/certs");
  return rc;
}

/* The bundle on the other standard paths the host has a file at. */
static int cover_bundle_paths(struct build *b) {
  struct stat ours, st;

  if (stat(AWF_TRUST_BUNDLE, &ours) < 0)
    return fail(b, errno, "%s", AWF_TRUST_BUNDLE);
  for (size_t i = 0; i < COUNT(bundle_paths); i++) {
    if (stat(bundle_paths[i], &st) < 0 || !S_ISREG(st.st_mode) ||
        (st.st_dev == ours.st_dev && st.st_ino == ours.st_ino))
      continue;
    int rc = bind_read_only(b, AWF_TRUST_BUNDLE, bundle_paths[i]);

    if (rc < 0)
      return rc;
  }
  return 0;
}

/* awf's trust files in the root tmpfs (read-only with it), then put where
 * programs look for their CAs. */
static int place_trust(struct build *b) {
  const struct awf_rootfs_trust *t = b->spec->trust;
  int rc;

  if (t == NULL)
    return 0;
  rc = mkdir_mode(b, AWF_TRUST_DIR, 0755);
  if (rc == 0)
    rc = write_bytes(b, AWF_TRUST_BUNDLE, t->bundle, t->bundle_len, 0644);
  if (rc == 0)
    rc = write_bytes(b, AWF_TRUST_CA, t->ca_pem, t->ca_pem_len, 0644);
  if (rc == 0 && t->p12 != NULL)
    rc = write_bytes(b, AWF_TRUST_P12, t->p12, t->p12_len, 0644);
  if (rc == 0)
    rc = replace_cert_dir(b);
  if (rc == 0)
    rc = cover_bundle_paths(b);
  return rc;
}

static int setup_tmp(struct build *b) {
  int rc = mkdir_mode(b, "/tmp", 01777);

  if (rc < 0)
    return rc;
  if (b->spec->private_tmp)
    return mount_fs(b, "tmpfs", "/tmp", MS_NOSUID | MS_NODEV, "mode=1777");
  return bind_tree(b, OLDROOT "/tmp", "/tmp", "/tmp", ATTR_USER);
}

/* /run empty (no Docker socket, no host daemons' sockets); /var empty but
 * for /var/tmp and the host's /var/run and /var/lock symlinks. */
static int setup_run_and_var(struct build *b) {
  int rc = mkdir_mode(b, "/run", 0755);

  if (rc == 0)
    rc = mount_fs(b, "tmpfs", "/run", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755");
  if (rc == 0)
    rc = mkdir_mode(b, "/var", 0755);
  if (rc == 0)
    rc = mount_fs(b, "tmpfs", "/var", MS_NOSUID | MS_NODEV, "mode=0755");
  if (rc == 0)
    rc = mkdir_mode(b, "/var/tmp", 01777);
  for (size_t i = 0; rc == 0 && i < COUNT(var_links); i++) {
    char src[PATH_MAX];
    struct stat st;

    rc = host_path(b, src, var_links[i]);
    if (rc == 0 && lstat(src, &st) == 0 && S_ISLNK(st.st_mode))
      rc = copy_symlink(b, src, var_links[i], var_links[i]);
  }
  return rc;
}

/* A new sysfs shows the sandbox's network namespace; the host's cgroup tree
 * (which runtimes read for their limits) is bound into it. */
static int setup_sys(struct build *b) {
  const unsigned long ro = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
  int rc = mkdir_mode(b, "/sys", 0755);

  if (rc < 0)
    return rc;
  if (mount("sysfs", "/sys", "sysfs", ro, NULL) < 0)
    return place_host_path(b, "/sys", "/sys", ATTR_SYSTEM | ATTR_NOEXEC, 0);
  return place_host_path(b, "/sys/fs/cgroup", "/sys/fs/cgroup", ATTR_SYSTEM | ATTR_NOEXEC, 1);
}

/* A tmpfs /dev with the harmless host devices bound in, a devpts of its own
 * and a shm. The tmpfs is nodev: the bound nodes are mounts of their own. */
static int setup_dev(struct build *b) {
  int rc = mkdir_mode(b, "/dev", 0755);

  if (rc == 0)
    rc = mount_fs(b, "tmpfs", "/dev", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755");
  for (size_t i = 0; rc == 0 && i < COUNT(dev_nodes); i++) {
    char src[PATH_MAX];

    rc = host_path(b, src, dev_nodes[i]);
    if (rc == 0)
      rc = make_file(b, dev_nodes[i]);
    if (rc == 0 && mount(src, dev_nodes[i], NULL, MS_BIND, NULL) < 0)
      rc = fail(b, errno, "binding %s on %s", dev_nodes[i], dev_nodes[i]);
    /* Read-only: the host's inode, whose owner (root) a command running as
     * uid 0 is, could otherwise be chmod'ed, chown'ed or touched from inside
     * (chmod 000 /dev/null breaks the host). Reads and writes of a device
     * do not need a writable mount. */
    if (rc == 0)
      rc = set_attrs(b, dev_nodes[i], ATTR_RO | ATTR_NOSUID | ATTR_NOEXEC, 0);
  }
  if (rc == 0)
    rc = mkdir_mode(b, "/dev/pts", 0755);
  if (rc == 0)
    rc = mount_fs(b, "devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC,
                  "newinstance,ptmxmode=0666,mode=0620");
  if (rc == 0)
    rc = mkdir_mode(b, "/dev/shm", 01777);
  if (rc == 0)
    rc = mount_fs(b, "tmpfs", "/dev/shm", MS_NOSUID | MS_NODEV, "mode=1777");
  for (size_t i = 0; rc == 0 && i < COUNT(dev_links); i++)
    if (symlink(dev_links[i][1], dev_links[i][0]) < 0)
      rc = fail(b, errno, "creating the symlink %s -> %s", dev_links[i][0], dev_links[i][1]);
  return rc;
}

/* The home's and the -v mounts' host trees, copied (open_tree) while the
 * host's root is still reachable, from the descriptors resolve_sources
 * opened: what was checked is what gets mounted. They are put in place only
 * once the host's root is gone, so no path in the sandbox, however its links
 * point, can lead a mount or a created target onto the host's root. */
static int copy_user_sources(struct build *b) {
  for (size_t i = 0; i <= b->spec->n_mounts; i++) {
    if (b->resolved[i][0] == '\0' || b->source[i] < 0)
      continue;
    int tree = (int)open_tree(b->source[i], "",
                              OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH |
                                  AT_RECURSIVE);
    if (tree < 0)
      return fail(b, errno, "copying the mount tree of %s (open_tree, Linux 5.2 or later)",
                  b->resolved[i]);
    close(b->source[i]);
    b->source[i] = tree;
  }
  return 0;
}

/* Attach a copied tree at target (created to match: a directory or an
 * empty file), with attrs on every mount of it. */
static int attach_tree(struct build *b, int tree, const char *host, const char *target,
                       unsigned attrs) {
  struct stat st;
  int rc;

  if (fstat(tree, &st) < 0)
    return fail(b, errno, "%s", host);
  rc = S_ISDIR(st.st_mode) ? make_dirs(b, target, 0755) : make_file(b, target);
  if (rc < 0)
    return rc;
  int later = setattr_with_api(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, attrs);
  if (later < 0)
    return fail(b, -later, "setting the mount attributes of %s", host);
  if (move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return fail(b, errno, "mounting %s on %s", host, target);
  return later ? set_attrs(b, target, attrs, 1) : 0;
}

/* The home read-write at its passwd path, even inside a read-only tree; or
 * an empty tmpfs there, the user's own, with fresh_home. */
static int place_home(struct build *b) {
  const struct awf_rootfs_spec *s = b->spec;

  if (s->fresh_home && s->home != NULL && s->home[0] == '/' && s->home[1] != '\0') {
    char opts[64];
    int rc = make_dirs(b, s->home, 0755);

    snprintf(opts, sizeof opts, "mode=0700,uid=%u,gid=%u", (unsigned)s->uid, (unsigned)s->gid);
    return rc < 0 ? rc : mount_fs(b, "tmpfs", s->home, MS_NOSUID | MS_NODEV, opts);
  }
  if (b->resolved[0][0] == '\0')
    return 0;
  return attach_tree(b, b->source[0], b->resolved[0], b->spec->home, ATTR_USER);
}

static int place_user_mounts(struct build *b) {
  for (size_t i = 0; i < b->spec->n_mounts; i++) {
    const struct awf_rootfs_mount *m = &b->spec->mounts[i];
    int rc = attach_tree(b, b->source[1 + i], b->resolved[1 + i], m->sandbox,
                         m->read_only ? ATTR_SYSTEM : ATTR_USER);

    if (rc < 0) {
      char why[AWF_ERRBUF_SIZE];

      snprintf(why, sizeof why, "%s", b->err != NULL && b->errlen > 0 ? b->err : "");
      return awf_errbuf_fail(b->err, b->errlen, rc, "-v %s:%s: %s", m->host, m->sandbox, why);
    }
  }
  return 0;
}

static int leave_old_root(struct build *b) {
  if (umount2(OLDROOT, MNT_DETACH) < 0)
    return fail(b, errno, "detaching the host's root from %s", OLDROOT);
  if (rmdir(OLDROOT) < 0)
    return fail(b, errno, "removing %s", OLDROOT);
  return 0;
}

/* A procfs of the sandbox's PID namespace (only its processes; Java's
 * /proc/cpuinfo, .NET's /proc/self/exe), its kernel knobs read-only. */
static int mount_proc(struct build *b) {
  int rc = mkdir_mode(b, "/proc", 0555);

  if (rc == 0)
    rc = mount_fs(b, "proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  if (rc < 0)
    return rc;
  b->proc = "/proc";
  for (size_t i = 0; i < COUNT(proc_read_only); i++) {
    const char *p = proc_read_only[i];
    struct stat st;

    if (lstat(p, &st) < 0)
      continue;
    if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
      return fail(b, errno, "binding %s on itself", p);
    if ((rc = set_attrs(b, p, ATTR_SYSTEM | ATTR_NOEXEC, 1)) < 0)
      return rc;
  }
  return 0;
}

/* Nothing more is created in the root tmpfs. */
static int make_root_read_only(struct build *b) {
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
    return fail(b, errno, "remounting / read-only");
  return 0;
}

/* In this order: /proc and /sys while the host's are still in the mount
 * namespace (in a user namespace the kernel mounts a procfs or sysfs only
 * where one is already fully visible); the home and -v mounts copied before
 * the old root goes and placed after (see copy_user_sources), after /tmp,
 * /var and /dev too so they can sit inside them. */
static int (*const steps[])(struct build *) = {
    make_mounts_slave, enter_new_root, bind_system_trees, bind_etc,
    write_etc_files,   place_trust,    setup_tmp,         setup_run_and_var,
    setup_sys,         setup_dev,      copy_user_sources, mount_proc,
    leave_old_root,    place_home,     place_user_mounts, make_root_read_only};

int awf_rootfs_build(const struct awf_rootfs_spec *spec, char *err, size_t errlen) {
  struct build b = {.spec = spec, .err = err, .errlen = errlen, .proc = OLDROOT "/proc"};
  size_t size;
  void *table;
  int rc;

  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (spec == NULL || (spec->n_mounts > 0 && spec->mounts == NULL))
    return fail(&b, EINVAL, "the sandbox's filesystem: no mounts given");
  if (spec->n_mounts > AWF_ROOTFS_MAX_MOUNTS)
    return fail(&b, E2BIG, "%zu -v mounts (at most %u)", spec->n_mounts, AWF_ROOTFS_MAX_MOUNTS);
  /* The resolved paths: mmap, not malloc (this may run in a child cloned
   * from a threaded process). */
  size = (spec->n_mounts + 1) * (sizeof *b.resolved + sizeof *b.source);
  table = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (table == MAP_FAILED)
    return fail(&b, errno, "mmap of %zu bytes for the resolved paths", size);
  b.resolved = table;
  b.source = (int *)(b.resolved + spec->n_mounts + 1); /* PATH_MAX keeps it aligned */
  for (size_t i = 0; i <= spec->n_mounts; i++)
    b.source[i] = -1;
  rc = resolve_sources(&b);
  for (size_t i = 0; rc == 0 && i < COUNT(steps); i++)
    rc = steps[i](&b);
  for (size_t i = 0; i <= spec->n_mounts; i++)
    if (b.source[i] >= 0)
      close(b.source[i]);
  munmap(table, size);
  return rc;
}

/* path is top itself or lies below it */
static int is_at_or_under(const char *path, const char *top) {
  return strcmp(path, top) == 0 || is_under(path, top);
}

static int host_path_in(const char *path, const char *top, const char *host, char *out,
                        size_t outlen) {
  int n = snprintf(out, outlen, "%s%s", host, path + strlen(top));
  return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int awf_rootfs_host_path_of(const struct awf_rootfs_spec *spec, const char *path, char *out,
                            size_t outlen) {
  if (path == NULL || path[0] != '/')
    return -ENOENT;
  for (size_t i = spec->n_mounts; i-- > 0;)
    if (is_at_or_under(path, spec->mounts[i].sandbox))
      return host_path_in(path, spec->mounts[i].sandbox, spec->mounts[i].host, out, outlen);
  if (spec->home != NULL && strcmp(spec->home, "/") != 0 && is_at_or_under(path, spec->home))
    return spec->fresh_home ? -ENOENT : host_path_in(path, spec->home, spec->home, out, outlen);
  if (!spec->private_tmp && is_at_or_under(path, "/tmp"))
    return host_path_in(path, "/tmp", "/tmp", out, outlen);
  for (size_t i = 0; i < COUNT(system_trees); i++)
    if (is_at_or_under(path, system_trees[i]))
      return host_path_in(path, system_trees[i], system_trees[i], out, outlen);
  return -ENOENT;
}
