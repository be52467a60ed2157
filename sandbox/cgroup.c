/* cgroup.c: the sandbox's cgroup (see cgroup.h). */
#include "cgroup.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "errbuf.h"
#include "exitcodes.h"
#include "textfile.h"

#define PROC_TEXT_MAX (4 * 1024 * 1024)
#define SMALL_FILE 4096
#define MAX_PROCS_SEEN 4096
#define EMPTY_WAIT_MS 5000

static const char *const ctl_name[AWF_CG_N] = {"memory", "pids", "cpu"};
static const char *const ctl_flag[AWF_CG_N] = {"--memory-limit", "--pids-limit", "--cpus"};

/* ---- pure parsing ------------------------------------------------------- */

void awf_cgroup_limits_default(struct awf_cgroup_limits *l) {
  memset(l, 0, sizeof(*l));
  awf_cgroup_parse_size(AWF_CGROUP_DEFAULT_MEMORY, &l->memory);
  l->memory_text = AWF_CGROUP_DEFAULT_MEMORY;
  l->pids = AWF_CGROUP_DEFAULT_PIDS;
}

int awf_cgroup_parse_size(const char *s, uint64_t *bytes) {
  if (!s || !isdigit((unsigned char)s[0]))
    return -EINVAL;
  uint64_t v = 0;
  const char *p = s;
  for (; isdigit((unsigned char)*p); p++) {
    if (v > (UINT64_MAX - 9) / 10)
      return -EINVAL;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  unsigned shift = 0;
  switch (tolower((unsigned char)*p)) {
  case 'k': shift = 10; break;
  case 'm': shift = 20; break;
  case 'g': shift = 30; break;
  case 't': shift = 40; break;
  default: break;
  }
  if (shift)
    p++;
  if (*p == 'b' || *p == 'B')
    p++;
  if (*p)
    return -EINVAL;
  /* Below 1 TiB * 1024 (a round upper bound far above any machine, and safe
   * from overflow both here and in the kernel's page arithmetic). */
  if (v > (UINT64_C(1) << 50) >> shift)
    return -EINVAL;
  v <<= shift;
  if (v < (UINT64_C(1) << 20))
    return -EINVAL;
  *bytes = v;
  return 0;
}

int awf_cgroup_parse_pids(const char *s, uint64_t *n) {
  if (!s || !isdigit((unsigned char)s[0]))
    return -EINVAL;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (!isdigit((unsigned char)*p) || v > AWF_CGROUP_MAX_PIDS)
      return -EINVAL;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (v < 1 || v > AWF_CGROUP_MAX_PIDS)
    return -EINVAL;
  *n = v;
  return 0;
}

int awf_cgroup_parse_cpus(const char *s, uint64_t *quota_us) {
  if (!s || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
    return -EINVAL; /* no sign, no space, no "inf"/"nan"/hex words */
  for (const char *p = s; *p; p++)
    if (!isdigit((unsigned char)*p) && *p != '.')
      return -EINVAL;
  char *end;
  errno = 0;
  double c = strtod(s, &end);
  if (errno || end == s || *end || !(c >= 0.01) || c > AWF_CGROUP_MAX_CPUS)
    return -EINVAL;
  *quota_us = (uint64_t)(c * AWF_CGROUP_CPU_PERIOD_US + 0.5);
  return 0;
}

/* The line starting at p, without its newline: [p, *next) with *next past it. */
static size_t line_len(const char *p, const char **next) {
  const char *nl = strchr(p, '\n');
  size_t n = nl ? (size_t)(nl - p) : strlen(p);
  *next = nl ? nl + 1 : p + n;
  return n;
}

bool awf_cgroup_list_has(const char *list, const char *word) {
  size_t wl = strlen(word);
  const char *p = list;
  while (*p) {
    size_t n = strcspn(p, " ,\n\t");
    if (n == wl && wl && memcmp(p, word, wl) == 0)
      return true;
    p += n;
    if (*p)
      p++;
  }
  return false;
}

static bool list_has_n(const char *list, size_t len, const char *word) {
  char buf[1024];
  if (len >= sizeof(buf))
    return false;
  memcpy(buf, list, len);
  buf[len] = '\0';
  return awf_cgroup_list_has(buf, word);
}

int awf_cgroup_proc_path(const char *text, const char *controller, char *out, size_t outlen) {
  for (const char *p = text, *next; *p; p = next) {
    size_t n = line_len(p, &next);
    /* hierarchy-ID:controller-list:cgroup-path (the path may contain ':') */
    const char *c1 = memchr(p, ':', n);
    const char *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - p)) : NULL;
    if (!c2)
      continue;
    size_t clen = (size_t)(c2 - c1 - 1);
    bool match = controller ? list_has_n(c1 + 1, clen, controller)
                            : (clen == 0 && c1 - p == 1 && p[0] == '0');
    if (!match)
      continue;
    size_t plen = n - (size_t)(c2 + 1 - p);
    if (plen == 0 || c2[1] != '/')
      return -ENOENT;
    if (plen >= outlen)
      return -ENAMETOOLONG;
    memcpy(out, c2 + 1, plen);
    out[plen] = '\0';
    return 0;
  }
  return -ENOENT;
}

