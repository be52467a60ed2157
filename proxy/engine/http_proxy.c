/* http_proxy.c: the explicit proxy's HTTP side. A client connection carries
 * requests in absolute form ("GET http://host/path HTTP/1.1") or CONNECT.
 *
 * Per request:  head (llhttp) -> decide -> dial (or reuse the upstream)
 *               -> forward head, stream the body -> parse the response
 *               (llhttp), forward it -> log -> next request (keep-alive).
 * The request parser pauses at the end of each message, so pipelined requests
 * wait, in order, until the previous response is complete. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "http_proxy.h"

#include "conn.h"
#include "host_access.h"
#include "http_head.h"
#include "http_target.h"
#include "intercept.h"
#include "tunnel.h"

#define MAX_HEAD_BYTES (64 * 1024)      /* request head: beyond it, 431 */
#define MAX_RESP_HEAD_BYTES (64 * 1024) /* response head: beyond it, 502 */

/* How far the request under way is. */
enum http_req_stage {
  RQ_IDLE, /* between requests: none under way */
  RQ_HEAD, /* a request began: its head is being read */
  RQ_BODY, /* its head is complete: the body (if any) is being forwarded */
  RQ_DONE, /* the request is complete */
};

/* How far its response is (it may start before the request is done). */
enum http_resp_stage {
  RS_NONE,    /* no final response head yet */
  RS_STARTED, /* a final head was read: too late for an error status */
  RS_DONE,    /* the response is complete */
};

struct http_state {
  llhttp_t req;
  llhttp_t resp;
  struct awf_head rq; /* request: url, then headers */
  struct awf_head rs; /* response: status text, then headers */
  uint32_t url_off, url_len, status_off, status_len;
  struct awf_buf pending; /* client bytes not yet parsed (parser paused) */
  bool paused;            /* request parser paused: its bytes wait in pending */
  struct awf_scan scan;   /* raw scan of each request head (http_head.h) */

  /* the request under way */
  enum http_req_stage rq_stage;
  enum http_resp_stage rs_stage;
  bool logged;
  bool head_request, resp_close, resp_refused;
  enum awf_framing req_framing; /* how the request body goes upstream */
  uint64_t req_length;          /* its Content-Length, for AWF_FRAME_LENGTH */
  struct awf_resp_plan plan;    /* the response under way (http_head.h) */
  bool would_deny;
  enum awf_reason audit_reason;
  const char *dlp;          /* --dlp: the kind of a match in this request (never its text) */
  awf_dlp_stream *dlp_body; /* --dlp: the request body's scan, made at its first bytes */
  uint64_t body_seen;       /* request body bytes read so far */
  bool host_access;         /* admitted as one of the host's services */
  uint64_t req_no;          /* this request's number on the connection (log `req`) */
  unsigned host_headers;
  int error_status;
  enum awf_reason error_reason;
  struct awf_http_target target;
  int method;
  uint64_t started_ms;
  int64_t bytes_up, bytes_down;
  int status;
  struct awf_buf out; /* upstream request head, until it is sent */
  /* Response head, held until the first body bytes (or the end of the read
   * that completed it) so both leave in one write and one segment. */
  struct awf_buf resp_head;
  bool client_gone; /* a write to the client failed */

  /* the upstream connection, reused for the same host:port */
  char up_host[256];
  uint16_t up_port;
  bool up_reusable;
  bool up_reused;                     /* this request went out on a used connection */
  bool req_body;                      /* the request has a body (it cannot be sent twice) */
  bool retrying;                      /* re-dialling after a reused connection died */
  char up_addr[AWF_ADDRSTRLEN];       /* "ip:port" of the upstream connection */
  char upstream_addr[AWF_ADDRSTRLEN]; /* for the log: where this request went */
  char resolved[AWF_ADDRSTRLEN];      /* private_destination: the address refused */

  /* Inside a TLS tunnel interception opened (tunnel.h): requests are
   * origin-form, for the tunnel's host only, judged as https; the upstream
   * is a verified TLS connection to that host, never pooled. */
  bool bumped;
  struct tunnel_handoff bump;
  /* Base-URL mode (--secret-endpoint): like a bumped connection to the
   * endpoint's host, but the client speaks plain HTTP to awf, any Host it
   * sends is replaced, the path is prefixed with the base, and the secret
   * goes in its header. No tunnel record. */
  const struct awf_secret_endpoint *endpoint;
  struct awf_buf ep_path;     /* base + the client's path */
  int64_t bump_up, bump_down; /* the requests' bytes, for the tunnel's record */
  bool up_fresh;              /* the upstream has carried no request yet */
  struct awf_buf full_url;    /* the request's https URL, for the log */
  /* A request answered by awf itself (a denial inside intercepted TLS):
   * its body is read and dropped, then the answer goes and the connection
   * stays usable. */
  int local_status;
  enum awf_reason local_reason;
  bool answered_locally;
  unsigned retry_after; /* a 429 (rate_limited): its Retry-After, seconds */
  /* The client's write queue is full of such answers: its next request waits
   * until the queue drains (a client that sends denied requests and reads
   * nothing would otherwise grow it without bound). */
  bool drain_wait;

  /* --secret (secrets.h): what the request's head did with placeholders,
   * and the bodies rewritten as they stream (allocated when first needed;
   * `on` says whether this request or response uses them). */
  struct awf_secret_use sec;
  struct awf_secret_stream *up_stream, *down_stream;
  bool up_stream_on, down_stream_on;
  char *scratch; /* a stream's output */
  size_t scratch_cap;
};

static const llhttp_settings_t req_settings;
static const llhttp_settings_t resp_settings;

static struct conn *conn_of(llhttp_t *p) { return p->data; }
static struct http_state *hs(const struct conn *c) { return c->mode; }

static const struct conn_mode_ops http_ops;

/* Still this mode's: not closing, not handed over to the tunnel mode. A
 * connection draining after an answer is still HTTP's. */
static bool still_http(const struct conn *c) {
  return c->ops == &http_ops && c->state != CONN_CLOSING;
}

/* A request awaiting its response (the client is still read meanwhile). */
static bool awaiting_response(const struct http_state *h) {
  return h->rq_stage == RQ_DONE && h->rs_stage != RS_DONE;
}

/* ---- access log --------------------------------------------------------- */

/* The request's record as far as it is known. */
static void request_record(struct conn *c, struct awf_log_record *r, enum awf_decision decision,
                           enum awf_reason reason) {
  struct http_state *h = hs(c);
  awf_log_record_init(r);
  r->event = h->bumped ? "https" : h->method == HTTP_CONNECT ? "connect" : "http";
  r->req = h->req_no;
  r->method = h->method >= 0 ? llhttp_method_name((llhttp_method_t)h->method) : NULL;
  if (h->target.host_len) {
    r->host = h->target.host;
    r->host_len = h->target.host_len;
    r->port = h->target.port;
  }
  if (h->bumped && h->full_url.len) {
    r->url = h->full_url.data;
    r->url_len = h->full_url.len;
  } else if (h->method != HTTP_CONNECT && h->url_len && !h->bumped) {
    r->url = h->rq.buf.data + h->url_off;
    r->url_len = h->url_len;
  }
  r->original_dst = c->transparent ? c->orig_dst_addr : NULL;
  r->decision = decision;
  r->reason = reason;
  r->would_deny = h->would_deny;
  if (h->would_deny && h->audit_reason)
    r->reason = h->audit_reason;
  if (h->host_access && decision == AWF_ALLOW)
    r->reason = AWF_REASON_HOST_ACCESS;
  r->dlp = h->dlp;
  r->secrets = c->proxy->cfg.secrets;
  r->secrets_injected = h->sec.injected | (h->up_stream_on ? h->up_stream->hits : 0);
  r->secrets_misdirected = h->sec.misdirected;
}

/* The decision to let the request through, logged when it is made: before
 * any byte of it goes upstream, so a record names the host even if awf
 * dies before the request ends. */
