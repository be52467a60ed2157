/* rate_limit.c: token buckets per host (see rate_limit.h).
 *
 * A bucket's level counts units times the period in milliseconds, so that
 * refilling N units per period adds exactly N for each millisecond and every
 * computation is an integer one: a request costs period_ms, a byte costs
 * period_ms, a full bucket holds N * period_ms. */
#include "rate_limit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "hostname.h"
#include "list.h"

#define MIN_SLOTS 16u
#define MAX_SLOTS (1u << 16)
#define DEBT_FLOOR (-(INT64_C(1) << 61)) /* how far bytes may drive a bucket below zero */
#define KEY_MAX (AWF_HOSTNAME_MAX + 3)   /* a name, or an IPv6 literal in brackets */

struct limit {
  uint64_t n;         /* units per period */
  uint64_t period_ms; /* 1000, 60000 or 3600000 */
};

struct bucket {
  int64_t level; /* units * period_ms; at most n * period_ms */
  uint64_t at_ms;
  bool started; /* a bucket never used is full */
};

struct rule {
  enum awf_rate_kind kind;
  awf_acl *match; /* the HOST part; NULL: the global form */
  struct limit lim;
  struct bucket b; /* a HOST rule's one bucket */
  unsigned slot;   /* the global form: its bucket in each host entry */
  char *text;      /* as given, for the debug description */
};

struct host_entry {
  struct host_entry *next; /* hash chain */
  struct awf_list lru;     /* front: the most recently used */
  uint64_t hash;
  char key[KEY_MAX + 1];
  struct bucket b[]; /* one per global rule (rule.slot) */
};

struct awf_rate_limits {
  struct rule rules[AWF_RATE_RULES_MAX];
  size_t n_rules;
  unsigned n_global;
  struct host_entry **tab;
  size_t mask;
  struct awf_list lru;
  unsigned n_hosts, max_hosts;
  uint64_t seed;
  /* The buckets, for engines in several threads (awf-proxy --workers). */
  pthread_mutex_t mu;
};

/* ---- buckets ------------------------------------------------------------- */

static int64_t cap_of(const struct limit *l) { return (int64_t)(l->n * l->period_ms); }

static void refill(struct bucket *b, const struct limit *l, uint64_t now) {
  int64_t cap = cap_of(l);
  if (!b->started) {
    b->started = true;
    b->level = cap;
    b->at_ms = now;
    return;
  }
  if (now <= b->at_ms) /* a clock that stands still (or steps back) adds nothing */
    return;
  uint64_t dt = now - b->at_ms;
  b->at_ms = now;
  uint64_t need = (uint64_t)(cap - b->level); /* <= cap - DEBT_FLOOR < 2^63 */
  if (dt > need / l->n)
    b->level = cap;
  else
    b->level += (int64_t)(dt * l->n);
}

/* The level a bucket needs to admit: a request's unit, or a byte of credit. */
static int64_t threshold(const struct limit *l) { return (int64_t)l->period_ms; }

/* Milliseconds until the bucket reaches `want` (0 if it is there). */
static uint64_t wait_ms(const struct bucket *b, const struct limit *l, int64_t want) {
  if (b->level >= want)
    return 0;
  uint64_t need = (uint64_t)(want - b->level);
  return (need + l->n - 1) / l->n;
}

static unsigned ms_to_retry(uint64_t ms) {
  uint64_t s = (ms + 999) / 1000;
  if (s < 1)
    s = 1;
  return s > UINT32_MAX ? UINT32_MAX : (unsigned)s;
}

static void charge_bucket(struct bucket *b, const struct limit *l, uint64_t bytes) {
  uint64_t room = (uint64_t)(b->level - DEBT_FLOOR) / l->period_ms;
  if (bytes >= room)
    b->level = DEBT_FLOOR;
  else
    b->level -= (int64_t)(bytes * l->period_ms);
}

/* ---- the global form's per-host table ------------------------------------ */

static size_t entry_size(const awf_rate_limits *rl) {
  return sizeof(struct host_entry) + rl->n_global * sizeof(struct bucket);
}

/* The key: lower case, without one trailing dot. False for an empty or
 * over-long host (which no rule admits anyway). */
static bool key_of(const char *host, size_t len, char key[KEY_MAX + 1]) {
  if (len > 0 && host[len - 1] == '.')
    len--;
  if (len == 0 || len > KEY_MAX)
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = host[i];
    key[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
  }
  key[len] = '\0';
  return true;
}

