/* secrets.c: the secrets store, placeholders and rewriting (secrets.h). */
#include "secrets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hostname.h"

#define MARKER_LEN (sizeof(AWF_SECRET_MARKER) - 1)
#define SEAL_TRIES 64

struct secret {
  char name[AWF_SECRET_NAME_MAX + 1];
  char *hosts[AWF_SECRET_HOSTS_MAX];
  size_t n_hosts;
  char *value; /* len bytes and a NUL */
  char *ph;    /* the placeholder: len bytes and a NUL */
  size_t len;
  char *header;
  bool in_body;
};

struct awf_secrets {
  struct secret *v[AWF_SECRETS_MAX];
  size_t n;
};

awf_secrets *awf_secrets_new(void) { return calloc(1, sizeof(struct awf_secrets)); }

static void wipe(char *p, size_t len) {
  if (!p)
    return;
  volatile char *q = p;
  for (size_t i = 0; i < len; i++)
    q[i] = 0;
  free(p);
}

void awf_secrets_free(awf_secrets *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++) {
    struct secret *x = s->v[i];
    for (size_t h = 0; h < x->n_hosts; h++)
      free(x->hosts[h]);
    wipe(x->value, x->len);
    wipe(x->ph, x->len);
    free(x->header);
    free(x);
  }
  free(s);
}

static bool name_valid(const char *s, size_t len) {
  if (len == 0 || len > AWF_SECRET_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '_'))
      return false;
  }
  return true;
}

/* NAME '=' REST: NAME checked and copied; *rest after the '='. */
static int split_name(const char *spec, const char *flag, char *name, size_t cap,
                      const char **rest, char *err, size_t errlen) {
  const char *eq = strchr(spec, '=');
  size_t nlen = eq ? (size_t)(eq - spec) : strlen(spec);
  if (!eq || !name_valid(spec, nlen) || nlen >= cap) {
    snprintf(err, errlen, "%s '%.*s': expected NAME=%s with NAME a variable name", flag,
             (int)(nlen > 64 ? 64 : nlen), spec,
             strcmp(flag, "--secret") == 0 ? "HOST[,HOST...]" : "PATH");
    return -EINVAL;
  }
  memcpy(name, spec, nlen);
  name[nlen] = '\0';
  *rest = eq + 1;
  return 0;
}

int awf_secrets_split_file_spec(const char *spec, char *name, size_t namecap, const char **path,
                                char *err, size_t errlen) {
  int rc = split_name(spec, "--secret-file", name, namecap, path, err, errlen);
  if (rc == 0 && **path == '\0') {
    snprintf(err, errlen, "--secret-file '%s': no PATH", name);
    rc = -EINVAL;
  }
  return rc;
}

int awf_secrets_find(const awf_secrets *s, const char *name) {
  for (size_t i = 0; s && i < s->n; i++)
    if (strcmp(s->v[i]->name, name) == 0)
      return (int)i;
  return -1;
}

/* One host rule: a name, or "*." and a name; stored lower case. */
static int add_host(struct secret *x, const char *h, size_t len, char *err, size_t errlen) {
  bool wild = len > 2 && h[0] == '*' && h[1] == '.';
  char norm[AWF_HOSTNAME_MAX + 3];
  size_t off = wild ? 2 : 0;
  if (awf_hostname_normalize(h + off, len - off, norm + off, sizeof(norm) - off) < 0 ||
      strchr(norm + off, '*') || strchr(norm + off, ':')) {
    snprintf(err, errlen, "--secret %s: '%.*s' is not a host name or *.name", x->name,
             (int)(len > 300 ? 300 : len), h);
    return -EINVAL;
  }
  if (wild)
    memcpy(norm, "*.", 2);
  for (size_t i = 0; i < x->n_hosts; i++)
    if (strcmp(x->hosts[i], norm) == 0)
      return 0;
  if (x->n_hosts == AWF_SECRET_HOSTS_MAX) {
    snprintf(err, errlen, "--secret %s: more than %d hosts", x->name, AWF_SECRET_HOSTS_MAX);
    return -E2BIG;
  }
  if (!(x->hosts[x->n_hosts] = strdup(norm)))
    return -ENOMEM;
  x->n_hosts++;
  return 0;
}

