/* truststore.c: the sandbox's trust material (truststore.h), with OpenSSL's
 * PEM and PKCS#12 code. */
#include "truststore.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "errbuf.h"

/* The MAC's key derivation rounds: OpenSSL's default (PKCS12_DEFAULT_ITER). */
#define MAC_ITERATIONS 2048

char *awf_truststore_bundle(const char *host, size_t host_len, const char *ca, size_t ca_len,
                            size_t *len) {
  if (!host)
    host_len = 0;
  size_t nl = host_len > 0 && host[host_len - 1] != '\n';
  if (host_len > SIZE_MAX - ca_len - nl - 1)
    return NULL;
  char *out = malloc(host_len + nl + ca_len + 1);
  if (!out)
    return NULL;
  if (host_len)
    memcpy(out, host, host_len);
  if (nl)
    out[host_len] = '\n';
  memcpy(out + host_len + nl, ca, ca_len);
  out[host_len + nl + ca_len] = '\0';
  if (len)
    *len = host_len + nl + ca_len;
  return out;
}

/* The next certificate block of bio, as DER (OPENSSL_malloc'd, the
 * certificate alone: a TRUSTED CERTIFICATE's trust settings are cut off):
 * 1, 0 at the end, -1 for a block that is not one DER SEQUENCE. Blocks of
 * other kinds are skipped. The certificate is not parsed further: OpenSSL
 * 3.0 takes about 80 microseconds to parse one, 12 ms for a system bundle. */
static int next_cert_der(BIO *bio, unsigned char **der, long *der_len) {
  for (;;) {
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    if (PEM_read_bio(bio, &name, &header, &data, &len) != 1) {
      ERR_clear_error(); /* the end of the text (PEM_R_NO_START_LINE) */
      return 0;
    }
    int kind = strcmp(name, PEM_STRING_X509) == 0           ? 1
               : strcmp(name, PEM_STRING_X509_TRUSTED) == 0 ? 2
                                                            : 0;
    OPENSSL_free(name);
    OPENSSL_free(header);
    if (kind == 0) {
      OPENSSL_clear_free(data, (size_t)len); /* a skipped block may be a key */
      continue;
    }
    const unsigned char *p = data;
    long body = 0;
    int tag = 0, cls = 0;
    int r = ASN1_get_object(&p, &body, &tag, &cls, len);
    long tlv = (long)(p - data) + body;
    if ((r & 0x80) || r != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE ||
        cls != V_ASN1_UNIVERSAL || (kind == 1 && tlv != len)) {
      ERR_clear_error();
      OPENSSL_free(data);
      return -1;
    }
    *der = data;
    *der_len = tlv;
    return 1;
  }
}

int awf_truststore_subject_hash(const char *pem, size_t len, unsigned long *hash) {
  if (len > INT_MAX)
    return -1;
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  unsigned char *der = NULL;
  long der_len = 0;
  const unsigned char *p;
  X509 *x = bio && next_cert_der(bio, &der, &der_len) == 1 && (p = der) != NULL
                ? d2i_X509(NULL, &p, der_len)
                : NULL;
  if (x)
    *hash = X509_subject_name_hash(x);
  X509_free(x);
  OPENSSL_free(der);
  BIO_free(bio);
  return x ? 0 : -1;
}

/* A certificate bag holding der as it is, named (Java's alias: "cert-N",
 * unique) and marked trusted for any use (Java's trust attribute). */
static PKCS12_SAFEBAG *trusted_bag(const unsigned char *der, long der_len, size_t n,
                                   const ASN1_OBJECT *any_eku) {
  char alias[32];
  snprintf(alias, sizeof(alias), "cert-%zu", n);
  /* An ANY of type SEQUENCE is written out byte for byte: the bag's
   * certificate is the bundle's DER, unparsed. */
  ASN1_STRING *seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
  ASN1_TYPE *any = ASN1_TYPE_new();
  PKCS12_SAFEBAG *bag = NULL;
  if (seq && any && ASN1_STRING_set(seq, der, (int)der_len) == 1) {
    ASN1_TYPE_set(any, V_ASN1_SEQUENCE, seq);
    seq = NULL;
    bag = PKCS12_item_pack_safebag(any, ASN1_ITEM_rptr(ASN1_ANY), NID_x509Certificate,
                                   NID_certBag);
  }
  ASN1_STRING_free(seq);
  ASN1_TYPE_free(any);
  if (bag && PKCS12_add_friendlyname_asc(bag, alias, -1) == 1 &&
      PKCS12_add1_attr_by_txt(bag, AWF_TRUSTSTORE_JDK_TRUST_OID, V_ASN1_OBJECT,
                              (const unsigned char *)any_eku, -1) == 1)
    return bag;
  PKCS12_SAFEBAG_free(bag);
  return NULL;
}

