/* acl.c: the domain ACL.
 *
 * Every rule is filed in one open-addressing hash table under a key, the
 * normalised text it is anchored on:
 *   github.com          key "github.com", kind TREE  (the name and below)
 *   *.github.com        key "github.com", kind SUBS  (strictly below)
 *   1.2.3.4, [::1]      key "1.2.3.4", "::1", kind EXACT (canonical address)
 *   api-*.example.com   key "example.com", a pattern "api-*"
 *   *.cdn-*.example.com key "example.com", a pattern "cdn-*" with any_depth
 * A key's slot holds one bit per (list, kind, protocol variant), and the
 * patterns filed under it. Checking a name hashes each of its label suffixes
 * ("a.b.github.com", "b.github.com", "github.com", "com") once, walking the
 * name from the right so the hash is built incrementally: the cost is
 * O(bytes of the name) plus the patterns filed under those suffixes, whatever
 * the number of rules. Names cannot collide with address keys: a valid name
 * never holds ':' and never ends in an all-digit label.
 *
 * Wildcards: a leading "*." stands for one or more labels. Any other '*'
 * stands for a run of one or more bytes inside a single label (so "api-*"
 * matches "api-v1", never "api-" nor "api"), and "**" is rejected. The last
 * (top-level) label must be literal, so every pattern has a non-empty literal
 * suffix to be filed under.
 *
 * Keys and patterns live in a bump arena freed with the ACL: a rule costs its
 * text plus a share of a 24-byte slot. */
#include "acl.h"

#include "hostname.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum rule_kind { KIND_TREE = 0, KIND_SUBS = 1, KIND_EXACT = 2, KIND_PATTERN = 3 };

/* A rule's protocols as a mask of enum awf_acl_proto: 1 http, 2 tls, 3 both.
 * The three masks are kept apart (not merged) so duplicates are counted once
 * and "http://x" plus "https://x" stay two rules, as the user wrote them. */
#define PROTO_BOTH (AWF_PROTO_HTTP | AWF_PROTO_TLS)
#define VARIANTS 3

#define LIST_BIT(list) (1u << (unsigned)(list))

#define FNV_BASIS 2166136261u
#define FNV_PRIME 16777619u

#define ARENA_CHUNK 4096
#define ENTRY_ECHO_MAX 64 /* bytes of a bad entry quoted in an error */

/* An in-label wildcard rule, filed under its literal suffix. */
struct wpat {
  struct wpat *next;
  uint8_t flags;     /* bit list * VARIANTS + (proto mask - 1) */
  uint8_t any_depth; /* leading "*.": needs one or more labels in front */
  uint8_t nlabels;   /* labels in text */
  uint8_t len;       /* bytes in text, at most AWF_HOSTNAME_MAX */
  char text[];       /* "cdn-*", lower case, NUL-terminated */
};

struct slot {
  const char *key; /* NUL-terminated, in the arena; NULL marks a free slot */
  struct wpat *pats;
  uint32_t hash;  /* mixed hash of key */
  uint32_t flags; /* bit (list * 3 + kind) * VARIANTS + (proto mask - 1) */
};

struct chunk {
  struct chunk *next;
  size_t used, cap;
  alignas(max_align_t) unsigned char data[];
};

struct awf_acl {
  struct slot *slots;
  size_t cap;  /* 0 or a power of two */
  size_t used; /* occupied slots, kept at most cap / 2 */
  size_t count[2];
  struct chunk *arena;
};

/* One entry, parsed. */
struct rule {
  enum rule_kind kind;
  unsigned proto; /* mask: AWF_PROTO_HTTP, AWF_PROTO_TLS or both */
  bool any_depth;
  unsigned nlabels;
  size_t keylen, patlen;
  char key[AWF_HOSTNAME_MAX + 1];
  char pat[AWF_HOSTNAME_MAX + 1];
};

/* ---- arena ------------------------------------------------------------ */

