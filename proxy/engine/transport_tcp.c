/* transport_tcp.c: transport.h over uv_tcp_t. */
#include "transport_tcp.h"

#include <stdlib.h>

#include "stream_write.h"

static struct awf_tcp_transport *tcp_of(const struct awf_transport *t) {
  return (struct awf_tcp_transport *)t;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct awf_tcp_transport *tt = h->data;
  /* Reads are consumed inside their callback, so one buffer serves all. */
  buf->base = tt->rbuf;
  buf->len = tt->rbuf_len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct awf_tcp_transport *tt = s->data;
  awf_transport_read_done(&tt->base, nread, buf);
}

static int tcp_read_start(struct awf_transport *t) {
  return uv_read_start((uv_stream_t *)tcp_of(t)->tcp, on_alloc, on_read);
}

static void tcp_read_stop(struct awf_transport *t) {
  uv_read_stop((uv_stream_t *)tcp_of(t)->tcp);
}

static void on_written(uv_stream_t *s, int status, void *arg) {
  (void)s;
  awf_transport_write_done(arg, status);
}

static int tcp_write(struct awf_transport *t, const uv_buf_t *bufs, unsigned n) {
  return awf_stream_write((uv_stream_t *)tcp_of(t)->tcp, bufs, n, on_written, t);
}

static size_t tcp_queued(const struct awf_transport *t) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)tcp_of(t)->tcp);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  struct awf_transport *t = req->data;
  free(req);
  awf_transport_shutdown_done(t, status);
}

static int tcp_shutdown(struct awf_transport *t) {
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (!req)
    return UV_ENOMEM;
  req->data = t;
  int rc = uv_shutdown(req, (uv_stream_t *)tcp_of(t)->tcp, on_shutdown);
  if (rc < 0)
    free(req);
  return rc;
}

/* The handle's data still points at its transport: a wrapper reused for the
 * next upstream reports the old one's close to the same owner. */
static void on_heap_closed(uv_handle_t *h) {
  struct awf_tcp_transport *tt = h->data;
  free(h);
  awf_transport_closed(&tt->base);
}

static void on_closed(uv_handle_t *h) {
  struct awf_tcp_transport *tt = h->data;
  awf_transport_closed(&tt->base);
}

static void tcp_close(struct awf_transport *t) {
  struct awf_tcp_transport *tt = tcp_of(t);
  uv_close((uv_handle_t *)tt->tcp, tt->heap ? on_heap_closed : on_closed);
}

static int tcp_fileno(const struct awf_transport *t) {
  uv_os_fd_t fd;
  if (uv_fileno((const uv_handle_t *)tcp_of(t)->tcp, &fd) < 0)
    return -1;
  return fd;
}

static const struct awf_transport_ops tcp_ops = {
    .name = "tcp",
    .read_start = tcp_read_start,
    .read_stop = tcp_read_stop,
    .write = tcp_write,
    .queued = tcp_queued,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
    .fileno = tcp_fileno,
};

void awf_tcp_transport_wrap(struct awf_tcp_transport *tt, uv_tcp_t *tcp, bool heap,
                            const struct awf_transport_cbs *cbs, void *owner, char *rbuf,
                            size_t rbuf_len) {
  awf_transport_init(&tt->base, &tcp_ops, cbs, owner);
  tt->tcp = tcp;
  tt->heap = heap;
  tt->rbuf = rbuf;
  tt->rbuf_len = rbuf_len;
  tcp->data = tt;
}

uv_tcp_t *awf_tcp_transport_unwrap(struct awf_tcp_transport *tt) {
  uv_tcp_t *tcp = tt->tcp;
  uv_read_stop((uv_stream_t *)tcp);
  tcp->data = NULL;
  tt->tcp = NULL;
  tt->base.reading = false;
  return tcp;
}
