/* test_dns_msg.c: the DNS query parser against real dig queries and every
 * malformed class, and the response builder read back by an independent
 * decoder written here (it follows compression pointers, with loop
 * protection, so it checks what a resolver would see). Every parse runs on an
 * exact-size heap copy so ASan flags any read past the bytes given. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_msg.h"

/* Captured from dig 9.18 (Debian 12) against a UDP listener on 127.0.0.1:
 * `dig @127.0.0.1 -p PORT example.test` (EDNS 1232 with a cookie option;
 * dig sets RD and AD), the same with +noedns, and
 * `dig ... Example.TEST AAAA +dnssec` (DO bit, mixed case). */
static const uint8_t dig_edns[] = {
    0x99, 0x38, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x07, 0x65,
    0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00,
    0x0a, 0x00, 0x08, 0xeb, 0x5a, 0x51, 0x77, 0x36, 0x40, 0x3d, 0xde,
};
static const uint8_t dig_noedns[] = {
    0x8b, 0xf6, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78,
    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x01, 0x00, 0x01,
};
static const uint8_t dig_do_aaaa[] = {
    0x48, 0x49, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x07, 0x45,
    0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x04, 0x54, 0x45, 0x53, 0x54, 0x00, 0x00, 0x1c,
    0x00, 0x01, 0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x80, 0x00, 0x00, 0x0c, 0x00,
    0x0a, 0x00, 0x08, 0xe4, 0x72, 0x3e, 0xc2, 0x7c, 0x89, 0xf3, 0x06,
};
#define DIG_QUESTION_END 30 /* header + "example.test" + type + class */

/* ---- helpers ---- */

static int parse(const uint8_t *b, size_t n, struct awf_dns_query *q) {
  uint8_t *copy = malloc(n ? n : 1);
  assert_non_null(copy);
  if (n)
    memcpy(copy, b, n);
  int rc = awf_dns_parse_query(copy, n, q);
  free(copy);
  return rc;
}

struct pkt {
  uint8_t b[4096];
  size_t n;
};

static void p_u8(struct pkt *p, unsigned v) {
  assert_true(p->n < sizeof(p->b));
  p->b[p->n++] = (uint8_t)v;
}

static void p_u16(struct pkt *p, unsigned v) {
  p_u8(p, v >> 8);
  p_u8(p, v & 0xff);
}

static void p_u32(struct pkt *p, uint32_t v) {
  p_u16(p, v >> 16);
  p_u16(p, v & 0xffff);
}

static void p_raw(struct pkt *p, const void *d, size_t n) {
  assert_true(p->n + n <= sizeof(p->b));
  memcpy(p->b + p->n, d, n);
  p->n += n;
}

/* Labels as length-prefixed pieces: p_labels(p, "example", "test", NULL). */
static void p_labels(struct pkt *p, const char *first, ...) {
  va_list ap;
  va_start(ap, first);
  for (const char *l = first; l; l = va_arg(ap, const char *)) {
    p_u8(p, (unsigned)strlen(l));
    p_raw(p, l, strlen(l));
  }
  va_end(ap);
  p_u8(p, 0);
}

static void p_header(struct pkt *p, unsigned id, unsigned flags, unsigned qd, unsigned an,
                     unsigned ns, unsigned ar) {
  p->n = 0;
  p_u16(p, id);
  p_u16(p, flags);
  p_u16(p, qd);
  p_u16(p, an);
  p_u16(p, ns);
  p_u16(p, ar);
}

static void p_opt(struct pkt *p, unsigned size, uint32_t ttl) {
  p_u8(p, 0);
  p_u16(p, AWF_DNS_TYPE_OPT);
  p_u16(p, size);
  p_u32(p, ttl);
  p_u16(p, 0);
}

/* A plain query for example.test A, RD set. */
static void p_simple(struct pkt *p, unsigned ar) {
  p_header(p, 0x1234, 0x0100, 1, 0, 0, ar);
  p_labels(p, "example", "test", NULL);
  p_u16(p, AWF_DNS_TYPE_A);
  p_u16(p, AWF_DNS_CLASS_IN);
}

static int parse_pkt(const struct pkt *p, struct awf_dns_query *q) {
  return parse(p->b, p->n, q);
}

/* ---- an independent response decoder ---- */

struct drr {
  char owner[256];
  size_t owner_at; /* offset of the owner's first byte */
  uint16_t type, cls, rdlen;
  uint32_t ttl;
  uint8_t rdata[32];
  char target[256]; /* CNAME */
};

struct dmsg {
  uint16_t id, flags, qd, an, ns, ar;
  char qname[256];
  uint8_t qwire[260];
  size_t qwire_len;
  uint16_t qtype, qclass;
  struct drr *rr; /* an entries */
  bool has_opt;
  uint16_t opt_size;
  uint32_t opt_ttl;
  uint16_t opt_rdlen;
};

static unsigned rd16(const uint8_t *b) { return (unsigned)b[0] << 8 | b[1]; }

/* Decode the name at *off, following pointers that go strictly backwards
 * (so no loop can form), at most 127 hops. Text is dotted as sent. */
static bool d_name(const uint8_t *m, size_t len, size_t *off, char *out) {
  size_t pos = *off, o = 0, wire = 0;
  bool jumped = false;
  for (int hops = 0; hops < 128; hops++) {
    if (pos >= len)
      return false;
    uint8_t n = m[pos];
    if ((n & 0xC0) == 0xC0) {
      if (pos + 1 >= len)
        return false;
      size_t target = (size_t)(n & 0x3F) << 8 | m[pos + 1];
      if (target >= pos)
        return false;
      if (!jumped)
        *off = pos + 2;
      jumped = true;
      pos = target;
      continue;
    }
    if (n & 0xC0)
      return false;
    wire += 1u + n;
    if (wire > 255 || pos + 1 + n > len)
      return false;
    if (n == 0) {
      if (!jumped)
        *off = pos + 1;
      out[o] = '\0';
      return true;
    }
    if (o)
      out[o++] = '.';
    memcpy(out + o, m + pos + 1, n);
    o += n;
    pos += 1u + n;
  }
  return false;
}

static bool d_rr(const uint8_t *m, size_t len, size_t *off, struct drr *r) {
  r->owner_at = *off;
  if (!d_name(m, len, off, r->owner) || *off + 10 > len)
    return false;
  r->type = (uint16_t)rd16(m + *off);
  r->cls = (uint16_t)rd16(m + *off + 2);
  r->ttl = (uint32_t)rd16(m + *off + 4) << 16 | rd16(m + *off + 6);
  r->rdlen = (uint16_t)rd16(m + *off + 8);
  *off += 10;
  if (*off + r->rdlen > len)
    return false;
  if (r->type == AWF_DNS_TYPE_CNAME) {
    size_t t = *off;
    if (!d_name(m, len, &t, r->target) || t != *off + r->rdlen)
      return false;
  } else if (r->rdlen <= sizeof(r->rdata)) {
    memcpy(r->rdata, m + *off, r->rdlen);
  } else {
    return false;
  }
  *off += r->rdlen;
  return true;
}

static void dmsg_free(struct dmsg *d) { free(d->rr); }

