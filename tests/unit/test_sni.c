/* test_sni.c: the ClientHello parser against real, built and hostile hellos.
 * Every parse runs on an exact-size heap copy so ASan flags any read past
 * the bytes given. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sni.h"

/* Captured from `openssl s_client -connect 127.0.0.1:PORT -servername
 * www.example.com` (OpenSSL 3.0, Debian 12) against a local listener:
 * one record, TLS 1.3 hello with key_share, supported_versions, ... */
static const uint8_t real_hello[] = {
    0x16, 0x03, 0x01, 0x01, 0x3c, 0x01, 0x00, 0x01, 0x38, 0x03, 0x03, 0x2b, 0xee, 0xf5, 0xf0,
    0x6e, 0x05, 0xb4, 0x55, 0xc0, 0x61, 0x59, 0xcd, 0xf2, 0x8b, 0x9e, 0x3e, 0x4b, 0x42, 0xa5,
    0x47, 0x3b, 0xac, 0x3e, 0xa0, 0x48, 0x84, 0x3e, 0xd9, 0x0f, 0xc9, 0x8f, 0x99, 0x20, 0x6a,
    0xa3, 0x4d, 0xd8, 0x70, 0x41, 0xec, 0xf1, 0x25, 0xc9, 0x4d, 0x30, 0x19, 0xa3, 0xa0, 0x00,
    0x99, 0x79, 0x54, 0xf4, 0x6a, 0xa1, 0xa3, 0x3a, 0x26, 0x2a, 0x46, 0xa1, 0xed, 0xdd, 0xce,
    0xd6, 0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f,
    0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa, 0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0,
    0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39,
    0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00,
    0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xb1, 0x00, 0x00, 0x00, 0x14, 0x00, 0x12,
    0x00, 0x00, 0x0f, 0x77, 0x77, 0x77, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e,
    0x63, 0x6f, 0x6d, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16,
    0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01, 0x00, 0x01,
    0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00,
    0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06,
    0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05,
    0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04,
    0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03,
    0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24,
    0x00, 0x1d, 0x00, 0x20, 0x07, 0xac, 0x63, 0x7d, 0x39, 0xfa, 0x0b, 0xb4, 0xaf, 0x49, 0x35,
    0x3f, 0x9f, 0x4a, 0xa7, 0x7c, 0x24, 0x5d, 0x5e, 0x38, 0x66, 0xad, 0xa4, 0x49, 0x19, 0x9d,
    0x1e, 0xbb, 0x53, 0xb7, 0x9c, 0x36};

#define REAL_SNI_OFF 153 /* first byte of "www.example.com" in real_hello */
#define REAL_EXTS_LEN_OFF 142

/* ---- a growable byte string and a ClientHello builder ---- */

struct bytes {
  uint8_t *b;
  size_t n;
  size_t cap;
};

static struct bytes *bytes_new(void) {
  struct bytes *x = calloc(1, sizeof(*x));
  assert_non_null(x);
  x->cap = 1 << 17;
  x->b = calloc(1, x->cap);
  assert_non_null(x->b);
  return x;
}

static void bytes_free(struct bytes *x) {
  free(x->b);
  free(x);
}

static void put(struct bytes *x, const void *p, size_t n) {
  assert_true(x->n + n <= x->cap);
  if (n)
    memcpy(x->b + x->n, p, n);
  x->n += n;
}

static void put8(struct bytes *x, unsigned v) {
  uint8_t b = (uint8_t)v;
  put(x, &b, 1);
}

static void put16(struct bytes *x, unsigned v) {
  put8(x, v >> 8);
  put8(x, v);
}

static void put24(struct bytes *x, size_t v) {
  put8(x, (unsigned)(v >> 16));
  put16(x, (unsigned)(v & 0xffff));
}

static void ext_raw(struct bytes *e, unsigned type, const void *data, size_t n) {
  put16(e, type);
  put16(e, (unsigned)n);
  put(e, data, n);
}

/* server_name with `count` host_name entries. */
static void ext_sni_names(struct bytes *e, const char *const *names, const size_t *lens,
                          size_t count) {
  size_t list = 0;
  for (size_t i = 0; i < count; i++)
    list += 3 + lens[i];
  put16(e, 0);
  put16(e, (unsigned)(list + 2));
  put16(e, (unsigned)list);
  for (size_t i = 0; i < count; i++) {
    put8(e, 0);
    put16(e, (unsigned)lens[i]);
    put(e, names[i], lens[i]);
  }
}

static void ext_sni(struct bytes *e, const char *name, size_t len) {
  ext_sni_names(e, &name, &len, 1);
}

static void ext_sni_str(struct bytes *e, const char *name) { ext_sni(e, name, strlen(name)); }

/* The vectors before the extensions, with consistent lengths. */
struct fields {
  size_t sid_len;
  size_t suites_len;
  size_t comp_len;
};

static const struct fields default_fields = {32, 4, 1};

