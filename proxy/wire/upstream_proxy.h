/* upstream_proxy.h: the parent ("upstream") HTTP proxy that allowed traffic
 * leaves through (--upstream-proxy): its URL, the NO_PROXY list of names
 * that go direct, the CONNECT request sent to it, and a strict parser of its
 * answer. Pure: no I/O (the dialer, engine/dialer.c, does the talking).
 *
 * The answer is read without ever reading past its head: the reader asks
 * awf_connect_response_want() how many bytes it may take next, so every
 * byte after the head's blank line stays in the socket and belongs to the
 * origin (a server-first protocol's banner may follow at once). */
#ifndef AWF_UPSTREAM_PROXY_H
#define AWF_UPSTREAM_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AWF_UPSTREAM_AUTH_MAX 1024     /* "Basic " + base64 of user:pass */
#define AWF_UPSTREAM_NO_PROXY_MAX 2048 /* the NO_PROXY list as given */
#define AWF_CONNECT_RESPONSE_MAX 8192  /* the parent's answer head, at most */
#define AWF_CONNECT_REQUEST_MAX (600 + AWF_UPSTREAM_AUTH_MAX)

struct awf_upstream_proxy {
  char host[256]; /* a name or an IP literal (IPv6 without brackets) */
  uint16_t port;  /* explicit, or 80 */
  /* "Basic <base64(user:pass)>" when the URL has userinfo (percent-decoded
   * first), else empty. Never logged. */
  char auth[AWF_UPSTREAM_AUTH_MAX];
  /* Names that are dialled directly, comma- or space-separated: "*" (all),
   * "name" or ".name" (the name and every name under it), IP literals
   * (exactly). Empty: none. */
  char no_proxy[AWF_UPSTREAM_NO_PROXY_MAX];
};

/* "http://[user[:password]@]host[:port][/]"; "host:port" without a scheme
 * is taken as http://. Only http:// (TLS to the parent is not supported).
 * Returns 0, or -1 with the reason in err. */
int awf_upstream_proxy_parse(const char *url, struct awf_upstream_proxy *out, char *err,
                             size_t errlen);

/* Set the NO_PROXY list. Returns 0, or -1 when it is too long. */
int awf_upstream_proxy_set_no_proxy(struct awf_upstream_proxy *p, const char *list);

/* Does host (normalised: lower case, no trailing dot, IPv6 without
 * brackets) bypass the parent by the NO_PROXY list? */
bool awf_upstream_proxy_bypass(const struct awf_upstream_proxy *p, const char *host);

/* "CONNECT host:port HTTP/1.1" with Host and, if set, Proxy-Authorization.
 * host is an admitted name or IP literal; anything else (a byte outside
 * [a-z0-9.-_:], which would let a name inject a header) is refused. Returns
 * the length written, or -1. */
int awf_connect_request(char *out, size_t cap, const struct awf_upstream_proxy *p,
                        const char *host, uint16_t port);

enum awf_connect_status {
  AWF_CONNECT_NEED_MORE = 0, /* a valid beginning: read more */
  AWF_CONNECT_DONE = 1,      /* the head is complete; *status holds the code */
  AWF_CONNECT_BAD = -1,      /* not an HTTP/1.x response head, or too long */
};

/* Judge buf[0..len), the bytes read so far (never more than the head).
 * Strict: "HTTP/1.x NNN reason" CRLF, header lines "name: value" CRLF, a
 * blank line; no bare CR or LF, no NUL, no folded lines. *status is set as
 * soon as the status line is complete. */
enum awf_connect_status awf_connect_response_parse(const char *buf, size_t len, int *status);

/* How many bytes may be read next without passing the end of the head,
 * given the bytes read so far: 1 to 4, and never past
 * AWF_CONNECT_RESPONSE_MAX in all (where the parser says BAD). */
size_t awf_connect_response_want(const char *buf, size_t len);

#endif
