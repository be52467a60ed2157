/* addr_policy.c: which destination addresses may be dialled.
 *
 * The policy is the IANA IPv4 and IPv6 Special-Purpose Address Registries
 * (RFC 6890 and later), every row of both, as they stood in October 2025
 * (IPv6 up to RFC 9780's 100:0:0:1::/64 and RFC 9665's 2001:1::3, IPv4 up to
 * RFC 8880's 192.0.0.170-171 and RFC 6751's 192.88.99.2; re-check against
 * https://www.iana.org/assignments/iana-ipv4-special-registry/ and
 * .../iana-ipv6-special-registry/ when they change). An address inside a row
 * whose "Globally Reachable" is not True (False, or N/A as for the
 * deprecated and relay rows) is denied; the most specific row wins, so
 * 192.0.0.9/32 (PCP anycast, globally reachable) is admitted inside the
 * denied 192.0.0.0/24. Added to the registries' rows, because they are no
 * unicast destination: multicast 224/4 and ff00::/8, deprecated site-local
 * fec0::/10, and IPv6 outside 2000::/3 (unassigned or reserved in the IPv6
 * Address Space registry). The name returned is the row's.
 *
 * IPv6 forms that carry an IPv4 address are judged as that address, as a
 * stack, a translator or a relay delivers them there:
 *   ::ffff:0:0/96 (mapped), ::/96 (compatible, deprecated), ::ffff:0:0:0/96
 *   (translated, RFC 2765), 64:ff9b::/96 (NAT64): the last 32 bits.
 *   64:ff9b:1::/48 (local-use NAT64, RFC 8215): RFC 6052's format for a
 *   /48 prefix (IPv4 in bits 48-63 and 72-87 around the zero u octet, zero
 *   suffix), or the /96 subdivision 64:ff9b:1::/96 (IPv4 last). An operator
 *   may subdivide the /48 otherwise (/56, /64, another /96), and the IPv4
 *   of such an address can't be located without knowing its prefix: it is
 *   denied ("nat64_local"); an IPv6 --allow-destination-cidrs entry for the
 *   operator's prefix admits it.
 * 6to4 (2002::/16, IPv4 in bits 16-47) and Teredo (2001::/32: server IPv4 in
 * bits 32-63, client IPv4 inverted in bits 96-127) are denied outright: the
 * registry gives them no global reachability (N/A), their relays are gone
 * (RFC 7526 deprecated 192.88.99.0/24), and what they reach is an IPv4
 * address of the address owner's choosing. The reason is the embedded IPv4's
 * range when that is not global, else "6to4" / "teredo".
 *
 * --allow-destination-cidrs entries override all of this. An IPv4 CIDR also
 * admits the mapped, compatible, translated and NAT64 forms of its
 * addresses (not 6to4 or Teredo: those need an IPv6 CIDR). A CIDR whose
 * address has host bits set ("10.0.0.1/8") is accepted as the network that
 * contains it: only the first `prefix` bits are ever compared.
 * The allow list and the tables are scanned linearly: a few dozen rows. */
#include "addr_policy.h"

#include "hostname.h"

#include <arpa/inet.h>
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

/* How an IPv6 row carries an IPv4 address. */
enum embed { E_NONE, E_LAST32, E_NAT64_LOCAL, E_6TO4, E_TEREDO };

struct row4 {
  uint32_t net;
  uint8_t prefix;
  bool global; /* the registry's "Globally Reachable" is True */
  const char *name;
};

struct row6 {
  uint8_t net[16];
  uint8_t prefix;
  bool global;
  uint8_t embed; /* enum embed */
  const char *name;
};