/* Copy one space-separated mountinfo field, decoding \NNN octal escapes. */
static int copy_field(const char *f, size_t n, char *out, size_t outlen) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = f[i];
    if (c == '\\' && i + 3 < n && f[i + 1] >= '0' && f[i + 1] <= '3' && f[i + 2] >= '0' &&
        f[i + 2] <= '7' && f[i + 3] >= '0' && f[i + 3] <= '7') {
      c = (char)((f[i + 1] - '0') * 64 + (f[i + 2] - '0') * 8 + (f[i + 3] - '0'));
      i += 3;
    }
    if (o + 1 >= outlen)
      return -ENAMETOOLONG;
    out[o++] = c;
  }
  out[o] = '\0';
  return 0;
}

int awf_cgroup_find_mount(const char *mountinfo, const char *controller,
                          struct awf_cgroup_mount *m) {
  for (const char *p = mountinfo, *next; *p; p = next) {
    size_t n = line_len(p, &next);
    /* id parent maj:min root point options [optional...] - fstype source superopts */
    const char *field[6];
    size_t flen[6];
    size_t nf = 0;
    const char *q = p, *end = p + n;
    while (nf < 6 && q < end) {
      while (q < end && *q == ' ')
        q++;
      const char *s = q;
      while (q < end && *q != ' ')
        q++;
      if (q > s) {
        field[nf] = s;
        flen[nf++] = (size_t)(q - s);
      }
    }
    const char *dash = NULL;
    for (const char *d = q; d + 2 < end; d++)
      if (d[0] == ' ' && d[1] == '-' && d[2] == ' ') {
        dash = d + 3;
        break;
      }
    if (nf < 6 || !dash)
      continue;
    size_t rest = (size_t)(end - dash);
    const char *sp1 = memchr(dash, ' ', rest);
    if (!sp1)
      continue;
    size_t tlen = (size_t)(sp1 - dash);
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
    const char *opts = sp2 ? sp2 + 1 : end;
    size_t olen = (size_t)(end - opts);
    bool match = controller ? (tlen == 6 && memcmp(dash, "cgroup", 6) == 0 &&
                               list_has_n(opts, olen, controller))
                            : (tlen == 7 && memcmp(dash, "cgroup2", 7) == 0);
    if (!match)
      continue;
    if (copy_field(field[3], flen[3], m->root, sizeof(m->root)) < 0 ||
        copy_field(field[4], flen[4], m->point, sizeof(m->point)) < 0)
      continue;
    return 0;
  }
  return -ENOENT;
}

