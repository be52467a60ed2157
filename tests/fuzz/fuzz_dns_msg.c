/* fuzz_dns_msg.c: libFuzzer target for the DNS codec (proxy/dns_msg.c).
 *
 * The input is a query as the filtered DNS server receives it. Like the
 * server, the target parses it and, unless it is to be dropped, builds the
 * response (answers derived from the input: CNAME chains, A, AAAA, enough of
 * them to overflow UDP) under the UDP limit and under the TCP limit. Checks:
 * - the parsed query is self-consistent (qname length, NUL-termination,
 *   name_ok only for printable dot-free labels, qwire is the question sent);
 * - every response fits its limit and reads back, with an independent
 *   walker, as exactly what was asked for: header bits, the question echoed
 *   byte for byte, the first N answers in order with their owners and CNAME
 *   targets (compression pointers only ever pointing backwards to a name),
 *   TC set exactly when answers were left out, the OPT record, no trailing
 *   bytes; over TCP nothing is left out;
 * - a response without answers, its QR bit cleared, parses back as the same
 *   query (so the question echo is a faithful copy);
 * - TCP framing round-trips, and the input read as a TCP stream never yields
 *   a message outside it.
 */
#include "dns_msg.h"
#include "fuzz_check.h"

#include <errno.h>

#define MAX_RRS 96
#define NAME_TEXT_MAX 300

/* ---- an independent reader for the responses ---- */

struct rd {
  const uint8_t *p;
  size_t len, off;
};

static unsigned rd_u8(struct rd *r) {
  FUZZ_CHECK(r->off < r->len);
  return r->p[r->off++];
}

static unsigned rd_u16(struct rd *r) {
  unsigned hi = rd_u8(r);
  return hi << 8 | rd_u8(r);
}

static uint32_t rd_u32(struct rd *r) {
  uint32_t hi = rd_u16(r);
  return hi << 16 | rd_u16(r);
}

static uint8_t lower(uint8_t b) { return b >= 'A' && b <= 'Z' ? (uint8_t)(b + 32) : b; }

/* A name at r->off, pointers followed, into wire form (labels + root), with
 * ASCII letters lower-cased. Pointers must aim strictly before the place
 * they are read from and at a recorded name start. */
static size_t rd_name(struct rd *r, uint8_t *wire, const bool *starts) {
  size_t n = 0;
  bool jumped = false;
  struct rd c = *r;
  for (;;) {
    size_t label_at = c.off;
    unsigned b = rd_u8(&c);
    if ((b & 0xC0) == 0xC0) {
      size_t target = (b & 0x3F) << 8 | rd_u8(&c);
      FUZZ_CHECK(target >= AWF_DNS_HEADER_LEN && target < label_at && starts[target]);
      if (!jumped)
        r->off = c.off; /* the name ends with its first pointer */
      jumped = true;
      c.off = target;
      continue;
    }
    FUZZ_CHECK((b & 0xC0) == 0 && n + 1 + b <= AWF_DNS_WIRE_NAME_MAX);
    wire[n++] = (uint8_t)b;
    if (b == 0)
      break;
    FUZZ_CHECK(c.len - c.off >= b);
    for (unsigned i = 0; i < b; i++)
      wire[n++] = lower(c.p[c.off++]);
  }
  if (!jumped)
    r->off = c.off;
  return n;
}

/* Mark where a name written in full starts (for the pointer check). */
static void mark_starts(const uint8_t *p, size_t off, size_t end, bool *starts) {
  while (off < end && p[off] != 0 && (p[off] & 0xC0) == 0) {
    starts[off] = true;
    off += 1u + p[off];
  }
}

