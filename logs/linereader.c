/* linereader.c: bounded line splitting over read(2). */
#include "linereader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int awf_linereader_init(struct awf_linereader *r, int fd, size_t max_line) {
  memset(r, 0, sizeof(*r));
  r->fd = fd;
  r->cap = max_line + 1;
  r->buf = malloc(r->cap);
  return r->buf ? 0 : -ENOMEM;
}

void awf_linereader_free(struct awf_linereader *r) {
  free(r->buf);
  r->buf = NULL;
}

void awf_linereader_reset(struct awf_linereader *r, int fd) {
  r->fd = fd;
  r->start = r->end = 0;
  r->lineno = 0;
  r->offset = 0;
  r->skipping = false;
}

int awf_linereader_next(struct awf_linereader *r, bool final, const char **line, size_t *len,
                        unsigned *flags) {
  for (;;) {
    char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
    if (nl) {
      r->lineno++;
      *line = r->buf + r->start;
      *len = (size_t)(nl - *line);
      *flags = r->skipping ? AWF_LINE_TOO_LONG : 0;
      if (r->skipping)
        *len = 0;
      r->skipping = false;
      r->start = (size_t)(nl - r->buf) + 1;
      return 1;
    }
    if (r->start > 0) { /* room for the rest of this line */
      memmove(r->buf, r->buf + r->start, r->end - r->start);
      r->end -= r->start;
      r->start = 0;
    }
    if (r->end == r->cap) { /* a line longer than the buffer: drop what we have */
      r->skipping = true;
      r->end = 0;
    }
    ssize_t n;
    do
      n = read(r->fd, r->buf + r->end, r->cap - r->end);
    while (n < 0 && errno == EINTR);
    if (n < 0)
      return -errno;
    if (n > 0) {
      r->end += (size_t)n;
      r->offset += (uint64_t)n;
      continue;
    }
    if (!final || (r->end == 0 && !r->skipping))
      return 0;
    r->lineno++;
    *line = r->buf;
    *len = r->skipping ? 0 : r->end;
    *flags = AWF_LINE_UNTERMINATED | (r->skipping ? AWF_LINE_TOO_LONG : 0);
    r->start = r->end = 0;
    r->skipping = false;
    return 1;
  }
}
