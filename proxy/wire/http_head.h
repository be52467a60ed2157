/* http_head.h: the HTTP/1.1 message heads the proxy reads and writes, without
 * I/O (no libuv): the header store filled from llhttp's callbacks, the checks
 * a request or response head must pass, the raw scan of request head bytes,
 * and the heads sent on (upstream request, response to the client), whose
 * framing is always regenerated from what llhttp parsed, never copied.
 *
 * http_proxy.c drives llhttp with these; tests/fuzz/fuzz_http_forward.c
 * drives them the same way and checks that what leaves is exactly what was
 * judged. */
#ifndef AWF_HTTP_HEAD_H
#define AWF_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include "http_target.h"
#include "buf.h"

#define AWF_MAX_HEADERS 128

struct awf_hdr {
  uint32_t name_off, name_len, val_off, val_len;
};

/* A header block under construction, kept as offsets into one capped buffer
 * (the buffer moves when it grows). The request's URL or the response's
 * status text is stored in the same buffer, before the headers. */
struct awf_head {
  struct awf_buf buf;
  struct awf_hdr *hdrs; /* grown on demand, freed by awf_head_release */
  unsigned cap;
  unsigned n;
  bool in_value;
};

void awf_head_init(struct awf_head *h, size_t max_bytes);
void awf_head_reset(struct awf_head *h);
/* Give the memory back: an idle keep-alive connection holds no header space. */
void awf_head_release(struct awf_head *h);
int awf_head_append(struct awf_head *h, const char *at, size_t len); /* 0, -ENOMEM, -E2BIG */
/* llhttp's on_header_field / on_header_value pieces. 0, -ENOMEM, -E2BIG (too
 * many headers or bytes). */
int awf_head_field(struct awf_head *h, const char *at, size_t len);
int awf_head_value(struct awf_head *h, const char *at, size_t len);
/* on_header_value_complete: an empty value gets its (empty) place. Returns
 * the header just completed. */
struct awf_hdr *awf_head_value_complete(struct awf_head *h);

static inline const char *awf_hdr_name(const struct awf_head *h, const struct awf_hdr *x) {
  return h->buf.data + x->name_off;
}
static inline const char *awf_hdr_val(const struct awf_head *h, const struct awf_hdr *x) {
  return h->buf.data + x->val_off;
}

bool awf_name_is(const char *name, size_t len, const char *want);
/* A header value equal to one token, ignoring case and surrounding blanks. */
bool awf_value_is_token(const char *v, size_t len, const char *token);
/* Hop-by-hop headers (RFC 9110 7.6.1) and the proxy's own: never forwarded. */
bool awf_is_hop_header(const char *n, size_t len);
/* Is header n named as a token in a Connection header of this block? */
bool awf_head_named_in_connection(const struct awf_head *h, const char *n, size_t len);
/* Does a Connection header nominate a header whose removal would change how
 * the message is framed or routed (Content-Length, Transfer-Encoding, Host)?
 * Such a message is refused, not forwarded without it. */
bool awf_head_connection_nominates_framing(const struct awf_head *h);

/* Every header has a name, and no value holds CR, LF or NUL (llhttp passes
 * an empty name, and an obs-folded value with its line break, in a
 * response). A head that is not is refused. */
bool awf_head_well_formed(const struct awf_head *h);

/* A request header just completed (on_header_value_complete): 0, or -1 when
 * the request is malformed (400): an obs-folded value, a second Host, a
 * Transfer-Encoding other than plain "chunked". *host_headers counts Host. */
int awf_req_check_header(const struct awf_head *h, const struct awf_hdr *x,
                         unsigned *host_headers);

/* The raw scan of request head bytes, for what llhttp lets through: bare CR
 * or LF, NUL, obs-fold, empty header names. Active from a message's first
 * byte to the blank line that ends its head. */
