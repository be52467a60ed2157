/* stream_write.h: ordered writes to a libuv stream that copy only what the
 * kernel did not take at once. Read callbacks hand out one shared buffer per
 * loop (so an idle connection holds no read buffer); data that must wait for
 * the socket is copied into a single heap block owned by its write request. */
#ifndef AWF_STREAM_WRITE_H
#define AWF_STREAM_WRITE_H

#include <uv.h>

/* Called when the queued part of a write finished (status 0 or a negative
 * uv error). Not called when everything was written synchronously. */
typedef void (*awf_write_cb)(uv_stream_t *s, int status, void *arg);

/* Write bufs in order after any writes already queued on s. Returns 0 (all
 * written now, cb not called), 1 (a remainder is queued, cb will be called),
 * or a negative uv error (nothing queued, cb not called). */
int awf_stream_write(uv_stream_t *s, const uv_buf_t *bufs, unsigned nbufs, awf_write_cb cb,
                     void *arg);

#endif