/* The bags of every certificate in bio; *n how many. */
static int collect_bags(BIO *bio, STACK_OF(PKCS12_SAFEBAG) * bags, size_t *n, char *err,
                        size_t errsz) {
  ASN1_OBJECT *any_eku = OBJ_txt2obj("2.5.29.37.0", 1); /* anyExtendedKeyUsage */
  int rc = any_eku ? 0 : awf_errbuf_fail(err, errsz, -1, "out of memory");
  unsigned char *der;
  long der_len;
  int got;
  while (rc == 0 && (got = next_cert_der(bio, &der, &der_len)) != 0) {
    if (got < 0) {
      rc = awf_errbuf_fail(err, errsz, -1, "certificate %zu of the bundle is not DER", *n + 1);
      break;
    }
    PKCS12_SAFEBAG *bag = trusted_bag(der, der_len, *n, any_eku);
    OPENSSL_free(der);
    if (!bag || !sk_PKCS12_SAFEBAG_push(bags, bag)) {
      PKCS12_SAFEBAG_free(bag);
      rc = awf_errbuf_fail(err, errsz, -1, "out of memory building the truststore");
      break;
    }
    (*n)++;
  }
  ASN1_OBJECT_free(any_eku);
  if (rc == 0 && *n == 0)
    rc = awf_errbuf_fail(err, errsz, -1, "no certificate for the truststore");
  return rc;
}

/* One unencrypted safe of the bags, MAC'd; DER into *der. */
static int pack(STACK_OF(PKCS12_SAFEBAG) * bags, unsigned char **der, size_t *der_len) {
  STACK_OF(PKCS7) *safes = sk_PKCS7_new_null();
  PKCS7 *p7 = safes ? PKCS12_pack_p7data(bags) : NULL;
  if (!p7 || !sk_PKCS7_push(safes, p7)) {
    PKCS7_free(p7);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    return -1;
  }
  PKCS12 *p12 = PKCS12_add_safes(safes, 0);
  sk_PKCS7_pop_free(safes, PKCS7_free);
  int rc = -1;
  if (p12 && PKCS12_set_mac(p12, AWF_TRUSTSTORE_PASSWORD, -1, NULL, 0, MAC_ITERATIONS,
                            EVP_sha256()) == 1) {
    unsigned char *out = NULL;
    int n = i2d_PKCS12(p12, &out);
    if (n > 0) {
      /* OPENSSL_malloc'd: copied so the caller frees with free(). */
      *der = malloc((size_t)n);
      if (*der) {
        memcpy(*der, out, (size_t)n);
        *der_len = (size_t)n;
        rc = 0;
      }
      OPENSSL_free(out);
    }
  }
  PKCS12_free(p12);
  return rc;
}

int awf_truststore_pkcs12(const char *pem, size_t len, unsigned char **der, size_t *der_len,
                          size_t *n_certs, char *err, size_t errsz) {
  *der = NULL;
  *der_len = 0;
  *n_certs = 0;
  if (len > INT_MAX)
    return awf_errbuf_fail(err, errsz, -1, "the bundle is too large (%zu bytes)", len);
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  STACK_OF(PKCS12_SAFEBAG) *bags = sk_PKCS12_SAFEBAG_new_null();
  int rc = bio && bags ? collect_bags(bio, bags, n_certs, err, errsz)
                       : awf_errbuf_fail(err, errsz, -1, "out of memory");
  if (rc == 0 && pack(bags, der, der_len) < 0)
    rc = awf_errbuf_fail(err, errsz, -1, "cannot encode the PKCS#12 truststore");
  sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
  BIO_free(bio);
  if (rc < 0)
    *n_certs = 0;
  return rc;
}
