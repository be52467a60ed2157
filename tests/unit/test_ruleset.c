/* Unit tests for proxy/policy/ruleset.c: the reference AWF's ruleset files,
 * awf's extensions, and every error with its line and column. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ruleset.h"

struct set {
  awf_acl *acl;
  awf_url_rules *urls;
  struct awf_port_set ports;
  unsigned line;
  char err[600];
  struct awf_ruleset_secrets secrets;
};

static struct set *set_new(void) {
  struct set *s = calloc(1, sizeof(*s));
  assert_non_null(s);
  s->acl = awf_acl_new();
  assert_non_null(s->acl);
  return s;
}

static void set_free(struct set *s) {
  awf_acl_free(s->acl);
  awf_url_rules_free(s->urls);
  awf_ruleset_secrets_free(&s->secrets);
  free(s);
}

static int parse(struct set *s, const char *text) {
  struct awf_ruleset_into into = {.acl = s->acl,
                                  .url_rules = &s->urls,
                                  .ports = &s->ports,
                                  .secrets = &s->secrets};
  return awf_ruleset_parse(text, strlen(text), "rs.yml", &into, &s->line, s->err,
                           sizeof(s->err));
}

static struct set *parsed(const char *text) {
  struct set *s = set_new();
  if (parse(s, text) != 0)
    fail_msg("parse failed: %s", s->err);
  return s;
}

static enum awf_acl_verdict chk(const struct set *s, const char *host) {
  return awf_acl_check(s->acl, host, strlen(host), AWF_PROTO_TLS);
}

static enum awf_url_verdict url(const struct set *s, const char *host, const char *method,
                                const char *target) {
  return awf_url_rules_check(s->urls, AWF_URL_HTTPS, host, strlen(host), method, target,
                             strlen(target));
}

/* A file the reference AWF reads, as its docs write them. */
static void test_reference_file(void **state) {
  (void)state;
  struct set *s = parsed("# rules for the agent\n"
                         "version: 1\n"
                         "rules:\n"
                         "  - domain: github.com\n"
                         "    subdomains: true\n"
                         "  - domain: registry.npmjs.org\n"
                         "    subdomains: false\n"
                         "  - domain: pypi.org\n");
  assert_int_equal(chk(s, "github.com"), AWF_ACL_ALLOWED);
  assert_int_equal(chk(s, "api.github.com"), AWF_ACL_ALLOWED);
  assert_int_equal(chk(s, "registry.npmjs.org"), AWF_ACL_ALLOWED);
  assert_int_equal(chk(s, "x.registry.npmjs.org"), AWF_ACL_NOT_ALLOWED);
  assert_int_equal(chk(s, "files.pypi.org"), AWF_ACL_ALLOWED); /* subdomains by default */
  assert_int_equal(awf_acl_count(s->acl, AWF_ACL_ALLOW), 3);
  assert_null(s->urls);
  set_free(s);
}

/* Flow style, quoting and the other YAML spellings of the same file. */
static void test_yaml_spellings(void **state) {
  (void)state;
  struct set *s = parsed("---\n"
                         "{version: 1, rules: [{domain: 'a.example', subdomains: False},\n"
                         "  \"b.example\", {domain: c.example, subdomains: TRUE}]}\n"
                         "...\n");
  assert_int_equal(chk(s, "a.example"), AWF_ACL_ALLOWED);
  assert_int_equal(chk(s, "x.a.example"), AWF_ACL_NOT_ALLOWED);
  assert_int_equal(chk(s, "x.b.example"), AWF_ACL_ALLOWED);
  assert_int_equal(chk(s, "x.c.example"), AWF_ACL_ALLOWED);
  set_free(s);
  s = parsed("version: 1\nrules: []\n"); /* no rules at all */
  assert_int_equal(awf_acl_count(s->acl, AWF_ACL_ALLOW), 0);
  set_free(s);
  s = parsed("version: 1\n"); /* rules: may be left out */
  set_free(s);
}

