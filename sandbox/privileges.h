/* privileges.h: turn the command's process into an unprivileged one for good.
 * Called in the command's child right before exec (and before the seccomp
 * filter), while still root with all capabilities. */
#ifndef AWF_PRIVILEGES_H
#define AWF_PRIVILEGES_H

#include <stddef.h>
#include <sys/types.h>

/* Most supplementary groups accepted (the kernel's NGROUPS_MAX). */
#define AWF_PRIV_GROUPS_MAX 65536u

/* Become uid:gid with exactly the supplementary groups `groups` (ngroups may
 * be 0; groups may then be NULL) and with no capability in any set:
 * effective, permitted, inheritable, bounding and ambient are all empty,
 * PR_SET_KEEPCAPS is 0 and locked, SECBIT_NOROOT is set and locked (so an
 * exec as uid 0 gains nothing either), and PR_SET_NO_NEW_PRIVS is 1.
 * uid 0 is allowed: the command then runs as root with zero capabilities.
 *
 * Every step is checked (getresuid/getresgid/getgroups, capget, the bounding
 * and ambient sets read back); the first one that fails or did not take
 * stops the sequence. The process may then be half-dropped: the caller must
 * not exec, only report and exit.
 *
 * Uses malloc (libcap), so call it in a process that is single-threaded or
 * was made with fork(). Returns 0, or a negative errno with a message in err
 * naming the step (e.g. "setresuid(1000): Operation not permitted"). */
int awf_privileges_drop(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups, char *err,
                        size_t errlen);

/* The same in a user namespace whose setgroups is denied (rootless awf):
 * every step above but setgroups; the supplementary groups stay those the
 * process has (the caller's own, which it could not change either). */
int awf_privileges_drop_keep_groups(uid_t uid, gid_t gid, char *err, size_t errlen);

#endif
