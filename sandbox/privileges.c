/* privileges.c: see privileges.h.
 *
 * Order matters: the bounding set and the securebits need CAP_SETPCAP, and
 * setgroups/setresgid need CAP_SETGID, so all of that happens while still
 * root; setresuid comes last among the id changes (with KEEPCAPS 0 it empties
 * the permitted and effective sets by itself for a non-zero uid), and an
 * explicit capset then empties them for uid 0 too. */
#include "privileges.h"
#include "errbuf.h"

#include <errno.h>
#include <grp.h>
#include <linux/securebits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Every securebit that matters, locked: no capabilities for uid 0 at exec
 * (SECBIT_NOROOT), KEEPCAPS stays 0, no ambient raise, and none of it can
 * be undone. The setuid fixup (bit clear) is what empties the sets. */
#define WANTED_SECUREBITS                                                 \
  (SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED | \
   SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)

/* Capability numbers are below 64 as long as the kernel's sets are two u32s. */
#define CAP_PROBE_LIMIT 64

/* A failed step: its errno as the result and in the message after the step's
 * name. errno is read first, before formatting can change it. */
__attribute__((format(printf, 3, 4))) static int step_failed(char *err, size_t errlen,
                                                             const char *fmt, ...) {
  int e = errno != 0 ? errno : EIO;
  char step[160];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(step, sizeof step, fmt, ap);
  va_end(ap);
  return awf_errbuf_fail(err, errlen, -e, "%s: %s", step, strerror(e));
}

/* Highest capability number the running kernel knows, by probing the
 * bounding set: libcap's compile-time CAP_LAST_CAP may be older than the
 * kernel, and /proc/sys may not be mounted. -1 if none can be read. */
static int kernel_last_cap(void) {
  int c;

  for (c = 0; c < CAP_PROBE_LIMIT; c++)
    if (prctl(PR_CAPBSET_READ, (unsigned long)c, 0UL, 0UL, 0UL) < 0)
      break;
  return c - 1;
}

static int drop_bounding_set(int last, char *err, size_t errlen) {
  int c;

  for (c = 0; c <= last; c++) {
    errno = 0;
    if (cap_drop_bound((cap_value_t)c) != 0)
      return step_failed(err, errlen, "dropping capability %d from the bounding set", c);
  }
  return 0;
}

/* Kernels before 4.3 have no ambient set: nothing to clear there. */
static int clear_ambient_set(char *err, size_t errlen) {
  errno = 0;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0UL, 0UL, 0UL) != 0 && errno != EINVAL)
    return step_failed(err, errlen, "PR_CAP_AMBIENT_CLEAR_ALL");
  return 0;
}

/* keep_groups: the groups stay as they are (rootless: setgroups is denied). */
static int set_ids(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups, int keep_groups,
                   char *err, size_t errlen) {
  errno = 0;
  if (!keep_groups && setgroups(ngroups, ngroups > 0 ? groups : NULL) != 0)
    return step_failed(err, errlen, "setgroups(%zu groups)", ngroups);
  errno = 0;
  if (setresgid(gid, gid, gid) != 0)
    return step_failed(err, errlen, "setresgid(%u)", (unsigned)gid);
  errno = 0;
  if (setresuid(uid, uid, uid) != 0)
    return step_failed(err, errlen, "setresuid(%u)", (unsigned)uid);
  return 0;
}

/* Searching the kernel's list: it keeps groups sorted (groups_sort), which we
 * check rather than assume, falling back to a linear scan. */
static int has_group(const gid_t *list, size_t n, int sorted, gid_t g) {
  size_t lo = 0, hi = n, i;

  if (!sorted) {
    for (i = 0; i < n; i++)
      if (list[i] == g)
        return 1;
    return 0;
  }
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;

    if (list[mid] == g)
      return 1;
    if (list[mid] < g)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

/* The supplementary groups now in force are exactly the requested ones. The
 * buffer comes from mmap, not malloc: no allocator lock is involved. */
static int verify_groups(const gid_t *groups, size_t ngroups, char *err, size_t errlen) {
  size_t bytes = ngroups * sizeof(gid_t), i;
  gid_t *got;
  int n, sorted = 1, ok = 1;

  if (ngroups == 0) {
    n = getgroups(0, NULL);
    if (n != 0)
      return awf_errbuf_fail(err, errlen, -EIO, "after setgroups(0 groups): %d groups remain",
                             n);
    return 0;
  }
  got = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (got == MAP_FAILED)
    return step_failed(err, errlen, "checking the groups (mmap of %zu bytes)", bytes);
  n = getgroups((int)ngroups, got);
  if (n < 0 || (size_t)n != ngroups) {
    munmap(got, bytes);
    return awf_errbuf_fail(err, errlen, -EIO, "after setgroups(%zu groups): getgroups gives %d",
                           ngroups, n);
  }
  for (i = 1; i < ngroups; i++)
    if (got[i - 1] > got[i])
      sorted = 0;
  for (i = 0; i < ngroups && ok; i++)
    ok = has_group(got, ngroups, sorted, groups[i]);
  munmap(got, bytes);
  if (!ok)
    return awf_errbuf_fail(err, errlen, -EIO, "after setgroups: group %u is missing",
                           (unsigned)groups[i - 1]);
  return 0;
}

static int verify_ids(uid_t uid, gid_t gid, char *err, size_t errlen) {
  uid_t ru, eu, su;
  gid_t rg, eg, sg;

  if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
    return step_failed(err, errlen, "reading the ids back");
  if (ru != uid || eu != uid || su != uid)
    return awf_errbuf_fail(err, errlen, -EIO, "after setresuid(%u) the uids are %u/%u/%u",
                           (unsigned)uid, (unsigned)ru, (unsigned)eu, (unsigned)su);
  if (rg != gid || eg != gid || sg != gid)
    return awf_errbuf_fail(err, errlen, -EIO, "after setresgid(%u) the gids are %u/%u/%u",
                           (unsigned)gid, (unsigned)rg, (unsigned)eg, (unsigned)sg);
  return 0;
}

/* Effective, permitted and inheritable emptied through libcap. */
static int clear_process_caps(char *err, size_t errlen) {
  cap_t none = cap_init();
  int rc;

  if (none == NULL)
    return step_failed(err, errlen, "cap_init");
  errno = 0;
  rc = cap_set_proc(none);
  if (rc != 0)
    rc = step_failed(err, errlen,
                     "cap_set_proc (emptying the effective, permitted and inheritable sets)");
  cap_free(none);
  return rc;
}

/* Read everything back straight from the kernel (capget, prctl), not through
 * libcap's view of it. */
static int verify_no_caps(int last, char *err, size_t errlen) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  int c, r;
  size_t i;

  memset(data, 0, sizeof data);
  if (capget(&hdr, data) != 0)
    return step_failed(err, errlen, "capget");
  for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
    if (data[i].effective != 0 || data[i].permitted != 0 || data[i].inheritable != 0)
      return awf_errbuf_fail(err, errlen, -EIO,
                             "capabilities remain: effective %08x permitted %08x "
                             "inheritable %08x (word %zu)",
                             data[i].effective, data[i].permitted, data[i].inheritable, i);
  for (c = 0; c <= last; c++) {
    if (prctl(PR_CAPBSET_READ, (unsigned long)c, 0UL, 0UL, 0UL) != 0)
      return awf_errbuf_fail(err, errlen, -EIO, "capability %d is still in the bounding set",
                             c);
    r = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, (unsigned long)c, 0UL, 0UL);
    if (r > 0)
      return awf_errbuf_fail(err, errlen, -EIO, "capability %d is still in the ambient set", c);
  }
  return 0;
}

