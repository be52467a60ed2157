/* jsonlog.c: JSON string escaping, and one access-log record formatted as
 * one line of JSON. No I/O. */
#include "jsonlog.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- JSON strings ------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 if the bytes
 * there do not start one. The second-byte ranges exclude overlongs,
 * surrogates (U+D800-DFFF) and code points past U+10FFFF (RFC 3629). */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0)
      lo = 0xa0;
    else if (c == 0xed)
      hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0)
      lo = 0x90;
    else if (c == 0xf4)
      hi = 0x8f;
  } else {
    return 0;
  }
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  return len;
}

/* The escape for an ASCII byte, written to out; returns its length, or 0 if
 * the byte needs none. */
static size_t ascii_escape(unsigned char c, char out[7]) {
  static const char hex[] = "0123456789abcdef";
  char e = 0;
  switch (c) {
  case '"': e = '"'; break;
  case '\\': e = '\\'; break;
  case '\n': e = 'n'; break;
  case '\r': e = 'r'; break;
  case '\t': e = 't'; break;
  case '\b': e = 'b'; break;
  case '\f': e = 'f'; break;
  default:
    if (c >= 0x20 && c != 0x7f)
      return 0;
    memcpy(out, "\\u00", 4);
    out[4] = hex[c >> 4];
    out[5] = hex[c & 0xf];
    return 6;
  }
  out[0] = '\\';
  out[1] = e;
  return 2;
}

static int append_escaped(struct awf_buf *b, const unsigned char *s, size_t n) {
  static const char replacement[] = "\\ufffd";
  size_t run = 0; /* start of the pending run of bytes copied verbatim */
  size_t i = 0;
  int rc = 0;
  while (i < n && rc == 0) {
    char esc[7];
    size_t elen;
    size_t step = 1;
    if (s[i] < 0x80) {
      elen = ascii_escape(s[i], esc);
    } else {
      step = utf8_seq_len(s + i, n - i);
      elen = 0;
      if (step == 0) {
        /* Only the lead byte is replaced: what follows is judged anew, so
         * each byte of a bad sequence becomes one U+FFFD. */
        memcpy(esc, replacement, sizeof(replacement));
        elen = sizeof(replacement) - 1;
        step = 1;
      }
    }
    if (elen) {
      rc = awf_buf_append(b, s + run, i - run);
      if (rc == 0)
        rc = awf_buf_append(b, esc, elen);
      run = i + step;
    }
    i += step;
  }
  if (rc == 0)
    rc = awf_buf_append(b, s + run, n - run);
  return rc;
}

int awf_json_append_string(struct awf_buf *b, const char *s, size_t n) {
  size_t saved = b->len;
  int rc = awf_buf_append(b, "\"", 1);
  if (rc == 0)
    rc = append_escaped(b, (const unsigned char *)s, n);
  if (rc == 0)
    rc = awf_buf_append(b, "\"", 1);
  if (rc < 0) {
    b->len = saved;
    if (b->data)
      b->data[saved] = '\0';
  }
  return rc;
}

/* ---- the record --------------------------------------------------------- */

uint64_t awf_log_next_conn(void) {
  static _Atomic uint64_t next;
  return ++next;
}

void awf_log_record_init(struct awf_log_record *r) {
  memset(r, 0, sizeof(*r));
  r->port = -1;
  r->status = -1;
  r->bytes_up = -1;
  r->bytes_down = -1;
  r->duration_ms = -1;
  r->answers = -1;
  r->lost = -1;
}

/* Appending fields stops at the first error; the caller rolls back. */
struct rec_writer {
  struct awf_buf *b;
  int rc;
  bool first;
};

/* Keys are short literals: built on the stack, appended once (a printf per
 * key was a tenth of the proxy's CPU time under load). */
