/* tlsload: the bench harness's HTTPS load client (scenario 9), OpenSSL.
 *
 * wrk speaks TLS but not through a CONNECT proxy, and loadgen speaks no TLS:
 * this opens each connection directly or with CONNECT through a proxy, does
 * a full TLS handshake (no session resumption: no tickets, no session cache)
 * verifying the server's certificate against --cafile and the target's name,
 * and sends HTTP/1.1 GETs inside:
 *
 *   tlsload keepalive --target NAME:PORT (--connect IP:PORT | --proxy IP:PORT)
 *           --cafile PEM --path P [--expect-bytes N] --concurrency N --duration S
 *       each client keeps one connection and sends request after request;
 *   tlsload close ...  (the same options)
 *       each client opens a new connection (TCP, CONNECT, TLS) per request.
 *
 * One blocking thread per client (at most MAX_CLIENTS); every socket has a
 * receive and send timeout, so a run ends within duration + timeout. Counts
 * and latencies are taken after --warmup; errors are counted by kind at any
 * time and never as throughput. One JSON object on stdout at the end.
 *
 * Giving --cafile exactly the CA that should have signed the server's leaf
 * (the origin's test CA for a tunnel or a direct run, the proxy's CA for an
 * intercepted one) makes the run fail, with "verify" errors, when a proxy
 * intercepts what it should have tunnelled or the other way round; the
 * issuer seen is reported too. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "hist.h"

#define MAX_CLIENTS 256
#define MAX_SECONDS 3600.0
#define BUF_SIZE 16384
#define NS 1000000000.0

enum mode { M_KEEPALIVE, M_CLOSE };

struct opts {
  enum mode mode;
  const char *target; /* NAME:PORT: CONNECT, SNI, Host, the name verified */
  const char *connect;
  const char *proxy;
  const char *cafile;
  const char *path;
  long long expect_bytes; /* -1: any length */
  int concurrency;
  double duration, warmup, timeout;
};

struct errs {
  uint64_t connect, proxy, tls, verify, eof, status, short_body, proto, timeout;
};

struct client {
  pthread_t thread;
  struct shared *sh;
  struct hist lat, hs; /* per request (keepalive) or connection (close); handshakes */
  uint64_t ok, all, bytes, handshakes, reconnects; /* all: warm-up included */
  struct errs err;
  int bad_status;
  char issuer[256]; /* of the first leaf this client saw */
  char protocol[16];
  char leaf_key[32]; /* its key's type and size, "EC 256", "RSA 2048" */
  char detail[256];  /* the first TLS error's text */
};

struct shared {
  const struct opts *o;
  SSL_CTX *ctx;
  struct sockaddr_in dial;
  char host[256]; /* NAME of --target */
  char req[1024];
  size_t req_len;
  uint64_t t_count, t_end;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int counting(const struct shared *sh, uint64_t t) {
  return t >= sh->t_count && t < sh->t_end;
}

static int parse_ipport(const char *s, struct sockaddr_in *out) {
  char ip[64];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof ip)
    return -1;
  memcpy(ip, s, (size_t)(colon - s));
  ip[colon - s] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)port);
  if (*end != '\0' || port <= 0 || port > 65535 || inet_pton(AF_INET, ip, &out->sin_addr) != 1)
    return -1;
  return 0;
}

static void copy_clean(char *dst, size_t cap, const char *src) {
  size_t i = 0;
  for (; src[i] && i + 1 < cap; i++)
    dst[i] = (src[i] == '"' || src[i] == '\\' || (unsigned char)src[i] < 0x20) ? '?' : src[i];
  dst[i] = '\0';
}

static void note_tls(struct client *c, uint64_t *counter) {
  (*counter)++;
  if (c->detail[0] == '\0') {
    char buf[256];
    unsigned long e = ERR_peek_last_error();
    ERR_error_string_n(e, buf, sizeof buf);
    copy_clean(c->detail, sizeof c->detail, e ? buf : strerror(errno));
  }
  ERR_clear_error();
}

/* ---- one connection -------------------------------------------------------- */

struct conn {
  int fd;
  SSL *ssl;
  char buf[BUF_SIZE];
  size_t len; /* bytes in buf not yet consumed */
};

