/* unixgate.c: see unixgate.h. */
#include "unixgate.h"
#include "errbuf.h"
#include "fscreds.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9: a pidfd for any thread, not only a leader */
#endif

/* Connects being made by threads of awf at once. Those threads live in awf's
 * cgroup, not the sandbox's, so --pids-limit does not bound them: past this
 * a connect that needs a thread fails with EAGAIN. */
#define MAX_JOBS 64

/* A blocking connect is made in slices this long, and between two the
 * notification is checked: a command interrupted by a signal no longer
 * waits, and the connect is given up. */
#define SLICE_MS 50

/* The longest awf waits for one blocking connect (unless the command's own
 * SO_SNDTIMEO is shorter): longer than the kernel's own TCP connect timeout
 * (about 127 s with the default tcp_syn_retries), so TCP ends by the
 * kernel's answer; a UNIX socket whose backlog stays full answers EAGAIN. */
#define CONNECT_WAIT_MAX_MS 180000

struct awf_unixgate {
  atomic_int refs;    /* the gate's thread, awf_unixgate_stop, and each connect thread */
  atomic_int denials; /* refusals so far */
  atomic_int jobs;    /* connect threads running (MAX_JOBS) */
  atomic_uint diag_seq;
  int channel;  /* where the listener arrives */
  int listener; /* the filter's notification descriptor, -1 until it came */
  int netns;    /* the sandbox's network namespace, until the thread entered it */
  int proc;     /* awf's own /proc, for /proc/self/fd */
  int report;   /* decisions for the access log (struct awf_unixgate_report), or -1 */
  int stop[2];  /* a pipe: awf_unixgate_stop writes, the thread wakes */
  pthread_mutex_t start_lock; /* the thread tells awf_unixgate_start it runs */
  pthread_cond_t started;
  int start_rc; /* 1: not yet; 0 or -errno */
  pthread_t thread;
  uid_t uid;
  gid_t gid;
  gid_t groups[AWF_FSCREDS_MAX_GROUPS];
  size_t ngroups;
  bool keep_groups; /* rootless: the groups are the command's already (unixgate.h) */
  struct awf_unix_id allowed[AWF_UNIXGATE_MAX_ALLOWED];
  size_t nallowed;
};

/* One connect being made. */
struct job {
  awf_unixgate *g;
  struct seccomp_notif req;
  int sock;                     /* the command's socket, fetched */
  int domain;                   /* its family */
  struct sockaddr_storage addr; /* the address as the command passed it */
  socklen_t addrlen;
};

static void close_fd(int fd) {
  if (fd >= 0)
    close(fd);
}

static void unref(awf_unixgate *g) {
  if (atomic_fetch_sub(&g->refs, 1) != 1)
    return;
  close_fd(g->channel);
  close_fd(g->listener);
  close_fd(g->netns);
  close_fd(g->proc);
  close_fd(g->report);
  close_fd(g->stop[0]);
  close_fd(g->stop[1]);
  pthread_mutex_destroy(&g->start_lock);
  pthread_cond_destroy(&g->started);
  free(g);
}

/* ---- answering ------------------------------------------------------------ */

/* error: 0 (the call returns 0) or a negative errno. A notification that is
 * gone (the command was interrupted or died) answers ENOENT: nothing to do. */
