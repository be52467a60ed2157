/* http_target.c: the host, port and path of a proxy request target.
 *
 * The host decided here is the one the allowlist judges and the one dialled,
 * so the grammar is deliberately narrower than RFC 3986: wherever two URL
 * parsers could disagree about the host (backslashes, fragments,
 * percent-escapes, zone ids), the target is refused instead of interpreted. */
#include "http_target.h"

#include <arpa/inet.h>
#include <string.h>

#define HOST_MAX 253      /* DNS name, without a trailing dot */
#define PORT_DIGITS_MAX 5 /* "65535"; also bounds leading zeros */
#define HTTP_DEFAULT_PORT 80

static bool is_ctl_or_space(unsigned char ch) { return ch <= 0x20 || ch == 0x7f; }

static bool is_alnum(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static unsigned char to_lower(unsigned char ch) {
  return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch - 'A' + 'a') : ch;
}

/* strchr() would also find the terminating NUL; callers rule NUL out first,
 * but this must not depend on it. */
static bool in_set(unsigned char ch, const char *set) {
  return ch != '\0' && strchr(set, ch) != NULL;
}

static bool reg_name_char(unsigned char ch) {
  return is_alnum(ch) || ch == '.' || ch == '-' || ch == '_';
}

/* RFC 3986 userinfo, plus '@' since everything up to the last '@' counts. */
static bool userinfo_char(unsigned char ch) {
  return is_alnum(ch) || in_set(ch, "-._~%!$&'()*+,;=:@");
}

static bool any_ctl(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (is_ctl_or_space((unsigned char)s[i]))
      return true;
  return false;
}

static const char *find_byte(const char *s, size_t len, char ch) {
  return len ? memchr(s, ch, len) : NULL;
}

static bool prefix_ci(const char *s, size_t len, const char *prefix) {
  size_t n = strlen(prefix);
  if (len < n)
    return false;
  for (size_t i = 0; i < n; i++)
    if (to_lower((unsigned char)s[i]) != (unsigned char)prefix[i])
      return false;
  return true;
}

/* Decimal 1..65535. `empty_ok` lets "host:" mean the default port. */
static enum awf_target_status parse_port(const char *s, size_t len, bool empty_ok,
                                         uint16_t *port) {
  if (len == 0)
    return empty_ok ? AWF_TARGET_OK : AWF_TARGET_BAD_PORT;
  if (len > PORT_DIGITS_MAX)
    return AWF_TARGET_BAD_PORT;
  unsigned long v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return AWF_TARGET_BAD_PORT;
    v = v * 10 + (unsigned long)(s[i] - '0');
  }
  if (v < 1 || v > 65535)
    return AWF_TARGET_BAD_PORT;
  *port = (uint16_t)v;
  return AWF_TARGET_OK;
}

/* "[v6]" with the brackets; stored in canonical inet_ntop form so that one
 * address has one spelling downstream. */
static enum awf_target_status parse_ipv6(const char *s, size_t len, struct awf_http_target *t) {
  char text[INET6_ADDRSTRLEN];
  struct in6_addr a;
  size_t n = len - 2;
  if (n == 0 || n >= sizeof(text))
    return AWF_TARGET_BAD_HOST;
  memcpy(text, s + 1, n);
  text[n] = '\0';
  /* inet_pton refuses "%zone" already; checked anyway so that a libc that
   * tolerated zone ids could not widen what is admitted. */
  if (strchr(text, '%') != NULL || inet_pton(AF_INET6, text, &a) != 1)
    return AWF_TARGET_BAD_HOST;
  if (inet_ntop(AF_INET6, &a, t->host, sizeof(t->host)) == NULL)
    return AWF_TARGET_BAD_HOST;
  t->host_len = strlen(t->host);
  t->host_is_ipv6 = true;
  return AWF_TARGET_OK;
}

static enum awf_target_status parse_reg_name(const char *s, size_t len,
                                             struct awf_http_target *t) {
  size_t max = len > 0 && s[len - 1] == '.' ? HOST_MAX + 1 : HOST_MAX;
  if (len == 0 || len > max)
    return AWF_TARGET_BAD_HOST;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (!reg_name_char(ch))
      return AWF_TARGET_BAD_HOST;
    t->host[i] = (char)to_lower(ch);
  }
  t->host[len] = '\0';
  t->host_len = len;
  return AWF_TARGET_OK;
}

