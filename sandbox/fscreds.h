/* fscreds.h: opening files with the caller's rights while awf runs as root.
 *
 * awf runs as root (sudo), but the files its caller names (--env-file, rule
 * files, GITHUB_PATH, --log-file, -v host paths) must be reachable by the
 * caller: otherwise a user allowed to sudo awf alone could read /etc/shadow
 * through --env-file or append to /root/.bashrc through --log-file. So those
 * opens run with the calling thread's file-system identity switched to the
 * caller's: fsuid, fsgid and supplementary groups. A non-zero fsuid also
 * takes CAP_DAC_OVERRIDE and the other file capabilities out of the thread's
 * effective set; switching back restores them. Only the calling thread is
 * changed (raw system calls, not glibc's process-wide setgroups). */
#ifndef AWF_FSCREDS_H
#define AWF_FSCREDS_H

#include <stddef.h>
#include <sys/types.h>

#define AWF_FSCREDS_MAX_GROUPS 256

struct awf_fscreds_saved {
  uid_t fsuid;
  gid_t fsgid;
  gid_t groups[AWF_FSCREDS_MAX_GROUPS];
  int ngroups;
  int active;
};

/* Become the caller for file access; saved receives what to go back to.
 * 0, or a negative errno (nothing changed then). Rootless awf already is the
 * caller: when the groups cannot be set (EPERM: no CAP_SETGID, or setgroups
 * denied in awf's user namespace) and the file-system uid and gid already
 * are uid and gid, nothing is changed and 0 is returned (leave is a no-op):
 * the process's own groups are the caller's. */
int awf_fscreds_enter(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
                      struct awf_fscreds_saved *saved);

/* Back to what awf_fscreds_enter saved; 0 or a negative errno. A no-op when
 * enter was not called or failed. */
int awf_fscreds_leave(struct awf_fscreds_saved *saved);

#endif
