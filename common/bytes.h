/* bytes.h: a length-checked read cursor over untrusted bytes (after c-ares's
 * ares_buf). Every read checks its length before touching memory, so no
 * length field in the input is ever trusted, and the first failed read sets
 * a sticky error: later reads fail the same way and move nothing, so a
 * parser may check once after a run of reads.
 *
 * A cursor knows two ends: the end its input declares (a record length, a
 * packet length) and the end of the bytes that have arrived so far. Reading
 * past the declared end is AWF_BYTES_SHORT (the input is malformed); reading
 * past the arrived bytes but within the declared end is AWF_BYTES_MORE (the
 * input is incomplete, so far valid). A cursor over a whole buffer
 * (awf_bytes_init) has both ends equal and only ever reports SHORT.
 *
 * Pure and header-only: no allocation, no I/O. Numbers are big-endian
 * (network order). */
#ifndef AWF_COMMON_BYTES_H
#define AWF_COMMON_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum awf_bytes_status {
  AWF_BYTES_OK = 0,
  AWF_BYTES_SHORT = -1, /* past the declared end */
  AWF_BYTES_MORE = -2,  /* past the bytes that have arrived */
};

struct awf_bytes {
  const uint8_t *base;
  size_t off;   /* next byte to read, from base */
  size_t end;   /* the declared end */
  size_t avail; /* the end of what has arrived; may be below off after a skip */
  int err;      /* enum awf_bytes_status, sticky */
};

/* A cursor over the whole of p[0..len). p may be NULL when len is 0; a NULL
 * p is taken as empty whatever len says. */
static inline void awf_bytes_init(struct awf_bytes *c, const void *p, size_t len) {
  c->base = (const uint8_t *)p;
  c->off = 0;
  c->end = p ? len : 0;
  c->avail = c->end;
  c->err = AWF_BYTES_OK;
}

/* A cursor over an input declaring `declared` bytes of which `arrived` are
 * in p (arrived is clipped to declared). */
static inline void awf_bytes_init_partial(struct awf_bytes *c, const void *p, size_t declared,
                                          size_t arrived) {
  awf_bytes_init(c, p, declared);
  c->avail = arrived < c->end ? arrived : c->end;
}

static inline int awf_bytes_error(const struct awf_bytes *c) { return c->err; }

/* Declared bytes left to read (0 once in error). */
static inline size_t awf_bytes_left(const struct awf_bytes *c) {
  return c->err ? 0 : c->end - c->off;
}

/* Where the next read starts, as a pointer into the input. */
static inline const uint8_t *awf_bytes_ptr(const struct awf_bytes *c) {
  return c->base + c->off;
}

/* Check that n more bytes can be read; sets the sticky error if not. */
static inline int awf_bytes_need(struct awf_bytes *c, size_t n) {
  if (c->err)
    return c->err;
  if (n > c->end - c->off)
    return c->err = AWF_BYTES_SHORT;
  if (c->off > c->avail || n > c->avail - c->off)
    return c->err = AWF_BYTES_MORE;
  return AWF_BYTES_OK;
}

/* The next n bytes: a pointer to them, or NULL (and the error set). */
static inline const uint8_t *awf_bytes_take(struct awf_bytes *c, size_t n) {
  if (awf_bytes_need(c, n) != AWF_BYTES_OK)
    return NULL;
  const uint8_t *p = c->base + c->off;
  c->off += n;
  return p;
}

static inline int awf_bytes_u8(struct awf_bytes *c, uint8_t *v) {
  const uint8_t *p = awf_bytes_take(c, 1);
  if (p)
    *v = p[0];
  return c->err;
}

static inline int awf_bytes_u16(struct awf_bytes *c, uint16_t *v) {
  const uint8_t *p = awf_bytes_take(c, 2);
  if (p)
    *v = (uint16_t)(p[0] << 8 | p[1]);
  return c->err;
}

static inline int awf_bytes_u24(struct awf_bytes *c, uint32_t *v) {
  const uint8_t *p = awf_bytes_take(c, 3);
  if (p)
    *v = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
  return c->err;
}

static inline int awf_bytes_u32(struct awf_bytes *c, uint32_t *v) {
  const uint8_t *p = awf_bytes_take(c, 4);
  if (p)
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  return c->err;
}

/* Copy the next n bytes out. */
static inline int awf_bytes_copy(struct awf_bytes *c, void *out, size_t n) {
  const uint8_t *p = awf_bytes_take(c, n);
  if (p && n)
    memcpy(out, p, n);
  return c->err;
}

/* Move past n declared bytes, whether or not they have arrived: a later read
 * reports MORE if they have not. Past the declared end is SHORT. */
static inline int awf_bytes_skip(struct awf_bytes *c, size_t n) {
  if (c->err)
    return c->err;
  if (n > c->end - c->off)
    return c->err = AWF_BYTES_SHORT;
  c->off += n;
  return AWF_BYTES_OK;
}

/* Split the next n declared bytes off as the child cursor *sub, and skip
 * them here. The child holds those of them that have arrived, so it may
 * report MORE while the parent goes on. */
static inline int awf_bytes_sub(struct awf_bytes *c, size_t n, struct awf_bytes *sub) {
  if (awf_bytes_skip(c, n) != AWF_BYTES_OK) {
    *sub = *c;
    return c->err;
  }
  sub->base = c->base;
  sub->off = c->off - n;
  sub->end = c->off;
  sub->avail = c->avail < sub->end ? c->avail : sub->end;
  sub->err = AWF_BYTES_OK;
  return AWF_BYTES_OK;
}

/* A vector with a big-endian length prefix of `width` bytes (1, 2, 3 or 4):
 * the child is its body, *n its declared length. */
static inline int awf_bytes_vec(struct awf_bytes *c, int width, struct awf_bytes *sub,
                                size_t *n) {
  uint32_t v = 0;
  uint8_t v8 = 0;
  uint16_t v16 = 0;
  switch (width) {
  case 1:
    awf_bytes_u8(c, &v8);
    v = v8;
    break;
  case 2:
    awf_bytes_u16(c, &v16);
    v = v16;
    break;
  case 3: awf_bytes_u24(c, &v); break;
  default: awf_bytes_u32(c, &v); break;
  }
  if (c->err) {
    *sub = *c;
    return c->err;
  }
  *n = v;
  return awf_bytes_sub(c, v, sub);
}

/* The bytes before the next `delim`, or all that is left when there is none;
 * the delimiter is consumed too. Returns false at the end (nothing left) or
 * in error. Over the declared bytes, which must all have arrived (MORE
 * otherwise). Suits line-oriented text: awf_bytes_token(c, '\n', &p, &n). */
static inline bool awf_bytes_token(struct awf_bytes *c, uint8_t delim, const uint8_t **p,
                                   size_t *n) {
  size_t left = awf_bytes_left(c);
  if (left == 0 || awf_bytes_need(c, left) != AWF_BYTES_OK)
    return false;
  const uint8_t *start = c->base + c->off;
  const uint8_t *d = memchr(start, delim, left);
  *p = start;
  *n = d ? (size_t)(d - start) : left;
  c->off += *n + (d != NULL);
  return true;
}

#endif
