/* http_head.c: HTTP/1.1 heads in and out, without I/O (see http_head.h). */
#include "http_head.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the header store ------------------------------------------------------ */

void awf_head_init(struct awf_head *h, size_t max_bytes) {
  memset(h, 0, sizeof(*h));
  awf_buf_init(&h->buf, max_bytes);
}

void awf_head_reset(struct awf_head *h) {
  awf_buf_reset(&h->buf);
  h->n = 0;
  h->in_value = false;
}

void awf_head_release(struct awf_head *h) {
  awf_buf_free(&h->buf);
  free(h->hdrs);
  h->hdrs = NULL;
  h->cap = 0;
  h->n = 0;
  h->in_value = false;
}

int awf_head_append(struct awf_head *h, const char *at, size_t len) {
  return awf_buf_append(&h->buf, at, len);
}

int awf_head_field(struct awf_head *hd, const char *at, size_t len) {
  if (hd->in_value || hd->n == 0 || hd->hdrs[hd->n - 1].val_off != 0) {
    if (hd->n == hd->cap) {
      if (hd->cap == AWF_MAX_HEADERS)
        return -E2BIG;
      unsigned cap = hd->cap ? hd->cap * 2 : 16;
      struct awf_hdr *grown = realloc(hd->hdrs, cap * sizeof(*grown));
      if (!grown)
        return -ENOMEM;
      hd->hdrs = grown;
      hd->cap = cap;
    }
    struct awf_hdr *x = &hd->hdrs[hd->n++];
    memset(x, 0, sizeof(*x));
    x->name_off = (uint32_t)hd->buf.len;
    hd->in_value = false;
  }
  hd->hdrs[hd->n - 1].name_len += (uint32_t)len;
  return awf_head_append(hd, at, len);
}

int awf_head_value(struct awf_head *hd, const char *at, size_t len) {
  struct awf_hdr *x = &hd->hdrs[hd->n - 1];
  if (!hd->in_value) {
    x->val_off = (uint32_t)hd->buf.len;
    x->val_len = 0;
    hd->in_value = true;
  }
  x->val_len += (uint32_t)len;
  return awf_head_append(hd, at, len);
}

struct awf_hdr *awf_head_value_complete(struct awf_head *hd) {
  struct awf_hdr *x = &hd->hdrs[hd->n - 1];
  if (!hd->in_value) { /* empty value: no on_header_value call came */
    x->val_off = (uint32_t)hd->buf.len;
    x->val_len = 0;
    hd->in_value = true;
  }
  return x;
}

/* ---- header rules ---------------------------------------------------------- */

