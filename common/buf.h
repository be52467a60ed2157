/* buf.h: a growable byte buffer with a hard cap (curl's dynbuf idea).
 * Appends past the cap fail and leave the buffer as it was, so a caller
 * never holds half of what it meant to write. Pure: no I/O. */
#ifndef AWF_COMMON_BUF_H
#define AWF_COMMON_BUF_H

#include <stddef.h>

struct awf_buf {
  char *data;
  size_t len;
  size_t cap;
  size_t max; /* appends past max fail with -E2BIG and leave len as it was */
};

/* An empty buffer that will hold at most max bytes; nothing is allocated
 * until the first append. data stays NUL-terminated once allocated. */
void awf_buf_init(struct awf_buf *b, size_t max);
void awf_buf_free(struct awf_buf *b);
int awf_buf_append(struct awf_buf *b, const void *p, size_t n); /* 0, -ENOMEM, -E2BIG */
/* Append formatted text: 0, -E2BIG past max, -ENOMEM, -EINVAL on a bad format. */
int awf_buf_printf(struct awf_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Empty the buffer, keeping its memory for the next record. */
void awf_buf_reset(struct awf_buf *b);

/* The contents from byte off (off <= len): never NULL, so an offset into a
 * buffer that has not allocated yet is "" rather than NULL + 0 (undefined
 * behaviour). */
static inline const char *awf_buf_at(const struct awf_buf *b, size_t off) {
  return b->data ? b->data + off : "";
}

#endif
