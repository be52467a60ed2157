/* acl.h: the domain ACL. Rules are compatible with the reference AWF:
 *   github.com        github.com and every subdomain
 *   *.github.com      subdomains at any depth, not github.com itself
 *   api-*.example.com '*' inside a label (one label, a run of one or more bytes)
 *   https://x, http://x   restrict the rule to TLS or plain HTTP
 *   1.2.3.4, ::1, [::1]   that address only
 * Block rules use the same syntax and always win over allow rules.
 * An ACL with no allow rules denies everything.
 * Matching costs O(labels of the name), whatever the number of rules.
 * Pure C, no I/O: callers read files and hand the text in. */
#ifndef AWF_ACL_H
#define AWF_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct awf_acl awf_acl;

enum awf_acl_list { AWF_ACL_ALLOW = 0, AWF_ACL_BLOCK = 1 };

/* How the client reaches the host: TLS (CONNECT, TLS on a TLS port) or plain HTTP. */
enum awf_acl_proto { AWF_PROTO_HTTP = 1, AWF_PROTO_TLS = 2 };

enum awf_acl_verdict {
  AWF_ACL_ALLOWED = 0,
  AWF_ACL_NOT_ALLOWED,  /* no allow rule matches (also: empty allowlist) */
  AWF_ACL_BLOCKED,      /* a block rule matches */
  AWF_ACL_IP_LITERAL,   /* an IP literal that no IP rule admits */
  AWF_ACL_INVALID_NAME, /* the name is not a valid host name */
};

/* Returns NULL on out of memory. */
awf_acl *awf_acl_new(void);
void awf_acl_free(awf_acl *acl);

/* Add the entries of a comma-separated list (entries trimmed, empty ones
 * dropped). On a bad entry returns -EINVAL, adds nothing from this call, and
 * writes a message naming the entry and why to err (NUL-terminated,
 * truncated to errlen). -ENOMEM on allocation failure. 0 on success. */
int awf_acl_add_list(awf_acl *acl, enum awf_acl_list which, const char *list, char *err,
                     size_t errlen);

/* Add the entries of a rules file's text: one entry per line or
 * comma-separated, '#' starts a comment to the end of the line. `origin` names
 * the file in error messages ("rules.txt:12: ..."). Same returns as above. */
int awf_acl_add_text(awf_acl *acl, enum awf_acl_list which, const char *text, size_t len,
                     const char *origin, char *err, size_t errlen);

/* Add one entry (the syntax of a list's entries; surrounding white space
 * ignored). exact: the name alone, not its subdomains (a ruleset's
 * `subdomains: false`); refused for a wildcard rule, a no-op for an address
 * (exact already). Returns 0; -EINVAL with the reason alone (no entry, no
 * prefix) in why, nothing added; or -ENOMEM. */
int awf_acl_add_entry(awf_acl *acl, enum awf_acl_list which, const char *entry, size_t len,
                      bool exact, char *why, size_t wl);

/* Number of rules in a list. */
size_t awf_acl_count(const awf_acl *acl, enum awf_acl_list which);

/* The rules of a list, normalised as they are matched ("github.com",
 * "*.npmjs.org", "https://api-*.x.com", "[::1]"), comma-separated, in no
 * particular order; for diagnostics. Truncated to fit len (NUL-terminated);
 * returns the length the whole list needs. */
size_t awf_acl_format(const awf_acl *acl, enum awf_acl_list which, char *buf, size_t len);

/* Decide on a requested host: a DNS name (any case, optional trailing dot) or
 * an IP literal (IPv6 without brackets). */
enum awf_acl_verdict awf_acl_check(const awf_acl *acl, const char *host, size_t len,
                                   enum awf_acl_proto proto);

/* Stable snake_case name for logs: "allowed", "not_allowed", "blocked",
 * "ip_literal", "invalid_name". */
const char *awf_acl_verdict_name(enum awf_acl_verdict v);

#endif