static void reply(awf_unixgate *g, uint64_t id, int error) {
  struct seccomp_notif_resp resp;
  memset(&resp, 0, sizeof(resp));
  resp.id = id;
  resp.error = error;
  while (ioctl(g->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno == EINTR) {
  }
}

static bool still_valid(awf_unixgate *g, uint64_t id) {
  return ioctl(g->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* The thread group of tid, from /proc (kernels before PIDFD_THREAD). */
static pid_t tgid_of(pid_t tid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  const char *t = strstr(buf, "\nTgid:");
  return t ? (pid_t)strtol(t + 6, NULL, 10) : -1;
}

/* A pidfd whose descriptor table is the one of thread `tid`. */
static int pidfd_of(pid_t tid) {
  int pidfd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
  if (pidfd >= 0 || errno != EINVAL)
    return pidfd < 0 ? -errno : pidfd;
  /* An older kernel: only a leader has a pidfd. Its table is the thread's
   * unless the thread was made without CLONE_FILES. */
  pid_t leader = tgid_of(tid);
  if (leader <= 0)
    return -ESRCH;
  if (leader != tid && syscall(SYS_kcmp, leader, tid, KCMP_FILES, 0, 0) != 0)
    return -ENOSYS;
  pidfd = (int)syscall(SYS_pidfd_open, leader, 0);
  return pidfd < 0 ? -errno : pidfd;
}

/* The command's socket behind descriptor fd, or -errno (EBADF, ENOTSOCK...,
 * what connect() itself would answer). */
static int fetch_socket(awf_unixgate *g, const struct seccomp_notif *req, int fd, int *domain) {
  int pidfd = pidfd_of((pid_t)req->pid);
  if (pidfd < 0)
    return pidfd;
  /* The pid may have been reused between the notification and pidfd_open. */
  if (!still_valid(g, req->id)) {
    close(pidfd);
    return -ESRCH;
  }
  int sock = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
  int e = errno;
  close(pidfd);
  if (sock < 0)
    return -e;
  socklen_t len = sizeof(*domain);
  if (getsockopt(sock, SOL_SOCKET, SO_DOMAIN, domain, &len) < 0) {
    e = errno;
    close(sock);
    return e == ENOTSOCK ? -ENOTSOCK : -e;
  }
  return sock;
}

/* ---- the sandbox's own sockets --------------------------------------------- */

/* Is id the bound file of a socket in the sandbox's network namespace?
 * Asked on a socket made for this one request, in this thread's network
 * namespace (the sandbox's: gate_thread entered it), so nothing but the
 * kernel's answer to it can be waiting there; datagrams from anyone but the
 * kernel (nl_pid 0) are dropped unread, and every message must carry this
 * request's sequence number and this socket's port id. (A command cannot
 * send to it anyway: NETLINK_SOCK_DIAG takes unicasts from other sockets
 * only with CAP_NET_ADMIN, which the command never has, and awf makes the
 * command's connects without it.) */
static int is_sandbox_socket(awf_unixgate *g, struct awf_unix_id id) {
  char buf[32768] __attribute__((aligned(8)));
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0)
    return -errno;
  uint32_t seq = atomic_fetch_add(&g->diag_seq, 1) + 1;
  size_t n = awf_unix_diag_request(buf, sizeof(buf), seq);
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  struct sockaddr_nl self;
  socklen_t selflen = sizeof(self);
  int rc = 0;
  if (sendto(fd, buf, n, 0, (struct sockaddr *)&kernel, sizeof(kernel)) != (ssize_t)n ||
      getsockname(fd, (struct sockaddr *)&self, &selflen) < 0)
    rc = -errno;
  bool done = false, found = false;
  while (rc == 0 && !done) {
    struct sockaddr_nl from;
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr m = {.msg_name = &from,
                       .msg_namelen = sizeof(from),
                       .msg_iov = &iov,
                       .msg_iovlen = 1};
    ssize_t got = recvmsg(fd, &m, 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      rc = got < 0 ? -errno : -EPIPE;
      break;
    }
    if (m.msg_namelen < sizeof(from) || from.nl_family != AF_NETLINK || from.nl_pid != 0 ||
        from.nl_groups != 0)
      continue; /* not the kernel's */
    if (m.msg_flags & MSG_TRUNC) {
      rc = -EMSGSIZE;
      break;
    }
    int r = awf_unix_diag_scan(buf, (size_t)got, seq, self.nl_pid, id, &done);
    if (r < 0)
      rc = r;
    else if (r > 0)
      found = true; /* read on to the end of the dump */
  }
  close(fd);
  return rc < 0 ? rc : found;
}

/* ---- the connect ------------------------------------------------------------ */

/* awf's own credentials in this thread, to go back to. */
struct thread_creds {
  uid_t euid;
  gid_t egid;
  gid_t groups[AWF_FSCREDS_MAX_GROUPS];
  int ngroups;
  bool keep_groups;
  struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
};

static int capset_self(struct __user_cap_data_struct *caps) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  return (int)syscall(SYS_capset, &h, caps);
}

/* Back to awf's credentials: from any state as_command left (setting the
 * effective uid back to 0 is allowed by the real uid, 0, and gives the
 * permitted set back; then the groups, which need CAP_SETGID). */
static int as_awf(struct thread_creds *s) {
  if (syscall(SYS_setresuid, -1, s->euid, -1) != 0 || capset_self(s->caps) != 0 ||
      syscall(SYS_setresgid, -1, s->egid, -1) != 0 ||
      (!s->keep_groups && syscall(SYS_setgroups, s->ngroups, s->groups) != 0))
    return -errno;
  return 0;
}

/* Act as the command in this thread only (raw syscalls: glibc's wrappers
 * would change every thread of awf): its effective uid, gid and groups,
 * which the peer of a connect sees (SO_PEERCRED) and file permissions are
 * checked with, and no capability in effect, so the kernel judges each
 * connect as it would the command's (a netlink socket pointed at another
 * socket's port id needs CAP_NET_ADMIN). A non-zero effective uid clears
 * the effective set by itself; the explicit capset covers a command that
 * runs as root. The real and saved uids stay awf's: as_awf can go back, and
 * the command's user cannot signal the thread. */
static int as_command(const awf_unixgate *g, struct thread_creds *s) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  s->euid = geteuid();
  s->egid = getegid();
  s->keep_groups = g->keep_groups;
  s->ngroups = (int)syscall(SYS_getgroups, AWF_FSCREDS_MAX_GROUPS, s->groups);
  if (s->ngroups < 0 || syscall(SYS_capget, &h, s->caps) != 0)
    return -errno;
  struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
  memcpy(none, s->caps, sizeof(none));
  for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
    none[i].effective = 0;
  if ((!g->keep_groups && syscall(SYS_setgroups, g->ngroups, g->groups) != 0) ||
      syscall(SYS_setresgid, -1, g->gid, -1) != 0 ||
      syscall(SYS_setresuid, -1, g->uid, -1) != 0 || capset_self(none) != 0) {
    int e = errno;
    as_awf(s);
    return -e;
  }
  return 0;
}

