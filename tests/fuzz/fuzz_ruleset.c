/* fuzz_ruleset.c: libFuzzer target for ruleset files (proxy/policy/ruleset.c,
 * YAML through libyaml into the ACL and the URL rules).
 *
 * Input: the file's bytes. Checked:
 * - the parser returns 0 or -EINVAL (never anything else: no allocation
 *   fails here);
 * - on an error the message is bounded, starts with "ORIGIN:LINE:COL: " and
 *   its line is the one reported, at least 1 and at most the file's line
 *   breaks plus one (YAML's breaks: LF, CR, NEL, LS, PS);
 * - on success, parsing the same bytes again into a second set gives the same
 *   rule counts (the parser keeps no state), and every port added is in
 *   1-65535 (port 0 never).
 */
#include "fuzz_check.h"
#include "ruleset.h"

#include <errno.h>

#define ERR_LEN 256

struct set {
  awf_acl *acl;
  awf_url_rules *urls;
  struct awf_port_set ports;
};

static int parse(struct set *s, const uint8_t *data, size_t size, unsigned *line, char *err) {
  s->acl = awf_acl_new();
  FUZZ_CHECK(s->acl != NULL);
  s->urls = NULL;
  memset(&s->ports, 0, sizeof(s->ports));
  struct awf_ruleset_into into = {.acl = s->acl, .url_rules = &s->urls, .ports = &s->ports};
  return awf_ruleset_parse((const char *)data, size, "f.yml", &into, line, err, ERR_LEN);
}

static void done(struct set *s) {
  awf_acl_free(s->acl);
  awf_url_rules_free(s->urls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *copy = fuzz_dup(data, size);
  struct set a, b;
  unsigned line = 0;
  char err[ERR_LEN];
  int rc = parse(&a, copy, size, &line, err);
  FUZZ_CHECK(rc == 0 || rc == -EINVAL);
  if (rc < 0) {
    size_t lines = 1; /* an upper bound: CR LF counts twice */
    for (size_t i = 0; i < size; i++)
      lines += copy[i] == '\n' || copy[i] == '\r' ||
               (i + 1 < size && copy[i] == 0xc2 && copy[i + 1] == 0x85) ||
               (i + 2 < size && copy[i] == 0xe2 && copy[i + 1] == 0x80 &&
                (copy[i + 2] == 0xa8 || copy[i + 2] == 0xa9));
    FUZZ_CHECK(strlen(err) < ERR_LEN);
    FUZZ_CHECK(line >= 1 && line <= lines + 1);
    char want[32];
    snprintf(want, sizeof(want), "f.yml:%u:", line);
    FUZZ_CHECK(strncmp(err, want, strlen(want)) == 0);
  } else {
    FUZZ_CHECK(!awf_port_set_has(&a.ports, 0));
    unsigned line2 = 0;
    char err2[ERR_LEN];
    FUZZ_CHECK(parse(&b, copy, size, &line2, err2) == 0);
    for (int l = AWF_ACL_ALLOW; l <= AWF_ACL_BLOCK; l++)
      FUZZ_CHECK(awf_acl_count(a.acl, (enum awf_acl_list)l) ==
                 awf_acl_count(b.acl, (enum awf_acl_list)l));
    for (int l = AWF_URL_ALLOW; l <= AWF_URL_BLOCK; l++)
      FUZZ_CHECK(awf_url_rules_count(a.urls, (enum awf_url_list)l) ==
                 awf_url_rules_count(b.urls, (enum awf_url_list)l));
    FUZZ_CHECK(memcmp(&a.ports, &b.ports, sizeof(a.ports)) == 0);
    done(&b);
  }
  done(&a);
  free(copy);
  return 0;
}