static void log_request_open(struct conn *c) {
  struct awf_log_record r;
  request_record(c, &r, AWF_ALLOW, AWF_REASON_ALLOWED);
  conn_log_open(c, &r);
}

static void log_request(struct conn *c, enum awf_decision decision, enum awf_reason reason) {
  struct http_state *h = hs(c);
  if (h->logged || h->rq_stage == RQ_IDLE)
    return;
  h->logged = true;
  struct awf_log_record r;
  request_record(c, &r, decision, reason);
  r.status = h->status ? h->status : -1;
  r.upstream = h->upstream_addr[0] ? h->upstream_addr : NULL;
  r.resolved = h->resolved[0] ? h->resolved : NULL;
  r.bytes_up = h->bytes_up;
  r.bytes_down = h->bytes_down;
  h->bump_up += h->bytes_up;
  h->bump_down += h->bytes_down;
  uint64_t now = conn_now_ms(c);
  r.ts_ms = now;
  r.duration_ms = h->started_ms ? (int64_t)(now - h->started_ms) : 0;
  conn_log(c, &r);
}

/* ---- flow control ------------------------------------------------------
 * Backpressure is the transports' and the core's (transport.h): a side whose
 * write queue is full holds the side that feeds it. Here only what HTTP
 * itself wants read. */

static void update_reading(struct conn *c) {
  struct http_state *h = hs(c);
  /* While a response is awaited the client stays read (a pipelined request
   * is stashed, and then reading stops): stopping and restarting the read for
   * every request costs two epoll_ctl calls. */
  bool awaiting = awaiting_response(h) && h->pending.len == 0;
  conn_want_read(c, c->client, !h->paused || awaiting);
  if (c->up)
    conn_want_read(c, c->up, true);
}

static int write_client(struct conn *c, const uv_buf_t *bufs, unsigned n) {
  struct http_state *h = hs(c);
  uv_buf_t all[4];
  unsigned k = 0;
  if (n > 3)
    return UV_EINVAL;       /* callers pass at most a chunk's three pieces */
  if (h->resp_head.len > 0) /* the held response head goes first */
    all[k++] = uv_buf_init(h->resp_head.data, (unsigned)h->resp_head.len);
  for (unsigned i = 0; i < n; i++)
    all[k++] = bufs[i];
  size_t n_bytes = 0;
  for (unsigned i = 0; i < k; i++)
    n_bytes += all[i].len;
  h->bytes_down += (int64_t)n_bytes;
  if (!h->host_access)
    conn_rate_charge(c, h->target.host, n_bytes);
  int rc = awf_transport_write(c->client, all, k);
  awf_buf_reset(&h->resp_head); /* a write that did not finish kept a copy */
  if (rc < 0)
    h->client_gone = true;
  return rc;
}

static int write_up(struct conn *c, const uv_buf_t *bufs, unsigned n) {
  size_t n_bytes = 0;
  for (unsigned i = 0; i < n; i++)
    n_bytes += bufs[i].len;
  hs(c)->bytes_up += (int64_t)n_bytes;
  if (!hs(c)->host_access)
    conn_rate_charge(c, hs(c)->target.host, n_bytes);
  return awf_transport_write(c->up, bufs, n);
}

/* Body bytes, framed as chunks when the message is re-chunked. */
static int write_body(struct conn *c, bool to_client, bool chunked, const char *at,
                      size_t len) {
  char size_line[24];
  uv_buf_t bufs[3];
  unsigned n = 0;
  if (chunked) {
    int k = awf_chunk_size_line(size_line, sizeof(size_line), len);
    bufs[n++] = uv_buf_init(size_line, (unsigned)k);
  }
  bufs[n++] = uv_buf_init((char *)at, (unsigned)len);
  if (chunked)
    bufs[n++] = uv_buf_init("\r\n", 2);
  return to_client ? write_client(c, bufs, n) : write_up(c, bufs, n);
}

/* ---- secrets in bodies ---------------------------------------------------- */

/* The host the request was dialled to: the tunnel's for an intercepted
 * request, else the judged target's. */
static const char *dialled_host(const struct http_state *h) {
  return h->bumped ? h->bump.host : h->target.host;
}

/* Start rewriting a body (request: placeholders to values; response: values
 * to placeholders) for the secrets in mask. -ENOMEM. */
static int stream_start(struct http_state *h, bool up, uint64_t mask) {
  struct awf_secret_stream **st = up ? &h->up_stream : &h->down_stream;
  if (!*st && !(*st = malloc(sizeof(**st))))
    return -ENOMEM;
  awf_secret_stream_init(*st, NULL, up, mask, up ? UINT64_MAX : AWF_SECRET_SCRUB_LIMIT);
  return 0;
}

static char *scratch_for(struct http_state *h, size_t len) {
  size_t need = AWF_SECRET_STREAM_OUT(len);
  if (need > h->scratch_cap) {
    char *p = realloc(h->scratch, need);
    if (!p)
      return NULL;
    h->scratch = p;
    h->scratch_cap = need;
  }
  return h->scratch;
}

/* Body bytes through the side's secret stream, when it is on; nothing is
 * written for a piece the stream holds back whole (an empty chunk would
 * end a chunked body). end: the body is over, flush what is held. */
static int write_body_secrets(struct conn *c, bool to_client, bool chunked, const char *at,
                              size_t len, bool end) {
  struct http_state *h = hs(c);
  bool on = to_client ? h->down_stream_on : h->up_stream_on;
  if (!on)
    return end ? 0 : write_body(c, to_client, chunked, at, len);
  struct awf_secret_stream *st = to_client ? h->down_stream : h->up_stream;
  st->s = c->proxy->cfg.secrets;
  char *out = scratch_for(h, len);
  if (!out)
    return UV_ENOMEM;
  size_t n = end ? awf_secret_stream_finish(st, out) : awf_secret_stream_feed(st, at, len, out);
  return n ? write_body(c, to_client, chunked, out, n) : 0;
}

/* ---- error responses ----------------------------------------------------- */

/* An error answer: the one-line body names the host and the reason, so an
 * agent reading it knows what to ask for; a 429 says when to retry. keep:
 * the connection stays open for the next request; else it closes. Returns
 * the transport's result. */
static int write_error(struct conn *c, int status, const char *host, int port,
                       enum awf_reason reason, bool keep) {
  char body[640], head[256], retry[48] = "";
  int blen;
  if (status == 429 && hs(c)->retry_after)
    snprintf(retry, sizeof(retry), "Retry-After: %u\r\n", hs(c)->retry_after);
  if (host && *host)
    blen = snprintf(body, sizeof(body), "awf: %s:%d %s: %s: %s\n", host, port,
                    status == 403 || status == 429 ? "denied" : "failed",
                    awf_reason_name(reason), awf_reason_explain(reason));
  else
    blen = snprintf(body, sizeof(body), "awf: %s: %s\n", awf_reason_name(reason),
                    awf_reason_explain(reason));
  if (blen < 0 || (size_t)blen >= sizeof(body))
    blen = (int)strlen(body);
  int hlen = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: %d\r\n%s%s\r\n",
                      status, awf_http_status_text(status), blen, retry,
                      keep ? "" : "Connection: close\r\n");
  hs(c)->status = status;
  uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)hlen), uv_buf_init(body, (unsigned)blen)};
  return awf_transport_write(c->client, bufs, 2);
}

/* Answer with an error and close. */
static void http_send_error(struct conn *c, int status, const char *host, int port,
                            enum awf_reason reason) {
  hs(c)->paused = true; /* nothing more is read from this client */
  if (c->dial) {        /* a 504 or 408 while dialling: no answer may follow this one */
    awf_dial_cancel(c->dial);
    c->dial = NULL;
  }
  if (write_error(c, status, host, port, reason, false) < 0) {
    conn_close(c);
    return;
  }
  conn_close_after_writes(c);
}

