/* fuzz_http_forward.c: libFuzzer target for what the HTTP proxy forwards
 * (proxy/http_head.c driven by llhttp the way proxy/http_proxy.c drives it).
 *
 * The differential invariant: for any byte stream from a client, the bytes
 * the proxy would send upstream, parsed again by an independent strict
 * HTTP/1.1 parser (below, not llhttp), are exactly the requests the proxy
 * judged and would log: method, target, Host (name and port), body length,
 * and where each starts; a request cut short by an error is an incomplete
 * tail, never a complete request. Likewise for a response stream from an
 * origin: the bytes for the client parse as exactly the responses the proxy
 * forwarded (status, body length), framed so an HTTP/1.1 client finds their
 * end. An upstream is called reusable only after a response that ended
 * cleanly: the origin's bytes parse (independently) as interim responses and
 * one final response that ends exactly at the end of the input, framed by
 * length or chunks, without Connection: close.
 *
 * Input: byte 0 selects the mode and options, the rest is the stream, fed in
 * pieces whose sizes come from a PRNG seeded by the input.
 *   bit 0: 0 = request stream (client -> upstream), 1 = response stream
 *   bit 1: request: transparent mode (origin-form, Host judged);
 *          response: the request was HEAD
 *   bit 2: response: the client connection closes after this response
 *   bit 3: feed the whole stream at once
 */
#include "fuzz_check.h"
#include "http_head.h"

#include <ctype.h>
#include <stdbool.h>
#include <strings.h>

#define HEAD_MAX (64 * 1024)
#define OUT_MAX (64u * 1024 * 1024)
#define MAX_MSGS 4096

struct rng {
  uint64_t s;
};

static uint32_t rng_next(struct rng *r) {
  r->s ^= r->s << 13;
  r->s ^= r->s >> 7;
  r->s ^= r->s << 17;
  return (uint32_t)(r->s >> 11);
}

/* ---- an independent strict HTTP/1.1 parser ----------------------------------------- */

