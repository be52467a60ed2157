/* test_intercept.c: a run's interception state (proxy/engine/intercept.c):
 * only the hosts URL rules name are opened; the CA's name
 * constraints are the domains of those rules' hosts (wildcard labels
 * dropped), or none when a pattern has no fixed suffix; the CA written out
 * holds no key and replaces the file atomically. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "intercept.h"
#include "tmpdir_fixture.h"

static awf_intercept *make(const char *rules, awf_url_rules **out) {
  char err[256] = "";
  *out = awf_url_rules_new();
  assert_non_null(*out);
  assert_int_equal(awf_url_rules_add_list(*out, AWF_URL_ALLOW, rules, err, sizeof(err)), 0);
  awf_intercept *ic = NULL;
  if (awf_intercept_new(*out, NULL, &ic, err, sizeof(err)) < 0)
    fail_msg("awf_intercept_new: %s", err);
  return ic;
}

/* The CA's permitted DNS names, comma-joined ("" for no constraint). */
static void permitted(const awf_intercept *ic, char *out, size_t n) {
  out[0] = '\0';
  char *pem = awf_intercept_ca_pem(ic, NULL);
  assert_non_null(pem);
  BIO *b = BIO_new_mem_buf(pem, -1);
  X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
  assert_non_null(x);
  NAME_CONSTRAINTS *nc = X509_get_ext_d2i(x, NID_name_constraints, NULL, NULL);
  for (int i = 0; nc && i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
    GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
    assert_int_equal(st->base->type, GEN_DNS);
    const ASN1_IA5STRING *s = st->base->d.dNSName;
    size_t len = strlen(out);
    snprintf(out + len, n - len, "%s%.*s", len ? "," : "", s->length, (const char *)s->data);
  }
  NAME_CONSTRAINTS_free(nc);
  X509_free(x);
  BIO_free(b);
  free(pem);
}

static void test_wants_only_ruled_https_hosts(void **state) {
  (void)state;
  awf_url_rules *r;
  awf_intercept *ic = make("https://a.test/x/*, http://p.test/*, https://api-*.b.test/*", &r);
  assert_true(awf_intercept_wants(ic, "a.test", 6));
  assert_true(awf_intercept_wants(ic, "api-1.b.test", 12));
  assert_false(awf_intercept_wants(ic, "b.test", 6));
  /* a host with http:// rules is URL-ruled on https too: opened to be judged */
  assert_true(awf_intercept_wants(ic, "p.test", 6));
  assert_false(awf_intercept_wants(ic, "x.a.test", 8));
  assert_false(awf_intercept_wants(NULL, "a.test", 6));
  assert_non_null(awf_intercept_server_ctx(ic));
  assert_non_null(awf_intercept_client_ctx(ic));
  awf_intercept_free(ic);
  awf_url_rules_free(r);
}

/* --secret: its hosts are opened and constrain the CA, with or without
 * URL rules. */
static void test_secret_hosts_opened(void **state) {
  (void)state;
  char err[256] = "", got[512];
  awf_secrets *s = awf_secrets_new();
  assert_int_equal(awf_secrets_add(s, "K=api.s.test,*.t.test", err, sizeof(err)), 0);
  awf_intercept *ic = NULL;
  if (awf_intercept_new(NULL, s, &ic, err, sizeof(err)) < 0)
    fail_msg("awf_intercept_new: %s", err);
  assert_true(awf_intercept_wants(ic, "api.s.test", 10));
  assert_true(awf_intercept_wants(ic, "x.t.test", 8));
  assert_false(awf_intercept_wants(ic, "s.test", 6));
  assert_false(awf_intercept_wants(ic, "t.test", 6));
  permitted(ic, got, sizeof(got));
  assert_string_equal(got, "api.s.test,t.test");
  awf_intercept_free(ic);
  awf_url_rules *r;
  ic = NULL;
  r = awf_url_rules_new();
  assert_int_equal(awf_url_rules_add_list(r, AWF_URL_ALLOW, "https://a.test/x/*", err,
                                          sizeof(err)),
                   0);
  assert_int_equal(awf_intercept_new(r, s, &ic, err, sizeof(err)), 0);
  assert_true(awf_intercept_wants(ic, "a.test", 6));
  assert_true(awf_intercept_wants(ic, "api.s.test", 10));
  permitted(ic, got, sizeof(got));
  assert_string_equal(got, "a.test,api.s.test,t.test");
  awf_intercept_free(ic);
  awf_url_rules_free(r);
  awf_secrets_free(s);
}

