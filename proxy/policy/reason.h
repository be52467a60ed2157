/* reason.h: why a request or connection was admitted or refused, as one enum
 * and one table: the name the access log writes (unchanged strings), the HTTP
 * status of an error response, the TLS alert a refused TLS client gets, the
 * explanation text of an error body, and what fixes it in the end-of-run
 * summary (denials.h). Nothing is derived from a reason's text. Pure. */
#ifndef AWF_REASON_H
#define AWF_REASON_H

#include <stdbool.h>

enum awf_decision {
  AWF_DECISION_NONE = 0, /* no decision: the record omits it */
  AWF_ALLOW,
  AWF_DENY,
};

/* "allow", "deny"; NULL for AWF_DECISION_NONE. */
const char *awf_decision_name(enum awf_decision d);

enum awf_reason {
  AWF_REASON_NONE = 0, /* no reason: the record omits it */
  /* admitted */
  AWF_REASON_ALLOWED,
  AWF_REASON_HOST_ACCESS, /* one of the host's services (host_access.h) */
  AWF_REASON_LOOPBACK,    /* DNS: a loopback name, answered locally */
  /* refused by policy */
  AWF_REASON_NOT_ALLOWED,
  AWF_REASON_BLOCKED,
  AWF_REASON_SCHEME_NOT_ALLOWED,
  AWF_REASON_IP_LITERAL,
  AWF_REASON_INVALID_NAME,
  AWF_REASON_PORT_NOT_ALLOWED,
  AWF_REASON_NO_PROTOCOL_FOR_PORT,
  AWF_REASON_HOST_PORT_NOT_ALLOWED,
  AWF_REASON_PRIVATE_DESTINATION,
  AWF_REASON_SNI_MISMATCH,
  AWF_REASON_NO_SNI,
  AWF_REASON_SSH_NOT_ALLOWED,
  AWF_REASON_UNKNOWN_DESTINATION,
  AWF_REASON_CLIENT_NOT_ALLOWED,
  AWF_REASON_CLIENT_LIMIT,
  AWF_REASON_NOT_REDIRECTED,
  AWF_REASON_UDP_NOT_ALLOWED,
  AWF_REASON_PROTOCOL_NOT_ALLOWED,
  AWF_REASON_UNIX_SOCKET_NOT_ALLOWED,
  AWF_REASON_URL_NOT_ALLOWED, /* a URL-ruled host: no --allow-urls rule matches the request */
  AWF_REASON_URL_BLOCKED,     /* a --block-urls rule matches the request */
  AWF_REASON_HOST_MISMATCH,   /* intercepted TLS: Host names another host than the tunnel's */
  AWF_REASON_RATE_LIMITED,    /* the host is over a --rate-limit or --bytes-limit (429) */
  AWF_REASON_DLP_MATCH,       /* --dlp: a token-shaped string or a secret's value (dlp.h) */
  AWF_REASON_SECRET_MISDIRECTED, /* --secret-strict: a placeholder sent to a host not its own */
  AWF_REASON_SECRET_PLAINTEXT,   /* plain HTTP to a secret's host (--secret-allow-plaintext) */
  AWF_REASON_METHOD_NOT_ALLOWED, /* TRACE or TRACK to an intercepted or secret host */
  /* malformed or unsupported input */
  AWF_REASON_BAD_REQUEST,
  AWF_REASON_NOT_A_PROXY_REQUEST,
  AWF_REASON_HEADER_TOO_LARGE,
  AWF_REASON_BAD_CLIENT_HELLO,
  AWF_REASON_UNSUPPORTED_CLASS,
  AWF_REASON_NOT_IMPLEMENTED,
  /* failures: the destination could not be reached */
  AWF_REASON_DNS_FAILURE,
  AWF_REASON_UPSTREAM_UNREACHABLE,
  AWF_REASON_UPSTREAM_TLS_VERIFY_FAILED, /* intercepted TLS: the origin's certificate */
  AWF_REASON_UPSTREAM_PROXY_FAILED,      /* --upstream-proxy: the parent refused or failed */
  AWF_REASON_CLIENT_TLS_FAILED,          /* intercepted TLS: the client's handshake with awf */
  AWF_REASON_TIMEOUT,
  AWF_REASON_OVERLOADED,
  AWF_REASON_SHUTTING_DOWN,
  AWF_REASON_COUNT /* not a reason: the number of values */
};

/* TLS alert descriptions (RFC 8446 6.2) sent before closing a refused TLS
 * client. */
enum awf_tls_alert {
  AWF_TLS_ALERT_NONE = 0,
  AWF_TLS_ALERT_ACCESS_DENIED = 49,
  AWF_TLS_ALERT_UNRECOGNIZED_NAME = 112,
};

/* What a denial means for the end-of-run summary (denials.h): its section,
 * and which flag would admit it. */
enum awf_reason_fix {
  AWF_FIX_NONE = 0, /* a decision no flag here widens (blocked, UDP, malformed...) */
  AWF_FIX_DOMAIN,   /* --allow-domains HOST */
  AWF_FIX_SCHEME,   /* --allow-domains SCHEME://HOST */
  AWF_FIX_IP_RULE,  /* --allow-domains ADDR */
  AWF_FIX_PORT,     /* --allow-ports N */
  AWF_FIX_PROTOCOL, /* --tls-ports N or --http-ports N */
  AWF_FIX_CIDR,     /* --allow-destination-cidrs ADDR/32 */
  AWF_FIX_SSH,      /* --allow-ssh HOST */
  AWF_FIX_UNIX,     /* --allow-unix-socket PATH */
  AWF_FIX_FAILURE,  /* not a policy denial: the destination could not be reached */
};

/* The access log's name ("not_allowed"...); NULL for AWF_REASON_NONE or a
 * value out of range. */
const char *awf_reason_name(enum awf_reason r);

/* The status of an HTTP error response for it (403, 502...); 0 for the
 * admitting reasons. A caller that knows better (a timeout before the head
 * is complete is a 408, not a 504) passes its own. */
int awf_reason_http_status(enum awf_reason r);

/* The alert a refused TLS client gets: unrecognized_name when it sent no
 * usable name, access_denied for every other refusal, none for the
 * admitting reasons. */
enum awf_tls_alert awf_reason_tls_alert(enum awf_reason r);

/* One sentence for an HTTP error body: what went wrong and what admits it. */
const char *awf_reason_explain(enum awf_reason r);

/* The summary's fix for a denial, and a note shown after its line (or NULL). */
enum awf_reason_fix awf_reason_fix(enum awf_reason r);
const char *awf_reason_fix_note(enum awf_reason r);

/* "Bad Request", "Forbidden"...: the reason phrase of an HTTP status awf
 * sends; "Error" for another. */
const char *awf_http_status_text(int status);

#endif
