/* sni.c: find the server name in a TLS ClientHello (RFC 8446 4.1.2,
 * RFC 6066 3) without trusting a single length in it.
 *
 * Two layers. The record layer walks TLS records from the start of the input
 * and copies their fragments into a local buffer until it holds the whole
 * handshake message. The hello layer then reads that message through a
 * cursor that knows two limits: the end the enclosing length declares and
 * the end of the bytes that have arrived. Running past the declared end is
 * MALFORMED; running past the arrived bytes is NEED_MORE. That lets a
 * truncated hello be checked as far as it goes, so garbage is refused early
 * while every honest prefix asks for more. */
#include "sni.h"

#include "bytes.h"

#include <string.h>

#define REC_HDR 5
#define HS_HDR 4
#define REC_TYPE_HANDSHAKE 22
#define HS_CLIENT_HELLO 1
#define REC_FRAGMENT_MAX 16384 /* 2^14: RFC 8446 5.1 */

#define EXT_SERVER_NAME 0x0000
#define EXT_ECH 0xfe0d
#define SNI_HOST_NAME 0

/* The cursor's two ends are the enclosing length and the arrived bytes:
 * past the first is MALFORMED, past the second NEED_MORE. */
static enum awf_hello_status st(const struct awf_bytes *c) {
  switch (awf_bytes_error(c)) {
  case AWF_BYTES_OK: return AWF_HELLO_OK;
  case AWF_BYTES_MORE: return AWF_HELLO_NEED_MORE;
  default: return AWF_HELLO_MALFORMED;
  }
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Printable ASCII without space: a host name has no business outside it, and
 * a NUL would let the C string disagree with the bytes on the wire. */
static bool sni_bytes_ok(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] < 0x21 || p[i] >= 0x7f)
      return false;
  return true;
}

static enum awf_hello_status parse_host_name(struct awf_bytes *list, struct awf_tls_hello *h) {
  struct awf_bytes name;
  size_t n;
  const uint8_t *p;
  if (awf_bytes_vec(list, 2, &name, &n) != AWF_BYTES_OK)
    return st(list);
  if (n >= sizeof(h->sni))
    return AWF_HELLO_MALFORMED; /* no DNS name is this long */
  if ((p = awf_bytes_take(&name, n)) == NULL)
    return st(&name);
  if (!sni_bytes_ok(p, n))
    return AWF_HELLO_MALFORMED;
  if (h->has_sni) {
    h->sni_multiple = true;
    return AWF_HELLO_OK;
  }
  h->has_sni = true;
  memcpy(h->sni, p, n);
  h->sni[n] = '\0';
  h->sni_len = n;
  return AWF_HELLO_OK;
}

/* ServerNameList server_name_list<1..2^16-1>, filling the extension exactly.
 * Only host_name is defined, and other name types have no defined layout to
 * skip by, so they are refused rather than guessed at. */
static enum awf_hello_status parse_server_name(struct awf_bytes *ext, struct awf_tls_hello *h) {
  struct awf_bytes list;
  size_t n;
  enum awf_hello_status s;
  if (awf_bytes_vec(ext, 2, &list, &n) != AWF_BYTES_OK)
    return st(ext);
  if (n == 0 || awf_bytes_left(ext) != 0)
    return AWF_HELLO_MALFORMED;
  while (awf_bytes_left(&list) > 0) {
    uint8_t type;
    if (awf_bytes_u8(&list, &type) != AWF_BYTES_OK)
      return st(&list);
    if (type != SNI_HOST_NAME)
      return AWF_HELLO_MALFORMED;
    if ((s = parse_host_name(&list, h)) != AWF_HELLO_OK)
      return s;
  }
  return AWF_HELLO_OK;
}

