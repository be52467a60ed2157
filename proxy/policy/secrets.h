/* secrets.h: credentials the proxy injects (--secret). The sandbox holds a
 * placeholder of the same length as the real value; the proxy writes the
 * real value in its place only in requests whose dialled host (the name the
 * proxy validated and resolved) is one of the secret's hosts, and writes the
 * placeholder back where a response echoes the real value.
 *
 * Pure: no I/O. The randomness of the placeholders comes from the caller
 * (getrandom(2) in the programs, a fixed stream in tests); the values from
 * the caller too (awf's environment, a file read with the caller's rights).
 *
 * Rewrites never change a length, so Content-Length and chunk sizes stay
 * valid and the head or body is edited in place. */
#ifndef AWF_SECRETS_H
#define AWF_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AWF_SECRETS_MAX 64           /* secrets per run (a bit each in a mask) */
#define AWF_SECRET_HOSTS_MAX 16      /* host rules per secret */
#define AWF_SECRET_MIN_LEN 12        /* shorter values cannot carry a safe placeholder */
#define AWF_SECRET_MAX_LEN 4096      /* longer values are refused */
#define AWF_SECRET_NAME_MAX 128      /* an environment variable's name */
#define AWF_SECRET_MARKER "AWFPH"    /* every placeholder starts with it */
#define AWF_SECRET_SCRUB_LIMIT 65536 /* response body bytes searched for real values */

typedef struct awf_secrets awf_secrets;

/* Fill buf with len random bytes; 0, or a negative errno. */
typedef int (*awf_random_fn)(void *buf, size_t len, void *arg);

awf_secrets *awf_secrets_new(void);
/* Zeroes every value before freeing it. NULL is fine. */
void awf_secrets_free(awf_secrets *s);

/* "NAME=HOST[,HOST...]" (--secret): NAME a variable name ([A-Za-z_][A-Za-z0-9_]*),
 * each HOST a DNS name ("api.openai.com") or "*." and one ("*.example.com":
 * its subdomains, not itself), compared without case. Naming a secret a
 * second time adds hosts. Returns 0 or -EINVAL/-E2BIG/-ENOMEM, message in err. */
int awf_secrets_add(awf_secrets *s, const char *spec, char *err, size_t errlen);

/* "NAME=PATH" (--secret-file): split, NAME checked; *path points into spec.
 * Returns 0 or -EINVAL with the message in err. */
int awf_secrets_split_file_spec(const char *spec, char *name, size_t namecap, const char **path,
                                char *err, size_t errlen);

/* The index of NAME, or -1. */
int awf_secrets_find(const awf_secrets *s, const char *name);

/* --secret-in-body NAME: also replace the placeholder in request bodies sent
 * to its hosts. -EINVAL when NAME is not a secret. */
int awf_secrets_set_in_body(awf_secrets *s, const char *name, char *err, size_t errlen);

/* The header base-URL mode writes the value into (default "Authorization",
 * as "Bearer VALUE"); stored only. -EINVAL when NAME is not a secret. */
int awf_secrets_set_header(awf_secrets *s, const char *name, const char *header, char *err,
                           size_t errlen);

/* The real value of secret i: printable ASCII without blanks (0x21..0x7e),
 * AWF_SECRET_MIN_LEN..AWF_SECRET_MAX_LEN bytes. A file's trailing newline
 * is the caller's to drop. Returns 0 or -EINVAL naming the secret, never
 * quoting the value. */
int awf_secrets_set_value(awf_secrets *s, size_t i, const char *value, size_t len, char *err,
                          size_t errlen);

/* Once every value is set: make the placeholders (AWF_SECRET_MARKER, then
 * random characters from the value's own alphabet: lower or upper hex,
 * letters and digits, those with '-' and '_', base64, or any printable),
 * each distinct, none inside another or inside a real value. Returns 0, or
 * -EINVAL (a secret without a value) / the random source's error. */
int awf_secrets_seal(awf_secrets *s, awf_random_fn rnd, void *arg, char *err, size_t errlen);

size_t awf_secrets_count(const awf_secrets *s); /* 0 for NULL */
const char *awf_secrets_name(const awf_secrets *s, size_t i);
const char *awf_secrets_value(const awf_secrets *s, size_t i, size_t *len);
const char *awf_secrets_placeholder(const awf_secrets *s, size_t i, size_t *len);
const char *awf_secrets_header(const awf_secrets *s, size_t i); /* "Authorization" by default */
bool awf_secrets_in_body(const awf_secrets *s, size_t i);
/* The host rules of secret i, as given (lower case). */
size_t awf_secrets_hosts(const awf_secrets *s, size_t i, const char **hosts, size_t max);

/* Is host (lower case, no trailing dot) one of secret i's hosts? */
bool awf_secrets_bound(const awf_secrets *s, size_t i, const char *host, size_t len);
/* Is it a host of any secret? (Interception, the plain-HTTP refusal.) */
bool awf_secrets_any_host(const awf_secrets *s, const char *host, size_t len);
/* A mask of the secrets bound to host. */
uint64_t awf_secrets_mask_for(const awf_secrets *s, const char *host, size_t len);

/* What a rewrite did, as masks of secret indexes. */
struct awf_secret_use {
  uint64_t injected;    /* a placeholder replaced by its value */
  uint64_t misdirected; /* a placeholder seen where its secret is not bound: left */
};

/* A request head as the proxy sends it upstream ("METHOD target HTTP/1.1",
 * header lines, the blank line), edited in place for a request dialled to
 * host: placeholders in the query string and in header values become the
 * real values of the secrets bound to host; elsewhere they stay and are
 * reported misdirected. The request line's path, header names and Host are
 * never edited. Adds to *use. */
void awf_secrets_rewrite_head(const awf_secrets *s, const char *host, size_t host_len,
                              char *head, size_t len, struct awf_secret_use *use);

/* Real values of every secret in buf become their placeholders, in place.
 * Returns the mask of those found. */
uint64_t awf_secrets_scrub(const awf_secrets *s, char *buf, size_t len);

/* A body rewritten as it streams: placeholders to values (a request body to a
 * secret's host, --secret-in-body) or values to placeholders (a response),
 * for the secrets in mask. A match split across pieces is found: the bytes
 * that may begin one are held back (at most AWF_SECRET_MAX_LEN - 1) until
 * the next piece or the end. A match that begins in the first limit bytes is
 * found; from limit + AWF_SECRET_MAX_LEN on, bytes pass unsearched. */
struct awf_secret_stream {
  const awf_secrets *s;
  bool to_value; /* placeholders -> values; else values -> placeholders */
  uint64_t mask;
  uint64_t limit, seen;
  uint64_t hits; /* secrets replaced so far */
  size_t hold_len;
  char hold[AWF_SECRET_MAX_LEN];
};

void awf_secret_stream_init(struct awf_secret_stream *st, const awf_secrets *s, bool to_value,
                            uint64_t mask, uint64_t limit);
/* Bytes that may be pending: an out of len + AWF_SECRET_MAX_LEN always fits. */
#define AWF_SECRET_STREAM_OUT(len) ((len) + AWF_SECRET_MAX_LEN)
/* Feed in[0..len); writes what may go on into out (at least
 * AWF_SECRET_STREAM_OUT(len) bytes) and returns its length. */
size_t awf_secret_stream_feed(struct awf_secret_stream *st, const char *in, size_t len,
                              char *out);
/* The end of the body: the bytes held back, into out (AWF_SECRET_MAX_LEN). */
size_t awf_secret_stream_finish(struct awf_secret_stream *st, char *out);

#endif