/* Dotted text to lower-case wire form, "" as the root. */
static size_t text_wire(const char *text, uint8_t *wire) {
  size_t len = strlen(text), n = 0, i = 0;
  if (len > 0 && text[len - 1] == '.')
    len--;
  while (i < len) {
    const char *dot = memchr(text + i, '.', len - i);
    size_t l = dot ? (size_t)(dot - (text + i)) : len - i;
    wire[n++] = (uint8_t)l;
    for (size_t k = 0; k < l; k++)
      wire[n++] = lower((uint8_t)text[i + k]);
    i += l + 1;
  }
  wire[n++] = 0;
  return n;
}

/* ---- the answers to build ---- */

struct answers {
  struct awf_dns_rr rr[MAX_RRS];
  char names[4][NAME_TEXT_MAX];
  size_t n;
};

/* Owners and CNAME targets: valid names, some equal up to case to the
 * question or to each other, so compression has something to find. */
static void make_answers(const struct awf_dns_query *q, uint32_t seed, struct answers *a) {
  snprintf(a->names[0], NAME_TEXT_MAX, "c%u.example.", (unsigned)(seed & 0xFF));
  snprintf(a->names[1], NAME_TEXT_MAX, "C%u.EXAMPLE", (unsigned)(seed & 0xFF));
  snprintf(a->names[2], NAME_TEXT_MAX, "%s", q->name_ok ? q->qname : "x.example");
  snprintf(a->names[3], NAME_TEXT_MAX, "edge.c%u.example", (unsigned)(seed >> 8 & 0xF));
  if (q->name_ok)
    for (char *p = a->names[2]; *p; p++)
      if (*p >= 'a' && *p <= 'z' && (seed >> 3 & 1))
        *p = (char)(*p - 32);
  a->n = seed % (MAX_RRS + 1);
  for (size_t i = 0; i < a->n; i++) {
    struct awf_dns_rr *rr = &a->rr[i];
    uint32_t x = seed ^ (uint32_t)(i * 2654435761u);
    memset(rr, 0, sizeof(*rr));
    rr->ttl = x % 31;
    rr->owner = (x >> 5) % 3 == 0 ? NULL : a->names[(x >> 7) % 4];
    if (rr->owner == NULL && !q->has_question)
      rr->owner = a->names[0];
    switch ((x >> 10) % 4) {
    case 0:
      rr->type = AWF_DNS_TYPE_CNAME;
      rr->u.target = a->names[(x >> 12) % 4];
      break;
    case 1:
      rr->type = AWF_DNS_TYPE_AAAA;
      memset(rr->u.aaaa, (int)(x >> 14), sizeof(rr->u.aaaa));
      break;
    default:
      rr->type = AWF_DNS_TYPE_A;
      memcpy(rr->u.a, &x, sizeof(rr->u.a));
      break;
    }
  }
}

/* ---- checks ---- */

static void check_query(int st, const struct awf_dns_query *q, const uint8_t *msg, size_t len) {
  FUZZ_CHECK(st == AWF_DNS_PARSE_OK || st == AWF_DNS_PARSE_FORMERR ||
             st == AWF_DNS_PARSE_NOTIMP || st == AWF_DNS_PARSE_BADVERS ||
             st == AWF_DNS_PARSE_DROP);
  FUZZ_CHECK(strcmp(awf_dns_parse_status_name(st), "unknown") != 0);
  if (st == AWF_DNS_PARSE_DROP)
    FUZZ_CHECK(len < AWF_DNS_HEADER_LEN || (msg[2] & 0x80));
  if (st == AWF_DNS_PARSE_OK)
    FUZZ_CHECK(q->has_question && q->opcode == 0 && (!q->has_edns || q->edns_version == 0));
  if (!q->has_question)
    return;
  FUZZ_CHECK(q->qname_len >= 1 && q->qname_len <= AWF_DNS_NAME_MAX);
  FUZZ_CHECK(q->qname[q->qname_len] == '\0');
  FUZZ_CHECK(q->qwire_len >= 5 && q->qwire_len <= AWF_DNS_WIRE_NAME_MAX + 4);
  FUZZ_CHECK(len >= AWF_DNS_HEADER_LEN + q->qwire_len);
  FUZZ_CHECK(memcmp(q->qwire, msg + AWF_DNS_HEADER_LEN, q->qwire_len) == 0);
  FUZZ_CHECK(q->class_in == (q->qclass == AWF_DNS_CLASS_IN));
  if (q->name_ok) {
    FUZZ_CHECK(strlen(q->qname) == q->qname_len && strcmp(q->qname, ".") != 0);
    for (size_t i = 0; i < q->qname_len; i++)
      FUZZ_CHECK(q->qname[i] >= 0x21 && q->qname[i] <= 0x7e &&
                 !(q->qname[i] >= 'A' && q->qname[i] <= 'Z'));
    uint8_t wire[AWF_DNS_WIRE_NAME_MAX + 1];
    size_t n = text_wire(q->qname, wire);
    FUZZ_CHECK(n == q->qwire_len - 4);
    for (size_t i = 0; i < n; i++)
      FUZZ_CHECK(wire[i] == lower(q->qwire[i]));
  }
  char tb[AWF_DNS_TYPE_NAME_SIZE];
  const char *tn = awf_dns_type_name(q->qtype, tb, sizeof(tb));
  FUZZ_CHECK(tn != NULL && strlen(tn) < AWF_DNS_TYPE_NAME_SIZE);
}