static void fail_request(struct conn *c, int status, enum awf_reason reason) {
  struct http_state *h = hs(c);
  h->status = status;
  log_request(c, AWF_DENY, reason);
  if (h->rs_stage != RS_NONE) { /* too late for a status: cut the response */
    conn_close(c);
    return;
  }
  http_send_error(c, status, h->target.host_len ? h->target.host : NULL, h->target.port,
                  reason);
}

/* ---- request parsing callbacks ------------------------------------------ */

static int req_error(struct conn *c, int status, enum awf_reason reason) {
  hs(c)->error_status = status;
  hs(c)->error_reason = reason;
  return -1;
}

/* Per-request state back to nothing, for a message llhttp began or for bytes
 * refused before it could begin one (then the fields of the previous request
 * must not reach the log: its url points into a released buffer). */
static void request_reset(struct conn *c) {
  struct http_state *h = hs(c);
  awf_head_reset(&h->rq);
  memset(&h->target, 0, sizeof(h->target));
  h->rq_stage = RQ_HEAD;
  h->rs_stage = RS_NONE;
  h->logged = false;
  h->head_request = h->resp_close = h->resp_refused = h->would_deny = false;
  h->host_access = false;
  h->req_framing = AWF_FRAME_NONE;
  h->req_length = 0;
  memset(&h->plan, 0, sizeof(h->plan));
  h->audit_reason = AWF_REASON_NONE;
  h->dlp = NULL;
  awf_dlp_stream_free(h->dlp_body);
  h->dlp_body = NULL;
  h->body_seen = 0;
  h->host_headers = 0;
  h->req_no++;
  h->method = -1;
  h->url_off = h->url_len = 0;
  h->bytes_up = h->bytes_down = 0;
  h->status = 0;
  h->upstream_addr[0] = h->resolved[0] = '\0';
  h->started_ms = conn_now_ms(c);
  h->error_status = 0;
  h->error_reason = AWF_REASON_NONE;
  h->local_status = 0;
  h->local_reason = AWF_REASON_NONE;
  h->answered_locally = false;
  h->retry_after = 0;
  memset(&h->sec, 0, sizeof(h->sec));
  h->up_stream_on = h->down_stream_on = false;
  awf_buf_reset(&h->full_url);
}

static int on_req_begin(llhttp_t *p) {
  struct conn *c = conn_of(p);
  request_reset(c);
  conn_set_timer(c, T_HEADER); /* slowloris: the head has a deadline */
  return 0;
}

static int on_req_url(llhttp_t *p, const char *at, size_t len) {
  struct conn *c = conn_of(p);
  struct http_state *h = hs(c);
  if (h->url_len == 0)
    h->url_off = (uint32_t)h->rq.buf.len;
  if (awf_head_append(&h->rq, at, len) < 0)
    return req_error(c, 431, AWF_REASON_HEADER_TOO_LARGE);
  h->url_len += (uint32_t)len;
  return 0;
}

static int on_req_field(llhttp_t *p, const char *at, size_t len) {
  struct conn *c = conn_of(p);
  return awf_head_field(&hs(c)->rq, at, len) < 0
             ? req_error(c, 431, AWF_REASON_HEADER_TOO_LARGE)
             : 0;
}

static int on_req_value(llhttp_t *p, const char *at, size_t len) {
  struct conn *c = conn_of(p);
  return awf_head_value(&hs(c)->rq, at, len) < 0
             ? req_error(c, 431, AWF_REASON_HEADER_TOO_LARGE)
             : 0;
}

static int on_req_value_complete(llhttp_t *p) {
  struct conn *c = conn_of(p);
  struct http_state *h = hs(c);
  const struct awf_hdr *x = awf_head_value_complete(&h->rq);
  if (awf_req_check_header(&h->rq, x, &h->host_headers) < 0)
    return req_error(c, 400, AWF_REASON_BAD_REQUEST);
  return 0;
}

static int start_upstream_request(struct conn *c);
static void start_dial(struct conn *c);

static void close_upstream(struct conn *c) {
  conn_drop_upstream(c);
  hs(c)->up_reusable = false;
}

/* Hand an idle, reusable upstream to the engine's pool, for any client;
 * close it when it is not reusable or the proxy is stopping. */
static void park_upstream(struct conn *c) {
  struct http_state *h = hs(c);
  if (!c->up)
    return;
  if (h->bumped || !h->up_reusable || c->up->eof || c->proxy->shutting_down ||
      !c->proxy->upool || awf_transport_queued(c->up) > 0) {
    close_upstream(c);
    return;
  }
  uv_tcp_t *tcp = conn_detach_up_tcp(c);
  h->up_reusable = false;
  if (!tcp) /* not a TCP upstream: nothing the pool can keep */
    return;
  awf_upool_put(c->proxy->upool, tcp, h->up_host, h->up_port, h->up_addr);
}

/* An upstream another client left for this host and port. */
static void take_pooled(struct conn *c) {
  struct http_state *h = hs(c);
  uv_tcp_t *tcp = awf_upool_take(c->proxy->upool, h->target.host, h->target.port, h->up_addr,
                                 sizeof(h->up_addr));
  if (!tcp)
    return;
  conn_attach_up_tcp(c, tcp);
  snprintf(h->up_host, sizeof(h->up_host), "%s", h->target.host);
  h->up_port = h->target.port;
  h->up_reusable = true;
  llhttp_init(&h->resp, HTTP_RESPONSE, &resp_settings);
  h->resp.data = c;
  update_reading(c);
}

/* Build the head sent upstream: origin-form target, Host from the URI, no
 * hop-by-hop or proxy headers, framing from what llhttp parsed. */
/* Base-URL mode: the client's credentials and cookies are not forwarded
 * (the endpoint's secret replaces them). */
static void strip_client_credentials(struct awf_head *rq, const char *secret_header) {
  unsigned k = 0;
  for (unsigned i = 0; i < rq->n; i++) {
    const struct awf_hdr *x = &rq->hdrs[i];
    const char *n = awf_hdr_name(rq, x);
    bool drop = awf_name_is(n, x->name_len, "authorization") ||
                awf_name_is(n, x->name_len, "x-api-key") ||
                awf_name_is(n, x->name_len, "cookie") ||
                awf_name_is(n, x->name_len, secret_header) ||
                (x->name_len >= 6 && strncasecmp(n, "proxy-", 6) == 0);
    if (!drop)
      rq->hdrs[k++] = *x;
  }
  rq->n = k;
}

/* Base-URL mode: the secret's header line, before the head's blank line. */
static int add_endpoint_header(struct http_state *h, const awf_secrets *sec) {
  size_t i = h->endpoint->secret;
  char line[AWF_SECRET_MAX_LEN + 256];
  size_t n = awf_secret_header_line(sec, i, line, sizeof(line));
  if (n == 0 || h->out.len < 2)
    return -E2BIG;
  h->out.len -= 2; /* the blank line */
  int rc = awf_buf_append(&h->out, line, n);
  if (rc == 0)
    rc = awf_buf_append(&h->out, "\r\n", 2);
  explicit_bzero(line, sizeof(line));
  if (rc == 0)
    h->sec.injected |= UINT64_C(1) << i;
  return rc;
}

static int build_upstream_head(struct conn *c) {
  struct http_state *h = hs(c);
  const awf_secrets *sec = c->proxy->cfg.secrets;
  if (h->endpoint)
    strip_client_credentials(&h->rq, awf_secrets_header(sec, h->endpoint->secret));
  struct awf_req_facts f = {.method = h->method,
                            .target = h->target,
                            .framing = h->req_framing,
                            .length = h->req_length};
  int rc = awf_build_request_head(&h->out, &f, &h->rq);
  if (rc < 0 || !sec)
    return rc;
  /* Secrets (secrets.h): placeholders become values for the dialled host,
   * in the query and header values; equal lengths keep the framing valid. */
  const char *host = dialled_host(h);
  awf_secrets_rewrite_head(sec, host, strlen(host), h->out.data, h->out.len, &h->sec);
  if (h->endpoint && add_endpoint_header(h, sec) < 0)
    return -E2BIG;
  uint64_t body = 0;
  for (size_t i = 0; i < awf_secrets_count(sec); i++)
    if (awf_secrets_in_body(sec, i))
      body |= UINT64_C(1) << i;
  body &= awf_secrets_mask_for(sec, host, strlen(host));
  h->up_stream_on = false;
  if (body && h->req_body) {
    if (stream_start(h, true, body) < 0)
      return -ENOMEM;
    h->up_stream_on = true;
  }
  return 0;
}