/* A ClientHello body; exts == NULL leaves the extensions block out. */
static void hello_body_fields(struct bytes *out, const struct fields *f,
                              const struct bytes *exts) {
  uint8_t filler[64];
  memset(filler, 0xaa, sizeof(filler));
  put16(out, 0x0303);
  put(out, filler, 32); /* random */
  put8(out, (unsigned)f->sid_len);
  put(out, filler, f->sid_len);
  put16(out, (unsigned)f->suites_len);
  put(out, filler, f->suites_len);
  memset(filler, 0, sizeof(filler));
  put8(out, (unsigned)f->comp_len);
  put(out, filler, f->comp_len);
  if (exts) {
    put16(out, (unsigned)exts->n);
    put(out, exts->b, exts->n);
  }
}

static void hello_body(struct bytes *out, const struct bytes *exts) {
  hello_body_fields(out, &default_fields, exts);
}

static void handshake(struct bytes *out, const struct bytes *body) {
  put8(out, 1);
  put24(out, body->n);
  put(out, body->b, body->n);
}

/* Records of the given payload sizes; the last one takes what is left. */
static void records_sized(struct bytes *out, const uint8_t *hs, size_t n, const size_t *sizes,
                          size_t count) {
  size_t off = 0;
  for (size_t i = 0; off < n; i++) {
    size_t k = i + 1 < count ? sizes[i] : n - off;
    if (k > n - off)
      k = n - off;
    put8(out, 22);
    put16(out, 0x0301);
    put16(out, (unsigned)k);
    put(out, hs + off, k);
    off += k;
  }
}

/* Records of at most `frag` payload bytes each. */
static void records(struct bytes *out, const uint8_t *hs, size_t n, size_t frag) {
  for (size_t off = 0; off < n; off += frag) {
    size_t k = n - off < frag ? n - off : frag;
    put8(out, 22);
    put16(out, 0x0301);
    put16(out, (unsigned)k);
    put(out, hs + off, k);
  }
}

static struct bytes *build_fields(const struct fields *f, const struct bytes *exts,
                                  size_t frag) {
  struct bytes *body = bytes_new(), *hs = bytes_new(), *out = bytes_new();
  hello_body_fields(body, f, exts);
  handshake(hs, body);
  records(out, hs->b, hs->n, frag ? frag : 16384);
  bytes_free(body);
  bytes_free(hs);
  return out;
}

/* A whole hello in records of `frag` bytes (0: one record). */
static struct bytes *build(const struct bytes *exts, size_t frag) {
  return build_fields(&default_fields, exts, frag);
}

static struct bytes *build_with_sni(const char *name) {
  struct bytes *e = bytes_new();
  ext_sni_str(e, name);
  struct bytes *out = build(e, 0);
  bytes_free(e);
  return out;
}

/* ---- parsing helpers ---- */

static enum awf_hello_status parse(const uint8_t *p, size_t n, struct awf_tls_hello *h) {
  uint8_t *copy = malloc(n ? n : 1);
  assert_non_null(copy);
  if (n)
    memcpy(copy, p, n);
  enum awf_hello_status st = awf_tls_hello_parse(copy, n, h);
  free(copy);
  return st;
}

static enum awf_hello_status parse_b(const struct bytes *x, struct awf_tls_hello *h) {
  return parse(x->b, x->n, h);
}

static void expect_prefixes_need_more(const uint8_t *p, size_t n) {
  struct awf_tls_hello h;
  for (size_t i = 0; i < n; i++) {
    enum awf_hello_status st = parse(p, i, &h);
    if (st != AWF_HELLO_NEED_MORE)
      fail_msg("prefix of %zu/%zu bytes: %s", i, n, awf_hello_status_name(st));
  }
}

static void expect_sni(const struct bytes *x, const char *sni) {
  struct awf_tls_hello h;
  assert_int_equal(parse_b(x, &h), AWF_HELLO_OK);
  assert_true(h.has_sni);
  assert_false(h.sni_multiple);
  assert_int_equal(h.sni_len, strlen(sni));
  assert_string_equal(h.sni, sni);
  assert_int_equal(h.consumed, x->n);
}

static void expect_status(const struct bytes *x, enum awf_hello_status want) {
  struct awf_tls_hello h;
  assert_string_equal(awf_hello_status_name(parse_b(x, &h)), awf_hello_status_name(want));
}

/* Rebuild real_hello's handshake message into other record layouts. */
static const uint8_t *real_hs(size_t *n) {
  *n = sizeof(real_hello) - 5;
  return real_hello + 5;
}

/* ---- tests ---- */

static void test_real_hello(void **state) {
  (void)state;
  struct awf_tls_hello h;
  memset(&h, 0x5a, sizeof(h));
  assert_int_equal(parse(real_hello, sizeof(real_hello), &h), AWF_HELLO_OK);
  assert_true(h.has_sni);
  assert_false(h.sni_multiple);
  assert_false(h.ech);
  assert_int_equal(h.legacy_version, 0x0303);
  assert_int_equal(h.sni_len, 15);
  assert_string_equal(h.sni, "www.example.com");
  assert_int_equal(h.consumed, sizeof(real_hello));
}

