/* truststore.h: the trust material a sandbox needs to trust the per-run CA
 * (ca.h), built from PEM text in memory, for the sandbox's files: the bundle
 * (the host's bundle, then the CA), the name OpenSSL's hashed-directory
 * lookup (-CApath, SSL_CERT_DIR) finds the CA under, and a PKCS#12
 * truststore for Java. Pure: no file is read or written here. */
#ifndef AWF_TLS_TRUSTSTORE_H
#define AWF_TLS_TRUSTSTORE_H

#include <stddef.h>

/* The password of the PKCS#12 truststore: Java's well-known default. The
 * store holds only public certificates; the password guards nothing. */
#define AWF_TRUSTSTORE_PASSWORD "changeit"

/* The Oracle trusted-key-usage attribute every certificate bag carries:
 * Java's PKCS12 KeyStore skips certificate-only entries without it. */
#define AWF_TRUSTSTORE_JDK_TRUST_OID "2.16.840.1.113894.746875.1.1"

/* host[0..host_len) then ca[0..ca_len), with a newline between them when the
 * host's text does not end with one; malloc()ed and NUL-terminated, *len
 * (if not NULL) its length. host may be NULL (no host bundle). NULL when out
 * of memory. */
char *awf_truststore_bundle(const char *host, size_t host_len, const char *ca, size_t ca_len,
                            size_t *len);

/* X509_subject_name_hash of the first certificate in pem: the <hash> of the
 * "<hash>.<n>" name OpenSSL's hashed directories use. 0, or -1 when pem
 * holds no certificate. */
int awf_truststore_subject_hash(const char *pem, size_t len, unsigned long *hash);

/* Every certificate of the PEM text pem[0..len) ("CERTIFICATE" and
 * "TRUSTED CERTIFICATE" blocks; others, keys included, are skipped) as a
 * PKCS#12 truststore: one unencrypted safe of certificate bags, in order,
 * each with a unique friendly name (Java's alias: "cert-N", N from 0) and
 * the JDK trust attribute (anyExtendedKeyUsage), and a SHA-256 MAC under
 * AWF_TRUSTSTORE_PASSWORD. The certificates are copied as DER, checked to be
 * one DER SEQUENCE each but not parsed (that would cost ~12 ms for a system
 * bundle). *der is malloc()ed (free()),
 * *n_certs how many it holds. 0, or -1 with the reason in err (no
 * certificate, a block that is not DER, out of memory). */
int awf_truststore_pkcs12(const char *pem, size_t len, unsigned char **der, size_t *der_len,
                          size_t *n_certs, char *err, size_t errsz);

#endif