static void *arena_alloc(awf_acl *acl, size_t size, size_t align) {
  struct chunk *c = acl->arena;
  size_t off = 0;
  if (c != NULL) {
    off = (c->used + align - 1) & ~(align - 1);
    if (off <= c->cap && size <= c->cap - off) {
      c->used = off + size;
      return c->data + off;
    }
  }
  size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
  c = malloc(sizeof *c + cap);
  if (c == NULL)
    return NULL;
  c->next = acl->arena;
  c->cap = cap;
  c->used = size;
  acl->arena = c;
  return c->data;
}

/* ---- hash table ------------------------------------------------------- */

static uint32_t hash_step(uint32_t h, unsigned char c) { return (h ^ c) * FNV_PRIME; }

/* FNV's low bits depend only on the inputs' low bits; the table indexes with
 * low bits, so spread the high bits down first (murmur3's finaliser). */
static uint32_t hash_mix(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

/* Keys are hashed right to left, so that check_name() gets the hash of every
 * label suffix of a name in one pass. */
static uint32_t key_hash(const char *key, size_t n) {
  uint32_t h = FNV_BASIS;
  while (n > 0)
    h = hash_step(h, (unsigned char)key[--n]);
  return hash_mix(h);
}

static struct slot *slot_find(const awf_acl *acl, const char *key, size_t n, uint32_t h) {
  if (acl->cap == 0)
    return NULL;
  size_t mask = acl->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    struct slot *s = &acl->slots[i];
    if (s->key == NULL)
      return NULL;
    /* strncmp stops at the stored key's NUL, so a shorter key is never
     * read past its end. */
    if (s->hash == h && strncmp(s->key, key, n) == 0 && s->key[n] == '\0')
      return s;
  }
}

static int table_grow(awf_acl *acl) {
  size_t ncap = acl->cap ? acl->cap * 2 : 16;
  struct slot *ns = calloc(ncap, sizeof *ns);
  if (ns == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < acl->cap; i++) {
    const struct slot *s = &acl->slots[i];
    if (s->key == NULL)
      continue;
    size_t j = s->hash & (ncap - 1);
    while (ns[j].key != NULL)
      j = (j + 1) & (ncap - 1);
    ns[j] = *s;
  }
  free(acl->slots);
  acl->slots = ns;
  acl->cap = ncap;
  return 0;
}

/* The slot for key, created empty if absent. */
static int slot_get(awf_acl *acl, const char *key, size_t n, struct slot **out) {
  uint32_t h = key_hash(key, n);
  struct slot *s = slot_find(acl, key, n, h);
  if (s != NULL) {
    *out = s;
    return 0;
  }
  if ((acl->used + 1) * 2 > acl->cap && table_grow(acl) < 0)
    return -ENOMEM;
  char *copy = arena_alloc(acl, n + 1, 1);
  if (copy == NULL)
    return -ENOMEM;
  memcpy(copy, key, n);
  copy[n] = '\0';
  size_t i = h & (acl->cap - 1);
  while (acl->slots[i].key != NULL)
    i = (i + 1) & (acl->cap - 1);
  s = &acl->slots[i];
  s->key = copy;
  s->pats = NULL;
  s->hash = h;
  s->flags = 0;
  acl->used++;
  *out = s;
  return 0;
}

/* ---- flag bits -------------------------------------------------------- */

static uint32_t slot_bit(enum awf_acl_list list, enum rule_kind kind, unsigned proto) {
  return 1u << (((unsigned)list * 3 + (unsigned)kind) * VARIANTS + (proto - 1));
}

static unsigned slot_variants(uint32_t flags, enum awf_acl_list list, enum rule_kind kind) {
  return (flags >> (((unsigned)list * 3 + (unsigned)kind) * VARIANTS)) & 7u;
}

static uint8_t pat_bit(enum awf_acl_list list, unsigned proto) {
  return (uint8_t)(1u << ((unsigned)list * VARIANTS + (proto - 1)));
}

/* The variant bits (index = proto mask - 1) of rules that admit `proto`. */
static unsigned variants_admitting(enum awf_acl_proto proto) {
  unsigned v = 0;
  for (unsigned m = 1; m <= VARIANTS; m++)
    if (m & (unsigned)proto)
      v |= 1u << (m - 1);
  return v;
}

/* ---- matching --------------------------------------------------------- */

/* Glob over one label. '*' matches one or more bytes: it behaves as "?*" in
 * the classic linear-backtracking matcher (the byte after the last star is
 * retried one position later on a mismatch), which is exact for '?' and '*'. */
