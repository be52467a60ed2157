/* nft_netlink.c: the ruleset of nft_ruleset.c as nf_tables netlink messages.
 *
 * Why an in-tree encoder rather than libnftnl.a: libnftnl needs libmnl, of
 * which Debian ships no static archive, and what we send is small and fixed
 * in shape (one table, two base chains, two named sets, a dozen rules from
 * meta/payload/cmp/immediate/redir/ct/bitwise/lookup/dynset/limit/log/reject
 * expressions). A byte buffer and a dozen helpers say it in fewer lines than
 * libnftnl's object API plus our own netlink socket code would.
 *
 * The messages are those nft 1.0 sends for the text of awf_nft_ruleset(),
 * in the same order, with the same registers (nft's choice: a 16-byte
 * register when the offset is aligned to one, else a 4-byte one), the same
 * simplifications (a port set of one range is a comparison, not a set) and
 * the same set userdata (nft's record of byte order and key type, which it
 * reads back to print the set). Keep the two in step: test_static.py lists
 * the ruleset each backend installed and compares them. */
#include "nft_netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct nlbuf {
  uint8_t *p;
  size_t len, cap;
  int err;
  uint32_t seq;
  unsigned nmsg;
};

/* n zeroed bytes at the end (4-aligned), or NULL with b->err set. */
static void *grow(struct nlbuf *b, size_t n) {
  size_t need = b->len + NLMSG_ALIGN(n);
  if (b->err)
    return NULL;
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
      cap *= 2;
    uint8_t *q = realloc(b->p, cap);
    if (!q) {
      b->err = -ENOMEM;
      return NULL;
    }
    b->p = q;
    b->cap = cap;
  }
  void *at = b->p + b->len;
  memset(at, 0, NLMSG_ALIGN(n));
  b->len = need;
  return at;
}

static size_t msg_begin(struct nlbuf *b, uint16_t type, uint16_t flags, uint8_t family,
                        uint16_t res_id) {
  size_t off = b->len;
  struct nlmsghdr *h = grow(b, NLMSG_HDRLEN);
  struct nfgenmsg *g = grow(b, sizeof(*g));
  if (!h || !g)
    return off;
  h = (struct nlmsghdr *)(void *)(b->p + off); /* grow may have moved it */
  h->nlmsg_type = type;
  h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
  h->nlmsg_seq = b->seq++;
  g = (struct nfgenmsg *)(void *)(b->p + off + NLMSG_HDRLEN);
  g->nfgen_family = family;
  g->version = NFNETLINK_V0;
  g->res_id = htons(res_id);
  if (flags & NLM_F_ACK)
    b->nmsg++;
  return off;
}

static void msg_end(struct nlbuf *b, size_t off) {
  if (!b->err)
    ((struct nlmsghdr *)(void *)(b->p + off))->nlmsg_len = (uint32_t)(b->len - off);
}

/* An nf_tables object message: NFT_MSG_x of the inet family, acknowledged. */
static size_t obj_begin(struct nlbuf *b, uint16_t msg, uint16_t flags) {
  return msg_begin(b, (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | msg), NLM_F_ACK | flags,
                   NFPROTO_INET, 0);
}

static void attr(struct nlbuf *b, uint16_t type, const void *data, size_t n) {
  struct nlattr *a = grow(b, NLA_HDRLEN + n);
  if (!a)
    return;
  a->nla_type = type;
  a->nla_len = (uint16_t)(NLA_HDRLEN + n);
  memcpy((uint8_t *)a + NLA_HDRLEN, data, n);
}

static void attr_str(struct nlbuf *b, uint16_t type, const char *s) {
  attr(b, type, s, strlen(s) + 1);
}

static void attr_be32(struct nlbuf *b, uint16_t type, uint32_t v) {
  v = htonl(v);
  attr(b, type, &v, sizeof(v));
}

static void attr_be64(struct nlbuf *b, uint16_t type, uint64_t v) {
  uint32_t w[2] = {htonl((uint32_t)(v >> 32)), htonl((uint32_t)v)};
  attr(b, type, w, sizeof(w));
}

