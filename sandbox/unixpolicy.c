/* unixpolicy.c: see unixpolicy.h. */
#include "unixpolicy.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

enum awf_unix_addr_kind awf_unix_addr_classify(const void *addr, size_t len, char *path,
                                               size_t pathsz) {
  const size_t off = offsetof(struct sockaddr_un, sun_path);
  const struct sockaddr_un *sun = addr;
  if (len <= off || len > sizeof(*sun) || sun->sun_family != AF_UNIX ||
      sun->sun_path[0] == '\0')
    return AWF_UNIX_ADDR_OTHER;
  size_t n = strnlen(sun->sun_path, len - off);
  if (n >= pathsz)
    return AWF_UNIX_ADDR_OTHER; /* cannot happen with pathsz > sizeof(sun_path) */
  memcpy(path, sun->sun_path, n);
  path[n] = '\0';
  return AWF_UNIX_ADDR_PATHNAME;
}

dev_t awf_unix_diag_dev(uint32_t kernel_dev) {
  return makedev(kernel_dev >> 20, kernel_dev & 0xfffff);
}

size_t awf_unix_diag_request(void *buf, size_t size, uint32_t seq) {
  struct {
    struct nlmsghdr h;
    struct unix_diag_req r;
  } req;
  if (size < sizeof(req))
    return 0;
  memset(&req, 0, sizeof(req));
  req.h.nlmsg_len = sizeof(req);
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = seq;
  req.r.sdiag_family = AF_UNIX;
  req.r.udiag_states = ~0U;
  req.r.udiag_show = UDIAG_SHOW_VFS;
  memcpy(buf, &req, sizeof(req));
  return sizeof(req);
}

/* Does this message describe a socket bound to id? */
static bool message_matches(const struct nlmsghdr *h, struct awf_unix_id id) {
  if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
    return false;
  const struct unix_diag_msg *m = NLMSG_DATA(h);
  const struct rtattr *a = (const struct rtattr *)(m + 1);
  int left = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
  for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
    if (a->rta_type != UNIX_DIAG_VFS || RTA_PAYLOAD(a) < sizeof(struct unix_diag_vfs))
      continue;
    struct unix_diag_vfs v;
    memcpy(&v, RTA_DATA(a), sizeof(v));
    if (v.udiag_vfs_ino == id.ino && awf_unix_diag_dev(v.udiag_vfs_dev) == id.dev)
      return true;
  }
  return false;
}

int awf_unix_diag_scan(const void *buf, size_t len, uint32_t seq, uint32_t portid,
                       struct awf_unix_id id, bool *done) {
  const struct nlmsghdr *h = buf;
  int left = (int)len;
  *done = false;
  if (len > (size_t)1 << 30)
    return -EBADMSG;
  for (; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
    /* Every part of the kernel's answer names this request and this socket;
     * anything else was never asked for. */
    if (h->nlmsg_seq != seq || h->nlmsg_pid != portid)
      return -EBADMSG;
    if (h->nlmsg_type == NLMSG_DONE) {
      *done = true;
      return 0;
    }
    if (h->nlmsg_type == NLMSG_ERROR) {
      const struct nlmsgerr *e = NLMSG_DATA(h);
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
        return -EBADMSG;
      return e->error < 0 ? e->error : -EBADMSG;
    }
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
      return -EBADMSG;
    if (message_matches(h, id))
      return 1;
  }
  return left == 0 ? 0 : -EBADMSG;
}

bool awf_unix_ids_has(const struct awf_unix_id *ids, size_t n, struct awf_unix_id id) {
  for (size_t i = 0; i < n; i++)
    if (ids[i].dev == id.dev && ids[i].ino == id.ino)
      return true;
  return false;
}
