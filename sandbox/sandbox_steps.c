/* sandbox_steps.c: awf's privileged setup steps, each named for what it
 * does and failing with a message that says what and why. */
#include "sandbox_steps.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int awf_step_enter_sandbox_net(pid_t pid, int *home_ns, char *err, size_t errlen) {
  char path[64];
  *home_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (*home_ns < 0) {
    snprintf(err, errlen, "opening awf's own network namespace: %s", strerror(errno));
    return -errno;
  }
  snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
    int e = errno;
    snprintf(err, errlen, "entering the sandbox's network namespace (%s): %s", path,
             strerror(e));
    if (fd >= 0)
      close(fd);
    close(*home_ns);
    *home_ns = -1;
    return -e;
  }
  close(fd);
  return 0;
}

int awf_step_leave_sandbox_net(int home_ns, char *err, size_t errlen) {
  int rc = setns(home_ns, CLONE_NEWNET);
  int e = errno;
  close(home_ns);
  if (rc < 0) {
    snprintf(err, errlen, "returning to awf's own network namespace: %s", strerror(e));
    return -e;
  }
  return 0;
}
