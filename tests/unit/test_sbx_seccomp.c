/* Unit tests for sandbox/seccomp_filter.c.
 *
 * Every case runs in its own forked child that installs the filter and then
 * makes the call. The refused calls are made with arguments that fail
 * differently without the filter (ENOENT, EINVAL, EBADF, EFAULT, ENOTTY) or
 * whose success only touches the child itself, so EPERM can only come from
 * the filter and nothing leaks out if the filter were missing. The control
 * test (as root) makes the same calls unfiltered to show exactly that. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netlink.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "sbx_child.h"
#include "seccomp_filter.h"

#define NOWHERE "/nonexistent/awf-seccomp-test"

/* A raw clone with fork semantics (no new stack): the new process leaves at
 * once and is reaped here. Returns the pid, or -1 with errno. */
static long raw_clone(unsigned long flags) {
  long r = syscall(SYS_clone, flags | SIGCHLD, 0UL, NULL, NULL, 0UL);

  if (r == 0)
    _exit(0);
  if (r > 0)
    waitpid((pid_t)r, NULL, 0);
  return r;
}

/* ioctl on fd 0 made a pipe: a terminal request there is ENOTTY unfiltered. */
static long ioctl_on_pipe(unsigned long request) {
  int p[2];
  char c = 'x';

  if (pipe(p) != 0 || dup2(p[0], 0) != 0)
    return -2;
  return syscall(SYS_ioctl, 0, request, &c);
}

static long p_mount(void) { return mount("none", NOWHERE, "tmpfs", 0, NULL); }
static long p_umount2(void) { return umount2("/", -1); }
static long p_unshare_ns(void) { return unshare(CLONE_NEWNS); }
static long p_unshare_net(void) { return unshare(CLONE_NEWNET); }
static long p_unshare_user(void) { return unshare(CLONE_NEWUSER); }
static long p_setns(void) { return setns(-1, 0); }
static long p_chroot(void) { return chroot(NOWHERE); }
static long p_pivot_root(void) { return syscall(SYS_pivot_root, NOWHERE, NOWHERE); }
static long p_ptrace(void) { return ptrace(PTRACE_TRACEME, 0, NULL, NULL); }
static long p_pvm_readv(void) {
  return syscall(SYS_process_vm_readv, getpid(), NULL, 0, NULL, 0, 0);
}
static long p_bpf(void) { return syscall(SYS_bpf, -1, NULL, 0); }
static long p_keyctl(void) { return syscall(SYS_keyctl, -1L, 0L, 0L, 0L, 0L); }
static long p_add_key(void) { return syscall(SYS_add_key, NULL, NULL, NULL, 0, 0); }
static long p_request_key(void) { return syscall(SYS_request_key, NULL, NULL, NULL, 0); }
static long p_uring_setup(void) { return syscall(SYS_io_uring_setup, 1, NULL); }
static long p_uring_enter(void) { return syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0); }
static long p_uring_register(void) { return syscall(SYS_io_uring_register, -1, 0, NULL, 0); }
static long p_perf(void) { return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0UL); }
static long p_userfaultfd(void) { return syscall(SYS_userfaultfd, ~0U); }
static long p_open_by_handle(void) { return syscall(SYS_open_by_handle_at, -1, NULL, 0); }
static long p_fsopen(void) { return syscall(SYS_fsopen, "tmpfs", ~0U); }
static long p_fsmount(void) { return syscall(SYS_fsmount, -1, 0U, 0U); }
static long p_open_tree(void) { return syscall(SYS_open_tree, -1, "", ~0U); }
static long p_move_mount(void) { return syscall(SYS_move_mount, -1, "", -1, "", ~0U); }
static long p_mount_setattr(void) { return syscall(SYS_mount_setattr, -1, "", ~0U, NULL, 0); }
static long p_swapon(void) { return syscall(SYS_swapon, NOWHERE, 0); }
static long p_reboot(void) { return syscall(SYS_reboot, 0, 0, 0, NULL); } /* bad magic */
static long p_acct(void) { return syscall(SYS_acct, NOWHERE); }
static long p_kexec(void) { return syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0x8000UL); }
static long p_finit_module(void) { return syscall(SYS_finit_module, -1, "", 0); }
static long p_tiocsti(void) { return ioctl_on_pipe(TIOCSTI); }
/* The kernel reads the request as 32 bits: high bits must not hide it. */
static long p_tiocsti_high(void) { return ioctl_on_pipe(TIOCSTI | 0x100000000UL); }
static long p_tioclinux(void) { return ioctl_on_pipe(TIOCLINUX); }
static long p_tiocsetd(void) { return ioctl_on_pipe(TIOCSETD); }
static long p_tiocsetd_high(void) { return ioctl_on_pipe(TIOCSETD | 0x100000000UL); }
static long p_clone_newuser(void) { return raw_clone(CLONE_NEWUSER); }
static long p_clone_newnet_high(void) { return raw_clone(CLONE_NEWNET | (1UL << 40)); }
static long p_clone3(void) { return syscall(SYS_clone3, NULL, 0UL); }
/* Another process's limits, set to what they are: a no-op without the
 * filter (root may set its parent's), EPERM under it; high bits in the pid
 * must not make it pass as 0 (the caller). */
