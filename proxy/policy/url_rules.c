/* url_rules.c: URL rules and the request-target normaliser (url_rules.h). */
#include "url_rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostname.h"

#define MAX_METHODS_LEN 128
#define MAX_ENTRY_LEN 4096

struct url_rule {
  enum awf_url_list list;
  enum awf_url_scheme scheme;
  char *methods; /* ",GET,HEAD,"; NULL: any method */
  char *host;    /* lower case, '*' within a label */
  char *path;    /* normalised, '*' any run; "PATH?QUERY" when query */
  bool query;    /* the pattern has a '?': matched against path and query */
  char *text;    /* as given */
};

struct awf_url_rules {
  struct url_rule *v;
  size_t n, cap;
};

awf_url_rules *awf_url_rules_new(void) { return calloc(1, sizeof(awf_url_rules)); }

static void rule_free(struct url_rule *u) {
  free(u->methods);
  free(u->host);
  free(u->path);
  free(u->text);
}

void awf_url_rules_free(awf_url_rules *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++)
    rule_free(&r->v[i]);
  free(r->v);
  free(r);
}

/* ---- the normaliser ------------------------------------------------------ */

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static bool unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

/* Decode the escapes of unreserved characters, upper-case the hex of the
 * others; refuse a bad escape, '#' and bytes outside visible ASCII. out holds
 * len bytes. Returns the length or -EINVAL. */
static int decode_unreserved(const char *in, size_t len, char *out) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)in[i];
    if (c <= 0x20 || c >= 0x7f || c == '#')
      return -EINVAL;
    if (c != '%') {
      out[o++] = (char)c;
      continue;
    }
    int hi = i + 2 < len ? hexval(in[i + 1]) : -1, lo = i + 2 < len ? hexval(in[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      return -EINVAL;
    unsigned char v = (unsigned char)(hi * 16 + lo);
    i += 2;
    if (unreserved(v)) {
      out[o++] = (char)v;
    } else {
      out[o++] = '%';
      out[o++] = hex[v >> 4];
      out[o++] = hex[v & 15];
    }
  }
  return (int)o;
}

/* The segments of p (which starts with '/'): is one of them "..", ".", or
 * empty before another '/' ("//")? */
struct seg_facts {
  bool dotdot, dot, empty;
};

static struct seg_facts seg_facts(const char *p, size_t n) {
  struct seg_facts f = {false, false, false};
  size_t i = 1;
  while (i <= n) {
    size_t j = i;
    while (j < n && p[j] != '/')
      j++;
    size_t sl = j - i;
    if (sl == 2 && p[i] == '.' && p[i + 1] == '.')
      f.dotdot = true;
    else if (sl == 1 && p[i] == '.')
      f.dot = true;
    else if (sl == 0 && j < n)
      f.empty = true;
    i = j + 1;
  }
  return f;
}

/* RFC 3986 5.2.4 over a path starting with '/', in place; then runs of '/'
 * merged. Returns the new length. */
static size_t remove_dots_merge(char *p, size_t n) {
  size_t o = 0, i = 1;
  while (i <= n) {
    size_t j = i;
    while (j < n && p[j] != '/')
      j++;
    size_t sl = j - i;
    bool last = j >= n;
    if (sl == 1 && p[i] == '.') {
      if (last && (o == 0 || p[o - 1] != '/'))
        p[o++] = '/';
    } else if (sl == 2 && p[i] == '.' && p[i + 1] == '.') {
      while (o > 0 && p[o - 1] != '/')
        o--; /* the last segment... */
      if (o > 0 && !last)
        o--; /* ...and its '/', unless a '/' must end the path */
      if (last && o == 0)
        p[o++] = '/';
    } else {
      p[o++] = '/'; /* o < i: the output never overtakes the input */
      memmove(p + o, p + i, sl);
      o += sl;
    }
    i = j + 1;
  }
  /* merge runs of '/' */
  size_t w = 0;
  for (size_t k = 0; k < o; k++)
    if (!(p[k] == '/' && w > 0 && p[w - 1] == '/'))
      p[w++] = p[k];
  if (w == 0)
    p[w++] = '/';
  return w;
}

/* %2F, %5C and '\' as '/' (p is decode_unreserved's output: every '%' is
 * followed by two upper-case hex digits), in place. Returns the length. */
static size_t slashes(char *p, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '%' &&
        ((p[i + 1] == '2' && p[i + 2] == 'F') || (p[i + 1] == '5' && p[i + 2] == 'C'))) {
      p[o++] = '/';
      i += 2;
    } else {
      p[o++] = p[i] == '\\' ? '/' : p[i];
    }
  }
  return o;
}