int awf_secrets_add(awf_secrets *s, const char *spec, char *err, size_t errlen) {
  char name[AWF_SECRET_NAME_MAX + 1];
  const char *hosts;
  int rc = split_name(spec, "--secret", name, sizeof(name), &hosts, err, errlen);
  if (rc < 0)
    return rc;
  int i = awf_secrets_find(s, name);
  struct secret *x;
  if (i >= 0) {
    x = s->v[i];
  } else {
    if (s->n == AWF_SECRETS_MAX) {
      snprintf(err, errlen, "--secret %s: more than %d secrets", name, AWF_SECRETS_MAX);
      return -E2BIG;
    }
    if (!(x = calloc(1, sizeof(*x))))
      return -ENOMEM;
    memcpy(x->name, name, strlen(name) + 1);
    s->v[s->n++] = x;
  }
  size_t before = x->n_hosts;
  for (const char *p = hosts; *p;) {
    size_t n = strcspn(p, ",");
    size_t a = 0, b = n; /* blanks around an entry are not part of it */
    while (a < b && (p[a] == ' ' || p[a] == '\t'))
      a++;
    while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
      b--;
    if (b > a && (rc = add_host(x, p + a, b - a, err, errlen)) < 0)
      return rc;
    p += n;
    if (*p == ',')
      p++;
  }
  if (x->n_hosts == before && before == 0) {
    snprintf(err, errlen, "--secret %s: no host: name the hosts it may be sent to", name);
    return -EINVAL;
  }
  return 0;
}

static struct secret *named(awf_secrets *s, const char *name, const char *flag, char *err,
                            size_t errlen) {
  int i = awf_secrets_find(s, name);
  if (i < 0) {
    snprintf(err, errlen, "%s %s: not a secret: give --secret %s=HOST[,HOST...]", flag, name,
             name);
    return NULL;
  }
  return s->v[i];
}

int awf_secrets_set_in_body(awf_secrets *s, const char *name, char *err, size_t errlen) {
  struct secret *x = named(s, name, "--secret-in-body", err, errlen);
  if (!x)
    return -EINVAL;
  x->in_body = true;
  return 0;
}

int awf_secrets_set_header(awf_secrets *s, const char *name, const char *header, char *err,
                           size_t errlen) {
  struct secret *x = named(s, name, "--secret-header", err, errlen);
  if (!x)
    return -EINVAL;
  char *h = strdup(header);
  if (!h)
    return -ENOMEM;
  free(x->header);
  x->header = h;
  return 0;
}

int awf_secrets_set_value(awf_secrets *s, size_t i, const char *value, size_t len, char *err,
                          size_t errlen) {
  struct secret *x = s->v[i];
  if (len < AWF_SECRET_MIN_LEN || len > AWF_SECRET_MAX_LEN) {
    snprintf(err, errlen,
             "secret %s: its value is %zu bytes; a secret must have %d to %d bytes (a "
             "shorter one cannot carry a placeholder that is safe to tell apart)",
             x->name, len, AWF_SECRET_MIN_LEN, AWF_SECRET_MAX_LEN);
    return -EINVAL;
  }
  for (size_t k = 0; k < len; k++) {
    unsigned char c = (unsigned char)value[k];
    if (c < 0x21 || c > 0x7e) {
      snprintf(err, errlen,
               "secret %s: byte %zu of its value is not printable ASCII (blanks, line breaks "
               "and control bytes are refused)",
               x->name, k + 1);
      return -EINVAL;
    }
  }
  char *v = malloc(len + 1);
  if (!v)
    return -ENOMEM;
  memcpy(v, value, len);
  v[len] = '\0';
  wipe(x->value, x->len);
  wipe(x->ph, x->len);
  x->ph = NULL;
  x->value = v;
  x->len = len;
  return 0;
}

