/* buf.c: see buf.h. */
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_ALLOC 256

void awf_buf_init(struct awf_buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void awf_buf_free(struct awf_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void awf_buf_reset(struct awf_buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

/* Make room for `need` bytes of content. One byte more is always allocated
 * so data stays NUL-terminated (vsnprintf writes it; debuggers like it). */
static int buf_reserve(struct awf_buf *b, size_t need) {
  if (b->data && need <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : BUF_MIN_ALLOC;
  while (cap < need && cap <= SIZE_MAX / 4)
    cap *= 2;
  if (cap < need)
    cap = need;
  if (cap > b->max)
    cap = b->max; /* callers ensure need <= max */
  if (cap == SIZE_MAX)
    return -ENOMEM;
  char *p = realloc(b->data, cap + 1);
  if (!p)
    return -ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int awf_buf_append(struct awf_buf *b, const void *p, size_t n) {
  if (n > b->max - b->len)
    return -E2BIG;
  if (n == 0 && !b->data)
    return 0;
  int rc = buf_reserve(b, b->len + n);
  if (rc < 0)
    return rc;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int awf_buf_printf(struct awf_buf *b, const char *fmt, ...) {
  /* One pass when the text fits the room already there (the usual case on
   * a reused buffer), a second one after growing otherwise. */
  size_t room = b->data ? b->cap - b->len : 0;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? room + 1 : 0, fmt, ap);
  va_end(ap);
  if (b->data && (n < 0 || (size_t)n > room))
    b->data[b->len] = '\0'; /* undo a cut attempt */
  if (n < 0)
    return -EINVAL;
  if ((size_t)n <= room && b->data) {
    b->len += (size_t)n;
    return 0;
  }
  if ((size_t)n > b->max - b->len)
    return -E2BIG;
  int rc = buf_reserve(b, b->len + (size_t)n);
  if (rc < 0)
    return rc;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}
