/* Unit tests for proxy/policy/: the reasons table (reason.h) and the one
 * judge (policy.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl_fixture.h"
#include "dns_memory.h"
#include "host_access.h"
#include "hostname.h"
#include "http_head.h"
#include "policy.h"
#include "textfile.h"

/* ---- the table ------------------------------------------------------------ */

/* Every reason and the name the access log has always written for it. */
static const struct {
  enum awf_reason r;
  const char *name;
} log_names[] = {
    {AWF_REASON_ALLOWED, "allowed"},
    {AWF_REASON_HOST_ACCESS, "host_access"},
    {AWF_REASON_LOOPBACK, "loopback"},
    {AWF_REASON_NOT_ALLOWED, "not_allowed"},
    {AWF_REASON_BLOCKED, "blocked"},
    {AWF_REASON_SCHEME_NOT_ALLOWED, "scheme_not_allowed"},
    {AWF_REASON_IP_LITERAL, "ip_literal"},
    {AWF_REASON_INVALID_NAME, "invalid_name"},
    {AWF_REASON_PORT_NOT_ALLOWED, "port_not_allowed"},
    {AWF_REASON_NO_PROTOCOL_FOR_PORT, "no_protocol_for_port"},
    {AWF_REASON_HOST_PORT_NOT_ALLOWED, "host_port_not_allowed"},
    {AWF_REASON_PRIVATE_DESTINATION, "private_destination"},
    {AWF_REASON_SNI_MISMATCH, "sni_mismatch"},
    {AWF_REASON_NO_SNI, "no_sni"},
    {AWF_REASON_SSH_NOT_ALLOWED, "ssh_not_allowed"},
    {AWF_REASON_UNKNOWN_DESTINATION, "unknown_destination"},
    {AWF_REASON_CLIENT_NOT_ALLOWED, "client_not_allowed"},
    {AWF_REASON_CLIENT_LIMIT, "client_limit"},
    {AWF_REASON_NOT_REDIRECTED, "not_redirected"},
    {AWF_REASON_UDP_NOT_ALLOWED, "udp_not_allowed"},
    {AWF_REASON_PROTOCOL_NOT_ALLOWED, "protocol_not_allowed"},
    {AWF_REASON_UNIX_SOCKET_NOT_ALLOWED, "unix_socket_not_allowed"},
    {AWF_REASON_URL_NOT_ALLOWED, "url_not_allowed"},
    {AWF_REASON_URL_BLOCKED, "url_blocked"},
    {AWF_REASON_HOST_MISMATCH, "host_mismatch"},
    {AWF_REASON_RATE_LIMITED, "rate_limited"},
    {AWF_REASON_DLP_MATCH, "dlp_match"},
    {AWF_REASON_SECRET_MISDIRECTED, "secret_misdirected"},
    {AWF_REASON_SECRET_PLAINTEXT, "secret_plaintext"},
    {AWF_REASON_METHOD_NOT_ALLOWED, "method_not_allowed"},
    {AWF_REASON_BAD_REQUEST, "bad_request"},
    {AWF_REASON_NOT_A_PROXY_REQUEST, "not_a_proxy_request"},
    {AWF_REASON_HEADER_TOO_LARGE, "header_too_large"},
    {AWF_REASON_BAD_CLIENT_HELLO, "bad_client_hello"},
    {AWF_REASON_UNSUPPORTED_CLASS, "unsupported_class"},
    {AWF_REASON_NOT_IMPLEMENTED, "not_implemented"},
    {AWF_REASON_DNS_FAILURE, "dns_failure"},
    {AWF_REASON_UPSTREAM_UNREACHABLE, "upstream_unreachable"},
    {AWF_REASON_UPSTREAM_TLS_VERIFY_FAILED, "upstream_tls_verify_failed"},
    {AWF_REASON_UPSTREAM_PROXY_FAILED, "upstream_proxy_failed"},
    {AWF_REASON_CLIENT_TLS_FAILED, "client_tls_failed"},
    {AWF_REASON_TIMEOUT, "timeout"},
    {AWF_REASON_OVERLOADED, "overloaded"},
    {AWF_REASON_SHUTTING_DOWN, "shutting_down"},
};

static void test_every_reason_has_a_unique_row(void **state) {
  (void)state;
  assert_null(awf_reason_name(AWF_REASON_NONE));
  assert_null(awf_reason_name(AWF_REASON_COUNT));
  for (int a = 1; a < AWF_REASON_COUNT; a++) {
    const char *n = awf_reason_name((enum awf_reason)a);
    assert_non_null(n);
    assert_non_null(awf_reason_explain((enum awf_reason)a));
    for (int b = a + 1; b < AWF_REASON_COUNT; b++)
      assert_string_not_equal(n, awf_reason_name((enum awf_reason)b));
  }
}

static void test_names_are_the_logs(void **state) {
  (void)state;
  assert_int_equal(sizeof(log_names) / sizeof(log_names[0]), AWF_REASON_COUNT - 1);
  for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
    assert_string_equal(awf_reason_name(log_names[i].r), log_names[i].name);
  assert_string_equal(awf_decision_name(AWF_ALLOW), "allow");
  assert_string_equal(awf_decision_name(AWF_DENY), "deny");
  assert_null(awf_decision_name(AWF_DECISION_NONE));
}

