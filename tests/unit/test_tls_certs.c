/* test_tls_certs.c: the per-run CA (proxy/tls/ca.c) and its leaves
 * (leaf.c): a store holding only the CA verifies its leaves for their own
 * name and no other, name constraints refuse a leaf outside them, validity
 * windows stay inside the CA's, the cache evicts the least recently used
 * leaf and counts hits and misses, and the PEM export holds no key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "leaf.h"

static const time_t T0 = 1800000000; /* a fixed "now": 2027-01-15 */

static struct awf_ca *new_ca(const char *const *names, size_t n, long lifetime) {
  struct awf_ca_opts o = {.now = T0, .lifetime = lifetime, .names = names, .n_names = n};
  char err[256] = "";
  struct awf_ca *ca = awf_ca_new(&o, err, sizeof(err));
  if (!ca)
    fail_msg("awf_ca_new: %s", err);
  return ca;
}

/* X509_verify_cert with a store holding only the CA, at time T0 + dt,
 * checking the host name when host is set. Returns the verify error (0 ok). */
static int verify(const struct awf_ca *ca, X509 *leaf, const char *host, time_t at) {
  X509_STORE *store = X509_STORE_new();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  assert_non_null(store);
  assert_non_null(ctx);
  assert_int_equal(X509_STORE_add_cert(store, awf_ca_cert(ca)), 1);
  assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
  X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_time(vp, at);
  if (host)
    X509_VERIFY_PARAM_set1_host(vp, host, 0);
  int ok = X509_verify_cert(ctx);
  int e = X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok == 1 ? 0 : (e ? e : -1);
}

static void test_ca_is_a_ca(void **state) {
  (void)state;
  struct awf_ca *ca = new_ca(NULL, 0, 3600);
  X509 *c = awf_ca_cert(ca);
  assert_int_equal(X509_check_ca(c), 1);
  int crit = -1;
  BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(c, NID_basic_constraints, &crit, NULL);
  assert_non_null(bc);
  assert_true(bc->ca);
  assert_int_equal(crit, 1);
  BASIC_CONSTRAINTS_free(bc);
  uint32_t ku = X509_get_key_usage(c);
  assert_true(ku & KU_KEY_CERT_SIGN);
  assert_true(ku & KU_CRL_SIGN);
  assert_false(ku & KU_DIGITAL_SIGNATURE);
  /* self-signed with its P-256 key */
  assert_int_equal(X509_verify(c, X509_get0_pubkey(c)), 1);
  assert_true(EVP_PKEY_is_a(awf_ca_key(ca), "EC"));
  char group[32];
  assert_int_equal(EVP_PKEY_get_group_name(awf_ca_key(ca), group, sizeof(group), NULL), 1);
  assert_string_equal(group, "prime256v1");
  /* no name constraints unless asked */
  assert_null(X509_get_ext_d2i(c, NID_name_constraints, NULL, NULL));
  awf_ca_free(ca);
}

static void test_ca_validity(void **state) {
  (void)state;
  struct awf_ca *ca = new_ca(NULL, 0, 3600);
  assert_int_equal(awf_ca_not_before(ca), T0 - AWF_CA_BACKDATE);
  assert_int_equal(awf_ca_not_after(ca), T0 + 3600);
  time_t t = T0 - AWF_CA_BACKDATE - 1;
  assert_true(X509_cmp_time(X509_get0_notBefore(awf_ca_cert(ca)), &t) > 0);
  t = T0 - AWF_CA_BACKDATE + 1;
  assert_true(X509_cmp_time(X509_get0_notBefore(awf_ca_cert(ca)), &t) < 0);
  awf_ca_free(ca);
  /* never more than a day, whatever is asked */
  ca = new_ca(NULL, 0, 10L * 24 * 3600);
  assert_int_equal(awf_ca_not_after(ca), T0 + AWF_CA_MAX_LIFETIME);
  t = T0 + AWF_CA_MAX_LIFETIME + 1;
  assert_true(X509_cmp_time(X509_get0_notAfter(awf_ca_cert(ca)), &t) < 0);
  awf_ca_free(ca);
}