static bool glob_label(const char *p, size_t pn, const char *s, size_t sn) {
  size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;
  while (si < sn) {
    if (pi < pn && p[pi] == '*') {
      star = pi++;
      mark = ++si; /* the star's mandatory first byte */
    } else if (pi < pn && p[pi] == s[si]) {
      pi++;
      si++;
    } else if (star != SIZE_MAX) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  return pi == pn;
}

/* Start of the last label of s[0..n). */
static size_t last_label(const char *s, size_t n) {
  const char *dot = memrchr(s, '.', n);
  return dot ? (size_t)(dot - s) + 1 : 0;
}

/* Does the pattern match the labels in front of its key? `pre` is the name
 * up to the dot before the key, plen > 0 bytes. */
static bool wpat_match(const struct wpat *w, const char *pre, size_t plen) {
  size_t rem = plen, trem = w->len;
  bool name_left = true;
  for (unsigned k = 0; k < w->nlabels; k++) {
    if (!name_left)
      return false;
    size_t ns = last_label(pre, rem);
    size_t ts = last_label(w->text, trem);
    if (!glob_label(w->text + ts, trem - ts, pre + ns, rem - ns))
      return false;
    name_left = ns > 0;
    rem = ns > 0 ? ns - 1 : 0;
    trem = ts > 0 ? ts - 1 : 0;
  }
  return w->any_depth ? name_left : !name_left;
}

/* Lists (LIST_BIT mask) with a rule under slot s that admits the name, whose
 * suffix at offset `at` is s's key. */
static unsigned slot_match(const struct slot *s, const char *name, size_t at,
                           unsigned variants) {
  unsigned hit = 0;
  for (int l = AWF_ACL_ALLOW; l <= AWF_ACL_BLOCK; l++) {
    enum awf_acl_list list = (enum awf_acl_list)l;
    if (slot_variants(s->flags, list, KIND_TREE) & variants)
      hit |= LIST_BIT(list);
    if (at > 0 && (slot_variants(s->flags, list, KIND_SUBS) & variants))
      hit |= LIST_BIT(list);
    if (at == 0 && (slot_variants(s->flags, list, KIND_EXACT) & variants))
      hit |= LIST_BIT(list); /* a name without its subdomains (awf_acl_add_entry) */
  }
  if (at == 0)
    return hit; /* patterns need at least one label in front of the key */
  for (const struct wpat *w = s->pats; w != NULL; w = w->next) {
    unsigned want = 0;
    for (int l = AWF_ACL_ALLOW; l <= AWF_ACL_BLOCK; l++)
      if (((unsigned)w->flags >> (l * VARIANTS)) & variants)
        want |= LIST_BIT(l);
    if ((want & ~hit) != 0 && wpat_match(w, name, at - 1))
      hit |= want;
  }
  return hit;
}

static enum awf_acl_verdict check_name(const awf_acl *acl, const char *name, size_t n,
                                       unsigned variants) {
  bool allowed = false;
  uint32_t h = FNV_BASIS;
  for (size_t i = n; i-- > 0;) {
    h = hash_step(h, (unsigned char)name[i]);
    if (i > 0 && name[i - 1] != '.')
      continue;
    const struct slot *s = slot_find(acl, name + i, n - i, hash_mix(h));
    if (s == NULL)
      continue;
    unsigned hit = slot_match(s, name, i, variants);
    if (hit & LIST_BIT(AWF_ACL_BLOCK))
      return AWF_ACL_BLOCKED;
    if (hit & LIST_BIT(AWF_ACL_ALLOW))
      allowed = true;
  }
  return allowed ? AWF_ACL_ALLOWED : AWF_ACL_NOT_ALLOWED;
}

/* Canonical text of an address, the key of its rule. An IPv4-mapped IPv6
 * address is the IPv4 address (a dual-stack socket dials exactly that), so a
 * block rule on 1.2.3.4 also stops ::ffff:1.2.3.4. */
static size_t ip_key(const struct sockaddr_storage *ss, char out[INET6_ADDRSTRLEN]) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  const char *r;
  if (ss->ss_family == AF_INET) {
    struct sockaddr_in sin;
    memcpy(&sin, ss, sizeof sin);
    r = inet_ntop(AF_INET, &sin.sin_addr, out, INET6_ADDRSTRLEN);
  } else {
    struct sockaddr_in6 sin6;
    memcpy(&sin6, ss, sizeof sin6);
    if (memcmp(sin6.sin6_addr.s6_addr, mapped, sizeof mapped) == 0)
      r = inet_ntop(AF_INET, sin6.sin6_addr.s6_addr + 12, out, INET6_ADDRSTRLEN);
    else
      r = inet_ntop(AF_INET6, &sin6.sin6_addr, out, INET6_ADDRSTRLEN);
  }
  if (r == NULL) { /* cannot happen with these buffer sizes */
    out[0] = '\0';
    return 0;
  }
  return strlen(out);
}

