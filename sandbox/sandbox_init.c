/* sandbox_init.c: a tiny init for PID 1 of the sandbox's PID namespace. */
#include "sandbox_init.h"
#include "cmdline.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

int awf_init_exit_code(int status) {
  int code = awf_cmdline_exit_status(status);
  return code < 0 ? AWF_EXIT_FAILURE : code;
}

/* Every descriptor from `from` to `to` (inclusive) but `keep`. */
static bool close_range_but(unsigned from, unsigned to, int keep) {
  if (keep < (int)from || (unsigned)keep > to)
    return from > to || syscall(SYS_close_range, from, to, 0) == 0;
  return ((unsigned)keep == from ||
          syscall(SYS_close_range, from, (unsigned)keep - 1, 0) == 0) &&
         ((unsigned)keep == to || syscall(SYS_close_range, (unsigned)keep + 1, to, 0) == 0);
}

/* Every descriptor but 0-2, `keep` (the exec report pipe, close-on-exec) and
 * `keep2` (prepare's, if above 2). */
static void close_other_fds(int keep, int keep2) {
  int lo = keep2 > 2 && keep2 < keep ? keep2 : keep;
  int hi = keep2 > 2 && keep2 > keep ? keep2 : keep;
  if (close_range_but(3, (unsigned)hi - 1, lo) && close_range_but((unsigned)hi + 1, ~0U, -1))
    return;
  long max = sysconf(_SC_OPEN_MAX);
  if (max <= 0 || max > 65536)
    max = 65536;
  for (int fd = 3; fd < max; fd++)
    if (fd != keep && fd != keep2)
      close(fd);
}

/* As the user, so a directory the user may not enter is refused as it would
 * be outside. */
static void enter_work_dir(const struct awf_init_command *cmd) {
  if (!cmd->work_dir || chdir(cmd->work_dir) == 0)
    return;
  int e = errno;
  if (cmd->work_dir_fallback && (e == ENOENT || e == ENOTDIR) && chdir("/") == 0) {
    fprintf(stderr,
            "awf: warning: the working directory %s does not exist in the sandbox; "
            "using / (mount it with -v or pass --work-dir)\n",
            cmd->work_dir);
    return;
  }
  fprintf(stderr, "awf: cannot enter the working directory %s: %s\n", cmd->work_dir,
          strerror(e));
  _exit(AWF_EXIT_FAILURE);
}

/* In the command's process: report an exec failure's errno on `report`
 * (close-on-exec, so a successful exec closes it silently). */
__attribute__((noreturn)) static void exec_command(const struct awf_init_command *cmd,
                                                   int report) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
    signal(forwarded[i], SIG_DFL);
  setsid(); /* a session of its own: no way to inject into awf's terminal */
  close_other_fds(report, cmd->prepare_fd);
  if (cmd->prepare) {
    int rc = cmd->prepare(cmd->prepare_arg);
    if (rc)
      _exit(rc);
  }
  enter_work_dir(cmd);
  environ = (char **)cmd->envp; /* execvp searches the command's own PATH */
  execvp(cmd->argv[0], cmd->argv);
  int err = errno;
  if (write(report, &err, sizeof(err)) < 0) {
    /* nothing more can be said */
  }
  _exit(awf_cmdline_exec_failure_status(err));
}

void awf_init_run(const struct awf_init_command *cmd) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
    sigaddset(&mask, forwarded[i]);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

  int report[2];
  if (sfd < 0 || pipe2(report, O_CLOEXEC) < 0) {
    fprintf(stderr, "awf: init: %s\n", strerror(errno));
    _exit(AWF_EXIT_FAILURE);
  }
  pid_t child = fork();
  if (child < 0) {
    fprintf(stderr, "awf: cannot start the command: %s\n", strerror(errno));
    _exit(AWF_EXIT_FAILURE);
  }
  if (child == 0) {
    close(sfd);
    close(report[0]);
    exec_command(cmd, report[1]);
  }
  close(report[1]);
  int exec_err = 0;
  ssize_t n;
  do
    n = read(report[0], &exec_err, sizeof(exec_err));
  while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == (ssize_t)sizeof(exec_err)) {
    if (awf_cmdline_exec_failure_status(exec_err) == AWF_EXIT_NOT_FOUND)
      fprintf(stderr, "awf: command not found: %s\n", cmd->argv[0]);
    else
      fprintf(stderr, "awf: cannot execute %s: %s\n", cmd->argv[0], strerror(exec_err));
  }

  for (;;) {
    struct signalfd_siginfo si;
    n = read(sfd, &si, sizeof(si));
    if (n < 0 && errno == EINTR)
      continue;
    if (n != (ssize_t)sizeof(si))
      _exit(AWF_EXIT_FAILURE);
    if (si.ssi_signo != SIGCHLD) {
      /* To the command's process group (it leads one after setsid), so a
       * pipeline under sh -c gets it too. */
      if (kill(-child, (int)si.ssi_signo) < 0)
        kill(child, (int)si.ssi_signo);
      continue;
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid == child)
        _exit(awf_init_exit_code(status)); /* the kernel ends the rest of the namespace */
    }
  }
}
