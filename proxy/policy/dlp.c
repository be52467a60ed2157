/* dlp.c: the DLP scanner (dlp.h). */
#include "dlp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- character classes -------------------------------------------------- */

static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static bool is_upper(uint8_t c) { return c >= 'A' && c <= 'Z'; }
static bool is_lower(uint8_t c) { return c >= 'a' && c <= 'z'; }
static bool is_alnum(uint8_t c) { return is_digit(c) || is_upper(c) || is_lower(c); }
static bool is_word(uint8_t c) { return is_alnum(c) || c == '_'; }
static bool is_b64url(uint8_t c) { return is_word(c) || c == '-'; }
static bool is_upnum(uint8_t c) { return is_upper(c) || is_digit(c); }
static bool is_slack(uint8_t c) { return is_alnum(c) || c == '-'; }
static bool is_pem_label(uint8_t c) { return is_upnum(c) || c == ' '; }
static uint8_t lower(uint8_t c) { return is_upper(c) ? (uint8_t)(c - 'A' + 'a') : c; }

/* ---- views ---------------------------------------------------------------
 * A view is the bytes a matcher sees. map[i] is the offset in the original
 * field of view byte i (NULL: the same offset); brk[i] says a separator (a
 * DNS dot) was removed before it, which counts as a word boundary. fold:
 * letters compare without case (names). at_start, at_end: the view begins
 * or ends the data; otherwise a boundary there is unknown and a match that
 * needs one is not reported (the streaming scanner sees it again). */
struct view {
  const uint8_t *s;
  size_t n;
  const uint32_t *map;
  const uint8_t *brk;
  bool fold, at_start, at_end;
};

typedef bool (*char_class)(uint8_t c);

/* Is there a boundary before view byte i (none of cls)? */
static bool lead_ok(const struct view *v, size_t i, char_class cls) {
  if (i == 0)
    return v->at_start;
  return (v->brk && v->brk[i]) || !cls(v->s[i - 1]);
}

/* Is there a boundary after a match ending at e? */
static bool trail_ok(const struct view *v, size_t e, char_class cls) {
  if (e == v->n)
    return v->at_end;
  return (v->brk && v->brk[e]) || !cls(v->s[e]);
}

/* Does the view hold the literal p at i (letters without case when folded)? */
static bool has(const struct view *v, size_t i, const char *p) {
  size_t k = 0;
  for (; p[k]; k++) {
    if (i + k >= v->n)
      return false;
    uint8_t c = v->s[i + k], w = (uint8_t)p[k];
    if (v->fold ? lower(c) != lower(w) : c != w)
      return false;
  }
  return true;
}

/* How many bytes of cls start at i, at most cap. */
static size_t run(const struct view *v, size_t i, char_class cls, size_t cap) {
  size_t k = 0;
  while (k < cap && i + k < v->n && cls(v->s[i + k]))
    k++;
  return k;
}

/* ---- the patterns --------------------------------------------------------
 * Each matcher looks at view byte i and returns the match's length, or 0.
 * Prefixes are matched exactly; the tail's class and length are the
 * token's; a leading boundary (not preceded by a letter or digit) keeps a
 * prefix inside a longer word from matching. */

/* GitHub: ghp_ (classic), gho_ (OAuth), ghu_ (user-to-server), ghs_
 * (server-to-server), ghr_ (refresh) + 36 letters and digits. */
static size_t m_github(const struct view *v, size_t i) {
  if (i + 4 > v->n || !has(v, i, "gh") || !lead_ok(v, i, is_alnum))
    return 0;
  uint8_t t = lower(v->s[i + 2]);
  if (!(t == 'p' || t == 'o' || t == 'u' || t == 's' || t == 'r') || v->s[i + 3] != '_')
    return 0;
  if (!v->fold && v->s[i + 2] != t)
    return 0;
  return run(v, i + 4, is_alnum, 36) == 36 ? 40 : 0;
}

/* GitHub fine-grained: github_pat_ + 82 of [A-Za-z0-9_]. */
static size_t m_github_pat(const struct view *v, size_t i) {
  if (!has(v, i, "github_pat_") || !lead_ok(v, i, is_alnum))
    return 0;
  return run(v, i + 11, is_word, 82) == 82 ? 93 : 0;
}

