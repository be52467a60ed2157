/* fdpass.h: descriptors over a UNIX socket (SCM_RIGHTS), with a one-byte
 * tag saying what the message is. Rootless awf uses it both ways between
 * the supervisor and the sandbox's PID 1 (supervisor.c): the sockets that
 * must be made inside the sandbox's network namespace go out, the access
 * log's report pipe goes in. */
#ifndef AWF_FDPASS_H
#define AWF_FDPASS_H

#include <stddef.h>

/* Most descriptors in one message. */
#define AWF_FDPASS_MAX 16

/* Send `tag` with nfds descriptors (0 to AWF_FDPASS_MAX; they stay open
 * here). Returns 0 or -errno. */
int awf_fdpass_send(int sock, char tag, const int *fds, size_t nfds);

/* Receive one message: its tag in *tag and from min to max descriptors
 * (close-on-exec) in fds, their number in *n. A message with fewer or more
 * is -EBADMSG (what came is closed); the peer gone is -EPIPE. 0 or -errno. */
int awf_fdpass_recv(int sock, char *tag, int *fds, size_t min, size_t max, size_t *n);

#endif
