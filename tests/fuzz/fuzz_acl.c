/* fuzz_acl.c: libFuzzer target for the domain ACL (acl/acl.c, acl/hostname.c).
 *
 * Input: rule lines, then a NUL byte, then host names one per line (without
 * a NUL every rule line is also tried as a name). A rule line starting with
 * '!' goes to the block list, any other to the allow list; each line is
 * rules-file text (commas, '#' comments).
 *
 * The ACL files rules in one hash table with shared slots, flag bits and
 * pattern lists; a single-line ACL exercises none of that sharing. So the
 * reference verdict for a name comes from one ACL per line: blocked if any
 * block line blocks it, else allowed if any allow line allows it. The ACL of
 * all lines together must agree, for both protocols. Also checked:
 * - the lines accepted alone are accepted together; a refused add leaves the
 *   list as it was and writes a bounded message; rule counts add up;
 * - the verdict ignores ASCII case and one trailing dot of a name;
 * - invalid_name exactly for what is neither an IP literal nor a valid
 *   host name, ip_literal only for IP literals;
 * - a plain rule "x.y" admits the name x.y, a rule "*.x.y" admits a.x.y.
 */
#include "acl.h"
#include "fuzz_check.h"
#include "hostname.h"

#include <errno.h>

#define MAX_LINES 24
#define MAX_NAMES 24
#define NAME_MAX_LEN 300
#define ERR_LEN 96

struct line {
  const char *p;
  size_t n;
  enum awf_acl_list which;
  awf_acl *acl; /* this line alone; NULL if it was refused */
};

static size_t split_lines(const char *s, size_t n, struct line *out, size_t max) {
  size_t count = 0, start = 0;
  for (size_t i = 0; i <= n && count < max; i++) {
    if (i < n && s[i] != '\n')
      continue;
    out[count].p = s + start;
    out[count].n = i - start;
    count++;
    start = i + 1;
  }
  return count;
}

static awf_acl *acl_new(void) {
  awf_acl *acl = awf_acl_new();
  FUZZ_CHECK(acl != NULL);
  return acl;
}

static int add_text(awf_acl *acl, enum awf_acl_list which, const char *text, size_t n) {
  char err[ERR_LEN];
  memset(err, 'x', sizeof(err));
  size_t before = awf_acl_count(acl, which);
  /* A list (as --allow-domains gives) reads like a line of a rules file
   * without a comment, and needs a C string. */
  char *copy = fuzz_strdup((const uint8_t *)text, n);
  int rc = memchr(text, '#', n) || memchr(text, '\n', n) || memchr(text, '\0', n)
               ? awf_acl_add_text(acl, which, copy, n, "fuzz", err, sizeof(err))
               : awf_acl_add_list(acl, which, copy, err, sizeof(err));
  free(copy);
  FUZZ_CHECK(rc == 0 || rc == -EINVAL);
  if (rc < 0) {
    FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
    FUZZ_CHECK(awf_acl_count(acl, which) == before);
  }
  return rc;
}

static enum awf_acl_verdict check(const awf_acl *acl, const char *name, size_t n,
                                  enum awf_acl_proto proto) {
  char *copy = (char *)fuzz_dup((const uint8_t *)name, n);
  enum awf_acl_verdict v = awf_acl_check(acl, copy, n, proto);
  free(copy);
  FUZZ_CHECK(v >= AWF_ACL_ALLOWED && v <= AWF_ACL_INVALID_NAME);
  FUZZ_CHECK(strcmp(awf_acl_verdict_name(v), "unknown") != 0);
  return v;
}

static enum awf_acl_verdict reference(const struct line *lines, size_t nlines, const char *name,
                                      size_t n, enum awf_acl_proto proto) {
  bool allowed = false;
  for (size_t i = 0; i < nlines; i++) {
    if (lines[i].acl == NULL)
      continue;
    enum awf_acl_verdict v = check(lines[i].acl, name, n, proto);
    if (lines[i].which == AWF_ACL_BLOCK) {
      FUZZ_CHECK(v != AWF_ACL_ALLOWED);
      if (v == AWF_ACL_BLOCKED)
        return AWF_ACL_BLOCKED;
    } else {
      FUZZ_CHECK(v != AWF_ACL_BLOCKED);
      allowed = allowed || v == AWF_ACL_ALLOWED;
    }
  }
  if (allowed)
    return AWF_ACL_ALLOWED;
  struct sockaddr_storage ss;
  char norm[AWF_HOSTNAME_MAX + 1];
  if (awf_ip_literal_parse(name, n, &ss) != 0)
    return AWF_ACL_IP_LITERAL;
  if (awf_hostname_normalize(name, n, norm, sizeof(norm)) < 0)
    return AWF_ACL_INVALID_NAME;
  return AWF_ACL_NOT_ALLOWED;
}