/* Enter the command's root and working directory, in this thread only. */
static int enter_view(awf_unixgate *g, const struct seccomp_notif *req) {
  char path[64];
  if (unshare(CLONE_FS) < 0)
    return -errno;
  snprintf(path, sizeof(path), "/proc/%d/root", (int)req->pid);
  int root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  snprintf(path, sizeof(path), "/proc/%d/cwd", (int)req->pid);
  int cwd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int rc = 0;
  if (root < 0 || cwd < 0)
    rc = -ESRCH;
  else if (!still_valid(g, req->id)) /* those were the command's, not a new pid's */
    rc = -ESRCH;
  else if (fchdir(root) < 0 || chroot(".") < 0 || fchdir(cwd) < 0)
    rc = -errno;
  close_fd(root);
  close_fd(cwd);
  return rc;
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* connect() on the command's socket as the command's own call would go: at
 * once on a non-blocking socket; on a blocking one, in slices of SLICE_MS
 * (SO_SNDTIMEO, which both AF_UNIX and TCP connects wait by; the wait ends
 * at once when the connect can go on), checking between two that the
 * command still waits. A command interrupted by a signal gets EINTR from
 * the kernel and its notification goes away: the connect is given up (a TCP
 * one goes on in the background, as after an interrupted connect). The
 * command's own SO_SNDTIMEO is honoured and put back; meanwhile another
 * thread of the command reading it would see the slice. */
static int connect_waiting(struct job *j, const struct sockaddr *a, socklen_t len) {
  int flags = fcntl(j->sock, F_GETFL);
  if (flags < 0)
    return -errno;
  if (flags & O_NONBLOCK)
    return connect(j->sock, a, len) < 0 ? -errno : 0;
  struct timeval own;
  socklen_t ownlen = sizeof(own);
  if (getsockopt(j->sock, SOL_SOCKET, SO_SNDTIMEO, &own, &ownlen) < 0)
    return -errno;
  int64_t wait = CONNECT_WAIT_MAX_MS, start = now_ms();
  int64_t ownms = (int64_t)own.tv_sec * 1000 + own.tv_usec / 1000;
  if ((own.tv_sec || own.tv_usec) && ownms < wait)
    wait = ownms > 0 ? ownms : 1;
  struct timeval slice = {0, SLICE_MS * 1000};
  if (setsockopt(j->sock, SOL_SOCKET, SO_SNDTIMEO, &slice, sizeof(slice)) < 0)
    return -errno;
  int rc;
  bool first = true;
  for (;;) {
    rc = connect(j->sock, a, len) == 0 ? 0 : -errno;
    /* TCP: EINPROGRESS, then EALREADY while it is under way; AF_UNIX:
     * EAGAIN while the listener's backlog is full. */
    bool waiting = rc == -EINPROGRESS || rc == -EALREADY || rc == -EAGAIN || rc == -EINTR;
    if (rc == -EALREADY && first)
      waiting = false; /* the command's own earlier connect: its answer */
    first = false;
    if (!waiting)
      break;
    if (!still_valid(j->g, j->req.id))
      break; /* no one waits for the answer any more */
    if (now_ms() - start >= wait) {
      rc = rc == -EALREADY ? -EINPROGRESS : rc; /* what the first call said */
      break;
    }
  }
  setsockopt(j->sock, SOL_SOCKET, SO_SNDTIMEO, &own, sizeof(own));
  return rc;
}

/* The first refusals are told; a command retrying in a loop must not flood
 * the terminal. */
#define DENIALS_TOLD 10

static void print_denied(awf_unixgate *g, const char *path) {
  char q[256];
  int n = atomic_fetch_add(&g->denials, 1);
  if (n > DENIALS_TOLD)
    return;
  if (n == DENIALS_TOLD) {
    fprintf(stderr, "awf: further refused UNIX socket connections are not shown\n");
    return;
  }
  fprintf(stderr,
          "awf: refused a connection to the UNIX socket %s: it is not the sandbox's "
          "(--allow-unix-socket lets a host socket through)\n",
          awf_errbuf_quote(path, strlen(path), q, sizeof(q)));
}

/* Tell the log about a decision; never waits (a full pipe drops it). */
static void report(awf_unixgate *g, const char *path, enum awf_unixgate_verdict verdict) {
  if (g->report < 0)
    return;
  struct awf_unixgate_report r = {.verdict = (uint8_t)verdict};
  size_t n = strnlen(path, sizeof(r.path));
  r.len = (uint8_t)n;
  memcpy(r.path, path, n);
  ssize_t w = write(g->report, &r, sizeof(r));
  (void)w; /* EAGAIN or EPIPE: the report is lost, the connect is not */
}

/* Resolve a socket file name the way the command would, decide, and connect.
 * Returns 0 or -errno for the command. */
static int connect_pathname(struct job *j, const char *name) {
  awf_unixgate *g = j->g;
  struct thread_creds awf; /* never taken back: the thread ends with the job */
  int rc = enter_view(g, &j->req);
  if (rc == 0)
    rc = as_command(g, &awf);
  if (rc < 0)
    return rc == -ESRCH ? -ESRCH : -EACCES;
  /* connect() follows a symbolic link at the end, so this does too. */
  int file = open(name, O_PATH | O_CLOEXEC);
  if (file < 0)
    return -errno;
  struct stat st;
  if (fstat(file, &st) < 0 || !S_ISSOCK(st.st_mode)) {
    close(file);
    return -ECONNREFUSED; /* what connect() says for a file that is no socket */
  }
  struct awf_unix_id id = {st.st_dev, st.st_ino};
  bool host = awf_unix_ids_has(g->allowed, g->nallowed, id);
  int ours = host ? 1 : is_sandbox_socket(g, id);
  if (ours <= 0) {
    close(file);
    if (ours < 0)
      fprintf(stderr, "awf: cannot list the sandbox's UNIX sockets: %s\n", strerror(-ours));
    print_denied(g, name);
    report(g, name, AWF_UNIXGATE_REFUSED);
    return -EACCES;
  }
  if (host) /* a host socket the caller let through: a decision worth a line */
    report(g, name, AWF_UNIXGATE_ADMITTED);
  /* The very inode that was checked, whatever the name points at now. */
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof(sun));
  sun.sun_family = AF_UNIX;
  snprintf(sun.sun_path, sizeof(sun.sun_path), "self/fd/%d", file);
  rc = fchdir(g->proc) == 0 ? 0 : -errno;
  if (rc == 0)
    rc = connect_waiting(j, (struct sockaddr *)&sun, sizeof(sun));
  close(file);
  return rc;
}