int awf_cgroup_dir(const struct awf_cgroup_mount *m, const char *path, char *out,
                   size_t outlen) {
  size_t rl = strlen(m->root);
  if (rl == 1 && m->root[0] == '/')
    rl = 0; /* the whole hierarchy is mounted */
  if (strncmp(path, m->root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
    return -ENOENT;
  const char *rest = path + rl;
  if (strcmp(rest, "/") == 0)
    rest = "";
  int w = snprintf(out, outlen, "%s%s", m->point, rest);
  if (w < 0 || (size_t)w >= outlen)
    return -ENAMETOOLONG;
  return 0;
}

int awf_cgroup_keyed_value(const char *text, const char *key, uint64_t *v) {
  size_t kl = strlen(key);
  for (const char *p = text, *next; *p; p = next) {
    size_t n = line_len(p, &next);
    if (n > kl + 1 && memcmp(p, key, kl) == 0 && p[kl] == ' ' &&
        isdigit((unsigned char)p[kl + 1])) {
      errno = 0;
      char *end;
      unsigned long long x = strtoull(p + kl + 1, &end, 10);
      if (errno || (end != p + n && *end != '\n'))
        return -EINVAL;
      *v = x;
      return 0;
    }
  }
  return -ENOENT;
}

int awf_cgroup_stat_starttime(const char *text, unsigned long long *start) {
  /* pid (comm) state ppid ...: comm may hold anything, so fields are counted
   * from its last ')'; starttime is field 22, the 20th after it. */
  const char *p = strrchr(text, ')');
  if (!p)
    return -EINVAL;
  p++;
  for (int f = 3; f <= 22; f++) {
    while (*p == ' ')
      p++;
    if (!*p)
      return -EINVAL;
    if (f == 22) {
      if (!isdigit((unsigned char)*p))
        return -EINVAL;
      errno = 0;
      char *end;
      *start = strtoull(p, &end, 10);
      return errno || (*end && *end != ' ' && *end != '\n') ? -EINVAL : 0;
    }
    while (*p && *p != ' ')
      p++;
  }
  return -EINVAL;
}

int awf_cgroup_parse_name(const char *name, pid_t *pid, unsigned long long *start) {
  if (strncmp(name, "awf-", 4) != 0 || !isdigit((unsigned char)name[4]))
    return -EINVAL;
  errno = 0;
  char *end;
  unsigned long long p = strtoull(name + 4, &end, 10);
  if (errno || *end != '-' || p < 1 || p > INT_MAX || !isdigit((unsigned char)end[1]))
    return -EINVAL;
  const char *s = end + 1;
  unsigned long long st = strtoull(s, &end, 10);
  if (errno || *end)
    return -EINVAL;
  *pid = (pid_t)p;
  *start = st;
  return 0;
}

/* ---- files under /sys/fs/cgroup ---------------------------------------- */

struct awf_cgroup {
  bool v2;
  char dir[AWF_CG_N][PATH_MAX]; /* "" for a controller not limited */
  struct awf_cgroup_limits lim;
};

static int read_small(const char *dir, const char *file, char *buf, size_t size) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof(path), "%s/%s", dir, file);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  size_t n = 0;
  ssize_t r;
  while (n + 1 < size &&
         ((r = read(fd, buf + n, size - n - 1)) > 0 || (r < 0 && errno == EINTR)))
    if (r > 0)
      n += (size_t)r;
  int e = r < 0 ? -errno : 0;
  close(fd);
  buf[n] = '\0';
  return e;
}

static int write_file(const char *dir, const char *file, const char *value) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof(path), "%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  size_t len = strlen(value);
  ssize_t w = write(fd, value, len);
  int e = w < 0 ? -errno : (size_t)w != len ? -EIO : 0;
  if (close(fd) < 0 && e == 0)
    e = -errno;
  return e;
}

static int read_proc(const char *path, char **text) {
  size_t len;
  char err[AWF_ERRBUF_SIZE];
  return awf_textfile_read(path, PROC_TEXT_MAX, text, &len, err, sizeof(err));
}

