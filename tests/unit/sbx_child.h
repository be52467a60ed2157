/* sbx_child.h: run one test step in a forked child and collect what it wrote.
 * For steps that change the process for good (seccomp filters, dropped
 * privileges): the test runner itself stays untouched. Header-only, shared
 * by test_sbx_seccomp.c and test_sbx_privileges.c; include after cmocka.h. */
#ifndef AWF_TEST_SBX_CHILD_H
#define AWF_TEST_SBX_CHILD_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* A child step: writes its findings to out_fd and returns its exit code. */
typedef int (*sbx_child_fn)(int out_fd, const void *arg);

/* Write a formatted message to fd (best effort, capped) and return 1, the
 * exit code of a failed step: `return sbx_fail(out, "...", ...);`. */
__attribute__((format(printf, 2, 3))) static inline int sbx_fail(int fd, const char *fmt, ...) {
  char line[512];
  va_list ap;
  ssize_t ignored;

  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  ignored = write(fd, line, strlen(line)); /* nothing better to do if it fails */
  (void)ignored;
  return 1;
}

/* Fork; the child runs fn and leaves with _exit: exit() would run
 * LeakSanitizer's check, which stops the process with ptrace (refused once a
 * filter is in). The parent reads everything the child writes to the pipe
 * (up to outsz - 1 bytes kept, NUL-terminated, the rest drained) until the
 * child and anything it started have closed it, then reaps the child.
 * Returns the wait status, or -1 if the fork or the pipe failed. */
static inline int sbx_child_run(sbx_child_fn fn, const void *arg, char *out, size_t outsz) {
  int p[2], status = -1;
  size_t used = 0;
  pid_t pid;

  out[0] = '\0';
  if (pipe(p) != 0)
    return -1;
  pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (pid == 0) {
    close(p[0]);
    _exit(fn(p[1], arg));
  }
  close(p[1]);
  for (;;) {
    char sink[256];
    char *dst = used + 1 < outsz ? out + used : sink;
    size_t room = used + 1 < outsz ? outsz - 1 - used : sizeof sink;
    ssize_t n = read(p[0], dst, room);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (dst != sink)
      used += (size_t)n;
  }
  out[used] = '\0';
  close(p[0]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return status;
}

/* Run fn in a child, which must exit 0; otherwise fail the test with what
 * the child said. */
static inline void sbx_expect_child_ok(sbx_child_fn fn, const void *arg) {
  char msg[1024];
  int st = sbx_child_run(fn, arg, msg, sizeof msg);

  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    fail_msg("child status %#x: %s", (unsigned)st, msg);
}

#endif