/* Anthropic: sk-ant- + at least 32 of [A-Za-z0-9_-] (sk-ant-api03-...). */
static size_t m_anthropic(const struct view *v, size_t i) {
  if (!has(v, i, "sk-ant-") || !lead_ok(v, i, is_alnum))
    return 0;
  return run(v, i + 7, is_b64url, 32) == 32 ? 39 : 0;
}

/* OpenAI: sk-proj-, sk-svcacct-, sk-admin- + at least 40 of
 * [A-Za-z0-9_-]; the legacy form sk- + exactly 48 letters and digits. */
static size_t m_openai(const struct view *v, size_t i) {
  if (!has(v, i, "sk-") || !lead_ok(v, i, is_alnum))
    return 0;
  static const char *const forms[] = {"sk-proj-", "sk-svcacct-", "sk-admin-"};
  for (size_t k = 0; k < sizeof(forms) / sizeof(forms[0]); k++) {
    size_t pl = strlen(forms[k]);
    if (has(v, i, forms[k]))
      return run(v, i + pl, is_b64url, 40) == 40 ? pl + 40 : 0;
  }
  if (run(v, i + 3, is_alnum, 48) != 48 || !trail_ok(v, i + 51, is_b64url))
    return 0;
  return 51;
}

/* AWS access key ids: AKIA (long-term) or ASIA (temporary) + 16 upper-case
 * letters and digits, a whole word. Folded (a DNS name), any case. */
static size_t m_aws(const struct view *v, size_t i) {
  if (!(has(v, i, "AKIA") || has(v, i, "ASIA")) || !lead_ok(v, i, is_alnum))
    return 0;
  if (run(v, i + 4, v->fold ? is_alnum : is_upnum, 16) != 16 || !trail_ok(v, i + 20, is_alnum))
    return 0;
  return 20;
}

/* Google API keys: AIza + 35 of [A-Za-z0-9_-]. */
static size_t m_google(const struct view *v, size_t i) {
  if (!has(v, i, "AIza") || !lead_ok(v, i, is_alnum))
    return 0;
  return run(v, i + 4, is_b64url, 35) == 35 ? 39 : 0;
}

/* Slack: xoxa-, xoxb-, xoxp-, xoxr-, xoxs- + a digit + at least 9 more of
 * [A-Za-z0-9-] (xoxb-123456789012-...). */
static size_t m_slack(const struct view *v, size_t i) {
  if (i + 6 > v->n || !has(v, i, "xox") || !lead_ok(v, i, is_alnum))
    return 0;
  uint8_t t = lower(v->s[i + 3]);
  if (!(t == 'a' || t == 'b' || t == 'p' || t == 'r' || t == 's') || v->s[i + 4] != '-')
    return 0;
  if (!v->fold && v->s[i + 3] != t)
    return 0;
  if (!is_digit(v->s[i + 5]))
    return 0;
  return run(v, i + 6, is_slack, 9) == 9 ? 15 : 0;
}

/* Private keys in PEM: -----BEGIN [WORDS ]PRIVATE KEY[ BLOCK]----- (RSA,
 * EC, DSA, OPENSSH, ENCRYPTED, PGP...). */
static size_t m_pem(const struct view *v, size_t i) {
  if (!has(v, i, "-----BEGIN "))
    return 0;
  size_t ls = i + 11, ll = run(v, ls, is_pem_label, 64);
  if (ll == 64 || !has(v, ls + ll, "-----"))
    return 0;
  static const char *const ends[] = {"PRIVATE KEY", "PRIVATE KEY BLOCK"};
  for (size_t k = 0; k < 2; k++) {
    size_t el = strlen(ends[k]);
    if (ll >= el && has(v, ls + ll - el, ends[k]) &&
        (ll == el || v->s[ls + ll - el - 1] == ' '))
      return 11 + ll + 5;
  }
  return 0;
}

/* JWTs: three base64url segments; the header decodes to a JSON object
 * ("eyJ" is `{"`), header and payload at least 10 and 2 characters, the
 * signature possibly empty (alg none). Header and payload together within
 * AWF_DLP_MATCH_MAX. */
