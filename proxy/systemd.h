/* systemd.h: what awf-proxy needs of systemd without libsystemd: the
 * listening sockets of socket activation (sd_listen_fds(3)'s protocol:
 * LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES, fds from 3) and readiness
 * notifications (sd_notify(3)'s: a datagram to NOTIFY_SOCKET, a path or an
 * abstract name written with a leading '@'). */
#ifndef AWF_SYSTEMD_H
#define AWF_SYSTEMD_H

#include <stddef.h>
#include <sys/types.h>

#define AWF_SD_LISTEN_FDS_START 3
#define AWF_SD_MAX_FDS 64
#define AWF_SD_NAME_MAX 256

struct awf_sd_fd {
  int fd;
  char name[AWF_SD_NAME_MAX]; /* FileDescriptorName=; "unknown" when not given */
};

/* The sockets passed to this process: when LISTEN_PID is `pid` and
 * LISTEN_FDS is n, fds 3..3+n-1 with their names from LISTEN_FDNAMES
 * (colon-separated), each made close-on-exec; the three variables are then
 * removed from the environment, so children do not take the sockets for
 * theirs. Returns n (0: none passed, or passed to another process), or
 * -EINVAL with a message in err (a malformed variable, too many fds, an fd
 * that is not open). */
int awf_sd_listen_fds(pid_t pid, struct awf_sd_fd *out, size_t max, char *err, size_t errlen);

/* Send `state` ("READY=1", ...) to $NOTIFY_SOCKET. 0: no NOTIFY_SOCKET;
 * 1: sent; a negative errno on failure. */
int awf_sd_notify(const char *state);

#endif