static void check_response(const struct awf_dns_query *q, unsigned rcode,
                           const struct answers *a, size_t limit, const uint8_t *out, int len,
                           size_t nans) {
  FUZZ_CHECK(len >= AWF_DNS_HEADER_LEN && (size_t)len <= limit);
  FUZZ_CHECK(nans <= a->n);
  bool *starts = calloc((size_t)len, sizeof(bool));
  FUZZ_CHECK(starts != NULL);
  struct rd r = {out, (size_t)len, 0};
  FUZZ_CHECK(rd_u16(&r) == q->id);
  unsigned flags = rd_u16(&r);
  FUZZ_CHECK(flags & 0x8000); /* QR */
  FUZZ_CHECK(((flags >> 11) & 0xF) == q->opcode);
  FUZZ_CHECK(((flags & 0x0200) != 0) == (nans < a->n)); /* TC */
  FUZZ_CHECK(((flags & 0x0100) != 0) == q->rd);
  FUZZ_CHECK(((flags & 0x0010) != 0) == q->cd);
  FUZZ_CHECK((flags & 0xF) == (rcode & 0xF));
  FUZZ_CHECK(rd_u16(&r) == (unsigned)q->has_question);
  FUZZ_CHECK(rd_u16(&r) == nans);
  FUZZ_CHECK(rd_u16(&r) == 0);
  FUZZ_CHECK(rd_u16(&r) == (unsigned)q->has_edns);
  uint8_t want[AWF_DNS_WIRE_NAME_MAX + 1], got[AWF_DNS_WIRE_NAME_MAX + 1];
  if (q->has_question) {
    FUZZ_CHECK((size_t)len - r.off >= q->qwire_len);
    FUZZ_CHECK(memcmp(out + r.off, q->qwire, q->qwire_len) == 0);
    mark_starts(out, r.off, r.off + q->qwire_len - 4, starts);
    r.off += q->qwire_len;
  }
  for (size_t i = 0; i < nans; i++) {
    const struct awf_dns_rr *rr = &a->rr[i];
    size_t wn;
    if (rr->owner) {
      wn = text_wire(rr->owner, want);
    } else {
      wn = q->qwire_len - 4;
      for (size_t k = 0; k < wn; k++)
        want[k] = lower(q->qwire[k]);
    }
    mark_starts(out, r.off, (size_t)len, starts);
    FUZZ_CHECK(rd_name(&r, got, starts) == wn && memcmp(got, want, wn) == 0);
    FUZZ_CHECK(rd_u16(&r) == rr->type && rd_u16(&r) == AWF_DNS_CLASS_IN);
    FUZZ_CHECK(rd_u32(&r) == rr->ttl);
    size_t rdlen = rd_u16(&r), rdata_at = r.off;
    if (rr->type == AWF_DNS_TYPE_A) {
      FUZZ_CHECK(rdlen == 4 && (size_t)len - r.off >= 4 &&
                 memcmp(out + r.off, rr->u.a, 4) == 0);
      r.off += 4;
    } else if (rr->type == AWF_DNS_TYPE_AAAA) {
      FUZZ_CHECK(rdlen == 16 && (size_t)len - r.off >= 16 &&
                 memcmp(out + r.off, rr->u.aaaa, 16) == 0);
      r.off += 16;
    } else {
      wn = text_wire(rr->u.target, want);
      mark_starts(out, r.off, (size_t)len, starts);
      FUZZ_CHECK(rd_name(&r, got, starts) == wn && memcmp(got, want, wn) == 0);
      FUZZ_CHECK(r.off - rdata_at == rdlen);
    }
  }
  if (q->has_edns) {
    FUZZ_CHECK(rd_u8(&r) == 0 && rd_u16(&r) == AWF_DNS_TYPE_OPT);
    FUZZ_CHECK(rd_u16(&r) == AWF_DNS_UDP_MAX);
    uint32_t ttl = rd_u32(&r);
    FUZZ_CHECK(ttl >> 24 == rcode >> 4 && ((ttl >> 16) & 0xFF) == 0);
    FUZZ_CHECK(((ttl & 0x8000) != 0) == q->edns_do);
    FUZZ_CHECK(rd_u16(&r) == 0);
  }
  FUZZ_CHECK(r.off == (size_t)len);
  free(starts);
}