static void test_extensions(void **state) {
  (void)state;
  struct set *s = parsed("version: 1\n"
                         "rules:\n"
                         "  - \"*.githubusercontent.com\"\n"
                         "  - https://tls.example\n"
                         "  - domain: 192.0.2.1\n"
                         "  - url: https://github.com/our-org/*\n"
                         "    methods: [GET, HEAD]\n"
                         "block:\n"
                         "  - domain: gist.github.com\n"
                         "  - bad.githubusercontent.com\n"
                         "  - url: https://github.com/our-org/secret/*\n"
                         "urls:\n"
                         "  - POST https://api.github.com/graphql\n"
                         "block_urls:\n"
                         "  - https://api.github.com/graphql?x=*\n"
                         "ports: [8443, \"9000-9002\", 10000-10001]\n");
  assert_int_equal(chk(s, "raw.githubusercontent.com"), AWF_ACL_ALLOWED);
  assert_int_equal(chk(s, "bad.githubusercontent.com"), AWF_ACL_BLOCKED);
  assert_int_equal(chk(s, "githubusercontent.com"), AWF_ACL_NOT_ALLOWED);
  assert_int_equal(chk(s, "tls.example"), AWF_ACL_ALLOWED);
  assert_int_equal(awf_acl_check(s->acl, "tls.example", 11, AWF_PROTO_HTTP),
                   AWF_ACL_NOT_ALLOWED);
  assert_int_equal(chk(s, "192.0.2.1"), AWF_ACL_ALLOWED);
  assert_int_equal(chk(s, "gist.github.com"), AWF_ACL_BLOCKED);
  assert_int_equal(awf_acl_count(s->acl, AWF_ACL_ALLOW), 3);
  assert_int_equal(awf_acl_count(s->acl, AWF_ACL_BLOCK), 2);
  assert_non_null(s->urls);
  assert_int_equal(awf_url_rules_count(s->urls, AWF_URL_ALLOW), 2);
  assert_int_equal(awf_url_rules_count(s->urls, AWF_URL_BLOCK), 2);
  assert_int_equal(url(s, "github.com", "GET", "/our-org/x"), AWF_URL_ALLOWED);
  assert_int_equal(url(s, "github.com", "POST", "/our-org/x"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(url(s, "github.com", "GET", "/our-org/secret/k"), AWF_URL_BLOCKED);
  assert_int_equal(url(s, "api.github.com", "POST", "/graphql"), AWF_URL_ALLOWED);
  assert_int_equal(url(s, "api.github.com", "GET", "/graphql"), AWF_URL_NOT_ALLOWED);
  assert_int_equal(url(s, "api.github.com", "POST", "/graphql?x=1"), AWF_URL_BLOCKED);
  assert_true(awf_port_set_has(&s->ports, 8443));
  assert_true(awf_port_set_has(&s->ports, 9000));
  assert_true(awf_port_set_has(&s->ports, 9002));
  assert_true(awf_port_set_has(&s->ports, 10001));
  assert_false(awf_port_set_has(&s->ports, 9003));
  assert_false(awf_port_set_has(&s->ports, 443)); /* only what the file names */
  set_free(s);
}

/* Two files into one set: they combine. */
/* secrets: entries are --secret entries, kept as given for config.c (which
 * reads the values) and checked as --secret checks them. */
static void test_secrets(void **state) {
  (void)state;
  struct set *s = parsed("version: 1\nsecrets:\n  - OPENAI_API_KEY=api.openai.com\n"
                         "  - GH_TOKEN=api.github.com,github.com\n");
  assert_int_equal(s->secrets.n, 2);
  assert_string_equal(s->secrets.v[0], "OPENAI_API_KEY=api.openai.com");
  assert_string_equal(s->secrets.v[1], "GH_TOKEN=api.github.com,github.com");
  assert_int_equal(parse(s, "version: 1\nsecrets: [X=a.example]\n"), 0);
  assert_int_equal(s->secrets.n, 3);
  set_free(s);
}

static void test_files_combine(void **state) {
  (void)state;
  struct set *s = parsed("version: 1\nrules: [a.example]\nports: [81]\n");
  assert_int_equal(parse(s, "version: 1\nrules: [b.example]\nblock: [x.a.example]\n"), 0);
  assert_int_equal(chk(s, "a.example"), AWF_ACL_ALLOWED);
  assert_int_equal(chk(s, "b.example"), AWF_ACL_ALLOWED);
  assert_int_equal(chk(s, "x.a.example"), AWF_ACL_BLOCKED);
  assert_true(awf_port_set_has(&s->ports, 81));
  set_free(s);
}

struct bad {
  const char *text;
  const char *err; /* the whole message, origin rs.yml */
};

static const struct bad bad_files[] = {
    {"", "rs.yml:1:1: empty: a ruleset starts with version: 1"},
    {"# only a comment\n", "rs.yml:2:1: empty: a ruleset starts with version: 1"},
    {"- a.example\n", "rs.yml:1:1: expected a mapping (version: 1, rules: ...), got a list"},
    {"---\n", "rs.yml:2:1: expected a mapping (version: 1, rules: ...), got nothing"},
    {"rules: [a.example]\n", "rs.yml:1:1: version: 1 is missing"},
    {"version: 2\n", "rs.yml:1:10: version: '2' is not supported (this awf reads version: 1)"},
    {"version: \"1\"\n",
     "rs.yml:1:10: version: '1' is not supported (this awf reads version: 1)"},
    {"version: [1]\n", "rs.yml:1:10: version: expected 1, got a list"},
    {"version: 1\nversion: 1\n", "rs.yml:2:1: 'version' is given twice"},
    {"version: 1\nrule:\n  - a.example\n",
     "rs.yml:2:1: unknown key 'rule' (expected version, rules, block, urls, block_urls, "
     "ports, secrets)"},
    {"version: 1\nsecrets: [OPENAI_API_KEY]\n",
     "rs.yml:2:11: secrets: --secret 'OPENAI_API_KEY': expected NAME=HOST[,HOST...] with NAME "
     "a variable name"},
    {"version: 1\nsecrets: [{OPENAI_API_KEY: api.openai.com}]\n",
     "rs.yml:2:11: secrets: expected a string, got a mapping"},
    {"version: 1\n[a]: 1\n", "rs.yml:2:1: a key must be a string, got a list"},
    {"version: 1\nrules:\n", "rs.yml:2:7: rules: expected a list, got nothing (null; write [] "
                             "for none)"},
    {"version: 1\nrules: a.example\n", "rs.yml:2:8: rules: expected a list, got a scalar"},
    {"version: 1\nrules:\n  - domain: github.com\n    subdomain: false\n",
     "rs.yml:4:5: unknown key 'subdomain' in a rule (expected domain, subdomains, url, "
     "methods)"},
    {"version: 1\nrules:\n  - domain: a.example\n    domain: b.example\n",
     "rs.yml:4:5: 'domain' is given twice in this rule"},
    {"version: 1\nrules:\n  - subdomains: true\n",
     "rs.yml:3:5: a rule needs a domain (or a url)"},
    {"version: 1\nrules:\n  - domain:\n", "rs.yml:3:12: domain: expected a string, got nothing "
                                          "(null)"},
    {"version: 1\nrules:\n  - domain: [a]\n", "rs.yml:3:13: domain: expected a string, got a "
                                              "list"},
    {"version: 1\nrules:\n  - domain: a..example\n",
     "rs.yml:3:13: domain 'a..example': empty label ('..', or a leading or trailing dot)"},
    {"version: 1\nblock:\n  - \"*\"\n",
     "rs.yml:3:5: domain '*': a wildcard alone would admit every host; name a domain, e.g. "
     "*.example.com"},
    {"version: 1\nrules:\n  - domain: example.com:443\n",
     "rs.yml:3:13: domain 'example.com:443': a port suffix is not allowed (ports are set with "
     "--allow-ports)"},
    {"version: 1\nrules:\n  - domain: a.example\n    subdomains: yes\n",
     "rs.yml:4:17: subdomains: expected true or false, got 'yes'"},
    {"version: 1\nrules:\n  - domain: a.example\n    subdomains: \"true\"\n",
     "rs.yml:4:17: subdomains: expected true or false, got 'true' (quoted: a string)"},
    {"version: 1\nrules:\n  - domain: \"*.a.example\"\n    subdomains: false\n",
     "rs.yml:3:13: domain '*.a.example': a wildcard rule always means subdomains: write the "
     "name itself"},
    {"version: 1\nrules:\n  - domain: a.example\n    url: https://a.example/x\n",
     "rs.yml:4:10: a rule has a domain or a url, not both: write two rules"},
    {"version: 1\nrules:\n  - domain: a.example\n    methods: [GET]\n",
     "rs.yml:4:14: methods applies to a url, not a domain"},
    {"version: 1\nrules:\n  - url: https://a.example/x\n    subdomains: false\n",
     "rs.yml:3:10: subdomains applies to a domain; a URL rule's host says it (*.example.com)"},
    {"version: 1\nrules:\n  - url: https://a.example/x\n    methods: [get]\n",
     "rs.yml:4:15: methods: 'get' is not a method name (upper case: GET, POST...)"},
    {"version: 1\nrules:\n  - url: https://a.example/x\n    methods: []\n",
     "rs.yml:4:14: methods: the list is empty (leave methods out for every method)"},
    {"version: 1\nrules:\n  - url: https://a.example/x\n    methods: GET\n",
     "rs.yml:4:14: methods: expected a list of method names ([GET, HEAD]), got a scalar"},
    {"version: 1\nurls:\n  - ftp://a.example/x\n",
     "rs.yml:3:5: URL rule 'ftp://a.example/x': "},
    {"version: 1\nurls:\n  - {a: 1}\n", "rs.yml:3:5: urls: expected a string, got a mapping"},
    {"version: 1\nports: [0]\n",
     "rs.yml:2:9: ports: '0' is not a port (1-65535) or a range LOW-HIGH"},
    {"version: 1\nports: [65536]\n",
     "rs.yml:2:9: ports: '65536' is not a port (1-65535) or a range LOW-HIGH"},
    {"version: 1\nports: [90-80]\n",
     "rs.yml:2:9: ports: '90-80' is not a port (1-65535) or a range LOW-HIGH"},
    {"version: 1\nports: [\"80-\"]\n",
     "rs.yml:2:9: ports: '80-' is not a port (1-65535) or a range LOW-HIGH"},
    {"version: 1\nports: [[80]]\n",
     "rs.yml:2:9: ports: expected a port or a range, got a list"},
    {"version: 1\nrules:\n  - &a a.example\n  - *a\n",
     "rs.yml:4:5: aliases (*a) are not supported: write the value out"},
    {"version: 1\n---\nversion: 1\n",
     "rs.yml:2:1: a second document: a ruleset file holds one (use another --ruleset-file)"},
    {"version: 1\nrules: [a.example\n", "rs.yml:3:1: not YAML: "},
    {"version: 1\n\trules: []\n", "rs.yml:2:1: not YAML: "},
    {"version: 1\nrules: [\"a\\0b\"]\n", "rs.yml:2:9: rules: a NUL byte is not allowed"},
    /* CR LF and a lone CR end lines too */
    {"version: 1\r\nrules:\r\n  - domain: a..b\r\n", "rs.yml:3:13: domain 'a..b': empty label"},
    {"version: 1\rrules:\r  - domain: a..b\r", "rs.yml:3:13: domain 'a..b': empty label"},
};

static void test_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
    struct set *s = set_new();
    int rc = parse(s, bad_files[i].text);
    if (rc != -EINVAL || strncmp(s->err, bad_files[i].err, strlen(bad_files[i].err)) != 0)
      fail_msg("file %zu (%s): rc %d, error\n  %s\nwant\n  %s", i, bad_files[i].text, rc,
               s->err, bad_files[i].err);
    unsigned want_line = (unsigned)strtoul(bad_files[i].err + strlen("rs.yml:"), NULL, 10);
    assert_int_equal(s->line, want_line);
    set_free(s);
  }
}

