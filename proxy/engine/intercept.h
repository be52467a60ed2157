/* intercept.h: TLS interception for one run (--ssl-bump): the per-run CA,
 * its leaf cache, the two TLS contexts (facing the client with a leaf,
 * facing the origin with verification) and the rule that says which hosts
 * are opened: only those some URL rule names (https:// ones, and http://
 * ones, whose hosts are URL-ruled on both schemes). Every other host is
 * tunnelled untouched, so pinned clients, mTLS and HTTP/2-only tools keep
 * working wherever no path rule asked for interception.
 *
 * The CA's key lives only in this process's memory; awf_intercept_ca_pem()
 * gives the certificate, never the key. */
#ifndef AWF_INTERCEPT_H
#define AWF_INTERCEPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "secrets.h"
#include "url_rules.h"

#define AWF_INTERCEPT_LEAF_CACHE 1024 /* leaves kept (a new name costs a key and a signature) */

typedef struct awf_intercept awf_intercept;

/* The CA (name constraints: the domains of the https:// rules' hosts and of
 * the secrets' hosts), the contexts, and the trust store for origins:
 * OpenSSL's default store of this process (SSL_CERT_FILE, SSL_CERT_DIR,
 * else the system's). rules and secrets (either may be NULL) are borrowed
 * and outlive the result. Returns 0, or a negative errno with the reason
 * in err. */
int awf_intercept_new(const awf_url_rules *rules, const awf_secrets *secrets,
                      awf_intercept **out, char *err, size_t errlen);
void awf_intercept_free(awf_intercept *ic);

/* A reload's rules: the hosts of their https:// rules are opened from now
 * on (connections already opened stay so). rules is borrowed, as above.
 * The CA and its name constraints stay those made at start. */
void awf_intercept_set_rules(awf_intercept *ic, const awf_url_rules *rules);

/* The first host rules would open (a URL rule's, either scheme) whose
 * leaves the CA's name constraints (fixed at start) do not permit: clients
 * that honour the constraints would refuse its leaf. NULL: every host is
 * within them, or the CA has none. */
const char *awf_intercept_outside(const awf_intercept *ic, const awf_url_rules *rules);

/* Is this host (lower case) opened? Those some https:// URL rule names, and
 * every host a secret is bound to (--secret). */
bool awf_intercept_wants(const awf_intercept *ic, const char *host, size_t len);

/* The CA certificate as PEM, malloc()ed, NUL-terminated; NULL: no memory. */
char *awf_intercept_ca_pem(const awf_intercept *ic, size_t *len);

/* Write the CA certificate (never the key) to path, mode 0644, replacing
 * it atomically. Returns 0 or a negative errno with the reason in err. */
int awf_intercept_write_ca(const awf_intercept *ic, const char *path, char *err, size_t errlen);

/* For the engine (tunnel.c, http_proxy.c): the contexts, shared by every
 * intercepted connection. */
SSL_CTX *awf_intercept_server_ctx(const awf_intercept *ic);
SSL_CTX *awf_intercept_client_ctx(const awf_intercept *ic);

/* A session of an earlier verified connection to host, to resume the next
 * one with (a handshake without a certificate chain to verify again), or
 * NULL. The reference is the caller's: SSL_SESSION_free() it. Sessions come
 * from the client context's new-session callback, at most
 * AWF_INTERCEPT_SESSIONS hosts, least recently stored first out. */
#define AWF_INTERCEPT_SESSIONS 256
SSL_SESSION *awf_intercept_session(awf_intercept *ic, const char *host);

/* Leaf cache counters, for diagnostics and the bench. */
void awf_intercept_stats(const awf_intercept *ic, uint64_t *hits, uint64_t *misses);

#endif