/* Any other address, as the command (its credentials, no capability). */
static int connect_as_given(struct job *j) {
  struct thread_creds awf;
  int rc = as_command(j->g, &awf);
  if (rc < 0)
    return -EACCES;
  rc = connect_waiting(j, (struct sockaddr *)&j->addr, j->addrlen);
  if (as_awf(&awf) < 0) /* cannot happen; the thread would fetch nothing more */
    fprintf(stderr, "awf: the UNIX socket gate cannot take back its credentials: %s\n",
            strerror(errno));
  return rc;
}

static void finish(struct job *j, int rc) {
  reply(j->g, j->req.id, rc);
  close(j->sock);
  unref(j->g);
  free(j);
}

static void finish_thread(struct job *j, int rc) {
  atomic_fetch_sub(&j->g->jobs, 1);
  finish(j, rc);
}

/* Does the connect name a socket file (and the path in name)? Only an
 * AF_UNIX socket looks a name up; another family refuses the address. */
static bool names_a_file(const struct job *j, char *name, size_t namesz) {
  return j->domain == AF_UNIX &&
         awf_unix_addr_classify(&j->addr, j->addrlen, name, namesz) == AWF_UNIX_ADDR_PATHNAME;
}

static void *connect_thread(void *arg) {
  struct job *j = arg;
  char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  if (names_a_file(j, name, sizeof(name)))
    finish_thread(j, connect_pathname(j, name));
  else
    finish_thread(j, connect_as_given(j));
  return NULL;
}

