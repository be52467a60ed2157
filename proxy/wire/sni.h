/* sni.h: TLS ClientHello parsing, to learn the server name a client asks for.
 * A pure function over the bytes received so far: callers append what arrives
 * and call again, so a hello split across TCP segments, across TLS records,
 * or delivered one byte at a time parses the same. Bounded: a hello whose
 * handshake message exceeds AWF_HELLO_MAX bytes is rejected. */
#ifndef AWF_SNI_H
#define AWF_SNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AWF_HELLO_MAX 16384 /* cap on the ClientHello handshake message */
/* Cap on the bytes a caller needs to buffer: records carrying AWF_HELLO_MAX
 * bytes of handshake, each with a 5-byte header, plus slack. A hello whose
 * records would end past it is TOO_LARGE, so NEED_MORE is only ever returned
 * for len < AWF_HELLO_BUFFER_MAX: a buffer this size never fills waiting. */
#define AWF_HELLO_BUFFER_MAX (AWF_HELLO_MAX + 4096)

enum awf_hello_status {
  AWF_HELLO_OK = 0,         /* complete hello parsed; see struct */
  AWF_HELLO_NEED_MORE = 1,  /* valid so far, incomplete: feed more bytes */
  AWF_HELLO_NOT_TLS = -1,   /* first bytes are not a TLS handshake record */
  AWF_HELLO_MALFORMED = -2, /* inconsistent lengths, not a ClientHello, ... */
  AWF_HELLO_TOO_LARGE = -3, /* handshake message over AWF_HELLO_MAX */
};

struct awf_tls_hello {
  bool has_sni;      /* a server_name extension with a host_name entry */
  bool sni_multiple; /* more than one host_name entry (we deny these) */
  bool ech;          /* encrypted_client_hello extension (0xfe0d) present */
  uint16_t legacy_version;
  size_t sni_len;  /* length of sni, 0 if !has_sni */
  char sni[256];   /* the first host_name, NUL-terminated, raw bytes */
  size_t consumed; /* bytes of input covered by the records holding the hello */
};

/* Parse the ClientHello at the start of buf[0..len). Fills *out on AWF_HELLO_OK.
 * The SNI is returned as sent (not normalised, not validated as a host name:
 * NUL or non-ASCII bytes inside it make it AWF_HELLO_MALFORMED). */
enum awf_hello_status awf_tls_hello_parse(const uint8_t *buf, size_t len,
                                          struct awf_tls_hello *out);

/* "ok", "need_more", "not_tls", "malformed", "too_large". */
const char *awf_hello_status_name(enum awf_hello_status s);

#endif
