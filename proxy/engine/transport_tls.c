/* transport_tls.c: transport.h as TLS over another transport, with OpenSSL
 * on memory BIOs (transport_tls.h). */
#include "transport_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "hostname.h"

static const unsigned char ALPN_HTTP11[] = "\x08http/1.1";

static struct awf_tls_transport *tls_of(const struct awf_transport *t) {
  return (struct awf_tls_transport *)t;
}

static void pump(struct awf_tls_transport *tt);

/* Stop: the owner hears the end through on_read, and a pending shutdown
 * through on_shutdown. */
static void fail(struct awf_tls_transport *tt, enum awf_tls_error kind, const char *why) {
  if (tt->failed)
    return;
  tt->failed = true;
  if (tt->error == AWF_TLS_OK)
    tt->error = kind;
  long vr = tt->ssl ? SSL_get_verify_result(tt->ssl) : X509_V_OK;
  if (kind == AWF_TLS_ERR_VERIFY ||
      (tt->error == AWF_TLS_ERR_HANDSHAKE && vr != X509_V_OK && !SSL_is_server(tt->ssl))) {
    tt->error = AWF_TLS_ERR_VERIFY;
    snprintf(tt->detail, sizeof(tt->detail), "certificate verify failed: %s",
             X509_verify_cert_error_string(vr));
  } else if (!tt->detail[0]) {
    unsigned long e = ERR_peek_error();
    if (why)
      snprintf(tt->detail, sizeof(tt->detail), "%s", why);
    else if (e)
      ERR_error_string_n(e, tt->detail, sizeof(tt->detail));
    else
      snprintf(tt->detail, sizeof(tt->detail), "TLS failure");
  }
  ERR_clear_error();
  awf_transport_want_read(tt->inner, false);
  if (!tt->base.eof) {
    uv_buf_t none = uv_buf_init(NULL, 0);
    awf_transport_read_done(&tt->base, UV_EPROTO, &none);
  }
  if (tt->base.closing)
    return;
  if (tt->shut_wanted && !tt->shut_sent) {
    tt->shut_sent = true;
    awf_transport_shutdown_done(&tt->base, UV_EPROTO);
  }
}

/* Hand the ciphertext OpenSSL produced to the inner transport. */
static int flush(struct awf_tls_transport *tt) {
  char *data;
  long n = BIO_get_mem_data(tt->wbio, &data);
  if (n <= 0)
    return 0;
  uv_buf_t b = uv_buf_init(data, (unsigned)n);
  int rc = awf_transport_write(tt->inner, &b, 1);
  (void)BIO_reset(tt->wbio);
  return rc;
}

/* The inner is read during the handshake, and afterwards while the owner
 * reads (holding the owner holds the inner: TCP's backpressure). */
static void update_inner_read(struct awf_tls_transport *tt, bool owner_reading) {
  if (tt->base.closing || tt->failed)
    return;
  awf_transport_want_read(tt->inner, !tt->inner_eof && (!tt->handshaken || owner_reading));
}

static void report_written(struct awf_tls_transport *tt) {
  if (!tt->owed)
    return;
  if (awf_transport_queued(&tt->base) == 0)
    tt->owed = false;
  awf_transport_write_done(&tt->base, 0);
}

static int do_shutdown(struct awf_tls_transport *tt) {
  ERR_clear_error();
  SSL_shutdown(tt->ssl); /* close_notify out; the peer's is not waited for */
  ERR_clear_error();
  int rc = flush(tt);
  if (rc < 0)
    return rc;
  tt->shut_sent = true;
  rc = awf_transport_shutdown(tt->inner);
  if (rc < 0)
    tt->shut_sent = false;
  return rc;
}