/* Read the address from the command's memory (the kernel's own limits: a
 * negative or too long length is EINVAL, unreadable memory EFAULT). */
static int read_address(struct job *j) {
  uint64_t len64 = j->req.data.args[2] & 0xffffffffu;
  int len = (int)len64;
  if (len < 0 || (size_t)len > sizeof(j->addr))
    return -EINVAL;
  j->addrlen = (socklen_t)len;
  if (len == 0)
    return 0;
  struct iovec local = {&j->addr, (size_t)len};
  struct iovec remote = {(void *)(uintptr_t)j->req.data.args[1], (size_t)len};
  ssize_t n = process_vm_readv((pid_t)j->req.pid, &local, 1, &remote, 1, 0);
  if (n != len)
    return -EFAULT;
  /* The pid was the command's when the memory was read. */
  return still_valid(j->g, j->req.id) ? 0 : -ESRCH;
}

static void handle(awf_unixgate *g, const struct seccomp_notif *req) {
  struct job *j = calloc(1, sizeof(*j));
  if (!j) {
    reply(g, req->id, -ENOMEM);
    return;
  }
  j->g = g;
  j->req = *req;
  j->sock = fetch_socket(g, req, (int)(req->data.args[0] & 0xffffffffu), &j->domain);
  int rc = j->sock < 0 ? j->sock : read_address(j);
  if (rc < 0) {
    reply(g, req->id, rc);
    close_fd(j->sock);
    free(j);
    return;
  }
  atomic_fetch_add(&g->refs, 1);
  char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  int flags = fcntl(j->sock, F_GETFL);
  bool file = names_a_file(j, name, sizeof(name));
  /* A name to check needs a thread of its own (credentials, root); so does a
   * connect that may block. Others are answered here at once. */
  if (!file && flags >= 0 && (flags & O_NONBLOCK)) {
    finish(j, connect_as_given(j));
    return;
  }
  /* Only this thread starts jobs: the count cannot pass the cap. A socket
   * file refused unjudged is still an attempt on the record: the command
   * could otherwise hold the gate's threads (or, rootless, exhaust the pids
   * it shares with PID 1) and probe host sockets unseen. */
  if (atomic_load(&g->jobs) >= MAX_JOBS) {
    if (file)
      report(g, name, AWF_UNIXGATE_BUSY);
    finish(j, -EAGAIN);
    return;
  }
  atomic_fetch_add(&g->jobs, 1);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  rc = pthread_create(&t, &attr, connect_thread, j);
  pthread_attr_destroy(&attr);
  if (rc != 0 && file)
    report(g, name, AWF_UNIXGATE_BUSY);
  if (rc != 0)
    finish_thread(j, -EAGAIN);
}

/* ---- the gate's thread ------------------------------------------------------ */

/* One byte with room for one descriptor: the message carrying the listener. */
struct fd_message {
  char data;
  struct iovec iov;
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct msghdr m;
};