static void test_real_hello_prefixes(void **state) {
  (void)state;
  expect_prefixes_need_more(real_hello, sizeof(real_hello));
}

/* Bytes after the hello (next records, early data) are not part of it. */
static void test_trailing_bytes_not_consumed(void **state) {
  (void)state;
  struct bytes *x = bytes_new();
  put(x, real_hello, sizeof(real_hello));
  put(x, "\x17\x03\x03\x00\x02hi", 7);
  struct awf_tls_hello h;
  assert_int_equal(parse_b(x, &h), AWF_HELLO_OK);
  assert_int_equal(h.consumed, sizeof(real_hello));
  assert_string_equal(h.sni, "www.example.com");
  bytes_free(x);
}

static void check_layout(const size_t *sizes, size_t count, size_t want_records) {
  size_t n;
  const uint8_t *hs = real_hs(&n);
  struct bytes *x = bytes_new();
  records_sized(x, hs, n, sizes, count);
  assert_int_equal(x->n, n + 5 * want_records);
  expect_sni(x, "www.example.com");
  expect_prefixes_need_more(x->b, x->n);
  bytes_free(x);
}

static void test_two_records(void **state) {
  (void)state;
  size_t mid[] = {150, 0};
  check_layout(mid, 2, 2);
  size_t in_hs_header[] = {2, 0}; /* split inside the handshake header */
  check_layout(in_hs_header, 2, 2);
  size_t in_sni[] = {REAL_SNI_OFF - 5 + 4, 0}; /* split inside the name */
  check_layout(in_sni, 2, 2);
}

static void test_three_records(void **state) {
  (void)state;
  size_t sizes[] = {1, 200, 0};
  check_layout(sizes, 3, 3);
  size_t sizes2[] = {100, 100, 0};
  check_layout(sizes2, 3, 3);
}

static void test_one_byte_records(void **state) {
  (void)state;
  size_t n;
  const uint8_t *hs = real_hs(&n);
  struct bytes *x = bytes_new();
  records(x, hs, n, 1);
  assert_int_equal(x->n, 6 * n);
  expect_sni(x, "www.example.com");
  expect_prefixes_need_more(x->b, x->n);
  bytes_free(x);
}

static void test_built_hello(void **state) {
  (void)state;
  struct bytes *x = build_with_sni("Example.ORG");
  expect_sni(x, "Example.ORG"); /* returned as sent, not normalised */
  expect_prefixes_need_more(x->b, x->n);
  bytes_free(x);
}

static void test_no_sni(void **state) {
  (void)state;
  struct bytes *e = bytes_new();
  ext_raw(e, 0x002b, "\x02\x03\x04", 3);
  ext_raw(e, 0x0017, NULL, 0);
  struct bytes *x = build(e, 0);
  struct awf_tls_hello h;
  assert_int_equal(parse_b(x, &h), AWF_HELLO_OK);
  assert_false(h.has_sni);
  assert_int_equal(h.sni_len, 0);
  assert_string_equal(h.sni, "");
  bytes_free(x);
  bytes_free(e);
}

/* A pre-TLS 1.2 hello may end after compression_methods. */
static void test_no_extensions(void **state) {
  (void)state;
  struct bytes *x = build(NULL, 0);
  struct awf_tls_hello h;
  assert_int_equal(parse_b(x, &h), AWF_HELLO_OK);
  assert_false(h.has_sni);
  assert_int_equal(h.consumed, x->n);
  expect_prefixes_need_more(x->b, x->n);
  bytes_free(x);
}

static void test_empty_extensions_block(void **state) {
  (void)state;
  struct bytes *e = bytes_new();
  struct bytes *x = build(e, 0);
  struct awf_tls_hello h;
  assert_int_equal(parse_b(x, &h), AWF_HELLO_OK);
  assert_false(h.has_sni);
  bytes_free(x);
  bytes_free(e);
}

static void test_several_names(void **state) {
  (void)state;
  const char *names[] = {"first.example", "second.example", "third.example"};
  size_t lens[] = {13, 14, 13};
  struct bytes *e = bytes_new();
  ext_sni_names(e, names, lens, 3);
  struct bytes *x = build(e, 0);
  struct awf_tls_hello h;
  assert_int_equal(parse_b(x, &h), AWF_HELLO_OK);
  assert_true(h.has_sni);
  assert_true(h.sni_multiple);
  assert_string_equal(h.sni, "first.example");
  bytes_free(x);
  bytes_free(e);
}

/* A later entry is still checked even though only the first is kept. */
static void test_several_names_bad_second(void **state) {
  (void)state;
  const char *names[] = {"ok.example", "bad\x01name"};
  size_t lens[] = {10, 8};
  struct bytes *e = bytes_new();
  ext_sni_names(e, names, lens, 2);
  struct bytes *x = build(e, 0);
  expect_status(x, AWF_HELLO_MALFORMED);
  bytes_free(x);
  bytes_free(e);
}

