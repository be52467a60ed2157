/* ttystate.c: see ttystate.h. */
#include "ttystate.h"

#include <errno.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

void awf_ttystate_save(struct awf_ttystate *ts) {
  ts->n = 0;
  for (int fd = 0; fd <= 2; fd++) {
    struct stat st;
    unsigned i;

    if (!isatty(fd) || fstat(fd, &st) < 0)
      continue;
    for (i = 0; i < ts->n && ts->tty[i].rdev != st.st_rdev; i++)
      ;
    if (i < ts->n || tcgetattr(fd, &ts->tty[ts->n].tio) < 0)
      continue; /* the same terminal as an earlier fd, or not one after all */
    ts->tty[ts->n].fd = fd;
    ts->tty[ts->n].rdev = st.st_rdev;
    int excl = 0;
    ts->tty[ts->n].excl = ioctl(fd, TIOCGEXCL, &excl) == 0 ? excl != 0 : -1;
    ts->n++;
  }
}

void awf_ttystate_restore(const struct awf_ttystate *ts) {
  sigset_t block, old;
  int saved_errno = errno;

  if (ts->n == 0)
    return;
  sigemptyset(&block);
  sigaddset(&block, SIGTTOU);
  sigprocmask(SIG_BLOCK, &block, &old);
  for (unsigned i = 0; i < ts->n; i++) {
    int fd = ts->tty[i].fd;

    /* tcgetpgrp fails (ENOTTY) unless this is awf's controlling terminal */
    pid_t fg = tcgetpgrp(fd);
    if (fg <= 0 || fg == getpgrp())
      (void)tcsetattr(fd, TCSANOW, &ts->tty[i].tio);
    /* unknown (no TIOCGEXCL): off, the usual state */
    (void)ioctl(fd, ts->tty[i].excl == 1 ? TIOCEXCL : TIOCNXCL);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  errno = saved_errno;
}