static long prlimit_parent(unsigned long high) {
  struct rlimit cur;

  if (prlimit(getppid(), RLIMIT_NOFILE, NULL, &cur) != 0)
    return -2;
  return syscall(SYS_prlimit64, (unsigned long)getppid() | high, RLIMIT_NOFILE, &cur, NULL);
}
static long p_prlimit_other(void) { return prlimit_parent(0); }
static long p_prlimit_other_high(void) { return prlimit_parent(1UL << 32); }
#if defined(__x86_64__) || defined(__aarch64__)
/* Linux 6.15; the filter refuses it by number where libseccomp lacks the name. */
static long p_open_tree_attr(void) { return syscall(467, -1, "", ~0U, NULL, 0); }
#endif

/* A probe that got a descriptor closes it: nothing leaks into later calls. */
static long closing(long fd) {
  if (fd >= 0)
    close((int)fd);
  return fd;
}

static long p_socket_vsock(void) { return closing(socket(AF_VSOCK, SOCK_STREAM, 0)); }
/* The kernel reads the family as an int: high bits must not hide it. */
static long p_socket_vsock_high(void) {
  return closing(syscall(SYS_socket, AF_VSOCK | (1UL << 32), SOCK_STREAM, 0));
}
static long p_socket_packet(void) { return closing(socket(AF_PACKET, SOCK_RAW, 0)); }
static long p_socket_past_max(void) { return closing(syscall(SYS_socket, AF_MAX + 3, 1, 0)); }
static long p_socketpair_vsock(void) {
  int sv[2];
  long r = socketpair(AF_VSOCK, SOCK_STREAM, 0, sv);

  if (r == 0) {
    close(sv[0]);
    close(sv[1]);
  }
  return r;
}

static long p_netlink(int protocol) { return closing(socket(AF_NETLINK, SOCK_RAW, protocol)); }
static long p_netlink_uevent(void) { return p_netlink(NETLINK_KOBJECT_UEVENT); }
static long p_netlink_audit(void) { return p_netlink(NETLINK_AUDIT); }
static long p_netlink_generic(void) { return p_netlink(NETLINK_GENERIC); }
static long p_netlink_connector(void) { return p_netlink(NETLINK_CONNECTOR); }
/* The kernel reads the protocol as an int: high bits must not hide it. */
static long p_netlink_uevent_high(void) {
  return closing(
      syscall(SYS_socket, AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT | (1UL << 32)));
}

struct probe {
  const char *name;
  long (*call)(void);
  int want;    /* errno under the filter */
  int control; /* 1: unfiltered, as root, the result must differ */
};

