/* fuzz_sni.c: libFuzzer target for the TLS ClientHello parser (proxy/sni.c).
 *
 * The proxy appends bytes as they arrive and parses the buffer again, so
 * beyond "no crash" this checks what that relies on:
 * - every prefix of an input that parses asks for more (NEED_MORE) until the
 *   hello's last record is in, then gives the very same result, whatever
 *   follows it; an error is never followed by NEED_MORE or OK for a longer
 *   prefix, and NOT_TLS is only ever decided by the first record header;
 * - the reported SNI is printable, NUL-free, shorter than 256 bytes and lies
 *   within the handshake message that the input's records carry;
 * - the same handshake message cut into other TLS records parses the same
 *   (or is TOO_LARGE exactly when the records would overflow the buffer cap);
 * - in generated mode (input starting with 'G', see hello_gen.h), a hello
 *   built with consistent lengths reports exactly the SNI, name count and
 *   ECH flag written, or MALFORMED / TOO_LARGE exactly when it should.
 */
#include "fuzz_check.h"
#include "hello_gen.h"
#include "sni.h"

#define REC_HDR 5
#define FRAG_MAX 16384
#define ALL_PREFIXES_UP_TO 300 /* longer inputs get a sample of split points */
#define SAMPLED_PREFIXES 48

static enum awf_hello_status parse_exact(const uint8_t *data, size_t n,
                                         struct awf_tls_hello *h) {
  uint8_t *copy = fuzz_dup(data, n);
  memset(h, 0, sizeof(*h));
  enum awf_hello_status s = awf_tls_hello_parse(copy, n, h);
  free(copy);
  FUZZ_CHECK(s == AWF_HELLO_OK || s == AWF_HELLO_NEED_MORE || s == AWF_HELLO_NOT_TLS ||
             s == AWF_HELLO_MALFORMED || s == AWF_HELLO_TOO_LARGE);
  FUZZ_CHECK(strcmp(awf_hello_status_name(s), "unknown") != 0);
  /* A buffer of AWF_HELLO_BUFFER_MAX bytes never fills while waiting. */
  FUZZ_CHECK(s != AWF_HELLO_NEED_MORE || n < AWF_HELLO_BUFFER_MAX);
  return s;
}

static bool same_hello(const struct awf_tls_hello *a, const struct awf_tls_hello *b) {
  return a->has_sni == b->has_sni && a->sni_multiple == b->sni_multiple && a->ech == b->ech &&
         a->legacy_version == b->legacy_version && a->sni_len == b->sni_len &&
         memcmp(a->sni, b->sni, a->sni_len + 1) == 0;
}

/* The handshake message carried by the records in data[0..consumed), found
 * independently of the parser. Returns its length; msg holds
 * AWF_HELLO_BUFFER_MAX bytes. */
static size_t reassemble(const uint8_t *data, size_t consumed, uint8_t *msg) {
  size_t pos = 0, len = 0;
  while (pos < consumed) {
    FUZZ_CHECK(consumed - pos >= REC_HDR);
    FUZZ_CHECK(data[pos] == 22 && data[pos + 1] == 3);
    size_t rlen = (size_t)data[pos + 3] << 8 | data[pos + 4];
    FUZZ_CHECK(rlen >= 1 && rlen <= FRAG_MAX && rlen <= consumed - pos - REC_HDR);
    memcpy(msg + len, data + pos + REC_HDR, rlen);
    len += rlen;
    pos += REC_HDR + rlen;
  }
  FUZZ_CHECK(pos == consumed);
  return len;
}

static void check_ok(const struct awf_tls_hello *h, size_t len, const uint8_t *msg,
                     size_t msglen) {
  FUZZ_CHECK(h->consumed > REC_HDR && h->consumed <= len);
  FUZZ_CHECK(msglen >= 4 && msg[0] == 1);
  FUZZ_CHECK(msglen == 4 + ((size_t)msg[1] << 16 | (size_t)msg[2] << 8 | msg[3]));
  FUZZ_CHECK(msglen <= 4 + AWF_HELLO_MAX);
  FUZZ_CHECK(h->sni_len < sizeof(h->sni) && h->sni[h->sni_len] == '\0');
  FUZZ_CHECK(strlen(h->sni) == h->sni_len);
  for (size_t i = 0; i < h->sni_len; i++)
    FUZZ_CHECK(h->sni[i] >= 0x21 && h->sni[i] <= 0x7e);
  if (!h->has_sni)
    FUZZ_CHECK(h->sni_len == 0 && !h->sni_multiple);
  /* The SNI is bytes of the hello, preceded by its 2-byte length. */
  if (h->has_sni) {
    bool found = false;
    for (size_t i = 2; !found && i + h->sni_len <= msglen; i++)
      found = ((size_t)msg[i - 2] << 8 | msg[i - 1]) == h->sni_len &&
              memcmp(msg + i, h->sni, h->sni_len) == 0;
    FUZZ_CHECK(found);
  }
}

