/* dns_msg.c: parse DNS queries and build responses (RFC 1035, RFC 6891).
 *
 * The parser reads through a cursor (common/bytes.h) that refuses to move
 * past the bytes it was given, so no length in the packet is trusted. It never follows
 * compression pointers (see dns_msg.h), so it has no loops to protect.
 *
 * The builder writes into the caller's buffer through a writer with a hard
 * cap. Answers are written one at a time; one that does not fit is rolled
 * back and ends the answer section with TC set. Space for the OPT record is
 * held back while answers are written so a truncated reply keeps its EDNS
 * information (RFC 6891 7). */
#include "dns_msg.h"

#include "bytes.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define FLAG_QR 0x8000u
#define FLAG_TC 0x0200u
#define FLAG_RD 0x0100u
#define FLAG_RA 0x0080u
#define FLAG_CD 0x0010u
#define OPCODE_QUERY 0

#define LABEL_TYPE_MASK 0xC0u  /* 00: length, 11: pointer, 01/10: reserved */
#define PTR_OFFSET_MAX 0x3FFFu /* a compression pointer holds 14 bits */
#define OPT_RR_LEN 11          /* root owner, type, class, ttl, rdlength */
#define RR_FIXED_LEN 10        /* type, class, ttl, rdlength after the owner */
#define NAME_TABLE_MAX 16      /* compression targets remembered per message */

/* ---- reading ---- */

static uint8_t ascii_lower(uint8_t b) {
  return b >= 'A' && b <= 'Z' ? (uint8_t)(b + ('a' - 'A')) : b;
}

static bool host_byte_ok(uint8_t b) { return b >= 0x21 && b <= 0x7e && b != '.'; }

/* Append one label to the text form. The wire limit checked by the caller
 * keeps the text within AWF_DNS_NAME_MAX: 255 wire bytes hold at most 253
 * bytes of labels and separating dots. */
static void text_add_label(struct awf_dns_query *q, const uint8_t *lab, size_t n) {
  if (q->qname_len > 0)
    q->qname[q->qname_len++] = '.';
  for (size_t i = 0; i < n; i++) {
    if (!host_byte_ok(lab[i]))
      q->name_ok = false;
    q->qname[q->qname_len++] = (char)ascii_lower(lab[i]);
  }
}

/* The question name, uncompressed. Fills qname and its wire length. */
static bool read_qname(struct awf_bytes *c, struct awf_dns_query *q, size_t *wire) {
  *wire = 0;
  q->qname_len = 0;
  q->name_ok = true;
  for (;;) {
    uint8_t n;
    const uint8_t *lab;
    if (awf_bytes_u8(c, &n) != AWF_BYTES_OK || (n & LABEL_TYPE_MASK) != 0)
      return false; /* truncated, a pointer, or a label over 63 bytes */
    *wire += 1u + n;
    if (*wire > AWF_DNS_WIRE_NAME_MAX)
      return false;
    if (n == 0)
      break;
    if ((lab = awf_bytes_take(c, n)) == NULL)
      return false;
    text_add_label(q, lab, n);
  }
  if (q->qname_len == 0) {
    q->qname[q->qname_len++] = '.';
    q->name_ok = false; /* the root is no host name */
  }
  q->qname[q->qname_len] = '\0';
  return true;
}

static bool read_question(struct awf_bytes *c, struct awf_dns_query *q) {
  const uint8_t *start = awf_bytes_ptr(c);
  size_t wire;
  if (!read_qname(c, q, &wire) || awf_bytes_u16(c, &q->qtype) != AWF_BYTES_OK ||
      awf_bytes_u16(c, &q->qclass) != AWF_BYTES_OK)
    return false;
  q->qwire_len = (size_t)(awf_bytes_ptr(c) - start);
  memcpy(q->qwire, start, q->qwire_len);
  q->class_in = q->qclass == AWF_DNS_CLASS_IN;
  q->has_question = true;
  return true;
}

/* EDNS options are opaque to us, but their framing must add up. */
static bool read_opt_options(struct awf_bytes *c, size_t rdlen) {
  struct awf_bytes opts;
  if (awf_bytes_sub(c, rdlen, &opts) != AWF_BYTES_OK)
    return false;
  while (awf_bytes_left(&opts) > 0) {
    uint16_t code, len;
    awf_bytes_u16(&opts, &code);
    awf_bytes_u16(&opts, &len);
    awf_bytes_skip(&opts, len);
  }
  return awf_bytes_error(&opts) == AWF_BYTES_OK;
}

