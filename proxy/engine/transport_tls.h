/* transport_tls.h: TLS over another transport (transport.h), for
 * interception: the server side faces a client with a leaf certificate of
 * the per-run CA (proxy/tls), the client side faces an upstream and verifies
 * it. OpenSSL works on memory BIOs; the ciphertext goes through the inner
 * transport (the TCP one), so the owner sees plaintext through the same
 * struct awf_transport as plain TCP.
 *
 * - Server: the leaf comes from the cache for the SNI the client sends (a
 *   servername callback), or for params.name when it sends none. ALPN: only
 *   http/1.1 is offered; a client asking for other protocols only gets no
 *   ALPN answer.
 * - Client: SNI params.name (not for an IP), the peer verified against the
 *   trust store of the SSL_CTX and params.name (SSL_VERIFY_PEER and
 *   SSL_set1_host, or the IP); never skipped. ALPN http/1.1.
 *
 * Backpressure goes through the layer: what the owner wrote counts as queued
 * until the inner transport has written its ciphertext, so the inner's
 * queue makes this one FULL, and the inner's DRAINED becomes this one's.
 * Writes before the handshake finished wait in a buffer (counted as queued).
 *
 * The end: the peer's close_notify is UV_EOF; the inner stream ending without
 * one is UV_EOF too, with awf_tls_transport_truncated() true; a handshake or
 * record failure ends reading with UV_EPROTO, whatever the owner wants read,
 * and awf_tls_transport_error() says which (a verify failure is its own kind,
 * for the owner to map to a reason). awf_transport_shutdown() sends
 * close_notify, then shuts the inner down. Closing closes the inner; on_closed
 * follows once both it and the transport's idle handle are closed. fileno is
 * -1: no splice through TLS. */
#ifndef AWF_TRANSPORT_TLS_H
#define AWF_TRANSPORT_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "leaf.h"
#include "transport.h"

enum awf_tls_role { AWF_TLS_SERVER, AWF_TLS_CLIENT };

enum awf_tls_error {
  AWF_TLS_OK,
  AWF_TLS_ERR_VERIFY,    /* client: the peer's certificate or name did not verify */
  AWF_TLS_ERR_NO_CERT,   /* server: no leaf for the name asked (bad SNI, CA over) */
  AWF_TLS_ERR_HANDSHAKE, /* any other handshake failure, or the peer left during it */
  AWF_TLS_ERR_PROTOCOL,  /* a bad record after the handshake */
  AWF_TLS_ERR_INNER,     /* the inner transport refused a write */
};

struct awf_tls_params {
  enum awf_tls_role role;
  /* client: the upstream's name (host or IP), required; server: the leaf's
   * name when the client sends no SNI (may be NULL: then one is required) */
  const char *name;
  /* server: bytes already read from the inner transport (the ClientHello a
   * tunnel peeked at), fed to TLS first; copied */
  const void *pre;
  size_t pre_len;
  /* client: a session of an earlier connection to name, to resume (may be
   * NULL; its reference is taken) */
  SSL_SESSION *session;
};

struct awf_tls_transport {
  struct awf_transport base;   /* first */
  struct awf_transport *inner; /* owned from wrap on: closed with this one */
  SSL *ssl;
  BIO *rbio, *wbio; /* ciphertext in from the inner, out to it (owned by ssl) */
  uv_idle_t idle;   /* runs the handshake's start and reads the owner resumed */
  char *rbuf;       /* the owner's read buffer, lent to it in on_read */
  size_t rbuf_len;
  char name[256];
  char sni[256]; /* server: the name the leaf was made for */
  char *pend;    /* plaintext written before the handshake finished */
  size_t pend_len, pend_cap;
  bool handshaken, failed, truncated;
  bool owed; /* a write returned 1: write_done reports follow */
  bool shut_wanted, shut_sent;
  bool inner_eof;
  int inner_err; /* the inner's end (UV_EOF or an error) */
  bool inner_closed, idle_closed;
  enum awf_tls_error error;
  char detail[160];
};

/* Contexts, made once per run and shared by every connection; free with
 * SSL_CTX_free() after the last transport using it is closed. The server's
 * takes leaves from cache (borrowed: it outlives the context); the client's
 * trusts only trust (its reference is taken). NULL with the reason in err. */
SSL_CTX *awf_tls_server_ctx_new(struct awf_leaf_cache *cache, char *err, size_t errsz);
SSL_CTX *awf_tls_client_ctx_new(X509_STORE *trust, char *err, size_t errsz);

/* Layer TLS over inner (whose events come here from now on) and start the
 * handshake on the loop's next turn. rbuf: where reads land for the owner.
 * Returns 0, or a uv error (UV_EINVAL: a client without a name; UV_ENOMEM)
 * with inner untouched. */
int awf_tls_transport_wrap(struct awf_tls_transport *tt, uv_loop_t *loop,
                           struct awf_transport *inner, SSL_CTX *ctx,
                           const struct awf_tls_params *params,
                           const struct awf_transport_cbs *cbs, void *owner, char *rbuf,
                           size_t rbuf_len);

/* t as a TLS transport, or NULL when it is another kind. */
struct awf_tls_transport *awf_tls_transport_of(struct awf_transport *t);

bool awf_tls_transport_handshaken(const struct awf_tls_transport *tt);
enum awf_tls_error awf_tls_transport_error(const struct awf_tls_transport *tt);
/* The failure in words (OpenSSL's or the verifier's), "" when none. */
const char *awf_tls_transport_error_detail(const struct awf_tls_transport *tt);
/* The stream ended without the peer's close_notify. */
bool awf_tls_transport_truncated(const struct awf_tls_transport *tt);
/* Server: the name the leaf was made for ("" before the ClientHello). */
const char *awf_tls_transport_sni(const struct awf_tls_transport *tt);

#endif