/* --secret-strict: a placeholder for another host stops the request. */
static bool secret_misdirected(const struct conn *c) {
  return c->proxy->cfg.secret_strict && hs(c)->sec.misdirected;
}

/* The request's URL as the log shows it: https://host[:port]/target. */
static void make_full_url(struct http_state *h) {
  char pre[300];
  int n = h->bump.port == 443 ? snprintf(pre, sizeof(pre), "https://%s", h->bump.host)
                              : snprintf(pre, sizeof(pre), "https://%s:%u", h->bump.host,
                                         (unsigned)h->bump.port);
  awf_buf_reset(&h->full_url);
  if (n < 0 || awf_buf_append(&h->full_url, pre, (size_t)n) < 0 ||
      awf_buf_append(&h->full_url, h->target.path_len ? h->target.path : "/",
                     h->target.path_len ? h->target.path_len : 1) < 0)
    awf_buf_reset(&h->full_url); /* no URL in the record rather than half of one */
}

/* A request awf answers itself inside intercepted TLS: logged now, its body
 * read and dropped, the answer written once the request is whole
 * (on_req_complete), and the connection goes on. */
static int answer_locally(struct conn *c, int status, enum awf_reason reason) {
  struct http_state *h = hs(c);
  if (h->req_body) {
    /* A body would have to be read whole before the answer (and an
     * Expect: 100-continue client waits for nothing): answer now, close. */
    h->status = status;
    log_request(c, AWF_DENY, reason);
    http_send_error(c, status, h->target.host_len ? h->target.host : NULL, h->target.port,
                    reason);
    return HPE_PAUSED;
  }
  h->status = status;
  h->local_status = status;
  h->local_reason = reason;
  log_request(c, AWF_DENY, reason);
  return 0;
}

/* Two lower-case host names, a trailing dot (the root label) aside. */
static bool same_host(const char *a, const char *b) {
  size_t al = strlen(a), bl = strlen(b);
  if (al > 1 && a[al - 1] == '.')
    al--;
  if (bl > 1 && b[bl - 1] == '.')
    bl--;
  return al == bl && memcmp(a, b, al) == 0;
}

/* The head of a request inside intercepted TLS: for the tunnel's host only
 * (it was admitted, and its upstream verified, for that name), judged by
 * the https URL rules, sent on over the pinned upstream. */
/* Base-URL mode: the request goes to the endpoint's host, whatever Host the
 * client sent, at the base path followed by the client's. */
static int endpoint_target(struct http_state *h) {
  const struct awf_secret_endpoint *ep = h->endpoint;
  snprintf(h->target.host, sizeof(h->target.host), "%s", ep->host);
  h->target.host_len = strlen(ep->host);
  h->target.host_is_ipv6 = false;
  awf_buf_reset(&h->ep_path);
  const char *p = h->target.path_len ? h->target.path : "/";
  size_t pl = h->target.path_len ? h->target.path_len : 1;
  bool query = p[0] == '?';
  if (awf_buf_append(&h->ep_path, ep->base, strlen(ep->base)) < 0 ||
      (query && awf_buf_append(&h->ep_path, "/", 1) < 0) ||
      awf_buf_append(&h->ep_path, p, pl) < 0)
    return -E2BIG;
  h->target.path = h->ep_path.data;
  h->target.path_len = h->ep_path.len;
  return 0;
}

static int bumped_request(struct conn *c) {
  struct http_state *h = hs(c);
  if (h->endpoint && endpoint_target(h) < 0)
    return req_error(c, 431, AWF_REASON_HEADER_TOO_LARGE);
  make_full_url(h);
  if (!h->endpoint && !same_host(h->target.host, h->bump.host))
    return answer_locally(c, 421, AWF_REASON_HOST_MISMATCH);
  h->target.port = h->bump.port;
  struct awf_ask_facts ask = {.kind = AWF_ASK_HTTPS,
                              .host = h->bump.host,
                              .host_len = strlen(h->bump.host),
                              .port = h->bump.port,
                              .http = {.method = llhttp_method_name((llhttp_method_t)h->method),
                                       .target = h->target.path,
                                       .target_len = h->target.path_len,
                                       .headers = &h->rq}};
  struct awf_verdict v = awf_policy_judge(&c->proxy->policy, &ask);
  h->would_deny = v.would_deny;
  h->audit_reason = v.would_deny ? v.reason : AWF_REASON_NONE;
  h->dlp = v.dlp;
  if (v.decision == AWF_DENY)
    return answer_locally(c, awf_reason_http_status(v.reason), v.reason);
  h->retry_after = conn_rate_check(c, h->bump.host, true, &h->would_deny, &h->audit_reason);
  if (h->retry_after)
    return answer_locally(c, 429, AWF_REASON_RATE_LIMITED);
  if (build_upstream_head(c) < 0)
    return req_error(c, 431, AWF_REASON_HEADER_TOO_LARGE);
  if (secret_misdirected(c)) {
    h->up_stream_on = false;
    return answer_locally(c, 403, AWF_REASON_SECRET_MISDIRECTED);
  }
  log_request_open(c);
  conn_set_timer(c, T_EXCHANGE);
  if (c->up && !h->up_reusable)
    close_upstream(c);
  h->up_reused = c->up != NULL && !h->up_fresh;
  if (c->up) {
    snprintf(h->upstream_addr, sizeof(h->upstream_addr), "%s", h->up_addr);
    h->up_fresh = false;
    if (start_upstream_request(c) == 0)
      return 0;
    close_upstream(c); /* it died while idle: dial afresh */
    h->up_reused = false;
  }
  start_dial(c);
  return HPE_PAUSED;
}

/* Refuse the request just judged, with the reason's status, and close. */
static int deny_request(struct conn *c, enum awf_reason reason) {
  struct http_state *h = hs(c);
  h->status = awf_reason_http_status(reason);
  log_request(c, AWF_DENY, reason);
  http_send_error(c, h->status, h->target.host, h->target.port, reason);
  return HPE_PAUSED;
}