static void check_name(const awf_acl *all, const struct line *lines, size_t nlines,
                       const char *name, size_t n) {
  if (n > NAME_MAX_LEN)
    return;
  char var[NAME_MAX_LEN + 2];
  struct sockaddr_storage ss;
  bool ip = awf_ip_literal_parse(name, n, &ss) != 0;
  for (int p = AWF_PROTO_HTTP; p <= AWF_PROTO_TLS; p++) {
    enum awf_acl_proto proto = (enum awf_acl_proto)p;
    enum awf_acl_verdict v = check(all, name, n, proto);
    FUZZ_CHECK(v == reference(lines, nlines, name, n, proto));
    FUZZ_CHECK((v == AWF_ACL_IP_LITERAL) <= ip);
    for (size_t i = 0; i < n; i++)
      var[i] = name[i] >= 'a' && name[i] <= 'z' ? (char)(name[i] - 32) : name[i];
    FUZZ_CHECK(check(all, var, n, proto) == v);
    if (!ip && n > 0 && name[n - 1] != '.') {
      memcpy(var, name, n);
      var[n] = '.';
      FUZZ_CHECK(check(all, var, n + 1, proto) == v);
    }
  }
}

static bool plain_name(const char *s, size_t n) {
  char norm[AWF_HOSTNAME_MAX + 1];
  struct sockaddr_storage ss;
  return awf_ip_literal_parse(s, n, &ss) == 0 &&
         awf_hostname_normalize(s, n, norm, sizeof(norm)) > 0;
}

/* What a single valid rule must admit, whatever else its ACL holds. */
static void check_rule_admits(const struct line *l) {
  if (l->acl == NULL || l->which != AWF_ACL_ALLOW || l->n > NAME_MAX_LEN)
    return;
  if (plain_name(l->p, l->n)) {
    FUZZ_CHECK(check(l->acl, l->p, l->n, AWF_PROTO_TLS) == AWF_ACL_ALLOWED);
    FUZZ_CHECK(check(l->acl, l->p, l->n, AWF_PROTO_HTTP) == AWF_ACL_ALLOWED);
  }
  if (l->n > 2 && l->p[0] == '*' && l->p[1] == '.' && plain_name(l->p + 2, l->n - 2)) {
    char sub[NAME_MAX_LEN + 2];
    memcpy(sub, "a", 1);
    memcpy(sub + 1, l->p + 1, l->n - 1); /* "a" + ".rest" */
    if (plain_name(sub, l->n))
      FUZZ_CHECK(check(l->acl, sub, l->n, AWF_PROTO_TLS) == AWF_ACL_ALLOWED);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  const char *nul = memchr(data, '\0', size);
  size_t rules_len = nul ? (size_t)(nul - text) : size;
  struct line lines[MAX_LINES], names[MAX_NAMES];
  size_t nlines = split_lines(text, rules_len, lines, MAX_LINES);
  size_t nnames = nul ? split_lines(nul + 1, size - rules_len - 1, names, MAX_NAMES) : 0;

  /* Each line alone, then the accepted ones together, one text per list. */
  char *joined[2];
  size_t jlen[2] = {0, 0};
  size_t sum[2] = {0, 0}, most[2] = {0, 0};
  joined[0] = malloc(rules_len + 1);
  joined[1] = malloc(rules_len + 1);
  FUZZ_CHECK(joined[0] && joined[1]);
  for (size_t i = 0; i < nlines; i++) {
    struct line *l = &lines[i];
    l->which = l->n > 0 && l->p[0] == '!' ? AWF_ACL_BLOCK : AWF_ACL_ALLOW;
    if (l->which == AWF_ACL_BLOCK) {
      l->p++;
      l->n--;
    }
    l->acl = acl_new();
    if (add_text(l->acl, l->which, l->p, l->n) < 0) {
      awf_acl_free(l->acl);
      l->acl = NULL;
      continue;
    }
    size_t c = awf_acl_count(l->acl, l->which);
    enum awf_acl_list other = l->which == AWF_ACL_ALLOW ? AWF_ACL_BLOCK : AWF_ACL_ALLOW;
    FUZZ_CHECK(awf_acl_count(l->acl, other) == 0);
    sum[l->which] += c;
    most[l->which] = c > most[l->which] ? c : most[l->which];
    memcpy(joined[l->which] + jlen[l->which], l->p, l->n);
    jlen[l->which] += l->n;
    joined[l->which][jlen[l->which]++] = '\n';
    check_rule_admits(l);
  }
  awf_acl *all = acl_new();
  for (int w = AWF_ACL_ALLOW; w <= AWF_ACL_BLOCK; w++) {
    FUZZ_CHECK(add_text(all, (enum awf_acl_list)w, joined[w], jlen[w]) == 0);
    size_t c = awf_acl_count(all, (enum awf_acl_list)w);
    FUZZ_CHECK(c <= sum[w] && c >= most[w]);
  }

  for (size_t i = 0; i < nnames; i++)
    check_name(all, lines, nlines, names[i].p, names[i].n);
  if (nul == NULL)
    for (size_t i = 0; i < nlines; i++)
      check_name(all, lines, nlines, lines[i].p, lines[i].n);

  for (size_t i = 0; i < nlines; i++)
    awf_acl_free(lines[i].acl);
  awf_acl_free(all);
  free(joined[0]);
  free(joined[1]);
  return 0;
}