static int own_name(char *out, size_t outlen) {
  char stat[1024];
  unsigned long long st;
  int rc = read_small("/proc/self", "stat", stat, sizeof(stat));
  if (rc < 0 || (rc = awf_cgroup_stat_starttime(stat, &st)) < 0)
    return rc;
  snprintf(out, outlen, "awf-%d-%llu", (int)getpid(), st);
  return 0;
}

/* Is the awf that made cgroup `name` gone? */
static bool owner_dead(const char *name) {
  pid_t pid;
  unsigned long long st, now;
  char dir[64], stat[1024];
  if (awf_cgroup_parse_name(name, &pid, &st) < 0)
    return false; /* not ours to judge */
  snprintf(dir, sizeof(dir), "/proc/%d", (int)pid);
  int rc = read_small(dir, "stat", stat, sizeof(stat));
  if (rc == -ENOENT || rc == -ESRCH)
    return true;
  return rc == 0 && awf_cgroup_stat_starttime(stat, &now) == 0 && now != st;
}

/* rmdir every empty awf-* directory under `parent` whose owner is dead (a
 * populated one fails with EBUSY and stays). */
static void remove_stale(const char *parent) {
  DIR *d = opendir(parent);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "awf-", 4) != 0 || !owner_dead(e->d_name))
      continue;
    char path[PATH_MAX + 256];
    snprintf(path, sizeof(path), "%s/%s", parent, e->d_name);
    rmdir(path);
  }
  closedir(d);
}

static bool wanted(const struct awf_cgroup_limits *l, int c) {
  return c == AWF_CG_MEMORY ? l->memory != 0
         : c == AWF_CG_PIDS ? l->pids != 0
                            : l->cpu_quota_us != 0;
}

/* cgroup v2: the nearest directory at or above awf's own whose
 * subtree_control enables every limited controller; failing that, the
 * nearest enabling the explicitly asked ones and at least one default.
 * Returns the mask of usable controllers (0: none) and the parent. */
static unsigned v2_parent(const struct awf_cgroup_limits *l, const char *cgroup_text,
                          const char *mountinfo, char *parent, size_t plen) {
  struct awf_cgroup_mount m;
  char path[PATH_MAX], dir[PATH_MAX], ctl[SMALL_FILE];
  if (awf_cgroup_find_mount(mountinfo, NULL, &m) < 0 ||
      awf_cgroup_proc_path(cgroup_text, NULL, path, sizeof(path)) < 0 ||
      awf_cgroup_dir(&m, path, dir, sizeof(dir)) < 0)
    return 0;
  unsigned want = 0, need = 0, best = 0;
  for (int c = 0; c < AWF_CG_N; c++)
    if (wanted(l, c)) {
      want |= 1u << c;
      if (l->explicit_[c])
        need |= 1u << c;
    }
  size_t top = strlen(m.point);
  while (want) {
    unsigned have = 0;
    if (read_small(dir, "cgroup.subtree_control", ctl, sizeof(ctl)) == 0)
      for (int c = 0; c < AWF_CG_N; c++)
        if (awf_cgroup_list_has(ctl, ctl_name[c]))
          have |= 1u << c;
    have &= want;
    if (have == want || (!best && have && (have & need) == need)) {
      snprintf(parent, plen, "%s", dir);
      best = have;
      if (have == want)
        break;
    }
    char *slash = strrchr(dir, '/');
    if (strlen(dir) <= top || !slash || slash == dir)
      break;
    *slash = '\0';
  }
  return best;
}

