/* addr_policy.c: which destination addresses may be dialled.
 *
 * Denied ranges (the name returned is in quotes):
 *   IPv4: 0.0.0.0/8 "unspecified", 10/8 172.16/12 192.168/16 "rfc1918",
 *         100.64/10 "cgnat", 127/8 "loopback", 169.254/16 "link_local",
 *         192.0.0.0/24 "ietf_protocol", 192.0.2/24 198.51.100/24 203.0.113/24
 *         "documentation", 198.18/15 "benchmarking", 224/4 "multicast",
 *         255.255.255.255 "broadcast", the rest of 240/4 "reserved".
 *   IPv6: :: "unspecified", ::1 "loopback", fe80::/10 "link_local",
 *         fec0::/10 "site_local" (deprecated, still routed inside some
 *         networks), fc00::/7 "ula", ff00::/8 "multicast", 2001:db8::/32
 *         "documentation", 100::/64 "discard".
 *   IPv6 forms that embed an IPv4 address (mapped ::ffff:0:0/96, compatible
 *   ::/96, translated ::ffff:0:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16) are
 *   judged as that IPv4 address: a stack, a NAT64 gateway or a 6to4 relay
 *   delivers them there.
 * Documentation, benchmarking and protocol-assignment ranges are never a
 * legitimate public destination, and some networks use them internally, so
 * they are denied as well.
 *
 * --allow-destination-cidrs entries override all of this. An IPv4 CIDR also
 * admits the embedded IPv6 forms of its addresses. A CIDR whose address has
 * host bits set ("10.0.0.1/8") is accepted as the network that contains it:
 * only the first `prefix` bits are ever compared.
 * The allow list is scanned linearly: it holds a handful of entries. */
#include "addr_policy.h"

#include "hostname.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CIDR_TEXT_MAX 64 /* an IPv6 address, '/', three digits, with room */

struct cidr {
  int family; /* AF_INET or AF_INET6 */
  unsigned prefix;
  uint8_t net[16]; /* IPv4 in the first 4 bytes */
};

struct awf_addr_policy {
  struct cidr *allow;
  size_t n, cap;
};

struct range4 {
  uint32_t net;
  unsigned prefix;
  const char *name;
};

struct range6 {
  uint8_t net[16];
  unsigned prefix;
  const char *name;
};

/* First match wins: broadcast is listed before the 240/4 that contains it. */
static const struct range4 deny4[] = {
    {0x00000000u, 8, "unspecified"},    {0x0a000000u, 8, "rfc1918"},
    {0x64400000u, 10, "cgnat"},         {0x7f000000u, 8, "loopback"},
    {0xa9fe0000u, 16, "link_local"},    {0xac100000u, 12, "rfc1918"},
    {0xc0000000u, 24, "ietf_protocol"}, {0xc0000200u, 24, "documentation"},
    {0xc0a80000u, 16, "rfc1918"},       {0xc6120000u, 15, "benchmarking"},
    {0xc6336400u, 24, "documentation"}, {0xcb007100u, 24, "documentation"},
    {0xe0000000u, 4, "multicast"},      {0xffffffffu, 32, "broadcast"},
    {0xf0000000u, 4, "reserved"},
};