static void conn_close(struct conn *k) {
  if (k->ssl) {
    SSL_free(k->ssl);
    k->ssl = NULL;
  }
  if (k->fd >= 0)
    close(k->fd);
  k->fd = -1;
  k->len = 0;
}

static int set_timeouts(int fd, double secs) {
  struct timeval tv = {.tv_sec = (time_t)secs,
                       .tv_usec = (suseconds_t)((secs - (double)(time_t)secs) * 1e6)};
  int one = 1;
  return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) |
         setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) |
         setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* index just past "\r\n\r\n" in buf[0..len), or 0 */
static size_t head_end(const char *buf, size_t len) {
  for (size_t i = 3; i < len; i++)
    if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
      return i + 1;
  return 0;
}

static int head_status(const char *h) {
  if (strncmp(h, "HTTP/1.", 7) != 0 || h[8] != ' ')
    return -1;
  return atoi(h + 9);
}

/* The proxy's answer to CONNECT: 0 on 200; -1 with the error counted. */
static int tunnel(struct client *c, struct conn *k) {
  struct shared *sh = c->sh;
  char req[600];
  int n = snprintf(req, sizeof req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", sh->o->target,
                   sh->o->target);
  if (send(k->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
    c->err.connect++;
    return -1;
  }
  size_t end = 0;
  while ((end = head_end(k->buf, k->len)) == 0) {
    if (k->len == sizeof k->buf) {
      c->err.proto++;
      return -1;
    }
    ssize_t r = recv(k->fd, k->buf + k->len, sizeof k->buf - k->len, 0);
    if (r <= 0) {
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        c->err.timeout++;
      else
        c->err.eof++;
      return -1;
    }
    k->len += (size_t)r;
  }
  int st = head_status(k->buf);
  if (st != 200) {
    c->bad_status = st;
    c->err.proxy++;
    return -1;
  }
  if (end != k->len) { /* the server speaks only after the ClientHello */
    c->err.proto++;
    return -1;
  }
  k->len = 0;
  return 0;
}

static int conn_open(struct client *c, struct conn *k) {
  struct shared *sh = c->sh;
  k->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (k->fd < 0 || set_timeouts(k->fd, sh->o->timeout) != 0 ||
      connect(k->fd, (const struct sockaddr *)&sh->dial, sizeof sh->dial) != 0) {
    if (errno == EINPROGRESS || errno == EAGAIN)
      c->err.timeout++;
    else
      c->err.connect++;
    return -1;
  }
  if (sh->o->proxy && tunnel(c, k) < 0)
    return -1;
  uint64_t t0 = now_ns();
  k->ssl = SSL_new(sh->ctx);
  if (!k->ssl || SSL_set_fd(k->ssl, k->fd) != 1 ||
      SSL_set_tlsext_host_name(k->ssl, sh->host) != 1 || SSL_set1_host(k->ssl, sh->host) != 1) {
    note_tls(c, &c->err.tls);
    return -1;
  }
  int rc = SSL_connect(k->ssl);
  if (rc != 1) {
    int e = SSL_get_error(k->ssl, rc);
    long vr = SSL_get_verify_result(k->ssl);
    if (vr != X509_V_OK) {
      c->err.verify++;
      if (c->detail[0] == '\0')
        copy_clean(c->detail, sizeof c->detail, X509_verify_cert_error_string(vr));
      ERR_clear_error();
    } else if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c->err.timeout++;
    } else {
      note_tls(c, &c->err.tls);
    }
    return -1;
  }
  uint64_t t1 = now_ns();
  c->handshakes++;
  if (counting(sh, t1))
    hist_add(&c->hs, t1 - t0);
  if (c->issuer[0] == '\0') {
    X509 *leaf = SSL_get0_peer_certificate(k->ssl);
    char name[256] = "";
    if (leaf)
      X509_NAME_oneline(X509_get_issuer_name(leaf), name, sizeof name);
    copy_clean(c->issuer, sizeof c->issuer, name);
    copy_clean(c->protocol, sizeof c->protocol, SSL_get_version(k->ssl));
    EVP_PKEY *pk = leaf ? X509_get0_pubkey(leaf) : NULL;
    if (pk)
      snprintf(c->leaf_key, sizeof c->leaf_key, "%s %d",
               EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC    ? "EC"
               : EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA ? "RSA"
                                                          : "other",
               EVP_PKEY_get_bits(pk));
  }
  return 0;
}