#define JWT_HEADER_MAX 1024
#define JWT_PAYLOAD_MAX (AWF_DLP_MATCH_MAX - JWT_HEADER_MAX - 2)
static size_t m_jwt(const struct view *v, size_t i) {
  if (!has(v, i, "eyJ") || !lead_ok(v, i, is_b64url))
    return 0;
  size_t h = run(v, i, is_b64url, JWT_HEADER_MAX + 1);
  if (h < 10 || h > JWT_HEADER_MAX || i + h >= v->n || v->s[i + h] != '.')
    return 0;
  size_t ps = i + h + 1, p = run(v, ps, is_b64url, JWT_PAYLOAD_MAX + 1);
  if (p < 2 || p > JWT_PAYLOAD_MAX || ps + p >= v->n || v->s[ps + p] != '.')
    return 0;
  return h + 1 + p + 1;
}

typedef size_t (*matcher)(const struct view *v, size_t i);

static const struct pattern {
  const char *kind;
  matcher match;
} patterns[] = {
    {"github_token", m_github}, {"github_pat", m_github_pat}, {"anthropic_key", m_anthropic},
    {"openai_key", m_openai},   {"aws_access_key_id", m_aws}, {"google_api_key", m_google},
    {"slack_token", m_slack},   {"private_key", m_pem},       {"jwt", m_jwt},
};
#define N_PATTERNS (sizeof(patterns) / sizeof(patterns[0]))

const char *awf_dlp_builtin_kind(size_t i) { return i < N_PATTERNS ? patterns[i].kind : NULL; }

/* The patterns that can start with this byte (folded): one test per byte
 * instead of every matcher at every position. */
static bool may_start(uint8_t c) {
  switch (lower(c)) {
  case 'g':
  case 's':
  case 'a':
  case 'x':
  case '-':
  case 'e': return true;
  }
  return false;
}

/* ---- literals: Knuth-Morris-Pratt, linear in the text ------------------- */

struct literal {
  char kind[AWF_DLP_KIND_MAX + 1];
  uint8_t *val;    /* the value's first len bytes */
  uint8_t *folded; /* lower-cased, for folded views */
  uint32_t *fail, *ffail;
  size_t len;
};

struct awf_dlp {
  struct literal *lit;
  size_t n_lit, cap_lit;
};

static void kmp_table(const uint8_t *p, size_t m, uint32_t *fail) {
  fail[0] = 0;
  size_t k = 0;
  for (size_t q = 1; q < m; q++) {
    while (k > 0 && p[k] != p[q])
      k = fail[k - 1];
    if (p[k] == p[q])
      k++;
    fail[q] = (uint32_t)k;
  }
}

typedef bool (*hit_fn)(void *arg, const char *kind, size_t start, size_t end);

/* Every occurrence of the literal in the view; false when cb stopped. */
static bool scan_literal(const struct literal *l, const struct view *v, hit_fn cb, void *arg) {
  const uint8_t *p = v->fold ? l->folded : l->val;
  const uint32_t *fail = v->fold ? l->ffail : l->fail;
  size_t k = 0;
  for (size_t i = 0; i < v->n; i++) {
    uint8_t c = v->fold ? lower(v->s[i]) : v->s[i];
    while (k > 0 && p[k] != c)
      k = fail[k - 1];
    if (p[k] == c)
      k++;
    if (k == l->len) {
      if (!cb(arg, l->kind, i + 1 - l->len, i + 1))
        return false;
      k = fail[k - 1];
    }
  }
  return true;
}

/* Every match in the view; false when cb stopped. */
static bool scan_view(const awf_dlp *d, const struct view *v, hit_fn cb, void *arg) {
  for (size_t i = 0; i < v->n; i++) {
    if (!may_start(v->s[i]))
      continue;
    for (size_t k = 0; k < N_PATTERNS; k++) {
      size_t len = patterns[k].match(v, i);
      if (len && !cb(arg, patterns[k].kind, i, i + len))
        return false;
    }
  }
  for (size_t k = 0; d && k < d->n_lit; k++)
    if (!scan_literal(&d->lit[k], v, cb, arg))
      return false;
  return true;
}

/* ---- the table ----------------------------------------------------------- */

awf_dlp *awf_dlp_new(void) { return calloc(1, sizeof(awf_dlp)); }

