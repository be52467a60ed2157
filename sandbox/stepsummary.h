/* stepsummary.h: the GitHub step summary of a run. When GITHUB_STEP_SUMMARY
 * names a file (as on GitHub's runners), awf counts every record it logs,
 * with or without --log-file, and at the end appends the Markdown summary of
 * the run's traffic there (logs/logreport.h), opened with the caller's
 * rights, never through a symbolic link. */
#ifndef AWF_STEPSUMMARY_H
#define AWF_STEPSUMMARY_H

#include <stddef.h>
#include <sys/types.h>

#include "logfile.h"

typedef struct awf_stepsummary awf_stepsummary;

/* path: GITHUB_STEP_SUMMARY's value. NULL when path is NULL or empty (no
 * summary), or out of memory (with a warning on stderr). */
awf_stepsummary *awf_stepsummary_new(const char *path);

/* Count every record lf writes from now on. */
void awf_stepsummary_attach(awf_stepsummary *s, awf_logfile *lf);

/* Append the summary to the file as uid/gid/groups (fscreds.h): created 0644
 * when missing; a symbolic link as the last component, or anything but a
 * regular file, is refused. 0, or -errno with err saying why. */
int awf_stepsummary_write(awf_stepsummary *s, uid_t uid, gid_t gid, const gid_t *groups,
                          size_t ngroups, char *err, size_t errlen);

void awf_stepsummary_free(awf_stepsummary *s);

#endif
