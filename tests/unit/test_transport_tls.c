/* test_transport_tls.c: the TLS transport (transport_tls.c) as server and
 * client over a pair of in-memory inner transports joined to each other:
 * the handshake with a leaf of the per-run CA chosen by SNI, data both ways,
 * ALPN http/1.1, the upstream's name verified (a wrong name or an unknown CA
 * fails as a verify error), close_notify as the end and its absence flagged,
 * backpressure through the layer (FULL, then DRAINED), and one on_closed
 * after both the inner and the layer closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/x509v3.h>

#include "transport_tls.h"

/* An inner transport: what is written waits in its queue until the test
 * moves it to the peer (while the peer reads and the direction flows). */
struct fake {
  struct awf_transport base;
  struct fake *peer;
  char *q;
  size_t qlen, qcap;
  bool flowing; /* the test lets its queue go to the peer */
  bool shut, eof_sent, shut_reported;
  bool close_pending, closed;
};

static struct fake *fake_of(const struct awf_transport *t) { return (struct fake *)t; }
static int f_read_start(struct awf_transport *t) {
  (void)t;
  return 0;
}
static void f_read_stop(struct awf_transport *t) { (void)t; }
static int f_write(struct awf_transport *t, const uv_buf_t *bufs, unsigned n) {
  struct fake *f = fake_of(t);
  for (unsigned i = 0; i < n; i++) {
    if (f->qlen + bufs[i].len > f->qcap) {
      f->qcap = (f->qlen + bufs[i].len) * 2;
      f->q = realloc(f->q, f->qcap);
      assert_non_null(f->q);
    }
    memcpy(f->q + f->qlen, bufs[i].base, bufs[i].len);
    f->qlen += bufs[i].len;
  }
  return f->qlen > 0 ? 1 : 0;
}
static size_t f_queued(const struct awf_transport *t) { return fake_of(t)->qlen; }
static int f_shutdown(struct awf_transport *t) {
  fake_of(t)->shut = true;
  return 0;
}
static void f_close(struct awf_transport *t) { fake_of(t)->close_pending = true; }
static int f_fileno(const struct awf_transport *t) {
  (void)t;
  return 7;
}
static const struct awf_transport_ops fake_ops = {"fake",  f_read_start, f_read_stop,
                                                  f_write, f_queued,     f_shutdown,
                                                  f_close, f_fileno};

/* Move some of f's queue to its peer; report shutdown and close. */
static bool fake_step(struct fake *f) {
  bool moved = false;
  struct fake *p = f->peer;
  if (f->close_pending && !f->closed) {
    f->closed = true;
    awf_transport_closed(&f->base);
    return true;
  }
  if (f->closed || p->closed || p->close_pending)
    return false;
  if (f->flowing && f->qlen > 0 && p->base.reading) {
    static char chunk[16384];
    size_t n = f->qlen < sizeof(chunk) ? f->qlen : sizeof(chunk);
    memcpy(chunk, f->q, n);
    memmove(f->q, f->q + n, f->qlen - n);
    f->qlen -= n;
    uv_buf_t b = uv_buf_init(chunk, (unsigned)n);
    awf_transport_read_done(&p->base, (ssize_t)n, &b);
    if (!f->base.closing)
      awf_transport_write_done(&f->base, 0);
    moved = true;
  } else if (f->shut && f->qlen == 0 && !f->eof_sent && p->base.reading) {
    f->eof_sent = true;
    awf_transport_read_done(&p->base, UV_EOF, NULL);
    moved = true;
  }
  if (f->shut && f->qlen == 0 && !f->shut_reported && !f->base.closing) {
    f->shut_reported = true;
    awf_transport_shutdown_done(&f->base, 0);
    moved = true;
  }
  return moved;
}

/* One side: the TLS transport, its inner, and what its owner heard. */
struct side {
  struct awf_tls_transport tt;
  struct fake inner;
  char rbuf[16384];
  char *got;
  size_t got_len, got_cap;
  ssize_t end; /* 0 until on_read reports the end */
  int full, drained, write_errors, shutdowns, shutdown_status, closed;
};