static bool is_tchar(unsigned char c) {
  return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_crlf(const uint8_t *b, size_t n, size_t at) {
  return at + 1 < n && b[at] == '\r' && b[at + 1] == '\n';
}

/* The end of the line at pos (where its CRLF starts), or n when it is not
 * complete; *next is where the following line starts. lenient: a bare LF
 * ends a line too (what llhttp takes from an origin). */
static size_t find_line(const uint8_t *b, size_t n, size_t pos, bool lenient, size_t *next) {
  for (size_t i = pos; i < n; i++) {
    if (i + 1 < n && b[i] == '\r' && b[i + 1] == '\n') {
      *next = i + 2;
      return i;
    }
    if (lenient && b[i] == '\n') {
      *next = i + 1;
      return i;
    }
  }
  *next = n;
  return n;
}

static bool ieq(const uint8_t *a, size_t n, const char *s) {
  return strlen(s) == n && strncasecmp((const char *)a, s, n) == 0;
}

enum pres { P_OK, P_MORE, P_BAD };

struct field {
  const uint8_t *name, *val;
  size_t name_len, val_len;
};

#define MAX_FIELDS 200

struct msg {
  /* request */
  const uint8_t *method, *target;
  size_t method_len, target_len;
  /* response */
  int status;
  /* both */
  struct field f[MAX_FIELDS];
  unsigned nf;
  size_t start, head_end, end;
  uint64_t body;
};

/* Header lines from pos to the blank line. lenient: what an origin may send
 * that llhttp accepts (obs-text and more in values). */
static enum pres parse_fields(const uint8_t *b, size_t n, size_t *pos, struct msg *m,
                              bool lenient) {
  m->nf = 0;
  for (;;) {
    size_t next, eol = find_line(b, n, *pos, lenient, &next);
    if (eol == n)
      return P_MORE;
    if (eol == *pos) {
      *pos = next;
      return P_OK;
    }
    if (lenient && m->nf > 0 && (b[*pos] == ' ' || b[*pos] == '\t')) {
      *pos = next; /* obs-fold: the previous value goes on (RFC 9112 5.2) */
      continue;
    }
    size_t c = *pos;
    while (c < eol && is_tchar(b[c]))
      c++;
    if (c == *pos || c == eol || b[c] != ':')
      return P_BAD;
    if (m->nf == MAX_FIELDS)
      return P_BAD;
    struct field *f = &m->f[m->nf++];
    f->name = b + *pos;
    f->name_len = c - *pos;
    size_t v = c + 1, e = eol;
    while (v < e && (b[v] == ' ' || b[v] == '\t'))
      v++;
    while (e > v && (b[e - 1] == ' ' || b[e - 1] == '\t'))
      e--;
    for (size_t i = v; i < e; i++)
      if ((b[i] < 0x20 && b[i] != '\t') || b[i] == 0x7f)
        return P_BAD;
    f->val = b + v;
    f->val_len = e - v;
    *pos = next;
  }
}

static const struct field *field_get(const struct msg *m, const char *name, unsigned *count) {
  const struct field *found = NULL;
  unsigned k = 0;
  for (unsigned i = 0; i < m->nf; i++)
    if (ieq(m->f[i].name, m->f[i].name_len, name)) {
      if (!found)
        found = &m->f[i];
      k++;
    }
  if (count)
    *count = k;
  return found;
}

/* Does a comma-separated field value hold token tok (any case)? */
static bool list_has(const struct field *f, const char *tok) {
  size_t i = 0;
  while (i < f->val_len) {
    while (i < f->val_len && (f->val[i] == ',' || f->val[i] == ' ' || f->val[i] == '\t'))
      i++;
    size_t s = i;
    while (i < f->val_len && f->val[i] != ',' && f->val[i] != ' ' && f->val[i] != '\t')
      i++;
    if (i > s && ieq(f->val + s, i - s, tok))
      return true;
  }
  return false;
}

/* The last token of a list (for Transfer-Encoding). */
static bool list_last_is(const struct field *f, const char *tok) {
  size_t e = f->val_len;
  while (e && (f->val[e - 1] == ' ' || f->val[e - 1] == '\t'))
    e--;
  size_t s = e;
  while (s && f->val[s - 1] != ',' && f->val[s - 1] != ' ' && f->val[s - 1] != '\t')
    s--;
  return e > s && ieq(f->val + s, e - s, tok);
}

/* A chunked body at *pos. exts: chunk extensions and trailers allowed (what
 * an origin may send); otherwise exactly "<hex>\r\n<data>\r\n" ... "0\r\n\r\n". */
static enum pres parse_chunked(const uint8_t *b, size_t n, size_t *pos, uint64_t *body,
                               bool exts) {
  *body = 0;
  for (;;) {
    size_t next, eol = find_line(b, n, *pos, exts, &next);
    if (eol == n)
      return n - *pos > 20 + (exts ? HEAD_MAX : 0) ? P_BAD : P_MORE;
    size_t i = *pos;
    uint64_t size = 0;
    while (i < eol && isxdigit(b[i])) {
      if (size >> 56)
        return P_BAD;
      size = size * 16 + (uint64_t)(isdigit(b[i]) ? b[i] - '0' : (tolower(b[i]) - 'a' + 10));
      i++;
    }
    if (i == *pos)
      return P_BAD;
    if (i != eol && !(exts && (b[i] == ';' || b[i] == ' ' || b[i] == '\t')))
      return P_BAD;
    for (size_t k = i; k < eol; k++)
      if (b[k] < 0x20 && b[k] != '\t')
        return P_BAD;
    *pos = next;
    if (size == 0) {
      if (!exts) {
        if (n - *pos < 2)
          return P_MORE;
        if (!is_crlf(b, n, *pos))
          return P_BAD;
        *pos += 2;
        return P_OK;
      }
      static struct msg t;
      return parse_fields(b, n, pos, &t, true);
    }
    if (n - *pos < size + 2)
      return P_MORE;
    if (!is_crlf(b, n, *pos + size)) {
      if (!exts || b[*pos + size] != '\n')
        return P_BAD;
      *pos -= 1; /* a bare LF after the data */
    }
    *pos += size + 2;
    *body += size;
  }
}

/* A length as a signed 64-bit reader takes it: digits, at most INT64_MAX. */
static bool parse_u64(const uint8_t *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit(s[i]))
      return false;
    if (v > ((uint64_t)INT64_MAX - (uint64_t)(s[i] - '0')) / 10)
      return false;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return true;
}

/* One request as a proxy must send it: request line in origin form, one
 * Host, no hop-by-hop header, framed by Content-Length, chunked or nothing. */
