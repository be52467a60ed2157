/* fscreds.c: see fscreds.h. */
#include "fscreds.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's setfsuid/setfsgid return the previous id and never fail
 * loudly: asking again with -1 tells whether the change took. */
static int set_fsuid(uid_t uid) {
  syscall(SYS_setfsuid, uid);
  return (uid_t)syscall(SYS_setfsuid, (uid_t)-1) == uid ? 0 : -EPERM;
}

static int set_fsgid(gid_t gid) {
  syscall(SYS_setfsgid, gid);
  return (gid_t)syscall(SYS_setfsgid, (gid_t)-1) == gid ? 0 : -EPERM;
}

static int set_groups(const gid_t *groups, size_t n) {
  return syscall(SYS_setgroups, n, groups) == 0 ? 0 : -errno;
}

int awf_fscreds_enter(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
                      struct awf_fscreds_saved *saved) {
  saved->active = 0;
  if (ngroups > AWF_FSCREDS_MAX_GROUPS)
    return -E2BIG;
  saved->ngroups = getgroups(AWF_FSCREDS_MAX_GROUPS, saved->groups);
  if (saved->ngroups < 0)
    return -errno;
  saved->fsuid = (uid_t)syscall(SYS_setfsuid, (uid_t)-1);
  saved->fsgid = (gid_t)syscall(SYS_setfsgid, (gid_t)-1);
  /* groups and gid first: changing them needs the capability the uid change drops */
  int rc = set_groups(groups, ngroups);
  if (rc == -EPERM && saved->fsuid == uid && saved->fsgid == gid)
    return 0; /* rootless: already the caller, whose groups cannot be changed (fscreds.h) */
  if (rc == 0)
    rc = set_fsgid(gid);
  if (rc == 0)
    rc = set_fsuid(uid);
  if (rc < 0) {
    saved->active = 1;
    (void)awf_fscreds_leave(saved);
    return rc;
  }
  saved->active = 1;
  return 0;
}

int awf_fscreds_leave(struct awf_fscreds_saved *saved) {
  if (!saved->active)
    return 0;
  saved->active = 0;
  int rc = set_fsuid(saved->fsuid);
  if (rc == 0)
    rc = set_fsgid(saved->fsgid);
  if (rc == 0)
    rc = set_groups(saved->groups, (size_t)saved->ngroups);
  return rc;
}