static enum awf_acl_verdict check_ip(const awf_acl *acl, const struct sockaddr_storage *ss,
                                     unsigned variants) {
  char key[INET6_ADDRSTRLEN];
  size_t n = ip_key(ss, key);
  const struct slot *s = n ? slot_find(acl, key, n, key_hash(key, n)) : NULL;
  if (s == NULL)
    return AWF_ACL_IP_LITERAL;
  if (slot_variants(s->flags, AWF_ACL_BLOCK, KIND_EXACT) & variants)
    return AWF_ACL_BLOCKED;
  if (slot_variants(s->flags, AWF_ACL_ALLOW, KIND_EXACT) & variants)
    return AWF_ACL_ALLOWED;
  return AWF_ACL_IP_LITERAL;
}

enum awf_acl_verdict awf_acl_check(const awf_acl *acl, const char *host, size_t len,
                                   enum awf_acl_proto proto) {
  struct sockaddr_storage ss;
  char name[AWF_HOSTNAME_MAX + 1];
  unsigned variants = variants_admitting(proto);

  if (acl == NULL || host == NULL)
    return AWF_ACL_INVALID_NAME;
  if (awf_ip_literal_parse(host, len, &ss) != 0)
    return check_ip(acl, &ss, variants);
  int n = awf_hostname_normalize(host, len, name, sizeof name);
  if (n < 0)
    return AWF_ACL_INVALID_NAME;
  return check_name(acl, name, (size_t)n, variants);
}

/* ---- rule parsing ----------------------------------------------------- */

static int fail(char *why, size_t wl, const char *msg) {
  snprintf(why, wl, "%s", msg);
  return -EINVAL;
}

/* Bytes no entry may hold anywhere, with the reason shown to the user. */
static const char *forbidden_byte(unsigned char c) {
  if (c >= 0x80)
    return "non-ASCII byte (write internationalised names as punycode A-labels, xn--...)";
  if (c == ' ' || c == '\t')
    return "whitespace inside the entry";
  if (c < 0x20 || c == 0x7f)
    return "control character";
  switch (c) {
  case '"':
  case '\'': return "quotes are not allowed";
  case ';': return "';' is not allowed";
  case '#': return "'#' is not allowed (comments only in rule files)";
  case '\\': return "'\\' is not allowed";
  default: return NULL;
  }
}

static bool only_stars_and_dots(const char *s, size_t n) {
  bool star = false;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '*')
      star = true;
    else if (s[i] != '.')
      return false;
  }
  return star;
}

static bool reads_as_ipv4(const char *label, size_t n) {
  if (n >= 2 && label[0] == '0' && label[1] == 'x')
    return true;
  for (size_t i = 0; i < n; i++)
    if (label[i] < '0' || label[i] > '9')
      return false;
  return true;
}

/* Lower-case buf[0..n) in place and check its labels. */
static int check_labels(char *buf, size_t n, char *why, size_t wl) {
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && buf[i] != '.') {
      char c = buf[i];
      if (c >= 'A' && c <= 'Z')
        buf[i] = c = (char)(c - 'A' + 'a');
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '*')) {
        snprintf(why, wl, "invalid character '%c'", c);
        return -EINVAL;
      }
      if (c == '*' && i > start && buf[i - 1] == '*')
        return fail(why, wl, "'**' is not allowed (one '*' already matches any run)");
      continue;
    }
    if (i == start)
      return fail(why, wl, "empty label ('..', or a leading or trailing dot)");
    if (i - start > AWF_LABEL_MAX)
      return fail(why, wl, "label longer than 63 bytes");
    start = i + 1;
  }
  return 0;
}

