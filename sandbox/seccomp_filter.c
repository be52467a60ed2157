/* seccomp_filter.c: see seccomp_filter.h. */
#include "seccomp_filter.h"
#include "errbuf.h"

#include <errno.h>
#include <linux/netlink.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* Refused whole with EPERM. Names unknown to this libseccomp, or not real
 * syscalls on this architecture (vm86 on x86_64...), are skipped, except
 * those in by_number below. */
static const char *const refused[] = {
    /* mounts and namespaces */
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "open_tree_attr",
    /* other processes */
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    /* the kernel */
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "query_module",
    "get_kernel_syms",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "quotactl",
    "quotactl_fd",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "lookup_dcookie",
    "uselib",
    "nfsservctl",
    "_sysctl",
    "iopl",
    "ioperm",
    "vm86",
    "vm86old",
};

/* Syscalls newer than Debian 12's libseccomp (2.5.4), which cannot resolve
 * their names, so a kernel that has them would get them through. Since the
 * numbers were unified (424, pidfd_send_signal) a new syscall has the same
 * number on most architectures; it is used only where it was checked against
 * the kernel's tables, and only when libseccomp does not know the name. */
static const struct {
  const char *name;
  int nr;
} by_number[] = {
#if defined(__x86_64__) || defined(__aarch64__)
    {"open_tree_attr", 467}, /* Linux 6.15: open_tree with mount_setattr */
#endif
    {NULL, 0},
};

/* The socket families the command may use: local sockets, IP (which the
 * namespace and nftables confine to lo and awf's proxy and DNS), and netlink
 * (the namespace's own interfaces and routes; glibc's getaddrinfo asks it).
 * Every other family reaches past the network namespace or past nftables:
 * AF_VSOCK talks to the hypervisor (CID 2) and other VMs on any VM with a
 * vsock device and belongs to no namespace, AF_PACKET and the rest are never
 * seen by the inet tables. They fail with EAFNOSUPPORT, what a kernel
 * without the family answers, so programs take their no-such-family path. */
static const int allowed_families[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};

/* The netlink protocols the command may open: NETLINK_ROUTE (its own
 * interfaces, addresses and routes: glibc's getaddrinfo and if_nameindex, ip)
 * and NETLINK_SOCK_DIAG (its own sockets: ss). Both answer for the sandbox's
 * network namespace only. The others see past it: NETLINK_KOBJECT_UEVENT
 * receives the host's device events in every namespace the initial user
 * namespace owns, NETLINK_AUDIT, NETLINK_CONNECTOR (proc events), the
 * generic families (taskstats...) report on the whole machine. They fail with
 * EAFNOSUPPORT, like a refused family: libaudit, udev and the rest read that
 * as "not available here". */
static const int allowed_netlink[] = {NETLINK_ROUTE, NETLINK_SOCK_DIAG};

/* The kernel's protocol numbers end below this (MAX_LINKS). */
#define NETLINK_PROTOCOLS 32

/* Each alone makes a clone create a namespace. CLONE_NEWTIME is not among
 * them: for clone() that bit is part of the exit signal (CSIGNAL), and only
 * clone3 and unshare, both refused whole, accept it. */
static const unsigned long clone_new_flags[] = {
    CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
    CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
};

/* s390 passes the stack first and the flags second. */
#if defined(__s390__) || defined(__s390x__)
#define CLONE_FLAGS_ARG 1
#else
#define CLONE_FLAGS_ARG 0
#endif

/* ioctl requests that push input into a terminal, poke the console, or
 * change the terminal's line discipline (TIOCSETD: the caller's terminal,
 * set to n_null, stays dead after the run, and with
 * dev.tty.ldisc_autoload=1 naming a discipline loads its kernel module). */
static const unsigned long refused_ioctls[] = {TIOCSTI, TIOCLINUX, TIOCSETD};

#define LOW32 0xffffffffULL

/* A libseccomp call failed: its (negative errno) result and the step. */
static int lib_failed(char *err, size_t errlen, int rc, const char *step, const char *what) {
  if (rc >= 0)
    rc = -EINVAL;
  return awf_errbuf_fail(err, errlen, rc, "seccomp filter: %s%s%s: %s", step,
                         what[0] ? " " : "", what, strerror(-rc));
}

/* The number of a syscall this libseccomp has no name for, or -1. */
static int number_of_unnamed(const char *name) {
  size_t i;

  for (i = 0; by_number[i].name != NULL; i++)
    if (strcmp(by_number[i].name, name) == 0)
      return by_number[i].nr;
  return -1;
}

