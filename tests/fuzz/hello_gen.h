/* hello_gen.h: build well-formed TLS ClientHello messages from fuzz input,
 * for fuzz_sni's generated mode. Blind mutation of raw hellos rarely keeps
 * five nested lengths consistent, so deep cases (a 255-byte SNI, many names,
 * duplicate or large extensions) would stay out of reach; here the fuzzer
 * picks the contents and the generator writes the lengths, and records what
 * the parser must then report. */
#ifndef AWF_FUZZ_HELLO_GEN_H
#define AWF_FUZZ_HELLO_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HELLO_GEN_MSG_MAX 65536 /* msg buffer size hello_gen needs */

struct hello_gen {
  bool has_sni;         /* a server_name extension was written */
  bool names_ok;        /* every name in it has 0..255 bytes in 0x21..0x7e */
  bool dup_ext;         /* some extension type appears twice */
  bool ech;             /* an encrypted_client_hello extension was written */
  size_t nnames;        /* host_name entries in the (first) server_name */
  const uint8_t *first; /* the first host name, pointing into the description */
  size_t first_len;
  size_t body_len; /* the handshake body length declared */
};

/* Description: one flags byte (bits 0-1: session id of 0, 8, 16 or 32
 * bytes; bit 2: no extension block at all when no extension follows), then
 * extensions as type (2 bytes), length (2 bytes, cut to what is left;
 * 0xFFFF takes all that is left, so inserted bytes stay in the body), body.
 * A server_name body is host names separated by ',', each written as a
 * host_name entry. Writes the handshake message into msg (HELLO_GEN_MSG_MAX
 * bytes) and returns its length. */
size_t hello_gen(const uint8_t *desc, size_t n, uint8_t *msg, struct hello_gen *g);

#endif