/* The one additional record a query may carry: a root-owned OPT. */
static bool read_opt(struct awf_bytes *c, struct awf_dns_query *q) {
  uint8_t owner;
  uint16_t type, size, rdlen;
  uint32_t ttl;
  if (awf_bytes_u8(c, &owner) != AWF_BYTES_OK || owner != 0 ||
      awf_bytes_u16(c, &type) != AWF_BYTES_OK || type != AWF_DNS_TYPE_OPT)
    return false;
  awf_bytes_u16(c, &size);
  awf_bytes_u32(c, &ttl);
  if (awf_bytes_u16(c, &rdlen) != AWF_BYTES_OK || !read_opt_options(c, rdlen))
    return false;
  q->has_edns = true;
  q->edns_udp_size = size;
  q->edns_version = (uint8_t)(ttl >> 16);
  q->edns_do = (ttl & 0x8000u) != 0;
  return true;
}

static int fail(struct awf_dns_query *q, int status, uint8_t rcode) {
  q->rcode = rcode;
  return status;
}

int awf_dns_parse_query(const uint8_t *msg, size_t len, struct awf_dns_query *q) {
  struct awf_bytes c;
  uint16_t flags, qd, an, ns, ar;

  memset(q, 0, sizeof(*q));
  awf_bytes_init(&c, msg, len);
  awf_bytes_u16(&c, &q->id);
  awf_bytes_u16(&c, &flags);
  awf_bytes_u16(&c, &qd);
  awf_bytes_u16(&c, &an);
  awf_bytes_u16(&c, &ns);
  if (awf_bytes_u16(&c, &ar) != AWF_BYTES_OK) /* the error is sticky */
    return AWF_DNS_PARSE_DROP;
  if (flags & FLAG_QR)
    return AWF_DNS_PARSE_DROP;
  q->opcode = (uint8_t)((flags >> 11) & 0xF);
  q->rd = (flags & FLAG_RD) != 0;
  q->cd = (flags & FLAG_CD) != 0;
  if (q->opcode != OPCODE_QUERY)
    return fail(q, AWF_DNS_PARSE_NOTIMP, AWF_DNS_NOTIMP);
  if (qd != 1 || an != 0 || ns != 0 || ar > 1 || !read_question(&c, q))
    return fail(q, AWF_DNS_PARSE_FORMERR, AWF_DNS_FORMERR);
  if (ar == 1 && !read_opt(&c, q))
    return fail(q, AWF_DNS_PARSE_FORMERR, AWF_DNS_FORMERR);
  if (awf_bytes_left(&c) != 0)
    return fail(q, AWF_DNS_PARSE_FORMERR, AWF_DNS_FORMERR);
  if (q->has_edns && q->edns_version != 0)
    return fail(q, AWF_DNS_PARSE_BADVERS, AWF_DNS_BADVERS);
  return AWF_DNS_PARSE_OK;
}

size_t awf_dns_udp_limit(const struct awf_dns_query *q) {
  if (!q->has_edns || q->edns_udp_size <= AWF_DNS_UDP_MIN)
    return AWF_DNS_UDP_MIN;
  return q->edns_udp_size < AWF_DNS_UDP_MAX ? q->edns_udp_size : AWF_DNS_UDP_MAX;
}

/* ---- writing ---- */

struct name_ref {
  uint16_t off; /* where an uncompressed copy of the name starts in buf */
  uint8_t len;  /* its wire length */
};

struct writer {
  uint8_t *buf;
  size_t len;
  size_t cap;
  struct name_ref names[NAME_TABLE_MAX];
  size_t nnames;
};

static bool w_put(struct writer *w, const void *p, size_t n) {
  if (n > w->cap - w->len)
    return false;
  memcpy(w->buf + w->len, p, n);
  w->len += n;
  return true;
}

static bool w_u16(struct writer *w, uint16_t v) {
  uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  return w_put(w, b, sizeof(b));
}

static bool w_u32(struct writer *w, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  return w_put(w, b, sizeof(b));
}

static void set_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

/* Dotted text (one trailing dot allowed, "." is the root) to wire form.
 * Labels are 1..63 bytes of anything but '.'; the name is <= 255 wire bytes. */
static int name_encode(const char *text, uint8_t wire[AWF_DNS_WIRE_NAME_MAX], size_t *wlen) {
  size_t len = strlen(text), pos = 0, i = 0;
  if (len == 0)
    return -EINVAL;
  if (len > 1 && text[len - 1] == '.')
    len--;
  else if (len == 1 && text[0] == '.')
    len = 0;
  while (i < len) {
    const char *dot = memchr(text + i, '.', len - i);
    size_t n = dot ? (size_t)(dot - (text + i)) : len - i;
    if (n == 0 || n > AWF_DNS_LABEL_MAX || pos + 1 + n + 1 > AWF_DNS_WIRE_NAME_MAX)
      return -EINVAL;
    wire[pos++] = (uint8_t)n;
    memcpy(wire + pos, text + i, n);
    pos += n;
    i += n + 1;
    if (dot && i == len)
      return -EINVAL; /* an empty last label: "a..", after the one dot we dropped */
  }
  wire[pos++] = 0;
  *wlen = pos;
  return 0;
}

