/* test_sbx_trust.c: --ssl-bump's trust material on its way from awf to the
 * sandbox's PID 1 (sandbox/trust.c): made from the CA and the host's bundle
 * (the bundle ends with the CA, the hash is the CA's, the truststore holds
 * both), sent in a memfd and received intact; a wrong message or a blob
 * whose lengths do not add up is refused; the host's bundle is the
 * SSL_CERT_FILE file when named, and a named file that cannot be read is an
 * error. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/x509.h>

#include "ca.h"
#include "fdpass.h"
#include "tmpdir_fixture.h"
#include "trust.h"

static int setup(void **state) {
  return tmp_setup(state, "/tmp/awf-test-trust-XXXXXX", "b.pem");
}

static struct awf_ca *new_ca(void) {
  struct awf_ca_opts o = {0};
  char err[256] = "";
  struct awf_ca *ca = awf_ca_new(&o, err, sizeof(err));
  if (!ca)
    fail_msg("awf_ca_new: %s", err);
  return ca;
}

static void test_made_sent_received(void **state) {
  (void)state;
  struct awf_ca *host = new_ca(), *run = new_ca();
  size_t hl, cl;
  char *hp = awf_ca_cert_pem(host, &hl), *cp = awf_ca_cert_pem(run, &cl);
  struct awf_trust_material m;
  char err[256] = "";
  assert_int_equal(awf_trust_make(cp, cl, hp, hl, &m, err, sizeof(err)), 0);
  assert_int_equal(m.t.bundle_len, hl + cl);
  assert_memory_equal(m.t.bundle, hp, hl);
  assert_memory_equal(m.t.bundle + hl, cp, cl);
  assert_int_equal(m.t.ca_hash, X509_subject_name_hash(awf_ca_cert(run)));
  assert_non_null(m.t.p12);

  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  assert_int_equal(awf_trust_send(sv[0], &m), 0);
  struct awf_rootfs_trust t;
  assert_int_equal(awf_trust_receive(sv[1], &t, err, sizeof(err)), 0);
  assert_int_equal(t.bundle_len, m.t.bundle_len);
  assert_memory_equal(t.bundle, m.t.bundle, t.bundle_len);
  assert_int_equal(t.ca_pem_len, cl);
  assert_memory_equal(t.ca_pem, cp, cl);
  assert_int_equal(t.p12_len, m.t.p12_len);
  assert_memory_equal(t.p12, m.t.p12, t.p12_len);
  assert_int_equal(t.ca_hash, m.t.ca_hash);

  /* another message, or none, is refused */
  assert_int_equal(awf_fdpass_send(sv[0], 'g', NULL, 0), 0);
  assert_true(awf_trust_receive(sv[1], &t, err, sizeof(err)) < 0);
  assert_non_null(strstr(err, "run's CA"));
  int fd = memfd_create("x", MFD_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "awftrst1", 8), 8); /* header cut short */
  assert_int_equal(awf_fdpass_send(sv[0], 't', &fd, 1), 0);
  assert_int_equal(awf_trust_receive(sv[1], &t, err, sizeof(err)), -EPROTO);
  close(fd);
  close(sv[0]);
  assert_true(awf_trust_receive(sv[1], &t, err, sizeof(err)) < 0); /* awf gone */
  close(sv[1]);

  /* without a host bundle: the CA alone */
  awf_trust_free(&m);
  assert_null(m.bundle);
  assert_int_equal(awf_trust_make(cp, cl, NULL, 0, &m, err, sizeof(err)), 0);
  assert_int_equal(m.t.bundle_len, cl);
  awf_trust_free(&m);
  /* a CA that is no certificate */
  assert_int_equal(awf_trust_make("junk\n", 5, hp, hl, &m, err, sizeof(err)), -1);
  free(hp);
  free(cp);
  awf_ca_free(host);
  awf_ca_free(run);
}

static void test_host_bundle_from_ssl_cert_file(void **state) {
  struct tmp *t = *state;
  tmp_write_file(t->path, "the host's bundle\n", 18);
  char *text = NULL, err[256] = "";
  size_t len = 0;
  assert_int_equal(awf_trust_read_host_bundle(t->path, &text, &len, err, sizeof(err)), 0);
  assert_int_equal(len, 18);
  assert_memory_equal(text, "the host's bundle\n", 18);
  free(text);
  unlink(t->path);
  /* named but missing: an error, not a silent CA-only bundle */
  assert_true(awf_trust_read_host_bundle(t->path, &text, &len, err, sizeof(err)) < 0);
  assert_null(text);
  assert_non_null(strstr(err, "SSL_CERT_FILE"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_made_sent_received),
      cmocka_unit_test_setup_teardown(test_host_bundle_from_ssl_cert_file, setup, tmp_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