/* ---- placeholders ----------------------------------------------------- */

#define DIGITS "0123456789"
#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* The alphabets a placeholder's random part is drawn from, narrowest first:
 * the first that holds every byte of the value. */
static const char *const alphabets[] = {
    DIGITS "abcdef",          DIGITS "ABCDEF",
    DIGITS LOWER UPPER,       DIGITS LOWER UPPER "-_",
    DIGITS LOWER UPPER "+/=", NULL, /* any printable byte but the blank */
};

static const char *alphabet_of(const char *v, size_t len) {
  for (size_t a = 0; alphabets[a]; a++) {
    size_t k = 0;
    while (k < len && strchr(alphabets[a], v[k]))
      k++;
    if (k == len)
      return alphabets[a];
  }
  return NULL;
}

static int fill_random(char *out, size_t n, const char *alpha, awf_random_fn rnd, void *arg) {
  size_t k = alpha ? strlen(alpha) : 0x7e - 0x21 + 1;
  unsigned limit = 256 - 256 % (unsigned)k; /* unbiased: bytes beyond are drawn again */
  unsigned char buf[64];
  size_t have = 0, used = 0;
  for (size_t i = 0; i < n;) {
    if (used == have) {
      int rc = rnd(buf, sizeof(buf), arg);
      if (rc < 0)
        return rc;
      have = sizeof(buf);
      used = 0;
    }
    unsigned b = buf[used++];
    if (b >= limit)
      continue;
    b %= (unsigned)k;
    out[i++] = alpha ? alpha[b] : (char)(0x21 + b);
  }
  return 0;
}

static bool contains(const char *hay, size_t hlen, const char *needle, size_t nlen) {
  return nlen <= hlen && memmem(hay, hlen, needle, nlen) != NULL;
}

/* A placeholder is safe when no real value holds it, it holds no real
 * value, and it neither holds nor sits in another placeholder. */
static bool ph_safe(const awf_secrets *s, size_t i, const char *ph, size_t len) {
  for (size_t j = 0; j < s->n; j++) {
    const struct secret *y = s->v[j];
    if (contains(y->value, y->len, ph, len) || contains(ph, len, y->value, y->len))
      return false;
    if (j != i && y->ph &&
        (contains(y->ph, y->len, ph, len) || contains(ph, len, y->ph, y->len)))
      return false;
  }
  return true;
}

int awf_secrets_seal(awf_secrets *s, awf_random_fn rnd, void *arg, char *err, size_t errlen) {
  for (size_t i = 0; i < s->n; i++)
    if (!s->v[i]->value) {
      snprintf(err, errlen, "secret %s: no value", s->v[i]->name);
      return -EINVAL;
    }
  for (size_t i = 0; i < s->n; i++) {
    struct secret *x = s->v[i];
    char *ph = malloc(x->len + 1);
    if (!ph)
      return -ENOMEM;
    memcpy(ph, AWF_SECRET_MARKER, MARKER_LEN);
    ph[x->len] = '\0';
    const char *alpha = alphabet_of(x->value, x->len);
    int rc = -EAGAIN;
    for (int t = 0; t < SEAL_TRIES && rc == -EAGAIN; t++) {
      rc = fill_random(ph + MARKER_LEN, x->len - MARKER_LEN, alpha, rnd, arg);
      if (rc == 0 && !ph_safe(s, i, ph, x->len))
        rc = -EAGAIN;
    }
    if (rc < 0) {
      snprintf(err, errlen, "secret %s: cannot make a placeholder: %s", x->name,
               rc == -EAGAIN ? "no distinct one found" : strerror(-rc));
      wipe(ph, x->len);
      return rc;
    }
    wipe(x->ph, x->len);
    x->ph = ph;
  }
  return 0;
}