/* docs/access-log.md lists every reason the log can carry. */
static void test_every_reason_is_documented(void **state) {
  (void)state;
  char *doc, err[256], cell[64];
  size_t len;
  assert_int_equal(awf_textfile_read(AWF_ACCESS_LOG_DOC, 1 << 20, &doc, &len, err, sizeof(err)),
                   0);
  for (int r = 1; r < AWF_REASON_COUNT; r++) {
    snprintf(cell, sizeof(cell), "| `%s` |", awf_reason_name((enum awf_reason)r));
    if (!strstr(doc, cell))
      fail_msg("docs/access-log.md does not list %s", cell);
  }
  free(doc);
}

static void test_status_alert_explain_fix(void **state) {
  (void)state;
  assert_int_equal(awf_reason_http_status(AWF_REASON_NOT_ALLOWED), 403);
  assert_int_equal(awf_reason_http_status(AWF_REASON_PRIVATE_DESTINATION), 403);
  assert_int_equal(awf_reason_http_status(AWF_REASON_TIMEOUT), 504);
  assert_int_equal(awf_reason_http_status(AWF_REASON_DNS_FAILURE), 502);
  assert_int_equal(awf_reason_http_status(AWF_REASON_UPSTREAM_UNREACHABLE), 502);
  assert_int_equal(awf_reason_http_status(AWF_REASON_UPSTREAM_PROXY_FAILED), 502);
  assert_int_equal(awf_reason_http_status(AWF_REASON_HEADER_TOO_LARGE), 431);
  assert_int_equal(awf_reason_http_status(AWF_REASON_ALLOWED), 0);
  assert_string_equal(awf_http_status_text(431), "Request Header Fields Too Large");
  assert_int_equal(awf_reason_http_status(AWF_REASON_RATE_LIMITED), 429);
  assert_string_equal(awf_http_status_text(429), "Too Many Requests");
  assert_string_equal(awf_http_status_text(999), "Error");

  assert_int_equal(awf_reason_tls_alert(AWF_REASON_NO_SNI), AWF_TLS_ALERT_UNRECOGNIZED_NAME);
  assert_int_equal(awf_reason_tls_alert(AWF_REASON_SNI_MISMATCH), AWF_TLS_ALERT_ACCESS_DENIED);
  assert_int_equal(awf_reason_tls_alert(AWF_REASON_TIMEOUT), AWF_TLS_ALERT_ACCESS_DENIED);
  assert_int_equal(awf_reason_tls_alert(AWF_REASON_ALLOWED), AWF_TLS_ALERT_NONE);
  /* Every refusal says something to a TLS client. */
  for (int r = AWF_REASON_NOT_ALLOWED; r < AWF_REASON_COUNT; r++)
    assert_int_not_equal(awf_reason_tls_alert((enum awf_reason)r), AWF_TLS_ALERT_NONE);

  assert_string_equal(awf_reason_explain(AWF_REASON_NOT_ALLOWED),
                      "the domain is not in the allowlist (add it with --allow-domains)");
  assert_string_equal(awf_reason_explain(AWF_REASON_TIMEOUT), "timed out");
  assert_string_equal(awf_reason_explain(AWF_REASON_BAD_REQUEST), "the request is malformed");

  assert_int_equal(awf_reason_fix(AWF_REASON_NOT_ALLOWED), AWF_FIX_DOMAIN);
  assert_int_equal(awf_reason_fix(AWF_REASON_SCHEME_NOT_ALLOWED), AWF_FIX_SCHEME);
  assert_int_equal(awf_reason_fix(AWF_REASON_UNIX_SOCKET_NOT_ALLOWED), AWF_FIX_UNIX);
  assert_int_equal(awf_reason_fix(AWF_REASON_SHUTTING_DOWN), AWF_FIX_FAILURE);
  assert_int_equal(awf_reason_fix(AWF_REASON_INVALID_NAME), AWF_FIX_NONE);
  assert_string_equal(awf_reason_fix_note(AWF_REASON_BLOCKED),
                      "a --block-domains rule matches it");
  assert_null(awf_reason_fix_note(AWF_REASON_NOT_ALLOWED));
  assert_int_equal(awf_reason_http_status(AWF_REASON_URL_NOT_ALLOWED), 403);
  assert_int_equal(awf_reason_http_status(AWF_REASON_URL_BLOCKED), 403);
  assert_non_null(strstr(awf_reason_explain(AWF_REASON_URL_NOT_ALLOWED), "--allow-urls"));
  assert_non_null(strstr(awf_reason_fix_note(AWF_REASON_URL_BLOCKED), "--block-urls"));
}

/* ---- the judge ------------------------------------------------------------ */