static void fd_message_init(struct fd_message *f) {
  memset(f, 0, sizeof(*f));
  f->data = 'L';
  f->iov.iov_base = &f->data;
  f->iov.iov_len = 1;
  f->m.msg_iov = &f->iov;
  f->m.msg_iovlen = 1;
  f->m.msg_control = f->ctl.buf;
  f->m.msg_controllen = sizeof(f->ctl.buf);
}

static int receive_listener(int channel) {
  struct fd_message f;
  fd_message_init(&f);
  ssize_t n;
  do
    n = recvmsg(channel, &f.m, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  struct cmsghdr *c = n == 1 ? CMSG_FIRSTHDR(&f.m) : NULL;
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
      c->cmsg_len != CMSG_LEN(sizeof(int)))
    return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof(fd));
  return fd;
}

/* Wait for fd or the stop pipe; true when fd is readable (or hung up). */
static bool wait_for(awf_unixgate *g, int fd, short *revents) {
  struct pollfd p[2] = {{fd, POLLIN, 0}, {g->stop[0], POLLIN, 0}};
  for (;;) {
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 || p[1].revents)
      return false;
    *revents = p[0].revents;
    return true;
  }
}

/* Tell awf_unixgate_start how the thread began. */
static void started(awf_unixgate *g, int rc) {
  pthread_mutex_lock(&g->start_lock);
  g->start_rc = rc;
  pthread_cond_signal(&g->started);
  pthread_mutex_unlock(&g->start_lock);
}

