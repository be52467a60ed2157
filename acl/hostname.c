/* hostname.c: normalise requested host names and recognise strict IP
 * literals. Pure functions over (pointer, length) input; no locale, no I/O. */
#include "hostname.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* Longest textual IPv6 address: 8 groups of 4 hex digits and 7 colons, or
 * 6 groups + an embedded dotted quad (45 bytes). */
#define IPV6_TEXT_MAX 45
#define IPV4_TEXT_MAX 15

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static bool is_hex(unsigned char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Byte of a requested host name after lower-casing, or 0 when the byte may not
 * appear in one. '_' is admitted because real names carry it (SRV-style and
 * some CDN labels) and resolvers pass it through. */
static unsigned char name_byte(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return (unsigned char)(c - 'A' + 'a');
  if ((c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '_')
    return c;
  return 0;
}

/* A last label made only of digits, or starting with "0x", makes many clients
 * (inet_aton, browsers' URL parsers) read the whole name as an IPv4 address
 * ("1.2.3", "0x7f.1", "127.1"). Such a name must never be matched as a domain,
 * or a rule could be satisfied by text that a client dials as an address. */
static bool reads_as_ipv4(const char *label, size_t len) {
  if (len >= 2 && label[0] == '0' && label[1] == 'x')
    return true;
  for (size_t i = 0; i < len; i++)
    if (!is_digit((unsigned char)label[i]))
      return false;
  return true;
}

int awf_hostname_normalize(const char *in, size_t len, char *out, size_t outsz) {
  if (out != NULL && outsz > 0)
    out[0] = '\0';
  if (in == NULL || out == NULL)
    return -EINVAL;
  if (len > 0 && in[len - 1] == '.')
    len--; /* the root label: "github.com." is github.com */
  if (len == 0 || len > AWF_HOSTNAME_MAX || len >= outsz)
    return -EINVAL;

  size_t label_start = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)in[i];
    if (c == '.') {
      if (i == label_start)
        goto invalid; /* empty label: ".a", "a..b" */
      out[i] = '.';
      label_start = i + 1;
      continue;
    }
    c = name_byte(c);
    if (c == 0 || i - label_start >= AWF_LABEL_MAX)
      goto invalid;
    out[i] = (char)c;
  }
  if (label_start == len || reads_as_ipv4(out + label_start, len - label_start))
    goto invalid;
  out[len] = '\0';
  return (int)len;

invalid:
  out[0] = '\0';
  return -EINVAL;
}

/* Strict dotted quad: exactly four decimal parts of 1..3 digits, each at most
 * 255, no leading zero (which inet_aton reads as octal), nothing else. */
static bool parse_ipv4(const char *s, size_t n, uint8_t out[4]) {
  size_t i = 0;
  if (n > IPV4_TEXT_MAX)
    return false;
  for (int part = 0; part < 4; part++) {
    if (part > 0) {
      if (i >= n || s[i] != '.')
        return false;
      i++;
    }
    size_t start = i;
    unsigned v = 0;
    while (i < n && is_digit((unsigned char)s[i]) && i - start < 3)
      v = v * 10 + (unsigned)(s[i++] - '0');
    if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
      return false;
    out[part] = (uint8_t)v;
  }
  return i == n;
}

/* IPv6 text without brackets or zone. inet_pton is strict enough here: it
 * rejects zones, "::" twice, over-long groups, and leading zeros or short
 * forms in an embedded dotted quad. It wants a NUL-terminated string, so the
 * candidate is first bounded and copied. */
static bool parse_ipv6(const char *s, size_t n, struct in6_addr *out) {
  char buf[IPV6_TEXT_MAX + 1];
  bool colon = false;
  if (n < 2 || n > IPV6_TEXT_MAX)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ':')
      colon = true;
    else if (!is_hex(c) && c != '.')
      return false;
  }
  if (!colon)
    return false;
  memcpy(buf, s, n);
  buf[n] = '\0';
  return inet_pton(AF_INET6, buf, out) == 1;
}

int awf_ip_literal_parse(const char *in, size_t len, struct sockaddr_storage *out) {
  uint8_t v4[4];
  struct in6_addr v6;

  if (in == NULL)
    return 0;
  if (parse_ipv4(in, len, v4)) {
    if (out != NULL) {
      struct sockaddr_in sin;
      memset(out, 0, sizeof *out);
      memset(&sin, 0, sizeof sin);
      sin.sin_family = AF_INET;
      memcpy(&sin.sin_addr, v4, sizeof v4);
      memcpy(out, &sin, sizeof sin);
    }
    return AF_INET;
  }
  if (parse_ipv6(in, len, &v6)) {
    if (out != NULL) {
      struct sockaddr_in6 sin6;
      memset(out, 0, sizeof *out);
      memset(&sin6, 0, sizeof sin6);
      sin6.sin6_family = AF_INET6;
      sin6.sin6_addr = v6;
      memcpy(out, &sin6, sizeof sin6);
    }
    return AF_INET6;
  }
  return 0;
}