/* control 0: a sysctl or kernel config may refuse these with EPERM anyway. */
static const struct probe probes[] = {
    {"mount", p_mount, EPERM, 1},
    {"umount2", p_umount2, EPERM, 1},
    {"unshare(CLONE_NEWNS)", p_unshare_ns, EPERM, 1},
    {"unshare(CLONE_NEWNET)", p_unshare_net, EPERM, 1},
    {"unshare(CLONE_NEWUSER)", p_unshare_user, EPERM, 0},
    {"setns", p_setns, EPERM, 1},
    {"chroot", p_chroot, EPERM, 1},
    {"pivot_root", p_pivot_root, EPERM, 1},
    {"ptrace(PTRACE_TRACEME)", p_ptrace, EPERM, 1},
    {"process_vm_readv", p_pvm_readv, EPERM, 1},
    {"bpf", p_bpf, EPERM, 1},
    {"keyctl", p_keyctl, EPERM, 1},
    {"add_key", p_add_key, EPERM, 1},
    {"request_key", p_request_key, EPERM, 1},
    {"io_uring_setup", p_uring_setup, EPERM, 0},
    {"io_uring_enter", p_uring_enter, EPERM, 1},
    {"io_uring_register", p_uring_register, EPERM, 1},
    {"perf_event_open", p_perf, EPERM, 1},
    {"userfaultfd", p_userfaultfd, EPERM, 0},
    {"open_by_handle_at", p_open_by_handle, EPERM, 1},
    {"fsopen", p_fsopen, EPERM, 1},
    {"fsmount", p_fsmount, EPERM, 1},
    {"open_tree", p_open_tree, EPERM, 1},
    {"move_mount", p_move_mount, EPERM, 1},
    {"mount_setattr", p_mount_setattr, EPERM, 1},
    {"swapon", p_swapon, EPERM, 1},
    {"reboot", p_reboot, EPERM, 1},
    {"acct", p_acct, EPERM, 1},
    {"kexec_load", p_kexec, EPERM, 0},
    {"finit_module", p_finit_module, EPERM, 0},
    {"ioctl(0, TIOCSTI)", p_tiocsti, EPERM, 1},
    {"ioctl(0, TIOCSTI | 1 << 32)", p_tiocsti_high, EPERM, 1},
    {"ioctl(0, TIOCLINUX)", p_tioclinux, EPERM, 1},
    {"ioctl(0, TIOCSETD)", p_tiocsetd, EPERM, 1},
    {"ioctl(0, TIOCSETD | 1 << 32)", p_tiocsetd_high, EPERM, 1},
    {"clone(CLONE_NEWUSER)", p_clone_newuser, EPERM, 1},
    {"clone(CLONE_NEWNET | 1 << 40)", p_clone_newnet_high, EPERM, 1},
    {"clone3", p_clone3, ENOSYS, 1},
    {"prlimit64(parent, new limits)", p_prlimit_other, EPERM, 1},
    {"prlimit64(parent | 1 << 32, new limits)", p_prlimit_other_high, EPERM, 1},
#if defined(__x86_64__) || defined(__aarch64__)
    {"open_tree_attr (467)", p_open_tree_attr, EPERM, 1}, /* EINVAL, or ENOSYS before 6.15 */
#endif
    /* control 0 for the refused families that a kernel without them (or
     * without socketpair for them) answers with EAFNOSUPPORT too. */
    {"socket(AF_VSOCK)", p_socket_vsock, EAFNOSUPPORT, 0},
    {"socket(AF_VSOCK | 1 << 32)", p_socket_vsock_high, EAFNOSUPPORT, 0},
    {"socket(AF_PACKET, SOCK_RAW)", p_socket_packet, EAFNOSUPPORT, 1},
    {"socketpair(AF_VSOCK)", p_socketpair_vsock, EAFNOSUPPORT, 0},
    {"socket(AF_MAX + 3)", p_socket_past_max, EAFNOSUPPORT, 0},
    /* every netlink protocol has its own case below; these have controls */
    {"socket(AF_NETLINK, NETLINK_KOBJECT_UEVENT)", p_netlink_uevent, EAFNOSUPPORT, 1},
    {"socket(AF_NETLINK, NETLINK_KOBJECT_UEVENT | 1 << 32)", p_netlink_uevent_high,
     EAFNOSUPPORT, 1},
    {"socket(AF_NETLINK, NETLINK_AUDIT)", p_netlink_audit, EAFNOSUPPORT, 0},
    {"socket(AF_NETLINK, NETLINK_GENERIC)", p_netlink_generic, EAFNOSUPPORT, 1},
    {"socket(AF_NETLINK, NETLINK_CONNECTOR)", p_netlink_connector, EAFNOSUPPORT, 0},
};

#define NPROBES (sizeof probes / sizeof probes[0])

/* In a child: the filter, or say why not. */
static int install(int out) {
  char err[256];

  if (awf_seccomp_install(err, sizeof err) != 0)
    return !sbx_fail(out, "awf_seccomp_install: %s", err);
  return 1;
}

