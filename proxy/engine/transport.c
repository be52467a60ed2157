/* transport.c: the part of every transport that is not its implementation:
 * read control and backpressure, kept once here. */
#include "transport.h"

#include <string.h>

void awf_transport_init(struct awf_transport *t, const struct awf_transport_ops *ops,
                        const struct awf_transport_cbs *cbs, void *owner) {
  memset(t, 0, sizeof(*t));
  t->ops = ops;
  t->cbs = cbs;
  t->owner = owner;
}

void awf_transport_set_owner(struct awf_transport *t, const struct awf_transport_cbs *cbs,
                             void *owner) {
  t->cbs = cbs;
  t->owner = owner;
}

/* Reading follows the owner's wish unless the transport is held or done. */
static void apply_reading(struct awf_transport *t) {
  bool on = t->want_read && !t->held && !t->eof && !t->closing;
  if (on == t->reading)
    return;
  if (on) {
    t->reading = t->ops->read_start(t) == 0;
  } else {
    t->ops->read_stop(t);
    t->reading = false;
  }
}

void awf_transport_want_read(struct awf_transport *t, bool want) {
  t->want_read = want;
  apply_reading(t);
}

void awf_transport_hold(struct awf_transport *t, bool held) {
  t->held = held;
  apply_reading(t);
}

int awf_transport_write(struct awf_transport *t, const uv_buf_t *bufs, unsigned n) {
  int rc = t->ops->write(t, bufs, n);
  if (rc < 0)
    return rc;
  if (rc == 1 && !t->full && t->ops->queued(t) > AWF_TRANSPORT_HIGH_WATER) {
    t->full = true;
    t->cbs->on_flow(t->owner, t, AWF_TRANSPORT_FULL);
  }
  return 0;
}

int awf_transport_shutdown(struct awf_transport *t) { return t->ops->shutdown(t); }

void awf_transport_close(struct awf_transport *t) {
  if (t->closing)
    return;
  t->closing = true;
  t->reading = false;
  t->ops->close(t);
}

size_t awf_transport_queued(const struct awf_transport *t) { return t->ops->queued(t); }

int awf_transport_fileno(const struct awf_transport *t) { return t->ops->fileno(t); }

void awf_transport_read_done(struct awf_transport *t, ssize_t nread, const uv_buf_t *buf) {
  if (nread < 0) { /* the stream stopped reading by itself */
    t->eof = true;
    t->reading = false;
  }
  t->cbs->on_read(t->owner, t, nread, buf);
}

void awf_transport_write_done(struct awf_transport *t, int status) {
  if (status == UV_ECANCELED) /* closed under the write: nobody to tell */
    return;
  if (status < 0) {
    t->cbs->on_write_error(t->owner, t, status);
    return;
  }
  if (t->ops->queued(t) >= AWF_TRANSPORT_HIGH_WATER / 2)
    return;
  t->full = false;
  t->cbs->on_flow(t->owner, t, AWF_TRANSPORT_DRAINED);
}

void awf_transport_shutdown_done(struct awf_transport *t, int status) {
  t->cbs->on_shutdown(t->owner, t, status);
}

void awf_transport_closed(struct awf_transport *t) { t->cbs->on_closed(t->owner, t); }
