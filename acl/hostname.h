/* hostname.h: normalise and classify the host names that requests carry.
 * Pure functions, no I/O. */
#ifndef AWF_HOSTNAME_H
#define AWF_HOSTNAME_H

#include <stddef.h>
#include <netinet/in.h>

#define AWF_HOSTNAME_MAX 253 /* bytes, without the trailing dot */
#define AWF_LABEL_MAX 63

/* Normalise a requested DNS name: ASCII lower case, one trailing dot removed.
 * Valid: 1..253 bytes, labels of 1..63 bytes of [a-z0-9-_]. Rejects empty
 * labels ("a..b", ".a"), non-ASCII bytes, NUL, anything else.
 * `out` must hold at least AWF_HOSTNAME_MAX + 1 bytes; it is NUL-terminated.
 * Returns the length written, or -EINVAL. */
int awf_hostname_normalize(const char *in, size_t len, char *out, size_t outsz);

/* An IP literal in a host position: "1.2.3.4" or "::1" (no brackets; the
 * caller strips URI brackets). Strict dotted-quad only (no "1.2.3", no octal
 * or hex forms, which inet_aton would accept and a browser might too).
 * On success fills *out (sin_port 0 / sin6_port 0) and returns AF_INET or
 * AF_INET6; returns 0 when `in` is not an IP literal. */
int awf_ip_literal_parse(const char *in, size_t len, struct sockaddr_storage *out);

#endif
