/* transport_tcp.h: the TCP transport (transport.h) over a libuv TCP handle,
 * for either side of a connection. Writes go through awf_stream_write (try
 * now, copy only what the kernel did not take); reads land in one buffer
 * shared by every connection of the loop, consumed inside the read callback. */
#ifndef AWF_TRANSPORT_TCP_H
#define AWF_TRANSPORT_TCP_H

#include <stdbool.h>
#include <uv.h>

#include "transport.h"

struct awf_tcp_transport {
  struct awf_transport base; /* first */
  uv_tcp_t *tcp;             /* the handle wrapped; its data points here */
  bool heap;                 /* tcp was malloc()ed: freed once closed */
  char *rbuf;                /* the shared read buffer */
  size_t rbuf_len;
};

/* Wrap an initialised handle (connected, or about to be accepted into).
 * heap: tcp is malloc()ed (a dialled upstream) and is freed when closed;
 * otherwise its memory belongs to the caller, which waits for on_closed. */
void awf_tcp_transport_wrap(struct awf_tcp_transport *tt, uv_tcp_t *tcp, bool heap,
                            const struct awf_transport_cbs *cbs, void *owner, char *rbuf,
                            size_t rbuf_len);

/* Give the handle back (a heap handle only: the upstream pool takes it):
 * reading stopped, its data cleared; the transport is empty afterwards. The
 * caller checks that nothing is queued. */
uv_tcp_t *awf_tcp_transport_unwrap(struct awf_tcp_transport *tt);

#endif
