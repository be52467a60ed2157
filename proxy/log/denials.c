/* denials.c: a small bounded set of what was denied, and the end-of-run
 * summary built from it. Pure: no I/O but the FILE the caller passes. */
#include "denials.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dns_msg.h"

#define HOST_MAX 256
#define DETAIL_MAX 64
#define COLLAPSE_MIN 4 /* names under one parent before the parent is suggested */

struct denial {
  char host[HOST_MAX];
  char detail[DETAIL_MAX]; /* the address for private_destination, the scheme... */
  int port;
  enum awf_reason reason;
  bool would; /* admitted by --audit */
  unsigned count;
};

struct awf_denials {
  struct denial items[AWF_DENIALS_MAX];
  size_t n;
  unsigned long dropped;
  pthread_mutex_t mu; /* engines in several threads note denials */
};

/* What a reason means for the summary (its section, the flag that fixes it,
 * a note) is the reason table's: reason.h. */
static enum awf_reason_fix fix_of(enum awf_reason reason, const char **hint) {
  *hint = awf_reason_fix_note(reason);
  return awf_reason_fix(reason);
}

awf_denials *awf_denials_new(void) {
  awf_denials *d = calloc(1, sizeof(struct awf_denials));
  if (d)
    pthread_mutex_init(&d->mu, NULL);
  return d;
}

void awf_denials_free(awf_denials *d) {
  if (d)
    pthread_mutex_destroy(&d->mu);
  free(d);
}

size_t awf_denials_count(const awf_denials *d) {
  pthread_mutex_lock((pthread_mutex_t *)&d->mu);
  size_t n = d->n;
  pthread_mutex_unlock((pthread_mutex_t *)&d->mu);
  return n;
}

void awf_denials_add(awf_denials *d, const char *host, size_t host_len, int port,
                     enum awf_reason reason) {
  struct awf_denial_fact f = {.host = host,
                              .host_len = host_len,
                              .port = port,
                              .reason = reason};
  awf_denials_note(d, &f);
}

void awf_denials_add_text(awf_denials *d, const char *text, size_t len, int port,
                          enum awf_reason reason) {
  struct awf_denial_fact f = {
      .host = text, .host_len = len, .escaped = true, .port = port, .reason = reason};
  awf_denials_note(d, &f);
}

static bool printable(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
      return false;
  return true;
}

static void note_locked(awf_denials *d, const char *host, size_t len, const char *detail,
                        int port, const struct awf_denial_fact *f);

void awf_denials_note(awf_denials *d, const struct awf_denial_fact *f) {
  char text[4 * HOST_MAX]; /* each byte as \DDD at most */
  const char *host = f->host, *detail = f->detail;
  size_t len = f->host_len;
  if (!host || len == 0 || len >= HOST_MAX || !f->reason)
    return;
  if (!f->escaped) /* a host's dots separate its labels: only the other bytes need it */
    len = awf_dns_escape((const uint8_t *)host, len, false, text, sizeof(text)), host = text;
  if (len == 0 || len >= HOST_MAX || !printable(host, len))
    return; /* not escaped: never echoed to a terminal */
  if (!detail || strlen(detail) >= DETAIL_MAX || !printable(detail, strlen(detail)))
    detail = "";
  int port = f->port > 0 ? f->port : 0;
  pthread_mutex_lock(&d->mu);
  note_locked(d, host, len, detail, port, f);
  pthread_mutex_unlock(&d->mu);
}

static void note_locked(awf_denials *d, const char *host, size_t len, const char *detail,
                        int port, const struct awf_denial_fact *f) {
  for (size_t i = 0; i < d->n; i++) {
    struct denial *x = &d->items[i];
    if (x->port == port && x->would == f->would && strlen(x->host) == len &&
        memcmp(x->host, host, len) == 0 && x->reason == f->reason &&
        strcmp(x->detail, detail) == 0) {
      x->count++;
      return;
    }
  }
  if (d->n == AWF_DENIALS_MAX) {
    d->dropped++;
    return;
  }
  struct denial *x = &d->items[d->n++];
  memcpy(x->host, host, len);
  x->host[len] = '\0';
  strcpy(x->detail, detail);
  x->port = port;
  x->reason = f->reason;
  x->would = f->would;
  x->count = 1;
}

/* ---- names that carry data --------------------------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A label that looks like encoded data rather than a name a person chose:
 * very long, or long and mixing many digits into letters, or long hex. */