static enum pres parse_request(const uint8_t *b, size_t n, size_t pos, struct msg *m) {
  memset(m, 0, sizeof(*m));
  m->start = pos;
  size_t p, eol = find_line(b, n, pos, false, &p);
  if (eol == n)
    return P_MORE;
  size_t sp1 = pos;
  while (sp1 < eol && is_tchar(b[sp1]))
    sp1++;
  if (sp1 == pos || sp1 == eol || b[sp1] != ' ')
    return P_BAD;
  size_t sp2 = sp1 + 1;
  while (sp2 < eol && b[sp2] > 0x20 && b[sp2] != 0x7f)
    sp2++;
  if (sp2 == sp1 + 1 || b[sp1 + 1] != '/' || sp2 == eol || b[sp2] != ' ')
    return P_BAD;
  if (eol - sp2 - 1 != 8 || memcmp(b + sp2 + 1, "HTTP/1.1", 8) != 0)
    return P_BAD;
  m->method = b + pos;
  m->method_len = sp1 - pos;
  m->target = b + sp1 + 1;
  m->target_len = sp2 - sp1 - 1;
  enum pres r = parse_fields(b, n, &p, m, false);
  if (r != P_OK)
    return r;
  m->head_end = p;
  static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",   "te",
                                    "trailer",    "upgrade",    "proxy-authorization"};
  for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
    if (field_get(m, hop[i], NULL))
      return P_BAD;
  unsigned hosts, tes, cls;
  field_get(m, "host", &hosts);
  const struct field *te = field_get(m, "transfer-encoding", &tes);
  const struct field *cl = field_get(m, "content-length", &cls);
  if (hosts != 1 || tes > 1 || cls > 1 || (te && cl))
    return P_BAD;
  if (te) {
    if (!ieq(te->val, te->val_len, "chunked"))
      return P_BAD;
    r = parse_chunked(b, n, &p, &m->body, false);
    if (r != P_OK)
      return r;
  } else if (cl) {
    if (!parse_u64(cl->val, cl->val_len, &m->body))
      return P_BAD;
    if (n - p < m->body)
      return P_MORE;
    p += m->body;
  }
  m->end = p;
  return P_OK;
}

/* One response. strict: as the proxy must send it to an HTTP/1.1 client
 * (no hop-by-hop header but Transfer-Encoding: chunked and Connection:
 * close; framed unless the connection closes after it); otherwise as an
 * origin may send it (extensions, trailers, any Connection). *eof_framed:
 * the body runs to the end of the stream. */