static void test_empty_sni(void **state) {
  (void)state;
  struct bytes *x = build_with_sni("");
  struct awf_tls_hello h;
  assert_int_equal(parse_b(x, &h), AWF_HELLO_OK);
  assert_true(h.has_sni);
  assert_int_equal(h.sni_len, 0);
  assert_string_equal(h.sni, "");
  bytes_free(x);
}

static void test_sni_length_limit(void **state) {
  (void)state;
  char name[257];
  memset(name, 'a', sizeof(name) - 1);
  name[256] = '\0';
  struct bytes *x = build_with_sni(name); /* 256 bytes: cannot be a name */
  expect_status(x, AWF_HELLO_MALFORMED);
  bytes_free(x);
  name[255] = '\0';
  x = build_with_sni(name);
  struct awf_tls_hello h;
  assert_int_equal(parse_b(x, &h), AWF_HELLO_OK);
  assert_int_equal(h.sni_len, 255);
  assert_int_equal(strlen(h.sni), 255);
  bytes_free(x);
}

static void test_ech_flag(void **state) {
  (void)state;
  struct bytes *e = bytes_new();
  ext_sni_str(e, "public.example");
  ext_raw(e, 0xfe0d, "\x00\x00\x01\x00\x01\x42\x00\x00\x00\x00", 10);
  struct bytes *x = build(e, 0);
  struct awf_tls_hello h;
  assert_int_equal(parse_b(x, &h), AWF_HELLO_OK);
  assert_true(h.ech);
  assert_string_equal(h.sni, "public.example");
  bytes_free(x);
  bytes_free(e);
  /* A neighbouring code point is not ECH. */
  e = bytes_new();
  ext_raw(e, 0xfe0c, "x", 1);
  x = build(e, 0);
  assert_int_equal(parse_b(x, &h), AWF_HELLO_OK);
  assert_false(h.ech);
  bytes_free(x);
  bytes_free(e);
}

static void test_bad_name_bytes(void **state) {
  (void)state;
  static const struct {
    const char *name;
    size_t len;
  } bad[] = {
      {"caf\xc3\xa9.example", 13},
      {"a\0.example", 10},
      {"a b.example", 11},
      {"a\x7f.example", 10},
      {"\x80", 1},
      {"a.example\n", 10},
      {"\t", 1},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct bytes *e = bytes_new();
    ext_sni(e, bad[i].name, bad[i].len);
    struct bytes *x = build(e, 0);
    expect_status(x, AWF_HELLO_MALFORMED);
    bytes_free(x);
    bytes_free(e);
  }
  /* Printable punctuation is passed through for the caller to judge. */
  struct bytes *x = build_with_sni("a!~*.example");
  expect_sni(x, "a!~*.example");
  bytes_free(x);
}

static void test_duplicate_extension(void **state) {
  (void)state;
  struct bytes *e = bytes_new();
  ext_raw(e, 0x000a, "\x00\x02\x00\x1d", 4);
  ext_sni_str(e, "a.example");
  ext_raw(e, 0x000a, "\x00\x02\x00\x17", 4);
  struct bytes *x = build(e, 0);
  expect_status(x, AWF_HELLO_MALFORMED);
  bytes_free(x);
  bytes_free(e);
  /* Two server_name extensions would let two parsers pick different names. */
  e = bytes_new();
  ext_sni_str(e, "a.example");
  ext_sni_str(e, "b.example");
  x = build(e, 0);
  expect_status(x, AWF_HELLO_MALFORMED);
  bytes_free(x);
  bytes_free(e);
}

static void test_unknown_name_type(void **state) {
  (void)state;
  struct bytes *e = bytes_new();
  put16(e, 0);
  put16(e, 2 + 3 + 4);
  put16(e, 3 + 4);
  put8(e, 1); /* not host_name */
  put16(e, 4);
  put(e, "abcd", 4);
  struct bytes *x = build(e, 0);
  expect_status(x, AWF_HELLO_MALFORMED);
  bytes_free(x);
  bytes_free(e);
}

static void test_oversized(void **state) {
  (void)state;
  /* The handshake header alone says too much. */
  static const uint8_t big[] = {0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x40, 0x01};
  struct awf_tls_hello h;
  assert_int_equal(parse(big, sizeof(big), &h), AWF_HELLO_TOO_LARGE);
  static const uint8_t huge[] = {0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0xff, 0xff, 0xff};
  assert_int_equal(parse(huge, sizeof(huge), &h), AWF_HELLO_TOO_LARGE);

  /* Exactly AWF_HELLO_MAX bytes of body (padding to fill) is fine. */
  struct bytes *probe = bytes_new();
  hello_body(probe, NULL);
  /* extensions length, padding header, server_name for "a.example" */
  size_t base = probe->n + 2 + 4 + (4 + 2 + 3 + 9);
  bytes_free(probe);
  for (size_t extra = 0; extra <= 1; extra++) {
    size_t pad = AWF_HELLO_MAX + extra - base;
    uint8_t *zeros = calloc(1, pad);
    assert_non_null(zeros);
    struct bytes *e = bytes_new();
    ext_sni_str(e, "a.example");
    ext_raw(e, 0x0015, zeros, pad);
    struct bytes *x = build(e, 0);
    assert_int_equal(x->n, 5 + 16384 + 5 + 4 + extra);
    if (extra == 0)
      expect_sni(x, "a.example");
    else
      expect_status(x, AWF_HELLO_TOO_LARGE);
    free(zeros);
    bytes_free(x);
    bytes_free(e);
  }
}

