/* Unit tests for sandbox/nflog.c's parser, over hand-built netlink messages
 * (the kernel's side is covered end to end in tests/e2e). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <netinet/in.h>

#include "nflog.h"

struct msgbuf {
  uint8_t b[4096];
  size_t len;
};

static void put(struct msgbuf *m, const void *p, size_t n) {
  assert_true(m->len + n <= sizeof(m->b));
  memcpy(m->b + m->len, p, n);
  m->len += n;
}

static void pad_to(struct msgbuf *m, size_t align) {
  while (m->len % align)
    m->b[m->len++] = 0;
}

static void attr(struct msgbuf *m, uint16_t type, const void *data, size_t n) {
  struct nlattr a = {.nla_len = (uint16_t)(NLA_HDRLEN + n), .nla_type = type};
  put(m, &a, sizeof(a));
  put(m, data, n);
  pad_to(m, NLA_ALIGNTO);
}

/* One NFLOG packet message holding `payload`, after a prefix attribute. */
static void packet_msg(struct msgbuf *m, uint16_t type, const uint8_t *payload, size_t n) {
  size_t start = m->len;
  struct nlmsghdr nh = {.nlmsg_type = type};
  put(m, &nh, sizeof(nh));
  struct nfgenmsg g = {.nfgen_family = AF_INET, .version = NFNETLINK_V0};
  put(m, &g, sizeof(g));
  attr(m, NFULA_PREFIX, "awf", 4);
  attr(m, NFULA_PAYLOAD, payload, n);
  ((struct nlmsghdr *)(m->b + start))->nlmsg_len = (uint32_t)(m->len - start);
}

#define PKT_TYPE ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET)

static size_t ipv4_tcp(uint8_t *p, const char *dst, uint16_t port, uint8_t proto) {
  memset(p, 0, 24);
  p[0] = 0x45;
  p[9] = proto;
  inet_pton(AF_INET, dst, p + 16);
  p[22] = (uint8_t)(port >> 8);
  p[23] = (uint8_t)port;
  return 24;
}

static size_t ipv6_udp(uint8_t *p, const char *dst, uint16_t port) {
  memset(p, 0, 44);
  p[0] = 0x60;
  p[6] = IPPROTO_UDP;
  inet_pton(AF_INET6, dst, p + 24);
  p[42] = (uint8_t)(port >> 8);
  p[43] = (uint8_t)port;
  return 44;
}

static void test_parse_v4_tcp_and_v6_udp(void **state) {
  (void)state;
  struct msgbuf m = {0};
  uint8_t p4[64], p6[64];
  packet_msg(&m, PKT_TYPE, p4, ipv4_tcp(p4, "198.51.100.10", 22, IPPROTO_TCP));
  /* not a packet: skipped */
  packet_msg(&m, (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG, p4, 24);
  packet_msg(&m, PKT_TYPE, p6, ipv6_udp(p6, "2001:db8::1", 443));
  struct awf_nflog_packet out[4];
  assert_int_equal(awf_nflog_parse(m.b, m.len, out, 4), 2);
  char text[64];
  const struct sockaddr_in *a = (const struct sockaddr_in *)&out[0].dst;
  assert_int_equal(out[0].proto, IPPROTO_TCP);
  assert_int_equal(a->sin_family, AF_INET);
  assert_int_equal(ntohs(a->sin_port), 22);
  assert_string_equal(inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text)), "198.51.100.10");
  const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&out[1].dst;
  assert_int_equal(out[1].proto, IPPROTO_UDP);
  assert_int_equal(b->sin6_family, AF_INET6);
  assert_int_equal(ntohs(b->sin6_port), 443);
  assert_string_equal(inet_ntop(AF_INET6, &b->sin6_addr, text, sizeof(text)), "2001:db8::1");
  assert_string_equal(awf_nflog_event(out[0].proto), "tcp");
  assert_string_equal(awf_nflog_event(out[1].proto), "udp");
  assert_string_equal(awf_nflog_event(IPPROTO_ICMPV6), "icmp");
  assert_string_equal(awf_nflog_event(IPPROTO_SCTP), "ip");
  /* max bounds what is written */
  assert_int_equal(awf_nflog_parse(m.b, m.len, out, 1), 1);
}

static void test_parse_icmp_has_no_port_and_fragments(void **state) {
  (void)state;
  struct msgbuf m = {0};
  uint8_t p[64];
  packet_msg(&m, PKT_TYPE, p, ipv4_tcp(p, "192.0.2.1", 0x0800, IPPROTO_ICMP));
  size_t n = ipv4_tcp(p + 32, "192.0.2.2", 80, IPPROTO_TCP);
  p[32 + 6] = 0x00, p[32 + 7] = 0x10; /* fragment offset 16: no TCP header */
  packet_msg(&m, PKT_TYPE, p + 32, n);
  struct awf_nflog_packet out[2];
  assert_int_equal(awf_nflog_parse(m.b, m.len, out, 2), 2);
  assert_int_equal(out[0].proto, IPPROTO_ICMP);
  assert_int_equal(((struct sockaddr_in *)&out[0].dst)->sin_port, 0);
  assert_int_equal(((struct sockaddr_in *)&out[1].dst)->sin_port, 0);
}

static void test_parse_hostile_input(void **state) {
  (void)state;
  struct awf_nflog_packet out[2];
  uint8_t p[64];
  struct msgbuf m = {0};
  packet_msg(&m, PKT_TYPE, p, ipv4_tcp(p, "198.51.100.10", 22, IPPROTO_TCP));
  /* every truncation of a well-formed message is refused or skipped, never read past */
  for (size_t cut = 0; cut < m.len; cut++) {
    int n = awf_nflog_parse(m.b, cut, out, 2);
    assert_true(n == -EBADMSG || n == 0);
  }
  /* a netlink length beyond the buffer */
  struct msgbuf bad = m;
  ((struct nlmsghdr *)bad.b)->nlmsg_len = (uint32_t)(m.len + 100);
  assert_int_equal(awf_nflog_parse(bad.b, bad.len, out, 2), -EBADMSG);
  /* an attribute length beyond its message: skipped, not read */
  bad = m;
  struct nlattr *a = (struct nlattr *)(bad.b + NLMSG_HDRLEN + sizeof(struct nfgenmsg));
  a->nla_len = 0xffff;
  assert_int_equal(awf_nflog_parse(bad.b, bad.len, out, 2), 0);
  /* payloads that are not IP, or too short for their header */
  struct msgbuf junk = {0};
  uint8_t v9[40] = {0x90}, short4[19] = {0x45}, ihl_big[24] = {0x4f};
  packet_msg(&junk, PKT_TYPE, v9, sizeof(v9));
  packet_msg(&junk, PKT_TYPE, short4, sizeof(short4));
  packet_msg(&junk, PKT_TYPE, ihl_big, sizeof(ihl_big));
  packet_msg(&junk, PKT_TYPE, v9, 0);
  assert_int_equal(awf_nflog_parse(junk.b, junk.len, out, 2), 0);
  assert_int_equal(awf_nflog_parse(NULL, 0, out, 2), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_v4_tcp_and_v6_udp),
      cmocka_unit_test(test_parse_icmp_has_no_port_and_fragments),
      cmocka_unit_test(test_parse_hostile_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