static int child_probe(int out, const void *arg) {
  const struct probe *p = arg;
  long r;

  if (!install(out))
    return 2;
  errno = 0;
  r = p->call();
  if (r != -1 || errno != p->want)
    return sbx_fail(out, "%s: returned %ld, errno %d (%s), wanted errno %d", p->name, r, errno,
                    strerror(errno), p->want);
  return 0;
}

static int child_probe_unfiltered(int out, const void *arg) {
  const struct probe *p = arg;
  long r;

  errno = 0;
  r = p->call();
  if (r == -1 && errno == p->want)
    return sbx_fail(out, "%s: errno %d without the filter too", p->name, errno);
  return 0;
}

static void test_probe(void **state) { sbx_expect_child_ok(child_probe, *state); }

/* Without the filter, as root, none of the controlled calls gives the
 * filter's errno: the refusals above are the filter's doing. */
static void test_probes_differ_unfiltered(void **state) {
  size_t i;

  (void)state;
  if (geteuid() != 0) {
    print_message("skipped: the control needs root (unprivileged, the kernel itself "
                  "answers EPERM to several calls)\n");
    skip();
  }
  for (i = 0; i < NPROBES; i++)
    if (probes[i].control)
      sbx_expect_child_ok(child_probe_unfiltered, &probes[i]);
}

/* ---- what still works under the filter ------------------------------------ */

static void *thread_main(void *arg) { return (char *)arg + 1; }

static int child_allowed(int out, const void *arg) {
  char path[] = "/tmp/awf-seccomp-test-XXXXXX", buf[8];
  int fd, sv[2], status = -1, avail = -1;
  pthread_t t;
  void *tret = NULL;
  pid_t pid;

  (void)arg;
  if (!install(out))
    return 2;
  pid = fork(); /* glibc's fork is clone without namespace flags */
  if (pid == 0)
    _exit(7);
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 7)
    return sbx_fail(out, "fork: pid %d status %#x errno %d", (int)pid, status, errno);
  /* pthread_create tries clone3 first and falls back to clone on ENOSYS. */
  if (pthread_create(&t, NULL, thread_main, path) != 0 || pthread_join(t, &tret) != 0 ||
      tret != path + 1)
    return sbx_fail(out, "pthread_create/join failed");
  fd = mkstemp(path);
  if (fd < 0 || write(fd, "abc", 3) != 3 || lseek(fd, 0, SEEK_SET) != 0 ||
      read(fd, buf, sizeof buf) != 3 || memcmp(buf, "abc", 3) != 0 || unlink(path) != 0 ||
      close(fd) != 0)
    return sbx_fail(out, "file I/O on %s: errno %d", path, errno);
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || close(fd) != 0)
    return sbx_fail(out, "socket(AF_INET): errno %d", errno);
  fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0 || close(fd) != 0)
    return sbx_fail(out, "socket(AF_INET6): errno %d", errno);
  fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  if (fd < 0 || close(fd) != 0)
    return sbx_fail(out, "socket(AF_NETLINK, NETLINK_ROUTE): errno %d", errno);
  fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG);
  if (fd < 0 || close(fd) != 0)
    return sbx_fail(out, "socket(AF_NETLINK, NETLINK_SOCK_DIAG): errno %d", errno);
  fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0 || close(fd) != 0)
    return sbx_fail(out, "socket(AF_UNIX, SOCK_DGRAM): errno %d", errno);
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || write(sv[0], "x", 1) != 1 ||
      ioctl(sv[1], FIONREAD, &avail) != 0 || avail != 1)
    return sbx_fail(out, "socketpair/FIONREAD: errno %d avail %d", errno, avail);
  if (raw_clone(0) <= 0)
    return sbx_fail(out, "clone without namespace flags: errno %d", errno);
  if (personality(0xffffffff) < 0)
    return sbx_fail(out, "personality query: errno %d", errno);
  {
    struct rlimit lim;

    /* its own limits (setrlimit is prlimit64 on pid 0), and reading another's */
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || setrlimit(RLIMIT_NOFILE, &lim) != 0 ||
        prlimit(getppid(), RLIMIT_NOFILE, NULL, &lim) != 0)
      return sbx_fail(out, "getrlimit/setrlimit/prlimit(parent, read): errno %d", errno);
  }
  return 0;
}

static void test_ordinary_calls_work(void **state) {
  (void)state;
  sbx_expect_child_ok(child_allowed, NULL);
}

