/* metrics_server.c: --metrics-listen (metrics_server.h). */
#include "metrics_server.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "list.h"
#include "llhttp.h"

#define HEAD_MAX 8192
#define CONN_TIMEOUT_MS 10000
#define BODY_MAX (4u << 20)
#define URL_MAX 256

struct awf_metrics_server {
  uv_loop_t *loop;
  struct awf_metrics_server_config cfg;
  uv_tcp_t listener;
  bool listener_open;
  struct awf_list conns;
  unsigned nconns;
  bool stopping, closing;
};

struct mconn {
  awf_metrics_server *s;
  struct awf_list link;
  uv_tcp_t tcp;
  uv_timer_t timer;
  unsigned open_handles;
  bool closing, answered;
  llhttp_t parser;
  size_t head_bytes;
  char url[URL_MAX];
  size_t url_len;
  bool url_long;
  char rbuf[2048];
  struct awf_buf out;
  uv_write_t wr;
  uv_shutdown_t sd;
};

static void maybe_free_server(awf_metrics_server *s) {
  if (s->closing && !s->listener_open && s->nconns == 0)
    free(s);
}

/* ---- a connection ---------------------------------------------------------- */

static void on_conn_handle_closed(uv_handle_t *h) {
  struct mconn *c = h->data;
  if (--c->open_handles > 0)
    return;
  awf_metrics_server *s = c->s;
  awf_list_remove(&c->link);
  s->nconns--;
  awf_buf_free(&c->out);
  free(c);
  maybe_free_server(s);
}

static void conn_close(struct mconn *c) {
  if (c->closing)
    return;
  c->closing = true;
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  conn_close(req->data);
}

static void on_written(uv_write_t *req, int status) {
  struct mconn *c = req->data;
  c->sd.data = c;
  if (status < 0 || c->closing || uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
    conn_close(c);
}

static void answer(struct mconn *c, int status, const char *reason, const char *ctype,
                   const char *extra, const char *body, size_t len, bool head_only) {
  c->answered = true;
  uv_read_stop((uv_stream_t *)&c->tcp);
  struct awf_buf *b = &c->out;
  int rc = awf_buf_printf(b,
                          "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                          "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                          status, reason, ctype, len, extra);
  if (rc == 0 && !head_only)
    rc = awf_buf_append(b, body, len);
  uv_buf_t ub = uv_buf_init(b->data, (unsigned)b->len);
  c->wr.data = c;
  if (rc < 0 || uv_write(&c->wr, (uv_stream_t *)&c->tcp, &ub, 1, on_written) < 0)
    conn_close(c);
}

static void answer_text(struct mconn *c, int status, const char *reason, const char *extra,
                        const char *text, bool head_only) {
  answer(c, status, reason, "text/plain; charset=utf-8", extra, text, strlen(text), head_only);
}

static void answer_metrics(struct mconn *c, bool head_only) {
  awf_metrics_server *s = c->s;
  struct awf_metrics *sum = malloc(sizeof(*sum));
  struct awf_buf body;
  awf_buf_init(&body, BODY_MAX);
  int rc = -1;
  if (sum) {
    s->cfg.collect(s->cfg.arg, sum);
    rc = awf_metrics_render(sum, &s->cfg.build, &body);
  }
  free(sum);
  if (rc < 0)
    answer_text(c, 500, "Internal Server Error", "", "metrics unavailable\n", head_only);
  else
    answer(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", "", awf_buf_at(&body, 0),
           body.len, head_only);
  awf_buf_free(&body);
}

/* The request is complete: route it. */
static void route(struct mconn *c) {
  uint8_t method = llhttp_get_method(&c->parser);
  bool head_only = method == HTTP_HEAD;
  size_t path_len = strcspn(c->url, "?");
  bool metrics = !c->url_long && path_len == 8 && memcmp(c->url, "/metrics", 8) == 0;
  bool health = !c->url_long && path_len == 8 && memcmp(c->url, "/healthz", 8) == 0;
  if (!metrics && !health)
    answer_text(c, 404, "Not Found", "", "not found: try /metrics or /healthz\n", head_only);
  else if (method != HTTP_GET && method != HTTP_HEAD)
    answer_text(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "method not allowed\n",
                false);
  else if (metrics)
    answer_metrics(c, head_only);
  else if (c->s->stopping)
    answer_text(c, 503, "Service Unavailable", "", "shutting down\n", head_only);
  else
    answer_text(c, 200, "OK", "", "ok\n", head_only);
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  struct mconn *c = p->data;
  if (c->url_len + len >= URL_MAX) {
    c->url_long = true;
    return 0;
  }
  memcpy(c->url + c->url_len, at, len);
  c->url_len += len;
  c->url[c->url_len] = '\0';
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  struct mconn *c = p->data;
  route(c);
  return HPE_PAUSED; /* one request per connection: the rest is not read */
}

static const llhttp_settings_t settings = {
    .on_url = on_url,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct mconn *c = h->data;
  *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct mconn *c = st->data;
  if (c->closing || c->answered || nread == 0)
    return;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  c->head_bytes += (size_t)nread;
  llhttp_errno_t err = llhttp_execute(&c->parser, buf->base, (size_t)nread);
  if (c->answered || c->closing)
    return;
  if (err != HPE_OK)
    answer_text(c, 400, "Bad Request", "", "bad request\n", false);
  else if (c->head_bytes > HEAD_MAX)
    answer_text(c, 431, "Request Header Fields Too Large", "", "request too large\n", false);
}

static void on_conn_timeout(uv_timer_t *t) { conn_close(t->data); }

static void on_connection(uv_stream_t *server, int status) {
  awf_metrics_server *s = server->data;
  if (status < 0 || s->closing)
    return;
  struct mconn *c = calloc(1, sizeof(*c));
  if (!c)
    return;
  c->s = s;
  awf_buf_init(&c->out, BODY_MAX + 1024);
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->open_handles = 2;
  awf_list_push_back(&s->conns, &c->link);
  s->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || s->nconns > AWF_METRICS_MAX_CLIENTS) {
    conn_close(c); /* over the bound: closed at once */
    return;
  }
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
  uv_timer_start(&c->timer, on_conn_timeout, CONN_TIMEOUT_MS, 0);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
    conn_close(c);
}