static void test_pem_has_the_certificate_not_the_key(void **state) {
  (void)state;
  struct awf_ca *ca = new_ca(NULL, 0, 3600);
  size_t len = 0;
  char *pem = awf_ca_cert_pem(ca, &len);
  assert_non_null(pem);
  assert_int_equal(strlen(pem), len);
  assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE-----"));
  assert_null(strstr(pem, "PRIVATE"));
  assert_null(strstr(pem, "EC PARAMETERS"));
  /* exactly one PEM object, and it is the CA certificate */
  assert_null(strstr(strstr(pem, "-----BEGIN") + 1, "-----BEGIN"));
  BIO *b = BIO_new_mem_buf(pem, (int)len);
  X509 *back = PEM_read_bio_X509(b, NULL, NULL, NULL);
  assert_non_null(back);
  assert_int_equal(X509_cmp(back, awf_ca_cert(ca)), 0);
  assert_null(PEM_read_bio_X509(b, NULL, NULL, NULL)); /* nothing after it */
  X509_free(back);
  BIO_free(b);
  /* nor the key's private scalar in DER, raw bytes anywhere */
  BIGNUM *priv = NULL;
  assert_int_equal(EVP_PKEY_get_bn_param(awf_ca_key(ca), "priv", &priv), 1);
  char *hex = BN_bn2hex(priv);
  assert_null(strstr(pem, hex));
  OPENSSL_free(hex);
  BN_clear_free(priv);
  free(pem);
  awf_ca_free(ca);
}

static void test_leaf_verifies_for_its_name_only(void **state) {
  (void)state;
  struct awf_ca *ca = new_ca(NULL, 0, 3600);
  char err[256];
  struct awf_leaf *l = awf_leaf_make(ca, "Allowed.Test.", T0, err, sizeof(err));
  assert_non_null(l);
  assert_string_equal(l->name, "allowed.test");
  assert_int_equal(verify(ca, l->cert, "allowed.test", T0), 0);
  assert_int_equal(verify(ca, l->cert, NULL, T0), 0);
  assert_int_equal(X509_check_host(l->cert, "allowed.test", 0, 0, NULL), 1);
  assert_int_equal(X509_check_host(l->cert, "other.test", 0, 0, NULL), 0);
  assert_int_equal(X509_check_host(l->cert, "sub.allowed.test", 0, 0, NULL), 0);
  assert_int_equal(verify(ca, l->cert, "other.test", T0), X509_V_ERR_HOSTNAME_MISMATCH);
  assert_int_equal(X509_check_ca(l->cert), 0);
  /* a store without the CA trusts nothing */
  X509_STORE *empty = X509_STORE_new();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, empty, l->cert, NULL);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), T0);
  assert_int_not_equal(X509_verify_cert(ctx), 1);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(empty);
  /* another run's CA does not verify this one's leaves */
  struct awf_ca *other = new_ca(NULL, 0, 3600);
  assert_int_not_equal(verify(other, l->cert, "allowed.test", T0), 0);
  awf_ca_free(other);
  awf_leaf_free(l);
  awf_ca_free(ca);
}

static void test_leaf_for_an_ip(void **state) {
  (void)state;
  struct awf_ca *ca = new_ca(NULL, 0, 3600);
  char err[256];
  struct awf_leaf *l = awf_leaf_make(ca, "192.0.2.7", T0, err, sizeof(err));
  assert_non_null(l);
  assert_int_equal(X509_check_ip_asc(l->cert, "192.0.2.7", 0), 1);
  assert_int_equal(X509_check_ip_asc(l->cert, "192.0.2.8", 0), 0);
  assert_int_equal(X509_check_host(l->cert, "192.0.2.7", 0, 0, NULL), 0); /* not a dNSName */
  assert_int_equal(verify(ca, l->cert, NULL, T0), 0);
  awf_leaf_free(l);
  l = awf_leaf_make(ca, "2001:db8::1", T0, err, sizeof(err));
  assert_non_null(l);
  assert_int_equal(X509_check_ip_asc(l->cert, "2001:db8:0::1", 0), 1);
  awf_leaf_free(l);
  /* neither a host name nor an IP */
  assert_null(awf_leaf_make(ca, "bad name", T0, err, sizeof(err)));
  assert_non_null(strstr(err, "not a host name"));
  assert_null(awf_leaf_make(ca, "", T0, err, sizeof(err)));
  assert_null(awf_leaf_make(ca, "a..b", T0, err, sizeof(err)));
  awf_ca_free(ca);
}