static bool label_looks_like_data(const char *l, size_t n) {
  if (n >= 32)
    return true;
  if (n < 16)
    return false;
  size_t digits = 0, hex = 0;
  for (size_t i = 0; i < n; i++) {
    digits += is_digit(l[i]);
    hex += is_hex(l[i]);
  }
  return hex == n || (digits >= 3 && digits <= n - 3);
}

bool awf_denials_looks_like_data(const char *name) {
  const char *p = name;
  for (;;) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (label_looks_like_data(p, n))
      return true;
    if (!dot)
      return false;
    p = dot + 1;
  }
}

/* ---- the paste line ----------------------------------------------------- */

/* The name without its first label, when that still names a registrable
 * domain (two labels, and not a two-letter country's "co.uk"-style suffix). */
static const char *parent_of(const char *name) {
  const char *dot = strchr(name, '.');
  if (!dot)
    return NULL;
  const char *p = dot + 1, *second = strchr(p, '.');
  if (!second)
    return NULL; /* "com": a top-level domain is never suggested */
  static const char *const sld[] = {"co", "com", "net", "org", "gov", "edu", "ac", "ne", "or"};
  size_t first = (size_t)(second - p);
  if (strlen(second + 1) == 2 && !strchr(second + 1, '.'))
    for (size_t i = 0; i < sizeof(sld) / sizeof(sld[0]); i++)
      if (strlen(sld[i]) == first && strncmp(p, sld[i], first) == 0)
        return NULL;
  return p;
}

struct words {
  char text[8192];
  size_t len;
  unsigned n;
};

/* Add a comma-separated item once. */
static void words_add(struct words *w, const char *item) {
  size_t il = strlen(item);
  const char *p = w->text;
  while (p < w->text + w->len) {
    const char *comma = memchr(p, ',', (size_t)(w->text + w->len - p));
    size_t l = comma ? (size_t)(comma - p) : (size_t)(w->text + w->len - p);
    if (l == il && memcmp(p, item, il) == 0)
      return;
    p += l + 1;
  }
  if (w->len + il + 2 > sizeof(w->text))
    return;
  if (w->len)
    w->text[w->len++] = ',';
  memcpy(w->text + w->len, item, il);
  w->len += il;
  w->text[w->len] = '\0';
  w->n++;
}

static unsigned children_of(const awf_denials *d, const char *parent) {
  unsigned n = 0;
  for (size_t i = 0; i < d->n; i++) {
    const char *hint;
    const struct denial *x = &d->items[i];
    if (fix_of(x->reason, &hint) != AWF_FIX_DOMAIN || awf_denials_looks_like_data(x->host))
      continue;
    const char *p = parent_of(x->host);
    /* count each name once, whatever its ports */
    bool seen = false;
    for (size_t j = 0; j < i && !seen; j++)
      seen = strcmp(d->items[j].host, x->host) == 0 &&
             fix_of(d->items[j].reason, &hint) == AWF_FIX_DOMAIN;
    if (!seen && p && strcmp(p, parent) == 0)
      n++;
  }
  return n;
}

static bool is_ipv6(const char *s) { return strchr(s, ':') != NULL; }

static void fill_paste(const awf_denials *d, struct words *domains, struct words *ports,
                       struct words *cidrs, struct words *sockets, struct words *ssh) {
  char item[HOST_MAX + DETAIL_MAX + 16];
  for (size_t i = 0; i < d->n; i++) {
    const struct denial *x = &d->items[i];
    const char *hint;
    switch (fix_of(x->reason, &hint)) {
    case AWF_FIX_DOMAIN: {
      if (awf_denials_looks_like_data(x->host))
        break;
      const char *p = parent_of(x->host);
      words_add(domains, p && children_of(d, p) >= COLLAPSE_MIN ? p : x->host);
      break;
    }
    case AWF_FIX_SCHEME:
      snprintf(item, sizeof(item), "%s://%s", x->detail[0] ? x->detail : "https", x->host);
      words_add(domains, item);
      break;
    case AWF_FIX_IP_RULE: words_add(domains, x->host); break;
    case AWF_FIX_PORT:
      if (x->port > 0) {
        snprintf(item, sizeof(item), "%d", x->port);
        words_add(ports, item);
      }
      break;
    case AWF_FIX_SSH:
      if (!awf_denials_looks_like_data(x->host))
        words_add(ssh, x->host);
      break;
    case AWF_FIX_UNIX:
      if (x->host[0] == '/' && !strchr(x->host, ','))
        words_add(sockets, x->host);
      break;
    case AWF_FIX_CIDR:
      if (x->detail[0]) {
        snprintf(item, sizeof(item), "%s/%d", x->detail, is_ipv6(x->detail) ? 128 : 32);
        words_add(cidrs, item);
      }
      break;
    default: break;
    }
  }
}