static bool decode(const uint8_t *m, size_t len, struct dmsg *d) {
  size_t off = 12;
  memset(d, 0, sizeof(*d));
  if (len < 12)
    return false;
  d->id = (uint16_t)rd16(m);
  d->flags = (uint16_t)rd16(m + 2);
  d->qd = (uint16_t)rd16(m + 4);
  d->an = (uint16_t)rd16(m + 6);
  d->ns = (uint16_t)rd16(m + 8);
  d->ar = (uint16_t)rd16(m + 10);
  if (d->qd > 1 || d->ns != 0 || d->ar > 1)
    return false;
  if (d->qd) {
    size_t start = off;
    if (!d_name(m, len, &off, d->qname) || off + 4 > len)
      return false;
    d->qtype = (uint16_t)rd16(m + off);
    d->qclass = (uint16_t)rd16(m + off + 2);
    off += 4;
    d->qwire_len = off - start;
    memcpy(d->qwire, m + start, d->qwire_len);
  }
  d->rr = calloc(d->an ? d->an : 1, sizeof(*d->rr));
  assert_non_null(d->rr);
  for (unsigned i = 0; i < d->an; i++)
    if (!d_rr(m, len, &off, &d->rr[i]))
      return false;
  if (d->ar) {
    struct drr opt;
    if (off >= len || m[off] != 0 || !d_rr(m, len, &off, &opt) || opt.type != AWF_DNS_TYPE_OPT)
      return false;
    d->has_opt = true;
    d->opt_size = opt.cls;
    d->opt_ttl = opt.ttl;
    d->opt_rdlen = opt.rdlen;
  }
  return off == len;
}

#define F_QR 0x8000
#define F_TC 0x0200
#define F_RD 0x0100
#define F_RA 0x0080
#define F_CD 0x0010

static unsigned d_opcode(const struct dmsg *d) { return (d->flags >> 11) & 0xF; }
static unsigned d_rcode(const struct dmsg *d) { return d->flags & 0xF; }

/* Build and decode in one go; returns the length. */
static int build_decode(const struct awf_dns_query *q, unsigned rcode,
                        const struct awf_dns_rr *rrs, size_t nrr, size_t limit, uint8_t *out,
                        size_t outsz, size_t *nans, struct dmsg *d) {
  int len = awf_dns_build_response(q, rcode, rrs, nrr, limit, out, outsz, nans);
  assert_true(len >= 12);
  assert_true((size_t)len <= limit && (size_t)len <= outsz);
  assert_true(decode(out, (size_t)len, d));
  return len;
}

/* ---- parsing real queries ---- */

static void test_parse_dig_edns(void **state) {
  (void)state;
  struct awf_dns_query q;
  assert_int_equal(parse(dig_edns, sizeof(dig_edns), &q), AWF_DNS_PARSE_OK);
  assert_int_equal(q.id, 0x9938);
  assert_int_equal(q.opcode, 0);
  assert_true(q.rd);
  assert_false(q.cd);
  assert_true(q.has_question);
  assert_string_equal(q.qname, "example.test");
  assert_int_equal(q.qname_len, 12);
  assert_true(q.name_ok);
  assert_int_equal(q.qtype, AWF_DNS_TYPE_A);
  assert_int_equal(q.qclass, AWF_DNS_CLASS_IN);
  assert_true(q.class_in);
  assert_int_equal(q.qwire_len, 18);
  assert_memory_equal(q.qwire, dig_edns + 12, 18);
  assert_true(q.has_edns);
  assert_int_equal(q.edns_udp_size, 1232);
  assert_int_equal(q.edns_version, 0);
  assert_false(q.edns_do);
  assert_int_equal(awf_dns_udp_limit(&q), 1232);
}

static void test_parse_dig_noedns(void **state) {
  (void)state;
  struct awf_dns_query q;
  assert_int_equal(parse(dig_noedns, sizeof(dig_noedns), &q), AWF_DNS_PARSE_OK);
  assert_int_equal(q.id, 0x8bf6);
  assert_true(q.rd);
  assert_string_equal(q.qname, "example.test");
  assert_false(q.has_edns);
  assert_int_equal(awf_dns_udp_limit(&q), 512);
}

static void test_parse_dig_do_mixed_case(void **state) {
  (void)state;
  struct awf_dns_query q;
  assert_int_equal(parse(dig_do_aaaa, sizeof(dig_do_aaaa), &q), AWF_DNS_PARSE_OK);
  assert_string_equal(q.qname, "example.test");   /* lower-cased */
  assert_memory_equal(q.qwire + 1, "Example", 7); /* echoed as sent */
  assert_int_equal(q.qtype, AWF_DNS_TYPE_AAAA);
  assert_true(q.edns_do);
}

/* Every proper prefix is either too short for a header (DROP) or a query
 * cut inside its sections (FORMERR, with the id readable). */
static void test_parse_every_truncation(void **state) {
  (void)state;
  const struct {
    const uint8_t *b;
    size_t n;
  } msgs[] = {{dig_edns, sizeof(dig_edns)}, {dig_noedns, sizeof(dig_noedns)}};
  for (size_t m = 0; m < 2; m++) {
    for (size_t n = 0; n < msgs[m].n; n++) {
      struct awf_dns_query q;
      int rc = parse(msgs[m].b, n, &q);
      if (n < 12) {
        assert_int_equal(rc, AWF_DNS_PARSE_DROP);
        continue;
      }
      assert_int_equal(rc, AWF_DNS_PARSE_FORMERR);
      assert_int_equal(q.rcode, AWF_DNS_FORMERR);
      assert_int_equal(q.id, rd16(msgs[m].b));
      assert_int_equal(q.has_question, n >= DIG_QUESTION_END);
    }
  }
}

static void test_parse_null_and_empty(void **state) {
  (void)state;
  struct awf_dns_query q;
  assert_int_equal(awf_dns_parse_query(NULL, 0, &q), AWF_DNS_PARSE_DROP);
  assert_int_equal(awf_dns_parse_query(NULL, 100, &q), AWF_DNS_PARSE_DROP);
}

/* ---- header checks ---- */

static void test_parse_response_dropped(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  p_simple(&p, 0);
  p.b[2] |= 0x80;
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_DROP);
  /* even a response with a bad opcode and garbage is dropped, not answered */
  p_header(&p, 1, 0x8000 | 2 << 11, 7, 7, 7, 7);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_DROP);
}

static void test_parse_opcodes(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  for (unsigned op = 1; op < 16; op++) {
    p_simple(&p, 0);
    p.b[2] = (uint8_t)(op << 3 | 0x01);
    assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_NOTIMP);
    assert_int_equal(q.rcode, AWF_DNS_NOTIMP);
    assert_int_equal(q.opcode, op);
    assert_int_equal(q.id, 0x1234);
    assert_true(q.rd);
    assert_false(q.has_question);
  }
  /* opcode 2 (STATUS) with a header only */
  p_header(&p, 0xbeef, 2 << 11, 0, 0, 0, 0);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_NOTIMP);
  assert_int_equal(q.id, 0xbeef);
}

static void test_parse_section_counts(void **state) {
  (void)state;
  const unsigned counts[][4] = {
      {0, 0, 0, 0}, {2, 0, 0, 0}, {1, 1, 0, 0}, {1, 0, 1, 0}, {1, 0, 0, 2}, {65535, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
    struct pkt p;
    struct awf_dns_query q;
    p_header(&p, 0x4242, 0x0100, counts[i][0], counts[i][1], counts[i][2], counts[i][3]);
    p_labels(&p, "example", "test", NULL);
    p_u16(&p, 1);
    p_u16(&p, 1);
    /* a second question for QDCOUNT 2, so the count is what is refused */
    p_labels(&p, "other", "test", NULL);
    p_u16(&p, 1);
    p_u16(&p, 1);
    assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
    assert_int_equal(q.rcode, AWF_DNS_FORMERR);
    assert_int_equal(q.id, 0x4242);
  }
}

static void test_parse_ignores_other_flags(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  p_simple(&p, 0);
  p.b[2] = 0x00; /* RD clear */
  p.b[3] = 0x7f; /* RA, Z, AD, CD, rcode bits: meaningless in a query */
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_OK);
  assert_false(q.rd);
  assert_true(q.cd);
}

