/* splice_relay.c: the zero-copy relay of a bulk tunnel.
 *
 * Each direction is socket -> pipe -> socket with splice(2): pages move,
 * bytes are not copied through user space. The two sockets sit in a small
 * epoll set of their own, edge-triggered and registered once, and that
 * epoll descriptor is what libuv watches (one uv_poll): libuv keeps no
 * watcher on the sockets, and no epoll_ctl is needed per event. A pump stops
 * after PUMP_BUDGET bytes so one fast tunnel cannot starve the loop; a
 * uv_idle handle then resumes it on the next iteration (edge-triggered
 * events would not come again for bytes already waiting). */
#include "splice_relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define PIPE_BYTES (1024 * 1024) /* asked for; the kernel may give 64 KiB */
#define PUMP_BUDGET (4 * 1024 * 1024)

struct dir {
  int pipe_r, pipe_w;
  size_t in_pipe; /* bytes spliced in and not yet out */
  bool eof;       /* the source sent its FIN */
  bool shut;      /* ...and it was passed on (shutdown SHUT_WR) */
};

struct awf_splice {
  uv_poll_t poll; /* on epfd */
  uv_idle_t idle; /* resumes a pump that used up its budget */
  int epfd;
  int fd[2];
  bool readable[2], writable[2]; /* edge state: cleared on EAGAIN */
  struct dir d[2];               /* d[0]: fd[0] -> fd[1], d[1]: fd[1] -> fd[0] */
  size_t pipe_cap;
  int open_handles;
  bool finished, closing;
  struct awf_splice_cbs cbs;
  void *arg;
};

static void finish(awf_splice *s, int status) {
  if (s->finished || s->closing)
    return;
  s->finished = true;
  uv_idle_stop(&s->idle);
  s->cbs.on_done(s->arg, status);
}

/* Move bytes of direction i until a side would block, the source ends, or
 * the budget is spent. Returns true when it stopped on the budget. */
static bool pump(awf_splice *s, int i, size_t *budget) {
  struct dir *d = &s->d[i];
  int src = s->fd[i], dst = s->fd[1 - i];
  while (!s->finished && !s->closing) {
    if (d->in_pipe > 0) {
      if (!s->writable[1 - i])
        return false;
      ssize_t m = splice(d->pipe_r, NULL, dst, NULL, d->in_pipe,
                         SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
      if (m < 0) {
        if (errno == EAGAIN) {
          s->writable[1 - i] = false;
          return false;
        }
        if (errno != EINTR)
          finish(s, -errno);
        continue;
      }
      d->in_pipe -= (size_t)m;
      *budget = *budget > (size_t)m ? *budget - (size_t)m : 0;
      s->cbs.on_bytes(s->arg, i, (size_t)m);
      continue;
    }
    if (d->eof) {
      if (!d->shut) {
        d->shut = true;
        (void)shutdown(dst, SHUT_WR); /* ENOTCONN: the peer is gone already */
        if (s->d[1 - i].shut)
          finish(s, 0);
      }
      return false;
    }
    if (!s->readable[i])
      return false;
    if (*budget == 0)
      return true;
    /* The pipe is empty here, so EAGAIN can only mean the socket is. */
    ssize_t n = splice(src, NULL, d->pipe_w, NULL, s->pipe_cap,
                       SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    if (n > 0) {
      d->in_pipe = (size_t)n;
    } else if (n == 0) {
      d->eof = true;
    } else if (errno == EAGAIN) {
      s->readable[i] = false;
      return false;
    } else if (errno != EINTR) {
      finish(s, -errno);
    }
  }
  return false;
}

static void on_idle(uv_idle_t *h);

static void run(awf_splice *s) {
  size_t budget = PUMP_BUDGET;
  bool more = pump(s, 0, &budget);
  budget = PUMP_BUDGET;
  more |= pump(s, 1, &budget);
  if (s->finished || s->closing)
    return;
  if (more)
    uv_idle_start(&s->idle, on_idle);
  else
    uv_idle_stop(&s->idle);
}

static void on_idle(uv_idle_t *h) { run(h->data); }

static void on_epoll(uv_poll_t *h, int status, int events) {
  awf_splice *s = h->data;
  (void)events;
  if (status < 0) {
    finish(s, status);
    return;
  }
  struct epoll_event ev[4];
  int n = epoll_wait(s->epfd, ev, 4, 0);
  for (int k = 0; k < n; k++) {
    int i = (int)ev[k].data.u32;
    if (ev[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
      s->readable[i] = true;
    if (ev[k].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
      s->writable[i] = true;
  }
  run(s);
}

static void on_handle_closed(uv_handle_t *h) {
  awf_splice *s = h->data;
  if (--s->open_handles == 0)
    free(s);
}

static void close_fds(awf_splice *s) {
  for (int i = 0; i < 2; i++) {
    if (s->d[i].pipe_r >= 0)
      close(s->d[i].pipe_r);
    if (s->d[i].pipe_w >= 0)
      close(s->d[i].pipe_w);
  }
  if (s->epfd >= 0)
    close(s->epfd);
}

int awf_splice_start(uv_loop_t *loop, int fd_a, int fd_b, const struct awf_splice_cbs *cbs,
                     void *arg, awf_splice **out) {
  awf_splice *s = calloc(1, sizeof(*s));
  if (!s)
    return -ENOMEM;
  s->fd[0] = fd_a;
  s->fd[1] = fd_b;
  s->cbs = *cbs;
  s->arg = arg;
  s->d[0].pipe_r = s->d[0].pipe_w = s->d[1].pipe_r = s->d[1].pipe_w = -1;
  s->epfd = epoll_create1(EPOLL_CLOEXEC);
  int rc = s->epfd < 0 ? -errno : 0;
  for (int i = 0; i < 2 && rc == 0; i++) {
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
      rc = -errno;
      break;
    }
    s->d[i].pipe_r = p[0];
    s->d[i].pipe_w = p[1];
    (void)fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES);
    int cap = fcntl(p[1], F_GETPIPE_SZ);
    size_t c = cap > 0 ? (size_t)cap : 65536;
    s->pipe_cap = i == 0 || c < s->pipe_cap ? c : s->pipe_cap;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u32 = (uint32_t)i};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->fd[i], &ev) < 0)
      rc = -errno;
  }
  if (rc == 0)
    rc = uv_poll_init(loop, &s->poll, s->epfd);
  if (rc < 0) {
    close_fds(s);
    free(s);
    return rc;
  }
  uv_idle_init(loop, &s->idle);
  s->poll.data = s->idle.data = s;
  s->open_handles = 2;
  /* Bytes may already wait in either socket: try both ways once. */
  s->readable[0] = s->readable[1] = s->writable[0] = s->writable[1] = true;
  uv_poll_start(&s->poll, UV_READABLE, on_epoll);
  uv_idle_start(&s->idle, on_idle);
  *out = s;
  return 0;
}

void awf_splice_close(awf_splice *s) {
  if (!s || s->closing)
    return;
  s->closing = true;
  uv_close((uv_handle_t *)&s->poll, on_handle_closed);
  uv_close((uv_handle_t *)&s->idle, on_handle_closed);
  close_fds(s); /* after uv_close: libuv no longer watches epfd */
  s->epfd = -1;
}