/* Bytes that are not UTF-8: the reader's error has a position too. */
static void test_not_utf8(void **state) {
  (void)state;
  struct set *s = set_new();
  const char text[] = "version: 1\nrules: [\"a\xff\"]\n";
  struct awf_ruleset_into into = {.acl = s->acl, .url_rules = &s->urls, .ports = &s->ports};
  assert_int_equal(awf_ruleset_parse(text, sizeof(text) - 1, "rs.yml", &into, &s->line, s->err,
                                     sizeof(s->err)),
                   -EINVAL);
  assert_int_equal(s->line, 2);
  assert_non_null(strstr(s->err, "rs.yml:2:11: not YAML: "));
  set_free(s);
}

/* A reader error after a lone CR: the line counted as libyaml counts it. */
static void test_reader_error_after_cr(void **state) {
  (void)state;
  struct set *s = set_new();
  const char text[] = "version: 1\r\nrules:\r  - \"a\xff\"\n";
  struct awf_ruleset_into into = {.acl = s->acl, .url_rules = &s->urls, .ports = &s->ports};
  assert_int_equal(awf_ruleset_parse(text, sizeof(text) - 1, "rs.yml", &into, &s->line, s->err,
                                     sizeof(s->err)),
                   -EINVAL);
  assert_non_null(strstr(s->err, "rs.yml:3:7: not YAML: "));
  set_free(s);
}

