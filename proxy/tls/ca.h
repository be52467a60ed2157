/* ca.h: the per-run certificate authority that TLS interception signs its
 * leaf certificates with. The key is an ECDSA P-256 key made in memory and
 * never written anywhere: only the certificate can be exported (PEM). The
 * certificate is valid from a few minutes before its creation (clocks that
 * lag) to the end of the run, at most a day; it is a CA (basicConstraints
 * CA:TRUE, critical; keyUsage keyCertSign and cRLSign, critical) and, when
 * given names, carries name constraints that permit only those DNS names
 * (and their subdomains) to clients that honour them. */
#ifndef AWF_TLS_CA_H
#define AWF_TLS_CA_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define AWF_CA_BACKDATE 300             /* seconds before creation it is valid from */
#define AWF_CA_MAX_LIFETIME (24 * 3600) /* seconds after creation, at most */

struct awf_ca_opts {
  time_t now;               /* creation time (0: time(NULL)) */
  long lifetime;            /* seconds after now (0 or over the cap: AWF_CA_MAX_LIFETIME) */
  const char *const *names; /* DNS names the CA may sign for (nameConstraints); */
  size_t n_names;           /* none: no constraints */
};

struct awf_ca;

/* A new CA, or NULL with the reason in err. Names must be host names
 * (hostname.h); they are normalised. The first call initialises OpenSSL
 * without its configuration file (the TLS contexts do the same). */
struct awf_ca *awf_ca_new(const struct awf_ca_opts *opts, char *err, size_t errsz);
void awf_ca_free(struct awf_ca *ca);

/* Borrowed: valid while the CA lives. The key is for signing leaves only. */
X509 *awf_ca_cert(const struct awf_ca *ca);
EVP_PKEY *awf_ca_key(const struct awf_ca *ca);
time_t awf_ca_not_before(const struct awf_ca *ca);
time_t awf_ca_not_after(const struct awf_ca *ca);

/* The certificate (never the key) as PEM, malloc()ed and NUL-terminated;
 * *len (if not NULL) gets its length. NULL when out of memory. */
char *awf_ca_cert_pem(const struct awf_ca *ca, size_t *len);

/* For ca.c and leaf.c: a fresh ECDSA P-256 key; a random positive 127-bit
 * serial set on cert; an extension in OpenSSL's config syntax added to
 * cert. 0 or -1. */
EVP_PKEY *awf_tls_new_p256_key(void);
int awf_tls_set_random_serial(X509 *cert);
int awf_tls_add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value);

#endif