static size_t nest_begin(struct nlbuf *b, uint16_t type) {
  size_t off = b->len;
  struct nlattr *a = grow(b, NLA_HDRLEN);
  if (a)
    a->nla_type = (uint16_t)(NLA_F_NESTED | type);
  return off;
}

static void nest_end(struct nlbuf *b, size_t off) {
  if (!b->err)
    ((struct nlattr *)(void *)(b->p + off))->nla_len = (uint16_t)(b->len - off);
}

/* NFTA_DATA_VALUE inside a nest of the given type. */
static void data_value(struct nlbuf *b, uint16_t type, const void *v, size_t n) {
  size_t d = nest_begin(b, type);
  attr(b, NFTA_DATA_VALUE, v, n);
  nest_end(b, d);
}

/* -- expressions: each is NFTA_LIST_ELEM { NAME, DATA { ... } } ----------- */

static size_t expr_begin(struct nlbuf *b, const char *name) {
  size_t e = nest_begin(b, NFTA_LIST_ELEM);
  attr_str(b, NFTA_EXPR_NAME, name);
  nest_begin(b, NFTA_EXPR_DATA);
  return e;
}

static void expr_end(struct nlbuf *b, size_t e) {
  if (b->err)
    return;
  /* The DATA nest follows NAME: both end here. */
  size_t name_len = NLA_ALIGN(((struct nlattr *)(void *)(b->p + e + NLA_HDRLEN))->nla_len);
  nest_end(b, e + NLA_HDRLEN + name_len);
  nest_end(b, e);
}

static void e_meta(struct nlbuf *b, uint32_t key, uint32_t dreg) {
  size_t e = expr_begin(b, "meta");
  attr_be32(b, NFTA_META_KEY, key);
  attr_be32(b, NFTA_META_DREG, dreg);
  expr_end(b, e);
}

static void e_cmp(struct nlbuf *b, uint32_t op, const void *v, size_t n) {
  size_t e = expr_begin(b, "cmp");
  attr_be32(b, NFTA_CMP_SREG, NFT_REG_1);
  attr_be32(b, NFTA_CMP_OP, op);
  data_value(b, NFTA_CMP_DATA, v, n);
  expr_end(b, e);
}

static void e_cmp_u8(struct nlbuf *b, uint8_t v) { e_cmp(b, NFT_CMP_EQ, &v, 1); }

static void e_payload(struct nlbuf *b, uint32_t dreg, uint32_t base, uint32_t off, uint32_t n) {
  size_t e = expr_begin(b, "payload");
  attr_be32(b, NFTA_PAYLOAD_DREG, dreg);
  attr_be32(b, NFTA_PAYLOAD_BASE, base);
  attr_be32(b, NFTA_PAYLOAD_OFFSET, off);
  attr_be32(b, NFTA_PAYLOAD_LEN, n);
  expr_end(b, e);
}

