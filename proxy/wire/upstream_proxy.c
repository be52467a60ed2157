/* upstream_proxy.c: the parent proxy's URL, NO_PROXY, CONNECT and answer. */
#include "upstream_proxy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_target.h"

static void set_err(char *err, size_t errlen, const char *msg) {
  if (errlen)
    snprintf(err, errlen, "%s", msg);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decode in[0..len) into out (NUL-terminated). Control bytes, in
 * the clear or escaped, are refused. Returns the length, or -1. */
static int pct_decode(const char *in, size_t len, char *out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    int c = (unsigned char)in[i];
    if (c == '%') {
      int hi = i + 2 < len ? hexval(in[i + 1]) : -1;
      int lo = i + 2 < len ? hexval(in[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return -1;
      c = hi * 16 + lo;
      i += 2;
    }
    if (c < 0x20 || c == 0x7f || n + 1 >= cap)
      return -1;
    out[n++] = (char)c;
  }
  out[n] = '\0';
  return (int)n;
}

static size_t base64(const unsigned char *in, size_t len, char *out, size_t cap) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = 0;
  if (cap < 4 * ((len + 2) / 3) + 1)
    return 0;
  for (size_t i = 0; i < len; i += 3) {
    unsigned v = (unsigned)in[i] << 16;
    if (i + 1 < len)
      v |= (unsigned)in[i + 1] << 8;
    if (i + 2 < len)
      v |= in[i + 2];
    out[n++] = tab[(v >> 18) & 63];
    out[n++] = tab[(v >> 12) & 63];
    out[n++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
    out[n++] = i + 2 < len ? tab[v & 63] : '=';
  }
  out[n] = '\0';
  return n;
}

/* userinfo (raw, still escaped) -> p->auth. */
static int set_auth(struct awf_upstream_proxy *p, const char *ui, size_t len, char *err,
                    size_t errlen) {
  char user[256], pass[256], both[520];
  const char *colon = memchr(ui, ':', len);
  size_t ulen = colon ? (size_t)(colon - ui) : len;
  int u = pct_decode(ui, ulen, user, sizeof(user));
  int w = colon ? pct_decode(colon + 1, len - ulen - 1, pass, sizeof(pass)) : 0;
  if (!colon)
    pass[0] = '\0';
  if (u < 0 || w < 0) {
    set_err(err, errlen, "bad user or password (a bad %-escape, a control byte, or too long)");
    return -1;
  }
  if (strchr(user, ':')) { /* Basic cannot carry a ':' in the user name */
    set_err(err, errlen, "the user name may not contain ':' (%3A)");
    return -1;
  }
  int k = snprintf(both, sizeof(both), "%s:%s", user, pass);
  memcpy(p->auth, "Basic ", 6);
  if (k < 0 ||
      !base64((const unsigned char *)both, (size_t)k, p->auth + 6, sizeof(p->auth) - 6)) {
    set_err(err, errlen, "credentials too long");
    return -1;
  }
  explicit_bzero(both, sizeof(both));
  explicit_bzero(pass, sizeof(pass));
  return 0;
}

int awf_upstream_proxy_parse(const char *url, struct awf_upstream_proxy *out, char *err,
                             size_t errlen) {
  memset(out, 0, sizeof(*out));
  const char *s = url;
  const char *sep = strstr(s, "://");
  if (sep) {
    if ((size_t)(sep - s) != 4 || strncasecmp(s, "http", 4) != 0) {
      set_err(err, errlen,
              strncasecmp(s, "https://", 8) == 0
                  ? "https:// parent proxies are not supported (use http://host:port)"
                  : "the scheme must be http://");
      return -1;
    }
    s = sep + 3;
  }
  size_t auth_len = strcspn(s, "/?#");
  const char *rest = s + auth_len;
  if (rest[0] && strcmp(rest, "/") != 0) {
    set_err(err, errlen, "a path, query or fragment is not allowed: http://host:port");
    return -1;
  }
  const char *at = NULL;
  for (size_t i = 0; i < auth_len; i++)
    if (s[i] == '@')
      at = s + i; /* the last '@' ends the userinfo */
  const char *hp = at ? at + 1 : s;
  size_t hp_len = auth_len - (size_t)(hp - s);
  if (at && set_auth(out, s, (size_t)(at - s), err, errlen) < 0)
    return -1;
  char buf[300];
  struct awf_http_target t;
  if (hp_len == 0 || hp_len > 270) {
    set_err(err, errlen, "no host, or a host too long");
    return -1;
  }
  int k = snprintf(buf, sizeof(buf), "http://%.*s/", (int)hp_len, hp);
  if (k < 0 || awf_target_parse_absolute(buf, (size_t)k, &t) != AWF_TARGET_OK) {
    set_err(err, errlen, "bad host or port: http://[user:password@]host:port");
    return -1;
  }
  memcpy(out->host, t.host, t.host_len + 1);
  out->port = t.port;
  return 0;
}

int awf_upstream_proxy_set_no_proxy(struct awf_upstream_proxy *p, const char *list) {
  if (strlen(list) >= sizeof(p->no_proxy))
    return -1;
  snprintf(p->no_proxy, sizeof(p->no_proxy), "%s", list);
  return 0;
}

bool awf_upstream_proxy_bypass(const struct awf_upstream_proxy *p, const char *host) {
  size_t hl = strlen(host);
  const char *s = p->no_proxy;
  while (*s) {
    s += strspn(s, ", \t");
    size_t n = strcspn(s, ", \t");
    const char *e = s;
    s += n;
    if (n == 1 && e[0] == '*')
      return true;
    if (n > 0 && e[0] == '.') { /* ".x.com": the same as "x.com" */
      e++;
      n--;
    }
    if (n > 2 && e[0] == '[' && e[n - 1] == ']') { /* "[::1]" */
      e++;
      n -= 2;
    }
    if (n > 0 && e[n - 1] == '.')
      n--;
    if (n == 0 || n > hl)
      continue;
    if (strncasecmp(host + hl - n, e, n) == 0 && (hl == n || host[hl - n - 1] == '.'))
      return true;
  }
  return false;
}

int awf_connect_request(char *out, size_t cap, const struct awf_upstream_proxy *p,
                        const char *host, uint16_t port) {
  size_t hl = strlen(host);
  if (hl == 0 || hl > 255 ||
      strspn(host, "abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:") != hl)
    return -1;
  bool v6 = strchr(host, ':') != NULL;
  char hostport[300];
  snprintf(hostport, sizeof(hostport), "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
           (unsigned)port);
  int k = snprintf(out, cap, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s%s%s\r\n", hostport,
                   hostport, p->auth[0] ? "Proxy-Authorization: " : "", p->auth,
                   p->auth[0] ? "\r\n" : "");
  return k < 0 || (size_t)k >= cap ? -1 : k;
}

/* RFC 9110 token characters (a header name). */
static bool tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Text of a reason phrase or a header value: no control byte but HTAB. */
static bool text(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

enum pstate {
  P_STATUS, /* the fixed part of the status line, by position */
  P_REASON, /* the reason phrase */
  P_LF,     /* a CR was read: LF must follow, then a new line */
  P_LINE,   /* a line starts: a name, or CR for the blank line */
  P_NAME,
  P_VALUE,
  P_END_LF, /* the blank line's CR: LF ends the head */
};

enum awf_connect_status awf_connect_response_parse(const char *buf, size_t len, int *status) {
  static const char fixed[] = "HTTP/1.";
  enum pstate st = P_STATUS;
  int code = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)buf[i];
    switch (st) {
    case P_STATUS:
      if (i < 7) {
        if (c != (unsigned char)fixed[i])
          return AWF_CONNECT_BAD;
      } else if (i == 7 || (i >= 9 && i <= 11)) {
        if (c < '0' || c > '9')
          return AWF_CONNECT_BAD;
        if (i >= 9)
          code = code * 10 + (c - '0');
      } else if (i == 8) {
        if (c != ' ')
          return AWF_CONNECT_BAD;
      } else { /* i == 12: the reason, or the end of the line */
        if (c == '\r')
          st = P_LF;
        else if (c == ' ')
          st = P_REASON;
        else
          return AWF_CONNECT_BAD;
        if (code < 100)
          return AWF_CONNECT_BAD;
        *status = code;
      }
      break;
    case P_REASON:
    case P_VALUE:
      if (c == '\r')
        st = P_LF;
      else if (!text(c))
        return AWF_CONNECT_BAD;
      break;
    case P_LF:
      if (c != '\n')
        return AWF_CONNECT_BAD;
      st = P_LINE;
      break;
    case P_LINE:
      if (c == '\r')
        st = P_END_LF;
      else if (tchar(c))
        st = P_NAME;
      else
        return AWF_CONNECT_BAD; /* a folded line, a bare LF, junk */
      break;
    case P_NAME:
      if (c == ':')
        st = P_VALUE;
      else if (!tchar(c))
        return AWF_CONNECT_BAD;
      break;
    case P_END_LF:
      if (c != '\n')
        return AWF_CONNECT_BAD;
      return i + 1 == len ? AWF_CONNECT_DONE : AWF_CONNECT_BAD; /* read past the head */
    }
  }
  return len >= AWF_CONNECT_RESPONSE_MAX ? AWF_CONNECT_BAD : AWF_CONNECT_NEED_MORE;
}

size_t awf_connect_response_want(const char *buf, size_t len) {
  static const char end[] = "\r\n\r\n";
  size_t want = 4, room = len < AWF_CONNECT_RESPONSE_MAX ? AWF_CONNECT_RESPONSE_MAX - len : 1;
  /* The longest tail of buf that begins the terminator. */
  for (size_t m = 3; m > 0 && want == 4; m--)
    if (len >= m && memcmp(buf + len - m, end, m) == 0)
      want = 4 - m;
  return want < room ? want : room;
}
