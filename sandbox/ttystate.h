/* ttystate.h: the caller's terminal, as it was before the command ran.
 *
 * The command gets awf's stdin, stdout and stderr. In a session of its own
 * it cannot make awf's terminal its controlling one nor change its
 * foreground process group, but it can still change the terminal through
 * those descriptors: turn echo off or the line discipline's modes (termios),
 * set exclusive mode (TIOCEXCL, so nothing else, the caller's shell
 * included, can open it again), set another line discipline (TIOCSETD:
 * n_null leaves a dead terminal), stop its output (tcflow TCOOFF: every
 * later write to it blocks), or change its window size. Such changes would
 * outlast the run. awf notes each distinct terminal among fds 0-2 before the
 * command starts and puts it back when the command is over, however it ended
 * (exit, a signal, SIGKILL included, --agent-timeout, awf's own forwarded
 * SIGTERM/SIGINT/SIGHUP), before awf prints anything more: its line
 * discipline, termios (TCSANOW), window size and exclusive mode, and its
 * output restarted (TCOON; TCION too on a terminal that is not a pty). One
 * exception: when the terminal is awf's controlling terminal and awf is not
 * in its foreground process group (a background job, `awf ... &`), the modes
 * and the window size now belong to the foreground job (an editor, the
 * shell's line editor) and are left alone; the rest is still put back. A
 * window resized during the run gets the size it had before it (resize it
 * again). awf itself killed by SIGKILL restores nothing: the one case not
 * covered. */
#ifndef AWF_TTYSTATE_H
#define AWF_TTYSTATE_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/ioctl.h>
#include <termios.h>

struct awf_ttystate {
  unsigned n;
  struct {
    int fd;     /* one of 0, 1, 2 */
    dev_t rdev; /* the terminal */
    struct termios tio;
    int excl;  /* TIOCGEXCL at save: 0, 1, or -1 when unknown */
    int ldisc; /* TIOCGETD at save, or -1 when unknown */
    bool has_winsize;
    struct winsize winsize;
  } tty[3];
};

/* Note the terminals among fds 0-2 (none: n = 0). Never fails. */
void awf_ttystate_save(struct awf_ttystate *ts);

/* Put them back as noted (see above); best effort (a terminal hung up
 * meanwhile is skipped). SIGTTOU is blocked meanwhile, so awf is never
 * stopped for changing its terminal. */
void awf_ttystate_restore(const struct awf_ttystate *ts);

/* While the command runs, awf's own stderr, when it is a terminal, is a file
 * description of awf's own opened non-blocking: the command stopping the
 * terminal's output then costs awf's messages meanwhile, never a blocked
 * awf (its event loop, --agent-timeout). Returns the descriptor to put back
 * with awf_ttystate_stderr_block(), or -1 (not a terminal: nothing done). */
int awf_ttystate_stderr_unblock(void);
void awf_ttystate_stderr_block(int saved);

#endif