struct fixture {
  awf_acl *acl, *ssh;
  struct awf_port_set allow, tls, http;
  struct awf_host_access ha;
  struct awf_policy p;
};

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  f->acl = acl_of("ok.test,https://tls.test,http://plain.test,1.2.3.4", "bad.ok.test");
  f->ssh = acl_of("github.com", NULL);
  awf_port_set_add(&f->allow, 80);
  awf_port_set_add(&f->allow, 443);
  awf_port_set_add(&f->allow, 8443);
  awf_port_set_add(&f->allow, 22);
  awf_port_set_add(&f->tls, 443);
  awf_port_set_add(&f->http, 80);
  awf_host_access_default(&f->ha);
  awf_port_set_add(&f->ha.ports, 8080);
  f->p = (struct awf_policy){.acl = f->acl,
                             .allow_ports = &f->allow,
                             .tls_ports = &f->tls,
                             .http_ports = &f->http,
                             .host_access = &f->ha};
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  awf_acl_free(f->acl);
  awf_acl_free(f->ssh);
  free(f);
  return 0;
}

static struct awf_verdict ask(const struct awf_policy *p, enum awf_ask kind, const char *host,
                              uint16_t port) {
  struct awf_ask_facts f = {.kind = kind, .host = host, .host_len = strlen(host), .port = port};
  return awf_policy_judge(p, &f);
}

static void expect(struct awf_verdict v, enum awf_decision d, enum awf_reason r, bool would) {
  assert_int_equal(v.decision, d);
  assert_string_equal(awf_reason_name(v.reason), awf_reason_name(r));
  assert_int_equal(v.would_deny, would);
}

