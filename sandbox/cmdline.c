/* cmdline.c: see cmdline.h. */
#include "cmdline.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>

int awf_cmdline_needs_shell(const char *arg) {
  return arg[strcspn(arg, AWF_CMDLINE_SHELL_CHARS)] != '\0';
}

int awf_cmdline_argv(int argc, char *const argv[], const char **out, size_t outcap) {
  int i;

  if (argc < 1 || argv == NULL || argv[0] == NULL || argv[0][0] == '\0')
    return -EINVAL;
  if (argc == 1 && awf_cmdline_needs_shell(argv[0])) {
    if (outcap < 4)
      return -ENOBUFS;
    out[0] = AWF_CMDLINE_SHELL;
    out[1] = "-c";
    out[2] = argv[0];
    out[3] = NULL;
    return 3;
  }
  if (outcap < (size_t)argc + 1)
    return -ENOBUFS;
  for (i = 0; i < argc; i++) {
    if (argv[i] == NULL)
      return -EINVAL;
    out[i] = argv[i];
  }
  out[argc] = NULL;
  return argc;
}

int awf_cmdline_exit_status(int wait_status) {
  if (WIFEXITED(wait_status))
    return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status))
    return AWF_EXIT_SIGNAL_BASE + WTERMSIG(wait_status);
  return -EINVAL;
}

int awf_cmdline_exec_failure_status(int err) {
  switch (err < 0 ? -err : err) {
  case ENOENT:
  case ENOTDIR:
  case ENAMETOOLONG:
  case ELOOP: return AWF_EXIT_NOT_FOUND;
  default: return AWF_EXIT_CANNOT_EXEC;
  }
}