/* ---- the question name ---- */

static void test_parse_label_limits(void **state) {
  (void)state;
  char l63[64], l64[65];
  struct pkt p;
  struct awf_dns_query q;
  memset(l63, 'a', 63);
  l63[63] = '\0';
  memset(l64, 'a', 64);
  l64[64] = '\0';

  p_header(&p, 1, 0, 1, 0, 0, 0);
  p_labels(&p, l63, "test", NULL);
  p_u32(&p, 0x00010001);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_OK);
  assert_int_equal(q.qname_len, 68);

  p_header(&p, 1, 0, 1, 0, 0, 0);
  p_labels(&p, l64, "test", NULL);
  p_u32(&p, 0x00010001);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);

  /* the reserved label types 01 and 10 */
  for (unsigned t = 0x40; t <= 0x80; t += 0x40) {
    p_header(&p, 1, 0, 1, 0, 0, 0);
    p_u8(&p, t | 1);
    p_u8(&p, 'a');
    p_u8(&p, 0);
    p_u32(&p, 0x00010001);
    assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  }
}

/* labels of 63,63,63,61 bytes: 255 wire bytes, 253 text bytes. */
static void p_long_name(struct pkt *p, size_t last) {
  char l63[64], lx[64];
  memset(l63, 'b', 63);
  l63[63] = '\0';
  memset(lx, 'c', last);
  lx[last] = '\0';
  p_labels(p, l63, l63, l63, lx, NULL);
}

static void test_parse_name_limits(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  p_header(&p, 1, 0, 1, 0, 0, 0);
  p_long_name(&p, 61);
  p_u32(&p, 0x00010001);
  assert_int_equal(p.n, 12 + 255 + 4);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_OK);
  assert_int_equal(q.qname_len, AWF_DNS_NAME_MAX);
  assert_int_equal(strlen(q.qname), AWF_DNS_NAME_MAX);
  assert_int_equal(q.qwire_len, 259);

  p_header(&p, 1, 0, 1, 0, 0, 0);
  p_long_name(&p, 62); /* 256 wire bytes */
  p_u32(&p, 0x00010001);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);

  /* many one-byte labels: 128 of them is 257 wire bytes */
  p_header(&p, 1, 0, 1, 0, 0, 0);
  for (int i = 0; i < 128; i++) {
    p_u8(&p, 1);
    p_u8(&p, 'x');
  }
  p_u8(&p, 0);
  p_u32(&p, 0x00010001);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);

  /* 127 of them: 255 wire bytes, 253 text */
  p_header(&p, 1, 0, 1, 0, 0, 0);
  for (int i = 0; i < 127; i++) {
    p_u8(&p, 1);
    p_u8(&p, 'X');
  }
  p_u8(&p, 0);
  p_u32(&p, 0x00010001);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_OK);
  assert_int_equal(q.qname_len, 253);
  assert_int_equal(q.qname[0], 'x');
}

static void test_parse_pointers_rejected(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  /* a pointer to itself: the classic loop */
  p_header(&p, 7, 0, 1, 0, 0, 0);
  p_u16(&p, 0xC00C);
  p_u32(&p, 0x00010001);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  assert_int_equal(q.id, 7);
  /* a label then a pointer back to it */
  p_header(&p, 7, 0, 1, 0, 0, 0);
  p_u8(&p, 1);
  p_u8(&p, 'a');
  p_u16(&p, 0xC00C);
  p_u32(&p, 0x00010001);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  /* a pointer into the header */
  p_header(&p, 7, 0, 1, 0, 0, 0);
  p_u16(&p, 0xC000);
  p_u32(&p, 0x00010001);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  /* a pointer as the last byte */
  p_header(&p, 7, 0, 1, 0, 0, 0);
  p_u8(&p, 0xC0);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
}

static void test_parse_name_flags(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  /* a '.' inside a label: kept raw, not a host name */
  p_header(&p, 1, 0, 1, 0, 0, 0);
  p_labels(&p, "a.b", "test", NULL);
  p_u32(&p, 0x00010001);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_OK);
  assert_string_equal(q.qname, "a.b.test");
  assert_false(q.name_ok);

  /* NUL, space, DEL, high bytes */
  const uint8_t bad[] = {0x00, 0x20, 0x7f, 0x80, 0xff};
  for (size_t i = 0; i < sizeof(bad); i++) {
    p_header(&p, 1, 0, 1, 0, 0, 0);
    p_u8(&p, 3);
    p_u8(&p, 'A');
    p_u8(&p, bad[i]);
    p_u8(&p, 'z');
    p_labels(&p, "test", NULL);
    p_u32(&p, 0x00010001);
    assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_OK);
    assert_false(q.name_ok);
    assert_int_equal(q.qname_len, 8);
    assert_int_equal((uint8_t)q.qname[1], bad[i]);
    assert_int_equal(q.qname[0], 'a');
    assert_int_equal(q.qname[8], '\0');
  }

  /* every printable byte but '.' is fine at this layer; letters lowered */
  p_header(&p, 1, 0, 1, 0, 0, 0);
  p_labels(&p, "A-Z_09!~", "TeSt", NULL);
  p_u32(&p, 0x00010001);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_OK);
  assert_true(q.name_ok);
  assert_string_equal(q.qname, "a-z_09!~.test");

  /* the root */
  p_header(&p, 1, 0, 1, 0, 0, 0);
  p_u8(&p, 0);
  p_u16(&p, AWF_DNS_TYPE_NS);
  p_u16(&p, AWF_DNS_CLASS_IN);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_OK);
  assert_string_equal(q.qname, ".");
  assert_int_equal(q.qname_len, 1);
  assert_false(q.name_ok);
  assert_int_equal(q.qwire_len, 5);
}

static void test_parse_class_and_type(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  const unsigned classes[] = {3, 4, 254, 255, 0};
  for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
    p_header(&p, 1, 0, 1, 0, 0, 0);
    p_labels(&p, "version", "bind", NULL);
    p_u16(&p, AWF_DNS_TYPE_TXT);
    p_u16(&p, classes[i]);
    assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_OK);
    assert_false(q.class_in);
    assert_int_equal(q.qclass, classes[i]);
    assert_int_equal(q.qtype, AWF_DNS_TYPE_TXT);
  }
  /* a question cut inside type or class */
  p_header(&p, 1, 0, 1, 0, 0, 0);
  p_labels(&p, "a", NULL);
  p_u16(&p, 1);
  p_u8(&p, 0);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  assert_false(q.has_question);
}

static void test_parse_trailing_garbage(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  p_simple(&p, 0);
  p_u8(&p, 0);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  assert_true(q.has_question); /* the question is still echoed */
  p_simple(&p, 1);
  p_opt(&p, 4096, 0);
  p_raw(&p, "junk", 4);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  assert_true(q.has_edns);
}

/* ---- EDNS ---- */

