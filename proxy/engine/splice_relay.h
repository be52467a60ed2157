/* splice_relay.h: relay two connected TCP sockets both ways through pipes
 * with splice(2), so tunnel bytes never enter the proxy's memory. A tunnel
 * switches to it once a read fills the whole read buffer (a bulk transfer);
 * quiet and idle tunnels keep the libuv path and hold no pipe.
 *
 * The caller stops libuv reading on both streams, lets their writes drain,
 * and keeps the streams (and their descriptors) open: it closes them only
 * after awf_splice_close(). */
#ifndef AWF_SPLICE_RELAY_H
#define AWF_SPLICE_RELAY_H

#include <stddef.h>
#include <uv.h>

typedef struct awf_splice awf_splice;

struct awf_splice_cbs {
  /* Bytes delivered: dir 0 is a->b, dir 1 is b->a. */
  void (*on_bytes)(void *arg, int dir, size_t n);
  /* Both directions ended with their FIN passed on (status 0), or one
   * failed (a negative errno). Called once; the relay is idle afterwards. */
  void (*on_done)(void *arg, int status);
};

/* Returns 0, or -errno with nothing left behind (no descriptors, no handles):
 * -EEXIST when libuv still watches one of the descriptors. */
int awf_splice_start(uv_loop_t *loop, int fd_a, int fd_b, const struct awf_splice_cbs *cbs,
                     void *arg, awf_splice **out);

/* Stop at once (no more callbacks) and release the pipes; memory goes when
 * libuv has closed the poll handles. Callable from inside a callback. */
void awf_splice_close(awf_splice *s);

#endif