static int verify_flags(char *err, size_t errlen) {
  int bits = prctl(PR_GET_SECUREBITS, 0UL, 0UL, 0UL, 0UL);

  if (prctl(PR_GET_NO_NEW_PRIVS, 0UL, 0UL, 0UL, 0UL) != 1)
    return awf_errbuf_fail(err, errlen, -EIO, "PR_SET_NO_NEW_PRIVS did not take");
  if (prctl(PR_GET_KEEPCAPS, 0UL, 0UL, 0UL, 0UL) != 0)
    return awf_errbuf_fail(err, errlen, -EIO, "PR_SET_KEEPCAPS 0 did not take");
  if (bits < 0 || (bits & WANTED_SECUREBITS) != WANTED_SECUREBITS)
    return awf_errbuf_fail(err, errlen, -EIO, "securebits are %#x, wanted %#x", bits,
                           (unsigned)WANTED_SECUREBITS);
  return 0;
}

static int check_args(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups, char *err,
                      size_t errlen) {
  if (uid == (uid_t)-1 || gid == (gid_t)-1)
    return awf_errbuf_fail(err, errlen, -EINVAL, "dropping privileges: uid or gid is -1");
  if (ngroups > AWF_PRIV_GROUPS_MAX)
    return awf_errbuf_fail(err, errlen, -EINVAL,
                           "dropping privileges: %zu supplementary groups (at most %u)",
                           ngroups, AWF_PRIV_GROUPS_MAX);
  if (ngroups > 0 && groups == NULL)
    return awf_errbuf_fail(err, errlen, -EINVAL, "dropping privileges: no group list");
  return 0;
}

static int drop(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups, int keep_groups,
                char *err, size_t errlen) {
  int last, rc;

  rc = keep_groups ? check_args(uid, gid, NULL, 0, err, errlen)
                   : check_args(uid, gid, groups, ngroups, err, errlen);
  if (rc != 0)
    return rc;
  last = kernel_last_cap();
  if (last < 0)
    return step_failed(err, errlen, "reading the bounding set (PR_CAPBSET_READ)");
  errno = 0;
  if (prctl(PR_SET_KEEPCAPS, 0UL, 0UL, 0UL, 0UL) != 0)
    return step_failed(err, errlen, "PR_SET_KEEPCAPS 0");
  rc = clear_ambient_set(err, errlen);
  if (rc == 0)
    rc = drop_bounding_set(last, err, errlen);
  if (rc != 0)
    return rc;
  errno = 0;
  if (prctl(PR_SET_SECUREBITS, (unsigned long)WANTED_SECUREBITS, 0UL, 0UL, 0UL) != 0)
    return step_failed(err, errlen, "PR_SET_SECUREBITS %#x", (unsigned)WANTED_SECUREBITS);
  rc = set_ids(uid, gid, groups, ngroups, keep_groups, err, errlen);
  if (rc == 0)
    rc = verify_ids(uid, gid, err, errlen);
  if (rc == 0 && !keep_groups)
    rc = verify_groups(groups, ngroups, err, errlen);
  if (rc == 0)
    rc = clear_process_caps(err, errlen);
  if (rc != 0)
    return rc;
  errno = 0;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) != 0)
    return step_failed(err, errlen, "PR_SET_NO_NEW_PRIVS 1");
  rc = verify_no_caps(last, err, errlen);
  return rc != 0 ? rc : verify_flags(err, errlen);
}

int awf_privileges_drop(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups, char *err,
                        size_t errlen) {
  return drop(uid, gid, groups, ngroups, 0, err, errlen);
}

int awf_privileges_drop_keep_groups(uid_t uid, gid_t gid, char *err, size_t errlen) {
  return drop(uid, gid, NULL, 0, 1, err, errlen);
}