static int on_req_headers_complete(llhttp_t *p) {
  struct conn *c = conn_of(p);
  struct http_state *h = hs(c);
  awf_proxy *px = c->proxy;
  h->rq_stage = RQ_BODY;
  struct awf_req_facts f;
  bool origin_form;
  /* The target's path points into rq.buf, which no longer grows for this
   * request. */
  int status = awf_req_head_complete(p, &h->rq, h->host_headers,
                                     awf_buf_at(&h->rq.buf, h->url_off), h->url_len,
                                     c->transparent || h->bumped,
                                     h->bumped
                                         ? h->bump.port
                                         : awf_sockaddr_port((struct sockaddr *)&c->orig_dst),
                                     &f, &origin_form);
  h->method = f.method;
  h->target = f.target;
  if (status)
    return req_error(c, status,
                     origin_form ? AWF_REASON_NOT_A_PROXY_REQUEST : AWF_REASON_BAD_REQUEST);
  h->req_framing = f.framing;
  h->req_length = f.length;
  h->req_body = f.framing == AWF_FRAME_CHUNKED ||
                (f.framing == AWF_FRAME_LENGTH && f.length > 0);
  h->head_request = h->method == HTTP_HEAD;
  if (f.close)
    h->resp_close = true; /* HTTP/1.0 or Connection: close: one request, then close */
  if (h->bumped)
    return bumped_request(c);

  struct awf_ask_facts ask = {.kind = h->method == HTTP_CONNECT ? AWF_ASK_CONNECT
                                                                : AWF_ASK_HTTP,
                              .host = h->target.host,
                              .host_len = h->target.host_len,
                              .port = h->target.port,
                              .http = {.method = llhttp_method_name((llhttp_method_t)h->method),
                                       .target = h->target.path,
                                       .target_len = h->target.path_len,
                                       .headers = &h->rq}};
  struct awf_verdict v = awf_policy_judge(&px->policy, &ask);
  h->would_deny = v.would_deny;
  h->audit_reason = v.would_deny ? v.reason : AWF_REASON_NONE;
  h->dlp = v.dlp;
  h->host_access = v.host_access;
  if (v.decision == AWF_DENY)
    return deny_request(c, v.reason);
  /* A tunnel interception opens counts by its requests, not itself; the
   * host's services are not limited. */
  bool opened = h->method == HTTP_CONNECT && !h->host_access && px->cfg.intercept &&
                awf_intercept_wants(px->cfg.intercept, h->target.host, h->target.host_len);
  if (!h->host_access)
    h->retry_after = conn_rate_check(c, h->target.host, !opened, &h->would_deny,
                                     &h->audit_reason);
  if (h->retry_after)
    return deny_request(c, AWF_REASON_RATE_LIMITED);
  if (h->method == HTTP_CONNECT) {
    log_request_open(c);
    conn_set_timer(c, T_EXCHANGE);
    park_upstream(c); /* a tunnel never reuses an HTTP upstream */
    start_dial(c);
    return HPE_PAUSED;
  }
  if (build_upstream_head(c) < 0)
    return req_error(c, 431, AWF_REASON_HEADER_TOO_LARGE);
  if (secret_misdirected(c))
    return deny_request(c, AWF_REASON_SECRET_MISDIRECTED);
  log_request_open(c);
  conn_set_timer(c, T_EXCHANGE);
  if (c->up && !(h->up_reusable && h->up_port == h->target.port &&
                 strcmp(h->up_host, h->target.host) == 0))
    park_upstream(c); /* another host: someone else may want it */
  if (!c->up)
    take_pooled(c);
  h->up_reused = c->up != NULL;
  if (c->up) {
    snprintf(h->upstream_addr, sizeof(h->upstream_addr), "%s", h->up_addr);
    if (start_upstream_request(c) == 0)
      return 0;
    close_upstream(c); /* it died while idle: dial afresh */
    h->up_reused = false;
  }
  start_dial(c);
  return HPE_PAUSED;
}

/* --dlp: a match in a request body. Its head went upstream already, so no
 * 403 can follow: the bytes that complete the match are not sent, both
 * connections are cut and the request is logged as denied
 * (after_request_error). Under --audit the body goes on and the record says
 * what it carried. */
static int body_dlp(struct conn *c, const char *kind) {
  struct http_state *h = hs(c);
  h->dlp = kind;
  if (c->proxy->cfg.audit) {
    h->would_deny = true;
    h->audit_reason = AWF_REASON_DLP_MATCH;
    return 0;
  }
  return req_error(c, 403, AWF_REASON_DLP_MATCH);
}

/* --dlp: scan the next body bytes (the first AWF_DLP_BODY_MAX of them);
 * a stream that cannot be made refuses the body rather than pass it. */
static int scan_body(struct conn *c, const char *at, size_t len, bool end) {
  struct http_state *h = hs(c);
  const awf_dlp *d = c->proxy->cfg.dlp;
  if (!d || (h->would_deny && h->audit_reason == AWF_REASON_DLP_MATCH))
    return 0;
  if (!h->dlp_body && !(h->dlp_body = awf_dlp_stream_new(d, AWF_DLP_BODY_MAX)))
    return body_dlp(c, AWF_DLP_KIND_UNSCANNED);
  const char *kind = end ? awf_dlp_stream_finish(h->dlp_body)
                         : awf_dlp_stream_feed(h->dlp_body, at, len);
  return kind ? body_dlp(c, kind) : 0;
}

static int on_req_body(llhttp_t *p, const char *at, size_t len) {
  struct conn *c = conn_of(p);
  if (hs(c)->local_status)
    return 0; /* answered by awf: the body goes nowhere */
  if (!c->up)
    return -1;
  /* The last bytes of a Content-Length body end it: a match only the end
   * decides (an AWS key id closing the body) is found before they go. */
  struct http_state *h = hs(c);
  h->body_seen += len;
  bool last = h->req_framing == AWF_FRAME_LENGTH && h->body_seen >= h->req_length;
  if (scan_body(c, at, len, false) < 0 || (last && scan_body(c, NULL, 0, true) < 0))
    return -1;
  /* The origin went away under the upload (a reset after refusing it): its
   * failure, not a bad request of the client's. */
  if (write_body_secrets(c, false, hs(c)->req_framing == AWF_FRAME_CHUNKED, at, len, false) < 0)
    return req_error(c, 502, AWF_REASON_UPSTREAM_UNREACHABLE);
  return 0;
}

static void exchange_done(struct conn *c);

static int on_req_complete(llhttp_t *p) {
  struct conn *c = conn_of(p);
  struct http_state *h = hs(c);
  if (h->local_status) {
    h->rq_stage = RQ_DONE;
    h->answered_locally = true; /* finished once the parser returns (finish_local) */
    awf_scan_restart(&h->scan);
    bool keep = !h->resp_close && !c->client->eof;
    if (write_error(c, h->local_status, h->target.host_len ? h->target.host : NULL,
                    h->target.port, h->local_reason, keep) < 0)
      return -1;
    return HPE_PAUSED;
  }
  if (h->dlp_body && scan_body(c, NULL, 0, true) < 0)
    return -1; /* a match only the body's end decides: the request is not ended */
  awf_dlp_stream_free(h->dlp_body);
  h->dlp_body = NULL;
  if (c->up &&
      write_body_secrets(c, false, h->req_framing == AWF_FRAME_CHUNKED, NULL, 0, true) < 0)
    return req_error(c, 502, AWF_REASON_UPSTREAM_UNREACHABLE);
  if (h->req_framing == AWF_FRAME_CHUNKED && c->up) {
    uv_buf_t end = uv_buf_init("0\r\n\r\n", 5);
    if (write_up(c, &end, 1) < 0)
      return req_error(c, 502, AWF_REASON_UPSTREAM_UNREACHABLE);
  }
  h->rq_stage = RQ_DONE;
  awf_scan_restart(&h->scan);
  /* Hold pipelined requests until this response is complete. */
  return HPE_PAUSED;
}

static const llhttp_settings_t req_settings = {
    .on_message_begin = on_req_begin,
    .on_url = on_req_url,
    .on_header_field = on_req_field,
    .on_header_value = on_req_value,
    .on_header_value_complete = on_req_value_complete,
    .on_headers_complete = on_req_headers_complete,
    .on_body = on_req_body,
    .on_message_complete = on_req_complete,
};

/* ---- feeding client bytes ------------------------------------------------ */

static int stash_pending(struct http_state *h, const char *at, size_t len) {
  return awf_buf_append(&h->pending, at, len);
}

static void after_request_error(struct conn *c) {
  struct http_state *h = hs(c);
  int status = h->error_status ? h->error_status : 400;
  enum awf_reason reason = h->error_reason ? h->error_reason : AWF_REASON_BAD_REQUEST;
  if (h->rq_stage == RQ_IDLE) /* refused before llhttp began a message (first or next) */
    request_reset(c);
  if (reason == AWF_REASON_DLP_MATCH) { /* in a body under way: cut both sides (body_dlp) */
    log_request(c, AWF_DENY, reason);
    conn_close(c);
    return;
  }
  if (status == 502) {
    fail_request(c, 502, reason);
    return;
  }
  if (h->rq_stage >= RQ_BODY && h->bytes_up > 0) {
    /* A body error after the head went upstream: the request was admitted
     * and bytes of it left, so the record says allow, with what moved. The
     * origin gets no end of it; a response under way is cut, since a 400
     * head cannot follow its bytes (http_on_close logs it). */
    close_upstream(c);
    if (h->rs_stage != RS_NONE) {
      conn_close(c);
      return;
    }
    h->status = status;
    log_request(c, AWF_ALLOW, AWF_REASON_ALLOWED);
    http_send_error(c, status, NULL, 0, reason);
    return;
  }
  h->status = status;
  log_request(c, AWF_DENY, reason);
  http_send_error(c, status, NULL, 0, reason);
}

