/* hostpath.h: resolving a host path that awf, as root, is about to bind into
 * the sandbox, without following symbolic links the sandboxed command could
 * have planted.
 *
 * The command runs as an ordinary user and can write its home, the host's
 * /tmp and its read-write -v trees; whatever it leaves there outlives the
 * sandbox. A symlink it plants at a path the next run names in -v (say
 * ~/proj/cache -> /root/.ssh) would have awf bind that target for it. So a
 * link owned by the command's uid is refused, naming it; links of root and of
 * other users are followed as realpath(3) would.
 *
 * The walk is fd-based (openat with O_NOFOLLOW, one component at a time):
 * the descriptor returned is the object checked, even if the path changes
 * afterwards. */
#ifndef AWF_HOSTPATH_H
#define AWF_HOSTPATH_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/* No uid is refused: links are followed whoever owns them. */
#define AWF_HOSTPATH_ANY_OWNER ((uid_t)-1)

/* Resolve the absolute path `path` from the process's root. On success, 0:
 * *fd is an O_PATH descriptor of the result (close it) and `out` its
 * resolved path. On failure a negative errno and a message in err: -ELOOP
 * for a link owned by refused_owner (or more than 40 links), -ENOENT,
 * -ENOTDIR, -EINVAL for a relative path, -ENAMETOOLONG. */
int awf_hostpath_resolve(const char *path, uid_t refused_owner, char out[PATH_MAX], int *fd,
                         char *err, size_t errlen);

#endif