/* Read more into k->buf: >0 bytes, or -1 with the error counted (a clean
 * end of the stream in *eof: an early EOF, or a short body). */
static int conn_read(struct client *c, struct conn *k, uint64_t *eof) {
  if (k->len == sizeof k->buf) {
    c->err.proto++;
    return -1;
  }
  int r = SSL_read(k->ssl, k->buf + k->len, (int)(sizeof k->buf - k->len));
  if (r > 0) {
    k->len += (size_t)r;
    return r;
  }
  int e = SSL_get_error(k->ssl, r);
  if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
    (*eof)++;
  else if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
    c->err.timeout++;
  else
    note_tls(c, &c->err.tls);
  ERR_clear_error();
  return -1;
}

/* The response head's Content-Length (-1: none; -2: chunked, which the
 * origin never sends for a file) and whether it says Connection: close. */
static long long content_length(const char *head, size_t len, int *close_after) {
  long long cl = -1;
  *close_after = 0;
  const char *end = head + len;
  for (const char *line = head; line < end;) {
    const char *nl = memchr(line, '\n', (size_t)(end - line));
    size_t ll = nl ? (size_t)(nl - line) : (size_t)(end - line);
    if (ll > 15 && strncasecmp(line, "Content-Length:", 15) == 0)
      cl = strtoll(line + 15, NULL, 10);
    else if (ll > 18 && strncasecmp(line, "Transfer-Encoding:", 18) == 0)
      return -2;
    else if (ll > 11 && strncasecmp(line, "Connection:", 11) == 0 &&
             memmem(line, ll, "close", 5) != NULL)
      *close_after = 1;
    line += ll + 1;
  }
  return cl;
}

/* One request and its whole response on an open connection: 0, or -1 with
 * the error counted (the connection is then closed by the caller). */
static int request(struct client *c, struct conn *k, int *server_closes) {
  struct shared *sh = c->sh;
  int w = SSL_write(k->ssl, sh->req, (int)sh->req_len);
  if (w != (int)sh->req_len) {
    note_tls(c, &c->err.eof);
    return -1;
  }
  size_t end;
  while ((end = head_end(k->buf, k->len)) == 0)
    if (conn_read(c, k, &c->err.eof) < 0)
      return -1;
  int st = head_status(k->buf);
  long long cl = content_length(k->buf, end, server_closes);
  if (st < 200 || st > 299) {
    c->bad_status = st;
    c->err.status++;
    return -1;
  }
  if (cl < 0 || (sh->o->expect_bytes >= 0 && cl != sh->o->expect_bytes)) {
    c->err.proto++;
    return -1;
  }
  while (k->len - end < (size_t)cl) {
    if (k->len == sizeof k->buf) { /* a large body: keep only what is past the head */
      c->bytes += k->len - end;
      cl -= (long long)(k->len - end);
      k->len = end;
    }
    if (conn_read(c, k, &c->err.short_body) < 0)
      return -1;
  }
  if (k->len - end != (size_t)cl) { /* bytes past the response: none were asked for */
    c->err.proto++;
    return -1;
  }
  c->bytes += (uint64_t)cl;
  k->len = 0;
  return 0;
}

static void *client_main(void *arg) {
  struct client *c = arg;
  struct shared *sh = c->sh;
  struct conn k = {.fd = -1};
  uint64_t t;
  while ((t = now_ns()) < sh->t_end) {
    if (k.fd < 0) {
      if (conn_open(c, &k) < 0) {
        conn_close(&k);
        usleep(10000); /* an error does not spin */
        continue;
      }
      if (sh->o->mode == M_KEEPALIVE && c->handshakes > 1)
        c->reconnects++;
    }
    int server_closes = 0;
    uint64_t t0 = sh->o->mode == M_CLOSE ? t : now_ns();
    if (request(c, &k, &server_closes) < 0) {
      conn_close(&k);
      usleep(10000);
      continue;
    }
    uint64_t t1 = now_ns();
    c->all++;
    if (counting(sh, t1)) {
      c->ok++;
      hist_add(&c->lat, t1 - t0);
    }
    if (sh->o->mode == M_CLOSE || server_closes) {
      if (sh->o->mode == M_CLOSE)
        SSL_shutdown(k.ssl); /* close_notify, not waiting for the peer's */
      conn_close(&k);
    }
  }
  conn_close(&k);
  ERR_clear_error();
  return NULL;
}

