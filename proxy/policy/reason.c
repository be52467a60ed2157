/* reason.c: the one table of reasons (reason.h). */
#include "reason.h"

#include <stddef.h>

#define MALFORMED "the request is malformed"

static const struct row {
  const char *name;
  int http_status;
  enum awf_tls_alert alert;
  const char *explain;
  enum awf_reason_fix fix;
  const char *fix_note;
} rows[] = {
#define DENIED AWF_TLS_ALERT_ACCESS_DENIED
    [AWF_REASON_NONE] = {NULL, 0, AWF_TLS_ALERT_NONE, NULL, AWF_FIX_NONE, NULL},
    [AWF_REASON_ALLOWED] = {"allowed", 0, AWF_TLS_ALERT_NONE, NULL, AWF_FIX_NONE, NULL},
    [AWF_REASON_HOST_ACCESS] = {"host_access", 0, AWF_TLS_ALERT_NONE, NULL, AWF_FIX_NONE, NULL},
    [AWF_REASON_LOOPBACK] = {"loopback", 0, AWF_TLS_ALERT_NONE, NULL, AWF_FIX_NONE, NULL},
    [AWF_REASON_NOT_ALLOWED] =
        {"not_allowed", 403, DENIED,
         "the domain is not in the allowlist (add it with --allow-domains)", AWF_FIX_DOMAIN,
         NULL},
    [AWF_REASON_BLOCKED] = {"blocked", 403, DENIED,
                            "the domain matches a block rule (--block-domains)", AWF_FIX_NONE,
                            "a --block-domains rule matches it"},
    [AWF_REASON_SCHEME_NOT_ALLOWED] = {"scheme_not_allowed", 403, DENIED,
                                       "the domain is allowed over the other scheme only (an "
                                       "http:// or https:// rule)",
                                       AWF_FIX_SCHEME, NULL},
    [AWF_REASON_IP_LITERAL] = {"ip_literal", 403, DENIED,
                               "IP addresses are denied unless listed in --allow-domains",
                               AWF_FIX_IP_RULE, NULL},
    [AWF_REASON_INVALID_NAME] = {"invalid_name", 403, DENIED, "the host name is not valid",
                                 AWF_FIX_NONE, NULL},
    [AWF_REASON_PORT_NOT_ALLOWED] = {"port_not_allowed", 403, DENIED,
                                     "the port is not allowed (--allow-ports)", AWF_FIX_PORT,
                                     NULL},
    [AWF_REASON_NO_PROTOCOL_FOR_PORT] =
        {"no_protocol_for_port", 403, DENIED,
         "the port is allowed but is in neither --tls-ports nor "
         "--http-ports",
         AWF_FIX_PROTOCOL, NULL},
    [AWF_REASON_HOST_PORT_NOT_ALLOWED] = {"host_port_not_allowed", 403, DENIED, MALFORMED,
                                          AWF_FIX_NONE,
                                          "a port of the host that --allow-host-ports does not "
                                          "list"},
    [AWF_REASON_PRIVATE_DESTINATION] = {"private_destination", 403, DENIED,
                                        "the name resolves to a private or local address "
                                        "(--allow-destination-cidrs)",
                                        AWF_FIX_CIDR, NULL},
    [AWF_REASON_SNI_MISMATCH] = {"sni_mismatch", 403, DENIED, MALFORMED, AWF_FIX_NONE,
                                 "the TLS server name is not the host asked for"},
    [AWF_REASON_NO_SNI] = {"no_sni", 403, AWF_TLS_ALERT_UNRECOGNIZED_NAME, MALFORMED,
                           AWF_FIX_NONE, "TLS without a server name cannot be judged"},
    [AWF_REASON_SSH_NOT_ALLOWED] = {"ssh_not_allowed", 403, DENIED, MALFORMED, AWF_FIX_SSH,
                                    NULL},
    [AWF_REASON_UNKNOWN_DESTINATION] = {"unknown_destination", 403, DENIED, MALFORMED,
                                        AWF_FIX_NONE,
                                        "SSH to an address that no name awf answered leads to: "
                                        "connect by a name in --allow-ssh"},
    [AWF_REASON_CLIENT_NOT_ALLOWED] = {"client_not_allowed", 403, DENIED, MALFORMED,
                                       AWF_FIX_NONE, NULL},
    [AWF_REASON_CLIENT_LIMIT] = {"client_limit", 503, DENIED, MALFORMED, AWF_FIX_NONE, NULL},
    [AWF_REASON_NOT_REDIRECTED] = {"not_redirected", 403, DENIED, MALFORMED, AWF_FIX_NONE,
                                   NULL},
    [AWF_REASON_UDP_NOT_ALLOWED] = {"udp_not_allowed", 403, DENIED, MALFORMED, AWF_FIX_NONE,
                                    "UDP never leaves the sandbox (QUIC falls back to TCP)"},
    [AWF_REASON_PROTOCOL_NOT_ALLOWED] = {"protocol_not_allowed", 403, DENIED, MALFORMED,
                                         AWF_FIX_NONE, "only TCP leaves the sandbox"},
    [AWF_REASON_UNIX_SOCKET_NOT_ALLOWED] = {"unix_socket_not_allowed", 403, DENIED, MALFORMED,
                                            AWF_FIX_UNIX, NULL},
    [AWF_REASON_URL_NOT_ALLOWED] = {"url_not_allowed", 403, DENIED,
                                    "the host has URL rules and none admits this method and "
                                    "path (--allow-urls)",
                                    AWF_FIX_NONE,
                                    "the host has --allow-urls rules and none matches the "
                                    "method and path: add a URL rule for it"},
    [AWF_REASON_URL_BLOCKED] = {"url_blocked", 403, DENIED,
                                "the URL matches a block rule (--block-urls)", AWF_FIX_NONE,
                                "a --block-urls rule matches it"},
    [AWF_REASON_HOST_MISMATCH] = {"host_mismatch", 421, DENIED,
                                  "the request's Host names another host than the one its "
                                  "intercepted TLS connection was admitted for",
                                  AWF_FIX_NONE, NULL},
    [AWF_REASON_RATE_LIMITED] = {"rate_limited", 429, DENIED,
                                 "the host is over its request or byte rate limit "
                                 "(--rate-limit, --bytes-limit): retry after the seconds in "
                                 "Retry-After",
                                 AWF_FIX_NONE,
                                 "over a --rate-limit or --bytes-limit: raise the limit, or "
                                 "slow the client down"},
    [AWF_REASON_DLP_MATCH] =
        {"dlp_match", 403, DENIED,
         "the request carries a credential: a token-shaped string or a "
         "secret's value in its URL, a header, its body or the name (--dlp)",
         AWF_FIX_NONE,
         "a token or a secret's value was on its way out (--dlp); the log's "
         "`dlp` field names its kind"},
    [AWF_REASON_SECRET_MISDIRECTED] = {"secret_misdirected", 403, DENIED,
                                       "the request carries a secret's placeholder to a host "
                                       "the secret is not bound to (--secret-strict)",
                                       AWF_FIX_NONE,
                                       "a --secret placeholder sent to another host than the "
                                       "secret's own"},
    [AWF_REASON_SECRET_PLAINTEXT] = {"secret_plaintext", 403, DENIED,
                                     "plain HTTP to a host a secret is bound to: use https, "
                                     "or --secret-allow-plaintext",
                                     AWF_FIX_NONE,
                                     "plain HTTP to a --secret host: use https:// (or "
                                     "--secret-allow-plaintext)"},
    [AWF_REASON_METHOD_NOT_ALLOWED] =
        {"method_not_allowed", 405, DENIED,
         "TRACE and TRACK are refused on intercepted hosts (their "
         "answers echo the request's headers)",
         AWF_FIX_NONE, NULL},
    [AWF_REASON_BAD_REQUEST] = {"bad_request", 400, DENIED, MALFORMED, AWF_FIX_NONE, NULL},
    [AWF_REASON_NOT_A_PROXY_REQUEST] =
        {"not_a_proxy_request", 400, DENIED,
         "awf-proxy is a forward proxy, not a web server: send it "
         "absolute-form requests (GET http://host/path) by "
         "pointing the client at it, e.g. "
         "HTTP_PROXY=http://PROXY_ADDR:PORT, or curl -x "
         "http://PROXY_ADDR:PORT http://host/path",
         AWF_FIX_NONE,
         "a request for a path (GET /x) sent to the proxy port: it "
         "takes GET http://host/x"},
    [AWF_REASON_HEADER_TOO_LARGE] = {"header_too_large", 431, DENIED,
                                     "the request header block is larger than 64 KiB",
                                     AWF_FIX_NONE, NULL},
    [AWF_REASON_BAD_CLIENT_HELLO] = {"bad_client_hello", 400, DENIED, MALFORMED, AWF_FIX_NONE,
                                     NULL},
    [AWF_REASON_UNSUPPORTED_CLASS] = {"unsupported_class", 400, DENIED, MALFORMED, AWF_FIX_NONE,
                                      NULL},
    [AWF_REASON_NOT_IMPLEMENTED] = {"not_implemented", 501, DENIED, MALFORMED, AWF_FIX_NONE,
                                    NULL},
    [AWF_REASON_DNS_FAILURE] = {"dns_failure", 502, DENIED, "the name could not be resolved",
                                AWF_FIX_FAILURE, NULL},
    [AWF_REASON_UPSTREAM_UNREACHABLE] = {"upstream_unreachable", 502, DENIED,
                                         "the upstream server could not be reached",
                                         AWF_FIX_FAILURE, NULL},
    [AWF_REASON_UPSTREAM_PROXY_FAILED] = {"upstream_proxy_failed", 502, DENIED,
                                          "the upstream proxy (--upstream-proxy) could not be "
                                          "reached or refused the tunnel",
                                          AWF_FIX_FAILURE, NULL},
    [AWF_REASON_UPSTREAM_TLS_VERIFY_FAILED] =
        {"upstream_tls_verify_failed", 502, DENIED,
         "the upstream server's certificate did not verify against the trust store or "
         "the host name",
         AWF_FIX_FAILURE, NULL},
    [AWF_REASON_CLIENT_TLS_FAILED] = {"client_tls_failed", 502, DENIED,
                                      "the client's TLS handshake with awf failed (does it "
                                      "trust the run's CA?)",
                                      AWF_FIX_FAILURE, NULL},
    [AWF_REASON_TIMEOUT] = {"timeout", 504, DENIED, "timed out", AWF_FIX_FAILURE, NULL},
    [AWF_REASON_OVERLOADED] = {"overloaded", 503, DENIED, MALFORMED, AWF_FIX_FAILURE, NULL},
    [AWF_REASON_SHUTTING_DOWN] = {"shutting_down", 503, DENIED, MALFORMED, AWF_FIX_FAILURE,
                                  NULL},
#undef DENIED
};

