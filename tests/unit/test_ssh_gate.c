/* Unit tests for the judgement of SSH connections by the names the command
 * resolved (policy.h, AWF_ASK_SSH, acted on by ssh_gate.c), and the DNS
 * server's (names in --allow-ssh resolve). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "acl_fixture.h"
#include "dns_msg.h"
#include "dns_server.h"
#include "ssh_gate.h"

static struct sockaddr_in dst4(const char *ip) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons(22);
  assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
  return a;
}

/* The verdict as ssh_gate.c reads it: a reason when denied or, under
 * --audit, when it would have been. */
struct awf_ssh_verdict {
  const char *reason;
  const char *name;
  bool dial_address;
  bool would_deny;
};

static void judge(const awf_acl *ssh, const awf_acl *acl, bool audit,
                  const struct awf_dns_memory_name *names, size_t n, const char *ip,
                  struct awf_ssh_verdict *v) {
  struct sockaddr_in d = dst4(ip);
  char text[64];
  assert_non_null(inet_ntop(AF_INET, &d.sin_addr, text, sizeof(text)));
  struct awf_policy p = {.acl = acl, .ssh_acl = ssh, .audit = audit};
  struct awf_ask_facts f = {.kind = AWF_ASK_SSH,
                            .ssh = {.names = names, .n = n, .dst_ip = text}};
  struct awf_verdict pv = awf_policy_judge(&p, &f);
  assert_int_equal(pv.decision == AWF_ALLOW, pv.reason == AWF_REASON_ALLOWED || pv.would_deny);
  v->reason = pv.decision == AWF_DENY || pv.would_deny ? awf_reason_name(pv.reason) : NULL;
  v->name = pv.name;
  v->dial_address = pv.dial_address;
  v->would_deny = pv.would_deny;
}

static void test_allowed_name_is_dialled(void **state) {
  (void)state;
  awf_acl *ssh = acl_of("github.com", NULL), *acl = acl_of(NULL, NULL);
  struct awf_dns_memory_name names[] = {{"github.com", false}};
  struct awf_ssh_verdict v;
  judge(ssh, acl, false, names, 1, "192.0.2.1", &v);
  assert_null(v.reason);
  assert_string_equal(v.name, "github.com");
  assert_false(v.dial_address);
  /* subdomains, as in --allow-domains */
  snprintf(names[0].name, sizeof(names[0].name), "ssh.github.com");
  judge(ssh, acl, false, names, 1, "192.0.2.1", &v);
  assert_null(v.reason);
  assert_string_equal(v.name, "ssh.github.com");
  awf_acl_free(ssh);
  awf_acl_free(acl);
}

/* A CDN address answered for a denied and an allowed name: the allowed name
 * is the one dialled, whichever came last; with only the denied one, denied
 * by its name. */
static void test_shared_address(void **state) {
  (void)state;
  awf_acl *ssh = acl_of("github.com", NULL), *acl = acl_of("evil.test", NULL);
  struct awf_dns_memory_name names[] = {{"evil.test", false}, {"github.com", false}};
  struct awf_ssh_verdict v;
  judge(ssh, acl, false, names, 2, "192.0.2.1", &v);
  assert_null(v.reason);
  assert_string_equal(v.name, "github.com");
  judge(ssh, acl, false, names, 1, "192.0.2.1", &v);
  assert_string_equal(v.reason, "ssh_not_allowed");
  assert_string_equal(v.name, "evil.test");
  assert_false(v.would_deny);
  awf_acl_free(ssh);
  awf_acl_free(acl);
}

static void test_no_name_is_unknown_even_under_audit(void **state) {
  (void)state;
  awf_acl *ssh = acl_of("github.com", NULL), *acl = acl_of(NULL, NULL);
  struct awf_ssh_verdict v;
  judge(ssh, acl, false, NULL, 0, "192.0.2.1", &v);
  assert_string_equal(v.reason, "unknown_destination");
  assert_null(v.name);
  judge(ssh, acl, true, NULL, 0, "192.0.2.1", &v);
  assert_string_equal(v.reason, "unknown_destination");
  assert_false(v.would_deny);
  awf_acl_free(ssh);
  awf_acl_free(acl);
}

static void test_ip_rule_admits_the_address(void **state) {
  (void)state;
  awf_acl *ssh = acl_of("192.0.2.7", NULL), *acl = acl_of(NULL, NULL);
  struct awf_ssh_verdict v;
  judge(ssh, acl, false, NULL, 0, "192.0.2.7", &v);
  assert_null(v.reason);
  assert_null(v.name);
  assert_true(v.dial_address);
  judge(ssh, acl, false, NULL, 0, "192.0.2.8", &v);
  assert_string_equal(v.reason, "unknown_destination");
  awf_acl_free(ssh);
  awf_acl_free(acl);
}

