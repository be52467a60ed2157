/* ruleset.h: a ruleset file (--ruleset-file), the reference AWF's YAML
 * format with awf's extensions (docs/awf-proxy.md, "Rulesets"):
 *
 *   version: 1                    # required; the only version
 *   rules:                        # allow rules (the reference's list)
 *     - domain: github.com        # any --allow-domains entry
 *       subdomains: true          # default true; false: the name alone
 *     - "*.githubusercontent.com" # shorthand: domain, subdomains true
 *     - url: https://github.com/our-org # an allow URL rule
 *       methods: [GET, HEAD]      # optional, only with url
 *   block:                        # block rules, the same entries
 *     - domain: gist.github.com
 *   urls:                         # allow URL rules, --allow-urls entries
 *     - GET,HEAD https://api.github.com/meta
 *   block_urls:                   # block URL rules, --block-urls entries
 *     - https://github.com/our-org/secrets
 *   ports: [80, 443, 8000-8099]   # destination ports added to --allow-ports
 *   secrets:                      # --secret entries: NAME=HOST[,HOST...]
 *     - OPENAI_API_KEY=api.openai.com
 *
 * Parsed with libyaml. Strict: an unknown key, a key given twice, a value of
 * the wrong type, an alias, a second document or an invalid rule (checked by
 * the ACL and URL rules themselves) is an error naming the line and column.
 * Pure: gets the file's bytes, never does I/O. */
#ifndef AWF_RULESET_H
#define AWF_RULESET_H

#include <stddef.h>

#include "acl.h"
#include "port_set.h"
#include "url_rules.h"

/* A ruleset's secrets: entries, as --secret takes them ("NAME=HOST,..."),
 * each checked by the secrets store (secrets.h); malloc()ed. The values are
 * read where --secret's are (config.c), never from a ruleset. */
struct awf_ruleset_secrets {
  char **v;
  size_t n;
};
void awf_ruleset_secrets_free(struct awf_ruleset_secrets *s);

/* Where a ruleset's rules go. */
struct awf_ruleset_into {
  awf_acl *acl;                        /* rules:, block: */
  awf_url_rules **url_rules;           /* urls:, block_urls:, url: entries; made when NULL */
  struct awf_port_set *ports;          /* ports: added */
  struct awf_ruleset_secrets *secrets; /* secrets: appended */
};

/* Parse text (len bytes) and add its rules. origin names the file in
 * errors. Returns 0; or -EINVAL with "ORIGIN:LINE:COL: what is wrong" in
 * err and the line (from 1) in *line (may be NULL); or -ENOMEM. On an
 * error the targets may hold part of the file: build into fresh ones. */
int awf_ruleset_parse(const char *text, size_t len, const char *origin,
                      const struct awf_ruleset_into *into, unsigned *line, char *err,
                      size_t errlen);

#endif
