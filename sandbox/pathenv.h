/* pathenv.h: the PATH of the sandboxed command.
 *
 * In order, without duplicates (the first occurrence stays):
 *   1. the directories of the PATH awf was started with that exist inside
 *      the sandbox (the caller's `exists` decides),
 *   2. the standard system directories, AWF_PATHENV_SYSTEM,
 *   3. the entries of the $GITHUB_PATH file: one directory per line (a line
 *      may itself hold a ':'-separated list), LAST line first, because the
 *      Actions runner prepends each line to PATH in turn,
 *   4. the hosted tool cache: every <root>/<tool>/<version>/<arch>/bin that
 *      exists, tools in bytewise name order, each tool's versions newest
 *      first (strverscmp: 3.10.1 before 3.9.2).
 * Entries 2-3 are not checked for existence. Every entry is normalised
 * (repeated '/' collapsed, trailing '/' removed) and dropped when empty,
 * relative (which would make PATH depend on the working directory), longer
 * than AWF_PATHENV_ENTRY_MAX, or holding a control byte. The result never
 * exceeds the caller's buffer: entries that do not fit are dropped, and room
 * for the system directories is kept while adding awf's own PATH. */
#ifndef AWF_PATHENV_H
#define AWF_PATHENV_H

#include <stddef.h>

#define AWF_PATHENV_SYSTEM "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define AWF_PATHENV_TOOLCACHE "/opt/hostedtoolcache"
#define AWF_PATHENV_MAX 32768      /* a good size for the caller's buffer */
#define AWF_PATHENV_ENTRY_MAX 4095 /* bytes of one directory */
#define AWF_PATHENV_ENTRIES_MAX 1024
#define AWF_PATHENV_TOOLS_MAX 256    /* tool directories looked at */
#define AWF_PATHENV_VERSIONS_MAX 64  /* newest versions looked at per tool */

/* 1 when `path` names an existing directory (following symlinks) as the
 * sandbox will see it, else 0. */
typedef int (*awf_pathenv_exists_fn)(void *ud, const char *path);

/* Receives one directory entry name; return 0 to go on, non-zero to stop. */
typedef int (*awf_pathenv_entry_fn)(void *ctx, const char *name);

/* Call each(ctx, name) for every entry of directory `dir`, in any order
 * ("." and ".." may be included). Returns 0 or -errno; any failure only
 * means the directory contributes nothing. */
typedef int (*awf_pathenv_list_fn)(void *ud, const char *dir, awf_pathenv_entry_fn each,
                                   void *ctx);

struct awf_pathenv_spec {
    const char *awf_path;    /* PATH awf was started with, or NULL */
    const char *github_path; /* contents of the $GITHUB_PATH file, or NULL */
    size_t github_path_len;  /* bytes (NULs are tolerated: such lines are dropped) */
    const char *toolcache;   /* AWF_PATHENV_TOOLCACHE, or NULL to skip the cache;
                              * normalised, and a relative one skips it too */
    const char *arch;        /* awf_pathenv_toolcache_arch(); NULL skips the cache */
    awf_pathenv_exists_fn exists; /* required */
    awf_pathenv_list_fn list;     /* required when toolcache and arch are set */
    void *ud;                     /* passed to exists and list */
};

/* Write the PATH value into out (NUL-terminated). *dropped (may be NULL)
 * counts the non-empty entries left out as invalid, non-existent or not
 * fitting; empty entries and duplicates are not counted. Returns 0; -EINVAL
 * when a required callback is missing or outsz cannot hold
 * AWF_PATHENV_SYSTEM; -ENOMEM (the tool cache was skipped, out is still a
 * valid PATH). */
int awf_pathenv_build(const struct awf_pathenv_spec *spec, char *out, size_t outsz,
                      size_t *dropped);

/* The tool cache's name for this machine ("x64", "arm64"), or NULL. */
const char *awf_pathenv_toolcache_arch(void);

#endif