static void literal_free(struct literal *l) {
  free(l->val);
  free(l->folded);
  free(l->fail);
  free(l->ffail);
}

void awf_dlp_free(awf_dlp *d) {
  if (!d)
    return;
  for (size_t i = 0; i < d->n_lit; i++)
    literal_free(&d->lit[i]);
  free(d->lit);
  free(d);
}

int awf_dlp_add_literal(awf_dlp *d, const char *kind, const char *value, size_t len) {
  size_t kl = kind ? strlen(kind) : 0;
  if (!d || kl == 0 || kl > AWF_DLP_KIND_MAX || !value || len < AWF_DLP_LITERAL_MIN)
    return -EINVAL;
  for (size_t i = 0; i < kl; i++)
    if ((uint8_t)kind[i] < 0x21 || (uint8_t)kind[i] > 0x7e)
      return -EINVAL;
  if (len > AWF_DLP_LITERAL_MAX)
    len = AWF_DLP_LITERAL_MAX;
  if (d->n_lit == d->cap_lit) {
    size_t cap = d->cap_lit ? d->cap_lit * 2 : 4;
    struct literal *nl = realloc(d->lit, cap * sizeof(*nl));
    if (!nl)
      return -ENOMEM;
    d->lit = nl;
    d->cap_lit = cap;
  }
  struct literal l = {.len = len};
  memcpy(l.kind, kind, kl + 1);
  l.val = malloc(len);
  l.folded = malloc(len);
  l.fail = malloc(len * sizeof(uint32_t));
  l.ffail = malloc(len * sizeof(uint32_t));
  if (!l.val || !l.folded || !l.fail || !l.ffail) {
    literal_free(&l);
    return -ENOMEM;
  }
  memcpy(l.val, value, len);
  for (size_t i = 0; i < len; i++)
    l.folded[i] = lower(l.val[i]);
  kmp_table(l.val, len, l.fail);
  kmp_table(l.folded, len, l.ffail);
  d->lit[d->n_lit++] = l;
  return 0;
}

/* ---- fields: the views of one string ------------------------------------- */

static int hex_val(uint8_t c) {
  if (is_digit(c))
    return c - '0';
  c = lower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A derived view of s: percent-decoded ('+' as a space), or the dots
 * removed. Its buffers are malloc'd (view_free). 0, or -ENOMEM. */
static int derive(const uint8_t *s, size_t n, enum awf_dlp_view kind, struct view *v) {
  uint8_t *out = malloc(n ? n : 1), *brk = NULL;
  uint32_t *map = malloc((n ? n : 1) * sizeof(uint32_t));
  if (kind == AWF_DLP_NAME)
    brk = calloc(n ? n : 1, 1);
  if (!out || !map || (kind == AWF_DLP_NAME && !brk)) {
    free(out);
    free(map);
    free(brk);
    return -ENOMEM;
  }
  size_t o = 0;
  bool cut = false;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = s[i];
    if (kind == AWF_DLP_NAME) {
      if (c == '.') {
        cut = true;
        continue;
      }
      brk[o] = cut;
      cut = false;
    } else if (c == '%' && i + 2 < n && hex_val(s[i + 1]) >= 0 && hex_val(s[i + 2]) >= 0) {
      map[o] = (uint32_t)i;
      out[o++] = (uint8_t)(hex_val(s[i + 1]) * 16 + hex_val(s[i + 2]));
      i += 2;
      continue;
    } else if (c == '+') {
      c = ' ';
    }
    map[o] = (uint32_t)i;
    out[o++] = c;
  }
  *v = (struct view){.s = out,
                     .n = o,
                     .map = map,
                     .brk = brk,
                     .fold = kind == AWF_DLP_NAME,
                     .at_start = true,
                     .at_end = true};
  return 0;
}

static void view_free(struct view *v) {
  free((void *)v->s);
  free((void *)v->map);
  free((void *)v->brk);
}

/* Does this field need a derived view (does it hold what decoding changes)? */
static bool needs_derived(const char *s, size_t n, enum awf_dlp_view kind) {
  if (kind == AWF_DLP_RAW)
    return false;
  if (kind == AWF_DLP_NAME)
    return memchr(s, '.', n) != NULL;
  return memchr(s, '%', n) != NULL || memchr(s, '+', n) != NULL;
}