/* Each segment's ";params" (from ';' to the next '/') dropped, in place.
 * Returns the length. */
static size_t strip_params(char *p, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == ';')
      while (i + 1 < n && p[i + 1] != '/')
        i++;
    else
      p[o++] = p[i];
  }
  return o;
}

int awf_url_normalize_path_as(const char *in, size_t len, enum awf_url_reading k, char *out,
                              size_t outsz) {
  if (outsz < len + 2 || (unsigned)k >= AWF_URL_READINGS)
    return -EINVAL;
  if (len == 0) {
    memcpy(out, "/", 2);
    return 1;
  }
  if (in[0] != '/' || memchr(in, '?', len))
    return -EINVAL;
  int d = decode_unreserved(in, len, out);
  if (d < 0)
    return d;
  size_t n = (size_t)d;
  if (k == AWF_URL_READ_SLASH || k == AWF_URL_READ_SLASH_PARAMS)
    n = slashes(out, n);
  if (k == AWF_URL_READ_PARAMS || k == AWF_URL_READ_SLASH_PARAMS ||
      k == AWF_URL_READ_PARAMS_SLASH)
    n = strip_params(out, n);
  if (k == AWF_URL_READ_PARAMS_SLASH)
    n = slashes(out, n);
  struct seg_facts f = seg_facts(out, n);
  if (f.dotdot && f.empty)
    return -EINVAL;
  size_t m = remove_dots_merge(out, n);
  out[m] = '\0';
  return (int)m;
}

int awf_url_normalize_path(const char *in, size_t len, char *out, size_t outsz) {
  return awf_url_normalize_path_as(in, len, AWF_URL_READ_RFC, out, outsz);
}

/* ---- parsing rules ------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *e, size_t elen, const char *why) {
  snprintf(err, errlen, "'%.*s': %s", (int)(elen > 200 ? 200 : elen), e, why);
  return -EINVAL;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* "GET,HEAD" to ",GET,HEAD,". */
static char *parse_methods(const char *m, size_t n) {
  if (n == 0 || n > MAX_METHODS_LEN || m[0] == ',' || m[n - 1] == ',')
    return NULL;
  for (size_t i = 0; i < n; i++) {
    bool letter = m[i] >= 'A' && m[i] <= 'Z';
    if (!letter && !(m[i] == ',' && m[i + 1] != ','))
      return NULL;
  }
  char *s = malloc(n + 3);
  if (s) {
    s[0] = ',';
    memcpy(s + 1, m, n);
    memcpy(s + 1 + n, ",", 2);
  }
  return s;
}

/* A host pattern: lower case; with each '*' read as a letter, a valid name. */
static int parse_host(const char *h, size_t n, char **out, const char **why) {
  char probe[AWF_HOSTNAME_MAX + 1], norm[AWF_HOSTNAME_MAX + 1];
  if (n == 0)
    return *why = "the host is empty", -EINVAL;
  if (memchr(h, '@', n))
    return *why = "user information (user@) is not allowed", -EINVAL;
  if (memchr(h, '[', n))
    return *why = "IPv6 literals are not supported", -EINVAL;
  if (memchr(h, ':', n))
    return *why = "a port is not allowed (the rule applies on every allowed port)", -EINVAL;
  if (n > AWF_HOSTNAME_MAX || h[n - 1] == '.')
    return *why = "the host is not a valid host name", -EINVAL;
  for (size_t i = 0; i < n; i++)
    probe[i] = h[i] == '*' ? 'a' : h[i];
  if (awf_hostname_normalize(probe, n, norm, sizeof(norm)) != (int)n)
    return *why = "the host is not a valid host name ('*' may stand in a label)", -EINVAL;
  char *s = malloc(n + 1);
  if (!s)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++)
    s[i] = h[i] == '*' ? '*' : norm[i];
  s[n] = '\0';
  *out = s;
  return 0;
}