/* Run the request parser over client bytes; keep what it did not take. */
static void feed_client(struct conn *c, const char *data, size_t len) {
  struct http_state *h = hs(c);
  if (h->scan.active && awf_scan_head(&h->scan, data, len) < 0) {
    h->error_status = 400;
    h->error_reason = AWF_REASON_BAD_REQUEST;
    after_request_error(c);
    return;
  }
  llhttp_errno_t err = llhttp_execute(&h->req, data, len);
  while (err == HPE_PAUSED_UPGRADE && still_http(c) && h->method != HTTP_CONNECT) {
    /* Upgrade is hop-by-hop and was never forwarded: the connection stays
     * HTTP, and the bytes after the message are the next request. */
    const char *pos = llhttp_get_error_pos(&h->req);
    size_t used = pos ? (size_t)(pos - data) : len;
    llhttp_resume_after_upgrade(&h->req);
    data += used;
    len -= used;
    err = llhttp_execute(&h->req, data, len);
  }
  if (!still_http(c))
    return;
  if (err == HPE_OK)
    return;
  if (err == HPE_PAUSED) {
    const char *pos = llhttp_get_error_pos(&h->req);
    size_t used = pos ? (size_t)(pos - data) : len;
    h->paused = true;
    if (used < len && stash_pending(h, data + used, len - used) < 0) {
      conn_close(c);
      return;
    }
    update_reading(c);
    return;
  }
  after_request_error(c);
}

/* A request awf answered itself is over (its answer is queued): the next
 * one may start. Returns whether the parser should run again. */
static bool finish_local(struct conn *c) {
  struct http_state *h = hs(c);
  if (!still_http(c) || !h->answered_locally)
    return false;
  h->answered_locally = false;
  h->rq_stage = RQ_IDLE;
  if (h->resp_close || c->client->eof || c->proxy->shutting_down) {
    conn_close_after_writes(c);
    return false;
  }
  awf_head_release(&h->rq);
  conn_set_timer(c, T_IDLE);
  if (c->client->full) { /* resumed by http_on_drained */
    h->paused = true;
    h->drain_wait = true;
    update_reading(c);
    return false;
  }
  return true;
}

static void resume_client(struct conn *c) {
  struct http_state *h = hs(c);
  /* A loop, not a recursion: each request awf answers itself lets the
   * parser run again over what is pending. */
  do {
    h->paused = false;
    llhttp_resume(&h->req);
    /* Run the parser even with no bytes: a message without a body completes
     * (on_message_complete) only when the parser runs again after a pause in
     * on_headers_complete. */
    struct awf_buf held = h->pending;
    awf_buf_init(&h->pending, held.max);
    feed_client(c, held.len ? held.data : "", held.len);
    awf_buf_free(&held);
  } while (finish_local(c));
  if (still_http(c))
    update_reading(c);
}

static void on_client_read(struct conn *c, ssize_t nread, const uv_buf_t *buf) {
  if (!still_http(c))
    return;
  struct http_state *h = hs(c);
  if (nread > 0) {
    if (h->paused) { /* a pipelined request: it waits for this response */
      if (stash_pending(h, buf->base, (size_t)nread) < 0)
        conn_close(c);
      else
        update_reading(c);
      return;
    }
    feed_client(c, buf->base, (size_t)nread);
    if (finish_local(c))
      resume_client(c);
    return;
  }
  /* EOF or error from the client. */
  if (nread == UV_EOF && awaiting_response(h)) {
    h->resp_close = true; /* a half-close after the request: answer, then close */
    return;
  }
  conn_close(c);
}

/* ---- upstream --------------------------------------------------------- */

static int start_upstream_request(struct conn *c) {
  struct http_state *h = hs(c);
  llhttp_resume(&h->resp); /* it paused at the end of the previous response */
  uv_buf_t b = uv_buf_init(h->out.data, (unsigned)h->out.len);
  int rc = write_up(c, &b, 1);
  if (rc == 0)
    awf_buf_reset(&h->out); /* kept on failure: a fresh connection resends it */
  else
    h->bytes_up = 0;
  return rc;
}

static void on_dialled(const struct awf_dial_result *r, void *arg) {
  struct conn *c = arg;
  struct http_state *h = hs(c);
  c->dial = NULL;
  if (r->status == 0 || r->proxy_reached) /* a connection made (to the parent, maybe) */
    awf_sockaddr_format((const struct sockaddr *)&r->peer, h->upstream_addr,
                        sizeof(h->upstream_addr));
  if (r->status < 0) {
    /* what the summary's --allow-destination-cidrs needs */
    if (r->reason == AWF_REASON_PRIVATE_DESTINATION && r->have_peer)
      awf_sockaddr_format_ip((const struct sockaddr *)&r->peer, h->resolved,
                             sizeof(h->resolved));
    fail_request(c, awf_reason_http_status(r->reason), r->reason);
    return;
  }
  conn_attach_up_tcp(c, r->tcp);
  if (h->bumped) {
    awf_intercept *ic = c->proxy->cfg.intercept;
    struct awf_tls_params cp = {.role = AWF_TLS_CLIENT,
                                .name = h->bump.host,
                                .session = awf_intercept_session(ic, h->bump.host)};
    int rc = conn_wrap_tls(c, &c->up, awf_intercept_client_ctx(ic), &cp);
    SSL_SESSION_free(cp.session); /* the transport took its own reference */
    if (rc < 0) {
      fail_request(c, 502, AWF_REASON_UPSTREAM_UNREACHABLE);
      return;
    }
  }

  if (h->method == HTTP_CONNECT) {
    struct tunnel_params tp = {
        .host = h->target.host,
        .host_len = h->target.host_len,
        .port = h->target.port,
        .would_deny = h->would_deny,
        .audit_reason = h->audit_reason,
        .dlp = h->dlp,
        .upstream = h->upstream_addr,
        .started_ms = h->started_ms,
        .req = h->req_no,
        .host_access = h->host_access,
    };
    struct awf_buf early = h->pending;
    awf_buf_init(&h->pending, early.max);
    h->logged = true; /* the tunnel logs the connection from here on */
    conn_want_read(c, c->client, false);
    /* Copies what it keeps, then frees this mode's state (on_dialled runs
     * from the loop, never inside a parser): h is gone afterwards. */
    int rc = tunnel_start(c, &tp, early.data, early.len);
    awf_buf_free(&early);
    if (rc < 0)
      conn_close(c);
    return;
  }

  snprintf(h->up_host, sizeof(h->up_host), "%s", h->target.host);
  snprintf(h->up_addr, sizeof(h->up_addr), "%s", h->upstream_addr);
  h->up_port = h->target.port;
  h->up_reusable = true;
  h->up_fresh = false;
  llhttp_init(&h->resp, HTTP_RESPONSE, &resp_settings);
  h->resp.data = c;
  if (start_upstream_request(c) < 0) {
    fail_request(c, 502, AWF_REASON_UPSTREAM_UNREACHABLE);
    return;
  }
  update_reading(c);
  if (h->retrying) { /* the request was parsed already: the parser stays put */
    h->retrying = false;
    return;
  }
  resume_client(c);
}