static void test_host_and_port(void **state) {
  struct fixture *f = *state;
  expect(ask(&f->p, AWF_ASK_CONNECT, "ok.test", 443), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(ask(&f->p, AWF_ASK_HTTP, "api.ok.test", 80), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(ask(&f->p, AWF_ASK_CONNECT, "ok.test", 22022), AWF_DENY, AWF_REASON_PORT_NOT_ALLOWED,
         false);
  expect(ask(&f->p, AWF_ASK_HTTP, "other.test", 80), AWF_DENY, AWF_REASON_NOT_ALLOWED, false);
  expect(ask(&f->p, AWF_ASK_HTTP, "x.bad.ok.test", 80), AWF_DENY, AWF_REASON_BLOCKED, false);
  expect(ask(&f->p, AWF_ASK_CONNECT, "5.6.7.8", 443), AWF_DENY, AWF_REASON_IP_LITERAL, false);
  expect(ask(&f->p, AWF_ASK_CONNECT, "1.2.3.4", 443), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(ask(&f->p, AWF_ASK_CONNECT, "a!b.test", 443), AWF_DENY, AWF_REASON_INVALID_NAME,
         false);
}

static void test_scheme_not_allowed(void **state) {
  struct fixture *f = *state;
  expect(ask(&f->p, AWF_ASK_CONNECT, "tls.test", 443), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(ask(&f->p, AWF_ASK_HTTP, "tls.test", 80), AWF_DENY, AWF_REASON_SCHEME_NOT_ALLOWED,
         false);
  expect(ask(&f->p, AWF_ASK_HTTP, "plain.test", 80), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(ask(&f->p, AWF_ASK_CONNECT, "plain.test", 443), AWF_DENY,
         AWF_REASON_SCHEME_NOT_ALLOWED, false);
}

static struct awf_verdict ask_url(const struct awf_policy *p, const char *host,
                                  const char *method, const char *target) {
  struct awf_ask_facts f = {.kind = AWF_ASK_HTTP,
                            .host = host,
                            .host_len = strlen(host),
                            .port = 80,
                            .http = {method, target, strlen(target)}};
  return awf_policy_judge(p, &f);
}

/* URL rules narrow a host the domain rules admit; a block wins; hosts
 * without URL rules and the host's services are not judged by them. */
static void test_url_rules(void **state) {
  struct fixture *f = *state;
  awf_url_rules *u = awf_url_rules_new();
  char err[256];
  assert_int_equal(awf_url_rules_add_list(u, AWF_URL_ALLOW,
                                          "http://api.ok.test/ok/*, GET http://other.test/*",
                                          err, sizeof(err)),
                   0);
  assert_int_equal(
      awf_url_rules_add_list(u, AWF_URL_BLOCK,
                             "http://api.ok.test/ok/secret/*, "
                             "http://plain.test/admin/*, http://*.docker.internal/*",
                             err, sizeof(err)),
      0);
  f->p.url_rules = u;
  expect(ask_url(&f->p, "api.ok.test", "GET", "/ok/x"), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(ask_url(&f->p, "api.ok.test", "GET", "/no/x"), AWF_DENY, AWF_REASON_URL_NOT_ALLOWED,
         false);
  expect(ask_url(&f->p, "api.ok.test", "GET", "/ok/../no/x"), AWF_DENY,
         AWF_REASON_URL_NOT_ALLOWED, false);
  expect(ask_url(&f->p, "api.ok.test", "GET", "/ok/%2e%2e/no/x"), AWF_DENY,
         AWF_REASON_URL_NOT_ALLOWED, false);
  expect(ask_url(&f->p, "api.ok.test", "GET", "/ok//../x"), AWF_DENY,
         AWF_REASON_URL_NOT_ALLOWED, false);
  expect(ask_url(&f->p, "api.ok.test", "GET", "/ok/secret/k"), AWF_DENY, AWF_REASON_URL_BLOCKED,
         false);
  /* a host without allow URL rules: the domain rules alone, block URL rules still */
  expect(ask_url(&f->p, "ok.test", "GET", "/no/x"), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(ask_url(&f->p, "plain.test", "GET", "/x"), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(ask_url(&f->p, "plain.test", "GET", "/admin/x"), AWF_DENY, AWF_REASON_URL_BLOCKED,
         false);
  /* URL rules never admit a host the domain rules do not */
  expect(ask_url(&f->p, "other.test", "GET", "/x"), AWF_DENY, AWF_REASON_NOT_ALLOWED, false);
  /* the host's services answer to their own rules */
  struct awf_ask_facts ha = {.kind = AWF_ASK_HTTP,
                             .host = "host.docker.internal",
                             .host_len = strlen("host.docker.internal"),
                             .port = 8080,
                             .http = {"GET", "/x", 2}};
  expect(awf_policy_judge(&f->p, &ha), AWF_ALLOW, AWF_REASON_HOST_ACCESS, false);
  /* CONNECT is not judged by http:// URL rules */
  expect(ask(&f->p, AWF_ASK_CONNECT, "api.ok.test", 443), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  /* --audit admits and says why */
  f->p.audit = true;
  expect(ask_url(&f->p, "api.ok.test", "GET", "/no/x"), AWF_ALLOW, AWF_REASON_URL_NOT_ALLOWED,
         true);
  expect(ask_url(&f->p, "plain.test", "GET", "/admin/x"), AWF_ALLOW, AWF_REASON_URL_BLOCKED,
         true);
  awf_url_rules_free(u);
}

static struct awf_verdict ask_https(const struct awf_policy *p, const char *host,
                                    const char *method, const char *target) {
  struct awf_ask_facts f = {.kind = AWF_ASK_HTTPS,
                            .host = host,
                            .host_len = strlen(host),
                            .port = 443,
                            .http = {method, target, strlen(target)}};
  return awf_policy_judge(p, &f);
}

static struct awf_verdict ask_https(const struct awf_policy *p, const char *host,
                                    const char *method, const char *target);

/* --secret: plain HTTP to a secret's host is refused unless
 * --secret-allow-plaintext, TRACE and TRACK to an intercepted or secret
 * host are refused, --audit admits neither; other hosts are unaffected. */
static void test_secret_hosts(void **state) {
  struct fixture *f = *state;
  char err[256];
  awf_secrets *s = awf_secrets_new();
  assert_int_equal(awf_secrets_add(s, "K=api.ok.test", err, sizeof(err)), 0);
  f->p.secrets = s;
  expect(ask_url(&f->p, "api.ok.test", "GET", "/x"), AWF_DENY, AWF_REASON_SECRET_PLAINTEXT,
         false);
  f->p.audit = true;
  expect(ask_url(&f->p, "api.ok.test", "GET", "/x"), AWF_DENY, AWF_REASON_SECRET_PLAINTEXT,
         false);
  f->p.audit = false;
  f->p.secret_allow_plaintext = true;
  expect(ask_url(&f->p, "api.ok.test", "GET", "/x"), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(ask_url(&f->p, "api.ok.test", "TRACE", "/x"), AWF_DENY, AWF_REASON_METHOD_NOT_ALLOWED,
         false);
  expect(ask_url(&f->p, "api.ok.test", "TRACK", "/x"), AWF_DENY, AWF_REASON_METHOD_NOT_ALLOWED,
         false);
  expect(ask_url(&f->p, "ok.test", "TRACE", "/x"), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(ask_url(&f->p, "ok.test", "GET", "/x"), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(ask_https(&f->p, "tls.test", "TRACE", "/x"), AWF_DENY, AWF_REASON_METHOD_NOT_ALLOWED,
         false);
  expect(ask_https(&f->p, "tls.test", "GET", "/x"), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  assert_int_equal(awf_reason_http_status(AWF_REASON_METHOD_NOT_ALLOWED), 405);
  assert_string_equal(awf_http_status_text(405), "Method Not Allowed");
  f->p.secrets = NULL;
  awf_secrets_free(s);
}

/* A request inside intercepted TLS: the host is judged as TLS (an https://
 * domain rule admits it, an http:// one does not), then the https URL
 * rules, never the http ones. */
static void test_https_requests(void **state) {
  struct fixture *f = *state;
  awf_url_rules *u = awf_url_rules_new();
  char err[256];
  assert_int_equal(awf_url_rules_add_list(u, AWF_URL_ALLOW,
                                          "https://tls.test/ok/*, http://api.ok.test/plain/*, "
                                          "GET https://api.ok.test/get/*",
                                          err, sizeof(err)),
                   0);
  assert_int_equal(awf_url_rules_add_list(u, AWF_URL_BLOCK, "https://tls.test/ok/secret/*", err,
                                          sizeof(err)),
                   0);
  f->p.url_rules = u;
  expect(ask_https(&f->p, "tls.test", "GET", "/ok/x"), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(ask_https(&f->p, "tls.test", "GET", "/no/x"), AWF_DENY, AWF_REASON_URL_NOT_ALLOWED,
         false);
  expect(ask_https(&f->p, "tls.test", "GET", "/ok/../no/x"), AWF_DENY,
         AWF_REASON_URL_NOT_ALLOWED, false);
  expect(ask_https(&f->p, "tls.test", "GET", "/ok/secret/x"), AWF_DENY, AWF_REASON_URL_BLOCKED,
         false);
  /* the http rule of api.ok.test says nothing of its https requests */
  expect(ask_https(&f->p, "api.ok.test", "GET", "/plain/x"), AWF_DENY,
         AWF_REASON_URL_NOT_ALLOWED, false);
  expect(ask_https(&f->p, "api.ok.test", "GET", "/get/x"), AWF_ALLOW, AWF_REASON_ALLOWED,
         false);
  expect(ask_https(&f->p, "api.ok.test", "POST", "/get/x"), AWF_DENY,
         AWF_REASON_URL_NOT_ALLOWED, false);
  /* ...and the https rules nothing of its plain ones */
  expect(ask_url(&f->p, "api.ok.test", "GET", "/get/x"), AWF_DENY, AWF_REASON_URL_NOT_ALLOWED,
         false);
  /* the domain rules first, for TLS */
  expect(ask_https(&f->p, "plain.test", "GET", "/x"), AWF_DENY, AWF_REASON_SCHEME_NOT_ALLOWED,
         false);
  expect(ask_https(&f->p, "other.test", "GET", "/x"), AWF_DENY, AWF_REASON_NOT_ALLOWED, false);
  assert_true(awf_url_rules_covers_host(u, AWF_URL_HTTPS, "tls.test", 8));
  assert_false(awf_url_rules_covers_host(u, AWF_URL_HTTPS, "ok.test", 7));
  assert_false(awf_url_rules_covers_host(u, AWF_URL_HTTP, "tls.test", 8));
  awf_url_rules_free(u);
}

/* --audit admits a policy denial and says why, never a name that is not one. */
static void test_audit(void **state) {
  struct fixture *f = *state;
  f->p.audit = true;
  expect(ask(&f->p, AWF_ASK_HTTP, "other.test", 80), AWF_ALLOW, AWF_REASON_NOT_ALLOWED, true);
  expect(ask(&f->p, AWF_ASK_CONNECT, "ok.test", 22022), AWF_ALLOW, AWF_REASON_PORT_NOT_ALLOWED,
         true);
  expect(ask(&f->p, AWF_ASK_HTTP, "x.bad.ok.test", 80), AWF_ALLOW, AWF_REASON_BLOCKED, true);
  expect(ask(&f->p, AWF_ASK_CONNECT, "a!b.test", 443), AWF_DENY, AWF_REASON_INVALID_NAME,
         false);
  expect(ask(&f->p, AWF_ASK_CONNECT, "ok.test", 443), AWF_ALLOW, AWF_REASON_ALLOWED, false);
}

/* The host's services: their own ports, bypassing the ACL; another port of
 * the host is denied even under --audit. */
static void test_host_access(void **state) {
  struct fixture *f = *state;
  f->p.audit = true;
  struct awf_verdict v = ask(&f->p, AWF_ASK_HTTP, "host.docker.internal", 8080);
  expect(v, AWF_ALLOW, AWF_REASON_HOST_ACCESS, false);
  assert_true(v.host_access);
  v = ask(&f->p, AWF_ASK_CONNECT, "HOST.awf.internal.", 8080);
  assert_true(v.host_access);
  v = ask(&f->p, AWF_ASK_HTTP, "host.docker.internal", 80);
  expect(v, AWF_DENY, AWF_REASON_HOST_PORT_NOT_ALLOWED, false);
  assert_false(v.host_access);
  expect(ask(&f->p, AWF_ASK_HOST_PORT, "", 8080), AWF_ALLOW, AWF_REASON_HOST_ACCESS, false);
  expect(ask(&f->p, AWF_ASK_HOST_PORT, "", 22), AWF_DENY, AWF_REASON_HOST_PORT_NOT_ALLOWED,
         false);
  f->p.host_access = NULL;
  expect(ask(&f->p, AWF_ASK_HOST_PORT, "", 8080), AWF_DENY, AWF_REASON_HOST_PORT_NOT_ALLOWED,
         false);
}

static struct awf_verdict hello(const struct awf_policy *p, enum awf_ask kind, const char *host,
                                const char *sni, bool complete, bool multiple, char *name) {
  struct awf_ask_facts f = {.kind = kind,
                            .host = host,
                            .host_len = host ? strlen(host) : 0,
                            .port = 443,
                            .hello = {.complete = complete,
                                      .has_sni = sni != NULL,
                                      .sni_multiple = multiple,
                                      .sni = sni,
                                      .sni_len = sni ? strlen(sni) : 0},
                            .name_out = name};
  return awf_policy_judge(p, &f);
}

static void test_sni_against_connect(void **state) {
  struct fixture *f = *state;
  const enum awf_ask k = AWF_ASK_SNI_MATCH;
  expect(hello(&f->p, k, "ok.test", "OK.test.", true, false, NULL), AWF_ALLOW,
         AWF_REASON_ALLOWED, false);
  expect(hello(&f->p, k, "ok.test", NULL, true, false, NULL), AWF_ALLOW, AWF_REASON_ALLOWED,
         false); /* no name claimed */
  expect(hello(&f->p, k, "ok.test", "api.ok.test", true, false, NULL), AWF_DENY,
         AWF_REASON_SNI_MISMATCH, false);
  expect(hello(&f->p, k, "ok.test", "ok.test", true, true, NULL), AWF_DENY,
         AWF_REASON_SNI_MISMATCH, false);
  expect(hello(&f->p, k, "ok.test", "ok.test", false, false, NULL), AWF_DENY,
         AWF_REASON_BAD_CLIENT_HELLO, false);
  /* The same name, but not admitted for TLS (an http:// rule): a mismatch. */
  expect(hello(&f->p, k, "plain.test", "plain.test", true, false, NULL), AWF_DENY,
         AWF_REASON_SNI_MISMATCH, false);
  f->p.audit = true;
  expect(hello(&f->p, k, "ok.test", "evil.test", true, false, NULL), AWF_ALLOW,
         AWF_REASON_SNI_MISMATCH, true);
}

static void test_transparent_sni(void **state) {
  struct fixture *f = *state;
  const enum awf_ask k = AWF_ASK_TLS_SNI;
  char name[AWF_HOSTNAME_MAX + 1] = "";
  expect(hello(&f->p, k, NULL, "API.OK.test.", true, false, name), AWF_ALLOW,
         AWF_REASON_ALLOWED, false);
  assert_string_equal(name, "api.ok.test");
  expect(hello(&f->p, k, NULL, NULL, true, false, NULL), AWF_DENY, AWF_REASON_NO_SNI, false);
  expect(hello(&f->p, k, NULL, "", true, false, NULL), AWF_DENY, AWF_REASON_NO_SNI, false);
  expect(hello(&f->p, k, NULL, "ok.test", false, false, NULL), AWF_DENY,
         AWF_REASON_BAD_CLIENT_HELLO, false);
  expect(hello(&f->p, k, NULL, "ok.test", true, true, NULL), AWF_DENY,
         AWF_REASON_BAD_CLIENT_HELLO, false);
  expect(hello(&f->p, k, NULL, "1.2.3.4", true, false, NULL), AWF_DENY, AWF_REASON_IP_LITERAL,
         false); /* an IP says nothing, even one an IP rule admits */
  expect(hello(&f->p, k, NULL, "a b.test", true, false, NULL), AWF_DENY,
         AWF_REASON_INVALID_NAME, false);
  expect(hello(&f->p, k, NULL, "other.test", true, false, name), AWF_DENY,
         AWF_REASON_NOT_ALLOWED, false);
  assert_string_equal(name, "other.test");
  f->p.audit = true; /* the judge's audit rule, as for CONNECT */
  expect(hello(&f->p, k, NULL, "other.test", true, false, NULL), AWF_ALLOW,
         AWF_REASON_NOT_ALLOWED, true);
  expect(hello(&f->p, k, NULL, NULL, true, false, NULL), AWF_DENY, AWF_REASON_NO_SNI, false);
}

static struct awf_verdict port(const struct awf_policy *p, const char *ip, uint16_t n) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(n)};
  assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
  struct awf_ask_facts f = {.kind = AWF_ASK_PORT, .dst = (struct sockaddr *)&a, .port = n};
  return awf_policy_judge(p, &f);
}

static void test_port_classification(void **state) {
  struct fixture *f = *state;
  assert_int_equal(port(&f->p, "192.0.2.1", 443).mode, AWF_MODE_TLS);
  assert_int_equal(port(&f->p, "192.0.2.1", 80).mode, AWF_MODE_HTTP);
  struct awf_verdict v = port(&f->p, "192.0.2.1", 8443);
  expect(v, AWF_DENY, AWF_REASON_NO_PROTOCOL_FOR_PORT, false);
  assert_int_equal(v.mode, AWF_MODE_NONE);
  f->p.audit = true; /* no name to audit: denied all the same */
  expect(port(&f->p, "192.0.2.1", 25), AWF_DENY, AWF_REASON_PORT_NOT_ALLOWED, false);
  /* 22: judged by the names DNS answered, with --allow-ssh only */
  expect(port(&f->p, "192.0.2.1", 22), AWF_DENY, AWF_REASON_NO_PROTOCOL_FOR_PORT, false);
  f->p.ssh_acl = f->ssh;
  assert_int_equal(port(&f->p, "192.0.2.1", 22).mode, AWF_MODE_SSH);
  /* the host's sandbox-side address: any port goes to the host's mode */
  assert_int_equal(port(&f->p, AWF_HOST_ALIAS_ADDR4, 22).mode, AWF_MODE_HOST);
  assert_int_equal(port(&f->p, AWF_HOST_ALIAS_ADDR4, 5432).mode, AWF_MODE_HOST);
}

static struct awf_verdict dns(const struct awf_policy *p, const char *name, bool ok, bool in) {
  struct awf_ask_facts f = {.kind = AWF_ASK_DNS,
                            .host = name,
                            .host_len = strlen(name),
                            .dns = {.name_ok = ok, .class_in = in}};
  return awf_policy_judge(p, &f);
}

static void test_dns_question(void **state) {
  struct fixture *f = *state;
  expect(dns(&f->p, "ok.test", true, true), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  /* either protocol admits a name: it must resolve for both */
  expect(dns(&f->p, "tls.test", true, true), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(dns(&f->p, "plain.test", true, true), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  expect(dns(&f->p, "other.test", true, true), AWF_DENY, AWF_REASON_NOT_ALLOWED, false);
  expect(dns(&f->p, "x.bad.ok.test", true, true), AWF_DENY, AWF_REASON_BLOCKED, false);
  expect(dns(&f->p, "ok.test", false, true), AWF_DENY, AWF_REASON_INVALID_NAME, false);
  expect(dns(&f->p, "ok.test", true, false), AWF_DENY, AWF_REASON_UNSUPPORTED_CLASS, false);
  expect(dns(&f->p, "x.localhost", true, true), AWF_ALLOW, AWF_REASON_LOOPBACK, false);
  expect(dns(&f->p, "notlocalhost", true, true), AWF_DENY, AWF_REASON_NOT_ALLOWED, false);
  struct awf_verdict v = dns(&f->p, "host.docker.internal", true, true);
  expect(v, AWF_ALLOW, AWF_REASON_HOST_ACCESS, false);
  assert_true(v.host_access);
  /* --allow-ssh names resolve too; a block rule still wins */
  expect(dns(&f->p, "github.com", true, true), AWF_DENY, AWF_REASON_NOT_ALLOWED, false);
  f->p.ssh_acl = f->ssh;
  expect(dns(&f->p, "github.com", true, true), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  f->p.audit = true;
  expect(dns(&f->p, "other.test", true, true), AWF_ALLOW, AWF_REASON_NOT_ALLOWED, true);
  expect(dns(&f->p, "a!b.test", true, true), AWF_DENY, AWF_REASON_INVALID_NAME, false);
  expect(dns(&f->p, "github.com", true, true), AWF_ALLOW, AWF_REASON_ALLOWED, false);
}

static struct awf_verdict ssh(const struct awf_policy *p, const struct awf_dns_memory_name *n,
                              size_t count, const char *ip) {
  struct awf_ask_facts f = {.kind = AWF_ASK_SSH, .ssh = {.names = n, .n = count, .dst_ip = ip}};
  return awf_policy_judge(p, &f);
}

static void test_ssh(void **state) {
  struct fixture *f = *state;
  f->p.ssh_acl = f->ssh;
  struct awf_dns_memory_name names[] = {{"evil.test", false}, {"github.com", false}};
  struct awf_verdict v = ssh(&f->p, names, 2, "192.0.2.1");
  expect(v, AWF_ALLOW, AWF_REASON_ALLOWED, false);
  assert_string_equal(v.name, "github.com");
  assert_false(v.dial_address);
  v = ssh(&f->p, names, 1, "192.0.2.1");
  expect(v, AWF_DENY, AWF_REASON_SSH_NOT_ALLOWED, false);
  assert_string_equal(v.name, "evil.test");
  expect(ssh(&f->p, NULL, 0, "192.0.2.1"), AWF_DENY, AWF_REASON_UNKNOWN_DESTINATION, false);
  f->p.audit = true;
  expect(ssh(&f->p, names, 1, "192.0.2.1"), AWF_ALLOW, AWF_REASON_SSH_NOT_ALLOWED, true);
  /* nothing to dial, even under --audit */
  expect(ssh(&f->p, NULL, 0, "192.0.2.1"), AWF_DENY, AWF_REASON_UNKNOWN_DESTINATION, false);
}

/* --dlp: whatever an ask carries that could leave is scanned first; a match
 * is dlp_match with its kind, whatever the rules say; --audit admits it and
 * says so; without the table nothing is scanned. */
static void test_dlp(void **state) {
  struct fixture *f = *state;
  awf_dlp *d = awf_dlp_new();
  assert_non_null(d);
  static const char gh[] = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8";
  char target[128];
  snprintf(target, sizeof(target), "/x?k=%s", gh);
  /* Off: the rules alone. */
  expect(ask_url(&f->p, "ok.test", "GET", target), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  f->p.dlp = d;
  struct awf_verdict v = ask_url(&f->p, "ok.test", "GET", target);
  expect(v, AWF_DENY, AWF_REASON_DLP_MATCH, false);
  assert_string_equal(v.dlp, "github_token");
  /* Percent-encoded, and on a host the rules deny anyway. */
  v = ask_url(&f->p, "other.test", "GET", "/x?k=%67hp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8");
  expect(v, AWF_DENY, AWF_REASON_DLP_MATCH, false);
  v = ask_https(&f->p, "tls.test", "GET", target);
  expect(v, AWF_DENY, AWF_REASON_DLP_MATCH, false);
  expect(ask_url(&f->p, "ok.test", "GET", "/x?k=ghp_short"), AWF_ALLOW, AWF_REASON_ALLOWED,
         false);
  assert_null(ask_url(&f->p, "ok.test", "GET", "/x").dlp);

  /* A header. */
  struct awf_head h;
  awf_head_init(&h, 4096);
  assert_int_equal(awf_head_field(&h, "X-Api-Key", 9), 0);
  assert_int_equal(awf_head_value(&h, "sk-ant-api03-abcdefghijABCDEFGHIJ0123456789_-xyz", 48),
                   0);
  awf_head_value_complete(&h);
  struct awf_ask_facts hf = {.kind = AWF_ASK_HTTP,
                             .host = "ok.test",
                             .host_len = 7,
                             .port = 80,
                             .http = {"GET", "/", 1, &h}};
  v = awf_policy_judge(&f->p, &hf);
  expect(v, AWF_DENY, AWF_REASON_DLP_MATCH, false);
  assert_string_equal(v.dlp, "anthropic_key");
  awf_head_release(&h);

  /* Names: CONNECT, DNS (lower-cased, split across labels), SNI. */
  v = ask(&f->p, AWF_ASK_CONNECT, "akiaiosfodnn7example.ok.test", 443);
  expect(v, AWF_DENY, AWF_REASON_DLP_MATCH, false);
  assert_string_equal(v.dlp, "aws_access_key_id");
  struct awf_ask_facts q = {.kind = AWF_ASK_DNS,
                            .host = "ghp_a1b2c3d4e5f6g7h8.i9j0k1l2m3n4o5p6q7r8.ok.test",
                            .dns = {.name_ok = true, .class_in = true}};
  q.host_len = strlen(q.host);
  v = awf_policy_judge(&f->p, &q);
  expect(v, AWF_DENY, AWF_REASON_DLP_MATCH, false);
  assert_string_equal(v.dlp, "github_token");
  q.host = "api.ok.test";
  q.host_len = strlen(q.host);
  expect(awf_policy_judge(&f->p, &q), AWF_ALLOW, AWF_REASON_ALLOWED, false);
  static const char sni[] = "akiaiosfodnn7example.tls.test";
  struct awf_ask_facts t = {
      .kind = AWF_ASK_TLS_SNI,
      .port = 443,
      .hello = {.complete = true, .has_sni = true, .sni = sni, .sni_len = sizeof(sni) - 1}};
  expect(awf_policy_judge(&f->p, &t), AWF_DENY, AWF_REASON_DLP_MATCH, false);
  t.kind = AWF_ASK_SNI_MATCH;
  t.host = sni;
  t.host_len = sizeof(sni) - 1;
  expect(awf_policy_judge(&f->p, &t), AWF_DENY, AWF_REASON_DLP_MATCH, false);

  /* A literal (a secret's value). */
  assert_int_equal(awf_dlp_add_literal(d, "secret:TOKEN", "the-real-value-42", 17), 0);
  v = ask_url(&f->p, "ok.test", "GET", "/x?the-real-value-42");
  expect(v, AWF_DENY, AWF_REASON_DLP_MATCH, false);
  assert_string_equal(v.dlp, "secret:TOKEN");

  /* --audit: admitted, said; a name the rules deny stays what the rules say. */
  f->p.audit = true;
  v = ask_url(&f->p, "ok.test", "GET", target);
  expect(v, AWF_ALLOW, AWF_REASON_DLP_MATCH, true);
  assert_string_equal(v.dlp, "github_token");
  v = ask(&f->p, AWF_ASK_CONNECT, "akiaiosfodnn7example.other.test", 443);
  expect(v, AWF_ALLOW, AWF_REASON_NOT_ALLOWED, true);
  assert_string_equal(v.dlp, "aws_access_key_id");
  f->p.audit = false;
  f->p.dlp = NULL;
  awf_dlp_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_reason_has_a_unique_row),
      cmocka_unit_test(test_names_are_the_logs),
      cmocka_unit_test(test_every_reason_is_documented),
      cmocka_unit_test(test_status_alert_explain_fix),
      cmocka_unit_test_setup_teardown(test_host_and_port, setup, teardown),
      cmocka_unit_test_setup_teardown(test_url_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_https_requests, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scheme_not_allowed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_host_access, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sni_against_connect, setup, teardown),
      cmocka_unit_test_setup_teardown(test_transparent_sni, setup, teardown),
      cmocka_unit_test_setup_teardown(test_port_classification, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dns_question, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ssh, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dlp, setup, teardown),
      cmocka_unit_test_setup_teardown(test_secret_hosts, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