/* A path pattern "/..." with an optional "?QUERY". */
static int parse_path(const char *p, size_t n, struct url_rule *u, const char **why) {
  if (n == 0) {
    u->path = strdup("/*");
    return u->path ? 0 : -ENOMEM;
  }
  if (p[0] != '/')
    return *why = "the path must start with '/'", -EINVAL;
  const char *q = memchr(p, '?', n);
  size_t pl = q ? (size_t)(q - p) : n;
  char *s = malloc(n + 1);
  if (!s)
    return -ENOMEM;
  int m = decode_unreserved(p, pl, s);
  int qm = q ? decode_unreserved(q + 1, n - pl - 1, s + (m < 0 ? 0 : m) + 1) : 0;
  if (m < 0 || qm < 0) {
    free(s);
    return *why = "bad percent-escape, '#', space or non-ASCII byte", -EINVAL;
  }
  struct seg_facts f = seg_facts(s, (size_t)m);
  if (f.dot || f.dotdot || f.empty) {
    free(s);
    return *why = "'.', '..' and empty ('//') segments are not allowed: write the path they "
                  "stand for",
           -EINVAL;
  }
  if (q) {
    /* the query as given, bytes checked above */
    s[m] = '?';
    memcpy(s + m + 1, q + 1, n - pl - 1);
    m += (int)(n - pl);
    u->query = true;
  }
  s[m] = '\0';
  u->path = s;
  return 0;
}

int awf_url_rules_add(awf_url_rules *r, enum awf_url_list which, const char *entry, size_t len,
                      char *err, size_t errlen) {
  while (len && is_space(*entry))
    entry++, len--;
  while (len && is_space(entry[len - 1]))
    len--;
  if (len == 0)
    return fail(err, errlen, entry, len, "empty rule");
  if (len > MAX_ENTRY_LEN)
    return fail(err, errlen, entry, len, "longer than 4096 bytes");
  struct url_rule u = {.list = which};
  const char *url = entry, *end = entry + len, *why = NULL;
  const char *sp = entry;
  while (sp < end && !is_space(*sp))
    sp++;
  int rc = -EINVAL;
  if (sp < end) { /* a method list, then the URL */
    u.methods = parse_methods(entry, (size_t)(sp - entry));
    if (!u.methods) {
      why = "the method list must be upper-case names separated by commas (GET,HEAD)";
      goto out;
    }
    url = sp;
    while (url < end && is_space(*url))
      url++;
    for (const char *k = url; k < end; k++)
      if (is_space(*k)) {
        why = "white space inside the URL";
        goto out;
      }
  }
  size_t ul = (size_t)(end - url);
  if (ul >= 7 && !strncasecmp(url, "http://", 7)) {
    u.scheme = AWF_URL_HTTP;
    url += 7;
  } else if (ul >= 8 && !strncasecmp(url, "https://", 8)) {
    u.scheme = AWF_URL_HTTPS;
    url += 8;
  } else {
    why = "a URL rule starts with http:// or https:// (e.g. https://github.com/org/*)";
    goto out;
  }
  const char *hend = url;
  while (hend < end && *hend != '/' && *hend != '?' && *hend != '#')
    hend++;
  if (hend < end && *hend != '/') {
    why = "the path must start with '/'";
    goto out;
  }
  if ((rc = parse_host(url, (size_t)(hend - url), &u.host, &why)) < 0)
    goto out;
  if ((rc = parse_path(hend, (size_t)(end - hend), &u, &why)) < 0)
    goto out;
  rc = -ENOMEM;
  if (!(u.text = strndup(entry, len)))
    goto out;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 8;
    struct url_rule *v = realloc(r->v, cap * sizeof(*v));
    if (!v)
      goto out;
    r->v = v;
    r->cap = cap;
  }
  r->v[r->n++] = u;
  return 0;
out:
  rule_free(&u);
  if (rc == -ENOMEM && !why) {
    snprintf(err, errlen, "out of memory");
    return rc;
  }
  return fail(err, errlen, entry, len, why ? why : "invalid rule");
}

static bool is_method_word(const char *w, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((w[i] >= 'A' && w[i] <= 'Z') || w[i] == ','))
      return false;
  return n > 0;
}

