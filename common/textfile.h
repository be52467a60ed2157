/* textfile.h: read a small configuration file whole, size-capped: awf's one
 * file reader. Used for /etc/passwd, /etc/group, /etc/hosts, --env-file,
 * $GITHUB_PATH, /proc files and the proxy's rules files, whose parsers then
 * work on the bytes with explicit lengths. */
#ifndef AWF_TEXTFILE_H
#define AWF_TEXTFILE_H

#include <stddef.h>

/* Read all of `path` (regular file, FIFO or /dev/fd/N, so `--env-file
 * <(...)` works) into a fresh malloc'd buffer. *buf gets a NUL after the
 * data for convenience only: the data may itself contain NULs, so parsers
 * must use *len. More than `max` bytes fails with -EFBIG.
 * Returns 0, or -errno with a message naming the path in err. */
int awf_textfile_read(const char *path, size_t max, char **buf, size_t *len, char *err,
                      size_t errsz);

#endif
