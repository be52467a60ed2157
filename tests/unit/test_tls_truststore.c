/* test_tls_truststore.c: the sandbox's trust material (proxy/tls/
 * truststore.c): the bundle is the host's text then the CA's, the hash is
 * the one OpenSSL's hashed directories use, and the PKCS#12 truststore
 * parses back with every certificate, each with a unique friendly name and
 * the JDK trust attribute (anyExtendedKeyUsage), under the MAC password;
 * keys in the input never reach it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "ca.h"
#include "truststore.h"

static struct awf_ca *new_ca(void) {
  struct awf_ca_opts o = {0};
  char err[256] = "";
  struct awf_ca *ca = awf_ca_new(&o, err, sizeof(err));
  if (!ca)
    fail_msg("awf_ca_new: %s", err);
  return ca;
}

static void test_bundle_appends_the_ca(void **state) {
  (void)state;
  size_t len = 0;
  char *b = awf_truststore_bundle("host\n", 5, "ca\n", 3, &len);
  assert_string_equal(b, "host\nca\n");
  assert_int_equal(len, 8);
  free(b);
  b = awf_truststore_bundle("host", 4, "ca\n", 3, &len); /* no final newline */
  assert_string_equal(b, "host\nca\n");
  assert_int_equal(len, 8);
  free(b);
  b = awf_truststore_bundle(NULL, 0, "ca\n", 3, &len); /* no host bundle */
  assert_string_equal(b, "ca\n");
  assert_int_equal(len, 3);
  free(b);
}

static void test_subject_hash_is_openssls(void **state) {
  (void)state;
  struct awf_ca *ca = new_ca();
  size_t len;
  char *pem = awf_ca_cert_pem(ca, &len);
  unsigned long h = 0;
  assert_int_equal(awf_truststore_subject_hash(pem, len, &h), 0);
  assert_int_equal(h, X509_subject_name_hash(awf_ca_cert(ca)));
  assert_int_equal(awf_truststore_subject_hash("no pem here\n", 12, &h), -1);
  free(pem);
  awf_ca_free(ca);
}

/* The certificates of a parsed store, and checks on each bag. */
static int count_trusted_bags(const unsigned char *der, size_t len, const char *pass,
                              X509 **last) {
  const unsigned char *p = der;
  PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
  assert_non_null(p12);
  assert_int_equal(PKCS12_verify_mac(p12, pass, -1), 1);
  assert_int_equal(PKCS12_verify_mac(p12, "wrong", -1), 0);
  STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
  assert_non_null(safes);
  assert_int_equal(sk_PKCS7_num(safes), 1);
  STACK_OF(PKCS12_SAFEBAG) *bags = PKCS12_unpack_p7data(sk_PKCS7_value(safes, 0));
  assert_non_null(bags);
  ASN1_OBJECT *jdk = OBJ_txt2obj(AWF_TRUSTSTORE_JDK_TRUST_OID, 1);
  ASN1_OBJECT *any = OBJ_txt2obj("2.5.29.37.0", 1);
  int n = sk_PKCS12_SAFEBAG_num(bags);
  char *names[64] = {0};
  for (int i = 0; i < n; i++) {
    PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
    assert_int_equal(PKCS12_SAFEBAG_get_nid(bag), NID_certBag);
    /* the trust attribute: one value, the OID anyExtendedKeyUsage */
    const STACK_OF(X509_ATTRIBUTE) *attrs = PKCS12_SAFEBAG_get0_attrs(bag);
    int at = X509at_get_attr_by_OBJ(attrs, jdk, -1);
    assert_true(at >= 0);
    X509_ATTRIBUTE *a = X509at_get_attr(attrs, at);
    assert_int_equal(X509_ATTRIBUTE_count(a), 1);
    ASN1_TYPE *v = X509_ATTRIBUTE_get0_type(a, 0);
    assert_int_equal(ASN1_TYPE_get(v), V_ASN1_OBJECT);
    assert_int_equal(OBJ_cmp(v->value.object, any), 0);
    /* a friendly name (Java's alias), unique */
    char *fn = PKCS12_get_friendlyname(bag);
    assert_non_null(fn);
    for (int j = 0; j < i && j < 64; j++)
      assert_string_not_equal(names[j], fn);
    if (i < 64)
      names[i] = fn;
    else
      OPENSSL_free(fn);
    X509 *x = PKCS12_SAFEBAG_get1_cert(bag);
    assert_non_null(x);
    if (last && i == n - 1)
      *last = x;
    else
      X509_free(x);
  }
  for (int j = 0; j < 64; j++)
    OPENSSL_free(names[j]);
  ASN1_OBJECT_free(jdk);
  ASN1_OBJECT_free(any);
  sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
  sk_PKCS7_pop_free(safes, PKCS7_free);
  PKCS12_free(p12);
  return n;
}

static void test_pkcs12_holds_every_cert_trusted(void **state) {
  (void)state;
  struct awf_ca *a = new_ca(), *b = new_ca(), *c = new_ca();
  size_t la, lb, lc;
  char *pa = awf_ca_cert_pem(a, &la), *pb = awf_ca_cert_pem(b, &lb),
       *pc = awf_ca_cert_pem(c, &lc);
  /* a private key between them is skipped, never stored */
  EVP_PKEY *key = awf_tls_new_p256_key();
  BIO *kb = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL), 1);
  char *kp;
  long kl = BIO_get_mem_data(kb, &kp);
  char text[16384];
  int n = snprintf(text, sizeof(text), "# comment\n%s%.*s%s%s", pa, (int)kl, kp, pb, pc);
  assert_true(n > 0 && (size_t)n < sizeof(text));
  unsigned char *der = NULL;
  size_t der_len = 0, certs = 0;
  char err[256] = "";
  assert_int_equal(awf_truststore_pkcs12(text, (size_t)n, &der, &der_len, &certs, err,
                                         sizeof(err)),
                   0);
  assert_int_equal(certs, 3);
  X509 *last = NULL;
  assert_int_equal(count_trusted_bags(der, der_len, AWF_TRUSTSTORE_PASSWORD, &last), 3);
  assert_int_equal(X509_cmp(last, awf_ca_cert(c)), 0); /* in order: the run CA last */
  X509_free(last);
  /* no byte of the key's DER in the store */
  unsigned char *kder = NULL;
  int kdl = i2d_PrivateKey(key, &kder);
  assert_true(kdl > 32);
  for (size_t i = 0; i + 32 <= der_len; i++)
    assert_true(memcmp(der + i, kder + kdl - 32, 32) != 0);
  OPENSSL_free(kder);
  free(der);
  BIO_free(kb);
  EVP_PKEY_free(key);
  free(pa), free(pb), free(pc);
  awf_ca_free(a), awf_ca_free(b), awf_ca_free(c);
}

static void test_pkcs12_refuses_bad_input(void **state) {
  (void)state;
  unsigned char *der = (unsigned char *)"x";
  size_t der_len = 9, certs = 9;
  char err[256] = "";
  assert_int_equal(awf_truststore_pkcs12("nothing\n", 8, &der, &der_len, &certs, err,
                                         sizeof(err)),
                   -1);
  assert_null(der);
  assert_int_equal(certs, 0);
  assert_non_null(strstr(err, "no certificate"));
  const char *bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  assert_int_equal(awf_truststore_pkcs12(bad, strlen(bad), &der, &der_len, &certs, err,
                                         sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "is not DER"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bundle_appends_the_ca),
      cmocka_unit_test(test_subject_hash_is_openssls),
      cmocka_unit_test(test_pkcs12_holds_every_cert_trusted),
      cmocka_unit_test(test_pkcs12_refuses_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