static void *gate_thread(void *arg) {
  awf_unixgate *g = arg;
  short ev;
  /* The sandbox's network namespace, for this thread and the connect
   * threads it starts (each asks sock_diag on a socket of its own). */
  int rc = setns(g->netns, CLONE_NEWNET) == 0 ? 0 : -errno;
  close(g->netns);
  g->netns = -1;
  started(g, rc);
  if (rc < 0) {
    unref(g);
    return NULL;
  }
  if (wait_for(g, g->channel, &ev) && (ev & POLLIN))
    g->listener = receive_listener(g->channel);
  while (g->listener >= 0 && wait_for(g, g->listener, &ev)) {
    if (!(ev & POLLIN))
      break; /* POLLHUP: no filtered process is left */
    struct seccomp_notif req;
    memset(&req, 0, sizeof(req));
    if (ioctl(g->listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
      continue; /* ENOENT: the caller is gone already */
    handle(g, &req);
  }
  unref(g);
  return NULL;
}

/* ---- setup ------------------------------------------------------------------ */

int awf_unixgate_diag_socket(void) {
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  return fd < 0 ? -errno : fd;
}

/* The network namespace a socket was made in (SIOCGSKNS, Linux 4.9). */
static int netns_of(int sock) {
  int fd = ioctl(sock, SIOCGSKNS);
  return fd < 0 ? -errno : fd;
}

int awf_unixgate_resolve(const struct awf_unixgate_config *cfg, struct awf_unix_id *ids,
                         size_t *n, char *err, size_t errlen) {
  *n = 0;
  for (size_t i = 0; cfg->allowed && cfg->allowed[i]; i++) {
    const char *path = cfg->allowed[i];
    if (*n == AWF_UNIXGATE_MAX_ALLOWED)
      return awf_errbuf_fail(err, errlen, -E2BIG, "--allow-unix-socket: too many");
    struct awf_fscreds_saved saved;
    struct stat st;
    int rc = awf_fscreds_enter(cfg->uid, cfg->gid, cfg->groups, cfg->ngroups, &saved);
    if (rc == 0) {
      rc = stat(path, &st) == 0 ? 0 : -errno;
      int back = awf_fscreds_leave(&saved);
      if (back < 0)
        return awf_errbuf_fail(err, errlen, back, "taking back root's file rights: %s",
                               strerror(-back));
    }
    if (rc < 0)
      return awf_errbuf_fail(err, errlen, rc, "--allow-unix-socket %s: %s", path,
                             strerror(-rc));
    if (!S_ISSOCK(st.st_mode))
      return awf_errbuf_fail(err, errlen, -ENOTSOCK, "--allow-unix-socket %s: not a socket",
                             path);
    ids[*n].dev = st.st_dev;
    ids[*n].ino = st.st_ino;
    (*n)++;
  }
  return 0;
}

static int resolve_allowed(awf_unixgate *g, const struct awf_unixgate_config *cfg, char *err,
                           size_t errlen) {
  int rc = awf_unixgate_resolve(cfg, g->allowed, &g->nallowed, err, errlen);
  for (size_t i = 0; rc == 0 && i < cfg->n_allowed_ids; i++) {
    if (g->nallowed == AWF_UNIXGATE_MAX_ALLOWED)
      return awf_errbuf_fail(err, errlen, -E2BIG, "--allow-unix-socket: too many");
    g->allowed[g->nallowed++] = cfg->allowed_ids[i];
  }
  return rc;
}

int awf_unixgate_start(const struct awf_unixgate_config *cfg, int channel, int diag,
                       awf_unixgate **out, char *err, size_t errlen) {
  *out = NULL;
  awf_unixgate *g = calloc(1, sizeof(*g));
  if (!g) {
    close_fd(channel);
    close_fd(cfg->report_fd);
    close_fd(diag);
    return awf_errbuf_fail(err, errlen, -ENOMEM, "out of memory");
  }
  atomic_init(&g->refs, 1);
  g->channel = channel;
  g->netns = netns_of(diag);
  close_fd(diag);
  g->listener = -1;
  g->proc = -1;
  g->report = cfg->report_fd;
  g->stop[0] = g->stop[1] = -1;
  g->uid = cfg->uid;
  g->gid = cfg->gid;
  g->keep_groups = cfg->keep_groups;
  pthread_mutex_init(&g->start_lock, NULL);
  pthread_cond_init(&g->started, NULL);
  g->start_rc = 1;
  int rc = 0;
  if (g->netns < 0)
    rc = awf_errbuf_fail(err, errlen, g->netns, "UNIX socket gate: the sandbox's network: %s",
                         strerror(-g->netns));
  else if (cfg->ngroups > AWF_FSCREDS_MAX_GROUPS)
    rc = awf_errbuf_fail(err, errlen, -E2BIG, "the user has too many groups");
  else {
    memcpy(g->groups, cfg->groups, cfg->ngroups * sizeof(gid_t));
    g->ngroups = cfg->ngroups;
  }
  if (rc == 0)
    rc = resolve_allowed(g, cfg, err, errlen);
  if (rc == 0) {
    g->proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (g->proc < 0 || pipe2(g->stop, O_CLOEXEC) < 0)
      rc = awf_errbuf_fail(err, errlen, -errno, "UNIX socket gate: %s", strerror(errno));
  }
  if (rc == 0) {
    /* No signal for the gate's threads (theirs inherit the mask): a signal
     * would cut a connect made for the command short with EINTR. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    atomic_fetch_add(&g->refs, 1);
    int e = pthread_create(&g->thread, NULL, gate_thread, g);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
      atomic_fetch_sub(&g->refs, 1);
      rc = awf_errbuf_fail(err, errlen, -e, "UNIX socket gate: thread: %s", strerror(e));
    } else {
      pthread_mutex_lock(&g->start_lock);
      while (g->start_rc == 1)
        pthread_cond_wait(&g->started, &g->start_lock);
      rc = g->start_rc;
      pthread_mutex_unlock(&g->start_lock);
      if (rc < 0) {
        pthread_join(g->thread, NULL);
        rc = awf_errbuf_fail(err, errlen, rc,
                             "UNIX socket gate: entering the sandbox's network: %s",
                             strerror(-rc));
      }
    }
  }
  if (rc < 0) {
    unref(g);
    return rc;
  }
  *out = g;
  return 0;
}

void awf_unixgate_stop(awf_unixgate *g) {
  if (!g)
    return;
  ssize_t n;
  do
    n = write(g->stop[1], "s", 1);
  while (n < 0 && errno == EINTR);
  pthread_join(g->thread, NULL);
  unref(g);
}

int awf_unixgate_hand_over(int channel, int listener) {
  struct fd_message f;
  fd_message_init(&f);
  struct cmsghdr *c = CMSG_FIRSTHDR(&f.m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &listener, sizeof(int));
  ssize_t n;
  do
    n = sendmsg(channel, &f.m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n == 1 ? 0 : -errno;
}