static void start_dial(struct conn *c) {
  struct http_state *h = hs(c);
  awf_proxy *px = c->proxy;
  conn_drop_upstream(c);
  struct awf_dial_params prm = {
      .loop = px->loop,
      .resolver = px->cfg.resolver,
      .policy = px->cfg.policy,
      .connect_timeout_ms = px->cfg.connect_timeout_ms,
      .metrics = px->metrics,
      .host = h->target.host,
      .port = h->target.port,
      .host_access = px->cfg.host_access,
      .via = px->cfg.upstream_proxy,
      .proxy = px,
      .debug = px->cfg.log_level == AWF_LOG_DEBUG ? px : NULL,
  };
  if (awf_dial_start(&prm, on_dialled, c, &c->dial) < 0) {
    c->dial = NULL;
    fail_request(c, 502, AWF_REASON_DNS_FAILURE);
  }
}

/* ---- response parsing callbacks ---------------------------------------- */

static int on_resp_begin(llhttp_t *p) {
  struct conn *c = conn_of(p);
  struct http_state *h = hs(c);
  awf_head_reset(&h->rs);
  h->status_off = h->status_len = 0;
  h->plan.interim = false;
  return 0;
}

static int on_resp_status(llhttp_t *p, const char *at, size_t len) {
  struct http_state *h = hs(conn_of(p));
  if (h->status_len == 0)
    h->status_off = (uint32_t)h->rs.buf.len;
  h->status_len += (uint32_t)len;
  return awf_head_append(&h->rs, at, len) < 0 ? -1 : 0;
}

static int on_resp_field(llhttp_t *p, const char *at, size_t len) {
  return awf_head_field(&hs(conn_of(p))->rs, at, len) < 0 ? -1 : 0;
}

static int on_resp_value(llhttp_t *p, const char *at, size_t len) {
  return awf_head_value(&hs(conn_of(p))->rs, at, len) < 0 ? -1 : 0;
}

static int on_resp_value_complete(llhttp_t *p) {
  awf_head_value_complete(&hs(conn_of(p))->rs);
  return 0;
}

static int on_resp_headers_complete(llhttp_t *p) {
  struct conn *c = conn_of(p);
  struct http_state *h = hs(c);
  struct awf_resp_plan *plan = &h->plan;
  int status = p->status_code;
  int skip = awf_resp_head_complete(p, &h->rs, h->head_request, h->resp_close, plan);
  if (skip < 0) {
    /* A 101, a bad status, or Connection naming a framing header: refused, and the
     * upstream is not reused (nor the request resent). */
    h->resp_refused = true;
    h->up_reusable = false;
    return -1;
  }
  if (!plan->interim) {
    h->rs_stage = RS_STARTED;
    h->status = status;
    if (!plan->reusable)
      h->up_reusable = false; /* read until close */
  }
  /* No status text and no header: the buffer may hold nothing at all. */
  const char *text = h->status_len ? h->rs.buf.data + h->status_off : "";
  int rc = awf_build_response_head(&h->resp_head, status, text, h->status_len, &h->rs, plan);
  /* A secret's host that echoes a value gets its placeholder back, in the
   * head and in a bounded prefix of the body. */
  const awf_secrets *sec = c->proxy->cfg.secrets;
  const char *host = dialled_host(h);
  h->down_stream_on = false;
  if (rc == 0 && sec && awf_secrets_any_host(sec, host, strlen(host))) {
    awf_secrets_scrub(sec, h->resp_head.data, h->resp_head.len);
    if (!plan->no_body && (rc = stream_start(h, false, UINT64_MAX)) == 0)
      h->down_stream_on = true;
  }
  /* A 1xx goes now; a final head waits for its body (see write_client). */
  if (rc == 0 && plan->interim)
    rc = write_client(c, NULL, 0);
  if (rc < 0)
    return -1;
  return skip; /* 1: no body (HEAD, 1xx, 204, 304) */
}

static int on_resp_body(llhttp_t *p, const char *at, size_t len) {
  struct conn *c = conn_of(p);
  return write_body_secrets(c, true, hs(c)->plan.out == AWF_FRAME_CHUNKED, at, len, false) < 0
             ? -1
             : 0;
}

static int on_resp_complete(llhttp_t *p) {
  struct conn *c = conn_of(p);
  struct http_state *h = hs(c);
  if (h->plan.interim)
    return 0; /* a 1xx: the final response follows */
  if (write_body_secrets(c, true, h->plan.out == AWF_FRAME_CHUNKED, NULL, 0, true) < 0)
    return -1;
  if (h->plan.out == AWF_FRAME_CHUNKED) {
    uv_buf_t end = uv_buf_init("0\r\n\r\n", 5);
    if (write_client(c, &end, 1) < 0)
      return -1;
  }
  h->rs_stage = RS_DONE;
  if (!llhttp_should_keep_alive(p))
    h->up_reusable = false;
  return HPE_PAUSED;
}

static const llhttp_settings_t resp_settings = {
    .on_message_begin = on_resp_begin,
    .on_status = on_resp_status,
    .on_header_field = on_resp_field,
    .on_header_value = on_resp_value,
    .on_header_value_complete = on_resp_value_complete,
    .on_headers_complete = on_resp_headers_complete,
    .on_body = on_resp_body,
    .on_message_complete = on_resp_complete,
};

/* Both the request and its response are complete. */
static void exchange_done(struct conn *c) {
  struct http_state *h = hs(c);
  log_request(c, AWF_ALLOW, AWF_REASON_ALLOWED);
  h->rq_stage = RQ_IDLE;
  if (h->resp_close || c->client->eof || c->proxy->shutting_down) {
    park_upstream(c); /* a connection per request: the next client takes it */
    conn_close_after_writes(c);
    return;
  }
  if (!h->up_reusable)
    close_upstream(c);
  awf_head_release(&h->rq);
  awf_head_release(&h->rs);
  awf_buf_free(&h->out);
  awf_buf_free(&h->resp_head);
  conn_set_timer(c, T_IDLE);
  resume_client(c);
}

/* A reused connection that failed before a byte of the answer: the server
 * closed it while idle. A complete bodyless GET, HEAD or OPTIONS goes out
 * once more on a fresh connection (RFC 9112 9.3.1). */
static bool retry_fresh(struct conn *c) {
  struct http_state *h = hs(c);
  if (!h->up_reused || h->rs_stage != RS_NONE || h->resp_refused || h->bytes_down > 0 ||
      h->rq_stage != RQ_DONE || h->req_body ||
      (h->method != HTTP_GET && h->method != HTTP_HEAD && h->method != HTTP_OPTIONS))
    return false;
  close_upstream(c);
  h->up_reused = false;
  h->upstream_addr[0] = h->resolved[0] = '\0';
  if (build_upstream_head(c) < 0)
    return false;
  h->bytes_up = 0;
  h->retrying = true;
  start_dial(c);
  return true;
}