static int add_refused(scmp_filter_ctx ctx, char *err, size_t errlen) {
  size_t i;

  for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    int nr = seccomp_syscall_resolve_name(refused[i]);
    int rc;

    if (nr == __NR_SCMP_ERROR)
      nr = number_of_unnamed(refused[i]);
    if (nr < 0) /* unknown, or a pseudo-number: not on this arch */
      continue;
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (rc != 0)
      return lib_failed(err, errlen, rc, "refusing", refused[i]);
  }
  return 0;
}

/* A masked compare cannot say "any of these bits", so one rule per flag:
 * (flags & F) == F. The kernel reads only the low 32 bits of the flags, and
 * every mask lies there, so high bits cannot hide a flag. */
static int add_clone(scmp_filter_ctx ctx, char *err, size_t errlen) {
  size_t i;
  int rc;

  for (i = 0; i < sizeof clone_new_flags / sizeof clone_new_flags[0]; i++) {
    scmp_datum_t f = clone_new_flags[i];

    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                          SCMP_CMP(CLONE_FLAGS_ARG, SCMP_CMP_MASKED_EQ, f, f));
    if (rc != 0)
      return lib_failed(err, errlen, rc, "refusing", "clone with namespace flags");
  }
  rc = seccomp_syscall_resolve_name("clone3");
  if (rc >= 0) {
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), rc, 0);
    if (rc != 0)
      return lib_failed(err, errlen, rc, "refusing", "clone3");
  }
  return 0;
}

/* The kernel takes the request as an unsigned int: the high half of the
 * register is ignored there, so it must be ignored here too, or
 * TIOCSTI | (1 << 32) would pass. */
static int add_ioctls(scmp_filter_ctx ctx, char *err, size_t errlen) {
  size_t i;

  for (i = 0; i < sizeof refused_ioctls / sizeof refused_ioctls[0]; i++) {
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, LOW32, refused_ioctls[i]));

    if (rc != 0)
      return lib_failed(err, errlen, rc, "refusing", "ioctl TIOCSTI/TIOCLINUX/TIOCSETD");
  }
  return 0;
}

/* Resource limits of another process: prlimit64 with a pid other than 0 (the
 * caller) and new limits. The kernel lets a process of the same uid and gid
 * lower them, dumpable or not; rootless, that is the sandbox's PID 1, whose
 * UNIX socket gate would then fail before it decides and logs. Reading
 * another's limits (no new limits) stays allowed; the full 64-bit pid is
 * compared, so high bits only make more calls refused. */
static int add_prlimit(scmp_filter_ctx ctx, char *err, size_t errlen) {
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prlimit64), 2,
                            SCMP_A0(SCMP_CMP_NE, 0), SCMP_A2(SCMP_CMP_NE, 0));

  if (rc != 0)
    return lib_failed(err, errlen, rc, "refusing", "prlimit64 on another process");
  return 0;
}

/* Is v one of list[0..n)? */
static int listed(const int *list, size_t n, int v) {
  size_t i;

  for (i = 0; i < n; i++)
    if (list[i] == v)
      return 1;
  return 0;
}

/* socket and socketpair: one rule per refused family below AF_MAX (separate
 * rules are ORed), compared on the low 32 bits, which is all the kernel
 * reads, so AF_VSOCK | 1 << 32 is refused too; then anything at or above
 * AF_MAX: families newer than these headers, and every value with high bits
 * set that did not match above (the kernel would read AF_INET | 1 << 32 as
 * AF_INET; no libc passes such a value, so refusing it costs nothing). */
static int add_families(scmp_filter_ctx ctx, char *err, size_t errlen) {
  static const int calls[] = {SCMP_SYS(socket), SCMP_SYS(socketpair)};
  size_t c;
  int f, rc;

  for (c = 0; c < sizeof calls / sizeof calls[0]; c++) {
    for (f = 0; f < AF_MAX; f++) {
      if (listed(allowed_families, sizeof allowed_families / sizeof allowed_families[0], f))
        continue;
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), calls[c], 1,
                            SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (scmp_datum_t)f));
      if (rc != 0)
        return lib_failed(err, errlen, rc, "refusing", "a socket family");
    }
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), calls[c], 1,
                          SCMP_A0(SCMP_CMP_GE, (scmp_datum_t)AF_MAX));
    if (rc != 0)
      return lib_failed(err, errlen, rc, "refusing", "socket families from AF_MAX");
  }
  return 0;
}

/* socket(AF_NETLINK, type, protocol): one rule per refused protocol, the
 * family and the protocol both compared on their low 32 bits (the kernel
 * reads ints), then any protocol at or above the kernel's last one (values
 * with high bits set included: ROUTE | 1 << 32 is refused too, no libc
 * passes it). socketpair has no netlink (the kernel answers EOPNOTSUPP). */