/* ---- printing ------------------------------------------------------------ */

static void print_line(const struct denial *x, FILE *out) {
  const char *hint;
  enum awf_reason_fix fix = fix_of(x->reason, &hint);
  if (x->port > 0)
    fprintf(out, "  %s:%d  %s", x->host, x->port, awf_reason_name(x->reason));
  else
    fprintf(out, "  %s  %s", x->host, awf_reason_name(x->reason));
  if (x->count > 1)
    fprintf(out, " (%u times)", x->count);
  if ((fix == AWF_FIX_DOMAIN || fix == AWF_FIX_SSH) && awf_denials_looks_like_data(x->host))
    fputs("  [looks like data encoded in the name: not suggested]", out);
  else if (fix == AWF_FIX_CIDR && x->detail[0])
    fprintf(out, "  (resolved to %s)", x->detail);
  else if (fix == AWF_FIX_SCHEME)
    fprintf(out, "  (allowed over the other scheme only: %s://%s admits this one)",
            x->detail[0] ? x->detail : "https", x->host);
  else if (fix == AWF_FIX_PROTOCOL)
    fprintf(out,
            "  (allowed, but awf judges a name only on --tls-ports or --http-ports: add "
            "--tls-ports %d for TLS or --http-ports %d for plain HTTP)",
            x->port, x->port);
  else if (fix == AWF_FIX_PORT && x->port > 0)
    fprintf(out,
            "  (with --allow-ports %d, also --tls-ports %d or --http-ports %d when "
            "clients connect without the proxy)",
            x->port, x->port, x->port);
  else if (hint)
    fprintf(out, "  (%s)", hint);
  fputc('\n', out);
}

enum section { SEC_DENIED, SEC_WOULD, SEC_FAILED };

static enum section section_of(const struct denial *x) {
  const char *hint;
  if (fix_of(x->reason, &hint) == AWF_FIX_FAILURE)
    return SEC_FAILED;
  return x->would ? SEC_WOULD : SEC_DENIED;
}

static size_t count_section(const awf_denials *d, enum section sec) {
  size_t n = 0;
  for (size_t i = 0; i < d->n; i++)
    n += section_of(&d->items[i]) == sec;
  return n;
}

static void print_section(const awf_denials *d, enum section sec, FILE *out) {
  size_t n = count_section(d, sec);
  if (n == 0)
    return;
  const char *s = n == 1 ? "" : "s";
  if (sec == SEC_DENIED)
    fprintf(out, "awf: %zu destination%s denied:\n", n, n == 1 ? " was" : "s were");
  else if (sec == SEC_WOULD)
    fprintf(out, "awf: --audit: %zu destination%s would have been denied:\n", n, s);
  else
    fprintf(out, "awf: %zu destination%s could not be reached (not a policy denial):\n", n, s);
  for (size_t i = 0; i < d->n; i++)
    if (section_of(&d->items[i]) == sec)
      print_line(&d->items[i], out);
}

void awf_denials_print(const awf_denials *d, FILE *out) {
  print_section(d, SEC_DENIED, out);
  print_section(d, SEC_WOULD, out);
  if (d->dropped)
    fprintf(out, "  ... and %lu more\n", d->dropped);
  struct words *w = calloc(5, sizeof(*w)); /* domains, ports, cidrs, unix sockets, ssh */
  if (w) {
    fill_paste(d, &w[0], &w[1], &w[2], &w[3], &w[4]);
    if (w[0].n + w[1].n + w[2].n + w[3].n + w[4].n) {
      fputs("awf: to allow them:", out);
      if (w[0].n)
        fprintf(out, " --allow-domains %s", w[0].text);
      if (w[1].n)
        fprintf(out, " --allow-ports %s", w[1].text);
      if (w[2].n)
        fprintf(out, " --allow-destination-cidrs %s", w[2].text);
      if (w[4].n)
        fprintf(out, " --allow-ssh %s", w[4].text);
      for (const char *p = w[3].text; w[3].n && p;) { /* one flag per socket */
        const char *comma = strchr(p, ',');
        fprintf(out, " --allow-unix-socket %.*s", comma ? (int)(comma - p) : (int)strlen(p), p);
        p = comma ? comma + 1 : NULL;
      }
      fputc('\n', out);
    }
    free(w);
  }
  print_section(d, SEC_FAILED, out);
}