/* NEED_MORE only below AWF_HELLO_BUFFER_MAX: tiny records cost 5 bytes of
 * header each, so a hello small enough in itself can still not fit. */
static void test_buffer_cap(void **state) {
  (void)state;
  uint8_t pad[4000] = {0};
  struct bytes *e = bytes_new();
  ext_sni_str(e, "a.example");
  ext_raw(e, 0x0015, pad, sizeof(pad));
  struct bytes *x = build(e, 1);
  assert_true(x->n > AWF_HELLO_BUFFER_MAX);
  struct awf_tls_hello h;
  for (size_t n = AWF_HELLO_BUFFER_MAX - 12; n <= AWF_HELLO_BUFFER_MAX + 12; n++) {
    enum awf_hello_status st = parse(x->b, n, &h);
    if (n < AWF_HELLO_BUFFER_MAX - 6)
      assert_int_equal(st, AWF_HELLO_NEED_MORE);
    else if (n >= AWF_HELLO_BUFFER_MAX)
      assert_int_equal(st, AWF_HELLO_TOO_LARGE);
    else
      assert_true(st == AWF_HELLO_NEED_MORE || st == AWF_HELLO_TOO_LARGE);
  }
  expect_status(x, AWF_HELLO_TOO_LARGE);
  bytes_free(x);
  /* The same hello in larger records parses. */
  x = build(e, 512);
  expect_sni(x, "a.example");
  bytes_free(x);
  bytes_free(e);
}

static void test_not_tls(void **state) {
  (void)state;
  struct awf_tls_hello h;
  const char *http = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
  assert_int_equal(parse((const uint8_t *)http, strlen(http), &h), AWF_HELLO_NOT_TLS);
  assert_int_equal(parse((const uint8_t *)"G", 1, &h), AWF_HELLO_NOT_TLS);
  assert_int_equal(parse((const uint8_t *)"C", 1, &h), AWF_HELLO_NOT_TLS);
  /* SSLv2-style hello, and wrong record versions on the first record. */
  static const uint8_t v2[] = {0x80, 0x2e, 0x01, 0x03, 0x01};
  assert_int_equal(parse(v2, sizeof(v2), &h), AWF_HELLO_NOT_TLS);
  static const uint8_t major[] = {0x16, 0x04};
  assert_int_equal(parse(major, sizeof(major), &h), AWF_HELLO_NOT_TLS);
  static const uint8_t ssl3[] = {0x16, 0x03, 0x00};
  assert_int_equal(parse(ssl3, sizeof(ssl3), &h), AWF_HELLO_NOT_TLS);
  static const uint8_t minor5[] = {0x16, 0x03, 0x05};
  assert_int_equal(parse(minor5, sizeof(minor5), &h), AWF_HELLO_NOT_TLS);
  /* An alert as the first record is not a hello at all. */
  static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
  assert_int_equal(parse(alert, sizeof(alert), &h), AWF_HELLO_NOT_TLS);
  /* Empty input and a bare record type are still plausible TLS. */
  assert_int_equal(parse(NULL, 0, &h), AWF_HELLO_NEED_MORE);
  static const uint8_t one[] = {0x16};
  assert_int_equal(parse(one, 1, &h), AWF_HELLO_NEED_MORE);
  /* Every record version TLS clients use is accepted. */
  for (unsigned minor = 1; minor <= 4; minor++) {
    uint8_t hdr[] = {0x16, 0x03, (uint8_t)minor, 0x00};
    assert_int_equal(parse(hdr, sizeof(hdr), &h), AWF_HELLO_NEED_MORE);
  }
}

static void test_garbage(void **state) {
  (void)state;
  struct awf_tls_hello h;
  /* Plausible record header, then junk instead of a ClientHello. */
  static const uint8_t junk[] = {0x16, 0x03, 0x01, 0x00, 0x08, 0xde, 0xad,
                                 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef};
  assert_int_equal(parse(junk, sizeof(junk), &h), AWF_HELLO_MALFORMED);
  /* A ServerHello is a handshake, but not ours; known from its first byte. */
  static const uint8_t sh[] = {0x16, 0x03, 0x03, 0x00, 0x30, 0x02};
  assert_int_equal(parse(sh, sizeof(sh), &h), AWF_HELLO_MALFORMED);
  /* Zero-length and overlong records. */
  static const uint8_t empty_rec[] = {0x16, 0x03, 0x01, 0x00, 0x00};
  assert_int_equal(parse(empty_rec, sizeof(empty_rec), &h), AWF_HELLO_MALFORMED);
  static const uint8_t long_rec[] = {0x16, 0x03, 0x01, 0x40, 0x01};
  assert_int_equal(parse(long_rec, sizeof(long_rec), &h), AWF_HELLO_MALFORMED);
  /* Handshake body of zero bytes. */
  static const uint8_t zero_body[] = {0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00};
  assert_int_equal(parse(zero_body, sizeof(zero_body), &h), AWF_HELLO_MALFORMED);
}

