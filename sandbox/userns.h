/* userns.h: rootless awf. An unprivileged awf builds the sandbox inside a
 * user namespace of its own, which owns the sandbox's mount, PID, network,
 * IPC and UTS namespaces: its PID 1 has every capability there (and none on
 * the host), which is all that mounting, nftables and binding port 153 need.
 * Only the caller's own uid and gid are mapped (each onto itself, so `id`
 * shows the same inside), setgroups is denied as the kernel requires for an
 * unprivileged gid map; no subordinate ids, no newuidmap.
 *
 * When the kernel or the system refuses user namespaces, awf says which
 * check failed and how to allow it (awf_userns_explain). */
#ifndef AWF_USERNS_H
#define AWF_USERNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The rootless path: asked for (--rootless), or awf lacks root's power to
 * build the sandbox itself (effective uid not 0, or no CAP_SYS_ADMIN in
 * effect, as for root in a container that drops it). */
bool awf_userns_wanted(bool forced);

/* From the parent, for the child `pid` just cloned with CLONE_NEWUSER:
 * setgroups "deny", then uid_map "uid uid 1" and gid_map "gid gid 1".
 * 0, or a negative errno with a message naming the file. */
int awf_userns_write_maps(pid_t pid, uid_t uid, gid_t gid, char *err, size_t errlen);

/* What the system says about user namespaces; -1 for a knob that does not
 * exist on this kernel. */
struct awf_userns_facts {
  int err;                        /* errno of the refused clone/step, 0: none */
  long max_user_namespaces;       /* user.max_user_namespaces */
  long unprivileged_userns_clone; /* kernel.unprivileged_userns_clone (Debian, older) */
  long apparmor_restrict;         /* kernel.apparmor_restrict_unprivileged_userns (Ubuntu) */
  bool seccomp_filtered;          /* Seccomp: 2 in /proc/self/status */
  bool privileged;                /* effective uid 0 */
};

/* Reads the knobs above from /proc (err is left to the caller). */
void awf_userns_gather(struct awf_userns_facts *f);

/* The reason and the fix, one line (no "awf: " prefix), for facts f: the
 * first check that explains the refusal wins, in the order
 * max_user_namespaces, unprivileged_userns_clone, AppArmor, seccomp, then
 * the errno alone. Pure. */
void awf_userns_explain(const struct awf_userns_facts *f, char *out, size_t outlen);

#endif