static void test_parse_edns(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  const struct {
    unsigned size;
    size_t limit;
  } sizes[] = {{0, 512},     {100, 512},   {512, 512},   {513, 513},   {1000, 1000},
               {1232, 1232}, {1233, 1232}, {4096, 1232}, {65535, 1232}};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    p_simple(&p, 1);
    p_opt(&p, sizes[i].size, 0x00008000u);
    assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_OK);
    assert_true(q.has_edns);
    assert_true(q.edns_do);
    assert_int_equal(q.edns_udp_size, sizes[i].size);
    assert_int_equal(awf_dns_udp_limit(&q), sizes[i].limit);
  }
  /* options: several, well framed */
  p_simple(&p, 1);
  p_u8(&p, 0);
  p_u16(&p, AWF_DNS_TYPE_OPT);
  p_u16(&p, 1232);
  p_u32(&p, 0);
  p_u16(&p, 4 + 8 + 4);
  p_u16(&p, 10);
  p_u16(&p, 8);
  p_raw(&p, "cookie!!", 8);
  p_u16(&p, 12); /* padding, empty */
  p_u16(&p, 0);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_OK);
  assert_false(q.edns_do);
}

static void test_parse_edns_malformed(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  /* an option longer than the rdata */
  p_simple(&p, 1);
  p_u8(&p, 0);
  p_u16(&p, AWF_DNS_TYPE_OPT);
  p_u16(&p, 1232);
  p_u32(&p, 0);
  p_u16(&p, 6);
  p_u16(&p, 10);
  p_u16(&p, 8);
  p_u16(&p, 0);
  p_raw(&p, "more bytes", 10); /* present, but outside the rdata */
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  /* half an option header */
  p_simple(&p, 1);
  p_u8(&p, 0);
  p_u16(&p, AWF_DNS_TYPE_OPT);
  p_u16(&p, 1232);
  p_u32(&p, 0);
  p_u16(&p, 3);
  p_u16(&p, 10);
  p_u8(&p, 0);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  /* rdlength past the end */
  p_simple(&p, 1);
  p_u8(&p, 0);
  p_u16(&p, AWF_DNS_TYPE_OPT);
  p_u16(&p, 1232);
  p_u32(&p, 0);
  p_u16(&p, 1);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  assert_false(q.has_edns);
  /* an OPT with an owner name */
  p_simple(&p, 1);
  p_labels(&p, "x", NULL);
  p_u16(&p, AWF_DNS_TYPE_OPT);
  p_u16(&p, 1232);
  p_u32(&p, 0);
  p_u16(&p, 0);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  /* an OPT owner written as a pointer to the root... of nothing */
  p_simple(&p, 1);
  p_u16(&p, 0xC00C);
  p_u16(&p, AWF_DNS_TYPE_OPT);
  p_u16(&p, 1232);
  p_u32(&p, 0);
  p_u16(&p, 0);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  /* an additional record that is not OPT (a TSIG, say) */
  p_simple(&p, 1);
  p_u8(&p, 0);
  p_u16(&p, 250);
  p_u16(&p, 255);
  p_u32(&p, 0);
  p_u16(&p, 0);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  assert_false(q.has_edns);
}

static void test_parse_edns_badvers(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  p_simple(&p, 1);
  p_opt(&p, 1232, 0x00018000u); /* version 1, DO */
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_BADVERS);
  assert_int_equal(q.rcode, AWF_DNS_BADVERS);
  assert_true(q.has_edns);
  assert_true(q.has_question);
  assert_int_equal(q.edns_version, 1);
}

/* ---- building ---- */