/* A record other than handshake while the hello is incomplete. */
static void test_interleaved_record(void **state) {
  (void)state;
  size_t n;
  const uint8_t *hs = real_hs(&n);
  static const uint8_t ccs[] = {0x14, 0x03, 0x03, 0x00, 0x01, 0x01};
  static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00};
  static const uint8_t appdata[] = {0x17, 0x03, 0x03, 0x00, 0x01, 0x00};
  const uint8_t *other[] = {ccs, alert, appdata};
  size_t other_len[] = {sizeof(ccs), sizeof(alert), sizeof(appdata)};
  for (size_t i = 0; i < 3; i++) {
    struct bytes *x = bytes_new();
    records(x, hs, 100, 100);
    put(x, other[i], other_len[i]);
    records(x, hs + 100, n - 100, 1000);
    expect_status(x, AWF_HELLO_MALFORMED);
    /* Known as soon as the type byte is in. */
    struct awf_tls_hello h;
    assert_int_equal(parse(x->b, 106, &h), AWF_HELLO_MALFORMED);
    bytes_free(x);
  }
  /* A second record with a bad version. */
  struct bytes *x = bytes_new();
  records(x, hs, 100, 100);
  put(x, "\x16\x02\x01\x00\x10", 5);
  expect_status(x, AWF_HELLO_MALFORMED);
  bytes_free(x);
}

/* Copy real_hello and patch a big-endian field. */
static struct bytes *real_patched(size_t off, size_t width, unsigned v) {
  struct bytes *x = bytes_new();
  put(x, real_hello, sizeof(real_hello));
  for (size_t i = 0; i < width; i++)
    x->b[off + i] = (uint8_t)(v >> (8 * (width - 1 - i)));
  return x;
}

static void expect_real_patched(size_t off, size_t width, unsigned v,
                                enum awf_hello_status want) {
  struct bytes *x = real_patched(off, width, v);
  expect_status(x, want);
  bytes_free(x);
}

static void test_lying_lengths(void **state) {
  (void)state;
  size_t n = sizeof(real_hello);
  size_t rlen = n - 5, hlen = n - 9;
  /* Record longer than the hello: it carries something after it. */
  struct bytes *x = real_patched(3, 2, (unsigned)rlen + 3);
  put(x, "\x00\x00\x00", 3);
  expect_status(x, AWF_HELLO_MALFORMED);
  bytes_free(x);
  /* ...known before those bytes arrive. */
  expect_real_patched(3, 2, (unsigned)rlen + 3, AWF_HELLO_MALFORMED);
  /* Record shorter than the hello: the next bytes must be a record. */
  expect_real_patched(3, 2, (unsigned)rlen - 1, AWF_HELLO_MALFORMED);
  /* Handshake longer than the records: waits, then a wrong "record". */
  x = real_patched(6, 3, (unsigned)hlen + 10);
  struct awf_tls_hello h;
  assert_int_equal(parse_b(x, &h), AWF_HELLO_MALFORMED);
  bytes_free(x);
  /* Handshake shorter than the body it sits in. */
  expect_real_patched(6, 3, (unsigned)hlen - 1, AWF_HELLO_MALFORMED);
  expect_real_patched(6, 3, 0, AWF_HELLO_MALFORMED);
  /* Session id over 32 bytes, or running past the body. */
  expect_real_patched(43, 1, 33, AWF_HELLO_MALFORMED);
  expect_real_patched(43, 1, 31, AWF_HELLO_MALFORMED);
  /* Cipher suites: odd, empty, too long. */
  expect_real_patched(76, 2, 0x3d, AWF_HELLO_MALFORMED);
  expect_real_patched(76, 2, 0, AWF_HELLO_MALFORMED);
  expect_real_patched(76, 2, 0xfffe, AWF_HELLO_MALFORMED);
  /* No compression method. */
  expect_real_patched(140, 1, 0, AWF_HELLO_MALFORMED);
  /* Extensions block not filling the rest of the body exactly. */
  expect_real_patched(REAL_EXTS_LEN_OFF, 2, 0xb0, AWF_HELLO_MALFORMED);
  expect_real_patched(REAL_EXTS_LEN_OFF, 2, 0xb2, AWF_HELLO_MALFORMED);
  expect_real_patched(REAL_EXTS_LEN_OFF, 2, 0, AWF_HELLO_MALFORMED);
  /* server_name: extension, list and name lengths off by one either way. */
  expect_real_patched(146, 2, 0x13, AWF_HELLO_MALFORMED);
  expect_real_patched(146, 2, 0x15, AWF_HELLO_MALFORMED);
  expect_real_patched(148, 2, 0x11, AWF_HELLO_MALFORMED);
  expect_real_patched(148, 2, 0x13, AWF_HELLO_MALFORMED);
  expect_real_patched(151, 2, 0x0e, AWF_HELLO_MALFORMED);
  expect_real_patched(151, 2, 0x10, AWF_HELLO_MALFORMED);
  expect_real_patched(148, 2, 0, AWF_HELLO_MALFORMED);
  expect_real_patched(146, 2, 0, AWF_HELLO_MALFORMED);
  /* The unpatched hello is fine (the offsets above are the right ones). */
  expect_real_patched(151, 2, 0x0f, AWF_HELLO_OK);
}

