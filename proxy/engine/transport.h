/* transport.h: the byte stream under a connection, one per side (client,
 * upstream). The engine's modes read and write only through it, so that a
 * TLS transport can later slot in under the same HTTP code as TCP does today
 * (transport_tcp.h).
 *
 * Backpressure lives here, once: a transport counts what waits in its write
 * queue against a high-water mark built into the type. Passing the mark it
 * tells its owner "stop feeding me" (AWF_TRANSPORT_FULL); when a queued write
 * finishes and the queue is back under half the mark, "drained, resume"
 * (AWF_TRANSPORT_DRAINED). Reading is on while the owner wants it and nothing
 * holds it (the owner holds a side while the side it feeds is full).
 *
 * The implementation fills in the ops; the owner hears through the cbs. Both
 * go through the functions below, never through the tables directly. */
#ifndef AWF_TRANSPORT_H
#define AWF_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

/* Stop reading a side while its peer has more than this queued for writing. */
#define AWF_TRANSPORT_HIGH_WATER (256 * 1024)

struct awf_transport;

enum awf_transport_flow {
  AWF_TRANSPORT_FULL,    /* the write queue passed the high-water mark */
  AWF_TRANSPORT_DRAINED, /* a queued write finished, the queue is under half of it */
};

/* What the owner hears. Every callback may close the transport. */
struct awf_transport_cbs {
  /* Bytes (nread > 0), or the end (UV_EOF or an error: reading is over). The
   * buffer is lent for the call only. */
  void (*on_read)(void *owner, struct awf_transport *t, ssize_t nread, const uv_buf_t *buf);
  void (*on_flow)(void *owner, struct awf_transport *t, enum awf_transport_flow flow);
  /* A queued write failed (never called for one cancelled by a close). */
  void (*on_write_error)(void *owner, struct awf_transport *t, int status);
  /* awf_transport_shutdown() finished: status 0, an error, or UV_ECANCELED. */
  void (*on_shutdown)(void *owner, struct awf_transport *t, int status);
  /* After awf_transport_close(), never from inside it: the transport holds
   * nothing any more and its memory may go. */
  void (*on_closed)(void *owner, struct awf_transport *t);
};

/* What an implementation provides. */
struct awf_transport_ops {
  const char *name; /* "tcp"; diagnostics */
  int (*read_start)(struct awf_transport *t);
  void (*read_stop)(struct awf_transport *t);
  /* Write in order after what is queued. 0: all taken now; 1: a remainder is
   * queued (awf_transport_write_done() follows); < 0: a uv error, nothing
   * queued. The buffers are not used after the call. */
  int (*write)(struct awf_transport *t, const uv_buf_t *bufs, unsigned n);
  size_t (*queued)(const struct awf_transport *t); /* bytes waiting to be written */
  /* Send the end of the stream once the queue drains; awf_transport_shutdown_done()
   * follows. Returns 0 or a uv error (then nothing follows). */
  int (*shutdown)(struct awf_transport *t);
  void (*close)(struct awf_transport *t);       /* awf_transport_closed() follows */
  int (*fileno)(const struct awf_transport *t); /* the socket, or -1 (no splice) */
};

struct awf_transport {
  const struct awf_transport_ops *ops;
  const struct awf_transport_cbs *cbs;
  void *owner;
  bool want_read; /* the owner wants bytes */
  bool held;      /* the side this one feeds is full: not read until it drains */
  bool reading;   /* read_start in force */
  bool full;      /* own write queue over the high-water mark */
  bool eof;       /* the read side ended (EOF or an error) */
  bool closing;   /* awf_transport_close() was called */
};

/* For implementations: set the tables, clear the state. */
void awf_transport_init(struct awf_transport *t, const struct awf_transport_ops *ops,
                        const struct awf_transport_cbs *cbs, void *owner);

/* Hand a transport to a new owner (a TLS transport layered over it): its
 * events go to cbs with owner from now on. */
void awf_transport_set_owner(struct awf_transport *t, const struct awf_transport_cbs *cbs,
                             void *owner);

/* The owner's side. */
void awf_transport_want_read(struct awf_transport *t, bool want);
void awf_transport_hold(struct awf_transport *t, bool held);
int awf_transport_write(struct awf_transport *t, const uv_buf_t *bufs, unsigned n);
int awf_transport_shutdown(struct awf_transport *t);
void awf_transport_close(struct awf_transport *t);
size_t awf_transport_queued(const struct awf_transport *t);
int awf_transport_fileno(const struct awf_transport *t);

/* The implementation's side: report events; each calls the owner. */
void awf_transport_read_done(struct awf_transport *t, ssize_t nread, const uv_buf_t *buf);
void awf_transport_write_done(struct awf_transport *t, int status);
void awf_transport_shutdown_done(struct awf_transport *t, int status);
void awf_transport_closed(struct awf_transport *t);

#endif