static enum pres parse_response(const uint8_t *b, size_t n, size_t pos, bool head_req,
                                bool strict, struct msg *m, bool *eof_framed) {
  memset(m, 0, sizeof(*m));
  *eof_framed = false;
  while (!strict && pos < n && (b[pos] == '\r' || b[pos] == '\n'))
    pos++; /* llhttp skips line breaks between messages */
  m->start = pos;
  size_t p, eol = find_line(b, n, pos, !strict, &p);
  if (eol == n)
    return P_MORE;
  if (eol - pos < 10 || memcmp(b + pos, "HTTP/1.", 7) != 0 || b[pos + 8] != ' ')
    return P_BAD;
  if (strict && b[pos + 7] != '1')
    return P_BAD;
  /* Three digits; an origin may get away with leading zeros (llhttp). */
  size_t d = pos + 9;
  m->status = 0;
  while (d < eol && isdigit(b[d]) && m->status < 1000)
    m->status = m->status * 10 + (b[d++] - '0');
  if ((strict ? d != pos + 12 : d == pos + 9) || (d < eol && b[d] != ' '))
    return P_BAD;
  if (strict) /* the reason phrase: HTAB, SP, VCHAR, obs-text */
    for (size_t i = d; i < eol; i++)
      if ((b[i] < 0x20 && b[i] != '\t') || b[i] == 0x7f)
        return P_BAD;
  enum pres r = parse_fields(b, n, &p, m, !strict);
  if (r != P_OK)
    return r;
  m->head_end = p;
  unsigned tes, cls, conns;
  const struct field *te = field_get(m, "transfer-encoding", &tes);
  const struct field *cl = field_get(m, "content-length", &cls);
  const struct field *conn = field_get(m, "connection", &conns);
  if (strict) {
    static const char *const hop[] = {"keep-alive", "proxy-connection", "te",
                                      "trailer",    "upgrade",          "proxy-authenticate"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
      if (field_get(m, hop[i], NULL))
        return P_BAD;
    if (conns > 1 || (conn && !ieq(conn->val, conn->val_len, "close")) || tes > 1 ||
        (te && !ieq(te->val, te->val_len, "chunked")))
      return P_BAD;
  }
  if (cls > 1 || (te && cl && strict))
    return P_BAD;
  bool interim = m->status >= 100 && m->status < 200;
  if (interim || head_req || m->status == 204 || m->status == 304) {
    m->end = p;
    return P_OK;
  }
  for (unsigned i = 0; te && i < m->nf; i++) /* the codings of every line: the last counts */
    if (ieq(m->f[i].name, m->f[i].name_len, "transfer-encoding"))
      te = &m->f[i];
  if (te && (strict || list_last_is(te, "chunked"))) {
    r = parse_chunked(b, n, &p, &m->body, !strict);
    if (r != P_OK)
      return r;
  } else if (cl && !te) {
    if (!parse_u64(cl->val, cl->val_len, &m->body))
      return P_BAD;
    if (n - p < m->body)
      return P_MORE;
    p += m->body;
  } else {
    /* Delimited by the close: only when the connection says so (strict). */
    if (strict && !conn)
      return P_BAD;
    *eof_framed = true;
    m->body = n - p;
    p = n;
  }
  m->end = p;
  return P_OK;
}

/* ---- the proxy's request path, as http_proxy.c runs it ---------------------------- */

struct judged_req {
  char method[24];
  struct awf_http_target target; /* path copied below */
  size_t path_off, path_len;     /* into the sim's text buffer: the origin-form target */
  size_t up_start;               /* where it starts in the upstream bytes */
  enum awf_framing framing;
  uint64_t length, body;
  bool complete;
};

struct req_sim {
  llhttp_t p;
  struct awf_head rq;
  struct awf_scan scan;
  unsigned host_headers;
  uint32_t url_off, url_len;
  bool transparent, pause_at_head, stop;
  struct rng *rng;
  struct awf_buf up, text;
  struct judged_req j[MAX_MSGS];
  unsigned nj;
  struct judged_req *cur;
  bool close_after;
};

static struct req_sim *req_of(llhttp_t *p) { return p->data; }

static int rq_begin(llhttp_t *p) {
  struct req_sim *s = req_of(p);
  awf_head_reset(&s->rq);
  s->host_headers = 0;
  s->url_off = s->url_len = 0;
  s->cur = NULL;
  return 0;
}

static int rq_url(llhttp_t *p, const char *at, size_t len) {
  struct req_sim *s = req_of(p);
  if (s->url_len == 0)
    s->url_off = (uint32_t)s->rq.buf.len;
  if (awf_head_append(&s->rq, at, len) < 0)
    return -1;
  s->url_len += (uint32_t)len;
  return 0;
}

static int rq_field(llhttp_t *p, const char *at, size_t len) {
  return awf_head_field(&req_of(p)->rq, at, len) < 0 ? -1 : 0;
}

static int rq_value(llhttp_t *p, const char *at, size_t len) {
  return awf_head_value(&req_of(p)->rq, at, len) < 0 ? -1 : 0;
}

static int rq_value_complete(llhttp_t *p) {
  struct req_sim *s = req_of(p);
  const struct awf_hdr *x = awf_head_value_complete(&s->rq);
  return awf_req_check_header(&s->rq, x, &s->host_headers) < 0 ? -1 : 0;
}

static int rq_headers_complete(llhttp_t *p) {
  struct req_sim *s = req_of(p);
  struct awf_req_facts f;
  bool origin_form;
  int status = awf_req_head_complete(p, &s->rq, s->host_headers,
                                     awf_buf_at(&s->rq.buf, s->url_off), s->url_len,
                                     s->transparent, 80, &f, &origin_form);
  if (status) { /* origin form is named only for a path sent to the proxy port */
    FUZZ_CHECK(!origin_form ||
               (!s->transparent && s->url_len > 0 && s->rq.buf.data[s->url_off] == '/'));
    return -1;
  }
  FUZZ_CHECK(status == 0 && f.target.host_len > 0);
  if (f.method == HTTP_CONNECT) { /* a tunnel: raw bytes from here, not this invariant */
    s->stop = true;
    return HPE_PAUSED;
  }
  FUZZ_CHECK(s->nj < MAX_MSGS);
  struct judged_req *j = &s->j[s->nj++];
  memset(j, 0, sizeof(*j));
  snprintf(j->method, sizeof(j->method), "%s", llhttp_method_name((llhttp_method_t)f.method));
  j->target = f.target;
  j->path_off = s->text.len;
  if (f.target.path_len == 0 || f.target.path[0] == '?')
    FUZZ_CHECK(awf_buf_append(&s->text, "/", 1) == 0);
  if (f.target.path_len)
    FUZZ_CHECK(awf_buf_append(&s->text, f.target.path, f.target.path_len) == 0);
  j->path_len = s->text.len - j->path_off;
  j->target.path = NULL;
  j->up_start = s->up.len;
  j->framing = f.framing;
  j->length = f.length;
  s->cur = j;
  s->close_after = f.close;
  struct awf_buf head;
  awf_buf_init(&head, HEAD_MAX + 1024);
  int rc = awf_build_request_head(&head, &f, &s->rq);
  if (rc < 0) { /* 431: nothing went upstream */
    awf_buf_free(&head);
    s->nj--;
    s->cur = NULL;
    return -1;
  }
  FUZZ_CHECK(awf_buf_append(&s->up, head.data, head.len) == 0);
  awf_buf_free(&head);
  /* Dialling pauses the parser; a reused upstream does not. */
  return s->pause_at_head ? HPE_PAUSED : 0;
}

static void emit_body(struct awf_buf *o, bool chunked, const char *at, size_t len) {
  char line[24];
  if (chunked) {
    int k = awf_chunk_size_line(line, sizeof(line), len);
    FUZZ_CHECK(k > 0 && awf_buf_append(o, line, (size_t)k) == 0);
  }
  FUZZ_CHECK(awf_buf_append(o, at, len) == 0);
  if (chunked)
    FUZZ_CHECK(awf_buf_append(o, "\r\n", 2) == 0);
}

static int rq_body(llhttp_t *p, const char *at, size_t len) {
  struct req_sim *s = req_of(p);
  FUZZ_CHECK(s->cur != NULL && s->cur->framing != AWF_FRAME_NONE);
  emit_body(&s->up, s->cur->framing == AWF_FRAME_CHUNKED, at, len);
  s->cur->body += len;
  return 0;
}

static int rq_complete(llhttp_t *p) {
  struct req_sim *s = req_of(p);
  FUZZ_CHECK(s->cur != NULL);
  if (s->cur->framing == AWF_FRAME_CHUNKED)
    FUZZ_CHECK(awf_buf_append(&s->up, "0\r\n\r\n", 5) == 0);
  if (s->cur->framing == AWF_FRAME_LENGTH)
    FUZZ_CHECK(s->cur->body == s->cur->length);
  s->cur->complete = true;
  awf_scan_restart(&s->scan);
  if (s->close_after)
    s->stop = true; /* the connection closes after this exchange */
  return HPE_PAUSED;
}

static const llhttp_settings_t rq_settings = {
    .on_message_begin = rq_begin,
    .on_url = rq_url,
    .on_header_field = rq_field,
    .on_header_value = rq_value,
    .on_header_value_complete = rq_value_complete,
    .on_headers_complete = rq_headers_complete,
    .on_body = rq_body,
    .on_message_complete = rq_complete,
};

/* http_proxy.c's feed_client and resume_client: scan, parse; a pause stashes
 * the rest, which is fed again once the exchange is over. */
static void rq_feed(struct req_sim *s, const char *data, size_t len, struct awf_buf *pending) {
  for (;;) {
    if (s->scan.active && awf_scan_head(&s->scan, data, len) < 0) {
      s->stop = true;
      return;
    }
    llhttp_errno_t err = llhttp_execute(&s->p, data, len);
    while (err == HPE_PAUSED_UPGRADE && !s->stop) {
      const char *pos = llhttp_get_error_pos(&s->p);
      size_t used = pos ? (size_t)(pos - data) : len;
      llhttp_resume_after_upgrade(&s->p);
      data += used;
      len -= used;
      err = llhttp_execute(&s->p, data, len);
    }
    if (s->stop || err == HPE_OK)
      return;
    if (err != HPE_PAUSED) {
      if (getenv("FUZZ_DUMP"))
        fprintf(stderr, "llhttp: %s (%s)\n", llhttp_errno_name(err),
                llhttp_get_error_reason(&s->p));
      s->stop = true;
      return;
    }
    const char *pos = llhttp_get_error_pos(&s->p);
    size_t used = pos ? (size_t)(pos - data) : len;
    /* The exchange runs; then the parser resumes on what waited. */
    struct awf_buf held;
    awf_buf_init(&held, OUT_MAX);
    FUZZ_CHECK(awf_buf_append(&held, pending->data, pending->len) == 0);
    FUZZ_CHECK(awf_buf_append(&held, data + used, len - used) == 0);
    awf_buf_reset(pending);
    llhttp_resume(&s->p);
    s->pause_at_head = rng_next(s->rng) & 1;
    char *copy = malloc(held.len ? held.len : 1);
    FUZZ_CHECK(copy != NULL);
    if (held.len)
      memcpy(copy, held.data, held.len);
    size_t n = held.len;
    awf_buf_free(&held);
    rq_feed(s, copy, n, pending);
    free(copy);
    return;
  }
}

static void check_host_header(const struct judged_req *j, const struct field *h) {
  char want[300];
  int n = snprintf(want, sizeof(want), "%s%s%s", j->target.host_is_ipv6 ? "[" : "",
                   j->target.host, j->target.host_is_ipv6 ? "]" : "");
  if (j->target.port != 80)
    n += snprintf(want + n, sizeof(want) - (size_t)n, ":%u", j->target.port);
  FUZZ_CHECK(h->val_len == (size_t)n && memcmp(h->val, want, (size_t)n) == 0);
  /* Independently: the name before the port is the judged host. */
  const uint8_t *v = h->val;
  size_t vl = h->val_len, name_len;
  if (vl && v[0] == '[') {
    const uint8_t *close = memchr(v, ']', vl);
    FUZZ_CHECK(close != NULL);
    FUZZ_CHECK((size_t)(close - v - 1) == j->target.host_len &&
               memcmp(v + 1, j->target.host, j->target.host_len) == 0);
    name_len = (size_t)(close - v) + 1;
  } else {
    const uint8_t *colon = memchr(v, ':', vl);
    name_len = colon ? (size_t)(colon - v) : vl;
    FUZZ_CHECK(name_len == j->target.host_len && memcmp(v, j->target.host, name_len) == 0);
  }
  uint64_t port = 80;
  if (name_len < vl) {
    FUZZ_CHECK(v[name_len] == ':' && parse_u64(v + name_len + 1, vl - name_len - 1, &port));
  }
  FUZZ_CHECK(port == j->target.port);
}

static void run_requests(const uint8_t *in, size_t n, uint8_t flags, struct rng *rng) {
  struct req_sim *s = calloc(1, sizeof(*s));
  FUZZ_CHECK(s != NULL);
  s->rng = rng;
  s->transparent = flags & 2;
  s->pause_at_head = rng_next(rng) & 1;
  awf_head_init(&s->rq, HEAD_MAX);
  awf_buf_init(&s->up, OUT_MAX);
  awf_buf_init(&s->text, OUT_MAX);
  awf_scan_restart(&s->scan);
  llhttp_init(&s->p, HTTP_REQUEST, &rq_settings);
  s->p.data = s;
  struct awf_buf pending;
  awf_buf_init(&pending, OUT_MAX);
  size_t pos = 0;
  while (pos < n && !s->stop) {
    size_t k = (flags & 8) ? n - pos : 1 + rng_next(rng) % 64;
    if (k > n - pos)
      k = n - pos;
    char *piece = (char *)fuzz_dup(in + pos, k); /* exact size: ASan sees over-reads */
    rq_feed(s, piece, k, &pending);
    free(piece);
    pos += k;
  }

  /* The differential check: the upstream bytes, parsed independently. */
  const uint8_t *up = (const uint8_t *)s->up.data;
  if (getenv("FUZZ_DUMP"))
    fwrite(up, 1, s->up.len, stderr);
  size_t at = 0;
  unsigned i = 0;
  static struct msg m;
  for (; i < s->nj; i++) {
    const struct judged_req *j = &s->j[i];
    FUZZ_CHECK(j->up_start == at);
    enum pres r = parse_request(up, s->up.len, at, &m);
    FUZZ_CHECK(r != P_BAD);
    if (!j->complete) { /* cut short: the rest is an incomplete prefix */
      FUZZ_CHECK(i == s->nj - 1 && r == P_MORE);
      at = s->up.len;
      break;
    }
    FUZZ_CHECK(r == P_OK);
    FUZZ_CHECK(m.method_len == strlen(j->method) &&
               memcmp(m.method, j->method, m.method_len) == 0);
    FUZZ_CHECK(m.target_len == j->path_len &&
               memcmp(m.target, s->text.data + j->path_off, j->path_len) == 0);
    check_host_header(j, field_get(&m, "host", NULL));
    FUZZ_CHECK(m.body == j->body);
    at = m.end;
  }
  FUZZ_CHECK(at == s->up.len); /* nothing more than what was judged */

  awf_buf_free(&pending);
  awf_buf_free(&s->up);
  awf_buf_free(&s->text);
  awf_head_release(&s->rq);
  free(s);
}

/* ---- the response path ------------------------------------------------------------ */

struct judged_resp {
  int status;
  uint64_t body;
  bool complete;
};

struct resp_sim {
  llhttp_t p;
  struct awf_head rs;
  uint32_t status_off, status_len;
  bool head_request, client_close;
  struct awf_resp_plan plan;
  struct awf_buf client;
  struct judged_resp j[MAX_MSGS];
  unsigned nj;
  bool done, refused, reusable, started;
};

static struct resp_sim *resp_of(llhttp_t *p) { return p->data; }

static int rs_begin(llhttp_t *p) {
  struct resp_sim *s = resp_of(p);
  awf_head_reset(&s->rs);
  s->status_off = s->status_len = 0;
  s->plan.interim = false;
  return 0;
}

static int rs_status(llhttp_t *p, const char *at, size_t len) {
  struct resp_sim *s = resp_of(p);
  if (s->status_len == 0)
    s->status_off = (uint32_t)s->rs.buf.len;
  s->status_len += (uint32_t)len;
  return awf_head_append(&s->rs, at, len) < 0 ? -1 : 0;
}

static int rs_field(llhttp_t *p, const char *at, size_t len) {
  return awf_head_field(&resp_of(p)->rs, at, len) < 0 ? -1 : 0;
}

static int rs_value(llhttp_t *p, const char *at, size_t len) {
  return awf_head_value(&resp_of(p)->rs, at, len) < 0 ? -1 : 0;
}

static int rs_value_complete(llhttp_t *p) {
  awf_head_value_complete(&resp_of(p)->rs);
  return 0;
}

static int rs_headers_complete(llhttp_t *p) {
  struct resp_sim *s = resp_of(p);
  int skip = awf_resp_head_complete(p, &s->rs, s->head_request, s->client_close, &s->plan);
  if (skip < 0) {
    s->refused = true;
    s->reusable = false;
    return -1;
  }
  if (!s->plan.interim) {
    s->started = true;
    if (!s->plan.reusable)
      s->reusable = false;
  }
  struct awf_buf head;
  awf_buf_init(&head, HEAD_MAX + 1024);
  const char *text = s->status_len ? s->rs.buf.data + s->status_off : "";
  int rc = awf_build_response_head(&head, p->status_code, text, s->status_len, &s->rs,
                                   &s->plan);
  if (rc == 0) {
    FUZZ_CHECK(s->nj < MAX_MSGS);
    s->j[s->nj++] = (struct judged_resp){.status = p->status_code};
    FUZZ_CHECK(awf_buf_append(&s->client, head.data, head.len) == 0);
  }
  awf_buf_free(&head);
  if (rc < 0)
    return -1;
  return skip;
}

static int rs_body(llhttp_t *p, const char *at, size_t len) {
  struct resp_sim *s = resp_of(p);
  FUZZ_CHECK(s->nj > 0 && !s->plan.no_body);
  emit_body(&s->client, s->plan.out == AWF_FRAME_CHUNKED, at, len);
  s->j[s->nj - 1].body += len;
  return 0;
}

static int rs_complete(llhttp_t *p) {
  struct resp_sim *s = resp_of(p);
  FUZZ_CHECK(s->nj > 0);
  s->j[s->nj - 1].complete = true;
  if (s->plan.interim)
    return 0;
  if (s->plan.out == AWF_FRAME_CHUNKED)
    FUZZ_CHECK(awf_buf_append(&s->client, "0\r\n\r\n", 5) == 0);
  s->done = true;
  if (!llhttp_should_keep_alive(p))
    s->reusable = false;
  return HPE_PAUSED;
}

static const llhttp_settings_t rs_settings = {
    .on_message_begin = rs_begin,
    .on_status = rs_status,
    .on_header_field = rs_field,
    .on_header_value = rs_value,
    .on_header_value_complete = rs_value_complete,
    .on_headers_complete = rs_headers_complete,
    .on_body = rs_body,
    .on_message_complete = rs_complete,
};

static void run_response(const uint8_t *in, size_t n, uint8_t flags, struct rng *rng) {
  struct resp_sim *s = calloc(1, sizeof(*s));
  FUZZ_CHECK(s != NULL);
  s->head_request = flags & 2;
  s->client_close = flags & 4;
  s->reusable = true;
  awf_head_init(&s->rs, HEAD_MAX);
  awf_buf_init(&s->client, OUT_MAX);
  llhttp_init(&s->p, HTTP_RESPONSE, &rs_settings);
  s->p.data = s;
  size_t pos = 0;
  bool failed = false;
  /* http_proxy.c's on_up_read: bytes after the response, in its read or a
   * later one, end the upstream; so does EOF (llhttp_finish). */
  while (pos < n && !failed && !s->done) {
    size_t k = (flags & 8) ? n - pos : 1 + rng_next(rng) % 64;
    if (k > n - pos)
      k = n - pos;
    char *piece = (char *)fuzz_dup(in + pos, k);
    llhttp_errno_t err = llhttp_execute(&s->p, piece, k);
    size_t used = k;
    if (err == HPE_PAUSED) {
      const char *at = llhttp_get_error_pos(&s->p);
      if (at)
        used = (size_t)(at - piece);
    } else if (err != HPE_OK) {
      failed = true;
    }
    free(piece);
    pos += used;
  }
  bool eof_completed = false;
  if (!failed && !s->done) {
    s->reusable = false; /* EOF from the origin */
    llhttp_errno_t err = llhttp_finish(&s->p);
    if (err != HPE_OK || !s->done)
      failed = true;
    else
      eof_completed = true;
  }
  if (pos < n)
    s->reusable = false; /* bytes nobody asked for */
  if (failed)
    s->reusable = false;

  /* The bytes for the client, parsed independently. */
  const uint8_t *cb = (const uint8_t *)s->client.data;
  size_t cn = s->client.len, at = 0;
  static struct msg m;
  if (getenv("FUZZ_DUMP"))
    fwrite(cb, 1, cn, stderr);
  for (unsigned i = 0; i < s->nj; i++) {
    const struct judged_resp *j = &s->j[i];
    bool eof_framed;
    enum pres r = parse_response(cb, cn, at, s->head_request, true, &m, &eof_framed);
    FUZZ_CHECK(r != P_BAD);
    if (!j->complete) {
      FUZZ_CHECK(i == s->nj - 1 && failed);
      FUZZ_CHECK(r == P_MORE || eof_framed); /* a cut, never a whole response */
      at = cn;
      break;
    }
    FUZZ_CHECK(r == P_OK && m.status == j->status && m.body == j->body);
    if (eof_framed) /* only when the client connection ends after it */
      FUZZ_CHECK(s->client_close && i == s->nj - 1);
    at = m.end;
  }
  FUZZ_CHECK(at == cn);
  FUZZ_CHECK(!s->refused || !s->started);

  /* Reuse only after a clean end, judged on the origin's bytes independently. */
  if (s->reusable) {
    FUZZ_CHECK(s->done && !failed && !eof_completed && pos == n);
    size_t o = 0;
    for (unsigned i = 0; i < s->nj; i++) {
      bool eof_framed;
      enum pres r = parse_response(in, n, o, s->head_request, false, &m, &eof_framed);
      FUZZ_CHECK(r == P_OK && !eof_framed && m.status == s->j[i].status);
      unsigned conns;
      const struct field *c = field_get(&m, "connection", &conns);
      if (i == s->nj - 1)
        FUZZ_CHECK(!c || !list_has(c, "close"));
      o = m.end;
    }
    FUZZ_CHECK(o == n);
  }

  awf_buf_free(&s->client);
  awf_head_release(&s->rs);
  free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  uint8_t flags = data[0];
  struct rng rng = {((uint64_t)fuzz_hash(data, size) << 32) | 0x9e3779b9u};
  if (flags & 1)
    run_response(data + 1, size - 1, flags, &rng);
  else
    run_requests(data + 1, size - 1, flags, &rng);
  return 0;
}