/* ---- the server ------------------------------------------------------------ */

static void on_listener_closed(uv_handle_t *h) {
  awf_metrics_server *s = h->data;
  s->listener_open = false;
  maybe_free_server(s);
}

static int start(uv_loop_t *loop, const struct awf_metrics_server_config *cfg,
                 const struct sockaddr *addr, int fd, struct sockaddr_storage *bound,
                 awf_metrics_server **out) {
  awf_metrics_server *s = calloc(1, sizeof(*s));
  if (!s) {
    if (fd >= 0)
      close(fd);
    return UV_ENOMEM;
  }
  s->loop = loop;
  s->cfg = *cfg;
  awf_list_init(&s->conns);
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  s->listener_open = true;
  int rc;
  if (fd >= 0) {
    rc = uv_tcp_open(&s->listener, fd);
    if (rc < 0)
      close(fd);
  } else {
    rc = uv_tcp_bind(&s->listener, addr, addr->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
  }
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&s->listener, 64, on_connection);
  if (rc == 0 && bound) {
    int len = sizeof(*bound);
    rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)bound, &len);
  }
  if (rc < 0) {
    s->closing = true;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    return rc;
  }
  *out = s;
  return 0;
}

int awf_metrics_server_new(uv_loop_t *loop, const struct awf_metrics_server_config *cfg,
                           const struct sockaddr *addr, struct sockaddr_storage *bound,
                           awf_metrics_server **out) {
  return start(loop, cfg, addr, -1, bound, out);
}

int awf_metrics_server_new_fd(uv_loop_t *loop, const struct awf_metrics_server_config *cfg,
                              int fd, awf_metrics_server **out) {
  return start(loop, cfg, NULL, fd, NULL, out);
}

void awf_metrics_server_set_stopping(awf_metrics_server *s) { s->stopping = true; }

void awf_metrics_server_close(awf_metrics_server *s) {
  if (s->closing)
    return;
  s->closing = true;
  uv_close((uv_handle_t *)&s->listener, on_listener_closed);
  struct awf_list *pos, *tmp;
  awf_list_each_safe(pos, tmp, &s->conns) {
    conn_close(awf_list_entry(pos, struct mconn, link));
  }
}
