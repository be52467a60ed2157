/* userns.c: see userns.h. */
#include "userns.h"
#include "errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

bool awf_userns_wanted(bool forced) {
  if (forced || geteuid() != 0)
    return true;
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
  memset(d, 0, sizeof(d));
  if (syscall(SYS_capget, &h, d) != 0)
    return true;
  return !(d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN));
}

static int write_file(const char *path, const char *text, char *err, size_t errlen) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  size_t len = strlen(text);
  if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
    int e = errno ? errno : EIO;
    if (fd >= 0)
      close(fd);
    return awf_errbuf_fail(err, errlen, -e, "writing \"%.*s\" to %s: %s",
                           (int)strcspn(text, "\n"), text, path, strerror(e));
  }
  close(fd);
  return 0;
}

int awf_userns_write_maps(pid_t pid, uid_t uid, gid_t gid, char *err, size_t errlen) {
  char path[64], line[64];
  snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
  int rc = write_file(path, "deny", err, errlen);
  if (rc == 0) {
    snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
    snprintf(line, sizeof(line), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    rc = write_file(path, line, err, errlen);
  }
  if (rc == 0) {
    snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
    snprintf(line, sizeof(line), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    rc = write_file(path, line, err, errlen);
  }
  return rc;
}

static long read_knob(const char *path) {
  char buf[32];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  char *end;
  long v = strtol(buf, &end, 10);
  return end == buf ? -1 : v;
}

static bool seccomp_filtered(void) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  const char *s = strstr(buf, "\nSeccomp:");
  return s && atoi(s + strlen("\nSeccomp:")) == 2;
}

void awf_userns_gather(struct awf_userns_facts *f) {
  f->max_user_namespaces = read_knob("/proc/sys/user/max_user_namespaces");
  f->unprivileged_userns_clone = read_knob("/proc/sys/kernel/unprivileged_userns_clone");
  f->apparmor_restrict = read_knob("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  f->seccomp_filtered = seccomp_filtered();
  f->privileged = geteuid() == 0;
}

#define OR_ROOT "; or run awf as root (sudo awf ...), which needs no user namespace"

void awf_userns_explain(const struct awf_userns_facts *f, char *out, size_t outlen) {
  const char *why = f->err ? strerror(f->err) : "refused";
  if (f->max_user_namespaces == 0)
    snprintf(
        out, outlen,
        "user namespaces are disabled: user.max_user_namespaces is 0 (%s). Allow them: "
        "sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d to keep it)" OR_ROOT,
        why);
  else if (f->err == ENOSPC)
    snprintf(out, outlen,
             "the limit on user namespaces is reached: user.max_user_namespaces (%ld here, or "
             "a lower one in an enclosing user namespace) (%s). Raise it with sysctl -w "
             "user.max_user_namespaces=N" OR_ROOT,
             f->max_user_namespaces, why);
  else if (f->unprivileged_userns_clone == 0 && !f->privileged)
    snprintf(out, outlen,
             "unprivileged user namespaces are disabled: kernel.unprivileged_userns_clone is 0 "
             "(%s). Allow them: sysctl -w kernel.unprivileged_userns_clone=1" OR_ROOT,
             why);
  else if (f->apparmor_restrict == 1 && !f->privileged)
    snprintf(out, outlen,
             "AppArmor restricts unprivileged user namespaces: "
             "kernel.apparmor_restrict_unprivileged_userns is 1, as on Ubuntu 24.04 (%s). "
             "Install awf's AppArmor profile (packaging/apparmor/awf: copy it to "
             "/etc/apparmor.d/awf, fix the path in it, apparmor_parser -r /etc/apparmor.d/awf; "
             "see docs/awf.md, \"Rootless\")" OR_ROOT,
             why);
  else if (f->seccomp_filtered && (f->err == EPERM || f->err == EACCES || f->err == ENOSYS))
    snprintf(out, outlen,
             "a seccomp filter refuses to create user namespaces (%s; this process runs under "
             "one: Seccomp 2 in /proc/self/status), as a container runtime's default profile "
             "does. Run the container with a profile that allows unshare and clone with "
             "CLONE_NEWUSER (docker: --security-opt seccomp=PROFILE, or "
             "seccomp=unconfined)" OR_ROOT,
             why);
  else if (f->err == EUSERS)
    snprintf(out, outlen,
             "too many nested user namespaces (%s): the kernel allows 32 levels; run awf "
             "from fewer nested sandboxes" OR_ROOT,
             why);
  else
    snprintf(out, outlen,
             "the kernel refused to create a user namespace (%s): user namespaces may be "
             "compiled out (CONFIG_USER_NS) or refused by a security module" OR_ROOT,
             why);
}