/* ---- run -------------------------------------------------------------------- */

static SSL_CTX *client_ctx(const char *cafile) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  static const unsigned char alpn[] = "\x08http/1.1";
  if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1 ||
      SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0) {
    ERR_print_errors_fp(stderr);
    SSL_CTX_free(ctx);
    return NULL;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  return ctx;
}

static void report(const struct opts *o, const struct shared *sh, struct client *cs, int n) {
  struct client sum = {0};
  const char *issuer = "", *protocol = "", *leaf_key = "", *detail = "";
  for (int i = 0; i < n; i++) {
    struct client *c = &cs[i];
    hist_merge(&sum.lat, &c->lat);
    hist_merge(&sum.hs, &c->hs);
    sum.ok += c->ok;
    sum.all += c->all;
    sum.bytes += c->bytes;
    sum.handshakes += c->handshakes;
    sum.reconnects += c->reconnects;
    const uint64_t *a = (const uint64_t *)&c->err;
    uint64_t *b = (uint64_t *)&sum.err;
    for (size_t j = 0; j < sizeof c->err / sizeof(uint64_t); j++)
      b[j] += a[j];
    if (c->bad_status)
      sum.bad_status = c->bad_status;
    if (!*issuer && c->issuer[0]) {
      issuer = c->issuer;
      protocol = c->protocol;
      leaf_key = c->leaf_key;
    }
    if (!*detail && c->detail[0])
      detail = c->detail;
  }
  double secs = (double)(sh->t_end - sh->t_count) / NS;
  const struct errs *e = &sum.err;
  uint64_t total = e->connect + e->proxy + e->tls + e->verify + e->eof + e->status +
                   e->short_body + e->proto + e->timeout;
  printf("{\"mode\":\"%s\",\"seconds\":%.3f,\"ok\":%" PRIu64 ",\"requests_all\":%" PRIu64
         ",\"rate\":%.1f,\"bytes\":%" PRIu64 ",\"handshakes\":%" PRIu64
         ",\"reconnects\":%" PRIu64 ",\"concurrency\":%d,",
         o->mode == M_CLOSE ? "close" : "keepalive", secs, sum.ok, sum.all,
         (double)sum.ok / secs, sum.bytes, sum.handshakes, sum.reconnects, n);
  printf("\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
         "\"handshake_p50_us\":%.1f,\"handshake_p99_us\":%.1f,",
         hist_pct_us(&sum.lat, 50), hist_pct_us(&sum.lat, 90), hist_pct_us(&sum.lat, 99),
         (double)sum.lat.max / 1000.0, hist_pct_us(&sum.hs, 50), hist_pct_us(&sum.hs, 99));
  printf("\"issuer\":\"%s\",\"protocol\":\"%s\",\"leaf_key\":\"%s\",\"bad_status\":%d,"
         "\"error_detail\":\"%s\",",
         issuer, protocol, leaf_key, sum.bad_status, detail);
  printf("\"errors\":{\"connect\":%" PRIu64 ",\"proxy\":%" PRIu64 ",\"tls\":%" PRIu64
         ",\"verify\":%" PRIu64 ",\"eof\":%" PRIu64 ",\"status\":%" PRIu64
         ",\"short_body\":%" PRIu64 ",\"proto\":%" PRIu64 ",\"timeout\":%" PRIu64
         ",\"total\":%" PRIu64 "}}\n",
         e->connect, e->proxy, e->tls, e->verify, e->eof, e->status, e->short_body, e->proto,
         e->timeout, total);
}

