/* url_rules.h: URL rules (--allow-urls, --block-urls) and the request-target
 * normaliser they are matched against. Pure: no I/O, no libuv.
 *
 * A rule is "[METHODS ]SCHEME://HOST[/PATH]":
 * - METHODS: optional, upper-case method names separated by commas
 *   ("GET,HEAD"), then white space; without it every method matches.
 * - SCHEME: http or https (case-insensitive).
 * - HOST: a host name (case-insensitive) in which '*' matches any run of
 *   characters within one label ("*.example.com", "api-*.example.com"); the
 *   number of labels must match, so "*.example.com" does not match
 *   example.com. No port: the rule applies on every allowed port.
 * - PATH: starts with '/'; '*' matches any run of characters, '/' included.
 *   No path means "/" followed by a "*". Percent-escapes of unreserved characters are decoded,
 *   the others kept with upper-case hex; "." and ".." segments and "//" are
 *   refused (write the path they stand for).
 * - Query: a rule without '?' is matched against the path alone, whatever
 *   the query; a rule with '?' is matched against "PATH?QUERY", the query as
 *   the client sent it.
 *
 * Matching: the request's path is judged in each of its readings
 * (awf_url_reading). A block rule that matches any reading wins. A host that some allow rule's
 * scheme and host match is a URL-ruled host: every reading of its requests must
 * match an allow rule. Hosts without allow rules are not judged by the allow rules. */
#ifndef AWF_URL_RULES_H
#define AWF_URL_RULES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct awf_url_rules awf_url_rules;

enum awf_url_list { AWF_URL_ALLOW, AWF_URL_BLOCK };
enum awf_url_scheme { AWF_URL_HTTP, AWF_URL_HTTPS };

enum awf_url_verdict {
  AWF_URL_NO_RULE = 0, /* no allow rule for this host and no block rule matched */
  AWF_URL_ALLOWED,     /* an allow rule matched */
  AWF_URL_NOT_ALLOWED, /* a URL-ruled host, no allow rule matched */
  AWF_URL_BLOCKED,     /* a block rule matched */
  AWF_URL_BAD_TARGET,  /* the target cannot be normalised unambiguously */
};

awf_url_rules *awf_url_rules_new(void);
void awf_url_rules_free(awf_url_rules *r);

/* One rule, "[METHODS ]SCHEME://HOST[/PATH]" (len bytes, surrounding white
 * space ignored). Returns 0, or -EINVAL with "'ENTRY': REASON" in err, or
 * -ENOMEM. */
int awf_url_rules_add(awf_url_rules *r, enum awf_url_list which, const char *entry, size_t len,
                      char *err, size_t errlen);

/* A flag's list: entries separated by commas or white space; a method list
 * is the word before a URL (GET,HEAD http://a/x, http://b/y). A path with a
 * comma needs a rules file. Returns as awf_url_rules_add; an empty list is
 * -EINVAL. */
int awf_url_rules_add_list(awf_url_rules *r, enum awf_url_list which, const char *list,
                           char *err, size_t errlen);

/* A rules file's text: one entry per line, '#' starts a comment. err names
 * the file (origin) and line. */
int awf_url_rules_add_text(awf_url_rules *r, enum awf_url_list which, const char *text,
                           size_t len, const char *origin, char *err, size_t errlen);

size_t awf_url_rules_count(const awf_url_rules *r, enum awf_url_list which);
/* Is there a rule (either list) with this scheme? */
bool awf_url_rules_has_scheme(const awf_url_rules *r, enum awf_url_scheme s);
/* The first rule with this scheme, as given (for a message); NULL if none. */
const char *awf_url_rules_first(const awf_url_rules *r, enum awf_url_scheme s);

/* Does a rule of this scheme (either list) name this host (lower case)?
 * For https, these are the hosts TLS interception must open. */
bool awf_url_rules_covers_host(const awf_url_rules *r, enum awf_url_scheme s, const char *host,
                               size_t host_len);

/* The host patterns of the rules with this scheme, in order, duplicates
 * included: up to max into out (borrowed: they live as long as r). Returns
 * how many there are. */
size_t awf_url_rules_hosts(const awf_url_rules *r, enum awf_url_scheme s, const char **out,
                           size_t max);

/* Judge a request: host lower-case and valid, method its name ("GET"),
 * target the origin-form request target ("/path?query", or "" for "/").
 * The path is judged in every reading (awf_url_reading), each with the
 * query: a block rule that matches any reading blocks; on a URL-ruled host
 * every reading must match an allow rule (not necessarily the same one). A
 * target one reading refuses is AWF_URL_BAD_TARGET. */
enum awf_url_verdict awf_url_rules_check(const awf_url_rules *r, enum awf_url_scheme s,
                                         const char *host, size_t host_len, const char *method,
                                         const char *target, size_t target_len);

/* Normalise the path part of an origin-form target (up to the first '?',
 * which the caller has split off): percent-escapes of unreserved characters
 * (ALPHA DIGIT - . _ ~) decoded, other escapes kept with upper-case hex,
 * dot segments removed (RFC 3986 5.2.4, never above the root), runs of '/'
 * merged; an empty path becomes "/". out holds at least len + 2 bytes and is
 * NUL-terminated. Returns the length, or -EINVAL for a bad escape, a byte
 * outside visible ASCII, a '#', or a path that has both a ".." segment and
 * an empty one ("/a//../b": servers that merge slashes first resolve it to
 * "/b", RFC 3986 to "/a/b"). */
int awf_url_normalize_path(const char *in, size_t len, char *out, size_t outsz);

/* The readings of a path: servers disagree on what some bytes mean, and the
 * request is forwarded as the client sent it, so a request is judged by each
 * of these (see awf_url_rules_check). */
enum awf_url_reading {
  AWF_URL_READ_RFC,          /* awf_url_normalize_path: %2F is not a separator */
  AWF_URL_READ_SLASH,        /* %2F, %5C and '\' are '/' (decoded before dot segments) */
  AWF_URL_READ_PARAMS,       /* each segment's ";params" dropped (Tomcat, Jetty) */
  AWF_URL_READ_SLASH_PARAMS, /* slashes, then params */
  AWF_URL_READ_PARAMS_SLASH, /* params (up to a literal '/'), then slashes */
  AWF_URL_READINGS
};

/* awf_url_normalize_path, for reading k: the same escapes decoded, then the
 * reading's changes, then the same dot-segment removal, merging and
 * refusals. Every reading is at most the RFC one's length. */
int awf_url_normalize_path_as(const char *in, size_t len, enum awf_url_reading k, char *out,
                              size_t outsz);

#endif
