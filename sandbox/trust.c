/* trust.c: see trust.h. */
#include "trust.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"
#include "fdpass.h"
#include "textfile.h"
#include "truststore.h"

/* The memfd: this header, then the bundle, the CA and the truststore. */
struct blob_header {
  char magic[8];
  uint64_t ca_hash, bundle_len, ca_len, p12_len;
};

static const char blob_magic[8] = "awftrst1";

int awf_trust_read_host_bundle(const char *ssl_cert_file, char **text, size_t *len, char *err,
                               size_t errsz) {
  bool named = ssl_cert_file != NULL && ssl_cert_file[0] != '\0';
  const char *path = named ? ssl_cert_file : AWF_TRUST_HOST_BUNDLE;
  char why[AWF_ERRBUF_SIZE];
  *text = NULL;
  *len = 0;
  int rc = awf_textfile_read(path, AWF_TRUST_HOST_BUNDLE_MAX, text, len, why, sizeof(why));
  if (rc == -ENOENT && !named)
    return 0;
  if (rc < 0)
    return awf_errbuf_fail(err, errsz, rc, "the host's CA bundle (SSL_CERT_FILE): %s", why);
  return 0;
}

int awf_trust_make(const char *ca_pem, size_t ca_len, const char *host, size_t host_len,
                   struct awf_trust_material *m, char *err, size_t errsz) {
  memset(m, 0, sizeof(*m));
  m->bundle = awf_truststore_bundle(host, host_len, ca_pem, ca_len, &m->t.bundle_len);
  m->ca_pem = malloc(ca_len + 1);
  if (!m->bundle || !m->ca_pem) {
    awf_trust_free(m);
    return awf_errbuf_fail(err, errsz, -1, "out of memory");
  }
  memcpy(m->ca_pem, ca_pem, ca_len);
  m->ca_pem[ca_len] = '\0';
  m->t.ca_pem_len = ca_len;
  if (awf_truststore_subject_hash(ca_pem, ca_len, &m->t.ca_hash) < 0) {
    awf_trust_free(m);
    return awf_errbuf_fail(err, errsz, -1, "the run's CA is not a PEM certificate");
  }
  size_t n;
  if (awf_truststore_pkcs12(m->bundle, m->t.bundle_len, &m->p12, &m->t.p12_len, &n, err,
                            errsz) < 0) {
    awf_trust_free(m);
    return -1;
  }
  m->t.bundle = m->bundle;
  m->t.ca_pem = m->ca_pem;
  m->t.p12 = m->p12;
  return 0;
}

void awf_trust_free(struct awf_trust_material *m) {
  free(m->bundle);
  free(m->ca_pem);
  free(m->p12);
  memset(m, 0, sizeof(*m));
}

static int write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n < 0 ? -errno : -EIO;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int awf_trust_send(int sock, const struct awf_trust_material *m) {
  struct blob_header h = {.ca_hash = m->t.ca_hash,
                          .bundle_len = m->t.bundle_len,
                          .ca_len = m->t.ca_pem_len,
                          .p12_len = m->t.p12_len};
  memcpy(h.magic, blob_magic, sizeof(h.magic));
  int fd = memfd_create("awf-trust", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return -errno;
  int rc = write_all(fd, &h, sizeof(h));
  if (rc == 0)
    rc = write_all(fd, m->t.bundle, m->t.bundle_len);
  if (rc == 0)
    rc = write_all(fd, m->t.ca_pem, m->t.ca_pem_len);
  if (rc == 0 && m->t.p12_len)
    rc = write_all(fd, m->t.p12, m->t.p12_len);
  /* What PID 1 maps can no longer change. */
  if (rc == 0 &&
      fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
    rc = -errno;
  if (rc == 0)
    rc = awf_fdpass_send(sock, 't', &fd, 1);
  close(fd);
  return rc;
}

int awf_trust_receive(int sock, struct awf_rootfs_trust *t, char *err, size_t errsz) {
  char tag = 0;
  int fd = -1;
  size_t n = 0;
  int rc = awf_fdpass_recv(sock, &tag, &fd, 1, 1, &n);
  if (rc < 0)
    return awf_errbuf_fail(err, errsz, rc, "receiving the run's CA from awf: %s",
                           strerror(-rc));
  struct stat st;
  struct blob_header h = {0};
  void *map = MAP_FAILED;
  if (tag != 't' || fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(h))
    rc = -EPROTO;
  if (rc == 0) {
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
      rc = -errno;
  }
  close(fd);
  if (rc == 0) {
    memcpy(&h, map, sizeof(h));
    uint64_t size = (uint64_t)st.st_size - sizeof(h);
    if (memcmp(h.magic, blob_magic, sizeof(h.magic)) != 0 || h.bundle_len > size ||
        h.ca_len > size - h.bundle_len || h.p12_len != size - h.bundle_len - h.ca_len)
      rc = -EPROTO;
  }
  if (rc < 0) {
    if (map != MAP_FAILED)
      munmap(map, (size_t)st.st_size);
    return awf_errbuf_fail(err, errsz, rc, "receiving the run's CA from awf: %s",
                           strerror(-rc));
  }
  const char *base = (const char *)map + sizeof(h);
  *t = (struct awf_rootfs_trust){.bundle = base,
                                 .bundle_len = h.bundle_len,
                                 .ca_pem = base + h.bundle_len,
                                 .ca_pem_len = h.ca_len,
                                 .p12 = (const unsigned char *)base + h.bundle_len + h.ca_len,
                                 .p12_len = h.p12_len,
                                 .ca_hash = (unsigned long)h.ca_hash};
  if (h.p12_len == 0)
    t->p12 = NULL;
  return 0;
}