bool awf_name_is(const char *name, size_t len, const char *want) {
  return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

bool awf_value_is_token(const char *v, size_t len, const char *token) {
  while (len && (*v == ' ' || *v == '\t'))
    v++, len--;
  while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
    len--;
  return awf_name_is(v, len, token);
}

bool awf_is_hop_header(const char *n, size_t len) {
  static const char *const hop[] = {"connection",
                                    "keep-alive",
                                    "proxy-connection",
                                    "proxy-authorization",
                                    "proxy-authenticate",
                                    "te",
                                    "trailer",
                                    "transfer-encoding",
                                    "upgrade"};
  for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
    if (awf_name_is(n, len, hop[i]))
      return true;
  return false;
}

/* Calls fn on each token of each Connection header; stops at true. */
static bool any_connection_token(const struct awf_head *h,
                                 bool (*fn)(const char *tok, size_t len, const void *arg),
                                 const void *arg) {
  for (unsigned i = 0; i < h->n; i++) {
    const struct awf_hdr *x = &h->hdrs[i];
    if (!awf_name_is(awf_hdr_name(h, x), x->name_len, "connection"))
      continue;
    const char *v = awf_hdr_val(h, x), *end = v + x->val_len;
    while (v < end) {
      while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
        v++;
      const char *tok = v;
      while (v < end && *v != ',' && *v != ' ' && *v != '\t')
        v++;
      if (v > tok && fn(tok, (size_t)(v - tok), arg))
        return true;
    }
  }
  return false;
}

struct name_ref {
  const char *n;
  size_t len;
};

static bool token_is_name(const char *tok, size_t len, const void *arg) {
  const struct name_ref *r = arg;
  return len == r->len && strncasecmp(tok, r->n, len) == 0;
}

bool awf_head_named_in_connection(const struct awf_head *h, const char *n, size_t len) {
  struct name_ref r = {n, len};
  return any_connection_token(h, token_is_name, &r);
}

/* Headers a Connection header may not nominate. llhttp frames the body by
 * Content-Length or Transfer-Encoding and the proxy judges and rewrites Host:
 * dropping one of them as hop-by-hop while acting on it is how a body becomes
 * a second, unjudged request at the origin (request smuggling). Nominating
 * a header that is hop-by-hop anyway (Keep-Alive, TE, Upgrade, ...) removes
 * nothing more, so it stays allowed ("Connection: keep-alive, Upgrade" is
 * common). */
static bool token_is_framing(const char *tok, size_t len, const void *arg) {
  (void)arg;
  return awf_name_is(tok, len, "content-length") ||
         awf_name_is(tok, len, "transfer-encoding") || awf_name_is(tok, len, "host");
}

bool awf_head_connection_nominates_framing(const struct awf_head *h) {
  return any_connection_token(h, token_is_framing, NULL);
}

static bool forwardable(const struct awf_head *h, const struct awf_hdr *x) {
  const char *n = awf_hdr_name(h, x);
  /* Framing is regenerated from what llhttp parsed, never copied. */
  if (awf_name_is(n, x->name_len, "content-length"))
    return false;
  return !awf_is_hop_header(n, x->name_len) && !awf_head_named_in_connection(h, n, x->name_len);
}

bool awf_head_well_formed(const struct awf_head *h) {
  for (unsigned i = 0; i < h->n; i++) {
    const struct awf_hdr *x = &h->hdrs[i];
    const char *v = awf_hdr_val(h, x);
    if (x->name_len == 0 || memchr(v, '\r', x->val_len) || memchr(v, '\n', x->val_len) ||
        memchr(v, '\0', x->val_len))
      return false;
  }
  return true;
}

int awf_req_check_header(const struct awf_head *h, const struct awf_hdr *x,
                         unsigned *host_headers) {
  const char *v = awf_hdr_val(h, x), *n = awf_hdr_name(h, x);
  /* llhttp passes an obs-folded value through with its line break: refuse. */
  if (memchr(v, '\r', x->val_len) || memchr(v, '\n', x->val_len))
    return -1;
  if (awf_name_is(n, x->name_len, "host") && ++*host_headers > 1)
    return -1;
  /* The only transfer coding a proxy can frame safely is plain "chunked". */
  if (awf_name_is(n, x->name_len, "transfer-encoding") &&
      !awf_value_is_token(v, x->val_len, "chunked"))
    return -1;
  return 0;
}

/* ---- raw scan of request heads -------------------------------------------- */

void awf_scan_restart(struct awf_scan *s) {
  s->active = true;
  s->cr = s->blank = s->line_start = s->seen = false;
}

int awf_scan_head(struct awf_scan *s, const char *d, size_t n) {
  for (size_t i = 0; i < n && s->active; i++) {
    unsigned char ch = (unsigned char)d[i];
    if (s->cr) {
      if (ch != '\n')
        return -1; /* bare CR */
      s->cr = false;
      if (!s->seen)
        continue; /* a blank line before the request line: llhttp skips it */
      if (s->blank)
        s->active = false; /* end of the head: the body is not ours to scan */
      s->line_start = true;
      continue;
    }
    if (ch == '\r') {
      s->cr = true;
      s->blank = s->line_start;
      s->line_start = false;
      continue;
    }
    if (ch == '\n' || ch == '\0')
      return -1; /* bare LF, NUL */
    if (s->line_start && (ch == ' ' || ch == '\t' || ch == ':'))
      return -1; /* obs-fold, or a header line with an empty name */
    s->line_start = false;
    s->seen = true;
  }
  return 0;
}

/* ---- requests ---------------------------------------------------------------- */

static const struct awf_hdr *find_header(const struct awf_head *h, const char *name) {
  for (unsigned i = 0; i < h->n; i++)
    if (awf_name_is(awf_hdr_name(h, &h->hdrs[i]), h->hdrs[i].name_len, name))
      return &h->hdrs[i];
  return NULL;
}

enum awf_target_status awf_transparent_target(const struct awf_head *h, int method,
                                              unsigned host_headers, const char *url,
                                              size_t len, uint16_t port,
                                              struct awf_http_target *t) {
  if (method == HTTP_CONNECT || len == 0 || url[0] != '/' || host_headers != 1)
    return AWF_TARGET_BAD_SYNTAX;
  const struct awf_hdr *host = find_header(h, "host");
  if (!host)
    return AWF_TARGET_BAD_SYNTAX;
  const char *v = awf_hdr_val(h, host);
  size_t vlen = host->val_len;
  while (vlen && (*v == ' ' || *v == '\t'))
    v++, vlen--;
  while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
    vlen--;
  /* "name", "name:port", "[v6]", "[v6]:port": parse as an authority. */
  char auth[300];
  const char *close = vlen && v[0] == '[' ? memchr(v, ']', vlen) : NULL;
  const char *colon = close ? (close + 1 < v + vlen && close[1] == ':' ? close + 1 : NULL)
                            : memchr(v, ':', vlen);
  int n = colon ? snprintf(auth, sizeof(auth), "%.*s", (int)vlen, v)
                : snprintf(auth, sizeof(auth), "%.*s:%u", (int)vlen, v, port);
  if (n < 0 || (size_t)n >= sizeof(auth))
    return AWF_TARGET_BAD_HOST;
  enum awf_target_status ts = awf_target_parse_authority(auth, (size_t)n, t);
  if (ts != AWF_TARGET_OK)
    return ts;
  t->port = port; /* dial where the client dialled, whatever Host claims */
  t->path = url;
  t->path_len = len;
  return AWF_TARGET_OK;
}

int awf_req_head_complete(const llhttp_t *p, const struct awf_head *h, unsigned host_headers,
                          const char *url, size_t url_len, bool transparent, uint16_t orig_port,
                          struct awf_req_facts *f, bool *origin_form) {
  enum awf_target_status ts;
  memset(f, 0, sizeof(*f));
  f->method = p->method;
  *origin_form = false;
  if (p->http_major != 1 || (p->http_minor == 1 && host_headers == 0))
    return 400; /* no HTTP/0.9; Host is required in 1.1 */
  if (transparent)
    ts = awf_transparent_target(h, f->method, host_headers, url, url_len, orig_port,
                                &f->target);
  else if (f->method == HTTP_CONNECT)
    ts = awf_target_parse_authority(url, url_len, &f->target);
  else
    ts = awf_target_parse_absolute(url, url_len, &f->target);
  /* "GET /path" to the proxy port: a client that took the proxy for the
   * web server, or was not told to use it as a proxy. */
  if (ts != AWF_TARGET_OK && !transparent && f->method != HTTP_CONNECT && url_len > 0 &&
      url[0] == '/')
    *origin_form = true;
  if (ts != AWF_TARGET_OK) {
    memset(&f->target, 0, sizeof(f->target));
    return 400;
  }
  if (!awf_head_well_formed(h) || awf_head_connection_nominates_framing(h))
    return 400;
  /* A Transfer-Encoding that llhttp did not take as chunked-last: llhttp
   * fails it only after this callback, once the head would be upstream. */
  if ((p->flags & F_TRANSFER_ENCODING) && !(p->flags & F_CHUNKED))
    return 400;
  /* llhttp takes any 64-bit length; servers read it into a signed 64-bit
   * integer (Go, off_t) and would refuse or misread a larger one. */
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > AWF_MAX_CONTENT_LENGTH)
    return 400;
  if (p->flags & F_CHUNKED) {
    f->framing = AWF_FRAME_CHUNKED;
  } else if (p->flags & F_CONTENT_LENGTH) {
    f->framing = AWF_FRAME_LENGTH;
    f->length = p->content_length; /* at this point, the whole declared length */
  }
  f->close = (p->http_major == 1 && p->http_minor == 0) || !llhttp_should_keep_alive(p);
  return 0;
}