/* A domain rule, IP literals and ':' already ruled out. */
static int parse_name_rule(const char *s, size_t n, struct rule *r, char *why, size_t wl) {
  char buf[AWF_HOSTNAME_MAX + 1];

  if (n > 0 && s[n - 1] == '.' && !(n > 1 && s[n - 2] == '.'))
    n--; /* "github.com." is github.com */
  if (n == 0)
    return fail(why, wl, "no host");
  if (only_stars_and_dots(s, n))
    return fail(why, wl,
                "a wildcard alone would admit every host; name a domain, "
                "e.g. *.example.com");
  if (n > AWF_HOSTNAME_MAX)
    return fail(why, wl, "name longer than 253 bytes");
  if (n > 1 && s[0] == '.' && s[1] != '.') {
    /* ".example.com" is other tools' spelling of "example.com and below",
     * which the bare name already means here: point at it. */
    struct rule bare;
    memset(&bare, 0, offsetof(struct rule, key));
    if (parse_name_rule(s + 1, n - 1, &bare, why, wl) < 0)
      return -EINVAL;
    snprintf(why, wl, "a leading dot is not allowed: did you mean %.*s (covers subdomains)?",
             (int)(n - 1), s + 1);
    return -EINVAL;
  }
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (check_labels(buf, n, why, wl) < 0)
    return -EINVAL;

  size_t tld = last_label(buf, n);
  if (memchr(buf + tld, '*', n - tld) != NULL)
    return fail(why, wl, "'*' in the top-level label is not allowed");
  if (reads_as_ipv4(buf + tld, n - tld))
    return fail(why, wl, "numeric top-level label: neither a domain nor a valid IPv4 address");

  size_t body = 0;
  if (n > 2 && buf[0] == '*' && buf[1] == '.') {
    r->any_depth = true;
    body = 2;
  }
  /* The literal key starts after the last label that holds a '*'. */
  const char *star = NULL;
  for (size_t i = n; i-- > body;)
    if (buf[i] == '*') {
      star = buf + i;
      break;
    }
  if (star == NULL) {
    r->kind = r->any_depth ? KIND_SUBS : KIND_TREE;
    r->keylen = n - body;
    memcpy(r->key, buf + body, r->keylen + 1);
    return 0;
  }
  const char *dot = memchr(star, '.', (size_t)(buf + n - star)); /* exists: tld has no '*' */
  size_t plen = (size_t)(dot - (buf + body));
  r->kind = KIND_PATTERN;
  r->patlen = plen;
  memcpy(r->pat, buf + body, plen);
  r->pat[plen] = '\0';
  r->nlabels = 1;
  for (size_t i = 0; i < plen; i++)
    r->nlabels += r->pat[i] == '.';
  r->keylen = n - (size_t)(dot + 1 - buf);
  memcpy(r->key, dot + 1, r->keylen + 1);
  return 0;
}

static int ip_rule(const struct sockaddr_storage *ss, struct rule *r) {
  r->kind = KIND_EXACT;
  r->keylen = ip_key(ss, r->key);
  return 0;
}

static int parse_bracketed(const char *s, size_t n, struct rule *r, char *why, size_t wl) {
  struct sockaddr_storage ss;
  const char *close = memchr(s, ']', n);
  if (close == NULL)
    return fail(why, wl, "'[' without ']'");
  size_t after = n - (size_t)(close + 1 - s);
  if (after > 0)
    return fail(why, wl,
                close[1] == ':' ? "a port suffix is not allowed (ports are set with "
                                  "--allow-ports)"
                                : "text after ']'");
  if (awf_ip_literal_parse(s + 1, (size_t)(close - s - 1), &ss) != AF_INET6)
    return fail(why, wl, "not an IPv6 address inside [...]");
  return ip_rule(&ss, r);
}

static bool eq_nocase(const char *a, size_t n, const char *lit) {
  if (strlen(lit) != n)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if (c != lit[i])
      return false;
  }
  return true;
}