static void key(struct rec_writer *w, const char *k) {
  char tmp[40];
  size_t kl = strlen(k), n = 0;
  if (w->rc == 0 && kl + 4 > sizeof(tmp))
    w->rc = -EINVAL;
  if (w->rc == 0) {
    if (!w->first)
      tmp[n++] = ',';
    tmp[n++] = '"';
    memcpy(tmp + n, k, kl);
    n += kl;
    tmp[n++] = '"';
    tmp[n++] = ':';
    w->rc = awf_buf_append(w->b, tmp, n);
  }
  w->first = false;
}

/* Decimal digits of v into the end of tmp[24]; returns where they start. */
static char *u64_digits(uint64_t v, char tmp[24]) {
  char *p = tmp + 24;
  do {
    *--p = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return p;
}

static void field_bytes(struct rec_writer *w, const char *k, const char *v, size_t n) {
  if (!v)
    return;
  key(w, k);
  if (w->rc == 0)
    w->rc = awf_json_append_string(w->b, v, n);
}

static void field_str(struct rec_writer *w, const char *k, const char *v) {
  if (v)
    field_bytes(w, k, v, strlen(v));
}

static void field_u64(struct rec_writer *w, const char *k, uint64_t v) {
  key(w, k);
  char tmp[24];
  char *d = u64_digits(v, tmp);
  if (w->rc == 0)
    w->rc = awf_buf_append(w->b, d, (size_t)(tmp + sizeof(tmp) - d));
}

static void field_int(struct rec_writer *w, const char *k, int64_t v) {
  if (v >= 0)
    field_u64(w, k, (uint64_t)v);
}

static void field_id(struct rec_writer *w, const char *k, uint64_t v) {
  if (v)
    field_u64(w, k, v);
}

static void field_strv(struct rec_writer *w, const char *k, const char *const *v, int n) {
  if (!v)
    return;
  key(w, k);
  if (w->rc == 0)
    w->rc = awf_buf_append(w->b, "[", 1);
  for (int i = 0; i < n && w->rc == 0; i++) {
    if (i)
      w->rc = awf_buf_append(w->b, ",", 1);
    if (w->rc == 0)
      w->rc = awf_json_append_string(w->b, v[i], strlen(v[i]));
  }
  if (w->rc == 0)
    w->rc = awf_buf_append(w->b, "]", 1);
}

/* The names of the secrets in mask, as an array; nothing for an empty mask. */
static void field_secrets(struct rec_writer *w, const char *k, const awf_secrets *s,
                          uint64_t mask) {
  const char *names[AWF_SECRETS_MAX];
  int n = 0;
  for (size_t i = 0; s && mask && i < awf_secrets_count(s); i++)
    if ((mask >> i) & 1)
      names[n++] = awf_secrets_name(s, i);
  if (n)
    field_strv(w, k, names, n);
}

static void field_true(struct rec_writer *w, const char *k, bool v) {
  if (!v)
    return;
  key(w, k);
  if (w->rc == 0)
    w->rc = awf_buf_append(w->b, "true", 4);
}

static void field_ts(struct rec_writer *w, uint64_t ts_ms) {
  /* Records come many to the second: the date and time to the second are
   * formatted once per second (per thread), the milliseconds each time. */
  static _Thread_local time_t cached_secs = -1;
  static _Thread_local char cached[72]; /* "YYYY-MM-DDTHH:MM:SS", room for any int */
  if (w->rc < 0)
    return;
  time_t secs = (time_t)(ts_ms / 1000);
  if (secs != cached_secs) {
    struct tm tm;
    /* RFC 3339 has room for four year digits only. */
    if (!gmtime_r(&secs, &tm) || tm.tm_year > 9999 - 1900) {
      w->rc = -EINVAL;
      return;
    }
    snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_secs = secs;
  }
  unsigned ms = (unsigned)(ts_ms % 1000);
  char tail[7] = {
      '.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), 'Z', '"',
      '\0'};
  key(w, "ts");
  if (w->rc == 0)
    w->rc = awf_buf_append(w->b, "\"", 1);
  if (w->rc == 0)
    w->rc = awf_buf_append(w->b, cached, strlen(cached));
  if (w->rc == 0)
    w->rc = awf_buf_append(w->b, tail, 6);
}

/* Where to cut a URL longer than the cap: back off to the start of a UTF-8
 * sequence so the cut does not itself produce replacement characters. */
static size_t url_cut(const char *url) {
  size_t cut = AWF_LOG_URL_MAX;
  for (int i = 0; i < 3 && cut > 0 && ((unsigned char)url[cut] & 0xc0) == 0x80; i++)
    cut--;
  return cut;
}

static void fields_config(struct rec_writer *w, const struct awf_log_config *c) {
  key(w, "ok");
  if (w->rc == 0)
    w->rc = c->ok ? awf_buf_append(w->b, "true", 4) : awf_buf_append(w->b, "false", 5);
  field_int(w, "allow_rules", c->allow_rules);
  field_int(w, "block_rules", c->block_rules);
  field_int(w, "url_allow_rules", c->url_allow_rules);
  field_int(w, "url_block_rules", c->url_block_rules);
  field_str(w, "ports", c->ports);
  field_int(w, "sources", c->sources);
  field_int(w, "files", c->files);
  field_str(w, "digest", c->digest);
  field_str(w, "error", c->error);
  field_str(w, "file", c->file);
  field_int(w, "line", c->line);
  field_str(w, "warning", c->warning);
}

int awf_log_format(struct awf_buf *b, const struct awf_log_record *r) {
  size_t saved = b->len;
  struct rec_writer w = {.b = b, .rc = 0, .first = true};
  w.rc = awf_buf_append(b, "{", 1);
  field_ts(&w, r->ts_ms);
  field_str(&w, "run", r->run);
  field_str(&w, "event", r->event);
  field_id(&w, "conn", r->conn);
  field_id(&w, "req", r->req);
  field_str(&w, "kind", r->kind);
  field_str(&w, "client", r->client);
  field_str(&w, "method", r->method);
  field_bytes(&w, "host", r->host, r->host_len);
  field_int(&w, "port", r->port);
  if (r->url && r->url_len > AWF_LOG_URL_MAX) {
    field_bytes(&w, "url", r->url, url_cut(r->url));
    field_true(&w, "url_truncated", true);
  } else {
    field_bytes(&w, "url", r->url, r->url_len);
  }
  field_bytes(&w, "sni", r->sni, r->sni_len);
  field_true(&w, "ech", r->ech);
  field_true(&w, "intercepted", r->intercepted);
  field_secrets(&w, "secrets", r->secrets, r->secrets_injected);
  field_secrets(&w, "secrets_misdirected", r->secrets, r->secrets_misdirected);
  field_str(&w, "original_dst", r->original_dst);
  field_bytes(&w, "path", r->path, r->path_len);
  field_str(&w, "decision", awf_decision_name(r->decision));
  field_true(&w, "would_deny", r->would_deny);
  field_str(&w, "reason", awf_reason_name(r->reason));
  field_str(&w, "dlp", r->dlp);
  field_int(&w, "status", r->status);
  field_str(&w, "upstream", r->upstream);
  field_str(&w, "resolved", r->resolved);
  field_int(&w, "bytes_up", r->bytes_up);
  field_int(&w, "bytes_down", r->bytes_down);
  field_int(&w, "duration_ms", r->duration_ms);
  field_bytes(&w, "qname", r->qname, r->qname_len);
  field_str(&w, "qtype", r->qtype);
  field_int(&w, "answers", r->answers);
  field_str(&w, "version", r->version);
  field_strv(&w, "argv", r->argv, r->argc);
  field_int(&w, "lost", r->lost);
  if (r->config)
    fields_config(&w, r->config);
  if (w.rc == 0)
    w.rc = awf_buf_append(b, "}\n", 2);
  if (w.rc < 0) {
    b->len = saved;
    if (b->data)
      b->data[saved] = '\0';
  }
  return w.rc;
}