/* "Name: value\r\n", by copies: a printf per header line cost more than
 * parsing the whole message. */
static int append_header(struct awf_buf *o, const char *name, size_t nlen, const char *val,
                         size_t vlen) {
  int rc = awf_buf_append(o, name, nlen);
  if (rc == 0)
    rc = awf_buf_append(o, ": ", 2);
  if (rc == 0)
    rc = awf_buf_append(o, val, vlen);
  if (rc == 0)
    rc = awf_buf_append(o, "\r\n", 2);
  return rc;
}

static int append_forwardable(struct awf_buf *o, const struct awf_head *h, bool skip_host) {
  int rc = 0;
  for (unsigned i = 0; rc == 0 && i < h->n; i++) {
    const struct awf_hdr *x = &h->hdrs[i];
    if ((skip_host && awf_name_is(awf_hdr_name(h, x), x->name_len, "host")) ||
        !forwardable(h, x))
      continue;
    rc = append_header(o, awf_hdr_name(h, x), x->name_len, awf_hdr_val(h, x), x->val_len);
  }
  return rc;
}

static int append_framing(struct awf_buf *o, enum awf_framing fr, uint64_t length) {
  if (fr == AWF_FRAME_LENGTH)
    return awf_buf_printf(o, "Content-Length: %llu\r\n", (unsigned long long)length);
  if (fr == AWF_FRAME_CHUNKED)
    return awf_buf_printf(o, "Transfer-Encoding: chunked\r\n");
  return 0;
}