static int mkdir_limits(awf_cgroup *cg, int c, char *err, size_t errlen) {
  const char *dir = cg->dir[c];
  const struct awf_cgroup_limits *l = &cg->lim;
  char v[64];
  int rc = 0;
  const char *file = "";
  if (c == AWF_CG_MEMORY) {
    snprintf(v, sizeof(v), "%llu", (unsigned long long)l->memory);
    file = cg->v2 ? "memory.max" : "memory.limit_in_bytes";
    rc = write_file(dir, file, v);
    /* Swap may not stretch the limit: memory plus swap is capped too. */
    if (rc == 0) {
      int r2 = cg->v2 ? write_file(dir, "memory.swap.max", "0")
                      : write_file(dir, "memory.memsw.limit_in_bytes", v);
      if (r2 < 0 && r2 != -ENOENT) {
        rc = r2;
        file = cg->v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes";
      }
    }
  } else if (c == AWF_CG_PIDS) {
    snprintf(v, sizeof(v), "%llu", (unsigned long long)l->pids);
    file = "pids.max";
    rc = write_file(dir, file, v);
  } else if (cg->v2) {
    snprintf(v, sizeof(v), "%llu %d", (unsigned long long)l->cpu_quota_us,
             AWF_CGROUP_CPU_PERIOD_US);
    file = "cpu.max";
    rc = write_file(dir, file, v);
  } else {
    snprintf(v, sizeof(v), "%d", AWF_CGROUP_CPU_PERIOD_US);
    file = "cpu.cfs_period_us";
    rc = write_file(dir, file, v);
    if (rc == 0) {
      snprintf(v, sizeof(v), "%llu", (unsigned long long)l->cpu_quota_us);
      file = "cpu.cfs_quota_us";
      rc = write_file(dir, file, v);
    }
  }
  if (rc < 0)
    return awf_errbuf_fail(err, errlen, rc, "%s: cannot write %s/%s: %s", ctl_flag[c], dir,
                           file, strerror(-rc));
  return 0;
}

/* Is directory dir[c] also dir[j] for an earlier j (one v1 hierarchy holding
 * several controllers, or v2's single directory)? */
static bool same_as_earlier(const awf_cgroup *cg, int c) {
  for (int j = 0; j < c; j++)
    if (cg->dir[j][0] && strcmp(cg->dir[j], cg->dir[c]) == 0)
      return true;
  return false;
}

static void remove_dirs(awf_cgroup *cg) {
  for (int c = 0; c < AWF_CG_N; c++)
    if (cg->dir[c][0] && !same_as_earlier(cg, c))
      rmdir(cg->dir[c]);
}

/* Find, for each limited controller, the directory awf makes (cg->dir);
 * returns the mask of controllers that have one. */
static unsigned plan_dirs(awf_cgroup *cg, const char *name) {
  const struct awf_cgroup_limits *l = &cg->lim;
  char *cgroup_text = NULL, *mountinfo = NULL;
  unsigned have = 0;
  if (read_proc("/proc/self/cgroup", &cgroup_text) < 0 ||
      read_proc("/proc/self/mountinfo", &mountinfo) < 0)
    goto out;
  char parent[PATH_MAX];
  have = v2_parent(l, cgroup_text, mountinfo, parent, sizeof(parent));
  if (have) {
    cg->v2 = true;
    remove_stale(parent);
    for (int c = 0; c < AWF_CG_N; c++)
      if (have & (1u << c))
        snprintf(cg->dir[c], sizeof(cg->dir[c]), "%.*s/%s", PATH_MAX - 64, parent, name);
    goto out;
  }
  for (int c = 0; c < AWF_CG_N; c++) {
    struct awf_cgroup_mount m;
    char path[PATH_MAX];
    if (!wanted(l, c) || awf_cgroup_find_mount(mountinfo, ctl_name[c], &m) < 0 ||
        awf_cgroup_proc_path(cgroup_text, ctl_name[c], path, sizeof(path)) < 0 ||
        awf_cgroup_dir(&m, path, parent, sizeof(parent)) < 0 || access(parent, W_OK) < 0)
      continue;
    remove_stale(parent);
    snprintf(cg->dir[c], sizeof(cg->dir[c]), "%.*s/%s", PATH_MAX - 64, parent, name);
    have |= 1u << c;
  }
out:
  free(cgroup_text);
  free(mountinfo);
  return have;
}

