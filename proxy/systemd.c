/* systemd.c: socket activation and sd_notify without libsystemd (systemd.h). */
#include "systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A decimal without sign, leading garbage or overflow. */
static int parse_ulong(const char *s, unsigned long *out) {
  if (!s || !*s || *s < '0' || *s > '9')
    return -EINVAL;
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end)
    return -EINVAL;
  *out = v;
  return 0;
}

static void unset_listen_env(void) {
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
}

int awf_sd_listen_fds(pid_t pid, struct awf_sd_fd *out, size_t max, char *err, size_t errlen) {
  const char *spid = getenv("LISTEN_PID"), *sfds = getenv("LISTEN_FDS");
  const char *names = getenv("LISTEN_FDNAMES");
  unsigned long lpid, n;
  if (!spid)
    return 0;
  if (parse_ulong(spid, &lpid) < 0) {
    snprintf(err, errlen, "LISTEN_PID: not a process id: '%.64s'", spid);
    return -EINVAL;
  }
  if (lpid != (unsigned long)pid)
    return 0; /* meant for another process (our parent's) */
  if (parse_ulong(sfds, &n) < 0) {
    snprintf(err, errlen, "LISTEN_FDS: not a number: '%.64s'", sfds ? sfds : "");
    return -EINVAL;
  }
  if (n > max) {
    snprintf(err, errlen, "LISTEN_FDS: %lu sockets passed, at most %zu taken", n, max);
    return -EINVAL;
  }
  const char *p = names;
  for (unsigned long i = 0; i < n; i++) {
    int fd = AWF_SD_LISTEN_FDS_START + (int)i;
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
      snprintf(err, errlen, "LISTEN_FDS: fd %d is not open", fd);
      return -EINVAL;
    }
    out[i].fd = fd;
    size_t len = 0;
    if (p && *p) {
      len = strcspn(p, ":");
      if (len >= AWF_SD_NAME_MAX) {
        snprintf(err, errlen, "LISTEN_FDNAMES: name %lu is too long", i + 1);
        return -EINVAL;
      }
      memcpy(out[i].name, p, len);
      p += len;
      if (*p == ':')
        p++;
    }
    if (len == 0)
      len = (size_t)snprintf(out[i].name, sizeof(out[i].name), "unknown");
    out[i].name[len] = '\0';
  }
  unset_listen_env();
  return (int)n;
}

int awf_sd_notify(const char *state) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || !*path)
    return 0;
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof(sun));
  sun.sun_family = AF_UNIX;
  size_t len = strlen(path);
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sun.sun_path))
    return -EINVAL;
  memcpy(sun.sun_path, path, len);
  if (path[0] == '@')
    sun.sun_path[0] = '\0'; /* the abstract namespace */
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  ssize_t rc = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, alen);
  int e = errno;
  close(fd);
  return rc < 0 ? -e : 1;
}