static int add_list(awf_url_rules *r, enum awf_url_list which, const char *list, char *err,
                    size_t errlen) {
  size_t before = r->n;
  const char *s = list, *methods = NULL;
  size_t mlen = 0;
  char entry[MAX_METHODS_LEN + MAX_ENTRY_LEN + 2];
  for (;;) {
    while (*s && (is_space(*s) || (*s == ',' && !methods)))
      s++;
    if (!*s)
      break;
    const char *w = s;
    while (*s && !is_space(*s))
      s++;
    size_t wl = (size_t)(s - w);
    bool url = false;
    for (size_t i = 0; i + 2 < wl; i++)
      url |= w[i] == ':' && w[i + 1] == '/' && w[i + 2] == '/';
    if (!url) {
      if (methods || !is_method_word(w, wl))
        return fail(err, errlen, methods ? methods : w, methods ? mlen : wl,
                    methods ? "a method list must be followed by a URL"
                            : "a URL rule starts with http:// or https:// (e.g. "
                              "https://github.com/org/*)");
      methods = w;
      mlen = wl;
      continue;
    }
    /* one word: URLs separated by commas; the method list goes with the first */
    for (const char *p = w; p < s;) {
      const char *c = memchr(p, ',', (size_t)(s - p));
      size_t pl = c ? (size_t)(c - p) : (size_t)(s - p);
      if (pl > 0) {
        if (mlen + pl + 1 >= sizeof(entry))
          return fail(err, errlen, p, pl, "longer than 4096 bytes");
        int k = methods ? snprintf(entry, sizeof(entry), "%.*s %.*s", (int)mlen, methods,
                                   (int)pl, p)
                        : snprintf(entry, sizeof(entry), "%.*s", (int)pl, p);
        int rc = awf_url_rules_add(r, which, entry, (size_t)k, err, errlen);
        if (rc < 0)
          return rc;
        methods = NULL;
      }
      p += pl + (c ? 1 : 0);
    }
  }
  if (methods)
    return fail(err, errlen, methods, mlen, "a method list must be followed by a URL");
  if (r->n == before) {
    snprintf(err, errlen, "the list is empty");
    return -EINVAL;
  }
  return 0;
}

/* Forget the rules added since `before`: a refused list or file adds none. */
static int rollback(awf_url_rules *r, size_t before, int rc) {
  if (rc < 0)
    while (r->n > before)
      rule_free(&r->v[--r->n]);
  return rc;
}

int awf_url_rules_add_list(awf_url_rules *r, enum awf_url_list which, const char *list,
                           char *err, size_t errlen) {
  size_t before = r->n;
  return rollback(r, before, add_list(r, which, list, err, errlen));
}

static int add_text(awf_url_rules *r, enum awf_url_list which, const char *text, size_t len,
                    const char *origin, char *err, size_t errlen) {
  size_t line = 0, i = 0;
  while (i < len) {
    line++;
    const char *nl = memchr(text + i, '\n', len - i);
    size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
    const char *hash = memchr(text + i, '#', n);
    size_t el = hash ? (size_t)(hash - (text + i)) : n;
    size_t k = 0;
    while (k < el && is_space(text[i + k]))
      k++;
    if (k < el) {
      char msg[400];
      int rc = awf_url_rules_add(r, which, text + i, el, msg, sizeof(msg));
      if (rc < 0) {
        snprintf(err, errlen, "%s:%zu: %s", origin, line, msg);
        return rc;
      }
    }
    i += n + 1;
  }
  return 0;
}

int awf_url_rules_add_text(awf_url_rules *r, enum awf_url_list which, const char *text,
                           size_t len, const char *origin, char *err, size_t errlen) {
  size_t before = r->n;
  return rollback(r, before, add_text(r, which, text, len, origin, err, errlen));
}

size_t awf_url_rules_count(const awf_url_rules *r, enum awf_url_list which) {
  size_t n = 0;
  for (size_t i = 0; r && i < r->n; i++)
    n += r->v[i].list == which;
  return n;
}

const char *awf_url_rules_first(const awf_url_rules *r, enum awf_url_scheme s) {
  for (size_t i = 0; r && i < r->n; i++)
    if (r->v[i].scheme == s)
      return r->v[i].text;
  return NULL;
}

bool awf_url_rules_has_scheme(const awf_url_rules *r, enum awf_url_scheme s) {
  return awf_url_rules_first(r, s) != NULL;
}

/* ---- matching ------------------------------------------------------------ */

