/* stream_write.c: try the write now, queue only the remainder. */
#include "stream_write.h"

#include <stdlib.h>
#include <string.h>

struct queued_write {
  uv_write_t req;
  awf_write_cb cb;
  void *arg;
  char data[];
};

static void on_written(uv_write_t *req, int status) {
  struct queued_write *q = (struct queued_write *)req;
  awf_write_cb cb = q->cb;
  void *arg = q->arg;
  uv_stream_t *s = req->handle;
  free(q);
  if (cb)
    cb(s, status, arg);
}

int awf_stream_write(uv_stream_t *s, const uv_buf_t *bufs, unsigned nbufs, awf_write_cb cb,
                     void *arg) {
  size_t total = 0, done = 0;
  for (unsigned i = 0; i < nbufs; i++)
    total += bufs[i].len;
  if (total == 0)
    return 0;

  /* uv_try_write refuses (UV_EAGAIN) while earlier writes are queued, which
   * keeps the byte order. */
  int n = uv_try_write(s, bufs, nbufs);
  if (n >= 0)
    done = (size_t)n;
  else if (n != UV_EAGAIN)
    return n;
  if (done == total)
    return 0;

  struct queued_write *q = malloc(sizeof(*q) + (total - done));
  if (!q)
    return UV_ENOMEM;
  size_t off = 0, skip = done;
  for (unsigned i = 0; i < nbufs; i++) {
    size_t len = bufs[i].len;
    if (skip >= len) {
      skip -= len;
      continue;
    }
    memcpy(q->data + off, bufs[i].base + skip, len - skip);
    off += len - skip;
    skip = 0;
  }
  q->cb = cb;
  q->arg = arg;
  uv_buf_t rest = uv_buf_init(q->data, (unsigned)off);
  int rc = uv_write(&q->req, s, &rest, 1, on_written);
  if (rc < 0) {
    free(q);
    return rc;
  }
  return 1;
}
