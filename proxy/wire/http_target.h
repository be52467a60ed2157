/* http_target.h: parse the request target of a proxy request: the
 * absolute-form URI of "GET http://host[:port]/path HTTP/1.1" and the
 * authority-form "host:port" of CONNECT. Pure functions, no I/O. */
#ifndef AWF_HTTP_TARGET_H
#define AWF_HTTP_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct awf_http_target {
  char host[256]; /* lower-cased; IPv6 without brackets; NUL-terminated */
  size_t host_len;
  bool host_is_ipv6; /* written as [v6] in the URI */
  uint16_t port;     /* explicit or the scheme's default */
  const char *path;  /* origin-form to send upstream: points into the input, "/..."
                       * or "?..." (send "/" first when path[0] == '?') */
  size_t path_len;   /* 0 means "/" (absolute URI without a path); path is "/" then */
  bool had_userinfo; /* "user:pass@" was present (never forwarded) */
};

enum awf_target_status {
  AWF_TARGET_OK = 0,
  AWF_TARGET_BAD_SCHEME = -1, /* not http:// (https:// needs CONNECT) */
  AWF_TARGET_BAD_HOST = -2,   /* empty, too long, bad characters, %-escapes, bad [v6] */
  AWF_TARGET_BAD_PORT = -3,   /* not 1..65535 decimal, or missing where required */
  AWF_TARGET_BAD_SYNTAX = -4, /* anything else (spaces, control bytes, fragment, ...) */
};

/* Absolute-form: "http://" (scheme case-insensitive), optional userinfo "@"
 * (the last '@' before the path ends the userinfo, so
 * "http://allowed.com@evil.com/" has host evil.com), host, optional ":port"
 * (default 80), then a path/query starting with '/' or '?', or nothing. */
enum awf_target_status awf_target_parse_absolute(const char *uri, size_t len,
                                                 struct awf_http_target *t);

/* Authority-form for CONNECT: "host:port" or "[v6]:port"; the port is
 * required; no scheme, userinfo or path. path is NULL. */
enum awf_target_status awf_target_parse_authority(const char *s, size_t len,
                                                  struct awf_http_target *t);

const char *awf_target_status_name(enum awf_target_status s);

#endif