/* IANA IPv4 Special-Purpose Address Registry, in its order. */
static const struct row4 rows4[] = {
    {0x00000000u, 8, false, "this_network"},               /* RFC 791 */
    {0x00000000u, 32, false, "this_host"},                 /* RFC 1122 */
    {0x0a000000u, 8, false, "private_use"},                /* RFC 1918 */
    {0x64400000u, 10, false, "shared_address_space"},      /* RFC 6598, CGNAT */
    {0x7f000000u, 8, false, "loopback"},                   /* RFC 1122 */
    {0xa9fe0000u, 16, false, "link_local"},                /* RFC 3927 */
    {0xac100000u, 12, false, "private_use"},               /* RFC 1918 */
    {0xc0000000u, 24, false, "ietf_protocol_assignments"}, /* RFC 6890 */
    {0xc0000000u, 29, false, "ipv4_service_continuity"},   /* RFC 7335 */
    {0xc0000008u, 32, false, "ipv4_dummy"},                /* RFC 7600 */
    {0xc0000009u, 32, true, "pcp_anycast"},                /* RFC 7723 */
    {0xc000000au, 32, true, "turn_anycast"},               /* RFC 8155 */
    {0xc00000aau, 32, false, "nat64_discovery"},           /* RFC 8880 */
    {0xc00000abu, 32, false, "nat64_discovery"},           /* RFC 8880 */
    {0xc0000200u, 24, false, "documentation"},             /* RFC 5737 */
    {0xc01fc400u, 24, true, "as112_v4"},                   /* RFC 7535 */
    {0xc034c100u, 24, true, "amt"},                        /* RFC 7450 */
    {0xc0586300u, 24, false, "deprecated_6to4_relay"},     /* RFC 7526: N/A */
    {0xc0586302u, 32, false, "6a44_relay"},                /* RFC 6751 */
    {0xc0a80000u, 16, false, "private_use"},               /* RFC 1918 */
    {0xc0af3000u, 24, true, "as112_direct_delegation"},    /* RFC 7534 */
    {0xc6120000u, 15, false, "benchmarking"},              /* RFC 2544 */
    {0xc6336400u, 24, false, "documentation"},             /* RFC 5737 */
    {0xcb007100u, 24, false, "documentation"},             /* RFC 5737 */
    {0xf0000000u, 4, false, "reserved"},                   /* RFC 1112 */
    {0xffffffffu, 32, false, "limited_broadcast"},         /* RFC 919, 8190 */
    /* Not in the registry: no unicast destination. */
    {0xe0000000u, 4, false, "multicast"}, /* RFC 5771 */
};

/* IANA IPv6 Special-Purpose Address Registry, in its order. */
static const struct row6 rows6[] = {
    {{[15] = 1}, 128, false, E_NONE, "loopback"},                     /* RFC 4291 */
    {{0}, 128, false, E_NONE, "unspecified"},                         /* RFC 4291 */
    {{[10] = 0xff, [11] = 0xff}, 96, false, E_LAST32, "ipv4_mapped"}, /* RFC 4291 */
    {{0x00, 0x64, 0xff, 0x9b}, 96, true, E_LAST32, "nat64"},          /* RFC 6052 */
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01},
     48,
     false,
     E_NAT64_LOCAL,
     "nat64_local"},                                                         /* RFC 8215 */
    {{0x01, 0x00}, 64, false, E_NONE, "discard_only"},                       /* RFC 6666 */
    {{0x01, 0x00, [7] = 1}, 64, false, E_NONE, "dummy_prefix"},              /* RFC 9780 */
    {{0x20, 0x01}, 23, false, E_NONE, "ietf_protocol_assignments"},          /* RFC 2928 */
    {{0x20, 0x01}, 32, false, E_TEREDO, "teredo"},                           /* RFC 4380: N/A */
    {{0x20, 0x01, 0x00, 0x01, [15] = 1}, 128, true, E_NONE, "pcp_anycast"},  /* RFC 7723 */
    {{0x20, 0x01, 0x00, 0x01, [15] = 2}, 128, true, E_NONE, "turn_anycast"}, /* RFC 8155 */
    {{0x20, 0x01, 0x00, 0x01, [15] = 3},
     128,
     true,
     E_NONE,
     "dns_sd_srp_anycast"},                                               /* RFC 9665 */
    {{0x20, 0x01, 0x00, 0x02}, 48, false, E_NONE, "benchmarking"},        /* RFC 5180 */
    {{0x20, 0x01, 0x00, 0x03}, 32, true, E_NONE, "amt"},                  /* RFC 7450 */
    {{0x20, 0x01, 0x00, 0x04, 0x01, 0x12}, 48, true, E_NONE, "as112_v6"}, /* RFC 7535 */
    {{0x20, 0x01, 0x00, 0x10}, 28, false, E_NONE, "deprecated_orchid"},   /* RFC 4843: N/A */
    {{0x20, 0x01, 0x00, 0x20}, 28, true, E_NONE, "orchid_v2"},            /* RFC 7343 */
    {{0x20, 0x01, 0x00, 0x30}, 28, true, E_NONE, "drone_remote_id"},      /* RFC 9374 */
    {{0x20, 0x01, 0x0d, 0xb8}, 32, false, E_NONE, "documentation"},       /* RFC 3849 */
    {{0x20, 0x02}, 16, false, E_6TO4, "6to4"},                            /* RFC 3056: N/A */
    {{0x26, 0x20, 0x00, 0x4f, 0x80, 0x00},
     48,
     true,
     E_NONE,
     "as112_direct_delegation"},                        /* RFC 7534 */
    {{0x3f, 0xff}, 20, false, E_NONE, "documentation"}, /* RFC 9637 */
    {{0x5f, 0x00}, 16, false, E_NONE, "srv6_sid"},      /* RFC 9602 */
    {{0xfc}, 7, false, E_NONE, "unique_local"},         /* RFC 4193 */
    {{0xfe, 0x80}, 10, false, E_NONE, "link_local"},    /* RFC 4291 */
    /* Not in the registry. */
    {{0xff}, 8, false, E_NONE, "multicast"},                            /* RFC 4291 */
    {{0xfe, 0xc0}, 10, false, E_NONE, "site_local"},                    /* RFC 3879 */
    {{0}, 96, false, E_LAST32, "ipv4_compatible"},                      /* RFC 4291 */
    {{[8] = 0xff, [9] = 0xff}, 96, false, E_LAST32, "ipv4_translated"}, /* RFC 2765 */
};