static const uint8_t v4_1[4] = {192, 0, 2, 1};
static const uint8_t v6_1[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static struct awf_dns_rr rr_a(const char *owner, const uint8_t a[4], uint32_t ttl) {
  struct awf_dns_rr r = {.owner = owner, .type = AWF_DNS_TYPE_A, .ttl = ttl};
  memcpy(r.u.a, a, 4);
  return r;
}

static struct awf_dns_rr rr_aaaa(const char *owner, const uint8_t a[16], uint32_t ttl) {
  struct awf_dns_rr r = {.owner = owner, .type = AWF_DNS_TYPE_AAAA, .ttl = ttl};
  memcpy(r.u.aaaa, a, 16);
  return r;
}

static struct awf_dns_rr rr_cname(const char *owner, const char *target, uint32_t ttl) {
  struct awf_dns_rr r = {.owner = owner, .type = AWF_DNS_TYPE_CNAME, .ttl = ttl};
  r.u.target = target;
  return r;
}

static void test_build_a_aaaa(void **state) {
  (void)state;
  struct awf_dns_query q;
  uint8_t out[1500];
  struct dmsg d;
  size_t nans;
  assert_int_equal(parse(dig_edns, sizeof(dig_edns), &q), AWF_DNS_PARSE_OK);
  struct awf_dns_rr rrs[] = {rr_a(NULL, v4_1, 30), rr_aaaa("EXAMPLE.test.", v6_1, 60)};
  int len = build_decode(&q, AWF_DNS_NOERROR, rrs, 2, awf_dns_udp_limit(&q), out, sizeof(out),
                         &nans, &d);
  assert_int_equal(nans, 2);
  assert_int_equal(d.id, 0x9938);
  assert_int_equal(d.flags, F_QR | F_RD | F_RA); /* AD not copied, TC clear */
  assert_int_equal(d.qd, 1);
  assert_int_equal(d.an, 2);
  assert_int_equal(d.ar, 1);
  assert_string_equal(d.qname, "example.test");
  assert_int_equal(d.qtype, AWF_DNS_TYPE_A);
  assert_int_equal(d.qclass, AWF_DNS_CLASS_IN);
  assert_string_equal(d.rr[0].owner, "example.test");
  assert_int_equal(d.rr[0].type, AWF_DNS_TYPE_A);
  assert_int_equal(d.rr[0].cls, AWF_DNS_CLASS_IN);
  assert_int_equal(d.rr[0].ttl, 30);
  assert_int_equal(d.rr[0].rdlen, 4);
  assert_memory_equal(d.rr[0].rdata, v4_1, 4);
  assert_int_equal(d.rr[1].type, AWF_DNS_TYPE_AAAA);
  assert_int_equal(d.rr[1].ttl, 60);
  assert_int_equal(d.rr[1].rdlen, 16);
  assert_memory_equal(d.rr[1].rdata, v6_1, 16);
  /* both owners are 0xC00C: NULL and a case-different spelling of the question */
  assert_int_equal(rd16(out + d.rr[0].owner_at), 0xC00C);
  assert_int_equal(rd16(out + d.rr[1].owner_at), 0xC00C);
  assert_true(d.has_opt);
  assert_int_equal(d.opt_size, AWF_DNS_UDP_MAX);
  assert_int_equal(d.opt_ttl, 0);
  assert_int_equal(d.opt_rdlen, 0);
  assert_int_equal(len, 12 + 18 + 16 + 28 + 11);
  dmsg_free(&d);
}

static void test_build_echoes_case_and_do(void **state) {
  (void)state;
  struct awf_dns_query q;
  uint8_t out[512];
  struct dmsg d;
  assert_int_equal(parse(dig_do_aaaa, sizeof(dig_do_aaaa), &q), AWF_DNS_PARSE_OK);
  struct awf_dns_rr rr = rr_aaaa(NULL, v6_1, 5);
  build_decode(&q, AWF_DNS_NOERROR, &rr, 1, sizeof(out), out, sizeof(out), NULL, &d);
  assert_string_equal(d.qname, "Example.TEST");
  assert_memory_equal(d.qwire, dig_do_aaaa + 12, 18);
  assert_string_equal(d.rr[0].owner, "Example.TEST");
  assert_int_equal(d.opt_ttl, 0x8000); /* DO copied, version 0 */
  dmsg_free(&d);
}

static void test_build_cname_chain(void **state) {
  (void)state;
  struct awf_dns_query q;
  uint8_t out[1500];
  struct dmsg d;
  size_t nans;
  assert_int_equal(parse(dig_noedns, sizeof(dig_noedns), &q), AWF_DNS_PARSE_OK);
  struct awf_dns_rr rrs[] = {
      rr_cname(NULL, "edge.cdn.test", 10),
      rr_cname("edge.cdn.test", "host-1.cdn.test.", 20),
      rr_a("host-1.cdn.test", v4_1, 30),
      rr_a("HOST-1.CDN.TEST.", v4_1, 30),
  };
  build_decode(&q, AWF_DNS_NOERROR, rrs, 4, 512, out, sizeof(out), &nans, &d);
  assert_int_equal(nans, 4);
  assert_false(d.has_opt);
  assert_int_equal(d.ar, 0);
  assert_string_equal(d.rr[0].owner, "example.test");
  assert_int_equal(d.rr[0].type, AWF_DNS_TYPE_CNAME);
  assert_string_equal(d.rr[0].target, "edge.cdn.test");
  assert_string_equal(d.rr[1].owner, "edge.cdn.test");
  assert_string_equal(d.rr[1].target, "host-1.cdn.test");
  assert_int_equal(d.rr[1].ttl, 20);
  assert_string_equal(d.rr[2].owner, "host-1.cdn.test");
  assert_string_equal(d.rr[3].owner, "host-1.cdn.test");
  /* owners after the first CNAME point at the earlier targets */
  assert_int_equal(out[d.rr[1].owner_at] & 0xC0, 0xC0);
  assert_int_equal(out[d.rr[2].owner_at] & 0xC0, 0xC0);
  assert_int_equal(rd16(out + d.rr[2].owner_at), rd16(out + d.rr[3].owner_at));
  dmsg_free(&d);

  /* a CNAME target equal to the question compresses too */
  struct awf_dns_rr loop = rr_cname("a.test", "Example.Test", 1);
  build_decode(&q, AWF_DNS_NOERROR, &loop, 1, 512, out, sizeof(out), &nans, &d);
  assert_string_equal(d.rr[0].target, "example.test");
  assert_int_equal(d.rr[0].rdlen, 2);
  dmsg_free(&d);
}

/* More CNAMEs than the compression table holds still decode right. */
static void test_build_long_chain(void **state) {
  (void)state;
  struct awf_dns_query q;
  uint8_t out[4096];
  struct dmsg d;
  char names[41][32];
  struct awf_dns_rr rrs[41];
  assert_int_equal(parse(dig_noedns, sizeof(dig_noedns), &q), AWF_DNS_PARSE_OK);
  for (int i = 0; i < 40; i++)
    snprintf(names[i], sizeof(names[i]), "n%d.chain.test", i);
  rrs[0] = rr_cname(NULL, names[0], 1);
  for (int i = 1; i < 40; i++)
    rrs[i] = rr_cname(names[i - 1], names[i], 1);
  rrs[40] = rr_a(names[39], v4_1, 1);
  size_t nans;
  build_decode(&q, 0, rrs, 41, AWF_DNS_TCP_MAX, out, sizeof(out), &nans, &d);
  assert_int_equal(nans, 41);
  for (int i = 1; i < 40; i++) {
    assert_string_equal(d.rr[i].owner, names[i - 1]);
    assert_string_equal(d.rr[i].target, names[i]);
  }
  assert_string_equal(d.rr[40].owner, names[39]);
  dmsg_free(&d);
}

static void test_build_truncates_udp(void **state) {
  (void)state;
  struct awf_dns_query q;
  uint8_t out[AWF_DNS_TCP_MAX];
  struct awf_dns_rr rrs[60];
  struct dmsg d;
  size_t nans;
  for (size_t i = 0; i < 60; i++) {
    uint8_t a[16];
    memcpy(a, v6_1, 16);
    a[15] = (uint8_t)i;
    rrs[i] = rr_aaaa(NULL, a, 60);
  }
  /* no EDNS: 512 bytes; header+question 30, each AAAA 28 */
  assert_int_equal(parse(dig_noedns, sizeof(dig_noedns), &q), AWF_DNS_PARSE_OK);
  int len = build_decode(&q, 0, rrs, 60, awf_dns_udp_limit(&q), out, sizeof(out), &nans, &d);
  assert_int_equal(nans, 17);
  assert_int_equal(len, 30 + 17 * 28);
  assert_int_equal(d.an, 17);
  assert_true(d.flags & F_TC);
  assert_int_equal(d.rr[16].rdata[15], 16); /* the first 17, in order */
  dmsg_free(&d);

  /* EDNS 1232: the OPT record stays, answers give way */
  assert_int_equal(parse(dig_edns, sizeof(dig_edns), &q), AWF_DNS_PARSE_OK);
  len = build_decode(&q, 0, rrs, 60, awf_dns_udp_limit(&q), out, sizeof(out), &nans, &d);
  assert_int_equal(nans, (1232 - 30 - 11) / 28);
  assert_int_equal(len, 30 + 42 * 28 + 11);
  assert_true(d.flags & F_TC);
  assert_true(d.has_opt);
  dmsg_free(&d);

  /* a 42nd answer that would eat into the OPT's space is left out */
  len = build_decode(&q, 0, rrs, 60, 30 + 42 * 28 + 10, out, sizeof(out), &nans, &d);
  assert_int_equal(nans, 41);
  assert_int_equal(len, 30 + 41 * 28 + 11);
  assert_true(d.flags & F_TC);
  assert_true(d.has_opt);
  dmsg_free(&d);

  /* exactly fitting is not truncated */
  len = build_decode(&q, 0, rrs, 42, 30 + 42 * 28 + 11, out, sizeof(out), &nans, &d);
  assert_int_equal(nans, 42);
  assert_false(d.flags & F_TC);
  dmsg_free(&d);

  /* TCP: everything */
  len = build_decode(&q, 0, rrs, 60, AWF_DNS_TCP_MAX, out, sizeof(out), &nans, &d);
  assert_int_equal(nans, 60);
  assert_false(d.flags & F_TC);
  dmsg_free(&d);

  /* a small output buffer caps like a limit */
  len = build_decode(&q, 0, rrs, 60, AWF_DNS_TCP_MAX, out, 100, &nans, &d);
  assert_int_equal(nans, 2);
  assert_true(d.flags & F_TC);
  dmsg_free(&d);
}

/* A CNAME whose long target does not fit is dropped whole, and the records
 * after it are not written either (order matters in a chain). */
static void test_build_truncates_whole_records(void **state) {
  (void)state;
  struct awf_dns_query q;
  uint8_t out[600];
  struct dmsg d;
  size_t nans;
  char longname[200];
  memset(longname, 'q', sizeof(longname));
  for (size_t i = 60; i < sizeof(longname); i += 61)
    longname[i] = '.';
  longname[sizeof(longname) - 1] = '\0';
  assert_int_equal(parse(dig_noedns, sizeof(dig_noedns), &q), AWF_DNS_PARSE_OK);
  struct awf_dns_rr rrs[] = {rr_a(NULL, v4_1, 1), rr_cname(NULL, longname, 1),
                             rr_cname(NULL, longname, 1), rr_a(NULL, v4_1, 1)};
  build_decode(&q, 0, rrs, 4, 512, out, sizeof(out), &nans, &d);
  /* 30 + 16 + (12 + 201) = 259; the second CNAME would be 14 bytes (a pointer) */
  assert_int_equal(nans, 4);
  dmsg_free(&d);
  build_decode(&q, 0, rrs, 4, 30 + 16 + 100, out, sizeof(out), &nans, &d);
  assert_int_equal(nans, 1);
  assert_true(d.flags & F_TC);
  dmsg_free(&d);
}

/* Names written past offset 0x3FFF cannot be pointer targets. */
static void test_build_far_names(void **state) {
  (void)state;
  struct awf_dns_query q;
  const size_t n = 600;
  struct awf_dns_rr *rrs = calloc(n + 2, sizeof(*rrs));
  uint8_t *out = malloc(AWF_DNS_TCP_MAX);
  struct dmsg d;
  size_t nans;
  assert_non_null(rrs);
  assert_non_null(out);
  assert_int_equal(parse(dig_noedns, sizeof(dig_noedns), &q), AWF_DNS_PARSE_OK);
  for (size_t i = 0; i < n; i++)
    rrs[i] = rr_aaaa(NULL, v6_1, 1);
  rrs[n] = rr_cname(NULL, "late.example.test", 1);
  rrs[n + 1] = rr_a("late.example.test", v4_1, 1);
  build_decode(&q, 0, rrs, n + 2, AWF_DNS_TCP_MAX, out, AWF_DNS_TCP_MAX, &nans, &d);
  assert_int_equal(nans, n + 2);
  assert_true(d.rr[n + 1].owner_at > 0x3FFF);
  assert_string_equal(d.rr[n + 1].owner, "late.example.test");
  assert_int_equal(out[d.rr[n + 1].owner_at], 4); /* "late" in full, no pointer */
  dmsg_free(&d);
  free(out);
  free(rrs);
}

static void test_build_formerr_keeps_id(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  uint8_t out[512];
  struct dmsg d;
  p_header(&p, 0xcafe, 0x0100, 0, 0, 0, 0);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  int len = build_decode(&q, q.rcode, NULL, 0, 512, out, sizeof(out), NULL, &d);
  assert_int_equal(len, 12);
  assert_int_equal(d.id, 0xcafe);
  assert_int_equal(d.flags, F_QR | F_RD | F_RA | AWF_DNS_FORMERR);
  assert_int_equal(d.qd, 0);
  assert_int_equal(d.an, 0);
  assert_int_equal(d.ar, 0);
  dmsg_free(&d);

  /* trailing garbage after a good question and OPT: echo both */
  p_simple(&p, 1);
  p_opt(&p, 1232, 0);
  p_u8(&p, 0);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_FORMERR);
  build_decode(&q, q.rcode, NULL, 0, 512, out, sizeof(out), NULL, &d);
  assert_int_equal(d.id, 0x1234);
  assert_int_equal(d_rcode(&d), AWF_DNS_FORMERR);
  assert_int_equal(d.qd, 1);
  assert_string_equal(d.qname, "example.test");
  assert_true(d.has_opt);
  dmsg_free(&d);

  /* NOTIMP keeps the opcode */
  p_header(&p, 0x0bad, 4 << 11, 1, 0, 0, 0);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_NOTIMP);
  build_decode(&q, q.rcode, NULL, 0, 512, out, sizeof(out), NULL, &d);
  assert_int_equal(d.id, 0x0bad);
  assert_int_equal(d_opcode(&d), 4);
  assert_int_equal(d_rcode(&d), AWF_DNS_NOTIMP);
  assert_false(d.flags & F_RD);
  dmsg_free(&d);
}