/* Scan a field's views; cb gets offsets into the derived view, mapped back
 * by the caller through v->map. Returns 1 if cb stopped, 0, or -ENOMEM. */
static int scan_field(const awf_dlp *d, enum awf_dlp_view kind, const char *s, size_t n,
                      hit_fn cb, void *arg, struct view *derived) {
  struct view raw = {.s = (const uint8_t *)s,
                     .n = n,
                     .fold = kind == AWF_DLP_NAME,
                     .at_start = true,
                     .at_end = true};
  derived->s = NULL;
  if (!scan_view(d, &raw, cb, arg))
    return 1;
  if (!needs_derived(s, n, kind))
    return 0;
  if (derive((const uint8_t *)s, n, kind, derived) < 0)
    return -ENOMEM;
  return scan_view(d, derived, cb, arg) ? 0 : 1;
}

static bool first_hit(void *arg, const char *kind, size_t start, size_t end) {
  (void)start;
  (void)end;
  *(const char **)arg = kind;
  return false;
}

const char *awf_dlp_scan(const awf_dlp *d, enum awf_dlp_view view, const char *s, size_t n) {
  if (!d || !s)
    return NULL;
  const char *kind = NULL;
  struct view derived;
  int rc = scan_field(d, view, s, n, first_hit, &kind, &derived);
  if (derived.s)
    view_free(&derived);
  return rc < 0 ? AWF_DLP_KIND_UNSCANNED : kind;
}

struct redaction {
  char *s;
  size_t n;
  const struct view *v; /* the view the offsets are in; map NULL: the raw one */
  int count;
};

static bool mask(void *arg, const char *kind, size_t start, size_t end) {
  (void)kind;
  struct redaction *r = arg;
  size_t a = start, b = end;
  if (r->v && r->v->map) { /* back to the field's bytes */
    a = r->v->map[start];
    /* A name's dots are not the token's; an escape's bytes are. */
    b = r->v->fold ? r->v->map[end - 1] + 1u : end < r->v->n ? r->v->map[end] : r->n;
  }
  memset(r->s + a, '*', b - a);
  r->count++;
  return true;
}

int awf_dlp_redact(const awf_dlp *d, enum awf_dlp_view view, char *s, size_t n) {
  if (!d || !s)
    return 0;
  /* The derived view is built from the bytes before masking; the raw
   * matches are masked only after it was scanned. */
  struct redaction r = {.s = s, .n = n};
  struct view derived = {0};
  if (needs_derived(s, n, view)) {
    if (derive((const uint8_t *)s, n, view, &derived) < 0) {
      memset(s, '*', n);
      return -ENOMEM;
    }
    r.v = &derived;
    scan_view(d, &derived, mask, &r);
  }
  /* The raw matches are found in a copy, so masking cannot hide one. */
  char *copy = malloc(n ? n : 1);
  if (!copy) {
    if (derived.s)
      view_free(&derived);
    memset(s, '*', n);
    return -ENOMEM;
  }
  memcpy(copy, s, n);
  struct view raw = {.s = (const uint8_t *)copy,
                     .n = n,
                     .fold = view == AWF_DLP_NAME,
                     .at_start = true,
                     .at_end = true};
  r.v = NULL;
  scan_view(d, &raw, mask, &r);
  free(copy);
  if (derived.s)
    view_free(&derived);
  return r.count;
}

/* ---- streams ---------------------------------------------------------------
 * Each sub-stream (raw, percent-decoded) keeps the last WINDOW bytes seen
 * (the tail). A chunk is scanned twice: the tail followed by the chunk's
 * first WINDOW bytes (where a match across the boundary lies), then the
 * chunk alone. WINDOW covers the longest match and the byte after it that
 * its trailing boundary needs, so every match is decided in some scan. */
#define WINDOW (AWF_DLP_MATCH_MAX + 1)

struct sub {
  uint8_t win[2 * WINDOW];
  size_t tail;    /* bytes of the tail at the start of win */
  uint64_t total; /* bytes fed so far */
};

struct awf_dlp_stream {
  const awf_dlp *d;
  size_t limit, seen;
  bool truncated;
  const char *hit;
  struct sub raw, dec;
  uint8_t esc[3]; /* a percent escape under way: "%" or "%X" */
  size_t n_esc;
};

