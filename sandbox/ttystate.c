/* ttystate.c: see ttystate.h. */
#include "ttystate.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* UNIX 98 pty slaves (/dev/pts/N): majors 136-143. */
#define PTS_MAJOR_FIRST 136
#define PTS_MAJOR_LAST 143

static bool is_pty(dev_t rdev) {
  return major(rdev) >= PTS_MAJOR_FIRST && major(rdev) <= PTS_MAJOR_LAST;
}

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
    if (ioctl(fd, TIOCGETD, &ts->tty[ts->n].ldisc) < 0)
      ts->tty[ts->n].ldisc = -1;
    ts->tty[ts->n].has_winsize = ioctl(fd, TIOCGWINSZ, &ts->tty[ts->n].winsize) == 0;
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

    /* First the line discipline: another one (n_null: a dead terminal)
     * would also take the termios set below. */
    int ldisc;
    if (ts->tty[i].ldisc >= 0 && ioctl(fd, TIOCGETD, &ldisc) == 0 && ldisc != ts->tty[i].ldisc)
      (void)ioctl(fd, TIOCSETD, &ts->tty[i].ldisc);
    /* tcgetpgrp fails (ENOTTY) unless this is awf's controlling terminal */
    pid_t fg = tcgetpgrp(fd);
    if (fg <= 0 || fg == getpgrp()) {
      (void)tcsetattr(fd, TCSANOW, &ts->tty[i].tio);
      struct winsize ws;
      if (ts->tty[i].has_winsize && ioctl(fd, TIOCGWINSZ, &ws) == 0 &&
          memcmp(&ws, &ts->tty[i].winsize, sizeof(ws)) != 0)
        (void)ioctl(fd, TIOCSWINSZ, &ts->tty[i].winsize);
    }
    /* Output stopped by tcflow(TCOOFF) would block every later write to the
     * terminal, awf's own included; TCOON undoes only that, never a ^S typed
     * at it. A STOP character sent (TCIOFF) is undone by a START one, but on
     * a pty nothing obeys them, so it would only add a byte to the output. */
    (void)tcflow(fd, TCOON);
    if (!is_pty(ts->tty[i].rdev))
      (void)tcflow(fd, TCION);
    /* unknown (no TIOCGEXCL): off, the usual state */
    (void)ioctl(fd, ts->tty[i].excl == 1 ? TIOCEXCL : TIOCNXCL);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  errno = saved_errno;
}

int awf_ttystate_stderr_unblock(void) {
  if (!isatty(STDERR_FILENO))
    return -1;
  int saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  if (saved < 0)
    return -1;
  /* A file description of awf's own: O_NONBLOCK on the shared one would
   * reach the command and the caller's shell. */
  int fd = open("/proc/self/fd/2", O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
    if (fd >= 0)
      close(fd);
    close(saved);
    return -1;
  }
  close(fd);
  return saved;
}

void awf_ttystate_stderr_block(int saved) {
  if (saved < 0)
    return;
  fflush(stderr);
  (void)dup2(saved, STDERR_FILENO);
  close(saved);
}