/* ---- accessors ----------------------------------------------------------- */

size_t awf_secrets_count(const awf_secrets *s) { return s ? s->n : 0; }
const char *awf_secrets_name(const awf_secrets *s, size_t i) { return s->v[i]->name; }
const char *awf_secrets_value(const awf_secrets *s, size_t i, size_t *len) {
  *len = s->v[i]->len;
  return s->v[i]->value;
}
const char *awf_secrets_placeholder(const awf_secrets *s, size_t i, size_t *len) {
  *len = s->v[i]->len;
  return s->v[i]->ph;
}
const char *awf_secrets_header(const awf_secrets *s, size_t i) {
  return s->v[i]->header ? s->v[i]->header : "Authorization";
}
bool awf_secrets_in_body(const awf_secrets *s, size_t i) { return s->v[i]->in_body; }

size_t awf_secrets_hosts(const awf_secrets *s, size_t i, const char **hosts, size_t max) {
  const struct secret *x = s->v[i];
  for (size_t k = 0; k < x->n_hosts && k < max; k++)
    hosts[k] = x->hosts[k];
  return x->n_hosts;
}

static bool host_matches(const char *rule, const char *host, size_t len) {
  if (rule[0] == '*') {
    size_t sl = strlen(rule + 2);
    return len > sl + 1 && host[len - sl - 1] == '.' &&
           memcmp(host + len - sl, rule + 2, sl) == 0;
  }
  return strlen(rule) == len && memcmp(rule, host, len) == 0;
}

bool awf_secrets_bound(const awf_secrets *s, size_t i, const char *host, size_t len) {
  const struct secret *x = s->v[i];
  for (size_t k = 0; k < x->n_hosts; k++)
    if (host_matches(x->hosts[k], host, len))
      return true;
  return false;
}

uint64_t awf_secrets_mask_for(const awf_secrets *s, const char *host, size_t len) {
  uint64_t m = 0;
  for (size_t i = 0; s && i < s->n; i++)
    if (awf_secrets_bound(s, i, host, len))
      m |= UINT64_C(1) << i;
  return m;
}

bool awf_secrets_any_host(const awf_secrets *s, const char *host, size_t len) {
  return awf_secrets_mask_for(s, host, len) != 0;
}

/* ---- rewriting ------------------------------------------------------------ */

/* Every occurrence of each secret's pattern in buf[0..len): replaced when
 * its bit is in `bound`, else reported in *missed. Returns what was replaced. */
static uint64_t replace_all(const awf_secrets *s, bool to_value, uint64_t mask, uint64_t bound,
                            char *buf, size_t len, uint64_t *missed) {
  uint64_t hit = 0;
  for (size_t i = 0; i < s->n; i++) {
    uint64_t bit = UINT64_C(1) << i;
    const struct secret *x = s->v[i];
    if (!(mask & bit) || !x->ph)
      continue;
    const char *from = to_value ? x->ph : x->value;
    const char *to = to_value ? x->value : x->ph;
    for (size_t off = 0; off + x->len <= len;) {
      char *p = memmem(buf + off, len - off, from, x->len);
      if (!p)
        break;
      if (bound & bit) {
        memcpy(p, to, x->len);
        hit |= bit;
      } else if (missed) {
        *missed |= bit;
      }
      off = (size_t)(p - buf) + x->len;
    }
  }
  return hit;
}

static const char *find_crlf(const char *p, const char *end) {
  for (; p + 1 < end; p++)
    if (p[0] == '\r' && p[1] == '\n')
      return p;
  return NULL;
}

static void rewrite_region(const awf_secrets *s, uint64_t bound, char *p, size_t len,
                           struct awf_secret_use *use) {
  use->injected |= replace_all(s, true, UINT64_MAX, bound, p, len, &use->misdirected);
}

