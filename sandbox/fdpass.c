/* fdpass.c: see fdpass.h. */
#include "fdpass.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

union fd_control {
  struct cmsghdr h;
  char buf[CMSG_SPACE(sizeof(int) * AWF_FDPASS_MAX)];
};

int awf_fdpass_send(int sock, char tag, const int *fds, size_t nfds) {
  if (nfds > AWF_FDPASS_MAX)
    return -E2BIG;
  union fd_control ctl;
  memset(&ctl, 0, sizeof(ctl));
  struct iovec iov = {&tag, 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds) {
    m.msg_control = ctl.buf;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do
    n = sendmsg(sock, &m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n == 1 ? 0 : (n < 0 ? -errno : -EIO);
}

int awf_fdpass_recv(int sock, char *tag, int *fds, size_t min, size_t max, size_t *n_out) {
  if (max > AWF_FDPASS_MAX || min > max)
    return -E2BIG;
  union fd_control ctl;
  memset(&ctl, 0, sizeof(ctl));
  struct iovec iov = {tag, 1};
  struct msghdr m = {.msg_iov = &iov,
                     .msg_iovlen = 1,
                     .msg_control = ctl.buf,
                     .msg_controllen = sizeof(ctl.buf)};
  ssize_t n;
  do
    n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  size_t got = 0;
  int recv_fds[AWF_FDPASS_MAX];
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
      continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (got < AWF_FDPASS_MAX)
        recv_fds[got++] = fd;
      else
        close(fd);
    }
  }
  int rc = 0;
  if (n == 0)
    rc = -EPIPE;
  else if (got < min || got > max || (m.msg_flags & MSG_CTRUNC))
    rc = -EBADMSG;
  if (rc < 0) {
    for (size_t i = 0; i < got; i++)
      close(recv_fds[i]);
    return rc;
  }
  memcpy(fds, recv_fds, sizeof(int) * got);
  *n_out = got;
  return 0;
}
