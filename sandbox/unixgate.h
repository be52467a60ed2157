/* unixgate.h: the supervisor's side of the UNIX socket gate.
 *
 * The command's seccomp filter (seccomp_filter.h, awf_seccomp_install_gated)
 * sends every connect() here. awf takes the command's socket (pidfd_getfd)
 * and the address (process_vm_readv), and makes the connect itself on that
 * socket, so what was checked is what connects:
 *   - an AF_UNIX socket file name is resolved as the command would resolve it
 *     (its root and working directory, with its uid, gid and groups). The
 *     connect goes on if the file is the bound file of a socket of the
 *     sandbox's own network namespace (a NETLINK_SOCK_DIAG dump lists them
 *     when asked, so sockets made at any time count), or one the caller named
 *     with --allow-unix-socket (its inode, taken at start). It is made on
 *     that very inode (/proc/self/fd of the resolved file), by a thread with
 *     the command's credentials: the peer's SO_PEERCRED shows the command's
 *     uid and gid (and awf's pid). Anything else fails with EACCES, with a
 *     line on stderr.
 *   - every other address (IP, abstract names, which live in the sandbox's
 *     own network namespace, autobind, netlink) is connected as given.
 * Every connect is made with the command's effective uid, gid and groups and
 * no capability in effect (in the thread making it only), so the kernel
 * judges it as the command's own call (a netlink port id needs
 * CAP_NET_ADMIN) and peers see the command. Each sock_diag question is asked
 * on a fresh socket in the sandbox's network namespace, and only the
 * kernel's answer to it is read.
 * A connect on a blocking socket is made by a thread of its own, so a slow
 * one holds up nothing else; at most 64 at once (EAGAIN past that), each
 * waiting in slices and given up once the command no longer waits for it. */
#ifndef AWF_UNIXGATE_H
#define AWF_UNIXGATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "unixpolicy.h"

#define AWF_UNIXGATE_MAX_ALLOWED 256

struct awf_unixgate_config {
  uid_t uid; /* the command's credentials */
  gid_t gid;
  const gid_t *groups;
  size_t ngroups;
  const char *const *allowed; /* --allow-unix-socket paths, NULL-terminated */
  /* Where the decisions worth a log line go (refused, refused for want of a
   * thread, and admitted through --allow-unix-socket), one struct awf_unixgate_report per write: a pipe's
   * non-blocking write end, taken over (closed with the gate); -1: none.
   * A full pipe drops the report, never the connect. */
  int report_fd;
  /* Sockets already resolved by awf_unixgate_resolve (rootless awf resolves
   * them before the sandbox's root replaces the host's), besides `allowed`. */
  const struct awf_unix_id *allowed_ids;
  size_t n_allowed_ids;
  /* Rootless awf: the gate runs in the sandbox's PID 1, in a user namespace
   * whose setgroups is denied; its groups already are the command's. */
  bool keep_groups;
};

/* What the gate did with a connect to a socket file. */
enum awf_unixgate_verdict {
  AWF_UNIXGATE_REFUSED = 0,  /* neither the sandbox's nor --allow-unix-socket's */
  AWF_UNIXGATE_ADMITTED = 1, /* a host socket --allow-unix-socket admitted */
  AWF_UNIXGATE_BUSY = 2,     /* refused (EAGAIN) unjudged: no thread to judge it on */
};

/* One decision, as written to report_fd (atomic: smaller than PIPE_BUF). */
struct awf_unixgate_report {
  uint8_t verdict; /* enum awf_unixgate_verdict */
  uint8_t len;     /* bytes of path */
  char path[108];  /* the name as the command passed it, not NUL-terminated */
};

typedef struct awf_unixgate awf_unixgate;

/* A NETLINK_SOCK_DIAG socket; call it while the thread is in the sandbox's
 * network namespace: the gate takes that namespace from it (SIOCGSKNS) and
 * makes its own sockets there, one per question. */
int awf_unixgate_diag_socket(void);

/* Resolve the allowed paths (with the command's file rights: they are the
 * caller's to name), then start the gate's thread, which waits for the
 * listener on `channel` (awf_unixgate_hand_over) and answers until the last
 * filtered process is gone or awf_unixgate_stop. Takes `channel` and
 * `diag`. Returns 0, or -errno with a message in err. */
int awf_unixgate_start(const struct awf_unixgate_config *cfg, int channel, int diag,
                       awf_unixgate **out, char *err, size_t errlen);

/* The inodes of cfg->allowed (at most AWF_UNIXGATE_MAX_ALLOWED), stat'ed
 * with the command's file rights, into ids; *n of them. 0, or -errno with a
 * message in err. */
int awf_unixgate_resolve(const struct awf_unixgate_config *cfg, struct awf_unix_id *ids,
                         size_t *n, char *err, size_t errlen);

/* Stop answering and release the gate (connects still being made finish
 * on their own threads, within the wait a connect is given). NULL is a no-op. */
void awf_unixgate_stop(awf_unixgate *g);

/* In the command's process, after loading the filter: send the listener over
 * channel. Returns 0 or -errno. */
int awf_unixgate_hand_over(int channel, int listener);

#endif
