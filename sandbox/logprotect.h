/* logprotect.h: the access log outlives the command. awf opens --log-file
 * with the caller's rights, so the file belongs to the uid the command runs
 * as; when it lies in a tree the sandbox sees read-write (the home, /tmp, a
 * -v mount), the command could rewrite, truncate, unlink or replace it, or
 * move its directory away. Inside the sandbox's mount namespace it is made
 * read-only and unremovable instead:
 *
 *   - wherever the sandbox shows the file (every mount of its filesystem
 *     whose root lies above it and that is not covered there), the file is
 *     bound read-only onto itself: write, truncate, chmod fail with EROFS,
 *     link(2) with EXDEV, unlink and rename with EBUSY (a mount point);
 *   - every directory between such a mount's root and the file is bound onto
 *     itself (recursively, keeping its flags and submounts), so no directory
 *     on the file's path can be renamed or removed (EBUSY) either. A mount
 *     point is busy by its dentry, in every view of the namespace.
 *
 * What cannot be protected is refused (exit 125) with a message: a regular
 * file with more than one hard link (the command could write it through
 * another), a FIFO, socket or block device the sandbox can reach, a failed
 * mount. A character device (/dev/null, a terminal) holds nothing to
 * rewrite and is left alone, as is a file the sandbox cannot see at all.
 * awf never reopens the log (SIGHUP goes to the command), so nothing planted
 * at its path is ever opened. */
#ifndef AWF_LOGPROTECT_H
#define AWF_LOGPROTECT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum awf_logprotect_kind {
  AWF_LOG_UNGUARDED, /* no file, stdout, a character device, nowhere in any mount */
  AWF_LOG_REGULAR,   /* made read-only wherever the sandbox shows it */
  AWF_LOG_SPECIAL,   /* FIFO, socket, block device: refused if the sandbox shows it */
};

struct awf_logprotect {
  int fd;           /* the log, open for appending (caller's rights), or -1 */
  const char *path; /* --log-file as given, for messages */
  enum awf_logprotect_kind kind;
  dev_t dev;
  ino_t ino;
  char devid[32];         /* its filesystem's major:minor, as mountinfo shows it */
  char fs_path[PATH_MAX]; /* its path inside that filesystem */
};

/* Before the sandbox exists, with the caller's file rights in effect
 * (fscreds.h): open path (NULL or "-": nothing, fd -1) as the access log
 * would be opened (appending, created 0640), and note where it lies.
 * Returns 0, or a negative errno with a message in err (the caller prints it
 * after "awf: "); the fd is closed then. */
int awf_logprotect_open(const char *path, struct awf_logprotect *lp, char *err, size_t errlen);

/* In the sandbox's PID 1, once its root is built (its own /proc mounted):
 * make the file read-only and unremovable wherever the sandbox shows it, as
 * described above, and close lp->fd (the command must not inherit it).
 * Allocates nothing. Returns 0, or a negative errno with a message in err. */
int awf_logprotect_apply(const struct awf_logprotect *lp, char *err, size_t errlen);

/* The file's path inside its filesystem, from its path L (readlink of
 * /proc/self/fd/N) and the mount it was opened on: L lies at or under
 * mount_point, and mount_point shows the filesystem's root_in_fs. Pure.
 * Returns 0, -EINVAL when L is not under mount_point, -ENAMETOOLONG. */
int awf_logprotect_fs_path(const char *link, const char *mount_point, const char *root_in_fs,
                           char *out, size_t outlen);

/* Where, below a mount showing root_in_fs, lies fs_path: the rest of the
 * path after root_in_fs ("" when equal, else starting with '/'), or NULL
 * when fs_path is not at or under it. Pure. */
const char *awf_logprotect_below(const char *fs_path, const char *root_in_fs);

#endif