/* Extension extensions<8..2^16-1>: each type at most once (RFC 8446 4.2). */
static enum awf_hello_status parse_extensions(struct awf_bytes *exts, struct awf_tls_hello *h) {
  uint8_t seen[65536 / 8];
  memset(seen, 0, sizeof(seen));
  while (awf_bytes_left(exts) > 0) {
    uint16_t type;
    size_t n;
    struct awf_bytes ext;
    enum awf_hello_status s = AWF_HELLO_OK;
    if (awf_bytes_u16(exts, &type) != AWF_BYTES_OK)
      return st(exts);
    if (seen[type / 8] & (1u << (type % 8)))
      return AWF_HELLO_MALFORMED;
    seen[type / 8] |= (uint8_t)(1u << (type % 8));
    if (awf_bytes_vec(exts, 2, &ext, &n) != AWF_BYTES_OK)
      return st(exts);
    if (type == EXT_SERVER_NAME)
      s = parse_server_name(&ext, h);
    else if (type == EXT_ECH)
      h->ech = true;
    if (s != AWF_HELLO_OK)
      return s;
  }
  return AWF_HELLO_OK;
}

/* The ClientHello body, after the 4-byte handshake header. */
static enum awf_hello_status parse_client_hello(struct awf_bytes *c, struct awf_tls_hello *h) {
  struct awf_bytes v;
  size_t n;

  if (awf_bytes_u16(c, &h->legacy_version) != AWF_BYTES_OK)
    return st(c);
  if (awf_bytes_take(c, 32) == NULL) /* random */
    return st(c);
  if (awf_bytes_vec(c, 1, &v, &n) != AWF_BYTES_OK) /* legacy_session_id */
    return st(c);
  if (n > 32)
    return AWF_HELLO_MALFORMED;
  if (awf_bytes_vec(c, 2, &v, &n) != AWF_BYTES_OK) /* cipher_suites */
    return st(c);
  if (n < 2 || n % 2 != 0)
    return AWF_HELLO_MALFORMED;
  if (awf_bytes_vec(c, 1, &v, &n) != AWF_BYTES_OK) /* compression_methods */
    return st(c);
  if (n < 1)
    return AWF_HELLO_MALFORMED;
  if (awf_bytes_left(c) == 0)
    return AWF_HELLO_OK; /* pre-TLS 1.2 hello without extensions */
  if (awf_bytes_vec(c, 2, &v, &n) != AWF_BYTES_OK)
    return st(c);
  if (awf_bytes_left(c) != 0)
    return AWF_HELLO_MALFORMED; /* bytes after the extensions */
  return parse_extensions(&v, h);
}

/* The handshake message, reassembled from record fragments. */
struct reasm {
  uint8_t msg[HS_HDR + AWF_HELLO_MAX];
  size_t len;
  size_t total; /* HS_HDR + body length once the header is in; 0 before */
};

static enum awf_hello_status reasm_header(struct reasm *r) {
  if (r->len >= 1 && r->msg[0] != HS_CLIENT_HELLO)
    return AWF_HELLO_MALFORMED;
  if (r->len < HS_HDR || r->total != 0)
    return AWF_HELLO_OK;
  size_t body = (size_t)r->msg[1] << 16 | (size_t)r->msg[2] << 8 | r->msg[3];
  if (body > AWF_HELLO_MAX)
    return AWF_HELLO_TOO_LARGE;
  r->total = HS_HDR + body;
  return AWF_HELLO_OK;
}

static enum awf_hello_status reasm_add(struct reasm *r, const uint8_t *p, size_t n) {
  while (n > 0) {
    size_t want;
    if (r->len < HS_HDR)
      want = HS_HDR - r->len;
    else if (r->len < r->total)
      want = r->total - r->len;
    else
      return AWF_HELLO_MALFORMED; /* record data after the hello */
    size_t k = min_size(want, n);
    memcpy(r->msg + r->len, p, k);
    r->len += k;
    p += k;
    n -= k;
    enum awf_hello_status s = reasm_header(r);
    if (s != AWF_HELLO_OK)
      return s;
  }
  return AWF_HELLO_OK;
}

static bool reasm_complete(const struct reasm *r) {
  return r->total != 0 && r->len == r->total;
}

/* Check the record header bytes that have arrived. The first record decides
 * whether this is TLS at all; a later one that is not a handshake record
 * (an alert, change_cipher_spec, ...) arrived mid-hello. */