/* Length bytes are < 64, below 'A', so lower-casing leaves them alone. */
static bool wire_eq(const uint8_t *a, const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (ascii_lower(a[i]) != ascii_lower(b[i]))
      return false;
  return true;
}

static const struct name_ref *name_find(const struct writer *w, const uint8_t *wire, size_t n) {
  for (size_t i = 0; i < w->nnames; i++)
    if (w->names[i].len == n && wire_eq(w->buf + w->names[i].off, wire, n))
      return &w->names[i];
  return NULL;
}

static void name_remember(struct writer *w, size_t off, size_t n) {
  if (off > PTR_OFFSET_MAX || w->nnames == NAME_TABLE_MAX)
    return;
  w->names[w->nnames].off = (uint16_t)off;
  w->names[w->nnames].len = (uint8_t)n;
  w->nnames++;
}

/* A whole name as a pointer to an earlier copy, else in full (and then
 * remembered). The root is a single byte; a pointer would be longer. */
static bool w_name(struct writer *w, const uint8_t *wire, size_t n) {
  const struct name_ref *ref = n > 1 ? name_find(w, wire, n) : NULL;
  size_t off = w->len;
  if (ref)
    return w_u16(w, (uint16_t)(0xC000u | ref->off));
  if (!w_put(w, wire, n))
    return false;
  if (n > 1)
    name_remember(w, off, n);
  return true;
}

static bool w_rdata(struct writer *w, const struct awf_dns_rr *rr) {
  uint8_t wire[AWF_DNS_WIRE_NAME_MAX];
  size_t n = 0;
  switch (rr->type) {
  case AWF_DNS_TYPE_A: return w_put(w, rr->u.a, sizeof(rr->u.a));
  case AWF_DNS_TYPE_AAAA: return w_put(w, rr->u.aaaa, sizeof(rr->u.aaaa));
  default: /* CNAME, PTR: validated by rr_check */
    return name_encode(rr->u.target, wire, &n) == 0 && w_name(w, wire, n);
  }
}

/* One answer, or nothing: on overflow the writer is restored. */
static bool w_rr(struct writer *w, const struct awf_dns_query *q, const struct awf_dns_rr *rr) {
  size_t saved_len = w->len, saved_names = w->nnames, rdlen_at;
  uint8_t owner[AWF_DNS_WIRE_NAME_MAX];
  const uint8_t *ow = owner;
  size_t on = 0;

  if (rr->owner == NULL) {
    ow = q->qwire;
    on = q->qwire_len - 4;
  } else if (name_encode(rr->owner, owner, &on) != 0) {
    return false;
  }
  bool ok = w_name(w, ow, on) && w_u16(w, rr->type) && w_u16(w, AWF_DNS_CLASS_IN) &&
            w_u32(w, rr->ttl);
  rdlen_at = w->len;
  ok = ok && w_u16(w, 0) && w_rdata(w, rr);
  if (!ok) {
    w->len = saved_len;
    w->nnames = saved_names;
    return false;
  }
  set_u16(w->buf + rdlen_at, (uint16_t)(w->len - rdlen_at - 2));
  return true;
}

static int rr_check(const struct awf_dns_query *q, const struct awf_dns_rr *rr) {
  uint8_t wire[AWF_DNS_WIRE_NAME_MAX];
  size_t n;
  if (rr->owner == NULL ? !q->has_question : name_encode(rr->owner, wire, &n) != 0)
    return -EINVAL;
  if (rr->type == AWF_DNS_TYPE_CNAME || rr->type == AWF_DNS_TYPE_PTR)
    return rr->u.target && name_encode(rr->u.target, wire, &n) == 0 ? 0 : -EINVAL;
  return rr->type == AWF_DNS_TYPE_A || rr->type == AWF_DNS_TYPE_AAAA ? 0 : -EINVAL;
}