/* ---- netlink, protocol by protocol ----------------------------------------- */

/* 0..31 are the kernel's protocol numbers (MAX_LINKS), 32 and 1000 past them. */
#define NL_CASES 34

struct nl_case {
  int protocol;
  char name[64];
};

static struct nl_case nl_cases[NL_CASES];

/* ROUTE and SOCK_DIAG open (or fail for the kernel's own reasons, never
 * EAFNOSUPPORT); every other protocol is EAFNOSUPPORT, the filter's answer. */
static int child_netlink(int out, const void *arg) {
  const struct nl_case *c = arg;
  int allowed = c->protocol == NETLINK_ROUTE || c->protocol == NETLINK_SOCK_DIAG;
  long r;

  if (!install(out))
    return 2;
  errno = 0;
  r = p_netlink(c->protocol);
  if (allowed && r < 0)
    return sbx_fail(out, "%s: errno %d (%s), wanted a socket", c->name, errno, strerror(errno));
  if (!allowed && (r != -1 || errno != EAFNOSUPPORT))
    return sbx_fail(out, "%s: returned %ld, errno %d (%s), wanted EAFNOSUPPORT", c->name, r,
                    errno, strerror(errno));
  return 0;
}

static void test_netlink_protocol(void **state) { sbx_expect_child_ok(child_netlink, *state); }

/* ---- the UNIX socket gate --------------------------------------------------- */

/* With the gate, connect() goes to the listener: with the listener closed
 * (no supervisor) it fails with ENOSYS, where unfiltered it would say ENOENT.
 * AF_UNIX datagram sockets are refused, stream ones are not. */
static int child_gated(int out, const void *arg) {
  struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = NOWHERE};
  char err[256];
  int listener = -1, fd, sv[2];

  (void)arg;
  if (awf_seccomp_install_gated(&listener, err, sizeof err) != 0)
    return sbx_fail(out, "awf_seccomp_install_gated: %s", err);
  if (listener < 0)
    return sbx_fail(out, "no listener");
  close(listener);
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0)
    return sbx_fail(out, "socket(AF_UNIX, SOCK_STREAM): errno %d", errno);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != -1 || errno != ENOSYS)
    return sbx_fail(out, "connect without a supervisor: errno %d, wanted ENOSYS", errno);
  close(fd);
  if (socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) != -1 || errno != EAFNOSUPPORT)
    return sbx_fail(out, "socket(AF_UNIX, SOCK_DGRAM): errno %d", errno);
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != -1 || errno != EAFNOSUPPORT)
    return sbx_fail(out, "socketpair(AF_UNIX, SOCK_DGRAM): errno %d", errno);
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
    return sbx_fail(out, "socketpair(AF_UNIX, SOCK_SEQPACKET): errno %d", errno);
  return 0;
}

static void test_gate_notifies_connect(void **state) {
  (void)state;
  sbx_expect_child_ok(child_gated, NULL);
}

/* socket or socketpair(AF_UNIX, type); 0 or -1 with errno. */
static long unix_socket_of_type(int pair, unsigned long type) {
  int sv[2];
  long r;

  if (!pair)
    return closing(syscall(SYS_socket, AF_UNIX, type, 0)) < 0 ? -1 : 0;
  r = syscall(SYS_socketpair, AF_UNIX, type, 0, sv);
  if (r == 0) {
    close(sv[0]);
    close(sv[1]);
  }
  return r;
}

/* With the gate, AF_UNIX sockets are stream or seqpacket ones: every other
 * type (0-15, the kernel's SOCK_TYPE_MASK), with flags or high bits, is
 * EAFNOSUPPORT. SOCK_RAW in particular, which the kernel quietly makes a
 * datagram socket that can send to any socket file by name. */