static void o_read(void *owner, struct awf_transport *t, ssize_t nread, const uv_buf_t *buf) {
  struct side *s = owner;
  assert_ptr_equal(t, &s->tt.base);
  if (nread < 0) {
    s->end = nread;
    return;
  }
  assert_ptr_equal(buf->base, s->rbuf);
  if (s->got_len + (size_t)nread > s->got_cap) {
    s->got_cap = (s->got_len + (size_t)nread) * 2;
    s->got = realloc(s->got, s->got_cap);
    assert_non_null(s->got);
  }
  memcpy(s->got + s->got_len, buf->base, (size_t)nread);
  s->got_len += (size_t)nread;
}
static void o_flow(void *owner, struct awf_transport *t, enum awf_transport_flow f) {
  struct side *s = owner;
  (void)t;
  if (f == AWF_TRANSPORT_FULL)
    s->full++;
  else
    s->drained++;
}
static void o_write_error(void *owner, struct awf_transport *t, int status) {
  (void)t;
  (void)status;
  ((struct side *)owner)->write_errors++;
}
static void o_shutdown(void *owner, struct awf_transport *t, int status) {
  struct side *s = owner;
  (void)t;
  s->shutdowns++;
  s->shutdown_status = status;
}
static void o_closed(void *owner, struct awf_transport *t) {
  (void)t;
  ((struct side *)owner)->closed++;
}
static const struct awf_transport_cbs cbs = {o_read, o_flow, o_write_error, o_shutdown,
                                             o_closed};
static void no_read(void *o, struct awf_transport *t, ssize_t n, const uv_buf_t *b) {
  (void)o, (void)t, (void)n, (void)b;
  fail_msg("an inner transport's event reached its first owner");
}
static const struct awf_transport_cbs unowned = {no_read, NULL, NULL, NULL, NULL};

struct world {
  uv_loop_t loop;
  struct awf_ca *ca, *other_ca;
  struct awf_leaf_cache cache;
  SSL_CTX *server_ctx, *client_ctx, *stranger_ctx;
  struct side server, client;
};

static int setup(void **state) {
  struct world *w = calloc(1, sizeof(*w));
  assert_non_null(w);
  assert_int_equal(uv_loop_init(&w->loop), 0);
  char err[256];
  struct awf_ca_opts o = {0};
  w->ca = awf_ca_new(&o, err, sizeof(err));
  w->other_ca = awf_ca_new(&o, err, sizeof(err));
  assert_non_null(w->ca);
  assert_non_null(w->other_ca);
  assert_int_equal(awf_leaf_cache_init(&w->cache, w->ca, 8), 0);
  w->server_ctx = awf_tls_server_ctx_new(&w->cache, err, sizeof(err));
  assert_non_null(w->server_ctx);
  X509_STORE *trust = X509_STORE_new();
  X509_STORE_add_cert(trust, awf_ca_cert(w->ca));
  w->client_ctx = awf_tls_client_ctx_new(trust, err, sizeof(err));
  X509_STORE_free(trust); /* the context holds its own reference */
  trust = X509_STORE_new();
  X509_STORE_add_cert(trust, awf_ca_cert(w->other_ca));
  w->stranger_ctx = awf_tls_client_ctx_new(trust, err, sizeof(err));
  X509_STORE_free(trust);
  assert_non_null(w->client_ctx);
  assert_non_null(w->stranger_ctx);
  struct fake *a = &w->server.inner, *b = &w->client.inner;
  awf_transport_init(&a->base, &fake_ops, &unowned, NULL);
  awf_transport_init(&b->base, &fake_ops, &unowned, NULL);
  a->peer = b;
  b->peer = a;
  a->flowing = b->flowing = true;
  *state = w;
  return 0;
}