/* '*' in p matches any run of bytes of s. */
static bool glob(const char *p, size_t pn, const char *s, size_t sn) {
  size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;
  while (si < sn) {
    if (pi < pn && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (pi < pn && p[pi] == s[si]) {
      pi++;
      si++;
    } else if (star != (size_t)-1) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < pn && p[pi] == '*')
    pi++;
  return pi == pn;
}

/* Label by label: '*' never crosses a dot. */
static bool host_match(const char *p, const char *h, size_t hn) {
  const char *pe = p + strlen(p), *he = h + hn;
  for (;;) {
    const char *pd = memchr(p, '.', (size_t)(pe - p));
    const char *hd = memchr(h, '.', (size_t)(he - h));
    const char *pl = pd ? pd : pe, *hl = hd ? hd : he;
    if (!glob(p, (size_t)(pl - p), h, (size_t)(hl - h)))
      return false;
    if (!pd || !hd)
      return !pd && !hd;
    p = pd + 1;
    h = hd + 1;
  }
}

static bool method_match(const char *methods, const char *m) {
  if (!methods)
    return true;
  size_t n = strlen(m);
  if (n == 0 || strchr(m, ','))
    return false;
  for (const char *p = methods + 1; (p = strstr(p, m)) != NULL; p++)
    if (p[-1] == ',' && p[n] == ',')
      return true;
  return false;
}

/* Does rule u match a request: path (a reading, n bytes) then the query (ql
 * bytes, with its '?')? */
static bool rule_match(const struct url_rule *u, enum awf_url_scheme s, const char *host,
                       size_t host_len, const char *method, const char *path, size_t n,
                       size_t ql) {
  return u->scheme == s && host_match(u->host, host, host_len) &&
         method_match(u->methods, method) &&
         glob(u->path, strlen(u->path), path, n + (u->query ? ql : 0));
}

bool awf_url_rules_covers_host(const awf_url_rules *r, enum awf_url_scheme s, const char *host,
                               size_t host_len) {
  for (size_t i = 0; r && i < r->n; i++)
    if (r->v[i].scheme == s && host_match(r->v[i].host, host, host_len))
      return true;
  return false;
}

size_t awf_url_rules_hosts(const awf_url_rules *r, enum awf_url_scheme s, const char **out,
                           size_t max) {
  size_t n = 0;
  for (size_t i = 0; r && i < r->n; i++)
    if (r->v[i].scheme == s) {
      if (n < max)
        out[n] = r->v[i].host;
      n++;
    }
  return n;
}

enum awf_url_verdict awf_url_rules_check(const awf_url_rules *r, enum awf_url_scheme s,
                                         const char *host, size_t host_len, const char *method,
                                         const char *target, size_t target_len) {
  if (!r || r->n == 0)
    return AWF_URL_NO_RULE;
  bool host_ruled = false, host_any = false;
  for (size_t i = 0; i < r->n; i++)
    if (r->v[i].scheme == s && host_match(r->v[i].host, host, host_len)) {
      host_any = true;
      host_ruled |= r->v[i].list == AWF_URL_ALLOW;
    }
  if (!host_any)
    return AWF_URL_NO_RULE;
  const char *q = memchr(target, '?', target_len);
  size_t pl = q ? (size_t)(q - target) : target_len;
  size_t ql = q ? target_len - pl : 0; /* with the '?' */
  size_t each = pl + ql + 2;
  char *buf = malloc(each * AWF_URL_READINGS);
  if (!buf)
    return AWF_URL_BAD_TARGET; /* refuse rather than admit unjudged */
  /* every reading of the path, each with the query; a reading equal to an
   * earlier one is skipped (n[k] = 0) */
  const char *rd[AWF_URL_READINGS];
  size_t n[AWF_URL_READINGS];
  enum awf_url_verdict v = AWF_URL_BAD_TARGET;
  for (int k = 0; k < AWF_URL_READINGS; k++) {
    char *b = buf + (size_t)k * each;
    int m = awf_url_normalize_path_as(target, pl, (enum awf_url_reading)k, b, pl + 2);
    if (m < 0)
      goto done;
    memcpy(b + m, q ? q : "", ql);
    rd[k] = b;
    n[k] = (size_t)m;
    for (int j = 0; j < k; j++)
      if (n[j] == n[k] && !memcmp(rd[j], b, n[k]))
        n[k] = 0;
  }
  /* a block rule that matches any reading wins */
  for (size_t i = 0; i < r->n; i++)
    for (int k = 0; k < AWF_URL_READINGS; k++)
      if (r->v[i].list == AWF_URL_BLOCK && n[k] &&
          rule_match(&r->v[i], s, host, host_len, method, rd[k], n[k], ql)) {
        v = AWF_URL_BLOCKED;
        goto done;
      }
  /* then every reading must match an allow rule */
  v = host_ruled ? AWF_URL_ALLOWED : AWF_URL_NO_RULE;
  for (int k = 0; host_ruled && k < AWF_URL_READINGS; k++) {
    bool ok = n[k] == 0;
    for (size_t i = 0; !ok && i < r->n; i++)
      ok = r->v[i].list == AWF_URL_ALLOW &&
           rule_match(&r->v[i], s, host, host_len, method, rd[k], n[k], ql);
    if (!ok) {
      v = AWF_URL_NOT_ALLOWED;
      break;
    }
  }
done:
  free(buf);
  return v;
}