static void test_build_badvers(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  uint8_t out[512];
  struct dmsg d;
  p_simple(&p, 1);
  p_opt(&p, 4096, 0x00028000u);
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_BADVERS);
  build_decode(&q, q.rcode, NULL, 0, awf_dns_udp_limit(&q), out, sizeof(out), NULL, &d);
  assert_int_equal(d_rcode(&d), 0);         /* low 4 bits of 16 */
  assert_int_equal(d.opt_ttl, 0x01008000u); /* extended rcode 1, version 0, DO */
  assert_int_equal(d.opt_size, AWF_DNS_UDP_MAX);
  dmsg_free(&d);
}

static void test_build_refused_and_flags(void **state) {
  (void)state;
  struct pkt p;
  struct awf_dns_query q;
  uint8_t out[512];
  struct dmsg d;
  const unsigned rcodes[] = {AWF_DNS_NOERROR,  AWF_DNS_FORMERR, AWF_DNS_SERVFAIL,
                             AWF_DNS_NXDOMAIN, AWF_DNS_NOTIMP,  AWF_DNS_REFUSED};
  p_simple(&p, 0);
  p.b[2] = 0x00; /* no RD */
  p.b[3] = 0x10; /* CD */
  assert_int_equal(parse_pkt(&p, &q), AWF_DNS_PARSE_OK);
  for (size_t i = 0; i < 6; i++) {
    build_decode(&q, rcodes[i], NULL, 0, 512, out, sizeof(out), NULL, &d);
    assert_int_equal(d.flags, F_QR | F_RA | F_CD | rcodes[i]);
    assert_int_equal(d.qd, 1);
    assert_int_equal(d.an, 0);
    dmsg_free(&d);
  }
}

static void test_build_errors(void **state) {
  (void)state;
  struct awf_dns_query q, empty;
  uint8_t out[512];
  size_t nans = 99;
  char l64[70];
  memset(l64, 'a', 64);
  strcpy(l64 + 64, ".test");
  char huge[300];
  memset(huge, 'a', sizeof(huge));
  for (size_t i = 50; i < sizeof(huge); i += 51)
    huge[i] = '.';
  huge[sizeof(huge) - 1] = '\0';

  assert_int_equal(parse(dig_noedns, sizeof(dig_noedns), &q), AWF_DNS_PARSE_OK);
  struct awf_dns_rr txt = {.owner = NULL, .type = AWF_DNS_TYPE_TXT};
  assert_int_equal(awf_dns_build_response(&q, 0, &txt, 1, 512, out, sizeof(out), &nans),
                   -EINVAL);
  assert_int_equal(nans, 0);
  const char *bad_names[] = {"", "..", "a..b", ".a", "a..", l64, huge};
  for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
    struct awf_dns_rr r1 = rr_a(bad_names[i], v4_1, 1);
    struct awf_dns_rr r2 = rr_cname(NULL, bad_names[i], 1);
    assert_int_equal(awf_dns_build_response(&q, 0, &r1, 1, 512, out, sizeof(out), NULL),
                     -EINVAL);
    assert_int_equal(awf_dns_build_response(&q, 0, &r2, 1, 512, out, sizeof(out), NULL),
                     -EINVAL);
  }
  struct awf_dns_rr nulltarget = rr_cname(NULL, NULL, 1);
  assert_int_equal(awf_dns_build_response(&q, 0, &nulltarget, 1, 512, out, sizeof(out), NULL),
                   -EINVAL);
  /* the bad record is refused even when it comes after truncation */
  struct awf_dns_rr late[] = {rr_a(NULL, v4_1, 1), txt};
  assert_int_equal(awf_dns_build_response(&q, 0, late, 2, 30, out, sizeof(out), NULL), -EINVAL);
  /* rcodes beyond 4 bits need an OPT record */
  assert_int_equal(awf_dns_build_response(&q, AWF_DNS_BADVERS, NULL, 0, 512, out, 512, NULL),
                   -EINVAL);
  assert_int_equal(awf_dns_build_response(&q, 0x1000, NULL, 0, 512, out, 512, NULL), -EINVAL);
  assert_int_equal(awf_dns_build_response(&q, 0, NULL, 1, 512, out, sizeof(out), NULL),
                   -EINVAL);
  assert_int_equal(awf_dns_build_response(&q, 0, NULL, 0, 512, NULL, 512, NULL), -EINVAL);
  /* an owner of NULL needs a question */
  struct pkt p;
  p_header(&p, 1, 0, 0, 0, 0, 0);
  assert_int_equal(parse_pkt(&p, &empty), AWF_DNS_PARSE_FORMERR);
  struct awf_dns_rr a = rr_a(NULL, v4_1, 1);
  assert_int_equal(awf_dns_build_response(&empty, 1, &a, 1, 512, out, sizeof(out), NULL),
                   -EINVAL);
  /* no room for the header and question */
  assert_int_equal(awf_dns_build_response(&q, 0, NULL, 0, 29, out, sizeof(out), NULL), -ENOSPC);
  assert_int_equal(awf_dns_build_response(&q, 0, NULL, 0, 512, out, 11, NULL), -ENOSPC);
  assert_int_equal(awf_dns_build_response(&q, 0, NULL, 0, 30, out, sizeof(out), NULL), 30);
  /* with EDNS the OPT must fit too */
  assert_int_equal(parse(dig_edns, sizeof(dig_edns), &q), AWF_DNS_PARSE_OK);
  assert_int_equal(awf_dns_build_response(&q, 0, NULL, 0, 40, out, sizeof(out), NULL), -ENOSPC);
  assert_int_equal(awf_dns_build_response(&q, 0, NULL, 0, 41, out, sizeof(out), NULL), 41);
  /* a 253-byte owner is fine; a trailing dot does not count */
  char max[256];
  memset(max, 'm', 253);
  for (size_t i = 63; i < 253; i += 64)
    max[i] = '.';
  max[253] = '\0';
  struct awf_dns_rr big = rr_a(max, v4_1, 1);
  assert_int_equal(awf_dns_build_response(&q, 0, &big, 1, 512, out, sizeof(out), NULL),
                   30 + 255 + 14 + 11);
  strcat(max, ".");
  assert_int_equal(awf_dns_build_response(&q, 0, &big, 1, 512, out, sizeof(out), NULL),
                   30 + 255 + 14 + 11);
  strcat(max, "m"); /* one more label: 257 wire bytes */
  assert_int_equal(awf_dns_build_response(&q, 0, &big, 1, 512, out, sizeof(out), NULL),
                   -EINVAL);
}