/* One record with a name no encoder may accept spoils the whole build. */
static void check_bad_name(const struct awf_dns_query *q, unsigned rcode, struct answers *a,
                           uint32_t seed, uint8_t *out) {
  static const char *const bad[] = {
      "",      "a..b",
      "..",    ".a",
      "a.b..", "x.0123456789012345678901234567890123456789012345678901234567890123.y" /* 64 */};
  static char too_long[AWF_DNS_NAME_MAX + 8];
  size_t nans = 7;
  memset(too_long, 'a', sizeof(too_long) - 1);
  for (size_t i = 1; i < sizeof(too_long) - 1; i += 2)
    too_long[i] = '.'; /* "a.a. ... a.": 130 labels, 261 bytes on the wire */
  size_t pick = (seed >> 16) % (sizeof(bad) / sizeof(bad[0]) + 1);
  const char *name = pick < sizeof(bad) / sizeof(bad[0]) ? bad[pick] : too_long;
  struct awf_dns_rr saved = a->rr[0];
  a->rr[0].type = AWF_DNS_TYPE_CNAME;
  if (seed & 1)
    a->rr[0].owner = name;
  else
    a->rr[0].u.target = name;
  FUZZ_CHECK(awf_dns_build_response(q, rcode, a->rr, a->n, AWF_DNS_TCP_MAX, out,
                                    AWF_DNS_TCP_MAX, &nans) == -EINVAL &&
             nans == 0);
  a->rr[0] = saved;
}

/* A response without answers is the query echoed: read back as a query it
 * must give the same question. */
static void check_echo(const struct awf_dns_query *q, uint8_t *out, size_t outsz) {
  struct awf_dns_query back;
  int len = awf_dns_build_response(q, AWF_DNS_REFUSED, NULL, 0, AWF_DNS_UDP_MIN, out, outsz,
                                   NULL);
  FUZZ_CHECK(len > 0);
  out[2] &= 0x7F; /* QR off */
  FUZZ_CHECK(awf_dns_parse_query(out, (size_t)len, &back) == AWF_DNS_PARSE_OK);
  FUZZ_CHECK(back.id == q->id && back.rd == q->rd && back.cd == q->cd);
  FUZZ_CHECK(back.qname_len == q->qname_len && memcmp(back.qname, q->qname, q->qname_len) == 0);
  FUZZ_CHECK(back.name_ok == q->name_ok && back.qtype == q->qtype && back.qclass == q->qclass);
  FUZZ_CHECK(back.qwire_len == q->qwire_len && memcmp(back.qwire, q->qwire, q->qwire_len) == 0);
  FUZZ_CHECK(back.has_edns == q->has_edns && back.edns_do == q->edns_do);
  if (q->has_edns)
    FUZZ_CHECK(back.edns_udp_size == AWF_DNS_UDP_MAX &&
               awf_dns_udp_limit(&back) == AWF_DNS_UDP_MAX);
}

