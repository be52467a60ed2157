/* denials.h: the distinct hosts a run was denied, for the end-of-run summary:
 * each denied host:port with its reason and what would fix it, one
 * ready-to-paste line of flags (--allow-domains, --allow-ports,
 * --allow-destination-cidrs, --allow-ssh), and apart from them the destinations that
 * could not be reached (a DNS failure, an unreachable upstream, a timeout:
 * not policy). Names that look like data encoded in a label are listed,
 * flagged, and never suggested; four names or more under one parent are
 * suggested as the parent. Bounded; caller-owned. */
#ifndef AWF_DENIALS_H
#define AWF_DENIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "reason.h"

#define AWF_DENIALS_MAX 256

typedef struct awf_denials awf_denials;

awf_denials *awf_denials_new(void);
void awf_denials_free(awf_denials *d);

/* Record one denial; repeats of (host, port, reason) are counted. The host's
 * bytes outside printable ASCII and backslashes are shown escaped (\DDD, \\,
 * as awf_dns_escape), so no name reaches a terminal raw or reads as another.
 * Beyond AWF_DENIALS_MAX distinct entries, only a counter of the rest is kept. */
void awf_denials_add(awf_denials *d, const char *host, size_t host_len, int port,
                     enum awf_reason reason);

/* The same for a name already in that escaped form (awf_dns_name_text). */
void awf_denials_add_text(awf_denials *d, const char *text, size_t len, int port,
                          enum awf_reason reason);

/* One denial with everything the summary can use. */
struct awf_denial_fact {
  const char *host; /* raw bytes (escaped here), or text when `escaped` */
  size_t host_len;
  bool escaped;           /* host is already in awf_dns_name_text's form */
  int port;               /* <= 0: none */
  enum awf_reason reason; /* its fix and note are the reason table's (reason.h) */
  /* What the fix needs: for private_destination the address the name
   * resolved to ("10.0.0.5"), for scheme_not_allowed the scheme that would
   * admit it ("http", "https"). NULL or unprintable: none. */
  const char *detail;
  bool would; /* --audit admitted it: it would have been denied */
};
void awf_denials_note(awf_denials *d, const struct awf_denial_fact *f);

/* A name with a label that looks like encoded data (32 bytes or more; or 16
 * or more of hex, or mixing digits into letters): never suggested. */
bool awf_denials_looks_like_data(const char *name);

size_t awf_denials_count(const awf_denials *d);

/* Print the summary (nothing when there were no denials). */
/* After the engines stopped (no lock: nothing notes any more). */
void awf_denials_print(const awf_denials *d, FILE *out);

#endif
