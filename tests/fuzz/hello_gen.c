/* hello_gen.c: see hello_gen.h. */
#include "hello_gen.h"

#include <string.h>

#define EXT_SERVER_NAME 0x0000
#define EXT_ECH 0xfe0d
#define EXTS_CAP 40000 /* well past AWF_HELLO_MAX, so TOO_LARGE is reachable */

static size_t put16(uint8_t *p, size_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
  return 2;
}

static bool name_ok(const uint8_t *p, size_t n) {
  if (n >= 256)
    return false;
  for (size_t i = 0; i < n; i++)
    if (p[i] < 0x21 || p[i] > 0x7e)
      return false;
  return true;
}

/* The ServerNameList for names separated by ','; returns bytes written. */
static size_t server_name_body(const uint8_t *s, size_t n, uint8_t *out, size_t cap,
                               struct hello_gen *g) {
  size_t o = 2, start = 0, count = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && s[i] != ',')
      continue;
    size_t len = i - start;
    if (o + 3 + len > cap)
      break;
    out[o++] = 0; /* host_name */
    o += put16(out + o, len);
    memcpy(out + o, s + start, len);
    o += len;
    if (!g->has_sni) {
      if (count == 0) {
        g->first = s + start;
        g->first_len = len;
      }
      g->names_ok = g->names_ok && name_ok(s + start, len);
    }
    count++;
    start = i + 1;
  }
  if (!g->has_sni)
    g->nnames = count;
  put16(out, o - 2);
  return o;
}

size_t hello_gen(const uint8_t *desc, size_t n, uint8_t *msg, struct hello_gen *g) {
  static const size_t sid_len[] = {0, 8, 16, 32};
  uint8_t seen[65536 / 8];
  uint8_t flags = n > 0 ? desc[0] : 0;
  size_t pos = n > 0 ? 1 : 0, o = 4;

  memset(g, 0, sizeof(*g));
  memset(seen, 0, sizeof(seen));
  g->names_ok = true;
  o += put16(msg + o, 0x0303);
  memset(msg + o, 0xA5, 32); /* random */
  o += 32;
  msg[o++] = (uint8_t)sid_len[flags & 3];
  memset(msg + o, 0x5A, sid_len[flags & 3]);
  o += sid_len[flags & 3];
  o += put16(msg + o, 2);
  o += put16(msg + o, 0x1301);
  msg[o++] = 1;
  msg[o++] = 0;
  bool none = (flags & 4) && pos + 4 > n;
  size_t exts_at = o;
  if (!none)
    o += 2;
  while (pos + 4 <= n) {
    size_t type = (size_t)desc[pos] << 8 | desc[pos + 1];
    size_t len = (size_t)desc[pos + 2] << 8 | desc[pos + 3];
    pos += 4;
    if (len > n - pos || len == 0xFFFF)
      len = n - pos;
    if (o - exts_at + 4 + len + 2 * len + 8 > EXTS_CAP)
      break;
    o += put16(msg + o, type);
    size_t len_at = o;
    o += 2;
    size_t body;
    if (type == EXT_SERVER_NAME) {
      body = server_name_body(desc + pos, len, msg + o, EXTS_CAP, g);
      g->has_sni = true;
    } else {
      memcpy(msg + o, desc + pos, len);
      body = len;
    }
    put16(msg + len_at, body);
    o += body;
    pos += len;
    if (seen[type / 8] & (1u << (type % 8)))
      g->dup_ext = true;
    seen[type / 8] |= (uint8_t)(1u << (type % 8));
    g->ech = g->ech || type == EXT_ECH;
  }
  if (!none)
    put16(msg + exts_at, o - exts_at - 2);
  g->body_len = o - 4;
  msg[0] = 1; /* client_hello */
  msg[1] = (uint8_t)(g->body_len >> 16);
  msg[2] = (uint8_t)(g->body_len >> 8);
  msg[3] = (uint8_t)g->body_len;
  return o;
}
