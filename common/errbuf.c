/* errbuf.c: see errbuf.h. */
#include "errbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int awf_errbuf_fail(char *err, size_t errsz, int code, const char *fmt, ...) {
  va_list ap;

  if (err == NULL || errsz == 0)
    return code;
  va_start(ap, fmt);
  vsnprintf(err, errsz, fmt, ap);
  va_end(ap);
  return code;
}

/* Bytes needed to render c. */
static size_t rendered_len(unsigned char c) {
  if (c == '"' || c == '\\')
    return 2;
  return (c >= 0x20 && c < 0x7f) ? 1 : 4;
}

static size_t render(unsigned char c, char *o) {
  static const char hex[] = "0123456789abcdef";

  if (c == '"' || c == '\\') {
    o[0] = '\\';
    o[1] = (char)c;
    return 2;
  }
  if (c >= 0x20 && c < 0x7f) {
    o[0] = (char)c;
    return 1;
  }
  o[0] = '\\';
  o[1] = 'x';
  o[2] = hex[c >> 4];
  o[3] = hex[c & 0xf];
  return 4;
}

const char *awf_errbuf_quote(const char *s, size_t len, char *out, size_t outsz) {
  static const char ell[] = "...";
  size_t o = 0, i, total = 0, room;

  if (outsz == 0)
    return out;
  for (i = 0; i < len && total < outsz; i++)
    total += rendered_len((unsigned char)s[i]);
  /* When cut, keep room for the ellipsis (if the buffer can hold one at
     * all); an escape sequence is never split. */
  room = total < outsz ? outsz - 1 : outsz - 1 - (outsz >= sizeof ell ? sizeof ell - 1 : 0);
  for (i = 0; i < len; i++) {
    size_t need = rendered_len((unsigned char)s[i]);

    if (o + need > room)
      break;
    o += render((unsigned char)s[i], out + o);
  }
  if (i < len && outsz >= sizeof ell) {
    memcpy(out + o, ell, sizeof ell - 1);
    o += sizeof ell - 1;
  }
  out[o] = '\0';
  return out;
}
