/* dlp.h: data-loss prevention, the scanner behind --dlp. A table of
 * token-shaped patterns in the code (GitHub, OpenAI, Anthropic, AWS access
 * key ids, Google API keys, Slack, private-key PEM headers, JWTs), each with
 * a kind name, plus literal values added at run time (the real values of
 * secrets awf withholds). Hand-written matchers with exact character classes
 * and boundaries, no regex library; every scan is linear in its input.
 *
 * A field is scanned in views: the bytes as sent; for text (URLs, header
 * values) also percent-decoded once ('+' as a space), so %67hp_... is found;
 * for names (hosts, SNI, DNS questions) also case-folded with the dots
 * removed, so a token split across labels, or lower-cased by DNS, is found.
 * A streaming scanner covers bounded bodies: matches across chunk
 * boundaries are found, its state is bounded by the longest match.
 *
 * Matches are reported by kind only: callers log the kind, never the text
 * (awf_dlp_redact masks it). Pure: no I/O, no libuv. */
#ifndef AWF_DLP_H
#define AWF_DLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest match a pattern decides on (a JWT's header and payload are
 * bounded by it; a longer JWT is not recognised). */
#define AWF_DLP_MATCH_MAX 4096
/* Literals: shorter values are refused (they would match everywhere); a
 * longer one is matched by its first AWF_DLP_LITERAL_MAX bytes. */
#define AWF_DLP_LITERAL_MIN 8
#define AWF_DLP_LITERAL_MAX 1024
/* A literal's kind name: 1..64 printable ASCII bytes. */
#define AWF_DLP_KIND_MAX 64
/* How much of a request body the proxy scans. */
#define AWF_DLP_BODY_MAX (1024 * 1024)

/* The kind reported when a field could not be scanned (no memory): the
 * request is refused rather than let through unscanned. */
#define AWF_DLP_KIND_UNSCANNED "unscanned"

typedef struct awf_dlp awf_dlp;

/* The built-in patterns. NULL on allocation failure. */
awf_dlp *awf_dlp_new(void);
void awf_dlp_free(awf_dlp *d);

/* Add a literal value (any bytes) reported as `kind`, e.g. the real value of
 * a secret. Returns 0, -EINVAL (kind not 1..64 printable bytes, value
 * shorter than AWF_DLP_LITERAL_MIN) or -ENOMEM. */
int awf_dlp_add_literal(awf_dlp *d, const char *kind, const char *value, size_t len);

/* The built-in kind names, by index; NULL past the last. */
const char *awf_dlp_builtin_kind(size_t i);

enum awf_dlp_view {
  AWF_DLP_RAW,  /* the bytes as they are (a body) */
  AWF_DLP_TEXT, /* and percent-decoded once: a URL, a header value */
  AWF_DLP_NAME, /* case-folded, and with the dots removed: a host, SNI, DNS name */
};

/* The kind of the first match in s[0..n), or NULL. A NULL d finds nothing. */
const char *awf_dlp_scan(const awf_dlp *d, enum awf_dlp_view view, const char *s, size_t n);

/* Overwrite the bytes of every match in s[0..n) with '*' (a match found
 * only in a decoded or dotless view masks the bytes it came from). Returns
 * the number of matches, or -ENOMEM (s is then masked whole). */
int awf_dlp_redact(const awf_dlp *d, enum awf_dlp_view view, char *s, size_t n);

/* A body, scanned as it streams: raw and percent-decoded, its first `limit`
 * bytes only. */
typedef struct awf_dlp_stream awf_dlp_stream;

/* NULL on allocation failure. d must outlive the stream. */
awf_dlp_stream *awf_dlp_stream_new(const awf_dlp *d, size_t limit);
void awf_dlp_stream_free(awf_dlp_stream *st);
/* Feed the next bytes. Returns the kind of the first match found so far
 * (once found, every later call returns it), or NULL. */
const char *awf_dlp_stream_feed(awf_dlp_stream *st, const char *data, size_t n);
/* The body ended: a match that only its end decides. Returns as feed. */
const char *awf_dlp_stream_finish(awf_dlp_stream *st);

#endif