_Static_assert(sizeof(rows) / sizeof(rows[0]) == AWF_REASON_COUNT,
               "every reason has a row in the table");

static const struct row *row_of(enum awf_reason r) {
  return (unsigned)r < AWF_REASON_COUNT ? &rows[r] : &rows[AWF_REASON_NONE];
}

const char *awf_reason_name(enum awf_reason r) { return row_of(r)->name; }
int awf_reason_http_status(enum awf_reason r) { return row_of(r)->http_status; }
enum awf_tls_alert awf_reason_tls_alert(enum awf_reason r) { return row_of(r)->alert; }
const char *awf_reason_explain(enum awf_reason r) {
  return row_of(r)->explain ? row_of(r)->explain : MALFORMED;
}
enum awf_reason_fix awf_reason_fix(enum awf_reason r) { return row_of(r)->fix; }
const char *awf_reason_fix_note(enum awf_reason r) { return row_of(r)->fix_note; }

const char *awf_decision_name(enum awf_decision d) {
  switch (d) {
  case AWF_ALLOW: return "allow";
  case AWF_DENY: return "deny";
  case AWF_DECISION_NONE: break;
  }
  return NULL;
}

const char *awf_http_status_text(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 403: return "Forbidden";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 421: return "Misdirected Request";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  }
  return "Error";
}