void awf_secrets_rewrite_head(const awf_secrets *s, const char *host, size_t host_len,
                              char *head, size_t len, struct awf_secret_use *use) {
  if (awf_secrets_count(s) == 0)
    return;
  uint64_t bound = awf_secrets_mask_for(s, host, host_len);
  char *end = head + len;
  const char *eol = find_crlf(head, end);
  if (!eol)
    return;
  /* The request line: only its query ("?..." up to the version) is edited. */
  char *sp1 = memchr(head, ' ', (size_t)(eol - head));
  char *sp2 = NULL;
  for (char *q = (char *)eol; q > head; q--)
    if (q[-1] == ' ') {
      sp2 = q - 1;
      break;
    }
  if (sp1 && sp2 && sp2 > sp1) {
    char *q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
    if (q)
      rewrite_region(s, bound, q, (size_t)(sp2 - q), use);
  }
  /* Header values, Host's excepted. */
  for (char *line = (char *)eol + 2; line < end;) {
    const char *le = find_crlf(line, end);
    if (!le || le == line)
      break; /* the blank line ends the head */
    char *colon = memchr(line, ':', (size_t)(le - line));
    if (colon && !(colon - line == 4 && strncasecmp(line, "host", 4) == 0))
      rewrite_region(s, bound, colon + 1, (size_t)(le - colon - 1), use);
    line = (char *)le + 2;
  }
}

uint64_t awf_secrets_scrub(const awf_secrets *s, char *buf, size_t len) {
  if (awf_secrets_count(s) == 0)
    return 0;
  return replace_all(s, false, UINT64_MAX, UINT64_MAX, buf, len, NULL);
}

void awf_secret_stream_init(struct awf_secret_stream *st, const awf_secrets *s, bool to_value,
                            uint64_t mask, uint64_t limit) {
  st->s = s;
  st->to_value = to_value;
  st->mask = mask;
  st->limit = limit;
  st->seen = 0;
  st->hits = 0;
  st->hold_len = 0;
}

/* The longest tail of buf[0..len) that is a proper prefix of a pattern. */
static size_t tail_prefix(const struct awf_secret_stream *st, const char *buf, size_t len) {
  const awf_secrets *s = st->s;
  size_t maxp = 0;
  for (size_t i = 0; i < s->n; i++)
    if ((st->mask >> i) & 1 && s->v[i]->len > maxp)
      maxp = s->v[i]->len;
  size_t from = len >= maxp ? len - maxp + 1 : 0;
  for (size_t j = from; j < len; j++) {
    size_t tail = len - j;
    for (size_t i = 0; i < s->n; i++) {
      const struct secret *x = s->v[i];
      if (!((st->mask >> i) & 1) || !x->ph || tail >= x->len)
        continue;
      const char *pat = st->to_value ? x->ph : x->value;
      if (buf[j] == pat[0] && memcmp(buf + j, pat, tail) == 0)
        return tail;
    }
  }
  return 0;
}

size_t awf_secret_stream_feed(struct awf_secret_stream *st, const char *in, size_t len,
                              char *out) {
  size_t t = st->hold_len;
  memcpy(out, st->hold, t);
  st->hold_len = 0;
  memcpy(out + t, in, len);
  t += len;
  /* A match that begins before the limit may end after it. */
  uint64_t end = st->limit > UINT64_MAX - AWF_SECRET_MAX_LEN ? UINT64_MAX
                                                             : st->limit + AWF_SECRET_MAX_LEN;
  if (st->seen >= end || st->mask == 0)
    return t; /* past the searched prefix: as it came */
  st->seen += len;
  st->hits |= replace_all(st->s, st->to_value, st->mask, st->mask, out, t, NULL);
  if (st->seen >= end)
    return t;
  size_t keep = tail_prefix(st, out, t);
  memcpy(st->hold, out + t - keep, keep);
  st->hold_len = keep;
  return t - keep;
}

size_t awf_secret_stream_finish(struct awf_secret_stream *st, char *out) {
  size_t n = st->hold_len;
  memcpy(out, st->hold, n);
  st->hold_len = 0;
  return n;
}
