/* mountinfo.h: reading /proc/PID/mountinfo (proc(5)) without malloc, for
 * code that runs in a child cloned from a threaded process. */
#ifndef AWF_MOUNTINFO_H
#define AWF_MOUNTINFO_H

#include <stddef.h>

/* One line's fields; the strings point into the line, unescaped. */
struct awf_mountinfo {
  unsigned long id;        /* field 1: the mount's ID */
  const char *devid;       /* field 3: "major:minor" of the filesystem */
  const char *root;        /* field 4: the mount's root inside the filesystem */
  const char *mount_point; /* field 5: where it is mounted, from the reader's root */
  const char *options;     /* field 6: per-mount options, "rw,..." or "ro,..." */
};

/* Split one line (without its '\n'), modifying it in place: fields are cut
 * at their spaces and \ooo escapes (space, tab, newline, backslash) are
 * decoded. Returns 0, or -EINVAL for a line with fewer than six fields or a
 * bad mount ID. Pure. */
int awf_mountinfo_parse(char *line, struct awf_mountinfo *m);

/* Is the read-only flag among the per-mount options? Pure. */
int awf_mountinfo_read_only(const struct awf_mountinfo *m);

typedef int (*awf_mountinfo_fn)(void *ctx, const struct awf_mountinfo *m);

/* Call fn for each line of the mountinfo file at path, in order, reading
 * through buf (its size bounds the longest line). Returns 0 after the last
 * line, fn's first nonzero result, or a negative errno: -ENAMETOOLONG for a
 * line that does not fit buf, -EINVAL for a malformed line, the open or
 * read error. */
int awf_mountinfo_each(const char *path, char *buf, size_t bufsz, awf_mountinfo_fn fn,
                       void *ctx);

#endif