/* Split points to try: all of them for short inputs, else a sample derived
 * from the input plus the edges around the end of the hello. */
static size_t split_points(size_t len, size_t consumed, uint32_t seed, size_t *pts,
                           size_t max) {
  size_t n = 0;
  if (len <= ALL_PREFIXES_UP_TO) {
    for (size_t k = 0; k <= len && n < max; k++)
      pts[n++] = k;
    return n;
  }
  for (size_t i = 0; i < SAMPLED_PREFIXES && n < max; i++) {
    seed = seed * 1103515245u + 12345u;
    pts[n++] = (seed >> 4) % (len + 1);
  }
  size_t edges[] = {0, 1, 5, 9, len, consumed ? consumed - 1 : 0, consumed, consumed + 1};
  for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]) && n < max; i++)
    if (edges[i] <= len)
      pts[n++] = edges[i];
  return n;
}

/* Every prefix against the result for the whole input. */
static void check_prefixes(const uint8_t *data, size_t len, enum awf_hello_status whole,
                           const struct awf_tls_hello *wh) {
  size_t pts[ALL_PREFIXES_UP_TO + 1 + SAMPLED_PREFIXES + 8];
  size_t npts = split_points(len, whole == AWF_HELLO_OK ? wh->consumed : 0,
                             fuzz_hash(data, len), pts, sizeof(pts) / sizeof(pts[0]));
  size_t first_error = SIZE_MAX; /* shortest prefix seen failing */
  for (size_t i = 0; i < npts; i++) {
    struct awf_tls_hello h;
    size_t k = pts[i];
    enum awf_hello_status s = parse_exact(data, k, &h);
    if (whole == AWF_HELLO_OK) {
      if (k < wh->consumed) {
        FUZZ_CHECK(s == AWF_HELLO_NEED_MORE);
      } else {
        FUZZ_CHECK(s == AWF_HELLO_OK);
        FUZZ_CHECK(same_hello(&h, wh) && h.consumed == wh->consumed);
      }
    } else if (whole == AWF_HELLO_NEED_MORE) {
      FUZZ_CHECK(s == AWF_HELLO_NEED_MORE);
    } else {
      FUZZ_CHECK(s != AWF_HELLO_OK);
      if (s == AWF_HELLO_NOT_TLS || whole == AWF_HELLO_NOT_TLS)
        FUZZ_CHECK(s == whole || s == AWF_HELLO_NEED_MORE);
      if (s != AWF_HELLO_NEED_MORE && k < first_error)
        first_error = k;
    }
  }
  /* Errors are sticky: no prefix longer than a failing one asks for more. */
  for (size_t i = 0; first_error != SIZE_MAX && i < npts; i++)
    if (pts[i] >= first_error) {
      struct awf_tls_hello h;
      FUZZ_CHECK(parse_exact(data, pts[i], &h) != AWF_HELLO_NEED_MORE);
    }
}

/* Cut msg into records of sizes derived from seed, starting with the given
 * record header version byte, then some trailing bytes. Returns the length
 * of the records alone in *rec_len. */
static size_t rerecord(const uint8_t *msg, size_t msglen, uint8_t minor, uint32_t seed,
                       uint8_t *out, size_t outsz, size_t *rec_len) {
  static const size_t maxfrag[] = {1, 2, 3, 7, 64, 300, FRAG_MAX};
  size_t pick = maxfrag[seed % (sizeof(maxfrag) / sizeof(maxfrag[0]))];
  size_t pos = 0, o = 0;
  while (pos < msglen) {
    seed = seed * 1103515245u + 12345u;
    size_t frag = 1 + (seed >> 8) % pick;
    if (frag > msglen - pos)
      frag = msglen - pos;
    if (o + REC_HDR + frag > outsz)
      break;
    out[o++] = 22;
    out[o++] = 3;
    out[o++] = minor;
    out[o++] = (uint8_t)(frag >> 8);
    out[o++] = (uint8_t)frag;
    memcpy(out + o, msg + pos, frag);
    o += frag;
    pos += frag;
  }
  FUZZ_CHECK(pos == msglen);
  *rec_len = o;
  /* Whatever follows the hello (the client's next flight) is not its business. */
  for (size_t i = 0; i < (seed & 7) && o < outsz; i++)
    out[o++] = (uint8_t)(seed >> i);
  return o;
}