static int child_gated_types(int out, const void *arg) {
  static const unsigned long extra[] = {0, SOCK_CLOEXEC, SOCK_NONBLOCK, 1UL << 32};
  char err[256];
  int listener = -1, pair;
  unsigned long type;
  size_t x;

  (void)arg;
  if (awf_seccomp_install_gated(&listener, err, sizeof err) != 0)
    return sbx_fail(out, "awf_seccomp_install_gated: %s", err);
  close(listener);
  for (pair = 0; pair < 2; pair++)
    for (type = 0; type < 16; type++)
      for (x = 0; x < sizeof extra / sizeof extra[0]; x++) {
        int ok = type == SOCK_STREAM || type == SOCK_SEQPACKET;
        long r;

        errno = 0;
        r = unix_socket_of_type(pair, type | extra[x]);
        if (ok && r != 0)
          return sbx_fail(out, "%s(AF_UNIX, %#lx): errno %d, wanted a socket",
                          pair ? "socketpair" : "socket", type | extra[x], errno);
        if (!ok && (r != -1 || errno != EAFNOSUPPORT))
          return sbx_fail(out,
                          "%s(AF_UNIX, %#lx): returned %ld errno %d, wanted "
                          "EAFNOSUPPORT",
                          pair ? "socketpair" : "socket", type | extra[x], r, errno);
      }
  return 0;
}

/* Unfiltered, the kernel takes socket(AF_UNIX, SOCK_RAW) as a datagram
 * socket: the refusal above is the filter's. */
static int child_unix_raw_unfiltered(int out, const void *arg) {
  int fd = socket(AF_UNIX, SOCK_RAW, 0), type = -1;
  socklen_t len = sizeof type;

  (void)arg;
  if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_DGRAM)
    return sbx_fail(out, "socket(AF_UNIX, SOCK_RAW): fd %d errno %d type %d", fd, errno, type);
  close(fd);
  return 0;
}

static void test_gate_unix_stream_and_seqpacket_only(void **state) {
  (void)state;
  sbx_expect_child_ok(child_unix_raw_unfiltered, NULL);
  sbx_expect_child_ok(child_gated_types, NULL);
}

/* ---- foreign ABIs ----------------------------------------------------------- */

#if defined(__x86_64__)
#include <asm/unistd.h>

static long int80_getpid(void) {
  long r;

  /* i386 getpid is 20; int $0x80 may clobber r8-r11 on older kernels. */
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
  return r;
}

static int child_int80(int out, const void *arg) {
  if (arg != NULL && !install(out))
    return 2;
  return int80_getpid() == (long)getpid() ? 0 : 1;
}

static int child_x32(int out, const void *arg) {
  (void)arg;
  if (!install(out))
    return 2;
  syscall(__X32_SYSCALL_BIT | SYS_getpid);
  return sbx_fail(out, "an x32 syscall returned (errno %d)", errno);
}

static void expect_sigsys(sbx_child_fn fn, const void *arg) {
  char msg[512];
  int st = sbx_child_run(fn, arg, msg, sizeof msg);

  if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS)
    fail_msg("child status %#x, wanted death by SIGSYS: %s", (unsigned)st, msg);
}

/* x32 numbers share the x86_64 audit arch; libseccomp kills them. */
static void test_x32_killed(void **state) {
  (void)state;
  expect_sigsys(child_x32, NULL);
}

static void test_i386_killed(void **state) {
  char msg[64];
  int st = sbx_child_run(child_int80, NULL, msg, sizeof msg);

  (void)state;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    print_message("skipped: no i386 syscalls on this kernel (status %#x)\n", (unsigned)st);
    skip();
  }
  expect_sigsys(child_int80, "filtered");
}
#endif

int main(void) {
  struct CMUnitTest tests[NPROBES + NL_CASES + 6];
  size_t n = 0, i;

  for (i = 0; i < NPROBES; i++) {
    memset(&tests[n], 0, sizeof tests[n]);
    tests[n].name = probes[i].name;
    tests[n].test_func = test_probe;
    tests[n].initial_state = (void *)&probes[i];
    n++;
  }
  for (i = 0; i < NL_CASES; i++) {
    struct nl_case *c = &nl_cases[i];

    c->protocol = i < 33 ? (int)i : 1000;
    snprintf(c->name, sizeof c->name, "socket(AF_NETLINK, protocol %d)", c->protocol);
    memset(&tests[n], 0, sizeof tests[n]);
    tests[n].name = c->name;
    tests[n].test_func = test_netlink_protocol;
    tests[n].initial_state = c;
    n++;
  }
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_probes_differ_unfiltered);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_ordinary_calls_work);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_gate_notifies_connect);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_gate_unix_stream_and_seqpacket_only);
#if defined(__x86_64__)
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_x32_killed);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_i386_killed);
#endif
  return _cmocka_run_group_tests("test_sbx_seccomp", tests, n, NULL, NULL);
}