int awf_cgroup_create(const struct awf_cgroup_limits *l, awf_cgroup **out, char *err,
                      size_t errlen) {
  *out = NULL;
  char name[64];
  int rc = own_name(name, sizeof(name));
  if (rc < 0)
    return awf_errbuf_fail(err, errlen, rc, "cannot read /proc/self/stat: %s", strerror(-rc));
  awf_cgroup *cg = calloc(1, sizeof(*cg));
  if (!cg)
    return awf_errbuf_fail(err, errlen, -ENOMEM, "out of memory");
  cg->lim = *l;
  unsigned have = plan_dirs(cg, name);
  for (int c = 0; c < AWF_CG_N; c++) {
    if (!wanted(l, c) || !cg->dir[c][0] || same_as_earlier(cg, c))
      continue;
    if (mkdir(cg->dir[c], 0755) < 0) {
      rc = -errno;
      /* A read-only or foreign cgroup file system: no such controller here. */
      if (rc == -EROFS || rc == -EACCES || rc == -EPERM) {
        have &= ~(1u << c);
        for (int j = c + 1; j < AWF_CG_N; j++)
          if (strcmp(cg->dir[j], cg->dir[c]) == 0) {
            have &= ~(1u << j);
            cg->dir[j][0] = '\0';
          }
        cg->dir[c][0] = '\0';
        continue;
      }
      awf_errbuf_fail(err, errlen, rc, "%s: cannot create the cgroup %s: %s", ctl_flag[c],
                      cg->dir[c], strerror(-rc));
      cg->dir[c][0] = '\0';
      remove_dirs(cg);
      free(cg);
      return rc;
    }
  }
  char skipped[128] = "";
  for (int c = 0; c < AWF_CG_N; c++) {
    if (!wanted(l, c) || (have & (1u << c)))
      continue;
    if (l->explicit_[c]) {
      remove_dirs(cg);
      free(cg);
      /* Not root: rootless awf, whose cgroups are writable only if delegated. */
      return awf_errbuf_fail(
          err, errlen, -EOPNOTSUPP,
          "%s: the kernel offers awf no usable cgroup '%s' controller "
          "(none mounted, or not enabled in a cgroup.subtree_control at or "
          "above awf's cgroup, or read-only%s)",
          ctl_flag[c], ctl_name[c],
          geteuid() == 0 ? ""
                         : ", or not writable by you: rootless awf "
                           "needs a cgroup tree delegated to your user, e.g. systemd-run "
                           "--user --scope -p Delegate=yes awf ...");
    }
    size_t n = strlen(skipped);
    snprintf(skipped + n, sizeof(skipped) - n, "%s%s", n ? ", " : "", ctl_flag[c]);
  }
  if (skipped[0] && l->debug)
    fprintf(stderr,
            "awf: debug: no usable cgroup controller for the default %s: not "
            "applied\n",
            skipped);
  for (int c = 0; c < AWF_CG_N; c++)
    if (cg->dir[c][0] && (rc = mkdir_limits(cg, c, err, errlen)) < 0) {
      remove_dirs(cg);
      free(cg);
      return rc;
    }
  if (!have) {
    free(cg);
    return 0;
  }
  *out = cg;
  return 0;
}

int awf_cgroup_attach(awf_cgroup *cg, pid_t pid, char *err, size_t errlen) {
  if (!cg)
    return 0;
  char v[32];
  snprintf(v, sizeof(v), "%d", (int)pid);
  for (int c = 0; c < AWF_CG_N; c++) {
    if (!cg->dir[c][0] || same_as_earlier(cg, c))
      continue;
    int rc = write_file(cg->dir[c], "cgroup.procs", v);
    if (rc < 0)
      return awf_errbuf_fail(err, errlen, rc, "cannot move the sandbox into the cgroup %s: %s",
                             cg->dir[c], strerror(-rc));
  }
  return 0;
}

/* SIGKILL every process listed in dir/cgroup.procs. A pidfd is taken first
 * and the list read again, so a pid that was reused meanwhile by a process
 * outside the cgroup is never signalled. */