static void e_dport(struct nlbuf *b, uint32_t dreg) {
  e_payload(b, dreg, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
}

static void e_verdict(struct nlbuf *b, int verdict) {
  size_t e = expr_begin(b, "immediate");
  attr_be32(b, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
  size_t d = nest_begin(b, NFTA_IMMEDIATE_DATA);
  size_t v = nest_begin(b, NFTA_DATA_VERDICT);
  attr_be32(b, NFTA_VERDICT_CODE, (uint32_t)verdict);
  nest_end(b, v);
  nest_end(b, d);
  expr_end(b, e);
}

/* redirect to :port */
static void e_redirect(struct nlbuf *b, uint16_t port) {
  uint16_t be = htons(port);
  size_t e = expr_begin(b, "immediate");
  attr_be32(b, NFTA_IMMEDIATE_DREG, NFT_REG_1);
  data_value(b, NFTA_IMMEDIATE_DATA, &be, sizeof(be));
  expr_end(b, e);
  e = expr_begin(b, "redir");
  attr_be32(b, NFTA_REDIR_REG_PROTO_MIN, NFT_REG_1);
  attr_be32(b, NFTA_REDIR_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
  expr_end(b, e);
}

/* ct KEY & mask != 0 (host byte order, as the kernel keeps ct state). */
static void e_ct_bits(struct nlbuf *b, uint32_t key, uint32_t mask) {
  uint32_t zero = 0;
  size_t e = expr_begin(b, "ct");
  attr_be32(b, NFTA_CT_KEY, key);
  attr_be32(b, NFTA_CT_DREG, NFT_REG_1);
  expr_end(b, e);
  e = expr_begin(b, "bitwise");
  attr_be32(b, NFTA_BITWISE_SREG, NFT_REG_1);
  attr_be32(b, NFTA_BITWISE_DREG, NFT_REG_1);
  attr_be32(b, NFTA_BITWISE_LEN, sizeof(mask));
  data_value(b, NFTA_BITWISE_MASK, &mask, sizeof(mask));
  data_value(b, NFTA_BITWISE_XOR, &zero, sizeof(zero));
  expr_end(b, e);
  e_cmp(b, NFT_CMP_NEQ, &zero, sizeof(zero));
}

static void e_lookup(struct nlbuf *b, const char *set, uint32_t set_id, bool invert) {
  size_t e = expr_begin(b, "lookup");
  attr_be32(b, NFTA_LOOKUP_SREG, NFT_REG_1);
  attr_str(b, NFTA_LOOKUP_SET, set);
  attr_be32(b, NFTA_LOOKUP_SET_ID, set_id);
  if (invert)
    attr_be32(b, NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
  expr_end(b, e);
}

static void e_dynset_add(struct nlbuf *b, const char *set, uint32_t set_id) {
  size_t e = expr_begin(b, "dynset");
  attr_be32(b, NFTA_DYNSET_SREG_KEY, NFT_REG_1);
  attr_be32(b, NFTA_DYNSET_OP, NFT_DYNSET_OP_ADD);
  attr_str(b, NFTA_DYNSET_SET_NAME, set);
  attr_be32(b, NFTA_DYNSET_SET_ID, set_id);
  expr_end(b, e);
}

/* limit rate N/second burst B packets, then log group G */
static void e_limit_log(struct nlbuf *b, uint64_t rate, uint32_t burst, uint16_t group) {
  size_t e = expr_begin(b, "limit");
  attr_be64(b, NFTA_LIMIT_RATE, rate);
  attr_be64(b, NFTA_LIMIT_UNIT, 1);
  attr_be32(b, NFTA_LIMIT_BURST, burst);
  attr_be32(b, NFTA_LIMIT_TYPE, NFT_LIMIT_PKTS);
  attr_be32(b, NFTA_LIMIT_FLAGS, 0);
  expr_end(b, e);
  uint16_t g = htons(group);
  e = expr_begin(b, "log");
  attr(b, NFTA_LOG_GROUP, &g, sizeof(g));
  expr_end(b, e);
}

/* meta nfproto ipv4|ipv6, then the destination address into reg 1: a /8
 * IPv4 prefix loads its first byte only, as nft does. */
static void e_daddr(struct nlbuf *b, int family, unsigned bytes) {
  e_meta(b, NFT_META_NFPROTO, NFT_REG_1);
  e_cmp_u8(b, family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6);
  e_payload(b, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, family == AF_INET ? 16 : 24, bytes);
}

/* nft's register for a field at 4-byte offset n of a concatenation in reg 1:
 * the 16-byte register when aligned to one, else the 4-byte one. */
static uint32_t concat_reg(unsigned n) { return n % 4 ? NFT_REG32_00 + n : NFT_REG_1 + n / 4; }

/* -- rules, sets ----------------------------------------------------------- */

struct rule {
  struct nlbuf *b;
  size_t msg, exprs;
};

static void rule_begin(struct rule *r, struct nlbuf *b, const char *chain) {
  r->b = b;
  r->msg = obj_begin(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
  attr_str(b, NFTA_RULE_TABLE, AWF_NFT_TABLE);
  attr_str(b, NFTA_RULE_CHAIN, chain);
  r->exprs = nest_begin(b, NFTA_RULE_EXPRESSIONS);
}

static void rule_end(struct rule *r) {
  nest_end(r->b, r->exprs);
  msg_end(r->b, r->msg);
}

static void chain(struct nlbuf *b, const char *name, const char *type, int prio,
                  uint32_t policy) {
  size_t m = obj_begin(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
  attr_str(b, NFTA_CHAIN_TABLE, AWF_NFT_TABLE);
  attr_str(b, NFTA_CHAIN_NAME, name);
  attr_str(b, NFTA_CHAIN_TYPE, type);
  attr_be32(b, NFTA_CHAIN_POLICY, policy);
  size_t h = nest_begin(b, NFTA_CHAIN_HOOK);
  attr_be32(b, NFTA_HOOK_HOOKNUM, NF_INET_LOCAL_OUT);
  attr_be32(b, NFTA_HOOK_PRIORITY, (uint32_t)prio);
  nest_end(b, h);
  msg_end(b, m);
}

/* nft's set userdata (libnftnl's NFTNL_UDATA_SET_*: key byte order, merge
 * flag, the key's typeof record). nft reads it back to print the set's
 * elements and type; without it the listing would differ. */
static const uint8_t udata_concat[] = {0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x03, 0x08,
                                       0x00, 0x04, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x00};
static const uint8_t udata_l4proto[] = {0x00, 0x04, 0x01, 0x00, 0x00, 0x00, 0x03, 0x0e,
                                        0x00, 0x04, 0x09, 0x00, 0x00, 0x00, 0x01, 0x06,
                                        0x00, 0x04, 0x10, 0x00, 0x00, 0x00};
static const uint8_t udata_tcp_dport[] = {0x00, 0x04, 0x02, 0x00, 0x00, 0x00, 0x02, 0x04, 0x01,
                                          0x00, 0x00, 0x00, 0x03, 0x14, 0x00, 0x04, 0x07, 0x00,
                                          0x00, 0x00, 0x01, 0x0c, 0x00, 0x04, 0x08, 0x00, 0x00,
                                          0x00, 0x01, 0x04, 0x02, 0x00, 0x00, 0x00};

#define ANON_SET "__set%d" /* the kernel numbers it */
#define TYPE_INET_PROTO 12
#define TYPE_INET_SERVICE 13
#define TYPE_IPV4_ADDR 7
#define TYPE_IPV6_ADDR 8
#define CONCAT_TYPE(a, b, c) ((a) << 12 | (b) << 6 | (c))

struct set_def {
  const char *name;
  uint32_t id, flags, key_type, key_len, size;
  uint64_t timeout_ms;
  const uint8_t *udata;
  size_t udata_len;
};

static void set(struct nlbuf *b, const struct set_def *s) {
  size_t m = obj_begin(b, NFT_MSG_NEWSET, NLM_F_CREATE);
  attr_str(b, NFTA_SET_TABLE, AWF_NFT_TABLE);
  attr_str(b, NFTA_SET_NAME, s->name);
  attr_be32(b, NFTA_SET_FLAGS, s->flags);
  attr_be32(b, NFTA_SET_KEY_TYPE, s->key_type);
  attr_be32(b, NFTA_SET_KEY_LEN, s->key_len);
  attr_be32(b, NFTA_SET_ID, s->id);
  size_t d = nest_begin(b, NFTA_SET_DESC);
  attr_be32(b, NFTA_SET_DESC_SIZE, s->size);
  nest_end(b, d);
  if (s->timeout_ms)
    attr_be64(b, NFTA_SET_TIMEOUT, s->timeout_ms);
  attr(b, NFTA_SET_USERDATA, s->udata, s->udata_len);
  msg_end(b, m);
}

struct elems {
  struct nlbuf *b;
  size_t msg, list;
  unsigned n;
};

static void elems_begin(struct elems *l, struct nlbuf *b, uint32_t set_id) {
  l->b = b;
  l->n = 0;
  l->msg = obj_begin(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE);
  attr_str(b, NFTA_SET_ELEM_LIST_TABLE, AWF_NFT_TABLE);
  attr_str(b, NFTA_SET_ELEM_LIST_SET, ANON_SET);
  attr_be32(b, NFTA_SET_ELEM_LIST_SET_ID, set_id);
  l->list = nest_begin(b, NFTA_SET_ELEM_LIST_ELEMENTS);
}

static void elem(struct elems *l, const void *key, size_t n, bool interval_end) {
  size_t e = nest_begin(l->b, (uint16_t)++l->n);
  if (interval_end)
    attr_be32(l->b, NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
  data_value(l->b, NFTA_SET_ELEM_KEY, key, n);
  nest_end(l->b, e);
}

static void elems_end(struct elems *l) {
  nest_end(l->b, l->list);
  msg_end(l->b, l->msg);
}

/* An anonymous { tcp, udp } set, looked up from reg 1. */
static void l4proto_set(struct nlbuf *b, uint32_t id) {
  static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP};
  struct set_def s = {ANON_SET,
                      id,
                      NFT_SET_ANONYMOUS | NFT_SET_CONSTANT,
                      TYPE_INET_PROTO,
                      1,
                      2,
                      0,
                      udata_l4proto,
                      sizeof(udata_l4proto)};
  set(b, &s);
  struct elems l;
  elems_begin(&l, b, id);
  for (size_t i = 0; i < sizeof(protos); i++)
    elem(&l, &protos[i], 1, false);
  elems_end(&l);
}

static bool port_on(const uint8_t *bits, unsigned p) { return (bits[p >> 3] >> (p & 7)) & 1; }

/* The next run of set ports at or after *p: [lo, hi], false when none. */
static bool next_range(const uint8_t *bits, unsigned *p, unsigned *lo, unsigned *hi) {
  while (*p <= 65535 && !port_on(bits, *p))
    ++*p;
  if (*p > 65535)
    return false;
  *lo = *hi = *p;
  while (*hi < 65535 && port_on(bits, *hi + 1))
    ++*hi;
  *p = *hi + 1;
  return true;
}

/* tcp dport <ports> of a single range: one port is a comparison, a range
 * two, as nft encodes them (a set of one element is not a set). Reg 1 holds
 * the port. */
static void tcp_dport_cmp(struct nlbuf *b, const uint8_t *bits) {
  unsigned p = 1, lo, hi;
  if (!next_range(bits, &p, &lo, &hi))
    return; /* awf_nft_batch refuses an empty port set */
  uint16_t a = htons((uint16_t)lo), z = htons((uint16_t)hi);
  e_cmp(b, lo == hi ? NFT_CMP_EQ : NFT_CMP_GTE, &a, 2);
  if (lo != hi)
    e_cmp(b, NFT_CMP_LTE, &z, 2);
}

/* More ranges: an anonymous interval set, sent before its rule. Its
 * elements: each range's start, and the port after its end flagged as an
 * interval end; a leading 0-end closes the gap below the first range (port
 * 0 is never in the set). A netlink attribute holds at most 64 KiB: the
 * elements go in messages of ELEMS_PER_MSG. */
#define ELEMS_PER_MSG 1024
static void tcp_dport_set(struct nlbuf *b, const uint8_t *bits, uint32_t id) {
  unsigned p = 1, lo, hi, count = 0;
  while (next_range(bits, &p, &lo, &hi))
    count += 1 + (hi < 65535);
  count += 1; /* the leading 0-end */
  struct set_def s = {ANON_SET,
                      id,
                      NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_INTERVAL,
                      TYPE_INET_SERVICE,
                      2,
                      count,
                      0,
                      udata_tcp_dport,
                      sizeof(udata_tcp_dport)};
  set(b, &s);
  struct elems l;
  elems_begin(&l, b, id);
  uint16_t zero = 0;
  elem(&l, &zero, 2, true);
  p = 1;
  while (next_range(bits, &p, &lo, &hi)) {
    uint16_t a = htons((uint16_t)lo), z = htons((uint16_t)(hi + 1));
    if (l.n + 2 > ELEMS_PER_MSG) {
      elems_end(&l);
      elems_begin(&l, b, id);
    }
    elem(&l, &a, 2, false);
    if (hi < 65535)
      elem(&l, &z, 2, true);
  }
  elems_end(&l);
}

static unsigned port_ranges(const uint8_t *bits) {
  unsigned p = 1, lo, hi, n = 0;
  while (next_range(bits, &p, &lo, &hi))
    n++;
  return n;
}

/* meta l4proto PROTO */
static void l4proto_is(struct nlbuf *b, uint8_t proto) {
  e_meta(b, NFT_META_L4PROTO, NFT_REG_1);
  e_cmp_u8(b, proto);
}

/* ip daddr 127.0.0.0/8 VERDICT; ip6 daddr ::1 VERDICT */
static void loopback_rules(struct nlbuf *b, const char *chain, int verdict) {
  static const uint8_t net127 = 127;
  static const struct in6_addr lo6 = IN6ADDR_LOOPBACK_INIT;
  struct rule r;
  rule_begin(&r, b, chain);
  e_daddr(b, AF_INET, 1);
  e_cmp(b, NFT_CMP_EQ, &net127, 1);
  e_verdict(b, verdict);
  rule_end(&r);
  rule_begin(&r, b, chain);
  e_daddr(b, AF_INET6, 16);
  e_cmp(b, NFT_CMP_EQ, &lo6, 16);
  e_verdict(b, verdict);
  rule_end(&r);
}

/* ip[6] daddr HOST tcp dport 1-65535 redirect to :port */
static void host_rule(struct nlbuf *b, int family, const void *host, uint16_t port) {
  uint16_t one = htons(1), all = htons(65535);
  unsigned alen = family == AF_INET ? 4 : 16;
  struct rule r;
  rule_begin(&r, b, "redirect_out");
  e_daddr(b, family, alen);
  e_cmp(b, NFT_CMP_EQ, host, alen);
  l4proto_is(b, IPPROTO_TCP);
  e_dport(b, NFT_REG_1);
  e_cmp(b, NFT_CMP_GTE, &one, 2);
  e_cmp(b, NFT_CMP_LTE, &all, 2);
  e_redirect(b, port);
  rule_end(&r);
}

static void redirect_rules(struct nlbuf *b, const struct awf_nft_spec *spec,
                           const struct in_addr *host4, const struct in6_addr *host6,
                           uint32_t *set_id) {
  static const char ch[] = "redirect_out";
  struct rule r;
  uint16_t dns = htons(53);
  static const uint8_t l4[] = {IPPROTO_UDP, IPPROTO_TCP};
  for (size_t i = 0; i < sizeof(l4); i++) { /* udp, tcp dport 53 redirect to :dns */
    rule_begin(&r, b, ch);
    l4proto_is(b, l4[i]);
    e_dport(b, NFT_REG_1);
    e_cmp(b, NFT_CMP_EQ, &dns, 2);
    e_redirect(b, spec->dns_port);
    rule_end(&r);
  }
  if (host4)
    host_rule(b, AF_INET, host4, spec->transparent_port);
  if (host6)
    host_rule(b, AF_INET6, host6, spec->transparent_port);
  loopback_rules(b, ch, NFT_RETURN);
  /* tcp dport { PORTS } redirect to :transparent */
  bool as_set = port_ranges(spec->tcp_ports) > 1;
  uint32_t id = *set_id;
  if (as_set)
    tcp_dport_set(b, spec->tcp_ports, (*set_id)++);
  rule_begin(&r, b, ch);
  l4proto_is(b, IPPROTO_TCP);
  e_dport(b, NFT_REG_1);
  if (as_set)
    e_lookup(b, ANON_SET, id, false);
  else
    tcp_dport_cmp(b, spec->tcp_ports);
  e_redirect(b, spec->transparent_port);
  rule_end(&r);
}

/* meta l4proto { tcp, udp } ip[6] daddr . meta l4proto . th dport != @SET
 *   add @SET { ip[6] daddr . meta l4proto . th dport } limit ... log group G */
static void refused_rule(struct nlbuf *b, int family, const char *name, uint32_t named_id,
                         uint16_t group, uint32_t *set_id) {
  unsigned alen = family == AF_INET ? 4 : 16;
  uint32_t anon = (*set_id)++;
  l4proto_set(b, anon);
  struct rule r;
  rule_begin(&r, b, "filter_out");
  e_meta(b, NFT_META_L4PROTO, NFT_REG_1);
  e_lookup(b, ANON_SET, anon, false);
  e_daddr(b, family, alen);
  for (int pass = 0; pass < 2; pass++) {
    if (pass)
      e_payload(b, NFT_REG_1, NFT_PAYLOAD_NETWORK_HEADER, family == AF_INET ? 16 : 24, alen);
    e_meta(b, NFT_META_L4PROTO, concat_reg(alen / 4));
    e_dport(b, concat_reg(alen / 4 + 1));
    if (pass)
      e_dynset_add(b, name, named_id);
    else
      e_lookup(b, name, named_id, true);
  }
  e_limit_log(b, 200, 400, group);
  rule_end(&r);
}

static void filter_rules(struct nlbuf *b, const struct awf_nft_spec *spec, uint32_t *set_id) {
  static const char ch[] = "filter_out";
  struct rule r;
  rule_begin(&r, b, ch);                 /* ct state established,related accept */
  e_ct_bits(b, NFT_CT_STATE, 0x2 | 0x4); /* NF_CT_STATE_BIT(IP_CT_ESTABLISHED, _RELATED) */
  e_verdict(b, NF_ACCEPT);
  rule_end(&r);
  rule_begin(&r, b, ch); /* ct status dnat accept */
  e_ct_bits(b, NFT_CT_STATUS, 1u << 5 /* IPS_DST_NAT_BIT */);
  e_verdict(b, NF_ACCEPT);
  rule_end(&r);
  loopback_rules(b, ch, NF_ACCEPT);
  if (spec->nflog_group) {
    refused_rule(b, AF_INET, "refused4", 1, spec->nflog_group, set_id);
    refused_rule(b, AF_INET6, "refused6", 2, spec->nflog_group, set_id);
    uint32_t anon = (*set_id)++; /* meta l4proto != { tcp, udp } limit ... log */
    l4proto_set(b, anon);
    rule_begin(&r, b, ch);
    e_meta(b, NFT_META_L4PROTO, NFT_REG_1);
    e_lookup(b, ANON_SET, anon, true);
    e_limit_log(b, 20, 50, spec->nflog_group);
    rule_end(&r);
  }
  rule_begin(&r, b, ch); /* meta l4proto tcp reject with tcp reset */
  l4proto_is(b, IPPROTO_TCP);
  size_t e = expr_begin(b, "reject");
  attr_be32(b, NFTA_REJECT_TYPE, NFT_REJECT_TCP_RST);
  uint8_t code = 0;
  attr(b, NFTA_REJECT_ICMP_CODE, &code, 1);
  expr_end(b, e);
  rule_end(&r);
}

int awf_nft_batch(const struct awf_nft_spec *spec, uint32_t seq0, uint8_t **out, size_t *len,
                  unsigned *nmsg) {
  *out = NULL;
  *len = 0;
  *nmsg = 0;
  struct in_addr h4;
  struct in6_addr h6;
  if (!spec->tcp_ports || !spec->transparent_port || !spec->dns_port ||
      port_ranges(spec->tcp_ports) == 0)
    return -EINVAL;
  if ((spec->host_alias4 && inet_pton(AF_INET, spec->host_alias4, &h4) != 1) ||
      (spec->host_alias6 && inet_pton(AF_INET6, spec->host_alias6, &h6) != 1))
    return -EINVAL;
  struct nlbuf b = {.seq = seq0};
  size_t m = msg_begin(&b, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
  msg_end(&b, m);
  m = obj_begin(&b, NFT_MSG_NEWTABLE, 0);
  attr_str(&b, NFTA_TABLE_NAME, AWF_NFT_TABLE);
  attr_be32(&b, NFTA_TABLE_FLAGS, 0);
  msg_end(&b, m);
  chain(&b, "redirect_out", "nat", -100, NF_ACCEPT);
  chain(&b, "filter_out", "filter", 0, NF_DROP);
  uint32_t set_id = 1;
  if (spec->nflog_group) {
    /* type ipv{4,6}_addr . inet_proto . inet_service; size 4096;
     * flags dynamic,timeout; timeout 10s */
    struct set_def s4 = {"refused4",
                         set_id++,
                         NFT_SET_TIMEOUT | NFT_SET_EVAL,
                         CONCAT_TYPE(TYPE_IPV4_ADDR, TYPE_INET_PROTO, TYPE_INET_SERVICE),
                         12,
                         4096,
                         10000,
                         udata_concat,
                         sizeof(udata_concat)};
    struct set_def s6 = s4;
    s6.name = "refused6";
    s6.id = set_id++;
    s6.key_type = CONCAT_TYPE(TYPE_IPV6_ADDR, TYPE_INET_PROTO, TYPE_INET_SERVICE);
    s6.key_len = 24;
    set(&b, &s4);
    set(&b, &s6);
  }
  redirect_rules(&b, spec, spec->host_alias4 ? &h4 : NULL, spec->host_alias6 ? &h6 : NULL,
                 &set_id);
  filter_rules(&b, spec, &set_id);
  m = msg_begin(&b, NFNL_MSG_BATCH_END, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
  msg_end(&b, m);
  if (b.err) {
    free(b.p);
    return b.err;
  }
  *out = b.p;
  *len = b.len;
  *nmsg = b.nmsg;
  return 0;
}

/* Wait for the acknowledgement of every message from first to last: the
 * first refusal's errno, or 0. */
static int read_acks(int fd, uint32_t first, uint32_t last) {
  uint32_t acked = 0, want = last - first + 1;
  int rc = 0;
  while (acked < want) {
    union {
      char bytes[8192];
      struct nlmsghdr align;
    } in;
    ssize_t n;
    do
      n = recv(fd, in.bytes, sizeof(in.bytes), 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
      return rc ? rc : -errno;
    size_t left = (size_t)n;
    for (struct nlmsghdr *h = &in.align; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq < first || h->nlmsg_seq > last)
        continue;
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
        return -EPROTO;
      const struct nlmsgerr *e = NLMSG_DATA(h);
      if (e->error && !rc)
        rc = e->error;
      acked++;
      /* A refused batch is aborted: the messages after it get no ack. */
      if (rc && h->nlmsg_seq == last)
        return rc;
    }
    if (rc) {
      /* Drain what else the kernel queued, without waiting for more. */
      while (recv(fd, in.bytes, sizeof(in.bytes), MSG_DONTWAIT) > 0) {
      }
      return rc;
    }
  }
  return rc;
}

int awf_nft_netlink_apply(const struct awf_nft_spec *spec) {
  uint8_t *batch;
  size_t len;
  unsigned nmsg;
  const uint32_t seq0 = 1; /* the batch's BEGIN; the acked messages follow it */
  int rc = awf_nft_batch(spec, seq0, &batch, &len, &nmsg);
  if (rc < 0)
    return rc;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (fd < 0 || bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
    rc = -errno;
    goto out;
  }
  /* The batch goes in one send and a reply comes for each message: size
   * both buffers for it (root may pass the sysctl caps with _FORCE). */
  int one = 1; /* acknowledgements without a copy of the request */
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  int sz = (int)(len < (1u << 30) ? len : (1u << 30));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
  sz = (int)(nmsg < 65536 ? nmsg : 65536) * 512;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t n;
  do
    n = sendto(fd, batch, len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
  while (n < 0 && errno == EINTR);
  if (n < 0)
    rc = -errno;
  else if ((size_t)n != len)
    rc = -EMSGSIZE;
  else
    rc = read_acks(fd, seq0 + 1, seq0 + nmsg);
out:
  if (fd >= 0)
    close(fd);
  free(batch);
  return rc;
}
