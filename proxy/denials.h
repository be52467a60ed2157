/* denials.h: the distinct hosts a run was denied, for the end-of-run summary
 * ("each denied host:port with its reason, and a ready-to-paste
 * --allow-domains suggestion"). Bounded; caller-owned. */
#ifndef AWF_DENIALS_H
#define AWF_DENIALS_H

#include <stddef.h>
#include <stdio.h>

#define AWF_DENIALS_MAX 256

typedef struct awf_denials awf_denials;

awf_denials *awf_denials_new(void);
void awf_denials_free(awf_denials *d);

/* Record one denial; repeats of (host, port, reason) are counted. The host's
 * bytes outside printable ASCII and backslashes are shown escaped (\DDD, \\,
 * as awf_dns_escape), so no name reaches a terminal raw or reads as another.
 * Beyond AWF_DENIALS_MAX distinct entries, only a counter of the rest is kept. */
void awf_denials_add(awf_denials *d, const char *host, size_t host_len, int port,
                     const char *reason);

/* The same for a name already in that escaped form (awf_dns_name_text). */
void awf_denials_add_text(awf_denials *d, const char *text, size_t len, int port,
                          const char *reason);

size_t awf_denials_count(const awf_denials *d);

/* Print the summary (nothing when there were no denials). */
void awf_denials_print(const awf_denials *d, FILE *out);

#endif