static void kill_listed(const char *dir) {
  static char text[MAX_PROCS_SEEN * 12];
  if (read_small(dir, "cgroup.procs", text, sizeof(text)) < 0 || !text[0])
    return;
  int fds[64];
  pid_t pids[64];
  size_t n = 0;
  for (char *p = text, *end; *p && n < 64; p = end) {
    long pid = strtol(p, &end, 10);
    if (end == p)
      break;
    if (pid <= 0)
      continue;
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (fd < 0 && errno == ENOSYS) {
      kill((pid_t)pid, SIGKILL); /* before Linux 5.3 */
      continue;
    }
    if (fd >= 0) {
      fds[n] = fd;
      pids[n++] = (pid_t)pid;
    }
  }
  if (read_small(dir, "cgroup.procs", text, sizeof(text)) == 0)
    for (size_t i = 0; i < n; i++) {
      char needle[16];
      snprintf(needle, sizeof(needle), "%d", (int)pids[i]);
      for (char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        if (len == strlen(needle) && memcmp(p, needle, len) == 0) {
          syscall(SYS_pidfd_send_signal, fds[i], SIGKILL, NULL, 0);
          break;
        }
        p += len;
        if (*p)
          p++;
      }
    }
  for (size_t i = 0; i < n; i++)
    close(fds[i]);
}

static void report(const awf_cgroup *cg, int exit_status) {
  char text[SMALL_FILE];
  uint64_t v = 0;
  const char *mem = cg->dir[AWF_CG_MEMORY];
  if (mem[0]) {
    bool oom = false;
    if (cg->v2)
      oom = read_small(mem, "memory.events", text, sizeof(text)) == 0 &&
            awf_cgroup_keyed_value(text, "oom_kill", &v) == 0 && v > 0;
    else if (read_small(mem, "memory.oom_control", text, sizeof(text)) == 0 &&
             awf_cgroup_keyed_value(text, "oom_kill", &v) == 0)
      oom = v > 0;
    else /* before Linux 4.13: the limit was hit and the command was killed */
      oom = exit_status == AWF_EXIT_SIGNAL_BASE + SIGKILL &&
            read_small(mem, "memory.failcnt", text, sizeof(text)) == 0 && atoll(text) > 0;
    if (oom && exit_status == AWF_EXIT_SIGNAL_BASE + SIGKILL)
      fprintf(stderr, "awf: the command was killed: out of memory (--memory-limit %s)\n",
              cg->lim.memory_text);
    else if (oom)
      fprintf(stderr,
              "awf: out of memory in the sandbox: %llu process(es) killed "
              "(--memory-limit %s)\n",
              (unsigned long long)v, cg->lim.memory_text);
  }
  const char *pids = cg->dir[AWF_CG_PIDS];
  if (pids[0] && read_small(pids, "pids.events", text, sizeof(text)) == 0 &&
      awf_cgroup_keyed_value(text, "max", &v) == 0 && v > 0)
    fprintf(stderr, "awf: --pids-limit %llu reached: %llu fork(s) refused in the sandbox\n",
            (unsigned long long)cg->lim.pids, (unsigned long long)v);
}

void awf_cgroup_finish(awf_cgroup *cg, int exit_status) {
  if (!cg)
    return;
  report(cg, exit_status);
  for (int c = 0; c < AWF_CG_N; c++) {
    if (!cg->dir[c][0] || same_as_earlier(cg, c))
      continue;
    if (cg->v2) /* Linux 5.14+: the kernel kills every member (ENOENT before) */
      write_file(cg->dir[c], "cgroup.kill", "1");
    /* rmdir fails with EBUSY while a process is in, or still exiting. */
    struct timespec pause = {0, 10 * 1000 * 1000};
    int waited = 0;
    while (rmdir(cg->dir[c]) < 0 && errno == EBUSY && waited < EMPTY_WAIT_MS) {
      kill_listed(cg->dir[c]);
      nanosleep(&pause, NULL);
      waited += 10;
    }
    if (waited >= EMPTY_WAIT_MS)
      fprintf(stderr,
              "awf: warning: the cgroup %s still holds processes; the next awf "
              "removes it once they are gone\n",
              cg->dir[c]);
  }
  free(cg);
}