static int check_args(const struct awf_dns_query *q, unsigned rcode,
                      const struct awf_dns_rr *rrs, size_t nrr) {
  if (rcode > 0xFFFu || (rcode > 0xFu && !q->has_edns) || (nrr > 0 && rrs == NULL))
    return -EINVAL;
  if (q->has_question && (q->qwire_len < 5 || q->qwire_len > sizeof(q->qwire)))
    return -EINVAL;
  for (size_t i = 0; i < nrr; i++) {
    int rc = rr_check(q, &rrs[i]);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* Bytes of the EDE option (RFC 8914): code, length, info-code, text. */
static size_t ede_len(const struct awf_dns_ede *ede) {
  return ede ? 6 + strnlen(ede->text ? ede->text : "", AWF_DNS_EDE_TEXT_MAX) : 0;
}

static bool w_opt(struct writer *w, const struct awf_dns_query *q, unsigned rcode,
                  const struct awf_dns_ede *ede) {
  uint32_t ttl = (uint32_t)(rcode >> 4) << 24 | (q->edns_do ? 0x8000u : 0);
  uint8_t root = 0;
  size_t elen = ede_len(ede);
  if (!(w_put(w, &root, 1) && w_u16(w, AWF_DNS_TYPE_OPT) && w_u16(w, AWF_DNS_UDP_MAX) &&
        w_u32(w, ttl) && w_u16(w, (uint16_t)elen)))
    return false;
  if (!ede)
    return true;
  return w_u16(w, AWF_DNS_OPT_EDE) && w_u16(w, (uint16_t)(elen - 4)) &&
         w_u16(w, ede->info_code) &&
         w_put(w, (const uint8_t *)(ede->text ? ede->text : ""), elen - 6);
}

static uint16_t reply_flags(const struct awf_dns_query *q, unsigned rcode, bool tc) {
  unsigned f = FLAG_QR | FLAG_RA | (unsigned)(q->opcode & 0xF) << 11 | (rcode & 0xFu);
  if (q->rd)
    f |= FLAG_RD;
  if (q->cd)
    f |= FLAG_CD;
  if (tc)
    f |= FLAG_TC;
  return (uint16_t)f;
}

int awf_dns_build_response(const struct awf_dns_query *q, unsigned rcode,
                           const struct awf_dns_rr *rrs, size_t nrr, size_t limit, uint8_t *out,
                           size_t outsz, size_t *nanswers) {
  return awf_dns_build_response_ede(q, rcode, rrs, nrr, NULL, limit, out, outsz, nanswers);
}

int awf_dns_build_response_ede(const struct awf_dns_query *q, unsigned rcode,
                               const struct awf_dns_rr *rrs, size_t nrr,
                               const struct awf_dns_ede *ede, size_t limit, uint8_t *out,
                               size_t outsz, size_t *nanswers) {
  if (!q->has_edns)
    ede = NULL; /* an option needs an OPT record, which only EDNS clients get */
  size_t cap = limit < outsz ? limit : outsz, opt = q->has_edns ? OPT_RR_LEN + ede_len(ede) : 0,
         n = 0;
  struct writer w = {.buf = out, .len = 0};
  int rc = check_args(q, rcode, rrs, nrr);

  if (nanswers)
    *nanswers = 0;
  if (rc < 0)
    return rc;
  if (out == NULL)
    return -EINVAL;
  if (cap > AWF_DNS_TCP_MAX)
    cap = AWF_DNS_TCP_MAX; /* ANCOUNT and the TCP prefix are 16 bits */
  if (cap < AWF_DNS_HEADER_LEN + opt)
    return -ENOSPC;
  w.cap = cap - opt;
  if (!w_u16(&w, q->id) || !w_u16(&w, 0) || !w_u16(&w, q->has_question) || !w_u16(&w, 0) ||
      !w_u16(&w, 0) || !w_u16(&w, q->has_edns))
    return -ENOSPC;
  if (q->has_question) {
    size_t name_len = q->qwire_len - 4;
    if (!w_put(&w, q->qwire, q->qwire_len))
      return -ENOSPC;
    if (name_len > 1)
      name_remember(&w, AWF_DNS_HEADER_LEN, name_len);
  }
  while (n < nrr && w_rr(&w, q, &rrs[n]))
    n++;
  w.cap = cap;
  if (opt && !w_opt(&w, q, rcode, ede))
    return -ENOSPC; /* cannot happen: the space was held back */
  set_u16(out + 2, reply_flags(q, rcode, n < nrr));
  set_u16(out + 6, (uint16_t)n);
  if (nanswers)
    *nanswers = n;
  return (int)w.len;
}

/* ---- TCP framing ---- */

int awf_dns_tcp_next(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msglen) {
  if (len < 2)
    return 0;
  size_t n = (size_t)buf[0] << 8 | buf[1];
  if (n == 0)
    return -EBADMSG;
  if (len - 2 < n)
    return 0;
  *msg = buf + 2;
  *msglen = n;
  return 1;
}

int awf_dns_tcp_prefix(uint8_t prefix[2], size_t msglen) {
  if (msglen > AWF_DNS_TCP_MAX)
    return -EMSGSIZE;
  set_u16(prefix, (uint16_t)msglen);
  return 0;
}

/* ---- names for logs ---- */

size_t awf_dns_escape(const uint8_t *p, size_t n, bool escape_dot, char *out, size_t outsz) {
  size_t len = 0;
  if (outsz == 0)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char e[5];
    size_t el;
    uint8_t b = p[i];
    if (b < 0x21 || b > 0x7e) {
      e[0] = '\\';
      e[1] = (char)('0' + b / 100);
      e[2] = (char)('0' + b / 10 % 10);
      e[3] = (char)('0' + b % 10);
      el = 4;
    } else if (b == '\\' || (b == '.' && escape_dot)) {
      e[0] = '\\';
      e[1] = (char)b;
      el = 2;
    } else {
      e[0] = (char)b;
      el = 1;
    }
    if (el >= outsz - len)
      break;
    memcpy(out + len, e, el);
    len += el;
  }
  out[len] = '\0';
  return len;
}

size_t awf_dns_name_text(const struct awf_dns_query *q, char *out, size_t outsz) {
  size_t len = 0;
  if (outsz == 0)
    return 0;
  out[0] = '\0';
  if (!q->has_question)
    return 0;
  /* qwire was checked by the parser: labels without pointers, then the root
   * label, then type and class. */
  for (size_t off = 0; off < q->qwire_len && q->qwire[off] != 0;) {
    size_t n = q->qwire[off];
    if (n > AWF_DNS_LABEL_MAX || off + 1 + n > q->qwire_len)
      break;
    uint8_t lab[AWF_DNS_LABEL_MAX];
    for (size_t i = 0; i < n; i++)
      lab[i] = ascii_lower(q->qwire[off + 1 + i]);
    if (len > 0) {
      if (len + 1 >= outsz)
        break;
      out[len++] = '.';
      out[len] = '\0';
    }
    len += awf_dns_escape(lab, n, true, out + len, outsz - len);
    off += 1 + n;
  }
  if (len == 0 && outsz > 1) {
    out[len++] = '.';
    out[len] = '\0';
  }
  return len;
}

static const struct {
  uint16_t type;
  const char *name;
} type_names[] = {
    {AWF_DNS_TYPE_A, "A"},     {AWF_DNS_TYPE_NS, "NS"},     {AWF_DNS_TYPE_CNAME, "CNAME"},
    {AWF_DNS_TYPE_SOA, "SOA"}, {AWF_DNS_TYPE_PTR, "PTR"},   {AWF_DNS_TYPE_MX, "MX"},
    {AWF_DNS_TYPE_TXT, "TXT"}, {AWF_DNS_TYPE_AAAA, "AAAA"}, {AWF_DNS_TYPE_SRV, "SRV"},
    {AWF_DNS_TYPE_OPT, "OPT"}, {AWF_DNS_TYPE_SVCB, "SVCB"}, {AWF_DNS_TYPE_HTTPS, "HTTPS"},
    {AWF_DNS_TYPE_ANY, "ANY"},
};

const char *awf_dns_type_name(uint16_t type, char *buf, size_t bufsz) {
  for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
    if (type_names[i].type == type)
      return type_names[i].name;
  if (buf == NULL || bufsz == 0)
    return "TYPE";
  snprintf(buf, bufsz, "TYPE%u", (unsigned)type);
  return buf;
}

const char *awf_dns_rcode_name(unsigned rcode) {
  switch (rcode) {
  case AWF_DNS_NOERROR: return "NOERROR";
  case AWF_DNS_FORMERR: return "FORMERR";
  case AWF_DNS_SERVFAIL: return "SERVFAIL";
  case AWF_DNS_NXDOMAIN: return "NXDOMAIN";
  case AWF_DNS_NOTIMP: return "NOTIMP";
  case AWF_DNS_REFUSED: return "REFUSED";
  case AWF_DNS_BADVERS: return "BADVERS";
  default: return "UNKNOWN";
  }
}

const char *awf_dns_parse_status_name(int status) {
  switch (status) {
  case AWF_DNS_PARSE_OK: return "ok";
  case AWF_DNS_PARSE_FORMERR: return "formerr";
  case AWF_DNS_PARSE_NOTIMP: return "notimp";
  case AWF_DNS_PARSE_BADVERS: return "badvers";
  case AWF_DNS_PARSE_DROP: return "drop";
  default: return "unknown";
  }
}
