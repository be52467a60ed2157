/* pathenv.h: the PATH of the sandboxed command.
 *
 * In order, without duplicates (the first occurrence stays):
 *   1. the entries of the $GITHUB_PATH file: one directory per line (a line
 *      may itself hold a ':'-separated list), LAST line first, because the
 *      Actions runner prepends each line to PATH in turn; they come before
 *      everything else, as on the runner (a job that ran setup-node gets
 *      the tool cache's node, not /usr/bin/node),
 *   2. the tool directories the caller names (GOROOT/bin, JAVA_HOME/bin...:
 *      the version the job selected), when they exist inside the sandbox,
 *   3. the directories of the PATH awf was started with that exist inside
 *      the sandbox (the caller's `exists` decides),
 *   4. the standard system directories, AWF_PATHENV_SYSTEM.
 * No other tool-cache version is added: only what GITHUB_PATH or a tool's
 * own variable points at. GITHUB_PATH entries are not checked for
 * existence. Every entry is normalised (repeated '/' collapsed, trailing '/'
 * removed) and dropped when empty, relative (which would make PATH depend
 * on the working directory), longer than AWF_PATHENV_ENTRY_MAX, or holding a
 * control byte. The result never exceeds the caller's buffer: entries that
 * do not fit are dropped, and room for the system directories is always
 * kept. */
#ifndef AWF_PATHENV_H
#define AWF_PATHENV_H

#include <stddef.h>

#define AWF_PATHENV_SYSTEM "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define AWF_PATHENV_MAX 32768        /* a good size for the caller's buffer */
#define AWF_PATHENV_ENTRY_MAX 4095   /* bytes of one directory */
#define AWF_PATHENV_ENTRIES_MAX 1024 /* AWF_PATHENV_SYSTEM's 6 always fit */

/* 1 when `path` names an existing directory (following symlinks) as the
 * sandbox will see it, else 0. */
typedef int (*awf_pathenv_exists_fn)(void *ud, const char *path);

struct awf_pathenv_spec {
  const char *awf_path;    /* PATH awf was started with, or NULL */
  const char *github_path; /* contents of the $GITHUB_PATH file, or NULL */
  size_t github_path_len;  /* bytes (NULs are tolerated: such lines are dropped) */
  /* Directories that go in after GITHUB_PATH (checked for existence),
     * e.g. $GOROOT/bin and $JAVA_HOME/bin; NULL or empty ones are skipped. */
  const char *const *tool_dirs;
  size_t n_tool_dirs;
  awf_pathenv_exists_fn exists; /* required */
  void *ud;                     /* passed to exists */
};

/* Write the PATH value into out (NUL-terminated). *dropped (may be NULL)
 * counts the non-empty entries left out as invalid, non-existent or not
 * fitting; empty entries and duplicates are not counted. Returns 0; -EINVAL
 * when a required callback is missing or outsz cannot hold
 * AWF_PATHENV_SYSTEM. */
int awf_pathenv_build(const struct awf_pathenv_spec *spec, char *out, size_t outsz,
                      size_t *dropped);

#endif