/* ---- TCP framing ---- */

static void test_tcp_framing(void **state) {
  (void)state;
  uint8_t stream[2 + sizeof(dig_noedns) + 2 + sizeof(dig_edns) + 1];
  size_t n = 0;
  const uint8_t *msg = NULL;
  size_t msglen = 0;

  assert_int_equal(awf_dns_tcp_prefix(stream, sizeof(dig_noedns)), 0);
  memcpy(stream + 2, dig_noedns, sizeof(dig_noedns));
  n = 2 + sizeof(dig_noedns);
  assert_int_equal(awf_dns_tcp_prefix(stream + n, sizeof(dig_edns)), 0);
  memcpy(stream + n + 2, dig_edns, sizeof(dig_edns));
  n += 2 + sizeof(dig_edns);
  stream[n++] = 0x00; /* the first byte of a third prefix */

  /* every prefix shorter than the first message asks for more */
  for (size_t i = 0; i < 2 + sizeof(dig_noedns); i++)
    assert_int_equal(awf_dns_tcp_next(stream, i, &msg, &msglen), 0);

  size_t off = 0, got = 0;
  for (;;) {
    int rc = awf_dns_tcp_next(stream + off, n - off, &msg, &msglen);
    assert_true(rc >= 0);
    if (rc == 0)
      break;
    struct awf_dns_query q;
    assert_int_equal(parse(msg, msglen, &q), AWF_DNS_PARSE_OK);
    assert_string_equal(q.qname, "example.test");
    off += msglen + 2;
    got++;
  }
  assert_int_equal(got, 2);
  assert_int_equal(off, n - 1);

  const uint8_t zero[] = {0, 0, 1, 2};
  assert_int_equal(awf_dns_tcp_next(zero, sizeof(zero), &msg, &msglen), -EBADMSG);
  const uint8_t big[] = {0xff, 0xff, 1};
  assert_int_equal(awf_dns_tcp_next(big, sizeof(big), &msg, &msglen), 0);

  uint8_t pre[2];
  assert_int_equal(awf_dns_tcp_prefix(pre, 65535), 0);
  assert_int_equal(pre[0], 0xff);
  assert_int_equal(pre[1], 0xff);
  assert_int_equal(awf_dns_tcp_prefix(pre, 65536), -EMSGSIZE);
}

/* ---- names ---- */

/* A query for the labels of `wire` (a wire name with its root label). */
static void name_text_of(const uint8_t *wire, size_t wlen, char *out, size_t outsz) {
  uint8_t msg[600] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  memcpy(msg + 12, wire, wlen);
  uint8_t tail[4] = {0, 1, 0, 1};
  memcpy(msg + 12 + wlen, tail, 4);
  struct awf_dns_query q;
  assert_int_equal(parse(msg, 12 + wlen + 4, &q), AWF_DNS_PARSE_OK);
  size_t n = awf_dns_name_text(&q, out, outsz);
  assert_int_equal(n, strlen(out));
}

/* Label boundaries survive into the log: a '.' inside a label, a backslash,
 * and bytes outside printable ASCII are escaped RFC 1035 style. */
static void test_name_text_escapes(void **state) {
  (void)state;
  char out[AWF_DNS_NAME_TEXT_SIZE];
  static const uint8_t plain[] = "\3WwW\7Example\4test";
  name_text_of(plain, sizeof(plain), out, sizeof(out));
  assert_string_equal(out, "www.example.test");
  static const uint8_t dotted[] = "\3a.b\7example";
  name_text_of(dotted, sizeof(dotted), out, sizeof(out));
  assert_string_equal(out, "a\\.b.example");
  static const uint8_t three[] = "\1a\1b\7example";
  name_text_of(three, sizeof(three), out, sizeof(out));
  assert_string_equal(out, "a.b.example"); /* not the same as the one above */
  static const uint8_t odd[] = "\6a\\ \xff\x7f\x00\4test";
  name_text_of(odd, sizeof(odd), out, sizeof(out));
  assert_string_equal(out, "a\\\\\\032\\255\\127\\000.test");
  static const uint8_t root[] = "";
  name_text_of(root, sizeof(root), out, sizeof(out));
  assert_string_equal(out, ".");
  /* The longest escaped name fits the documented size. */
  uint8_t big[AWF_DNS_WIRE_NAME_MAX];
  size_t n = 0;
  while (n + 64 <= sizeof(big) - 1) {
    big[n++] = 63;
    memset(big + n, 0xff, 63);
    n += 63;
  }
  size_t rest = sizeof(big) - 1 - n - 1;
  big[n++] = (uint8_t)rest;
  memset(big + n, '.', rest);
  n += rest;
  big[n++] = 0;
  name_text_of(big, n, out, sizeof(out));
  assert_int_equal(strlen(out), 3 * 63 * 4 + 3 + 2 * rest);
  /* Too small a buffer: cut before an escape, still NUL-terminated. */
  char small[6];
  assert_int_equal(awf_dns_escape((const uint8_t *)"ab\xff", 3, false, small, sizeof(small)),
                   2);
  assert_string_equal(small, "ab");
  assert_int_equal(awf_dns_escape((const uint8_t *)"a.b", 3, false, small, sizeof(small)), 3);
  assert_string_equal(small, "a.b");
  struct awf_dns_query none;
  memset(&none, 0, sizeof(none));
  assert_int_equal(awf_dns_name_text(&none, out, sizeof(out)), 0);
  assert_string_equal(out, "");
}

