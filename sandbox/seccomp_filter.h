/* seccomp_filter.h: the command's syscall filter (libseccomp).
 *
 * Everything is allowed except what a sandboxed command never needs and what
 * would let it leave or attack the sandbox, which fails with EPERM:
 *   - mounts and namespaces: mount, umount, umount2, pivot_root, chroot,
 *     unshare, setns, clone with any CLONE_NEW* flag, the new mount API
 *     (fsopen, fsconfig, fsmount, fspick, move_mount, open_tree,
 *     mount_setattr, open_tree_attr);
 *   - other processes: ptrace, process_vm_readv/writev;
 *   - the kernel: kexec_load, kexec_file_load, init/finit/delete_module
 *     (and the legacy create_module, query_module, get_kernel_syms), bpf,
 *     perf_event_open, userfaultfd, keyctl, add_key, request_key,
 *     open_by_handle_at, io_uring_setup/enter/register, quotactl(_fd),
 *     swapon, swapoff, reboot, acct, lookup_dcookie, uselib, nfsservctl,
 *     _sysctl, iopl, ioperm, vm86, vm86old;
 *   - the terminal: ioctl TIOCSTI, TIOCLINUX and TIOCSETD (compared on the
 *     low 32 bits of the request, which is all the kernel reads);
 *   - another process's resource limits: prlimit64 with new limits and a pid
 *     other than 0. The kernel checks only that uid and gid match, not
 *     dumpability, so a rootless command could lower those of the sandbox's
 *     PID 1 (which runs the UNIX socket gate) through any of its thread ids.
 *     setrlimit, prlimit64 on pid 0 and reading another's limits still work.
 * socket and socketpair fail with EAFNOSUPPORT (what a kernel without the
 * family answers) for every family but AF_UNIX, AF_INET, AF_INET6 and
 * AF_NETLINK: the others (AF_VSOCK to the hypervisor, AF_PACKET...) reach
 * past the network namespace or past nftables. The family is compared on
 * its low 32 bits, and any value at or above AF_MAX is refused.
 * socket(AF_NETLINK) fails with EAFNOSUPPORT too for every protocol but
 * NETLINK_ROUTE and NETLINK_SOCK_DIAG (which answer for the sandbox's own
 * network namespace): NETLINK_KOBJECT_UEVENT would hear the host's device
 * events, audit, connector and generic netlink report on the whole machine.
 * clone3 fails with ENOSYS instead: its flags live in a struct in memory,
 * which a seccomp filter cannot read, so it is refused whole, and ENOSYS is
 * the one error on which glibc (pthread_create, posix_spawn) falls back to
 * clone, where the flags are an argument the filter does check.
 * name_to_handle_at stays allowed: a handle is useless without
 * open_by_handle_at, and libmount and systemd tools use it.
 * personality() stays allowed: its flags (ADDR_NO_RANDOMIZE,
 * READ_IMPLIES_EXEC...) only weaken the caller and its children, which have
 * no privileges and no_new_privs anyway (the kernel also clears them on a
 * setuid exec), and libseccomp 2.5 cannot express "none of these values" in
 * a default-allow filter (one comparison per argument per rule).
 *
 * Only the native ABI is accepted: the filter lists no other architecture, so
 * a syscall made through another one (i386 via int 0x80 on x86_64, arm32 on
 * arm64) kills the process (SCMP_FLTATR_ACT_BADARCH), and libseccomp kills
 * x32 syscall numbers (__X32_SYSCALL_BIT) on x86_64 the same way.
 *
 * Names this libseccomp does not know are skipped (a kernel that lacks them
 * has nothing to refuse), except open_tree_attr, newer than libseccomp
 * 2.5.4, which is refused by its number (467) on x86_64 and aarch64. */
#ifndef AWF_SECCOMP_FILTER_H
#define AWF_SECCOMP_FILTER_H

#include <stddef.h>

/* Load the filter into the calling thread, last before exec. Sets
 * PR_SET_NO_NEW_PRIVS itself if it is not set yet (without it an
 * unprivileged process may not load a filter). Uses malloc (libseccomp).
 * Returns 0, or a negative errno with a message in err naming the step. */
int awf_seccomp_install(char *err, size_t errlen);

/* The same filter with the UNIX socket gate (unixgate.h): connect() is sent
 * to the descriptor stored in *listener (SCMP_ACT_NOTIFY; the caller hands it
 * to the supervisor and closes it before exec: a process answering its own
 * notifications would pass everything), and socket/socketpair(AF_UNIX) fail
 * with EAFNOSUPPORT for every type but SOCK_STREAM and SOCK_SEQPACKET
 * (SOCK_DGRAM, and SOCK_RAW, which the kernel makes a datagram socket).
 * Until the supervisor holds the descriptor the caller must not connect(). */
int awf_seccomp_install_gated(int *listener, char *err, size_t errlen);

#endif