/* Parse one trimmed, non-empty entry. On error returns -EINVAL with the
 * reason in why. */
static int parse_rule(const char *s, size_t n, struct rule *r, char *why, size_t wl) {
  struct sockaddr_storage ss;

  memset(r, 0, offsetof(struct rule, key));
  r->proto = PROTO_BOTH;
  for (size_t i = 0; i < n; i++) {
    const char *bad = forbidden_byte((unsigned char)s[i]);
    if (bad != NULL)
      return fail(why, wl, bad);
  }
  const char *sep = memmem(s, n, "://", 3);
  if (sep != NULL) {
    size_t sl = (size_t)(sep - s);
    if (eq_nocase(s, sl, "https"))
      r->proto = AWF_PROTO_TLS;
    else if (eq_nocase(s, sl, "http"))
      r->proto = AWF_PROTO_HTTP;
    else {
      snprintf(why, wl, "unsupported scheme '%.*s' (only http:// and https://)",
               (int)(sl > 16 ? 16 : sl), s);
      return -EINVAL;
    }
    n -= sl + 3;
    s = sep + 3;
  }
  if (n > 0 && s[n - 1] == '/')
    n--;
  if (memchr(s, '/', n) != NULL)
    return fail(why, wl, "a path is not allowed, only a host");
  if (n == 0)
    return fail(why, wl, "no host");
  if (s[0] == '[')
    return parse_bracketed(s, n, r, why, wl);
  if (awf_ip_literal_parse(s, n, &ss) != 0)
    return ip_rule(&ss, r);
  const char *colon = memchr(s, ':', n);
  if (colon != NULL)
    return fail(why, wl,
                memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)) == NULL
                    ? "a port suffix is not allowed (ports are set with --allow-ports)"
                    : "not a valid IPv6 address");
  return parse_name_rule(s, n, r, why, wl);
}

/* ---- adding rules ----------------------------------------------------- */

static struct wpat *pattern_get(awf_acl *acl, struct slot *s, const struct rule *r) {
  for (struct wpat *w = s->pats; w != NULL; w = w->next)
    if (w->any_depth == r->any_depth && w->len == r->patlen &&
        memcmp(w->text, r->pat, r->patlen) == 0)
      return w;
  struct wpat *w = arena_alloc(acl, sizeof *w + r->patlen + 1, alignof(struct wpat));
  if (w == NULL)
    return NULL;
  w->flags = 0;
  w->any_depth = r->any_depth;
  w->nlabels = (uint8_t)r->nlabels;
  w->len = (uint8_t)r->patlen;
  memcpy(w->text, r->pat, r->patlen + 1);
  w->next = s->pats;
  s->pats = w;
  return w;
}

static int insert_rule(awf_acl *acl, enum awf_acl_list which, const struct rule *r) {
  struct slot *s;
  if (slot_get(acl, r->key, r->keylen, &s) < 0)
    return -ENOMEM;
  if (r->kind != KIND_PATTERN) {
    uint32_t bit = slot_bit(which, r->kind, r->proto);
    if (!(s->flags & bit)) {
      s->flags |= bit;
      acl->count[which]++;
    }
    return 0;
  }
  struct wpat *w = pattern_get(acl, s, r);
  if (w == NULL)
    return -ENOMEM;
  uint8_t bit = pat_bit(which, r->proto);
  if (!(w->flags & bit)) {
    w->flags |= bit;
    acl->count[which]++;
  }
  return 0;
}

/* One add call. Entries are walked twice: first only parsed, so that a bad
 * entry leaves the ACL untouched, then parsed again and inserted. Only an
 * allocation failure can stop the second walk; the entries before it then
 * stay added, and the caller, at start-up, gives up on the whole ACL. */
struct batch {
  awf_acl *acl;
  enum awf_acl_list which;
  bool insert;
  bool file; /* rules-file syntax: newlines separate, '#' comments */
  const char *origin;
  char *err;
  size_t errlen;
};