static void test_block_wins(void **state) {
  (void)state;
  awf_acl *ssh = acl_of("github.com", NULL), *acl = acl_of(NULL, "gist.github.com");
  struct awf_dns_memory_name names[] = {{"gist.github.com", false}};
  struct awf_ssh_verdict v;
  judge(ssh, acl, false, names, 1, "192.0.2.1", &v);
  assert_string_equal(v.reason, "blocked");
  assert_string_equal(v.name, "gist.github.com");
  judge(ssh, acl, true, names, 1, "192.0.2.1", &v); /* audit admits it, flagged */
  assert_string_equal(v.reason, "blocked");
  assert_true(v.would_deny);
  awf_acl_free(ssh);
  awf_acl_free(acl);
}

static void test_hosts_name_dials_the_address(void **state) {
  (void)state;
  awf_acl *ssh = acl_of("git.corp", NULL), *acl = acl_of(NULL, NULL);
  struct awf_dns_memory_name names[] = {{"git.corp", true}};
  struct awf_ssh_verdict v;
  judge(ssh, acl, false, names, 1, "10.1.2.3", &v);
  assert_null(v.reason);
  assert_string_equal(v.name, "git.corp");
  assert_true(v.dial_address);
  awf_acl_free(ssh);
  awf_acl_free(acl);
}

static void query(struct awf_dns_query *q, const char *name, uint16_t qtype) {
  memset(q, 0, sizeof(*q));
  q->has_question = q->name_ok = q->class_in = true;
  snprintf(q->qname, sizeof(q->qname), "%s", name);
  q->qname_len = strlen(name);
  q->qtype = qtype;
}

static void test_dns_answers_names_in_allow_ssh(void **state) {
  (void)state;
  awf_acl *ssh = acl_of("github.com", NULL), *acl = acl_of("example.test", "bad.github.com");
  struct awf_policy plain = {.acl = acl}, with_ssh = {.acl = acl, .ssh_acl = ssh};
  struct awf_policy audit = {.acl = acl, .audit = true};
  struct awf_policy audit_ssh = {.acl = acl, .ssh_acl = ssh, .audit = true};
  struct awf_dns_query q;
  struct awf_dns_verdict v;
  query(&q, "github.com", AWF_DNS_TYPE_A);
  awf_dns_decide(&plain, &q, &v); /* no --allow-ssh */
  assert_int_equal(v.action, AWF_DNS_ACT_BLOCK);
  awf_dns_decide(&with_ssh, &q, &v);
  assert_int_equal(v.action, AWF_DNS_ACT_RESOLVE);
  assert_string_equal(awf_reason_name(v.reason), "allowed");
  /* other types: NODATA, as for any admitted name */
  query(&q, "github.com", AWF_DNS_TYPE_TXT);
  awf_dns_decide(&with_ssh, &q, &v);
  assert_int_equal(v.action, AWF_DNS_ACT_NODATA);
  /* a block rule still wins */
  query(&q, "bad.github.com", AWF_DNS_TYPE_A);
  awf_dns_decide(&with_ssh, &q, &v);
  assert_int_equal(v.action, AWF_DNS_ACT_BLOCK);
  assert_string_equal(awf_reason_name(v.reason), "blocked");
  /* under --audit, no longer a would-be denial */
  query(&q, "github.com", AWF_DNS_TYPE_AAAA);
  awf_dns_decide(&audit, &q, &v);
  assert_true(v.would_deny);
  awf_dns_decide(&audit_ssh, &q, &v);
  assert_false(v.would_deny);
  /* a name in neither list stays blocked */
  query(&q, "gitlab.com", AWF_DNS_TYPE_A);
  awf_dns_decide(&with_ssh, &q, &v);
  assert_int_equal(v.action, AWF_DNS_ACT_BLOCK);
  awf_acl_free(ssh);
  awf_acl_free(acl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_allowed_name_is_dialled),
      cmocka_unit_test(test_shared_address),
      cmocka_unit_test(test_no_name_is_unknown_even_under_audit),
      cmocka_unit_test(test_ip_rule_admits_the_address),
      cmocka_unit_test(test_block_wins),
      cmocka_unit_test(test_hosts_name_dials_the_address),
      cmocka_unit_test(test_dns_answers_names_in_allow_ssh),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
