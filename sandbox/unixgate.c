/* unixgate.c: see unixgate.h. */
#include "unixgate.h"
#include "errbuf.h"
#include "fscreds.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <linux/sock_diag.h>
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
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9: a pidfd for any thread, not only a leader */
#endif

struct awf_unixgate {
  atomic_int refs;    /* the gate's thread, awf_unixgate_stop, and each connect thread */
  atomic_int denials; /* refusals so far */
  int channel;        /* where the listener arrives */
  int listener;       /* the filter's notification descriptor, -1 until it came */
  int diag;           /* NETLINK_SOCK_DIAG in the sandbox's network namespace */
  int proc;           /* awf's own /proc, for /proc/self/fd */
  int report;         /* decisions for the access log (struct awf_unixgate_report), or -1 */
  int stop[2];        /* a pipe: awf_unixgate_stop writes, the thread wakes */
  pthread_mutex_t diag_lock;
  uint32_t diag_seq;
  pthread_t thread;
  uid_t uid;
  gid_t gid;
  gid_t groups[AWF_FSCREDS_MAX_GROUPS];
  size_t ngroups;
  struct awf_unix_id allowed[AWF_UNIXGATE_MAX_ALLOWED];
  size_t nallowed;
};

/* One connect being made. */
struct job {
  awf_unixgate *g;
  struct seccomp_notif req;
  int sock;                        /* the command's socket, fetched */
  int domain;                      /* its family */
  struct sockaddr_storage addr;    /* the address as the command passed it */
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
  close_fd(g->diag);
  close_fd(g->proc);
  close_fd(g->report);
  close_fd(g->stop[0]);
  close_fd(g->stop[1]);
  pthread_mutex_destroy(&g->diag_lock);
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

/* Is id the bound file of a socket in the sandbox's network namespace? */
static int is_sandbox_socket(awf_unixgate *g, struct awf_unix_id id) {
  char buf[32768] __attribute__((aligned(8)));
  pthread_mutex_lock(&g->diag_lock);
  size_t n = awf_unix_diag_request(buf, sizeof(buf), ++g->diag_seq);
  int rc = send(g->diag, buf, n, 0) == (ssize_t)n ? 0 : -errno;
  bool done = false, found = false;
  while (rc == 0 && !done) {
    ssize_t got = recv(g->diag, buf, sizeof(buf), 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      rc = got < 0 ? -errno : -EPIPE;
      break;
    }
    int r = awf_unix_diag_scan(buf, (size_t)got, id, &done);
    if (r < 0)
      rc = r;
    else if (r > 0)
      found = true; /* read on to the end of the dump */
  }
  pthread_mutex_unlock(&g->diag_lock);
  return rc < 0 ? rc : found;
}

/* ---- the connect ------------------------------------------------------------ */

/* Take the command's credentials in this thread only (raw syscalls: glibc's
 * wrappers would change every thread of awf). Groups and gid first: changing
 * them needs the capability the uid change drops. */
static int become_command(const awf_unixgate *g) {
  if (syscall(SYS_setgroups, g->ngroups, g->groups) != 0 ||
      syscall(SYS_setresgid, g->gid, g->gid, g->gid) != 0 ||
      syscall(SYS_setresuid, g->uid, g->uid, g->uid) != 0)
    return -errno;
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
static void report(awf_unixgate *g, const char *path, bool allowed) {
  if (g->report < 0)
    return;
  struct awf_unixgate_report r = {.allowed = allowed};
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
  int rc = enter_view(g, &j->req);
  if (rc == 0)
    rc = become_command(g);
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
    report(g, name, false);
    return -EACCES;
  }
  if (host) /* a host socket the caller let through: a decision worth a line */
    report(g, name, true);
  /* The very inode that was checked, whatever the name points at now. */
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof(sun));
  sun.sun_family = AF_UNIX;
  snprintf(sun.sun_path, sizeof(sun.sun_path), "self/fd/%d", file);
  rc = fchdir(g->proc) == 0 ? 0 : -errno;
  if (rc == 0 && connect(j->sock, (struct sockaddr *)&sun, sizeof(sun)) < 0)
    rc = -errno;
  close(file);
  return rc;
}

static int connect_as_given(struct job *j) {
  return connect(j->sock, (struct sockaddr *)&j->addr, j->addrlen) < 0 ? -errno : 0;
}

static void finish(struct job *j, int rc) {
  reply(j->g, j->req.id, rc);
  close(j->sock);
  unref(j->g);
  free(j);
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
    finish(j, connect_pathname(j, name));
  else
    finish(j, connect_as_given(j));
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
  /* A name to check needs a thread of its own (credentials, root); so does a
   * connect that may block. Others are answered here at once. */
  if (!names_a_file(j, name, sizeof(name)) && flags >= 0 && (flags & O_NONBLOCK)) {
    finish(j, connect_as_given(j));
    return;
  }
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  rc = pthread_create(&t, &attr, connect_thread, j);
  pthread_attr_destroy(&attr);
  if (rc != 0)
    finish(j, -EAGAIN);
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

static void *gate_thread(void *arg) {
  awf_unixgate *g = arg;
  short ev;
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

static int resolve_allowed(awf_unixgate *g, const struct awf_unixgate_config *cfg, char *err,
                           size_t errlen) {
  for (size_t i = 0; cfg->allowed && cfg->allowed[i]; i++) {
    const char *path = cfg->allowed[i];
    if (g->nallowed == AWF_UNIXGATE_MAX_ALLOWED)
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
    g->allowed[g->nallowed].dev = st.st_dev;
    g->allowed[g->nallowed].ino = st.st_ino;
    g->nallowed++;
  }
  return 0;
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
  g->diag = diag;
  g->listener = -1;
  g->report = cfg->report_fd;
  g->stop[0] = g->stop[1] = -1;
  g->uid = cfg->uid;
  g->gid = cfg->gid;
  pthread_mutex_init(&g->diag_lock, NULL);
  int rc = 0;
  if (cfg->ngroups > AWF_FSCREDS_MAX_GROUPS)
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