static int add_netlink(scmp_filter_ctx ctx, char *err, size_t errlen) {
  const struct scmp_arg_cmp netlink = SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32,
                                              (scmp_datum_t)AF_NETLINK);
  int p, rc;

  for (p = 0; p < NETLINK_PROTOCOLS; p++) {
    if (listed(allowed_netlink, sizeof allowed_netlink / sizeof allowed_netlink[0], p))
      continue;
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 2, netlink,
                          SCMP_A2(SCMP_CMP_MASKED_EQ, LOW32, (scmp_datum_t)p));
    if (rc != 0)
      return lib_failed(err, errlen, rc, "refusing", "a netlink protocol");
  }
  rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 2, netlink,
                        SCMP_A2(SCMP_CMP_GE, (scmp_datum_t)NETLINK_PROTOCOLS));
  if (rc != 0)
    return lib_failed(err, errlen, rc, "refusing", "netlink protocols from 32");
  return 0;
}

/* The UNIX socket gate (unixgate.h): every connect() goes to awf's
 * supervisor, which makes it itself on the command's socket (the address is
 * in memory the command can change after a look, and the descriptor number
 * can be pointed at another socket by another thread, so only a connect awf
 * makes itself connects what awf checked). AF_UNIX sockets are stream and
 * seqpacket ones only: a datagram socket can send to any socket file by
 * name (sendto, sendmsg, sendmmsg, even once connected), which a filter
 * cannot see, and sending on the command's behalf would mean copying every
 * message and its ancillary data through awf. Stream and seqpacket sockets
 * ignore a name on send, so sends stay in the kernel, unwatched and at full
 * speed. Every other type is refused, not only SOCK_DGRAM: the kernel makes
 * SOCK_RAW a datagram socket (unix_create), and a type it may learn later
 * must not slip past either. */
#define SOCK_TYPE_MASK 0xf /* the kernel's: the rest of the type is flags */

static int add_unix_gate(scmp_filter_ctx ctx, char *err, size_t errlen) {
  static const int calls[] = {SCMP_SYS(socket), SCMP_SYS(socketpair)};
  size_t c;
  int type, rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(connect), 0);

  if (rc != 0)
    return lib_failed(err, errlen, rc, "sending to the supervisor", "connect");
  for (c = 0; c < sizeof calls / sizeof calls[0]; c++) {
    for (type = 0; type <= SOCK_TYPE_MASK; type++) {
      if (type == SOCK_STREAM || type == SOCK_SEQPACKET)
        continue;
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), calls[c], 2,
                            SCMP_A0(SCMP_CMP_MASKED_EQ, LOW32, (scmp_datum_t)AF_UNIX),
                            SCMP_A1(SCMP_CMP_MASKED_EQ, SOCK_TYPE_MASK, (scmp_datum_t)type));
      if (rc != 0)
        return lib_failed(err, errlen, rc, "refusing", "AF_UNIX datagram sockets");
    }
  }
  return 0;
}

static int build(scmp_filter_ctx ctx, char *err, size_t errlen) {
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);

  if (rc != 0)
    return lib_failed(err, errlen, rc, "setting the bad-architecture action", "");
  /* Sets no_new_privs on load if it is not set yet (libseccomp's default,
     * made explicit). */
  rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
  if (rc != 0)
    return lib_failed(err, errlen, rc, "setting no_new_privs", "");
  rc = add_refused(ctx, err, errlen);
  if (rc == 0)
    rc = add_clone(ctx, err, errlen);
  if (rc == 0)
    rc = add_ioctls(ctx, err, errlen);
  if (rc == 0)
    rc = add_prlimit(ctx, err, errlen);
  if (rc == 0)
    rc = add_families(ctx, err, errlen);
  if (rc == 0)
    rc = add_netlink(ctx, err, errlen);
  return rc;
}

static int install(int *listener, char *err, size_t errlen) {
  /* Only the native architecture is in a fresh filter. */
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  int rc;

  if (ctx == NULL)
    return awf_errbuf_fail(err, errlen, -ENOMEM, "seccomp filter: seccomp_init failed");
  rc = build(ctx, err, errlen);
  if (rc == 0 && listener != NULL)
    rc = add_unix_gate(ctx, err, errlen);
  if (rc == 0) {
    rc = seccomp_load(ctx);
    if (rc != 0)
      rc = lib_failed(err, errlen, rc, "loading the filter", "");
  }
  if (rc == 0 && listener != NULL) {
    *listener = seccomp_notify_fd(ctx);
    if (*listener < 0)
      rc = lib_failed(err, errlen, *listener, "getting the notification descriptor", "");
  }
  seccomp_release(ctx);
  return rc;
}

int awf_seccomp_install(char *err, size_t errlen) { return install(NULL, err, errlen); }

int awf_seccomp_install_gated(int *listener, char *err, size_t errlen) {
  return install(listener, err, errlen);
}