static void test_name_constraints(void **state) {
  (void)state;
  char got[512];
  awf_url_rules *r;
  awf_intercept *ic = make(
      "https://a.test/x/*, https://api-*.b.test/*, https://*.a.test/y, https://c.test/", &r);
  permitted(ic, got, sizeof(got));
  assert_string_equal(got, "a.test,b.test,c.test"); /* one each, in rule order */
  awf_intercept_free(ic);
  awf_url_rules_free(r);
  ic = make("https://a.test/x/*, https://*.test/", &r); /* "test" is a fixed suffix */
  permitted(ic, got, sizeof(got));
  assert_string_equal(got, "a.test,test");
  awf_intercept_free(ic);
  awf_url_rules_free(r);
}

/* A reload's rules against the CA made at start: hosts outside its name
 * constraints are named; new rules switch the hosts opened. */
static void test_reload_rules(void **state) {
  (void)state;
  char err[256];
  awf_url_rules *r, *n = awf_url_rules_new();
  awf_intercept *ic = make("https://a.test/x/*, https://api-*.b.test/*", &r);
  assert_null(awf_intercept_outside(ic, r));
  assert_int_equal(awf_url_rules_add_list(n, AWF_URL_ALLOW,
                                          "https://deep.a.test/*, https://b.test/, "
                                          "http://plain.a.test/",
                                          err, sizeof(err)),
                   0);
  assert_null(awf_intercept_outside(ic, n)); /* under a.test and b.test */
  assert_int_equal(awf_url_rules_add_list(n, AWF_URL_BLOCK, "https://c.test/secret", err,
                                          sizeof(err)),
                   0);
  assert_string_equal(awf_intercept_outside(ic, n), "c.test");
  awf_url_rules *h = awf_url_rules_new();
  assert_int_equal(awf_url_rules_add_list(h, AWF_URL_ALLOW, "https://a.test/, http://d.test/",
                                          err, sizeof(err)),
                   0);
  assert_string_equal(awf_intercept_outside(ic, h),
                      "d.test"); /* http:// hosts are opened too */
  awf_url_rules_free(h);
  awf_intercept_set_rules(ic, n);
  assert_true(awf_intercept_wants(ic, "c.test", 6));
  assert_true(awf_intercept_wants(ic, "deep.a.test", 11));
  assert_false(awf_intercept_wants(ic, "a.test", 6)); /* the old rules are gone */
  awf_intercept_free(ic);
  awf_url_rules_free(r);
  /* A CA without constraints (no URL rule at start) permits every name. */
  r = awf_url_rules_new();
  assert_non_null(r);
  assert_int_equal(awf_intercept_new(r, NULL, &ic, err, sizeof(err)), 0);
  assert_null(awf_intercept_outside(ic, n));
  assert_null(awf_intercept_outside(NULL, n));
  awf_intercept_free(ic);
  awf_url_rules_free(r);
  awf_url_rules_free(n);
}

static int setup(void **state) {
  return tmp_setup(state, "/tmp/awf-test-intercept-XXXXXX", "ca.pem");
}

static void test_write_ca(void **state) {
  const struct tmp *t = *state;
  const char *dir = t->dir;
  awf_url_rules *r;
  awf_intercept *ic = make("https://a.test/", &r);
  char path[512], err[256];
  snprintf(path, sizeof(path), "%s/ca.pem", dir);
  assert_int_equal(awf_intercept_write_ca(ic, path, err, sizeof(err)), 0);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char buf[8192];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = '\0';
  fclose(f);
  assert_non_null(strstr(buf, "BEGIN CERTIFICATE"));
  assert_null(strstr(buf, "PRIVATE KEY"));
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0644);
  /* a directory that does not exist: the path named, nothing left behind */
  snprintf(path, sizeof(path), "%s/no/such/ca.pem", dir);
  assert_true(awf_intercept_write_ca(ic, path, err, sizeof(err)) < 0);
  assert_non_null(strstr(err, path));
  awf_intercept_free(ic);
  awf_url_rules_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wants_only_ruled_https_hosts),
      cmocka_unit_test(test_name_constraints),
      cmocka_unit_test(test_reload_rules),
      cmocka_unit_test(test_secret_hosts_opened),
      cmocka_unit_test_setup_teardown(test_write_ca, setup, tmp_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
