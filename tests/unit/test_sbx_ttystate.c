/* Unit tests for sandbox/ttystate.c: a pty stands in for the caller's terminal. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "ttystate.h"

struct pty {
  int master, slave, saved0;
};

/* A pty whose slave is fd 0 (fd 0 itself kept aside). */
static void open_pty(struct pty *p) {
  p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  assert_true(p->master >= 0);
  assert_int_equal(grantpt(p->master), 0);
  assert_int_equal(unlockpt(p->master), 0);
  p->slave = open(ptsname(p->master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  assert_true(p->slave >= 0);
  p->saved0 = dup(0);
  assert_true(p->saved0 >= 0);
  assert_int_equal(dup2(p->slave, 0), 0);
}

static void close_pty(struct pty *p) {
  dup2(p->saved0, 0);
  close(p->saved0);
  close(p->slave);
  close(p->master);
}

static int exclusive(int fd) {
  int on = -1;

  assert_int_equal(ioctl(fd, TIOCGEXCL, &on), 0);
  return on;
}

static void test_termios_and_exclusive_mode_come_back(void **state) {
  struct awf_ttystate ts;
  struct termios before, t, after;
  struct pty p;

  (void)state;
  open_pty(&p);
  assert_int_equal(tcgetattr(0, &before), 0);
  awf_ttystate_save(&ts);
  assert_true(ts.n >= 1);
  t = before;
  t.c_lflag &= ~(tcflag_t)(ECHO | ICANON);
  assert_int_equal(tcsetattr(p.slave, TCSANOW, &t), 0);
  assert_int_equal(ioctl(p.slave, TIOCEXCL), 0);
  assert_int_equal(exclusive(p.slave), 1);
  awf_ttystate_restore(&ts);
  assert_int_equal(tcgetattr(p.slave, &after), 0);
  assert_true(after.c_lflag & ECHO);
  assert_true(after.c_lflag & ICANON);
  assert_int_equal(after.c_lflag, before.c_lflag);
  assert_int_equal(exclusive(p.slave), 0);
  close_pty(&p);
}

#ifndef N_NULL
#define N_NULL 27
#endif

/* The command sets the n_null line discipline (everything written to the
 * terminal then goes nowhere): awf sets the one it had back. */
static void test_line_discipline_comes_back(void **state) {
  struct awf_ttystate ts;
  struct pty p;
  int ldisc = -1, null = N_NULL;

  (void)state;
  open_pty(&p);
  assert_int_equal(ioctl(p.slave, TIOCGETD, &ldisc), 0);
  assert_int_equal(ldisc, N_TTY);
  awf_ttystate_save(&ts);
  if (ioctl(p.slave, TIOCSETD, &null) < 0) {
    close_pty(&p);
    skip(); /* no n_null in this kernel */
  }
  assert_int_equal(ioctl(p.slave, TIOCGETD, &ldisc), 0);
  assert_int_equal(ldisc, N_NULL);
  awf_ttystate_restore(&ts);
  assert_int_equal(ioctl(p.slave, TIOCGETD, &ldisc), 0);
  assert_int_equal(ldisc, N_TTY);
  /* and it works again: a line written to the slave reaches the master */
  assert_int_equal(write(p.slave, "ok\n", 3), 3);
  char buf[16];
  assert_true(read(p.master, buf, sizeof(buf)) >= 2);
  assert_memory_equal(buf, "ok", 2);
  close_pty(&p);
}

/* The command stops the terminal's output (tcflow TCOOFF): every later write
 * would block. After the restore a non-blocking write goes through. */
static void test_stopped_output_is_restarted(void **state) {
  struct awf_ttystate ts;
  struct pty p;

  (void)state;
  open_pty(&p);
  awf_ttystate_save(&ts);
  assert_int_equal(tcflow(p.slave, TCOOFF), 0);
  int nb = open(ptsname(p.master), O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  assert_true(nb >= 0);
  errno = 0;
  assert_int_equal(write(nb, "x", 1), -1); /* stopped: it would block */
  assert_int_equal(errno, EAGAIN);
  awf_ttystate_restore(&ts);
  assert_int_equal(write(nb, "y", 1), 1);
  close(nb);
  close_pty(&p);
}

/* The command changes the window size: it gets the size it had back. */
static void test_window_size_comes_back(void **state) {
  struct awf_ttystate ts;
  struct winsize before = {.ws_row = 24, .ws_col = 80}, small = {.ws_row = 1, .ws_col = 2};
  struct winsize after;
  struct pty p;

  (void)state;
  open_pty(&p);
  assert_int_equal(ioctl(p.master, TIOCSWINSZ, &before), 0);
  awf_ttystate_save(&ts);
  assert_int_equal(ioctl(p.slave, TIOCSWINSZ, &small), 0);
  awf_ttystate_restore(&ts);
  assert_int_equal(ioctl(p.slave, TIOCGWINSZ, &after), 0);
  assert_int_equal(after.ws_row, 24);
  assert_int_equal(after.ws_col, 80);
  close_pty(&p);
}

static void test_one_terminal_on_several_fds_is_noted_once(void **state) {
  struct awf_ttystate ts;
  struct pty p;
  int saved1 = dup(1), saved2 = dup(2);

  (void)state;
  open_pty(&p);
  dup2(p.slave, 1);
  dup2(p.slave, 2);
  awf_ttystate_save(&ts);
  dup2(saved1, 1);
  dup2(saved2, 2);
  close(saved1);
  close(saved2);
  close_pty(&p);
  assert_int_equal(ts.n, 1);
  assert_int_equal(ts.tty[0].fd, 0);
}

static void test_no_terminal_no_state(void **state) {
  struct awf_ttystate ts;
  int fds[2], saved[3];

  (void)state;
  assert_int_equal(pipe(fds), 0);
  for (int fd = 0; fd < 3; fd++) {
    saved[fd] = dup(fd);
    dup2(fds[fd == 0 ? 0 : 1], fd);
  }
  awf_ttystate_save(&ts);
  for (int fd = 0; fd < 3; fd++) {
    dup2(saved[fd], fd);
    close(saved[fd]);
  }
  close(fds[0]);
  close(fds[1]);
  assert_int_equal(ts.n, 0);
  awf_ttystate_restore(&ts); /* nothing to do, nothing fails */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_termios_and_exclusive_mode_come_back),
      cmocka_unit_test(test_line_discipline_comes_back),
      cmocka_unit_test(test_stopped_output_is_restarted),
      cmocka_unit_test(test_window_size_comes_back),
      cmocka_unit_test(test_one_terminal_on_several_fds_is_noted_once),
      cmocka_unit_test(test_no_terminal_no_state),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
