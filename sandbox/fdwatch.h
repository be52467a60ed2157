/* fdwatch.h: a descriptor the supervisor's loop reads whenever it is
 * readable (the firewall's NFLOG socket, the UNIX gate's report pipe). */
#ifndef AWF_FDWATCH_H
#define AWF_FDWATCH_H

#include <uv.h>

typedef struct awf_fdwatch awf_fdwatch;

/* Reads all that is queued on fd (non-blocking) and returns. */
typedef void (*awf_fdwatch_drain_fn)(int fd, void *arg);

/* Watch fd (taken over: closed by awf_fdwatch_close, or here on failure).
 * Returns 0 or -ENOMEM. */
int awf_fdwatch_start(uv_loop_t *loop, int fd, awf_fdwatch_drain_fn drain, void *arg,
                      awf_fdwatch **out);

/* Drain once more, then stop: `drain` is never called after this returns,
 * so arg may go. The memory goes once the loop has run the close callback.
 * NULL is a no-op. */
void awf_fdwatch_close(awf_fdwatch *w);

#endif
