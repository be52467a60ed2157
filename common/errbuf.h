/* errbuf.h: error messages for a caller-owned buffer.
 * The sandbox modules never print; they describe a failure in a buffer the
 * caller passes (err, errsz) and return a negative errno. */
#ifndef AWF_ERRBUF_H
#define AWF_ERRBUF_H

#include <stddef.h>

#define AWF_ERRBUF_SIZE 512 /* a comfortable size for callers' buffers */

/* Format a message into err (always NUL-terminated, silently truncated; err
 * may be NULL or errsz 0) and return `code`, so callers can write
 * `return awf_errbuf_fail(err, errsz, -EINVAL, "...", ...)`. */
int awf_errbuf_fail(char *err, size_t errsz, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Render untrusted bytes for a message: printable ASCII is kept, `"` and `\`
 * and every other byte become \" \\ \xNN, and the result is cut (with "...")
 * to fit outsz. Input comes from files and environments that may hold
 * terminal escapes; they must not reach the user's terminal raw.
 * Returns out (always NUL-terminated; outsz must be at least 1). */
const char *awf_errbuf_quote(const char *s, size_t len, char *out, size_t outsz);

#endif