static void wrap(struct world *w, const char *server_name, SSL_CTX *client_ctx,
                 const char *client_name) {
  struct awf_tls_params sp = {.role = AWF_TLS_SERVER, .name = server_name};
  struct awf_tls_params cp = {.role = AWF_TLS_CLIENT, .name = client_name};
  assert_int_equal(awf_tls_transport_wrap(&w->server.tt, &w->loop, &w->server.inner.base,
                                          w->server_ctx, &sp, &cbs, &w->server, w->server.rbuf,
                                          sizeof(w->server.rbuf)),
                   0);
  assert_int_equal(awf_tls_transport_wrap(&w->client.tt, &w->loop, &w->client.inner.base,
                                          client_ctx, &cp, &cbs, &w->client, w->client.rbuf,
                                          sizeof(w->client.rbuf)),
                   0);
  assert_ptr_equal(w->server.inner.base.owner, &w->server.tt);
}

/* Turn the loop and move bytes until cond holds (or nothing moves). */
#define RUN_UNTIL(w, cond)                              \
  do {                                                  \
    for (int i_ = 0; i_ < 100000 && !(cond); i_++) {    \
      bool m_ = uv_run(&(w)->loop, UV_RUN_NOWAIT) != 0; \
      m_ = fake_step(&(w)->server.inner) || m_;         \
      m_ = fake_step(&(w)->client.inner) || m_;         \
      if (!m_)                                          \
        break;                                          \
    }                                                   \
  } while (0)

static void close_both(struct world *w) {
  if (!w->server.tt.base.closing)
    awf_transport_close(&w->server.tt.base);
  if (!w->client.tt.base.closing)
    awf_transport_close(&w->client.tt.base);
  RUN_UNTIL(w, w->server.closed && w->client.closed);
  assert_int_equal(w->server.closed, 1);
  assert_int_equal(w->client.closed, 1);
  assert_true(w->server.inner.closed);
  assert_true(w->client.inner.closed);
}

static int teardown(void **state) {
  struct world *w = *state;
  assert_int_equal(uv_loop_close(&w->loop), 0);
  SSL_CTX_free(w->server_ctx);
  SSL_CTX_free(w->client_ctx);
  SSL_CTX_free(w->stranger_ctx);
  awf_leaf_cache_free(&w->cache);
  awf_ca_free(w->ca);
  awf_ca_free(w->other_ca);
  free(w->server.inner.q);
  free(w->client.inner.q);
  free(w->server.got);
  free(w->client.got);
  free(w);
  return 0;
}

static void write_str(struct side *s, const char *text) {
  uv_buf_t b = uv_buf_init((char *)text, (unsigned)strlen(text));
  assert_int_equal(awf_transport_write(&s->tt.base, &b, 1), 0);
}