/* The fixed vectors with consistent but invalid lengths. */
static void test_bad_vectors(void **state) {
  (void)state;
  static const struct {
    struct fields f;
    enum awf_hello_status want;
  } cases[] = {
      {{0, 2, 1}, AWF_HELLO_OK},
      {{32, 2, 1}, AWF_HELLO_OK},
      {{33, 2, 1}, AWF_HELLO_MALFORMED}, /* session id over 32 bytes */
      {{0, 0, 1}, AWF_HELLO_MALFORMED},  /* no cipher suite */
      {{0, 3, 1}, AWF_HELLO_MALFORMED},  /* half a cipher suite */
      {{0, 1, 1}, AWF_HELLO_MALFORMED},
      {{0, 2, 0}, AWF_HELLO_MALFORMED}, /* no compression method */
      {{0, 2, 2}, AWF_HELLO_OK},
  };
  struct bytes *e = bytes_new();
  ext_sni_str(e, "a.example");
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct bytes *x = build_fields(&cases[i].f, e, 0);
    expect_status(x, cases[i].want);
    bytes_free(x);
    x = build_fields(&cases[i].f, NULL, 0);
    expect_status(x, cases[i].want);
    bytes_free(x);
  }
  bytes_free(e);
}

static void test_truncated_extension(void **state) {
  (void)state;
  /* An extension whose length runs past the extensions block. */
  struct bytes *e = bytes_new();
  ext_sni_str(e, "a.example");
  put16(e, 0x0010);
  put16(e, 20);
  put(e, "\x00\x05", 2); /* only 2 of 20 declared bytes */
  struct bytes *x = build(e, 0);
  expect_status(x, AWF_HELLO_MALFORMED);
  bytes_free(x);
  bytes_free(e);
  /* An extension header cut in half. */
  e = bytes_new();
  ext_sni_str(e, "a.example");
  put8(e, 0x00);
  x = build(e, 0);
  expect_status(x, AWF_HELLO_MALFORMED);
  bytes_free(x);
  bytes_free(e);
}

/* Errors show up while the hello is still arriving, not only at the end. */
static void test_early_error_on_prefix(void **state) {
  (void)state;
  struct bytes *x = real_patched(43, 1, 33);
  struct awf_tls_hello h;
  assert_int_equal(parse(x->b, 50, &h), AWF_HELLO_MALFORMED);
  bytes_free(x);
  /* A name is judged once all of it is in, well before the hello ends. */
  x = real_patched(REAL_SNI_OFF + 3, 1, 0x00);
  assert_int_equal(parse(x->b, REAL_SNI_OFF + 15, &h), AWF_HELLO_MALFORMED);
  assert_int_equal(parse(x->b, REAL_SNI_OFF + 14, &h), AWF_HELLO_NEED_MORE);
  bytes_free(x);
}

static void test_status_names(void **state) {
  (void)state;
  assert_string_equal(awf_hello_status_name(AWF_HELLO_OK), "ok");
  assert_string_equal(awf_hello_status_name(AWF_HELLO_NEED_MORE), "need_more");
  assert_string_equal(awf_hello_status_name(AWF_HELLO_NOT_TLS), "not_tls");
  assert_string_equal(awf_hello_status_name(AWF_HELLO_MALFORMED), "malformed");
  assert_string_equal(awf_hello_status_name(AWF_HELLO_TOO_LARGE), "too_large");
}

/* Invariants that hold for any input. */
static void check_invariants(const uint8_t *p, size_t n) {
  struct awf_tls_hello h;
  enum awf_hello_status st = parse(p, n, &h);
  switch (st) {
  case AWF_HELLO_OK:
    assert_true(h.consumed >= 5 + 4 + 38 && h.consumed <= n);
    assert_true(h.sni_len < sizeof(h.sni));
    assert_int_equal(strlen(h.sni), h.sni_len);
    assert_true(h.has_sni || h.sni_len == 0);
    assert_true(!h.sni_multiple || h.has_sni);
    for (size_t i = 0; i < h.sni_len; i++)
      assert_true(h.sni[i] > 0x20 && h.sni[i] < 0x7f);
    /* The hello ends where it says: shorter is incomplete. */
    assert_int_equal(parse(p, h.consumed, &h), AWF_HELLO_OK);
    assert_int_equal(parse(p, h.consumed - 1, &h), AWF_HELLO_NEED_MORE);
    break;
  case AWF_HELLO_NEED_MORE: assert_true(n < AWF_HELLO_BUFFER_MAX); break;
  case AWF_HELLO_NOT_TLS:
  case AWF_HELLO_MALFORMED:
  case AWF_HELLO_TOO_LARGE:
    /* A verdict is final: more bytes cannot revive it (though a record
     * layer error in the new bytes may now be reported first). */
    if (n > 0) {
      struct bytes *x = bytes_new();
      put(x, p, n);
      put(x, real_hello, sizeof(real_hello));
      enum awf_hello_status later = parse_b(x, &h);
      assert_true(later < 0);
      if (st == AWF_HELLO_NOT_TLS)
        assert_int_equal(later, AWF_HELLO_NOT_TLS);
      bytes_free(x);
    }
    break;
  default: fail_msg("unknown status %d", (int)st);
  }
}

