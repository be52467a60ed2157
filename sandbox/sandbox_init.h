/* sandbox_init.h: PID 1 of the sandbox. It starts the command, forwards
 * signals to it, reaps every orphan, and exits with the command's status
 * (128+N when the command died of signal N), so the supervisor outside sees
 * the command's fate as init's exit status. */
#ifndef AWF_SANDBOX_INIT_H
#define AWF_SANDBOX_INIT_H

#include <sys/types.h>

/* Runs in the command's child process after fork, before exec: drop
 * privileges, install seccomp... Returns 0, or an exit status (125) after
 * printing why. */
typedef int (*awf_init_prepare_fn)(void *arg);

struct awf_init_command {
  char *const *argv;
  char *const *envp;           /* PATH inside it is used to find argv[0] */
  const char *work_dir;        /* chdir'd as the user, just before exec */
  int work_dir_fallback;       /* 1: if work_dir is missing, warn and use / */
  awf_init_prepare_fn prepare; /* may be NULL */
  int prepare_fd;              /* a descriptor above 2 kept open for prepare (0: none) */
  void *prepare_arg;
};

/* Never returns: exits with the command's status, 126 (found but not
 * executable), 127 (not found) or 125 (the sandbox could not start it). */
__attribute__((noreturn)) void awf_init_run(const struct awf_init_command *cmd);

/* Map a wait status to awf's exit code: the code itself, or 128+signal. */
int awf_init_exit_code(int wait_status);

#endif
