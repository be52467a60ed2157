/* fdwatch.c: see fdwatch.h. */
#include "fdwatch.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

struct awf_fdwatch {
  uv_poll_t poll;
  int fd;
  awf_fdwatch_drain_fn drain;
  void *arg;
};

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  struct awf_fdwatch *w = h->data;
  if (status < 0) {
    uv_poll_stop(h);
    return;
  }
  w->drain(w->fd, w->arg);
}

int awf_fdwatch_start(uv_loop_t *loop, int fd, awf_fdwatch_drain_fn drain, void *arg,
                      awf_fdwatch **out) {
  struct awf_fdwatch *w = calloc(1, sizeof(*w));
  if (!w || uv_poll_init(loop, &w->poll, fd) < 0) {
    free(w);
    close(fd);
    return -ENOMEM;
  }
  w->fd = fd;
  w->drain = drain;
  w->arg = arg;
  w->poll.data = w;
  uv_poll_start(&w->poll, UV_READABLE, on_readable);
  *out = w;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  struct awf_fdwatch *w = h->data;
  close(w->fd);
  free(w);
}

void awf_fdwatch_close(awf_fdwatch *w) {
  if (!w)
    return;
  w->drain(w->fd, w->arg);
  uv_close((uv_handle_t *)&w->poll, on_closed);
}