/* A NUL byte in the middle of the file (the text has a length). */
static void test_nul_in_text(void **state) {
  (void)state;
  struct set *s = set_new();
  const char text[] = "version: 1\nrules: [a.example]\n\0rules: [b.example]\n";
  struct awf_ruleset_into into = {.acl = s->acl, .url_rules = &s->urls, .ports = &s->ports};
  assert_int_equal(awf_ruleset_parse(text, sizeof(text) - 1, "rs.yml", &into, NULL, s->err,
                                     sizeof(s->err)),
                   -EINVAL);
  assert_non_null(strstr(s->err, "rs.yml:3:1: not YAML"));
  set_free(s);
}

static void test_bad_arguments(void **state) {
  (void)state;
  struct set *s = set_new();
  struct awf_ruleset_into into = {.acl = s->acl, .url_rules = NULL, .ports = &s->ports};
  assert_int_equal(awf_ruleset_parse("version: 1\n", 11, "rs.yml", &into, NULL, NULL, 0),
                   -EINVAL);
  set_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reference_file), cmocka_unit_test(test_yaml_spellings),
      cmocka_unit_test(test_extensions),     cmocka_unit_test(test_files_combine),
      cmocka_unit_test(test_secrets),        cmocka_unit_test(test_errors),
      cmocka_unit_test(test_not_utf8),       cmocka_unit_test(test_nul_in_text),
      cmocka_unit_test(test_bad_arguments),  cmocka_unit_test(test_reader_error_after_cr),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
