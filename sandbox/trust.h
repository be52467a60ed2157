/* trust.h: the sandbox's trust in the run's CA (--ssl-bump), from awf to the
 * sandbox's PID 1. awf makes the CA after the sandbox is cloned, so that no
 * process of the sandbox ever holds a copy of its key (not even in memory
 * copied by the clone); the CA's certificate then reaches PID 1, before it
 * builds its root, as one memfd: the bundle (the host's bundle then the CA),
 * the CA alone, Java's PKCS#12 truststore and the CA's subject hash
 * (truststore.h). rootfs.c puts them in place (rootfs.h: AWF_TRUST_*). */
#ifndef AWF_TRUST_H
#define AWF_TRUST_H

#include <stddef.h>

#include "rootfs.h"

/* The host bundle awf reads when SSL_CERT_FILE is not set. */
#define AWF_TRUST_HOST_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define AWF_TRUST_HOST_BUNDLE_MAX (16u << 20) /* bytes read at most */

/* What awf makes and sends: t points into the malloc()ed buffers. */
struct awf_trust_material {
  struct awf_rootfs_trust t;
  char *bundle, *ca_pem;
  unsigned char *p12;
};

/* The host's bundle, read with the caller's rights (the caller's job): the
 * file SSL_CERT_FILE names (ssl_cert_file, if not NULL or empty), else
 * AWF_TRUST_HOST_BUNDLE. A missing default is no bundle (*text NULL, 0); a
 * named file that cannot be read is an error. 0 or -errno with err. */
int awf_trust_read_host_bundle(const char *ssl_cert_file, char **text, size_t *len, char *err,
                               size_t errsz);

/* The material for the CA ca_pem[0..ca_len) and the host's bundle
 * (host may be NULL). 0, or -1 with the reason in err. */
int awf_trust_make(const char *ca_pem, size_t ca_len, const char *host, size_t host_len,
                   struct awf_trust_material *m, char *err, size_t errsz);
void awf_trust_free(struct awf_trust_material *m);

/* awf: the material to PID 1 over sock (fdpass.h), tag 't', in a sealed
 * memfd. 0 or -errno. */
int awf_trust_send(int sock, const struct awf_trust_material *m);

/* PID 1: take the material from sock into *t, pointing into a read-only
 * mapping that stays for the process's life (no malloc: PID 1 is a clone
 * of a process that may have threads). 0, or -errno with err. */
int awf_trust_receive(int sock, struct awf_rootfs_trust *t, char *err, size_t errsz);

#endif