static void on_up_read(struct conn *c, ssize_t nread, const uv_buf_t *buf) {
  if (!still_http(c))
    return;
  struct http_state *h = hs(c);
  llhttp_errno_t err;
  if (nread > 0) {
    if (h->rq_stage == RQ_IDLE || h->rs_stage == RS_DONE) { /* bytes nobody asked for */
      close_upstream(c);
      return;
    }
    err = llhttp_execute(&h->resp, buf->base, (size_t)nread);
    if (!still_http(c))
      return;
    /* A head whose body is not in this read goes out now, on its own. */
    if (h->resp_head.len > 0 && write_client(c, NULL, 0) < 0) {
      conn_close(c);
      return;
    }
    if (err == HPE_PAUSED) {
      const char *pos = llhttp_get_error_pos(&h->resp);
      if (pos && pos < buf->base + nread)
        h->up_reusable = false; /* junk after the response */
    }
  } else {
    if (h->rq_stage == RQ_IDLE || h->rs_stage == RS_DONE) {
      close_upstream(c);
      return;
    }
    h->up_reusable = false;
    err = llhttp_finish(&h->resp); /* completes a read-until-close body */
    if (!still_http(c))
      return;
    if (h->resp_head.len > 0 && write_client(c, NULL, 0) < 0) {
      conn_close(c);
      return;
    }
    if (err == HPE_OK && h->rs_stage != RS_DONE)
      err = HPE_INVALID_EOF_STATE;
  }
  if (err != HPE_OK && err != HPE_PAUSED && h->client_gone) {
    conn_close(c); /* the client left: logged as the allowed request it was */
    return;
  }
  if (err != HPE_OK && err != HPE_PAUSED && retry_fresh(c))
    return;
  if (err != HPE_OK && err != HPE_PAUSED) {
    const struct awf_tls_transport *tt = awf_tls_transport_of(c->up);
    bool unverified = tt && awf_tls_transport_error(tt) == AWF_TLS_ERR_VERIFY;
    awf_proxy_diag(c->proxy, unverified ? AWF_LOG_WARN : AWF_LOG_DEBUG, "upstream %s: %s",
                   h->upstream_addr,
                   tt && awf_tls_transport_error(tt) != AWF_TLS_OK
                       ? awf_tls_transport_error_detail(tt)
                   : h->resp_refused
                       ? "response refused (101, or Connection names a framing header)"
                   : nread < 0 ? "closed early"
                               : llhttp_get_error_reason(&h->resp));
    fail_request(c, 502,
                 unverified ? AWF_REASON_UPSTREAM_TLS_VERIFY_FAILED
                            : AWF_REASON_UPSTREAM_UNREACHABLE);
    return;
  }
  if (h->rs_stage != RS_DONE)
    return;
  if (h->rq_stage != RQ_DONE) {
    /* Answered before the request body ended (401, 413...): the rest of the
     * body cannot be skipped safely, so this connection ends here. */
    log_request(c, AWF_ALLOW, AWF_REASON_ALLOWED);
    conn_close_after_writes(c);
    return;
  }
  if (!h->up_reusable)
    close_upstream(c);
  exchange_done(c);
}

/* ---- connection life ---------------------------------------------------- */

static void http_on_timer(struct conn *c, enum conn_timer kind) {
  struct http_state *h = hs(c);
  if (h->rq_stage == RQ_HEAD && kind == T_HEADER) {
    h->status = 408;
    log_request(c, AWF_DENY, AWF_REASON_TIMEOUT);
    http_send_error(c, 408, NULL, 0, AWF_REASON_TIMEOUT);
    return;
  }
  if (h->rq_stage != RQ_IDLE && kind == T_EXCHANGE && h->rs_stage != RS_DONE) {
    fail_request(c, 504, AWF_REASON_TIMEOUT);
    return;
  }
  conn_close(c);
}

/* The connection is closing: log a request that was cut short. Memory stays
 * until http_free(), since a parser callback may be on the stack. */
static void http_on_close(struct conn *c) {
  struct http_state *h = hs(c);
  if (h->rq_stage >= RQ_BODY && !h->logged)
    log_request(c, AWF_ALLOW, AWF_REASON_ALLOWED);
  if (h->bumped && !h->endpoint) { /* the tunnel's own record */
    /* A handshake that never finished (an error, or a client that stalled
     * until the deadline) let nothing through: not an allowed tunnel. */
    const struct awf_tls_transport *ct = awf_tls_transport_of(c->client);
    bool failed = ct && !awf_tls_transport_handshaken(ct);
    if (failed)
      awf_proxy_diag(c->proxy, AWF_LOG_DEBUG, "intercept %s: client: %s", h->bump.host,
                     awf_tls_transport_error(ct) != AWF_TLS_OK
                         ? awf_tls_transport_error_detail(ct)
                         : "the handshake did not complete");
    tunnel_log_handoff(c, &h->bump, failed ? AWF_DENY : AWF_ALLOW,
                       failed ? AWF_REASON_CLIENT_TLS_FAILED : AWF_REASON_ALLOWED, h->bump_up,
                       h->bump_down);
  }
}

/* A queue passed its high-water mark and drained again. */
static void http_on_drained(struct conn *c, struct awf_transport *t) {
  struct http_state *h = hs(c);
  if (t != c->client || !h->drain_wait || !still_http(c))
    return;
  h->drain_wait = false;
  resume_client(c);
}

static void http_free(struct conn *c) {
  struct http_state *h = hs(c);
  awf_head_release(&h->rq);
  awf_head_release(&h->rs);
  awf_buf_free(&h->pending);
  awf_buf_free(&h->out);
  awf_buf_free(&h->resp_head);
  awf_buf_free(&h->full_url);
  awf_buf_free(&h->ep_path);
  awf_dlp_stream_free(h->dlp_body);
  free(h->up_stream);
  free(h->down_stream);
  free(h->scratch);
  free(h);
  c->mode = NULL;
}

static const struct conn_mode_ops http_ops = {
    .name = "http",
    .on_client_read = on_client_read,
    .on_up_read = on_up_read,
    .on_timer = http_on_timer,
    .on_close = http_on_close,
    .on_drained = http_on_drained,
    .free = http_free,
};

static struct http_state *http_state_new(struct conn *c) {
  struct http_state *h = calloc(1, sizeof(*h));
  if (!h)
    return NULL;
  conn_set_mode(c, &http_ops, h, CONN_HTTP);
  awf_buf_init(&h->full_url, MAX_HEAD_BYTES + 300);
  awf_buf_init(&h->ep_path, MAX_HEAD_BYTES + AWF_SECRET_BASE_MAX);
  awf_buf_init(&h->rq.buf, MAX_HEAD_BYTES);
  awf_buf_init(&h->rs.buf, MAX_RESP_HEAD_BYTES);
  awf_buf_init(&h->pending, 2 * AWF_READ_BUF_SIZE);
  awf_buf_init(&h->out, MAX_HEAD_BYTES + 1024);
  awf_buf_init(&h->resp_head, MAX_RESP_HEAD_BYTES + 1024);
  llhttp_init(&h->req, HTTP_REQUEST, &req_settings);
  h->req.data = c;
  h->method = -1;
  awf_scan_restart(&h->scan);
  return h;
}

int http_conn_start(struct conn *c) {
  if (!http_state_new(c))
    return -ENOMEM;
  conn_set_timer(c, T_IDLE);
  update_reading(c);
  return 0;
}

int http_conn_start_intercepted(struct conn *c, const struct tunnel_handoff *ho) {
  struct tunnel_handoff copy = *ho; /* ho may live in the tunnel's state, freed next */
  struct http_state *h = http_state_new(c);
  if (!h)
    return -ENOMEM;
  h->bumped = true;
  h->bump = copy;
  h->req_no = copy.req; /* the requests inside number on from the CONNECT */
  /* The upstream dialled for the tunnel, TLS layered on it already. */
  snprintf(h->up_host, sizeof(h->up_host), "%s", copy.host);
  snprintf(h->up_addr, sizeof(h->up_addr), "%s", copy.upstream);
  h->up_port = copy.port;
  h->up_reusable = c->up != NULL;
  h->up_fresh = true;
  llhttp_init(&h->resp, HTTP_RESPONSE, &resp_settings);
  h->resp.data = c;
  conn_set_timer(c, T_HEADER); /* the handshake and the first request head */
  update_reading(c);
  return 0;
}

int http_conn_start_endpoint(struct conn *c, const struct awf_secret_endpoint *ep) {
  if (!c->proxy->cfg.intercept || !c->proxy->cfg.secrets)
    return -EINVAL; /* no verified upstream TLS, no secret */
  struct http_state *h = http_state_new(c);
  if (!h)
    return -ENOMEM;
  h->bumped = true;
  h->endpoint = ep;
  snprintf(h->bump.host, sizeof(h->bump.host), "%s", ep->host);
  h->bump.port = ep->port;
  h->up_fresh = true;
  llhttp_init(&h->resp, HTTP_RESPONSE, &resp_settings);
  h->resp.data = c;
  conn_set_timer(c, T_IDLE);
  update_reading(c);
  return 0;
}