static enum awf_hello_status check_record_header(const uint8_t *p, size_t n, bool first) {
  enum awf_hello_status bad = first ? AWF_HELLO_NOT_TLS : AWF_HELLO_MALFORMED;
  if (n >= 1 && p[0] != REC_TYPE_HANDSHAKE)
    return bad;
  if (n >= 2 && p[1] != 3)
    return bad;
  if (n >= 3 && (p[2] < 1 || p[2] > 4))
    return bad;
  if (n >= 5) {
    size_t rlen = (size_t)p[3] << 8 | p[4];
    if (rlen == 0 || rlen > REC_FRAGMENT_MAX)
      return AWF_HELLO_MALFORMED;
  }
  return n >= REC_HDR ? AWF_HELLO_OK : AWF_HELLO_NEED_MORE;
}

/* Copy records into r until it holds the whole hello. *consumed is the end
 * of the last record used. */
static enum awf_hello_status read_records(const uint8_t *buf, size_t len, struct reasm *r,
                                          size_t *consumed) {
  size_t pos = 0;
  while (!reasm_complete(r)) {
    /* Refuse as soon as the next record cannot end within a caller's
     * AWF_HELLO_BUFFER_MAX buffer, so NEED_MORE always has room to come. */
    if (pos + REC_HDR + 1 > AWF_HELLO_BUFFER_MAX)
      return AWF_HELLO_TOO_LARGE;
    size_t have = len - pos;
    enum awf_hello_status s = check_record_header(buf + pos, min_size(have, REC_HDR), pos == 0);
    if (s != AWF_HELLO_OK)
      return s;
    size_t rlen = (size_t)buf[pos + 3] << 8 | buf[pos + 4];
    if (pos + REC_HDR + rlen > AWF_HELLO_BUFFER_MAX)
      return AWF_HELLO_TOO_LARGE;
    size_t got = min_size(rlen, have - REC_HDR);
    size_t before = r->len;
    if ((s = reasm_add(r, buf + pos + REC_HDR, got)) != AWF_HELLO_OK)
      return s;
    /* A record declaring more than the hello has left would carry
     * something else after it. */
    if (r->total != 0 && before + rlen > r->total)
      return AWF_HELLO_MALFORMED;
    if (got < rlen)
      return AWF_HELLO_NEED_MORE;
    pos += REC_HDR + rlen;
  }
  *consumed = pos;
  return AWF_HELLO_OK;
}

enum awf_hello_status awf_tls_hello_parse(const uint8_t *buf, size_t len,
                                          struct awf_tls_hello *out) {
  struct reasm r;
  struct awf_tls_hello h;
  size_t consumed = 0;

  if (len == 0)
    return AWF_HELLO_NEED_MORE;
  r.len = 0;
  r.total = 0;
  memset(&h, 0, sizeof(h));
  enum awf_hello_status s = read_records(buf, len, &r, &consumed);
  if (s != AWF_HELLO_OK && s != AWF_HELLO_NEED_MORE)
    return s;
  if (r.total == 0)
    return s; /* handshake header not in yet */

  struct awf_bytes c;
  awf_bytes_init_partial(&c, r.msg, r.total, r.len);
  awf_bytes_skip(&c, HS_HDR); /* the header is in: r.total != 0 */
  /* On a prefix this can only find errors: the record layer knows the
   * hello is incomplete, whatever the body parser got to see. */
  enum awf_hello_status hs = parse_client_hello(&c, &h);
  if (s == AWF_HELLO_NEED_MORE)
    return hs == AWF_HELLO_OK ? AWF_HELLO_NEED_MORE : hs;
  if (hs != AWF_HELLO_OK)
    return hs;
  h.consumed = consumed;
  *out = h;
  return AWF_HELLO_OK;
}

const char *awf_hello_status_name(enum awf_hello_status s) {
  switch (s) {
  case AWF_HELLO_OK: return "ok";
  case AWF_HELLO_NEED_MORE: return "need_more";
  case AWF_HELLO_NOT_TLS: return "not_tls";
  case AWF_HELLO_MALFORMED: return "malformed";
  case AWF_HELLO_TOO_LARGE: return "too_large";
  }
  return "unknown";
}