static void check_rerecorded(const uint8_t *msg, size_t msglen, uint8_t minor, uint32_t seed,
                             const struct awf_tls_hello *wh) {
  /* 1-byte records of the largest hello: 5 header bytes each. */
  size_t outsz = msglen * (REC_HDR + 1) + 8;
  uint8_t *buf = malloc(outsz);
  size_t rec_len;
  FUZZ_CHECK(buf != NULL);
  size_t n = rerecord(msg, msglen, minor, seed, buf, outsz, &rec_len);
  struct awf_tls_hello h;
  enum awf_hello_status s = parse_exact(buf, n, &h);
  if (rec_len > AWF_HELLO_BUFFER_MAX) {
    FUZZ_CHECK(s == AWF_HELLO_TOO_LARGE);
  } else {
    FUZZ_CHECK(s == AWF_HELLO_OK);
    FUZZ_CHECK(same_hello(&h, wh) && h.consumed == rec_len);
    if (rec_len > 1)
      FUZZ_CHECK(parse_exact(buf, rec_len - 1, &h) == AWF_HELLO_NEED_MORE);
  }
  free(buf);
}

/* Everything that holds for any input; returns the status for the whole. */
static enum awf_hello_status check_input(const uint8_t *data, size_t size,
                                         struct awf_tls_hello *wh) {
  enum awf_hello_status whole = parse_exact(data, size, wh);
  check_prefixes(data, size, whole, wh);
  if (whole != AWF_HELLO_OK)
    return whole;
  uint8_t *msg = malloc(AWF_HELLO_BUFFER_MAX);
  FUZZ_CHECK(msg != NULL);
  size_t msglen = reassemble(data, wh->consumed, msg);
  check_ok(wh, size, msg, msglen);
  check_rerecorded(msg, msglen, data[2], fuzz_hash(data, size), wh);
  free(msg);
  return whole;
}

/* Generated mode: the parser must report what the generator wrote. */
static void check_generated(const uint8_t *desc, size_t n) {
  struct hello_gen g;
  uint8_t *msg = malloc(HELLO_GEN_MSG_MAX);
  FUZZ_CHECK(msg != NULL);
  size_t msglen = hello_gen(desc, n, msg, &g);
  size_t outsz = msglen * (REC_HDR + 1) + 8, rec_len;
  uint8_t *buf = malloc(outsz);
  FUZZ_CHECK(buf != NULL);
  size_t len = rerecord(msg, msglen, 1, fuzz_hash(desc, n), buf, outsz, &rec_len);
  struct awf_tls_hello h;
  enum awf_hello_status s = check_input(buf, len, &h);
  if (g.body_len > AWF_HELLO_MAX || rec_len > AWF_HELLO_BUFFER_MAX) {
    FUZZ_CHECK(s == AWF_HELLO_TOO_LARGE);
  } else if (g.dup_ext || (g.has_sni && !g.names_ok)) {
    FUZZ_CHECK(s == AWF_HELLO_MALFORMED);
  } else {
    FUZZ_CHECK(s == AWF_HELLO_OK && h.consumed == rec_len);
    FUZZ_CHECK(h.has_sni == g.has_sni && h.ech == g.ech);
    if (g.has_sni) {
      FUZZ_CHECK(h.sni_len == g.first_len && memcmp(h.sni, g.first, g.first_len) == 0);
      FUZZ_CHECK(h.sni_multiple == (g.nnames > 1));
    }
  }
  free(buf);
  free(msg);
}

/* An input starting with 'G' (never TLS) describes a hello to generate. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct awf_tls_hello wh;
  if (size > 0 && data[0] == 'G')
    check_generated(data + 1, size - 1);
  else
    check_input(data, size, &wh);
  return 0;
}