static void test_handshake_data_and_close_notify(void **state) {
  struct world *w = *state;
  wrap(w, NULL, w->client_ctx, "Allowed.Test");
  awf_transport_want_read(&w->server.tt.base, true);
  awf_transport_want_read(&w->client.tt.base, true);
  /* written before the handshake: waits, counted as queued */
  write_str(&w->client, "GET /ok/x HTTP/1.1\r\nHost: allowed.test\r\n\r\n");
  assert_true(awf_transport_queued(&w->client.tt.base) > 0);
  assert_false(awf_tls_transport_handshaken(&w->client.tt));
  RUN_UNTIL(w, w->server.got_len == 42);
  assert_true(awf_tls_transport_handshaken(&w->server.tt));
  assert_true(awf_tls_transport_handshaken(&w->client.tt));
  assert_memory_equal(w->server.got, "GET /ok/x HTTP/1.1\r\nHost: allowed.test\r\n\r\n", 42);
  assert_string_equal(awf_tls_transport_sni(&w->server.tt), "allowed.test");
  assert_int_equal(SSL_get_verify_result(w->client.tt.ssl), X509_V_OK);
  assert_int_equal(awf_tls_transport_error(&w->client.tt), AWF_TLS_OK);
  /* ALPN: http/1.1 */
  const unsigned char *alpn;
  unsigned alen;
  SSL_get0_alpn_selected(w->client.tt.ssl, &alpn, &alen);
  assert_int_equal(alen, 8);
  assert_memory_equal(alpn, "http/1.1", 8);
  /* the client's certificate came from the run's CA, for the name */
  X509 *peer = SSL_get1_peer_certificate(w->client.tt.ssl);
  assert_non_null(peer);
  assert_int_equal(X509_check_host(peer, "allowed.test", 0, 0, NULL), 1);
  assert_int_equal(X509_check_issued(awf_ca_cert(w->ca), peer), X509_V_OK);
  X509_free(peer);
  assert_int_equal(w->cache.misses, 1);
  /* the other way; the inner's ciphertext is not the plaintext */
  w->server.inner.flowing = false;
  write_str(&w->server, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  assert_non_null(w->server.inner.q);
  assert_null(memmem(w->server.inner.q, w->server.inner.qlen, "200 OK", 6));
  w->server.inner.flowing = true;
  RUN_UNTIL(w, w->client.got_len == 40);
  assert_memory_equal(w->client.got, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 40);
  /* the client ends: close_notify, then the inner's shutdown */
  assert_int_equal(awf_transport_shutdown(&w->client.tt.base), 0);
  RUN_UNTIL(w, w->server.end != 0 && w->client.shutdowns == 1);
  assert_int_equal(w->server.end, UV_EOF);
  assert_false(awf_tls_transport_truncated(&w->server.tt));
  assert_int_equal(w->client.shutdowns, 1);
  assert_int_equal(w->client.shutdown_status, 0);
  /* half-closed: the server still answers */
  write_str(&w->server, "more");
  RUN_UNTIL(w, w->client.got_len == 44);
  assert_memory_equal(w->client.got + 40, "more", 4);
  assert_int_equal(w->client.write_errors + w->server.write_errors, 0);
  assert_int_equal(awf_transport_fileno(&w->client.tt.base), -1);
  close_both(w);
}

static void test_no_sni_uses_the_given_name_and_a_wrong_name_fails(void **state) {
  struct world *w = *state;
  /* the client expects an IP (no SNI): the server's leaf is for its name */
  wrap(w, "allowed.test", w->client_ctx, "192.0.2.1");
  awf_transport_want_read(&w->server.tt.base, true);
  awf_transport_want_read(&w->client.tt.base, true);
  RUN_UNTIL(w, w->client.end != 0 && w->server.end != 0);
  assert_int_equal(w->client.end, UV_EPROTO);
  assert_int_equal(awf_tls_transport_error(&w->client.tt), AWF_TLS_ERR_VERIFY);
  assert_non_null(strstr(awf_tls_transport_error_detail(&w->client.tt), "IP address mismatch"));
  assert_string_equal(awf_tls_transport_sni(&w->server.tt), "allowed.test");
  assert_int_equal(w->server.end, UV_EPROTO); /* the client's alert */
  assert_int_equal(awf_tls_transport_error(&w->server.tt), AWF_TLS_ERR_HANDSHAKE);
  /* writes fail now */
  uv_buf_t b = uv_buf_init("x", 1);
  assert_int_equal(awf_transport_write(&w->client.tt.base, &b, 1), UV_EPROTO);
  close_both(w);
}

static void test_sni_other_than_the_expected_name_fails(void **state) {
  struct world *w = *state;
  wrap(w, NULL, w->client_ctx, "allowed.test");
  /* as if the upstream answered for another name than the one expected */
  SSL_set_tlsext_host_name(w->client.tt.ssl, "other.test");
  write_str(&w->client, "GET / HTTP/1.1\r\n\r\n");
  RUN_UNTIL(w, w->client.end != 0);
  assert_int_equal(w->client.end, UV_EPROTO);
  assert_int_equal(awf_tls_transport_error(&w->client.tt), AWF_TLS_ERR_VERIFY);
  assert_non_null(strstr(awf_tls_transport_error_detail(&w->client.tt), "mismatch"));
  assert_string_equal(awf_tls_transport_sni(&w->server.tt), "other.test");
  assert_int_equal(w->server.got_len, 0); /* nothing of the request reached it */
  close_both(w);
}

static void test_unknown_ca_fails(void **state) {
  struct world *w = *state;
  wrap(w, NULL, w->stranger_ctx, "allowed.test");
  awf_transport_want_read(&w->client.tt.base, true);
  assert_int_equal(awf_transport_shutdown(&w->client.tt.base), 0); /* waits for the handshake */
  RUN_UNTIL(w, w->client.end != 0);
  assert_int_equal(w->client.end, UV_EPROTO);
  assert_int_equal(awf_tls_transport_error(&w->client.tt), AWF_TLS_ERR_VERIFY);
  /* the server sends its CA along: a self-signed one nobody trusts here */
  assert_string_equal(
      awf_tls_transport_error_detail(&w->client.tt),
      "certificate verify failed: self-signed certificate in certificate chain");
  assert_int_equal(w->client.shutdowns, 1);
  assert_int_equal(w->client.shutdown_status, UV_EPROTO);
  close_both(w);
}

static void test_bad_sni_gets_no_certificate(void **state) {
  struct world *w = *state;
  wrap(w, NULL, w->client_ctx, "allowed.test");
  SSL_set_tlsext_host_name(w->client.tt.ssl, "bad_name!");
  awf_transport_want_read(&w->server.tt.base, true);
  awf_transport_want_read(&w->client.tt.base, true);
  RUN_UNTIL(w, w->server.end != 0 && w->client.end != 0);
  assert_int_equal(awf_tls_transport_error(&w->server.tt), AWF_TLS_ERR_NO_CERT);
  assert_int_equal(awf_tls_transport_error(&w->client.tt), AWF_TLS_ERR_HANDSHAKE);
  assert_int_equal(w->cache.count, 0);
  close_both(w);
}

static void test_client_without_a_name_is_refused(void **state) {
  struct world *w = *state;
  struct awf_tls_params cp = {.role = AWF_TLS_CLIENT, .name = NULL};
  assert_int_equal(awf_tls_transport_wrap(&w->client.tt, &w->loop, &w->client.inner.base,
                                          w->client_ctx, &cp, &cbs, &w->client, w->client.rbuf,
                                          sizeof(w->client.rbuf)),
                   UV_EINVAL);
  cp.name = "not a name";
  assert_int_equal(awf_tls_transport_wrap(&w->client.tt, &w->loop, &w->client.inner.base,
                                          w->client_ctx, &cp, &cbs, &w->client, w->client.rbuf,
                                          sizeof(w->client.rbuf)),
                   UV_EINVAL);
  assert_ptr_equal(w->client.inner.base.cbs, &unowned); /* untouched */
}

static void test_truncation_is_flagged(void **state) {
  struct world *w = *state;
  wrap(w, NULL, w->client_ctx, "allowed.test");
  awf_transport_want_read(&w->server.tt.base, true);
  write_str(&w->client, "hello");
  RUN_UNTIL(w, w->server.got_len == 5);
  /* the client's inner ends without close_notify */
  assert_int_equal(awf_transport_shutdown(&w->client.inner.base), 0);
  w->client.inner.shut_reported = true; /* nobody to tell: the layer did not ask */
  RUN_UNTIL(w, w->server.end != 0);
  assert_int_equal(w->server.end, UV_EOF);
  assert_true(awf_tls_transport_truncated(&w->server.tt));
  close_both(w);
}

static void test_held_reader_gets_its_bytes_later(void **state) {
  struct world *w = *state;
  wrap(w, NULL, w->client_ctx, "allowed.test");
  awf_transport_want_read(&w->server.tt.base, true);
  RUN_UNTIL(w, awf_tls_transport_handshaken(&w->server.tt));
  awf_transport_hold(&w->server.tt.base, true);
  static char big[100000];
  for (size_t i = 0; i < sizeof(big); i++)
    big[i] = (char)(i * 7);
  uv_buf_t b = uv_buf_init(big, sizeof(big));
  awf_transport_write(&w->client.tt.base, &b, 1);
  RUN_UNTIL(w, false);
  assert_int_equal(w->server.got_len, 0); /* held: nothing read */
  assert_false(w->server.inner.base.reading);
  awf_transport_hold(&w->server.tt.base, false);
  RUN_UNTIL(w, w->server.got_len == sizeof(big));
  assert_memory_equal(w->server.got, big, sizeof(big));
  close_both(w);
}

static void test_backpressure_full_then_drained(void **state) {
  struct world *w = *state;
  wrap(w, NULL, w->client_ctx, "allowed.test");
  awf_transport_want_read(&w->server.tt.base, true);
  RUN_UNTIL(w, awf_tls_transport_handshaken(&w->client.tt) &&
                   awf_tls_transport_handshaken(&w->server.tt));
  assert_int_equal(w->client.drained, 0); /* the handshake's writes are not the owner's */
  /* the client's ciphertext stops going anywhere */
  w->client.inner.flowing = false;
  static char block[64 * 1024];
  size_t sent = 0;
  while (!w->client.full && sent < (size_t)16 * 1024 * 1024) {
    uv_buf_t b = uv_buf_init(block, sizeof(block));
    assert_int_equal(awf_transport_write(&w->client.tt.base, &b, 1), 0);
    sent += sizeof(block);
  }
  assert_int_equal(w->client.full, 1);
  assert_true(w->client.tt.base.full);
  assert_true(awf_transport_queued(&w->client.tt.base) > AWF_TRANSPORT_HIGH_WATER);
  assert_int_equal(w->client.drained, 0);
  w->client.inner.flowing = true;
  RUN_UNTIL(w, w->client.drained > 0);
  assert_false(w->client.tt.base.full);
  assert_true(awf_transport_queued(&w->client.tt.base) < AWF_TRANSPORT_HIGH_WATER / 2);
  RUN_UNTIL(w, w->server.got_len == sent);
  assert_int_equal(w->server.got_len, sent);
  assert_int_equal(awf_transport_queued(&w->client.tt.base), 0);
  assert_int_equal(w->client.write_errors, 0);
  close_both(w);
}

static void test_close_during_handshake(void **state) {
  struct world *w = *state;
  wrap(w, NULL, w->client_ctx, "allowed.test");
  write_str(&w->client, "early");
  close_both(w);
  assert_int_equal(w->client.write_errors, 0);
}

/* A tunnel read the ClientHello (to judge its SNI) before deciding to
 * intercept: those bytes are handed to the server side first. */
static void test_server_takes_a_peeked_client_hello(void **state) {
  struct world *w = *state;
  struct awf_tls_params cp = {.role = AWF_TLS_CLIENT, .name = "allowed.test"};
  assert_int_equal(awf_tls_transport_wrap(&w->client.tt, &w->loop, &w->client.inner.base,
                                          w->client_ctx, &cp, &cbs, &w->client, w->client.rbuf,
                                          sizeof(w->client.rbuf)),
                   0);
  uv_run(&w->loop, UV_RUN_NOWAIT); /* the client's first flight */
  struct fake *ci = &w->client.inner;
  assert_true(ci->qlen > 5);
  assert_int_equal(ci->q[0], 0x16); /* a handshake record */
  char *hello = malloc(ci->qlen);
  assert_non_null(hello);
  size_t hello_len = ci->qlen;
  memcpy(hello, ci->q, hello_len);
  ci->qlen = 0; /* consumed by the "tunnel" */
  struct awf_tls_params sp = {.role = AWF_TLS_SERVER, .pre = hello, .pre_len = hello_len};
  assert_int_equal(awf_tls_transport_wrap(&w->server.tt, &w->loop, &w->server.inner.base,
                                          w->server_ctx, &sp, &cbs, &w->server, w->server.rbuf,
                                          sizeof(w->server.rbuf)),
                   0);
  free(hello); /* copied */
  awf_transport_want_read(&w->server.tt.base, true);
  write_str(&w->client, "ping");
  RUN_UNTIL(w, w->server.got_len == 4);
  assert_memory_equal(w->server.got, "ping", 4);
  assert_string_equal(awf_tls_transport_sni(&w->server.tt), "allowed.test");
  close_both(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_handshake_data_and_close_notify, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_sni_uses_the_given_name_and_a_wrong_name_fails,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_sni_other_than_the_expected_name_fails, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_unknown_ca_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_sni_gets_no_certificate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_without_a_name_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_truncation_is_flagged, setup, teardown),
      cmocka_unit_test_setup_teardown(test_held_reader_gets_its_bytes_later, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backpressure_full_then_drained, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_during_handshake, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_takes_a_peeked_client_hello, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