struct awf_scan {
  bool active, cr, blank, line_start, seen;
};
void awf_scan_restart(struct awf_scan *s);
/* 0, or -1 at a byte no valid request head holds. */
int awf_scan_head(struct awf_scan *s, const char *d, size_t n);

/* How a body is delimited on the wire. */
enum awf_framing {
  AWF_FRAME_NONE,    /* no body */
  AWF_FRAME_LENGTH,  /* Content-Length: length */
  AWF_FRAME_CHUNKED, /* Transfer-Encoding: chunked */
  AWF_FRAME_CLOSE,   /* response only: the body ends when the connection does */
};

/* The largest Content-Length passed on, either way: INT64_MAX, what a signed
 * 64-bit reader (most servers and clients) can hold. Larger is refused. */
#define AWF_MAX_CONTENT_LENGTH ((uint64_t)INT64_MAX)

/* What a request head said, once it passed every check. */
struct awf_req_facts {
  int method;                    /* llhttp_method_t */
  struct awf_http_target target; /* path points into the head's buffer */
  enum awf_framing framing;      /* NONE, LENGTH or CHUNKED */
  uint64_t length;               /* for LENGTH */
  bool close;                    /* HTTP/1.0 or Connection: close: last request */
};

/* on_headers_complete of a request: check the head and take the facts.
 * transparent: origin-form requests, the name from Host, the port orig_port.
 * Returns 0, or an HTTP status (400); *origin_form then tells whether the
 * head was refused for being a web server's request ("GET /path") sent to
 * the proxy port, which the caller names differently from other bad heads. */
int awf_req_head_complete(const llhttp_t *p, const struct awf_head *h, unsigned host_headers,
                          const char *url, size_t url_len, bool transparent, uint16_t orig_port,
                          struct awf_req_facts *f, bool *origin_form);

/* A redirected request is in origin form ("GET /path"): the name is the Host
 * header's, the port the one the client dialled. */
enum awf_target_status awf_transparent_target(const struct awf_head *h, int method,
                                              unsigned host_headers, const char *url,
                                              size_t len, uint16_t port,
                                              struct awf_http_target *t);

/* The head sent upstream: origin-form target, Host from the judged target,
 * no hop-by-hop or proxy headers, no client Content-Length or
 * Transfer-Encoding: the framing is f's. */
int awf_build_request_head(struct awf_buf *o, const struct awf_req_facts *f,
                           const struct awf_head *h);

/* What a response head means for the client and for the upstream. */
struct awf_resp_plan {
  bool interim;         /* 1xx: the final response follows */
  bool no_body;         /* 1xx, 204, 304, or the answer to HEAD */
  enum awf_framing in;  /* how the origin frames the body */
  enum awf_framing out; /* how the client gets it */
  uint64_t length;      /* Content-Length, for LENGTH (also sent with a HEAD/304) */
  bool has_length;      /* the origin sent a Content-Length */
  bool close;           /* the client connection ends after it (Connection: close) */
  bool reusable;        /* the upstream may carry another request afterwards */
};

/* on_headers_complete of a response. head_request: the request was HEAD;
 * client_close: the client connection ends after this response. Returns 0
 * (a body follows), 1 (no body: what on_headers_complete returns to llhttp
 * to skip one), or -1 when the response must not be forwarded (502): a 101
 * (Upgrade is never forwarded), a status outside 100..599, a head that is
 * not awf_head_well_formed, or a Connection header nominating a framing
 * header. */
int awf_resp_head_complete(const llhttp_t *p, const struct awf_head *h, bool head_request,
                           bool client_close, struct awf_resp_plan *plan);

/* The response head for the client: status line, forwardable headers, the
 * framing of plan->out. status text: reason[0..reason_len). */
int awf_build_response_head(struct awf_buf *o, int status, const char *reason,
                            size_t reason_len, const struct awf_head *h,
                            const struct awf_resp_plan *plan);

/* "<hex len>\r\n" into buf (at least 24 bytes); returns its length. */
int awf_chunk_size_line(char *buf, size_t cap, size_t len);

#endif