static void test_name_constraints(void **state) {
  (void)state;
  const char *names[] = {"allowed.test", "API.Example.Test"};
  struct awf_ca *ca = new_ca(names, 2, 3600);
  int crit = -1;
  NAME_CONSTRAINTS *nc = X509_get_ext_d2i(awf_ca_cert(ca), NID_name_constraints, &crit, NULL);
  assert_non_null(nc);
  assert_int_equal(crit, 1);
  assert_int_equal(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees), 2);
  NAME_CONSTRAINTS_free(nc);
  char err[256];
  const char *ok[] = {"allowed.test", "www.allowed.test", "api.example.test"};
  for (size_t i = 0; i < 3; i++) {
    struct awf_leaf *l = awf_leaf_make(ca, ok[i], T0, err, sizeof(err));
    assert_non_null(l);
    assert_int_equal(verify(ca, l->cert, ok[i], T0), 0);
    awf_leaf_free(l);
  }
  const char *bad[] = {"other.test", "notallowed.test", "example.test"};
  for (size_t i = 0; i < 3; i++) {
    struct awf_leaf *l = awf_leaf_make(ca, bad[i], T0, err, sizeof(err));
    assert_non_null(l);
    assert_int_equal(verify(ca, l->cert, NULL, T0), X509_V_ERR_PERMITTED_VIOLATION);
    awf_leaf_free(l);
  }
  awf_ca_free(ca);
  /* a constraint that is no host name is refused */
  const char *junk[] = {"ok.test", "bad name"};
  struct awf_ca_opts o = {.now = T0, .lifetime = 3600, .names = junk, .n_names = 2};
  assert_null(awf_ca_new(&o, err, sizeof(err)));
  assert_non_null(strstr(err, "bad name"));
}

static void test_leaf_validity_inside_the_ca(void **state) {
  (void)state;
  struct awf_ca *ca = new_ca(NULL, 0, 3600); /* shorter than a leaf's lifetime */
  char err[256];
  /* made just "before" the CA (a clock stepped back): both ends clipped */
  struct awf_leaf *l = awf_leaf_make(ca, "a.test", T0 - 100, err, sizeof(err));
  assert_non_null(l);
  /* not before the CA, not after it */
  assert_int_equal(ASN1_TIME_compare(X509_get0_notBefore(l->cert),
                                     X509_get0_notBefore(awf_ca_cert(ca))),
                   0);
  assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(l->cert),
                                     X509_get0_notAfter(awf_ca_cert(ca))),
                   0);
  assert_int_equal(verify(ca, l->cert, "a.test", T0 + 3599), 0);
  assert_int_equal(verify(ca, l->cert, "a.test", T0 + 3601), X509_V_ERR_CERT_HAS_EXPIRED);
  assert_int_equal(verify(ca, l->cert, "a.test", T0 - AWF_CA_BACKDATE - 10),
                   X509_V_ERR_CERT_NOT_YET_VALID);
  awf_leaf_free(l);
  awf_ca_free(ca);
  /* a day-long CA: the leaf is short, from a few minutes ago */
  ca = new_ca(NULL, 0, 0);
  time_t now = T0 + 7200;
  l = awf_leaf_make(ca, "a.test", now, err, sizeof(err));
  assert_non_null(l);
  time_t t = now - AWF_CA_BACKDATE;
  assert_int_equal(X509_cmp_time(X509_get0_notBefore(l->cert), &(time_t){t - 1}), 1);
  assert_int_equal(X509_cmp_time(X509_get0_notBefore(l->cert), &(time_t){t + 1}), -1);
  t = now + AWF_LEAF_LIFETIME;
  assert_int_equal(X509_cmp_time(X509_get0_notAfter(l->cert), &(time_t){t - 1}), 1);
  assert_int_equal(X509_cmp_time(X509_get0_notAfter(l->cert), &(time_t){t + 1}), -1);
  awf_leaf_free(l);
  /* after the CA's end no leaf can be made */
  assert_null(awf_leaf_make(ca, "a.test", T0 + AWF_CA_MAX_LIFETIME + 10, err, sizeof(err)));
  awf_ca_free(ca);
}

static void test_serials_are_random(void **state) {
  (void)state;
  struct awf_ca *ca = new_ca(NULL, 0, 3600);
  char err[256];
  struct awf_leaf *a = awf_leaf_make(ca, "a.test", T0, err, sizeof(err));
  struct awf_leaf *b = awf_leaf_make(ca, "a.test", T0, err, sizeof(err));
  assert_non_null(a);
  assert_non_null(b);
  assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a->cert),
                                        X509_get0_serialNumber(b->cert)),
                       0);
  assert_int_not_equal(EVP_PKEY_eq(a->key, b->key), 1);
  awf_leaf_free(a);
  awf_leaf_free(b);
  awf_ca_free(ca);
}

