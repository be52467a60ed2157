/* cmdline.h: how the user's command is run, and what awf's exit status is.
 * Pure functions. */
#ifndef AWF_CMDLINE_H
#define AWF_CMDLINE_H

#include <stddef.h>

#include "exitcodes.h" /* awf's exit statuses besides the command's own */

#define AWF_CMDLINE_SHELL "/bin/sh"

/* The bytes that make a lone argument shell syntax: the POSIX sh operators,
 * quotes, expansions, globbing, comments, tilde, assignment and job-spec
 * characters, and all whitespace (space, tab, newline, CR, VT, FF). A word
 * with none of them means the same to sh as to execvp, so exec'ing it
 * directly loses nothing. */
#define AWF_CMDLINE_SHELL_CHARS "|&;<>()$`\\\"' *?[#~=%\t\n\r\v\f"

/* 1 when arg holds any byte of AWF_CMDLINE_SHELL_CHARS. */
int awf_cmdline_needs_shell(const char *arg);

/* The argv to exec for the words after "--": one word with shell syntax
 * becomes { AWF_CMDLINE_SHELL, "-c", word }; anything else is used as given
 * (several words are never joined or re-parsed). out receives pointers to
 * the caller's strings (or to string literals) and a terminating NULL.
 * Returns the number of words (without the NULL); -EINVAL when argc < 1,
 * argv[0] is NULL or empty; -ENOBUFS when outcap cannot hold the result and
 * its NULL (argc + 1 entries, or 4 for the shell form). */
int awf_cmdline_argv(int argc, char *const argv[], const char **out, size_t outcap);

/* awf's exit status for a wait(2) status: the exit code as is, 128+N for a
 * death by signal N (core dump or not). -EINVAL for a stopped or continued
 * status, which is not an end. */
int awf_cmdline_exit_status(int wait_status);

/* awf's exit status when execve failed with `err` (either sign):
 * AWF_EXIT_NOT_FOUND for ENOENT, ENOTDIR, ENAMETOOLONG and ELOOP (no file
 * at that name can be reached), AWF_EXIT_CANNOT_EXEC for everything else
 * (EACCES, EPERM, ENOEXEC, EISDIR, ETXTBSY, E2BIG, ENOMEM, ELIBBAD, ...). */
int awf_cmdline_exec_failure_status(int err);

#endif