/* The entry, printable: other bytes as \xNN, long ones cut with "...". */
static void quote_entry(char *dst, size_t dsz, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < n && i < ENTRY_ECHO_MAX && o + 5 < dsz; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f) {
      dst[o++] = (char)c;
    } else {
      dst[o++] = '\\';
      dst[o++] = 'x';
      dst[o++] = hex[c >> 4];
      dst[o++] = hex[c & 15];
    }
  }
  if (n > ENTRY_ECHO_MAX && o + 3 < dsz) {
    memcpy(dst + o, "...", 3);
    o += 3;
  }
  dst[o] = '\0';
}

static void report(const struct batch *b, const char *s, size_t n, unsigned line,
                   const char *why) {
  char q[ENTRY_ECHO_MAX * 4 + 8];
  if (b->err == NULL || b->errlen == 0)
    return;
  quote_entry(q, sizeof q, s, n);
  if (b->file)
    snprintf(b->err, b->errlen, "%s:%u: invalid rule '%s': %s", b->origin ? b->origin : "rules",
             line, q, why);
  else
    snprintf(b->err, b->errlen, "invalid rule '%s': %s", q, why);
}

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int handle_entry(const struct batch *b, const char *s, size_t n, unsigned line) {
  struct rule r;
  char why[AWF_HOSTNAME_MAX + 128]; /* room for a name suggested back */

  while (n > 0 && is_space(s[0])) {
    s++;
    n--;
  }
  while (n > 0 && is_space(s[n - 1]))
    n--;
  if (n == 0)
    return 0;
  if (parse_rule(s, n, &r, why, sizeof why) < 0) {
    report(b, s, n, line, why);
    return -EINVAL;
  }
  if (!b->insert)
    return 0;
  if (insert_rule(b->acl, b->which, &r) < 0) {
    if (b->err != NULL && b->errlen > 0)
      snprintf(b->err, b->errlen, "out of memory");
    return -ENOMEM;
  }
  return 0;
}

static int each_entry(const struct batch *b, const char *text, size_t len) {
  unsigned line = 1;
  size_t start = 0;
  for (size_t i = 0;; i++) {
    bool end = i == len;
    char c = end ? '\0' : text[i];
    if (!end && c != ',' && !(b->file && (c == '\n' || c == '#')))
      continue;
    int rc = handle_entry(b, text + start, i - start, line);
    if (rc < 0)
      return rc;
    if (c == '#') { /* b->file: skip the comment */
      const char *nl = memchr(text + i, '\n', len - i);
      if (nl == NULL)
        break;
      i = (size_t)(nl - text);
      c = '\n';
    }
    if (end)
      break;
    if (c == '\n')
      line++;
    start = i + 1;
  }
  return 0;
}

static int add_batch(struct batch *b, const char *text, size_t len) {
  if (b->acl == NULL || text == NULL ||
      (b->which != AWF_ACL_ALLOW && b->which != AWF_ACL_BLOCK)) {
    if (b->err != NULL && b->errlen > 0)
      snprintf(b->err, b->errlen, "invalid arguments");
    return -EINVAL;
  }
  b->insert = false;
  int rc = each_entry(b, text, len);
  if (rc < 0)
    return rc;
  b->insert = true;
  return each_entry(b, text, len);
}

int awf_acl_add_entry(awf_acl *acl, enum awf_acl_list which, const char *entry, size_t len,
                      bool exact, char *why, size_t wl) {
  struct rule r;
  while (len > 0 && is_space(entry[0])) {
    entry++;
    len--;
  }
  while (len > 0 && is_space(entry[len - 1]))
    len--;
  if (acl == NULL || entry == NULL || (which != AWF_ACL_ALLOW && which != AWF_ACL_BLOCK))
    return fail(why, wl, "invalid arguments");
  if (len == 0)
    return fail(why, wl, "no host");
  if (parse_rule(entry, len, &r, why, wl) < 0)
    return -EINVAL;
  if (exact && (r.kind == KIND_SUBS || r.kind == KIND_PATTERN))
    return fail(why, wl, "a wildcard rule always means subdomains: write the name itself");
  if (exact)
    r.kind = KIND_EXACT; /* a name's tree becomes the name alone; an address is exact already */
  if (insert_rule(acl, which, &r) < 0) {
    snprintf(why, wl, "out of memory");
    return -ENOMEM;
  }
  return 0;
}