static void test_mutate_every_byte(void **state) {
  (void)state;
  static const uint8_t values[] = {0x00, 0x01, 0x20, 0x7f, 0x80, 0xfe, 0xff};
  uint8_t m[sizeof(real_hello)];
  for (size_t i = 0; i < sizeof(m); i++) {
    for (size_t v = 0; v < sizeof(values) + 2; v++) {
      memcpy(m, real_hello, sizeof(m));
      if (v < sizeof(values))
        m[i] = values[v];
      else
        m[i] ^= v == sizeof(values) ? 0x01 : 0x80;
      check_invariants(m, sizeof(m));
      check_invariants(m, i + 1);
    }
  }
}

/* Every 16-bit (and 24-bit) window treated as a length and lied about. */
static void test_mutate_lengths(void **state) {
  (void)state;
  uint8_t m[sizeof(real_hello) + 64];
  memset(m, 0, sizeof(m));
  for (size_t i = 0; i + 1 < sizeof(real_hello); i++) {
    unsigned orig = (unsigned)real_hello[i] << 8 | real_hello[i + 1];
    unsigned lies[] = {0,        1,      orig - 1, orig + 1, orig + 2,
                       orig * 2, 0x4000, 0x4001,   0x7fff,   0xffff};
    for (size_t k = 0; k < sizeof(lies) / sizeof(lies[0]); k++) {
      memcpy(m, real_hello, sizeof(real_hello));
      m[i] = (uint8_t)(lies[k] >> 8);
      m[i + 1] = (uint8_t)lies[k];
      check_invariants(m, sizeof(real_hello));
      check_invariants(m, sizeof(m));
    }
  }
  for (size_t i = 0; i + 2 < sizeof(real_hello); i++) {
    memcpy(m, real_hello, sizeof(real_hello));
    m[i] = 0x00;
    m[i + 1] = 0x40;
    m[i + 2] = 0x00;
    check_invariants(m, sizeof(real_hello));
  }
}

static uint32_t xorshift(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

/* Random bytes behind a valid-looking record and handshake header, and the
 * real hello with random bytes overwritten. */
static void test_random_inputs(void **state) {
  (void)state;
  uint32_t seed = 0x12345678;
  uint8_t m[600];
  for (int iter = 0; iter < 20000; iter++) {
    size_t n = 9 + xorshift(&seed) % (sizeof(m) - 9);
    for (size_t i = 0; i < n; i++)
      m[i] = (uint8_t)xorshift(&seed);
    if (iter % 2) {
      memcpy(m, real_hello, 9);
      m[3] = (uint8_t)((n - 5) >> 8);
      m[4] = (uint8_t)(n - 5);
    } else {
      size_t k = n < sizeof(real_hello) ? n : sizeof(real_hello);
      memcpy(m, real_hello, k);
      for (int j = 0; j < 3; j++)
        m[xorshift(&seed) % k] = (uint8_t)xorshift(&seed);
    }
    check_invariants(m, n);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_real_hello),
      cmocka_unit_test(test_real_hello_prefixes),
      cmocka_unit_test(test_trailing_bytes_not_consumed),
      cmocka_unit_test(test_two_records),
      cmocka_unit_test(test_three_records),
      cmocka_unit_test(test_one_byte_records),
      cmocka_unit_test(test_built_hello),
      cmocka_unit_test(test_no_sni),
      cmocka_unit_test(test_no_extensions),
      cmocka_unit_test(test_empty_extensions_block),
      cmocka_unit_test(test_several_names),
      cmocka_unit_test(test_several_names_bad_second),
      cmocka_unit_test(test_empty_sni),
      cmocka_unit_test(test_sni_length_limit),
      cmocka_unit_test(test_ech_flag),
      cmocka_unit_test(test_bad_name_bytes),
      cmocka_unit_test(test_duplicate_extension),
      cmocka_unit_test(test_unknown_name_type),
      cmocka_unit_test(test_oversized),
      cmocka_unit_test(test_buffer_cap),
      cmocka_unit_test(test_not_tls),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_interleaved_record),
      cmocka_unit_test(test_lying_lengths),
      cmocka_unit_test(test_bad_vectors),
      cmocka_unit_test(test_truncated_extension),
      cmocka_unit_test(test_early_error_on_prefix),
      cmocka_unit_test(test_status_names),
      cmocka_unit_test(test_mutate_every_byte),
      cmocka_unit_test(test_mutate_lengths),
      cmocka_unit_test(test_random_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