/* host [":" port], the userinfo already removed. */
static enum awf_target_status parse_host_port(const char *s, size_t len, bool port_required,
                                              struct awf_http_target *t) {
  const char *colon;
  size_t host_len;
  if (len > 0 && s[0] == '[') {
    const char *close = find_byte(s, len, ']');
    if (close == NULL)
      return AWF_TARGET_BAD_HOST;
    host_len = (size_t)(close - s) + 1;
    if (host_len < len && s[host_len] != ':')
      return AWF_TARGET_BAD_HOST;
    colon = host_len < len ? s + host_len : NULL;
    enum awf_target_status st = parse_ipv6(s, host_len, t);
    if (st != AWF_TARGET_OK)
      return st;
  } else {
    colon = find_byte(s, len, ':');
    host_len = colon ? (size_t)(colon - s) : len;
    enum awf_target_status st = parse_reg_name(s, host_len, t);
    if (st != AWF_TARGET_OK)
      return st;
  }
  if (colon == NULL)
    return port_required ? AWF_TARGET_BAD_PORT : AWF_TARGET_OK;
  size_t port_off = host_len + 1;
  return parse_port(s + port_off, len - port_off, !port_required, &t->port);
}

static void target_reset(struct awf_http_target *t) { memset(t, 0, sizeof(*t)); }

enum awf_target_status awf_target_parse_absolute(const char *uri, size_t len,
                                                 struct awf_http_target *t) {
  static const char scheme[] = "http://";
  const size_t scheme_len = sizeof(scheme) - 1;

  target_reset(t);
  if (any_ctl(uri, len))
    return AWF_TARGET_BAD_SYNTAX;
  if (!prefix_ci(uri, len, scheme))
    return AWF_TARGET_BAD_SCHEME;
  /* No fragment ever belongs in a request target (RFC 9112 3.2), and where
   * '#' sits relative to '@' is exactly where URL parsers disagree. */
  if (find_byte(uri, len, '#') != NULL)
    return AWF_TARGET_BAD_SYNTAX;

  const char *auth = uri + scheme_len;
  size_t rest = len - scheme_len;
  size_t auth_len = 0;
  while (auth_len < rest && auth[auth_len] != '/' && auth[auth_len] != '?')
    auth_len++;

  /* The last '@' ends the userinfo: that is where an HTTP client splits
   * too, so "http://allowed.com@evil.com/" is judged as evil.com. */
  const char *at = NULL;
  for (size_t i = 0; i < auth_len; i++)
    if (auth[i] == '@')
      at = auth + i;
  if (at != NULL) {
    for (const char *p = auth; p < at; p++)
      if (!userinfo_char((unsigned char)*p))
        return AWF_TARGET_BAD_SYNTAX;
    t->had_userinfo = true;
    auth_len -= (size_t)(at + 1 - auth);
    auth = at + 1;
  }

  t->port = HTTP_DEFAULT_PORT;
  enum awf_target_status st = parse_host_port(auth, auth_len, false, t);
  if (st != AWF_TARGET_OK)
    return st;

  const char *path = auth + auth_len;
  size_t path_len = (size_t)(uri + len - path);
  /* Zero length means "/": point at a literal so path[0] is always safe. */
  t->path = path_len ? path : "/";
  t->path_len = path_len;
  return AWF_TARGET_OK;
}

enum awf_target_status awf_target_parse_authority(const char *s, size_t len,
                                                  struct awf_http_target *t) {
  target_reset(t);
  if (any_ctl(s, len))
    return AWF_TARGET_BAD_SYNTAX;
  /* A scheme, userinfo, path, query or fragment has no place here. */
  for (size_t i = 0; i < len; i++)
    if (in_set((unsigned char)s[i], "@/?#\\"))
      return AWF_TARGET_BAD_SYNTAX;
  return parse_host_port(s, len, true, t);
}

const char *awf_target_status_name(enum awf_target_status s) {
  switch (s) {
  case AWF_TARGET_OK: return "ok";
  case AWF_TARGET_BAD_SCHEME: return "bad_scheme";
  case AWF_TARGET_BAD_HOST: return "bad_host";
  case AWF_TARGET_BAD_PORT: return "bad_port";
  case AWF_TARGET_BAD_SYNTAX: return "bad_syntax";
  }
  return "unknown";
}
