/* rtnl.c: a minimal rtnetlink client: one request, one acknowledgement. */
#include "rtnl.h"

#include <errno.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RTNL_MSG_MAX 256

struct awf_rtnl {
  int fd;
  unsigned seq;
};

struct rtnl_req {
  struct nlmsghdr *nh;
  char buf[RTNL_MSG_MAX];
};

int awf_rtnl_open(awf_rtnl **out) {
  awf_rtnl *r = calloc(1, sizeof(*r));
  if (!r)
    return -ENOMEM;
  r->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
    int e = errno;
    if (r->fd >= 0)
      close(r->fd);
    free(r);
    return -e;
  }
  *out = r;
  return 0;
}

void awf_rtnl_close(awf_rtnl *r) {
  if (!r)
    return;
  close(r->fd);
  free(r);
}

static void *req_init(struct rtnl_req *q, unsigned short type, unsigned short flags,
                      size_t body) {
  memset(q->buf, 0, sizeof(q->buf));
  q->nh = (struct nlmsghdr *)(void *)q->buf;
  q->nh->nlmsg_len = (unsigned)NLMSG_LENGTH(body);
  q->nh->nlmsg_type = type;
  q->nh->nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
  return NLMSG_DATA(q->nh);
}

static int req_attr(struct rtnl_req *q, unsigned short type, const void *data, size_t len) {
  size_t at = NLMSG_ALIGN(q->nh->nlmsg_len);
  size_t need = RTA_LENGTH(len);
  if (at + RTA_ALIGN(need) > sizeof(q->buf))
    return -ENOBUFS;
  struct rtattr *a = (struct rtattr *)(void *)(q->buf + at);
  a->rta_type = type;
  a->rta_len = (unsigned short)need;
  memcpy(RTA_DATA(a), data, len);
  q->nh->nlmsg_len = (unsigned)(at + RTA_ALIGN(need));
  return 0;
}

/* Send and wait for the NLMSG_ERROR that acknowledges this sequence number. */
static int req_send(awf_rtnl *r, struct rtnl_req *q) {
  q->nh->nlmsg_seq = ++r->seq;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t n;
  do
    n = sendto(r->fd, q->buf, q->nh->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  for (;;) {
    union {
      char bytes[4096];
      struct nlmsghdr align;
    } in;
    do
      n = recv(r->fd, in.bytes, sizeof(in.bytes), 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
      return -errno;
    size_t left = (size_t)n;
    for (struct nlmsghdr *h = &in.align; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != r->seq || h->nlmsg_type != NLMSG_ERROR)
        continue;
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
        return -EPROTO;
      const struct nlmsgerr *e = NLMSG_DATA(h);
      return e->error; /* 0 or a negative errno */
    }
  }
}

int awf_rtnl_link_up(awf_rtnl *r, int ifindex) {
  struct rtnl_req q;
  struct ifinfomsg *ifi = req_init(&q, RTM_NEWLINK, 0, sizeof(*ifi));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  return req_send(r, &q);
}

static size_t addr_len(int family) {
  return family == AF_INET6 ? sizeof(struct in6_addr) : sizeof(struct in_addr);
}

int awf_rtnl_addr_add(awf_rtnl *r, int family, const void *addr, unsigned prefix, int ifindex) {
  struct rtnl_req q;
  struct ifaddrmsg *ifa = req_init(&q, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof(*ifa));
  ifa->ifa_family = (unsigned char)family;
  ifa->ifa_prefixlen = (unsigned char)prefix;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = (unsigned)ifindex;
  if (family == AF_INET6)
    ifa->ifa_flags = IFA_F_NODAD;
  int rc = req_attr(&q, IFA_LOCAL, addr, addr_len(family));
  if (rc == 0)
    rc = req_attr(&q, IFA_ADDRESS, addr, addr_len(family));
  return rc ? rc : req_send(r, &q);
}

int awf_rtnl_default_route(awf_rtnl *r, int family, const void *src, int ifindex) {
  struct rtnl_req q;
  struct rtmsg *rt = req_init(&q, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof(*rt));
  rt->rtm_family = (unsigned char)family;
  rt->rtm_dst_len = 0;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_STATIC;
  rt->rtm_scope = RT_SCOPE_LINK;
  rt->rtm_type = RTN_UNICAST;
  uint32_t oif = (uint32_t)ifindex;
  int rc = req_attr(&q, RTA_OIF, &oif, sizeof(oif));
  if (rc == 0)
    rc = req_attr(&q, RTA_PREFSRC, src, addr_len(family));
  return rc ? rc : req_send(r, &q);
}