static void test_names(void **state) {
  (void)state;
  char buf[AWF_DNS_TYPE_NAME_SIZE];
  const struct {
    uint16_t t;
    const char *n;
  } known[] = {{1, "A"},   {28, "AAAA"}, {5, "CNAME"},  {16, "TXT"},
               {15, "MX"}, {255, "ANY"}, {65, "HTTPS"}, {64, "SVCB"},
               {2, "NS"},  {6, "SOA"},   {12, "PTR"},   {33, "SRV"}};
  for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
    assert_string_equal(awf_dns_type_name(known[i].t, buf, sizeof(buf)), known[i].n);
  assert_string_equal(awf_dns_type_name(123, buf, sizeof(buf)), "TYPE123");
  assert_string_equal(awf_dns_type_name(0, buf, sizeof(buf)), "TYPE0");
  assert_string_equal(awf_dns_type_name(65535, buf, sizeof(buf)), "TYPE65535");
  char tiny[5];
  assert_string_equal(awf_dns_type_name(123, tiny, sizeof(tiny)), "TYPE");
  assert_string_equal(awf_dns_type_name(123, NULL, 0), "TYPE");

  assert_string_equal(awf_dns_rcode_name(AWF_DNS_NOERROR), "NOERROR");
  assert_string_equal(awf_dns_rcode_name(AWF_DNS_FORMERR), "FORMERR");
  assert_string_equal(awf_dns_rcode_name(AWF_DNS_SERVFAIL), "SERVFAIL");
  assert_string_equal(awf_dns_rcode_name(AWF_DNS_NXDOMAIN), "NXDOMAIN");
  assert_string_equal(awf_dns_rcode_name(AWF_DNS_NOTIMP), "NOTIMP");
  assert_string_equal(awf_dns_rcode_name(AWF_DNS_REFUSED), "REFUSED");
  assert_string_equal(awf_dns_rcode_name(AWF_DNS_BADVERS), "BADVERS");
  assert_string_equal(awf_dns_rcode_name(9), "UNKNOWN");

  assert_string_equal(awf_dns_parse_status_name(AWF_DNS_PARSE_OK), "ok");
  assert_string_equal(awf_dns_parse_status_name(AWF_DNS_PARSE_FORMERR), "formerr");
  assert_string_equal(awf_dns_parse_status_name(AWF_DNS_PARSE_NOTIMP), "notimp");
  assert_string_equal(awf_dns_parse_status_name(AWF_DNS_PARSE_BADVERS), "badvers");
  assert_string_equal(awf_dns_parse_status_name(AWF_DNS_PARSE_DROP), "drop");
  assert_string_equal(awf_dns_parse_status_name(42), "unknown");
}

/* ---- hostile input ---- */

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Whatever parses must be safe to answer, and the answer must decode. */
static void check_answerable(const uint8_t *b, size_t n) {
  struct awf_dns_query q;
  uint8_t out[512];
  struct dmsg d;
  int rc = parse(b, n, &q);
  assert_true(rc <= 0 && rc >= AWF_DNS_PARSE_DROP);
  if (rc == AWF_DNS_PARSE_DROP)
    return;
  assert_true(q.qname_len <= AWF_DNS_NAME_MAX);
  assert_int_equal(q.qname[q.qname_len], '\0');
  assert_true(q.qwire_len <= sizeof(q.qwire));
  unsigned rcode = rc == AWF_DNS_PARSE_OK ? AWF_DNS_REFUSED : q.rcode;
  struct awf_dns_rr rr = rr_a(NULL, v4_1, 1);
  int len = awf_dns_build_response(&q, rcode, &rr, q.has_question, awf_dns_udp_limit(&q), out,
                                   sizeof(out), NULL);
  assert_true(len >= 12);
  assert_true(decode(out, (size_t)len, &d));
  assert_int_equal(d.id, q.id);
  assert_true(d.flags & F_QR);
  dmsg_free(&d);
}

static void test_random_bytes(void **state) {
  (void)state;
  uint64_t s = 0x9e3779b97f4a7c15ull;
  uint8_t buf[600];
  for (int iter = 0; iter < 200000; iter++) {
    size_t n = rnd(&s) % sizeof(buf);
    for (size_t i = 0; i < n; i++)
      buf[i] = (uint8_t)rnd(&s);
    if (n > 3 && (iter & 1)) {
      buf[2] &= 0x07; /* a query, opcode QUERY: get past the header */
      buf[4] = 0;
      buf[5] = 1;
    }
    check_answerable(buf, n);
  }
}

/* Mutations of real queries reach deeper than random bytes. */
static void test_mutated_queries(void **state) {
  (void)state;
  uint64_t s = 0x2545f4914f6cdd1dull;
  uint8_t buf[80];
  int ok = 0;
  memset(buf, 0, sizeof(buf));
  for (int iter = 0; iter < 200000; iter++) {
    const uint8_t *src = (iter & 1) ? dig_edns : dig_do_aaaa;
    size_t n = (iter & 1) ? sizeof(dig_edns) : sizeof(dig_do_aaaa);
    memcpy(buf, src, n);
    int flips = 1 + (int)(rnd(&s) % 4);
    for (int f = 0; f < flips; f++)
      buf[rnd(&s) % n] ^= (uint8_t)(1u << (rnd(&s) % 8));
    if (rnd(&s) % 4 == 0)
      n = rnd(&s) % (n + 1);
    else if (rnd(&s) % 8 == 0)
      n += rnd(&s) % (sizeof(buf) - n);
    struct awf_dns_query q;
    if (parse(buf, n, &q) == AWF_DNS_PARSE_OK)
      ok++;
    check_answerable(buf, n);
  }
  assert_true(ok > 1000); /* the mutations do reach the happy path */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_dig_edns),
      cmocka_unit_test(test_parse_dig_noedns),
      cmocka_unit_test(test_parse_dig_do_mixed_case),
      cmocka_unit_test(test_parse_every_truncation),
      cmocka_unit_test(test_parse_null_and_empty),
      cmocka_unit_test(test_parse_response_dropped),
      cmocka_unit_test(test_parse_opcodes),
      cmocka_unit_test(test_parse_section_counts),
      cmocka_unit_test(test_parse_ignores_other_flags),
      cmocka_unit_test(test_parse_label_limits),
      cmocka_unit_test(test_parse_name_limits),
      cmocka_unit_test(test_parse_pointers_rejected),
      cmocka_unit_test(test_parse_name_flags),
      cmocka_unit_test(test_parse_class_and_type),
      cmocka_unit_test(test_parse_trailing_garbage),
      cmocka_unit_test(test_parse_edns),
      cmocka_unit_test(test_parse_edns_malformed),
      cmocka_unit_test(test_parse_edns_badvers),
      cmocka_unit_test(test_build_a_aaaa),
      cmocka_unit_test(test_build_echoes_case_and_do),
      cmocka_unit_test(test_build_cname_chain),
      cmocka_unit_test(test_build_long_chain),
      cmocka_unit_test(test_build_truncates_udp),
      cmocka_unit_test(test_build_truncates_whole_records),
      cmocka_unit_test(test_build_far_names),
      cmocka_unit_test(test_build_formerr_keeps_id),
      cmocka_unit_test(test_build_badvers),
      cmocka_unit_test(test_build_refused_and_flags),
      cmocka_unit_test(test_build_errors),
      cmocka_unit_test(test_tcp_framing),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_name_text_escapes),
      cmocka_unit_test(test_random_bytes),
      cmocka_unit_test(test_mutated_queries),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