static void check_tcp(const uint8_t *data, size_t size, size_t rlen) {
  uint8_t prefix[2];
  FUZZ_CHECK(awf_dns_tcp_prefix(prefix, rlen) == 0);
  FUZZ_CHECK(awf_dns_tcp_prefix(prefix, AWF_DNS_TCP_MAX + 1) == -EMSGSIZE);
  /* The input as a TCP stream: messages must lie inside it. */
  size_t off = 0;
  for (;;) {
    const uint8_t *m;
    size_t mlen;
    int rc = awf_dns_tcp_next(data + off, size - off, &m, &mlen);
    FUZZ_CHECK(rc == 0 || rc == 1 || rc == -EBADMSG);
    if (rc != 1)
      break;
    FUZZ_CHECK(m == data + off + 2 && mlen >= 1 && mlen <= size - off - 2);
    off += 2 + mlen;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *msg = fuzz_dup(data, size);
  struct awf_dns_query q;
  int st = awf_dns_parse_query(msg, size, &q);
  check_query(st, &q, msg, size);
  free(msg);
  if (st == AWF_DNS_PARSE_DROP)
    return 0;

  uint32_t seed = fuzz_hash(data, size);
  static const unsigned ok_rcodes[] = {AWF_DNS_NOERROR, AWF_DNS_NXDOMAIN, AWF_DNS_REFUSED,
                                       AWF_DNS_SERVFAIL};
  unsigned rcode = st == AWF_DNS_PARSE_OK ? ok_rcodes[seed >> 28 & 3] : q.rcode;
  struct answers *a = malloc(sizeof(*a));
  FUZZ_CHECK(a != NULL);
  if (st == AWF_DNS_PARSE_OK)
    make_answers(&q, seed, a);
  else
    a->n = 0;

  uint8_t *out = malloc(AWF_DNS_TCP_MAX);
  FUZZ_CHECK(out != NULL);
  size_t nans = 0;
  FUZZ_CHECK(awf_dns_rcode_name(rcode) != NULL);
  if (a->n > 0 && (seed >> 24 & 15) == 0)
    check_bad_name(&q, rcode, a, seed, out);
  if (rcode > 0xF && !q.has_edns) {
    FUZZ_CHECK(awf_dns_build_response(&q, rcode, a->rr, a->n, AWF_DNS_UDP_MIN, out,
                                      AWF_DNS_TCP_MAX, &nans) == -EINVAL);
  } else {
    size_t limits[2] = {awf_dns_udp_limit(&q), AWF_DNS_TCP_MAX};
    FUZZ_CHECK(limits[0] >= AWF_DNS_UDP_MIN && limits[0] <= AWF_DNS_UDP_MAX);
    for (int i = 0; i < 2; i++) {
      int len = awf_dns_build_response(&q, rcode, a->rr, a->n, limits[i], out, AWF_DNS_TCP_MAX,
                                       &nans);
      check_response(&q, rcode, a, limits[i], out, len, nans);
      if (i == 1) {
        FUZZ_CHECK(nans == a->n); /* at most MAX_RRS answers always fit TCP */
        check_tcp(data, size, (size_t)len);
      }
    }
  }
  if (st == AWF_DNS_PARSE_OK)
    check_echo(&q, out, AWF_DNS_TCP_MAX);
  free(out);
  free(a);
  return 0;
}