int awf_acl_add_list(awf_acl *acl, enum awf_acl_list which, const char *list, char *err,
                     size_t errlen) {
  struct batch b = {acl, which, false, false, NULL, err, errlen};
  return add_batch(&b, list, list ? strlen(list) : 0);
}

int awf_acl_add_text(awf_acl *acl, enum awf_acl_list which, const char *text, size_t len,
                     const char *origin, char *err, size_t errlen) {
  struct batch b = {acl, which, false, true, origin, err, errlen};
  return add_batch(&b, text, len);
}

/* ---- lifetime and queries --------------------------------------------- */

awf_acl *awf_acl_new(void) { return calloc(1, sizeof(awf_acl)); }

void awf_acl_free(awf_acl *acl) {
  if (acl == NULL)
    return;
  struct chunk *c = acl->arena;
  while (c != NULL) {
    struct chunk *next = c->next;
    free(c);
    c = next;
  }
  free(acl->slots);
  free(acl);
}

size_t awf_acl_count(const awf_acl *acl, enum awf_acl_list which) {
  if (acl == NULL || (which != AWF_ACL_ALLOW && which != AWF_ACL_BLOCK))
    return 0;
  return acl->count[which];
}

/* ---- listing --------------------------------------------------------- */

struct out {
  char *buf;
  size_t len, need;
};

static void put(struct out *o, const char *a, const char *b, const char *c) {
  int k = snprintf(o->need < o->len ? o->buf + o->need : NULL,
                   o->need < o->len ? o->len - o->need : 0, "%s%s%s%s", o->need ? "," : "", a,
                   b, c);
  if (k > 0)
    o->need += (size_t)k;
}

static const char *scheme(unsigned proto) {
  return proto == AWF_PROTO_TLS ? "https://" : proto == AWF_PROTO_HTTP ? "http://" : "";
}

size_t awf_acl_format(const awf_acl *acl, enum awf_acl_list which, char *buf, size_t len) {
  struct out o = {buf, len, 0};
  if (len > 0)
    buf[0] = '\0';
  if (acl == NULL || (which != AWF_ACL_ALLOW && which != AWF_ACL_BLOCK))
    return 0;
  for (size_t i = 0; i < acl->cap; i++) {
    const struct slot *s = &acl->slots[i];
    if (s->key == NULL)
      continue;
    bool v6 = strchr(s->key, ':') != NULL; /* an address key: [::1] as written */
    for (unsigned m = 1; m <= VARIANTS; m++) {
      if (slot_variants(s->flags, which, KIND_TREE) & (1u << (m - 1)))
        put(&o, scheme(m), s->key, "");
      if (slot_variants(s->flags, which, KIND_SUBS) & (1u << (m - 1)))
        put(&o, scheme(m), "*.", s->key);
      if (slot_variants(s->flags, which, KIND_EXACT) & (1u << (m - 1))) {
        struct sockaddr_storage ss;
        char ip[AWF_HOSTNAME_MAX + 20];
        bool addr = awf_ip_literal_parse(s->key, strlen(s->key), &ss) != 0;
        snprintf(ip, sizeof ip, v6 ? "[%s]" : addr ? "%s" : "%s (no subdomains)", s->key);
        put(&o, scheme(m), ip, "");
      }
      for (const struct wpat *w = s->pats; w != NULL; w = w->next)
        if (w->flags & pat_bit(which, m)) {
          char pat[2 * AWF_HOSTNAME_MAX + 4];
          snprintf(pat, sizeof pat, "%s%s.%s", w->any_depth ? "*." : "", w->text, s->key);
          put(&o, scheme(m), pat, "");
        }
    }
  }
  return o.need;
}

const char *awf_acl_verdict_name(enum awf_acl_verdict v) {
  switch (v) {
  case AWF_ACL_ALLOWED: return "allowed";
  case AWF_ACL_NOT_ALLOWED: return "not_allowed";
  case AWF_ACL_BLOCKED: return "blocked";
  case AWF_ACL_IP_LITERAL: return "ip_literal";
  case AWF_ACL_INVALID_NAME: return "invalid_name";
  }
  return "unknown";
}
