/* unixpolicy.h: the pure parts of awf's gate on UNIX socket connects
 * (unixgate.h does the rest): reading the address a command passed to
 * connect(), recognising the sandbox's own sockets in a NETLINK_SOCK_DIAG
 * dump, and the set of socket files the caller let through. */
#ifndef AWF_UNIXPOLICY_H
#define AWF_UNIXPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A socket file: the (st_dev, st_ino) of its inode. */
struct awf_unix_id {
  dev_t dev;
  ino_t ino;
};

enum awf_unix_addr_kind {
  AWF_UNIX_ADDR_OTHER,    /* not AF_UNIX, abstract or unnamed: nothing on disk */
  AWF_UNIX_ADDR_PATHNAME, /* a file name, to be resolved */
};

/* The address connect() got (len bytes at addr, as the kernel copied them).
 * For an AF_UNIX pathname, copies the name as the kernel reads it (up to the
 * first NUL or the end of the address) into path (at least 109 bytes) and
 * returns AWF_UNIX_ADDR_PATHNAME; anything else is AWF_UNIX_ADDR_OTHER (the
 * kernel judges it: another family on an AF_UNIX socket, an abstract name in
 * the sandbox's own network namespace, autobind). */
enum awf_unix_addr_kind awf_unix_addr_classify(const void *addr, size_t len, char *path,
                                               size_t pathsz);

/* The user-space dev_t of a device number as sock_diag reports it (the
 * kernel's internal encoding: major << 20 | minor). */
dev_t awf_unix_diag_dev(uint32_t kernel_dev);

/* A UNIX_DIAG dump request for every AF_UNIX socket with the inode of the
 * file it is bound to (UDIAG_SHOW_VFS). Writes into buf (at least 64 bytes)
 * and returns its length. */
size_t awf_unix_diag_request(void *buf, size_t size, uint32_t seq);

/* Scan one datagram of the dump's answer for a socket bound to `id`. Every
 * message must carry the request's sequence number and the asking socket's
 * port id (portid, from getsockname after the request), and be a
 * SOCK_DIAG_BY_FAMILY record, NLMSG_DONE or NLMSG_ERROR. The caller takes
 * datagrams from the kernel only (the sender's nl_pid 0): message headers
 * are whatever the sender wrote. Returns 1 found, 0 not in this part
 * (*done set when the dump ended), or -errno (the kernel's error, or
 * -EBADMSG for a malformed or foreign answer). */
int awf_unix_diag_scan(const void *buf, size_t len, uint32_t seq, uint32_t portid,
                       struct awf_unix_id id, bool *done);

bool awf_unix_ids_has(const struct awf_unix_id *ids, size_t n, struct awf_unix_id id);

#endif