/* Does addr (len bytes) start with the first `prefix` bits of net? */
static bool prefix_match(const uint8_t *addr, const uint8_t *net, unsigned prefix) {
  unsigned full = prefix / 8, rest = prefix % 8;
  if (memcmp(addr, net, full) != 0)
    return false;
  if (rest == 0)
    return true;
  uint8_t mask = (uint8_t)(0xffu << (8 - rest));
  return ((addr[full] ^ net[full]) & mask) == 0;
}

static void put_be32(uint8_t out[4], uint32_t v) {
  out[0] = (uint8_t)(v >> 24);
  out[1] = (uint8_t)(v >> 16);
  out[2] = (uint8_t)(v >> 8);
  out[3] = (uint8_t)v;
}

/* The most specific row holding the address, or NULL. */
static const struct row4 *row_of4(const uint8_t a[4]) {
  const struct row4 *best = NULL;
  for (size_t i = 0; i < sizeof rows4 / sizeof rows4[0]; i++) {
    uint8_t net[4];
    put_be32(net, rows4[i].net);
    if (prefix_match(a, net, rows4[i].prefix) &&
        (best == NULL || rows4[i].prefix > best->prefix))
      best = &rows4[i];
  }
  return best;
}

static const struct row6 *row_of6(const uint8_t a[16]) {
  const struct row6 *best = NULL;
  for (size_t i = 0; i < sizeof rows6 / sizeof rows6[0]; i++)
    if (prefix_match(a, rows6[i].net, rows6[i].prefix) &&
        (best == NULL || rows6[i].prefix > best->prefix))
      best = &rows6[i];
  return best;
}

static bool all_zero(const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (b[i] != 0)
      return false;
  return true;
}

static bool allowed(const awf_addr_policy *p, int family, const uint8_t *a) {
  if (p == NULL)
    return false;
  for (size_t i = 0; i < p->n; i++)
    if (p->allow[i].family == family && prefix_match(a, p->allow[i].net, p->allow[i].prefix))
      return true;
  return false;
}

static const char *check4(const awf_addr_policy *p, const uint8_t a[4]) {
  if (allowed(p, AF_INET, a))
    return NULL;
  const struct row4 *r = row_of4(a);
  return r == NULL || r->global ? NULL : r->name;
}

/* 64:ff9b:1::/48 in the two layouts that can be told apart: RFC 6052's
 * format for a /48 prefix (IPv4 in bits 48-63 and 72-87, the u octet 64-71
 * and the suffix zero) and the /96 subdivision 64:ff9b:1::/96 (bits 48-95
 * zero, IPv4 last). An operator's other layouts can't be read without
 * knowing its prefix length: denied. */
