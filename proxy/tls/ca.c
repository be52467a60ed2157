/* ca.c: the per-run CA (ca.h), with OpenSSL's X.509 code. */
#include "ca.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "errbuf.h"
#include "hostname.h"

struct awf_ca {
  X509 *cert;
  EVP_PKEY *key;
  time_t not_before, not_after;
};

EVP_PKEY *awf_tls_new_p256_key(void) { return EVP_EC_gen("P-256"); }

int awf_tls_set_random_serial(X509 *cert) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof(raw)) != 1)
    return -1;
  raw[0] &= 0x7f; /* positive */
  raw[0] |= 0x40; /* and never zero, always 16 bytes */
  BIGNUM *bn = BN_bin2bn(raw, sizeof(raw), NULL);
  ASN1_INTEGER *serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
  int rc = serial && X509_set_serialNumber(cert, serial) == 1 ? 0 : -1;
  ASN1_INTEGER_free(serial);
  BN_free(bn);
  return rc;
}

int awf_tls_add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value) {
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
  if (!ext)
    return -1;
  int rc = X509_add_ext(cert, ext, -1) == 1 ? 0 : -1;
  X509_EXTENSION_free(ext);
  return rc;
}

/* nameConstraints: permitted;DNS:<name> for each name, critical. */
static int add_name_constraints(X509 *cert, const char *const *names, size_t n, char *err,
                                size_t errsz) {
  NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
  if (!nc || !(nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null()))
    goto oom;
  for (size_t i = 0; i < n; i++) {
    char norm[AWF_HOSTNAME_MAX + 1];
    if (awf_hostname_normalize(names[i], strlen(names[i]), norm, sizeof(norm)) < 0) {
      NAME_CONSTRAINTS_free(nc);
      char q[80];
      return awf_errbuf_fail(err, errsz, -1, "CA name constraint: not a host name: \"%s\"",
                             awf_errbuf_quote(names[i], strlen(names[i]), q, sizeof(q)));
    }
    GENERAL_SUBTREE *st = GENERAL_SUBTREE_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    if (!st || !s || ASN1_STRING_set(s, norm, (int)strlen(norm)) != 1) {
      GENERAL_SUBTREE_free(st);
      ASN1_IA5STRING_free(s);
      goto oom;
    }
    GENERAL_NAME_set0_value(st->base, GEN_DNS, s);
    if (!sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, st)) {
      GENERAL_SUBTREE_free(st);
      goto oom;
    }
  }
  int rc = X509_add1_ext_i2d(cert, NID_name_constraints, nc, 1, X509V3_ADD_DEFAULT) == 1 ? 0
                                                                                         : -1;
  NAME_CONSTRAINTS_free(nc);
  return rc < 0 ? awf_errbuf_fail(err, errsz, -1, "CA: cannot add name constraints") : 0;
oom:
  NAME_CONSTRAINTS_free(nc);
  return awf_errbuf_fail(err, errsz, -1, "CA: out of memory");
}

static int build_cert(struct awf_ca *ca, const struct awf_ca_opts *o, char *err, size_t errsz) {
  X509 *c = ca->cert;
  if (X509_set_version(c, 2) != 1 || awf_tls_set_random_serial(c) < 0 ||
      !X509_time_adj_ex(X509_getm_notBefore(c), 0, 0, &ca->not_before) ||
      !X509_time_adj_ex(X509_getm_notAfter(c), 0, 0, &ca->not_after))
    return awf_errbuf_fail(err, errsz, -1, "CA: cannot set serial or validity");
  X509_NAME *name = X509_get_subject_name(c);
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"awf", -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 (const unsigned char *)"awf per-run interception CA", -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(c, name) != 1 || X509_set_pubkey(c, ca->key) != 1)
    return awf_errbuf_fail(err, errsz, -1, "CA: cannot set names or key");
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, c, c, NULL, NULL, 0);
  if (awf_tls_add_ext(c, &ctx, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
      awf_tls_add_ext(c, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
      awf_tls_add_ext(c, &ctx, NID_subject_key_identifier, "hash") < 0)
    return awf_errbuf_fail(err, errsz, -1, "CA: cannot add extensions");
  if (o->n_names > 0 && add_name_constraints(c, o->names, o->n_names, err, errsz) < 0)
    return -1;
  if (X509_sign(c, ca->key, EVP_sha256()) <= 0)
    return awf_errbuf_fail(err, errsz, -1, "CA: cannot sign its certificate");
  return 0;
}

struct awf_ca *awf_ca_new(const struct awf_ca_opts *opts, char *err, size_t errsz) {
  /* No OpenSSL configuration file: it could name engines or providers to
   * load, and the host's settings are not the run's. */
  OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
  struct awf_ca_opts o = *opts;
  if (o.now == 0)
    o.now = time(NULL);
  if (o.lifetime <= 0 || o.lifetime > AWF_CA_MAX_LIFETIME)
    o.lifetime = AWF_CA_MAX_LIFETIME;
  struct awf_ca *ca = calloc(1, sizeof(*ca));
  if (!ca) {
    awf_errbuf_fail(err, errsz, -1, "CA: out of memory");
    return NULL;
  }
  ca->not_before = o.now - AWF_CA_BACKDATE;
  ca->not_after = o.now + o.lifetime;
  ca->key = awf_tls_new_p256_key();
  ca->cert = X509_new();
  if (!ca->key || !ca->cert) {
    awf_errbuf_fail(err, errsz, -1, "CA: cannot make a P-256 key");
    awf_ca_free(ca);
    return NULL;
  }
  if (build_cert(ca, &o, err, errsz) < 0) {
    awf_ca_free(ca);
    return NULL;
  }
  return ca;
}

void awf_ca_free(struct awf_ca *ca) {
  if (!ca)
    return;
  X509_free(ca->cert);
  EVP_PKEY_free(ca->key);
  free(ca);
}

X509 *awf_ca_cert(const struct awf_ca *ca) { return ca->cert; }
EVP_PKEY *awf_ca_key(const struct awf_ca *ca) { return ca->key; }
time_t awf_ca_not_before(const struct awf_ca *ca) { return ca->not_before; }
time_t awf_ca_not_after(const struct awf_ca *ca) { return ca->not_after; }

char *awf_ca_cert_pem(const struct awf_ca *ca, size_t *len) {
  BIO *mem = BIO_new(BIO_s_mem());
  char *out = NULL;
  if (mem && PEM_write_bio_X509(mem, ca->cert) == 1) {
    char *data;
    long n = BIO_get_mem_data(mem, &data);
    out = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (out) {
      memcpy(out, data, (size_t)n);
      out[n] = '\0';
      if (len)
        *len = (size_t)n;
    }
  }
  BIO_free(mem);
  return out;
}