static void test_cache_lru_and_counters(void **state) {
  (void)state;
  struct awf_ca *ca = new_ca(NULL, 0, 3600);
  struct awf_leaf_cache c;
  assert_int_equal(awf_leaf_cache_init(&c, ca, 0), -1);
  assert_int_equal(awf_leaf_cache_init(&c, ca, AWF_LEAF_CACHE_MAX + 1), -1);
  assert_int_equal(awf_leaf_cache_init(&c, ca, 3), 0);
  char err[256];
  const struct awf_leaf *a = awf_leaf_cache_get(&c, "a.test", T0, err, sizeof(err));
  X509 *a_cert = a->cert;
  awf_leaf_cache_get(&c, "b.test", T0, err, sizeof(err));
  awf_leaf_cache_get(&c, "c.test", T0, err, sizeof(err));
  assert_int_equal(c.misses, 3);
  assert_int_equal(c.hits, 0);
  assert_int_equal(c.count, 3);
  /* a is used again (a hit, the same certificate, case-insensitively):
   * b is now the least recently used */
  a = awf_leaf_cache_get(&c, "A.TEST", T0, err, sizeof(err));
  assert_ptr_equal(a->cert, a_cert);
  assert_int_equal(c.hits, 1);
  awf_leaf_cache_get(&c, "d.test", T0, err, sizeof(err)); /* evicts b */
  assert_int_equal(c.count, 3);
  assert_int_equal(c.evictions, 1);
  assert_int_equal(c.misses, 4);
  awf_leaf_cache_get(&c, "a.test", T0, err, sizeof(err));
  awf_leaf_cache_get(&c, "c.test", T0, err, sizeof(err));
  awf_leaf_cache_get(&c, "d.test", T0, err, sizeof(err));
  assert_int_equal(c.hits, 4);
  assert_int_equal(c.misses, 4);
  awf_leaf_cache_get(&c, "b.test", T0, err, sizeof(err)); /* gone: made again, evicts a */
  assert_int_equal(c.misses, 5);
  assert_int_equal(c.evictions, 2);
  a = awf_leaf_cache_get(&c, "a.test", T0, err, sizeof(err));
  assert_int_equal(c.misses, 6);
  assert_int_equal(c.count, 3);
  /* a bad name is no miss and caches nothing */
  assert_null(awf_leaf_cache_get(&c, "bad name", T0, err, sizeof(err)));
  assert_int_equal(c.misses, 6);
  assert_int_equal(c.count, 3);
  awf_leaf_cache_free(&c);
  awf_ca_free(ca);
}

static void test_cache_remakes_a_leaf_about_to_expire(void **state) {
  (void)state;
  struct awf_ca *ca = new_ca(NULL, 0, 0);
  struct awf_leaf_cache c;
  assert_int_equal(awf_leaf_cache_init(&c, ca, 4), 0);
  char err[256];
  const struct awf_leaf *l = awf_leaf_cache_get(&c, "a.test", T0, err, sizeof(err));
  X509 *first = l->cert;
  l = awf_leaf_cache_get(&c, "a.test", T0 + AWF_LEAF_LIFETIME - AWF_LEAF_RENEW - 10, err,
                         sizeof(err));
  assert_ptr_equal(l->cert, first);
  assert_int_equal(c.hits, 1);
  time_t later = T0 + AWF_LEAF_LIFETIME - AWF_LEAF_RENEW + 10;
  l = awf_leaf_cache_get(&c, "a.test", later, err, sizeof(err));
  assert_int_equal(c.misses, 2);
  assert_int_equal(c.count, 1);
  assert_int_equal(verify(ca, l->cert, "a.test", later + AWF_LEAF_RENEW), 0);
  awf_leaf_cache_free(&c);
  awf_ca_free(ca);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ca_is_a_ca),
      cmocka_unit_test(test_ca_validity),
      cmocka_unit_test(test_pem_has_the_certificate_not_the_key),
      cmocka_unit_test(test_leaf_verifies_for_its_name_only),
      cmocka_unit_test(test_leaf_for_an_ip),
      cmocka_unit_test(test_name_constraints),
      cmocka_unit_test(test_leaf_validity_inside_the_ca),
      cmocka_unit_test(test_serials_are_random),
      cmocka_unit_test(test_cache_lru_and_counters),
      cmocka_unit_test(test_cache_remakes_a_leaf_about_to_expire),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