/* FNV-1a over the key, seeded. */
static uint64_t key_hash(uint64_t seed, const char *key) {
  uint64_t h = 14695981039346656037ull ^ seed;
  for (const char *p = key; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  return h;
}

static void unlink_entry(awf_rate_limits *rl, struct host_entry *e) {
  struct host_entry **pp = &rl->tab[e->hash & rl->mask];
  while (*pp != e)
    pp = &(*pp)->next;
  *pp = e->next;
  awf_list_remove(&e->lru);
  rl->n_hosts--;
}

static void clear_hosts(awf_rate_limits *rl) {
  struct awf_list *it, *tmp;
  awf_list_each_safe(it, tmp, &rl->lru) {
    struct host_entry *e = awf_list_entry(it, struct host_entry, lru);
    unlink_entry(rl, e);
    free(e);
  }
}

/* Refill an entry's buckets; the milliseconds until all are full. */
static uint64_t entry_refill(awf_rate_limits *rl, struct host_entry *e, uint64_t now) {
  uint64_t most = 0;
  for (size_t i = 0; i < rl->n_rules; i++) {
    const struct rule *r = &rl->rules[i];
    if (r->match)
      continue;
    refill(&e->b[r->slot], &r->lim, now);
    uint64_t w = wait_ms(&e->b[r->slot], &r->lim, cap_of(&r->lim));
    if (w > most)
      most = w;
  }
  return most;
}

/* The host's entry, made when missing. NULL with *retry set when the table
 * is full of entries that have not refilled; NULL with *retry 0 when out of
 * memory. */
static struct host_entry *entry_get(awf_rate_limits *rl, const char *key, uint64_t now,
                                    unsigned *retry) {
  uint64_t h = key_hash(rl->seed, key);
  struct host_entry **pp = &rl->tab[h & rl->mask];
  for (struct host_entry *e = *pp; e; e = e->next)
    if (e->hash == h && strcmp(e->key, key) == 0) {
      awf_list_remove(&e->lru);
      awf_list_push_front(&rl->lru, &e->lru);
      return e;
    }
  *retry = 0;
  struct host_entry *e = NULL;
  if (rl->n_hosts >= rl->max_hosts) {
    struct host_entry *old = awf_list_last(&rl->lru, struct host_entry, lru);
    uint64_t w = entry_refill(rl, old, now);
    if (w > 0) {
      *retry = ms_to_retry(w);
      return NULL;
    }
    unlink_entry(rl, old); /* full again: it knows nothing a new entry would not */
    e = old;
    memset(e, 0, entry_size(rl));
  } else if (!(e = calloc(1, entry_size(rl)))) {
    return NULL;
  }
  e->hash = h;
  memcpy(e->key, key, strlen(key) + 1);
  e->next = *pp;
  *pp = e;
  awf_list_push_front(&rl->lru, &e->lru);
  rl->n_hosts++;
  return e;
}

/* ---- which buckets apply ------------------------------------------------- */

struct applying {
  size_t n;
  struct bucket *b[AWF_RATE_RULES_MAX];
  const struct rule *r[AWF_RATE_RULES_MAX];
};

/* Collect the buckets that apply to host, refilled to now. Returns 0, or a
 * Retry-After when the global form's table has no room for it (1 when out
 * of memory: the limit fails closed). */
static unsigned collect(awf_rate_limits *rl, const char *host, size_t len, uint64_t now,
                        struct applying *a) {
  bool named[2] = {false, false};
  a->n = 0;
  for (size_t i = 0; i < rl->n_rules; i++) {
    struct rule *r = &rl->rules[i];
    if (r->match && awf_acl_check(r->match, host, len, AWF_PROTO_TLS) == AWF_ACL_ALLOWED) {
      named[r->kind] = true;
      a->b[a->n] = &r->b;
      a->r[a->n++] = r;
    }
  }
  bool global = false;
  for (size_t i = 0; i < rl->n_rules; i++)
    global |= !rl->rules[i].match && !named[rl->rules[i].kind];
  char key[KEY_MAX + 1];
  if (global && key_of(host, len, key)) {
    unsigned retry = 0;
    struct host_entry *e = entry_get(rl, key, now, &retry);
    if (!e)
      return retry ? retry : 1;
    for (size_t i = 0; i < rl->n_rules; i++) {
      struct rule *r = &rl->rules[i];
      if (!r->match && !named[r->kind]) {
        a->b[a->n] = &e->b[r->slot];
        a->r[a->n++] = r;
      }
    }
  }
  for (size_t i = 0; i < a->n; i++)
    refill(a->b[i], &a->r[i]->lim, now);
  return 0;
}

static unsigned admit_locked(awf_rate_limits *rl, const char *host, size_t len, uint64_t now_ms,
                             bool take) {
  struct applying a;
  unsigned full = collect(rl, host, len, now_ms, &a);
  if (full > 0)
    return full;
  uint64_t most = 0;
  bool short_of = false;
  for (size_t i = 0; i < a.n; i++) {
    int64_t want = threshold(&a.r[i]->lim);
    if (a.b[i]->level < want) {
      short_of = true;
      uint64_t w = wait_ms(a.b[i], &a.r[i]->lim, want);
      if (w > most)
        most = w;
    }
  }
  if (short_of)
    return ms_to_retry(most);
  for (size_t i = 0; i < a.n && take; i++)
    if (a.r[i]->kind == AWF_RATE_REQUESTS)
      a.b[i]->level -= (int64_t)a.r[i]->lim.period_ms;
  return 0;
}

unsigned awf_rate_limits_admit(awf_rate_limits *rl, const char *host, size_t len,
                               uint64_t now_ms, bool take) {
  if (!rl || rl->n_rules == 0)
    return 0;
  pthread_mutex_lock(&rl->mu);
  unsigned retry = admit_locked(rl, host, len, now_ms, take);
  pthread_mutex_unlock(&rl->mu);
  return retry;
}

void awf_rate_limits_charge(awf_rate_limits *rl, const char *host, size_t len, uint64_t bytes,
                            uint64_t now_ms) {
  if (!rl || bytes == 0 || awf_rate_limits_count(rl, AWF_RATE_BYTES) == 0)
    return;
  struct applying a;
  pthread_mutex_lock(&rl->mu);
  /* no room to remember this host: nothing charged (see rate_limit.h) */
  if (collect(rl, host, len, now_ms, &a) == 0)
    for (size_t i = 0; i < a.n; i++)
      if (a.r[i]->kind == AWF_RATE_BYTES)
        charge_bucket(a.b[i], &a.r[i]->lim, bytes);
  pthread_mutex_unlock(&rl->mu);
}

size_t awf_rate_limits_hosts(const awf_rate_limits *rl) {
  if (!rl)
    return 0;
  pthread_mutex_lock((pthread_mutex_t *)&rl->mu);
  size_t n = rl->n_hosts;
  pthread_mutex_unlock((pthread_mutex_t *)&rl->mu);
  return n;
}

/* ---- rules ---------------------------------------------------------------- */

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* "N" or, for bytes, "N[KMG]": a count from 1 to max. */
static bool parse_amount(const char *s, size_t n, enum awf_rate_kind kind, uint64_t *out) {
  uint64_t mult = 1;
  if (kind == AWF_RATE_BYTES && n > 0) {
    switch (s[n - 1]) {
    case 'K':
    case 'k': mult = 1ull << 10; break;
    case 'M':
    case 'm': mult = 1ull << 20; break;
    case 'G':
    case 'g': mult = 1ull << 30; break;
    }
    if (mult > 1)
      n--;
  }
  if (n == 0 || n > 13)
    return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  uint64_t max = kind == AWF_RATE_BYTES ? AWF_RATE_BYTES_MAX : AWF_RATE_REQUESTS_MAX;
  if (v == 0 || v > max / mult)
    return false;
  *out = v * mult;
  return true;
}

/* "N/s", "N/m" or "N/h". */
static bool parse_rate(const char *s, size_t n, enum awf_rate_kind kind, struct limit *l) {
  if (n < 3 || s[n - 2] != '/')
    return false;
  switch (s[n - 1]) {
  case 's': l->period_ms = 1000; break;
  case 'm': l->period_ms = 60000; break;
  case 'h': l->period_ms = 3600000; break;
  default: return false;
  }
  return parse_amount(s, n - 2, kind, &l->n);
}

static int fail(char *err, size_t errlen, const char *entry, const char *why) {
  snprintf(err, errlen, "'%s': %s", entry, why);
  return -EINVAL;
}

int awf_rate_limits_add(awf_rate_limits *rl, enum awf_rate_kind kind, const char *entry,
                        char *err, size_t errlen) {
  if (!rl || !entry)
    return -EINVAL;
  if (rl->n_rules == AWF_RATE_RULES_MAX)
    return fail(err, errlen, entry, "too many rate and bytes limits (at most 64)");
  const char *a = entry, *z = entry + strlen(entry);
  while (a < z && is_space(*a))
    a++;
  while (z > a && is_space(z[-1]))
    z--;
  const char *eq = memchr(a, '=', (size_t)(z - a));
  const char *rate = eq ? eq + 1 : a;
  while (rate < z && is_space(*rate))
    rate++;
  struct rule r = {.kind = kind};
  if (!parse_rate(rate, (size_t)(z - rate), kind, &r.lim))
    return fail(err, errlen, entry,
                kind == AWF_RATE_REQUESTS
                    ? "not [HOST=]N/s, N/m or N/h (requests, N from 1 to 1000000)"
                    : "not [HOST=]N/s, N/m or N/h (bytes: N from 1 to 1T, with an optional "
                      "K, M or G suffix, powers of 1024)");
  if (eq) {
    const char *h = a, *he = eq;
    while (he > h && is_space(he[-1]))
      he--;
    if (h == he)
      return fail(err, errlen, entry, "no host before '=' (the global form is N/s alone)");
    char host[KEY_MAX + 8];
    if ((size_t)(he - h) >= sizeof(host) || memchr(h, ',', (size_t)(he - h)) ||
        memchr(h, ' ', (size_t)(he - h)))
      return fail(err, errlen, entry, "one host per entry (repeat the flag for more)");
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = '\0';
    if (strstr(host, "://"))
      return fail(err, errlen, entry,
                  "the host takes no scheme (api.example.com, *.example.com, 1.2.3.4)");
    if (!(r.match = awf_acl_new()))
      return -ENOMEM;
    char why[512];
    int rc = awf_acl_add_list(r.match, AWF_ACL_ALLOW, host, why, sizeof(why));
    if (rc < 0) {
      awf_acl_free(r.match);
      return rc == -EINVAL ? fail(err, errlen, entry, why) : rc;
    }
  }
  if (!(r.text = strdup(entry))) {
    awf_acl_free(r.match);
    return -ENOMEM;
  }
  if (!r.match) {
    clear_hosts(rl); /* entries are sized for the global rules */
    r.slot = rl->n_global++;
  }
  rl->rules[rl->n_rules++] = r;
  return 0;
}

size_t awf_rate_limits_count(const awf_rate_limits *rl, enum awf_rate_kind kind) {
  size_t n = 0;
  for (size_t i = 0; rl && i < rl->n_rules; i++)
    n += rl->rules[i].kind == kind;
  return n;
}

void awf_rate_limits_format(const awf_rate_limits *rl, enum awf_rate_kind kind, char *buf,
                            size_t len) {
  size_t used = 0;
  if (len == 0)
    return;
  buf[0] = '\0';
  for (size_t i = 0; rl && i < rl->n_rules; i++) {
    if (rl->rules[i].kind != kind)
      continue;
    int k = snprintf(buf + used, len - used, "%s%s", used ? "," : "", rl->rules[i].text);
    if (k < 0 || (size_t)k >= len - used)
      return; /* truncated */
    used += (size_t)k;
  }
}

awf_rate_limits *awf_rate_limits_new(unsigned max_hosts, uint64_t seed) {
  if (max_hosts == 0)
    return NULL;
  awf_rate_limits *rl = calloc(1, sizeof(*rl));
  if (!rl)
    return NULL;
  size_t slots = MIN_SLOTS;
  while (slots < MAX_SLOTS && slots < max_hosts)
    slots <<= 1;
  rl->tab = calloc(slots, sizeof(*rl->tab));
  if (!rl->tab) {
    free(rl);
    return NULL;
  }
  rl->mask = slots - 1;
  rl->max_hosts = max_hosts;
  rl->seed = seed;
  awf_list_init(&rl->lru);
  pthread_mutex_init(&rl->mu, NULL);
  return rl;
}

void awf_rate_limits_free(awf_rate_limits *rl) {
  if (!rl)
    return;
  clear_hosts(rl);
  for (size_t i = 0; i < rl->n_rules; i++) {
    awf_acl_free(rl->rules[i].match);
    free(rl->rules[i].text);
  }
  free(rl->tab);
  pthread_mutex_destroy(&rl->mu);
  free(rl);
}
