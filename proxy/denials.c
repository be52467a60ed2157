/* denials.c: a small bounded set of what was denied. */
#include "denials.h"

#include <stdlib.h>
#include <string.h>

#include "dns_msg.h"

struct denial {
  char host[256];
  int port;
  const char *reason; /* a static reason name */
  unsigned count;
};

struct awf_denials {
  struct denial items[AWF_DENIALS_MAX];
  size_t n;
  unsigned long dropped;
};

awf_denials *awf_denials_new(void) { return calloc(1, sizeof(struct awf_denials)); }

void awf_denials_free(awf_denials *d) { free(d); }

size_t awf_denials_count(const awf_denials *d) { return d->n; }

void awf_denials_add(awf_denials *d, const char *host, size_t host_len, int port,
                     const char *reason) {
  char text[4 * sizeof(((struct denial *)0)->host)]; /* each byte as \DDD at most */
  if (!host || host_len == 0 || host_len >= sizeof(((struct denial *)0)->host))
    return;
  /* A host's dots separate its labels: only the other bytes need escaping. */
  size_t n = awf_dns_escape((const uint8_t *)host, host_len, false, text, sizeof(text));
  awf_denials_add_text(d, text, n, port, reason);
}

void awf_denials_add_text(awf_denials *d, const char *text, size_t len, int port,
                          const char *reason) {
  char name[sizeof(((struct denial *)0)->host)];
  if (!text || len == 0 || len >= sizeof(name))
    return;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)text[i] <= 0x20 || (unsigned char)text[i] >= 0x7f)
      return; /* not escaped: never echoed to a terminal */
  size_t host_len = len;
  memcpy(name, text, host_len);
  name[host_len] = '\0';
  for (size_t i = 0; i < d->n; i++) {
    struct denial *x = &d->items[i];
    if (x->port == port && strcmp(x->host, name) == 0 && strcmp(x->reason, reason) == 0) {
      x->count++;
      return;
    }
  }
  if (d->n == AWF_DENIALS_MAX) {
    d->dropped++;
    return;
  }
  struct denial *x = &d->items[d->n++];
  memcpy(x->host, name, host_len + 1);
  x->port = port;
  x->reason = reason;
  x->count = 1;
}

/* Only names the ACL refused can be fixed with --allow-domains. */
static int suggestible(const struct denial *x) {
  return strcmp(x->reason, "not_allowed") == 0;
}

void awf_denials_print(const awf_denials *d, FILE *out) {
  if (d->n == 0)
    return;
  fprintf(out, "awf: %zu destination%s denied:\n", d->n, d->n == 1 ? " was" : "s were");
  for (size_t i = 0; i < d->n; i++) {
    const struct denial *x = &d->items[i];
    if (x->port > 0)
      fprintf(out, "  %s:%d  %s", x->host, x->port, x->reason);
    else
      fprintf(out, "  %s  %s", x->host, x->reason);
    fprintf(out, x->count > 1 ? " (%u times)\n" : "\n", x->count);
  }
  if (d->dropped)
    fprintf(out, "  ... and %lu more\n", d->dropped);
  int any = 0;
  for (size_t i = 0; i < d->n; i++) {
    const struct denial *x = &d->items[i];
    if (!suggestible(x))
      continue;
    int seen = 0; /* one mention per host, whatever its ports */
    for (size_t j = 0; j < i && !seen; j++)
      seen = suggestible(&d->items[j]) && strcmp(d->items[j].host, x->host) == 0;
    if (seen)
      continue;
    fputs(any ? "," : "awf: to allow them: --allow-domains ", out);
    fputs(x->host, out);
    any = 1;
  }
  if (any)
    fputc('\n', out);
}