int awf_build_request_head(struct awf_buf *o, const struct awf_req_facts *f,
                           const struct awf_head *h) {
  const struct awf_http_target *t = &f->target;
  awf_buf_reset(o);
  const char *path = t->path_len ? t->path : "/";
  size_t plen = t->path_len ? t->path_len : 1;
  int rc = awf_buf_printf(o, "%s %s%.*s HTTP/1.1\r\nHost: %s%s%s",
                          llhttp_method_name((llhttp_method_t)f->method),
                          path[0] == '?' ? "/" : "", (int)plen, path,
                          t->host_is_ipv6 ? "[" : "", t->host, t->host_is_ipv6 ? "]" : "");
  if (rc == 0 && t->port != 80)
    rc = awf_buf_printf(o, ":%u", t->port);
  if (rc == 0)
    rc = awf_buf_append(o, "\r\n", 2);
  if (rc == 0)
    rc = append_forwardable(o, h, true);
  if (rc == 0)
    rc = append_framing(o, f->framing, f->length);
  if (rc == 0)
    rc = awf_buf_append(o, "\r\n", 2);
  return rc;
}

/* ---- responses -------------------------------------------------------------- */

int awf_resp_head_complete(const llhttp_t *p, const struct awf_head *h, bool head_request,
                           bool client_close, struct awf_resp_plan *plan) {
  int status = p->status_code;
  memset(plan, 0, sizeof(*plan));
  if (status == 101)
    return -1; /* Upgrade was not forwarded, so a switch is a protocol error */
  if (status < 100 || status > 599)
    return -1; /* llhttp takes "HTTP/1.1 2 x": not a status a client can read */
  if (!awf_head_well_formed(h) || awf_head_connection_nominates_framing(h))
    return -1;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > AWF_MAX_CONTENT_LENGTH)
    return -1; /* as for requests: no client could read it the same way */
  plan->interim = status >= 100 && status < 200;
  plan->no_body = plan->interim || head_request || status == 204 || status == 304;
  plan->has_length = (p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED);
  plan->length = plan->has_length ? p->content_length : 0;
  if (plan->no_body)
    plan->in = AWF_FRAME_NONE;
  else if (p->flags & F_CHUNKED)
    plan->in = AWF_FRAME_CHUNKED;
  else if (plan->has_length)
    plan->in = AWF_FRAME_LENGTH;
  else
    plan->in = AWF_FRAME_CLOSE;
  /* Chunked or read-until-close: chunk it for HTTP/1.1 clients so their
   * connection survives; HTTP/1.0 clients get raw bytes and a close. */
  if (plan->in == AWF_FRAME_CHUNKED || plan->in == AWF_FRAME_CLOSE)
    plan->out = client_close ? AWF_FRAME_CLOSE : AWF_FRAME_CHUNKED;
  else
    plan->out = plan->in;
  plan->close = client_close && !plan->interim;
  plan->reusable = plan->in != AWF_FRAME_CLOSE;
  /* llhttp reads a body after a 1xx that declares one: skipped, it would
   * reach the client unframed, ahead of the final response. */
  return plan->no_body ? 1 : 0;
}

int awf_build_response_head(struct awf_buf *o, int status, const char *reason,
                            size_t reason_len, const struct awf_head *h,
                            const struct awf_resp_plan *plan) {
  awf_buf_reset(o);
  /* llhttp lets control bytes through in the reason phrase; a client must
   * not see them (a bare CR could end the line early): the phrase is
   * informational, so it is dropped. */
  for (size_t i = 0; i < reason_len; i++) {
    unsigned char ch = (unsigned char)reason[i];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
      reason_len = 0;
      break;
    }
  }
  int rc = awf_buf_printf(o, "HTTP/1.1 %d %.*s\r\n", status, (int)reason_len, reason);
  if (rc == 0)
    rc = append_forwardable(o, h, false);
  /* A bodiless answer to HEAD, or a 304, keeps the length it declares; a 1xx
   * or 204 has none. */
  if (rc == 0 && plan->out == AWF_FRAME_NONE && plan->has_length && !plan->interim &&
      status != 204)
    rc = append_framing(o, AWF_FRAME_LENGTH, plan->length);
  if (rc == 0 && !plan->interim)
    rc = append_framing(o, plan->out, plan->length);
  if (rc == 0 && plan->close)
    rc = awf_buf_printf(o, "Connection: close\r\n");
  if (rc == 0)
    rc = awf_buf_append(o, "\r\n", 2);
  return rc;
}

int awf_chunk_size_line(char *buf, size_t cap, size_t len) {
  return snprintf(buf, cap, "%zx\r\n", len);
}