static const char *check_nat64_local(const awf_addr_policy *p, const uint8_t a[16],
                                     const char *name) {
  uint8_t v4[4];
  if (all_zero(a + 6, 6))
    return check4(p, a + 12);
  if (a[8] == 0 && all_zero(a + 11, 5)) {
    v4[0] = a[6];
    v4[1] = a[7];
    v4[2] = a[9];
    v4[3] = a[10];
    return check4(p, v4);
  }
  return name;
}

static const char *check6(const awf_addr_policy *p, const uint8_t a[16]) {
  if (allowed(p, AF_INET6, a))
    return NULL;
  const struct row6 *r = row_of6(a);
  if (r == NULL) /* outside 2000::/3 nothing is global unicast */
    return (a[0] & 0xe0) == 0x20 ? NULL : "reserved";
  const char *v = NULL;
  uint8_t v4[4];
  switch ((enum embed)r->embed) {
  case E_NONE: break;
  case E_LAST32: return check4(p, a + 12);
  case E_NAT64_LOCAL: return check_nat64_local(p, a, r->name);
  case E_6TO4: v = check4(p, a + 2); break;
  case E_TEREDO:
    v = check4(p, a + 4); /* the server */
    for (size_t i = 0; i < 4; i++)
      v4[i] = (uint8_t)~a[12 + i]; /* the client, inverted */
    if (v == NULL)
      v = check4(p, v4);
    break;
  }
  if (v != NULL)
    return v;
  return r->global ? NULL : r->name;
}

const char *awf_addr_policy_check(const awf_addr_policy *p, const struct sockaddr *sa) {
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

bool awf_addr_policy_listed(const awf_addr_policy *p, const struct sockaddr *sa) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (sa == NULL)
    return false;
  if (sa->sa_family == AF_INET) {
    struct sockaddr_in sin;
    memcpy(&sin, sa, sizeof sin);
    return allowed(p, AF_INET, (const uint8_t *)&sin.sin_addr);
  }
  if (sa->sa_family != AF_INET6)
    return false;
  struct sockaddr_in6 sin6;
  memcpy(&sin6, sa, sizeof sin6);
  const uint8_t *a = sin6.sin6_addr.s6_addr;
  if (memcmp(a, mapped, sizeof mapped) == 0)
    return allowed(p, AF_INET, a + 12);
  return allowed(p, AF_INET6, a);
}

size_t awf_addr_policy_format(const awf_addr_policy *p, char *buf, size_t len) {
  size_t need = 0;
  if (len > 0)
    buf[0] = '\0';
  for (size_t i = 0; p != NULL && i < p->n; i++) {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(p->allow[i].family, p->allow[i].net, text, sizeof text);
    int k = snprintf(need < len ? buf + need : NULL, need < len ? len - need : 0, "%s%s/%u",
                     i ? "," : "", text, p->allow[i].prefix);
    need += k > 0 ? (size_t)k : 0;
  }
  if (need == 0) {
    int k = snprintf(buf, len, "none");
    need = k > 0 ? (size_t)k : 0;
  }
  return need;
}

/* ---- --allow-destination-cidrs ----------------------------------------- */

/* "addr" or "addr/len", strict: the address as awf_ip_literal_parse() takes
 * it, the length in decimal without leading zeros and within the family. */
static int parse_cidr(const char *s, size_t n, struct cidr *c, const char **why) {
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
static int each_cidr(awf_addr_policy *p, const char *list, bool add, char *err, size_t errlen) {
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
          snprintf(err, errlen, "invalid CIDR '%.*s': %s",
                   (int)(n > CIDR_TEXT_MAX ? CIDR_TEXT_MAX : n), e, why);
        return -EINVAL;
      }
    }
    if (end == NULL)
      return 0;
    s = end + 1;
  }
}

int awf_addr_policy_allow_cidrs(awf_addr_policy *p, const char *list, char *err,
                                size_t errlen) {
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

void awf_addr_policy_free(awf_addr_policy *p) {
  if (p == NULL)
    return;
  free(p->allow);
  free(p);
}