awf_dlp_stream *awf_dlp_stream_new(const awf_dlp *d, size_t limit) {
  awf_dlp_stream *st = calloc(1, sizeof(*st));
  if (st) {
    st->d = d;
    st->limit = limit;
  }
  return st;
}

void awf_dlp_stream_free(awf_dlp_stream *st) { free(st); }

static const char *sub_feed(const awf_dlp *d, struct sub *sb, const uint8_t *data, size_t n) {
  const char *kind = NULL;
  size_t w = n < WINDOW ? n : WINDOW;
  memcpy(sb->win + sb->tail, data, w);
  struct view v = {.s = sb->win, .n = sb->tail + w, .at_start = sb->total == sb->tail};
  scan_view(d, &v, first_hit, &kind);
  if (!kind && n > w) {
    v = (struct view){.s = data, .n = n};
    scan_view(d, &v, first_hit, &kind);
  }
  sb->total += n;
  if (n >= WINDOW) {
    memcpy(sb->win, data + n - WINDOW, WINDOW);
    sb->tail = WINDOW;
  } else {
    size_t all = sb->tail + n, keep = all < WINDOW ? all : WINDOW;
    memmove(sb->win, sb->win + all - keep, keep);
    sb->tail = keep;
  }
  return kind;
}

static const char *sub_finish(const awf_dlp *d, struct sub *sb, bool at_end) {
  const char *kind = NULL;
  struct view v = {.s = sb->win,
                   .n = sb->tail,
                   .at_start = sb->total == sb->tail,
                   .at_end = at_end};
  scan_view(d, &v, first_hit, &kind);
  return kind;
}

/* Percent-decode the next bytes ('+' as a space) into the decoded
 * sub-stream, an escape cut by a chunk's end held until the next. */
static const char *feed_decoded(awf_dlp_stream *st, const uint8_t *data, size_t n) {
  uint8_t out[4096];
  size_t o = 0;
  const char *kind = NULL;
  for (size_t i = 0; i < n && !kind; i++) {
    uint8_t c = data[i];
    if (st->n_esc && hex_val(c) >= 0) {
      st->esc[st->n_esc++] = c;
      if (st->n_esc < 3)
        continue;
      out[o++] = (uint8_t)(hex_val(st->esc[1]) * 16 + hex_val(st->esc[2]));
      st->n_esc = 0;
    } else {
      /* Not (or no longer) an escape: what was held goes as it was, and
       * this byte is read afresh (it may start an escape itself). */
      for (size_t k = 0; k < st->n_esc; k++)
        out[o++] = st->esc[k];
      st->n_esc = 0;
      if (c == '%')
        st->esc[st->n_esc++] = c;
      else
        out[o++] = c == '+' ? ' ' : c;
    }
    if (o + 3 > sizeof(out)) {
      kind = sub_feed(st->d, &st->dec, out, o);
      o = 0;
    }
  }
  if (!kind && o)
    kind = sub_feed(st->d, &st->dec, out, o);
  return kind;
}

const char *awf_dlp_stream_feed(awf_dlp_stream *st, const char *data, size_t n) {
  if (st->hit || st->truncated)
    return st->hit;
  if (n > st->limit - st->seen) {
    n = st->limit - st->seen;
    st->truncated = true;
  }
  st->seen += n;
  const uint8_t *p = (const uint8_t *)data;
  st->hit = sub_feed(st->d, &st->raw, p, n);
  if (!st->hit)
    st->hit = feed_decoded(st, p, n);
  return st->hit;
}

const char *awf_dlp_stream_finish(awf_dlp_stream *st) {
  if (st->hit)
    return st->hit;
  bool at_end = !st->truncated;
  st->hit = sub_finish(st->d, &st->raw, at_end);
  if (!st->hit && st->n_esc) { /* a cut escape at the very end: its bytes as they were */
    size_t k = st->n_esc;
    st->n_esc = 0;
    st->hit = sub_feed(st->d, &st->dec, st->esc, k);
  }
  if (!st->hit)
    st->hit = sub_finish(st->d, &st->dec, at_end);
  return st->hit;
}
