/* nflog.c: see nflog.h. */
#include "nflog.h"
#include "bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <netinet/in.h>

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* The destination of an IPv4 or IPv6 packet head; 0, or -1 when unreadable. */
static int parse_l3(const uint8_t *pkt, size_t len, struct awf_nflog_packet *out) {
  const uint8_t *l4;
  size_t l4len;
  memset(out, 0, sizeof(*out));
  if (len < 1)
    return -1;
  if (pkt[0] >> 4 == 4) {
    size_t ihl = (size_t)(pkt[0] & 0xf) * 4;
    if (len < 20 || ihl < 20 || ihl > len)
      return -1;
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->dst;
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, pkt + 16, 4);
    out->proto = pkt[9];
    /* A fragment after the first has no transport header. */
    if ((be16(pkt + 6) & 0x1fff) != 0)
      return 0;
    l4 = pkt + ihl;
    l4len = len - ihl;
    if ((out->proto == IPPROTO_TCP || out->proto == IPPROTO_UDP) && l4len >= 4)
      sin->sin_port = htons(be16(l4 + 2));
    return 0;
  }
  if (pkt[0] >> 4 == 6) {
    if (len < 40)
      return -1;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->dst;
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, pkt + 24, 16);
    /* Extension headers are not walked: the next header is reported as is
     * (a TCP or UDP packet with extension headers logs as "ip"). */
    out->proto = pkt[6];
    l4 = pkt + 40;
    l4len = len - 40;
    if ((out->proto == IPPROTO_TCP || out->proto == IPPROTO_UDP) && l4len >= 4)
      sin6->sin6_port = htons(be16(l4 + 2));
    return 0;
  }
  return -1;
}

/* The NFULA_PAYLOAD attribute of one NFLOG packet message's body. */
static int packet_payload(struct awf_bytes body, const uint8_t **payload, size_t *plen) {
  if (awf_bytes_skip(&body, sizeof(struct nfgenmsg)) != AWF_BYTES_OK)
    return -1;
  while (awf_bytes_left(&body) >= NLA_HDRLEN) {
    struct nlattr a;
    memcpy(&a, awf_bytes_take(&body, NLA_HDRLEN), sizeof(a));
    if (a.nla_len < NLA_HDRLEN || (size_t)a.nla_len - NLA_HDRLEN > awf_bytes_left(&body))
      return -1;
    size_t dlen = (size_t)a.nla_len - NLA_HDRLEN;
    const uint8_t *data = awf_bytes_take(&body, dlen);
    if ((a.nla_type & NLA_TYPE_MASK) == NFULA_PAYLOAD) {
      *payload = data;
      *plen = dlen;
      return 0;
    }
    /* The last attribute may go without its padding. */
    size_t pad = NLA_ALIGN(dlen) - dlen, left = awf_bytes_left(&body);
    awf_bytes_skip(&body, pad < left ? pad : left);
  }
  return -1;
}

int awf_nflog_parse(const uint8_t *buf, size_t len, struct awf_nflog_packet *out, size_t max) {
  struct awf_bytes c;
  int n = 0;
  awf_bytes_init(&c, buf, len);
  while (awf_bytes_left(&c) > 0) {
    const uint8_t *h = awf_bytes_take(&c, NLMSG_HDRLEN);
    struct nlmsghdr nh;
    if (h == NULL)
      return -EBADMSG;
    memcpy(&nh, h, sizeof(nh));
    if (nh.nlmsg_len < NLMSG_HDRLEN || nh.nlmsg_len - NLMSG_HDRLEN > awf_bytes_left(&c))
      return -EBADMSG;
    struct awf_bytes body;
    awf_bytes_sub(&c, nh.nlmsg_len - NLMSG_HDRLEN, &body);
    size_t pad = NLMSG_ALIGN(nh.nlmsg_len) - nh.nlmsg_len, left = awf_bytes_left(&c);
    awf_bytes_skip(&c, pad < left ? pad : left);
    if (nh.nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET) || (size_t)n == max)
      continue;
    const uint8_t *payload;
    size_t plen;
    if (packet_payload(body, &payload, &plen) == 0 && parse_l3(payload, plen, &out[n]) == 0)
      n++;
  }
  return n;
}

const char *awf_nflog_event(uint8_t proto) {
  switch (proto) {
  case IPPROTO_TCP: return "tcp";
  case IPPROTO_UDP: return "udp";
  case IPPROTO_ICMP:
  case IPPROTO_ICMPV6: return "icmp";
  default: return "ip";
  }
}

/* One NFULNL_MSG_CONFIG request with one attribute, and its acknowledgement. */
static int configure(int fd, uint16_t group, uint16_t attr, const void *data, size_t dlen) {
  union {
    uint8_t b[128];
    struct nlmsghdr align;
  } req;
  memset(&req, 0, sizeof(req));
  struct nlmsghdr *nh = (struct nlmsghdr *)req.b;
  size_t len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)) + NLA_HDRLEN + dlen;
  nh->nlmsg_len = (uint32_t)len;
  nh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
  nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nh->nlmsg_seq = attr;
  struct nfgenmsg *g = (struct nfgenmsg *)(req.b + NLMSG_HDRLEN);
  g->nfgen_family = AF_UNSPEC;
  g->version = NFNETLINK_V0;
  g->res_id = htons(group);
  struct nlattr *a = (struct nlattr *)(req.b + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*g)));
  a->nla_len = (uint16_t)(NLA_HDRLEN + dlen);
  a->nla_type = attr;
  memcpy((uint8_t *)a + NLA_HDRLEN, data, dlen);
  if (send(fd, req.b, len, 0) != (ssize_t)len)
    return -errno;
  union {
    uint8_t b[512];
    struct nlmsghdr align;
  } ack;
  for (;;) {
    ssize_t r = recv(fd, ack.b, sizeof(ack.b), 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -errno;
    struct nlmsghdr *ah = (struct nlmsghdr *)ack.b;
    if ((size_t)r < NLMSG_HDRLEN + sizeof(struct nlmsgerr) || ah->nlmsg_type != NLMSG_ERROR)
      return -EPROTO;
    const struct nlmsgerr *e = NLMSG_DATA(ah);
    return e->error; /* 0 or -errno */
  }
}

int awf_nflog_open(uint16_t group) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0)
    return -errno;
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  struct nfulnl_msg_config_cmd bind_cmd = {.command = NFULNL_CFG_CMD_BIND};
  struct nfulnl_msg_config_mode mode = {.copy_range = htonl(AWF_NFLOG_COPY_BYTES),
                                        .copy_mode = NFULNL_COPY_PACKET};
  int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
  if (rc == 0)
    rc = configure(fd, group, NFULA_CFG_CMD, &bind_cmd, sizeof(bind_cmd));
  if (rc == 0)
    rc = configure(fd, group, NFULA_CFG_MODE, &mode, sizeof(mode));
  /* Each report at once, not batched for up to a second: it is in the
   * socket before the refused sender sees its error, so a command that
   * exits right after still has its denials logged. */
  uint32_t one = htonl(1);
  if (rc == 0)
    rc = configure(fd, group, NFULA_CFG_QTHRESH, &one, sizeof(one));
  /* Non-blocking only now: the acknowledgements above were waited for. */
  if (rc == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
    rc = -errno;
  if (rc < 0) {
    close(fd);
    return rc;
  }
  return fd;
}