static int run(const struct opts *o) {
  static struct shared sh;
  sh.o = o;
  const char *colon = strrchr(o->target, ':');
  size_t hl = colon ? (size_t)(colon - o->target) : 0;
  if (hl == 0 || hl >= sizeof sh.host) {
    fprintf(stderr, "tlsload: --target NAME:PORT\n");
    return 2;
  }
  memcpy(sh.host, o->target, hl);
  sh.host[hl] = '\0';
  if (parse_ipport(o->proxy ? o->proxy : o->connect, &sh.dial) < 0) {
    fprintf(stderr, "tlsload: --proxy/--connect IPv4:PORT\n");
    return 2;
  }
  int n = snprintf(sh.req, sizeof sh.req,
                   "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: awf-bench%s\r\n\r\n", o->path,
                   o->target, o->mode == M_CLOSE ? "\r\nConnection: close" : "");
  if (n < 0 || (size_t)n >= sizeof sh.req) {
    fprintf(stderr, "tlsload: request too long\n");
    return 2;
  }
  sh.req_len = (size_t)n;
  sh.ctx = client_ctx(o->cafile);
  if (!sh.ctx)
    return 1;
  uint64_t t0 = now_ns();
  sh.t_count = t0 + (uint64_t)(o->warmup * NS);
  sh.t_end = t0 + (uint64_t)(o->duration * NS);
  struct client *cs = calloc((size_t)o->concurrency, sizeof *cs);
  if (!cs)
    return 1;
  int started = 0;
  for (; started < o->concurrency; started++) {
    cs[started].sh = &sh;
    if (pthread_create(&cs[started].thread, NULL, client_main, &cs[started]) != 0) {
      fprintf(stderr, "tlsload: cannot start client %d\n", started);
      break;
    }
  }
  for (int i = 0; i < started; i++)
    pthread_join(cs[i].thread, NULL);
  if (started > 0)
    report(o, &sh, cs, started);
  free(cs);
  SSL_CTX_free(sh.ctx);
  return started == o->concurrency ? 0 : 1;
}

static void usage(void) {
  fprintf(stderr,
          "usage: tlsload keepalive|close --target NAME:PORT (--connect IP:PORT | --proxy "
          "IP:PORT)\n"
          "       --cafile PEM --path P [--expect-bytes N] [--concurrency N]\n"
          "       [--duration S] [--warmup S] [--timeout S]\n");
}

static int parse_num(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
    return -1;
  *out = v;
  return 0;
}

static int parse_opt(struct opts *o, const char *name, const char *val) {
  double v;
  if (strcmp(name, "--target") == 0)
    o->target = val;
  else if (strcmp(name, "--connect") == 0)
    o->connect = val;
  else if (strcmp(name, "--proxy") == 0)
    o->proxy = val;
  else if (strcmp(name, "--cafile") == 0)
    o->cafile = val;
  else if (strcmp(name, "--path") == 0)
    o->path = val;
  else if (strcmp(name, "--expect-bytes") == 0 && parse_num(val, -1, 1e15, &v) == 0)
    o->expect_bytes = (long long)v;
  else if (strcmp(name, "--concurrency") == 0 && parse_num(val, 1, MAX_CLIENTS, &v) == 0)
    o->concurrency = (int)v;
  else if (strcmp(name, "--duration") == 0 && parse_num(val, 0.1, MAX_SECONDS, &v) == 0)
    o->duration = v;
  else if (strcmp(name, "--warmup") == 0 && parse_num(val, 0, MAX_SECONDS, &v) == 0)
    o->warmup = v;
  else if (strcmp(name, "--timeout") == 0 && parse_num(val, 0.1, 60, &v) == 0)
    o->timeout = v;
  else
    return -1;
  return 0;
}

int main(int argc, char **argv) {
  struct opts o = {.expect_bytes = -1, .concurrency = 1, .duration = 5, .timeout = 5};
  if (argc < 2 || (strcmp(argv[1], "keepalive") != 0 && strcmp(argv[1], "close") != 0)) {
    usage();
    return 2;
  }
  o.mode = strcmp(argv[1], "close") == 0 ? M_CLOSE : M_KEEPALIVE;
  for (int i = 2; i < argc; i += 2) {
    if (i + 1 >= argc || parse_opt(&o, argv[i], argv[i + 1]) < 0) {
      fprintf(stderr, "tlsload: bad option %s\n", argv[i]);
      usage();
      return 2;
    }
  }
  if (!o.target || !o.cafile || !o.path || o.path[0] != '/' || (!o.proxy == !o.connect) ||
      o.warmup >= o.duration) {
    usage();
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  return run(&o);
}