static int write_plain(struct awf_tls_transport *tt, const char *p, size_t len) {
  while (len > 0) {
    int n = len > (1u << 30) ? 1 << 30 : (int)len;
    ERR_clear_error();
    if (SSL_write(tt->ssl, p, n) != n)
      return UV_EPROTO;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static void after_handshake(struct awf_tls_transport *tt) {
  tt->handshaken = true;
  if (tt->pend_len > 0) {
    int rc = write_plain(tt, tt->pend, tt->pend_len);
    free(tt->pend);
    tt->pend = NULL;
    tt->pend_len = tt->pend_cap = 0;
    if (rc == 0)
      rc = flush(tt);
    if (rc < 0) {
      fail(tt, AWF_TLS_ERR_INNER, uv_strerror(rc));
      return;
    }
    if (awf_transport_queued(tt->inner) == 0)
      report_written(tt);
    if (tt->base.closing)
      return;
  }
  if (tt->shut_wanted && !tt->shut_sent) {
    int rc = do_shutdown(tt);
    if (rc < 0) {
      tt->shut_sent = true;
      awf_transport_shutdown_done(&tt->base, rc);
      if (tt->base.closing)
        return;
    }
  }
  pump(tt);
}

static void pump_handshake(struct awf_tls_transport *tt) {
  ERR_clear_error();
  int rc = SSL_do_handshake(tt->ssl);
  int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(tt->ssl, rc);
  int frc = flush(tt); /* our flight, or the alert of a failure */
  if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) {
    fail(tt, AWF_TLS_ERR_HANDSHAKE, NULL);
    return;
  }
  if (frc < 0) {
    fail(tt, AWF_TLS_ERR_INNER, uv_strerror(frc));
    return;
  }
  if (rc == 1) {
    after_handshake(tt);
    return;
  }
  if (tt->inner_eof) {
    fail(tt, AWF_TLS_ERR_HANDSHAKE, "the peer left during the handshake");
    return;
  }
  update_inner_read(tt, tt->base.reading);
}

/* Plaintext to the owner while it reads. */
static void pump_read(struct awf_tls_transport *tt) {
  while (tt->base.reading && !tt->base.closing && !tt->failed) {
    ERR_clear_error();
    int n = SSL_read(tt->ssl, tt->rbuf, (int)tt->rbuf_len);
    if (n > 0) {
      uv_buf_t b = uv_buf_init(tt->rbuf, (unsigned)n);
      awf_transport_read_done(&tt->base, n, &b);
      continue;
    }
    int e = SSL_get_error(tt->ssl, n);
    uv_buf_t none = uv_buf_init(NULL, 0);
    if (e == SSL_ERROR_ZERO_RETURN) {
      awf_transport_read_done(&tt->base, UV_EOF, &none);
    } else if (e == SSL_ERROR_WANT_READ) {
      if (!tt->inner_eof)
        break;
      tt->truncated = tt->inner_err == UV_EOF;
      awf_transport_read_done(&tt->base, tt->inner_err, &none);
    } else {
      fail(tt, AWF_TLS_ERR_PROTOCOL, NULL);
      return;
    }
  }
  if (tt->base.closing || tt->failed)
    return;
  int rc = flush(tt); /* what reading made OpenSSL say (a key update's answer) */
  if (rc < 0) {
    fail(tt, AWF_TLS_ERR_INNER, uv_strerror(rc));
    return;
  }
  update_inner_read(tt, tt->base.reading);
}

static void pump(struct awf_tls_transport *tt) {
  if (tt->base.closing || tt->failed)
    return;
  if (!tt->handshaken)
    pump_handshake(tt);
  else
    pump_read(tt);
}

static void on_idle(uv_idle_t *h) {
  uv_idle_stop(h);
  pump(h->data);
}

/* The inner transport's events. */

static void in_read(void *owner, struct awf_transport *t, ssize_t nread, const uv_buf_t *buf) {
  struct awf_tls_transport *tt = owner;
  (void)t;
  if (tt->base.closing || tt->failed)
    return;
  if (nread > 0) {
    if (BIO_write(tt->rbio, buf->base, (int)nread) != (int)nread) {
      fail(tt, AWF_TLS_ERR_INNER, "out of memory");
      return;
    }
  } else if (nread < 0) {
    tt->inner_eof = true;
    tt->inner_err = (int)nread;
  }
  pump(tt);
}

static void in_flow(void *owner, struct awf_transport *t, enum awf_transport_flow flow) {
  struct awf_tls_transport *tt = owner;
  (void)t;
  /* FULL: this transport's own count (which includes the inner's queue) says
   * so to its owner in awf_transport_write(). */
  if (flow == AWF_TRANSPORT_DRAINED && !tt->base.closing)
    report_written(tt);
}

static void in_write_error(void *owner, struct awf_transport *t, int status) {
  struct awf_tls_transport *tt = owner;
  (void)t;
  if (!tt->base.closing)
    awf_transport_write_done(&tt->base, status);
}

static void in_shutdown(void *owner, struct awf_transport *t, int status) {
  struct awf_tls_transport *tt = owner;
  (void)t;
  if (tt->shut_sent && !tt->failed)
    awf_transport_shutdown_done(&tt->base, status);
}

static void maybe_closed(struct awf_tls_transport *tt) {
  if (!tt->inner_closed || !tt->idle_closed)
    return;
  SSL_free(tt->ssl); /* and its BIOs */
  tt->ssl = NULL;
  free(tt->pend);
  tt->pend = NULL;
  awf_transport_closed(&tt->base);
}

static void in_closed(void *owner, struct awf_transport *t) {
  struct awf_tls_transport *tt = owner;
  (void)t;
  tt->inner_closed = true;
  maybe_closed(tt);
}

static const struct awf_transport_cbs inner_cbs = {in_read, in_flow, in_write_error,
                                                   in_shutdown, in_closed};

/* The ops. */

static int tls_read_start(struct awf_transport *t) {
  struct awf_tls_transport *tt = tls_of(t);
  /* Plaintext OpenSSL holds already: delivered on the next turn, never from
   * inside the owner's call. */
  uv_idle_start(&tt->idle, on_idle);
  return 0;
}

static void tls_read_stop(struct awf_transport *t) {
  struct awf_tls_transport *tt = tls_of(t);
  if (tt->handshaken)
    uv_idle_stop(&tt->idle);
  update_inner_read(tt, false);
}

static int tls_write(struct awf_transport *t, const uv_buf_t *bufs, unsigned n) {
  struct awf_tls_transport *tt = tls_of(t);
  if (tt->failed)
    return UV_EPROTO;
  if (tt->shut_wanted)
    return UV_EPIPE;
  if (!tt->handshaken) {
    size_t add = 0;
    for (unsigned i = 0; i < n; i++)
      add += bufs[i].len;
    if (add == 0)
      return 0;
    if (tt->pend_len + add > tt->pend_cap) {
      size_t cap = tt->pend_cap ? tt->pend_cap : 4096;
      while (cap < tt->pend_len + add)
        cap *= 2;
      char *p = realloc(tt->pend, cap);
      if (!p)
        return UV_ENOMEM;
      tt->pend = p;
      tt->pend_cap = cap;
    }
    for (unsigned i = 0; i < n; i++) {
      memcpy(tt->pend + tt->pend_len, bufs[i].base, bufs[i].len);
      tt->pend_len += bufs[i].len;
    }
    tt->owed = true;
    return 1;
  }
  for (unsigned i = 0; i < n; i++)
    if (write_plain(tt, bufs[i].base, bufs[i].len) < 0)
      return UV_EPROTO;
  int rc = flush(tt);
  if (rc < 0)
    return rc;
  if (awf_transport_queued(tt->inner) == 0)
    return 0;
  tt->owed = true;
  return 1;
}

static size_t tls_queued(const struct awf_transport *t) {
  const struct awf_tls_transport *tt = tls_of(t);
  return tt->pend_len + (size_t)BIO_ctrl_pending(tt->wbio) + awf_transport_queued(tt->inner);
}

static int tls_shutdown(struct awf_transport *t) {
  struct awf_tls_transport *tt = tls_of(t);
  if (tt->failed)
    return UV_EPROTO;
  if (tt->shut_wanted)
    return UV_EALREADY;
  tt->shut_wanted = true;
  if (!tt->handshaken)
    return 0; /* after the handshake and what waits for it */
  int rc = do_shutdown(tt);
  if (rc < 0)
    tt->shut_wanted = false;
  return rc;
}

static void on_idle_closed(uv_handle_t *h) {
  struct awf_tls_transport *tt = h->data;
  tt->idle_closed = true;
  maybe_closed(tt);
}

static void tls_close(struct awf_transport *t) {
  struct awf_tls_transport *tt = tls_of(t);
  uv_close((uv_handle_t *)&tt->idle, on_idle_closed);
  awf_transport_close(tt->inner);
}

static int tls_fileno(const struct awf_transport *t) {
  (void)t;
  return -1;
}

static const struct awf_transport_ops tls_ops = {
    .name = "tls",
    .read_start = tls_read_start,
    .read_stop = tls_read_stop,
    .write = tls_write,
    .queued = tls_queued,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .fileno = tls_fileno,
};

/* The contexts. */

static int on_servername(SSL *ssl, int *alert, void *arg) {
  struct awf_leaf_cache *cache = arg;
  struct awf_tls_transport *tt = SSL_get_app_data(ssl);
  const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  const char *name = sni ? sni : tt->name;
  const struct awf_leaf *leaf = NULL;
  awf_leaf_cache_lock(cache); /* the leaf is borrowed until SSL_use_*() took it */
  if (!name[0])
    snprintf(tt->detail, sizeof(tt->detail), "no SNI and no name to make a certificate for");
  else
    leaf = awf_leaf_cache_get(cache, name, 0, tt->detail, sizeof(tt->detail));
  bool used = leaf && SSL_use_certificate(ssl, leaf->cert) == 1 &&
              SSL_use_PrivateKey(ssl, leaf->key) == 1 &&
              SSL_add1_chain_cert(ssl, awf_ca_cert(cache->ca)) == 1;
  if (used)
    snprintf(tt->sni, sizeof(tt->sni), "%s", leaf->name);
  awf_leaf_cache_unlock(cache);
  if (!used) {
    tt->error = AWF_TLS_ERR_NO_CERT;
    if (!tt->detail[0])
      snprintf(tt->detail, sizeof(tt->detail), "cannot use the certificate");
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg) {
  (void)ssl;
  (void)arg;
  unsigned char *sel;
  if (SSL_select_next_proto(&sel, outlen, ALPN_HTTP11, sizeof(ALPN_HTTP11) - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK; /* h2 only: no ALPN, the client may fall back */
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *ctx_new(const SSL_METHOD *m, char *err, size_t errsz) {
  /* No configuration file: it could name engines or providers to load. */
  OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
  SSL_CTX *ctx = SSL_CTX_new(m);
  if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    snprintf(err, errsz, "TLS: cannot make a context");
    SSL_CTX_free(ctx);
    return NULL;
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  /* Neither side may renegotiate: a peer asking again and again costs a
   * handshake each time, and TLS 1.3 has none anyway. */
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  return ctx;
}

SSL_CTX *awf_tls_server_ctx_new(struct awf_leaf_cache *cache, char *err, size_t errsz) {
  SSL_CTX *ctx = ctx_new(TLS_server_method(), err, errsz);
  if (!ctx)
    return NULL;
  SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
  SSL_CTX_set_tlsext_servername_arg(ctx, cache);
  SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
  return ctx;
}

SSL_CTX *awf_tls_client_ctx_new(X509_STORE *trust, char *err, size_t errsz) {
  SSL_CTX *ctx = ctx_new(TLS_client_method(), err, errsz);
  if (!ctx)
    return NULL;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set1_cert_store(ctx, trust);
  if (SSL_CTX_set_alpn_protos(ctx, ALPN_HTTP11, sizeof(ALPN_HTTP11) - 1) != 0) {
    snprintf(err, errsz, "TLS: cannot set ALPN");
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

/* The client's expectations: SNI and the name verified. */
static int set_peer_name(SSL *ssl, const char *name) {
  struct sockaddr_storage ss;
  if (awf_ip_literal_parse(name, strlen(name), &ss) > 0)
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 ? 0 : UV_EINVAL;
  char norm[AWF_HOSTNAME_MAX + 1];
  if (awf_hostname_normalize(name, strlen(name), norm, sizeof(norm)) < 0)
    return UV_EINVAL;
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set_tlsext_host_name(ssl, norm) != 1 || SSL_set1_host(ssl, norm) != 1)
    return UV_ENOMEM;
  return 0;
}

int awf_tls_transport_wrap(struct awf_tls_transport *tt, uv_loop_t *loop,
                           struct awf_transport *inner, SSL_CTX *ctx,
                           const struct awf_tls_params *params,
                           const struct awf_transport_cbs *cbs, void *owner, char *rbuf,
                           size_t rbuf_len) {
  const char *name = params->name ? params->name : "";
  bool client = params->role == AWF_TLS_CLIENT;
  if ((client && !name[0]) || strlen(name) >= sizeof(tt->name) || rbuf_len == 0)
    return UV_EINVAL;
  memset(tt, 0, sizeof(*tt));
  SSL *ssl = SSL_new(ctx);
  BIO *rbio = BIO_new(BIO_s_mem());
  BIO *wbio = BIO_new(BIO_s_mem());
  if (!ssl || !rbio || !wbio) {
    SSL_free(ssl);
    BIO_free(rbio);
    BIO_free(wbio);
    return UV_ENOMEM;
  }
  SSL_set_bio(ssl, rbio, wbio);
  int rc = client ? set_peer_name(ssl, name) : 0;
  if (rc == 0 && client && params->session && SSL_set_session(ssl, params->session) != 1)
    rc = UV_ENOMEM;
  if (rc == 0 && params->pre_len > 0 &&
      BIO_write(rbio, params->pre, (int)params->pre_len) != (int)params->pre_len)
    rc = UV_ENOMEM;
  if (rc < 0) {
    SSL_free(ssl);
    return rc;
  }
  if (client)
    SSL_set_connect_state(ssl);
  else
    SSL_set_accept_state(ssl);
  SSL_set_app_data(ssl, tt);
  awf_transport_init(&tt->base, &tls_ops, cbs, owner);
  tt->inner = inner;
  tt->ssl = ssl;
  tt->rbio = rbio;
  tt->wbio = wbio;
  tt->rbuf = rbuf;
  tt->rbuf_len = rbuf_len;
  snprintf(tt->name, sizeof(tt->name), "%s", name);
  uv_idle_init(loop, &tt->idle);
  tt->idle.data = tt;
  uv_idle_start(&tt->idle, on_idle);
  awf_transport_set_owner(inner, &inner_cbs, tt);
  awf_transport_want_read(inner, true);
  return 0;
}

struct awf_tls_transport *awf_tls_transport_of(struct awf_transport *t) {
  return t && t->ops == &tls_ops ? tls_of(t) : NULL;
}

bool awf_tls_transport_handshaken(const struct awf_tls_transport *tt) { return tt->handshaken; }
enum awf_tls_error awf_tls_transport_error(const struct awf_tls_transport *tt) {
  return tt->error;
}
const char *awf_tls_transport_error_detail(const struct awf_tls_transport *tt) {
  return tt->detail;
}
bool awf_tls_transport_truncated(const struct awf_tls_transport *tt) { return tt->truncated; }
const char *awf_tls_transport_sni(const struct awf_tls_transport *tt) { return tt->sni; }