static const struct range6 deny6[] = {
    {{0}, 128, "unspecified"},
    {{[15] = 1}, 128, "loopback"},
    {{0xfe, 0x80}, 10, "link_local"},
    {{0xfe, 0xc0}, 10, "site_local"},
    {{0xfc}, 7, "ula"},
    {{0xff}, 8, "multicast"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation"},
    {{0x01, 0x00}, 64, "discard"},
};

/* Does addr (len bytes) start with the first `prefix` bits of net? */
static bool prefix_match(const uint8_t *addr, const uint8_t *net, unsigned prefix)
{
  unsigned full = prefix / 8, rest = prefix % 8;
  if (memcmp(addr, net, full) != 0)
    return false;
  if (rest == 0)
    return true;
  uint8_t mask = (uint8_t)(0xffu << (8 - rest));
  return ((addr[full] ^ net[full]) & mask) == 0;
}

static void put_be32(uint8_t out[4], uint32_t v)
{
  out[0] = (uint8_t)(v >> 24);
  out[1] = (uint8_t)(v >> 16);
  out[2] = (uint8_t)(v >> 8);
  out[3] = (uint8_t)v;
}

static const char *classify4(const uint8_t a[4])
{
  for (size_t i = 0; i < sizeof deny4 / sizeof deny4[0]; i++) {
    uint8_t net[4];
    put_be32(net, deny4[i].net);
    if (prefix_match(a, net, deny4[i].prefix))
      return deny4[i].name;
  }
  return NULL;
}

static const char *classify6(const uint8_t a[16])
{
  for (size_t i = 0; i < sizeof deny6 / sizeof deny6[0]; i++)
    if (prefix_match(a, deny6[i].net, deny6[i].prefix))
      return deny6[i].name;
  return NULL;
}

/* The IPv4 address an IPv6 address carries, for the forms that deliver to it.
 * Call only after :: and ::1 are handled (both lie inside ::/96). */
static bool embedded_v4(const uint8_t a[16], uint8_t v4[4])
{
  static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
  static const uint8_t compat[12] = {0};
  static const uint8_t translated[12] = {[8] = 0xff, [9] = 0xff};
  static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
  if (memcmp(a, mapped, 12) == 0 || memcmp(a, compat, 12) == 0 ||
      memcmp(a, translated, 12) == 0 || memcmp(a, nat64, 12) == 0) {
    memcpy(v4, a + 12, 4);
    return true;
  }
  if (a[0] == 0x20 && a[1] == 0x02) { /* 6to4: 2002:AABB:CCDD::/48 */
    memcpy(v4, a + 2, 4);
    return true;
  }
  return false;
}

static bool allowed(const awf_addr_policy *p, int family, const uint8_t *a)
{
  if (p == NULL)
    return false;
  for (size_t i = 0; i < p->n; i++)
    if (p->allow[i].family == family && prefix_match(a, p->allow[i].net, p->allow[i].prefix))
      return true;
  return false;
}

static const char *check4(const awf_addr_policy *p, const uint8_t a[4])
{
  return allowed(p, AF_INET, a) ? NULL : classify4(a);
}

static const char *check6(const awf_addr_policy *p, const uint8_t a[16])
{
  uint8_t v4[4];
  if (allowed(p, AF_INET6, a))
    return NULL;
  const char *name = classify6(a);
  if (name != NULL)
    return name;
  if (embedded_v4(a, v4))
    return check4(p, v4);
  return NULL;
}

const char *awf_addr_policy_check(const awf_addr_policy *p, const struct sockaddr *sa)
{
  if (sa == NULL)
    return "unsupported_family";
  /* Copy out of the caller's sockaddr: it may be a plain struct sockaddr
   * cast from storage of any alignment. */
  if (sa->sa_family == AF_INET) {
    struct sockaddr_in sin;
    memcpy(&sin, sa, sizeof sin);
    return check4(p, (const uint8_t *)&sin.sin_addr);
  }
  if (sa->sa_family == AF_INET6) {
    struct sockaddr_in6 sin6;
    memcpy(&sin6, sa, sizeof sin6);
    return check6(p, sin6.sin6_addr.s6_addr);
  }
  return "unsupported_family";
}

/* ---- --allow-destination-cidrs ----------------------------------------- */

/* "addr" or "addr/len", strict: the address as awf_ip_literal_parse() takes
 * it, the length in decimal without leading zeros and within the family. */
static int parse_cidr(const char *s, size_t n, struct cidr *c, const char **why)
{
  struct sockaddr_storage ss;
  const char *slash = memchr(s, '/', n);
  size_t alen = slash ? (size_t)(slash - s) : n;
  int family = awf_ip_literal_parse(s, alen, &ss);
  if (family == 0) {
    *why = "not an IPv4 or IPv6 address";
    return -EINVAL;
  }
  unsigned max = family == AF_INET ? 32 : 128;
  unsigned prefix = max;
  if (slash != NULL) {
    const char *d = slash + 1;
    size_t dn = n - alen - 1;
    if (dn == 0 || dn > 3 || (d[0] == '0' && dn > 1)) {
      *why = "bad prefix length";
      return -EINVAL;
    }
    prefix = 0;
    for (size_t i = 0; i < dn; i++) {
      if (d[i] < '0' || d[i] > '9') {
        *why = "bad prefix length";
        return -EINVAL;
      }
      prefix = prefix * 10 + (unsigned)(d[i] - '0');
    }
    if (prefix > max) {
      *why = family == AF_INET ? "prefix length over 32" : "prefix length over 128";
      return -EINVAL;
    }
  }
  memset(c, 0, sizeof *c);
  c->family = family;
  c->prefix = prefix;
  if (family == AF_INET) {
    struct sockaddr_in sin;
    memcpy(&sin, &ss, sizeof sin);
    memcpy(c->net, &sin.sin_addr, 4);
  } else {
    struct sockaddr_in6 sin6;
    memcpy(&sin6, &ss, sizeof sin6);
    memcpy(c->net, sin6.sin6_addr.s6_addr, 16);
  }
  return 0; /* host bits stay: prefix_match() never looks past the prefix */
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Walk the comma-separated entries; with `add` false only validate them, so
 * that a bad entry leaves the policy untouched. */
static int each_cidr(awf_addr_policy *p, const char *list, bool add, char *err, size_t errlen)
{
  const char *s = list;
  for (;;) {
    const char *end = strchr(s, ',');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    const char *e = s;
    while (n > 0 && is_space(e[0])) {
      e++;
      n--;
    }
    while (n > 0 && is_space(e[n - 1]))
      n--;
    if (n > 0) {
      struct cidr c;
      const char *why = NULL;
      if (n > CIDR_TEXT_MAX)
        why = "too long";
      else if (parse_cidr(e, n, &c, &why) == 0 && add)
        p->allow[p->n++] = c;
      if (why != NULL) {
        if (err != NULL && errlen > 0)
          snprintf(err, errlen, "invalid CIDR '%.*s': %s", (int)(n > CIDR_TEXT_MAX ? CIDR_TEXT_MAX : n),
                   e, why);
        return -EINVAL;
      }
    }
    if (end == NULL)
      return 0;
    s = end + 1;
  }
}

int awf_addr_policy_allow_cidrs(awf_addr_policy *p, const char *list, char *err, size_t errlen)
{
  if (p == NULL || list == NULL) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "invalid arguments");
    return -EINVAL;
  }
  int rc = each_cidr(p, list, false, err, errlen);
  if (rc < 0)
    return rc;
  /* Reserve room for every entry (an upper bound: one per comma) so that
   * the adding pass cannot fail half-way. */
  size_t want = p->n + 1;
  for (const char *c = list; *c; c++)
    want += *c == ',';
  if (want > p->cap) {
    struct cidr *na = realloc(p->allow, want * sizeof *na);
    if (na == NULL) {
      if (err != NULL && errlen > 0)
        snprintf(err, errlen, "out of memory");
      return -ENOMEM;
    }
    p->allow = na;
    p->cap = want;
  }
  return each_cidr(p, list, true, err, errlen);
}

awf_addr_policy *awf_addr_policy_new(void) { return calloc(1, sizeof(awf_addr_policy)); }

void awf_addr_policy_free(awf_addr_policy *p)
{
  if (p == NULL)
    return;
  free(p->allow);
  free(p);
}
