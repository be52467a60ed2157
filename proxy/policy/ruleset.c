/* ruleset.c: ruleset files (ruleset.h) read with libyaml's event parser.
 * The grammar is walked event by event; nothing unknown is descended into,
 * so a hostile file costs at most one pass over its bytes. */
#include "ruleset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "hostname.h"
#include "secrets.h"

#define ECHO_MAX 64 /* bytes of a bad value quoted in an error */

struct rs {
  yaml_parser_t parser;
  yaml_event_t ev;
  bool have_ev;
  const char *text;
  size_t len;
  const char *origin;
  const struct awf_ruleset_into *into;
  unsigned *line;
  char *err;
  size_t errlen;
};

/* ---- errors ------------------------------------------------------------- */

static int fail_at(struct rs *r, size_t line0, size_t col0, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(struct rs *r, size_t line0, size_t col0, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (r->line)
    *r->line = (unsigned)(line0 + 1);
  snprintf(r->err, r->errlen, "%s:%zu:%zu: %s", r->origin, line0 + 1, col0 + 1, msg);
  return -EINVAL;
}

/* An error at the current event. */
#define FAIL(r, ...) \
  fail_at((r), (r)->ev.start_mark.line, (r)->ev.start_mark.column, __VA_ARGS__)

/* The line and column of a byte offset (libyaml's reader errors give only
 * the offset), counted as libyaml counts its marks: LF, CR LF and a lone CR
 * end a line (the reader stops at the first byte that is not UTF-8, so the
 * Unicode breaks before it are rare enough to count as columns). */
static void position_of(const struct rs *r, size_t off, size_t *line0, size_t *col0) {
  *line0 = 0;
  *col0 = 0;
  for (size_t i = 0; i < off && i < r->len; i++) {
    bool crlf = r->text[i] == '\r' && i + 1 < r->len && r->text[i + 1] == '\n';
    if ((r->text[i] == '\n' || r->text[i] == '\r') && !crlf) {
      (*line0)++;
      *col0 = 0;
    } else if (!crlf) {
      (*col0)++;
    }
  }
}

static int parser_error(struct rs *r) {
  const yaml_parser_t *p = &r->parser;
  if (p->error == YAML_MEMORY_ERROR) {
    snprintf(r->err, r->errlen, "%s: out of memory", r->origin);
    return -ENOMEM;
  }
  const char *problem = p->problem ? p->problem : "invalid YAML";
  if (p->error == YAML_READER_ERROR) {
    size_t line0, col0;
    position_of(r, p->problem_offset, &line0, &col0);
    return fail_at(r, line0, col0, "not YAML: %s", problem);
  }
  if (p->context)
    return fail_at(r, p->problem_mark.line, p->problem_mark.column, "not YAML: %s %s", problem,
                   p->context);
  return fail_at(r, p->problem_mark.line, p->problem_mark.column, "not YAML: %s", problem);
}

/* The next event (the previous one is released). */
static int next(struct rs *r) {
  if (r->have_ev)
    yaml_event_delete(&r->ev);
  r->have_ev = false;
  if (!yaml_parser_parse(&r->parser, &r->ev))
    return parser_error(r);
  r->have_ev = true;
  if (r->ev.type == YAML_ALIAS_EVENT)
    return FAIL(r, "aliases (*%s) are not supported: write the value out",
                (const char *)r->ev.data.alias.anchor);
  return 0;
}

static const char *what(const yaml_event_t *ev) {
  switch (ev->type) {
  case YAML_SCALAR_EVENT: return "a scalar";
  case YAML_SEQUENCE_START_EVENT: return "a list";
  case YAML_MAPPING_START_EVENT: return "a mapping";
  default: return "nothing";
  }
}

/* ---- scalars ------------------------------------------------------------ */

static const char *sval(const struct rs *r) { return (const char *)r->ev.data.scalar.value; }
static size_t slen(const struct rs *r) { return r->ev.data.scalar.length; }
static bool plain(const struct rs *r) {
  return r->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool seq(const struct rs *r, const char *lit) {
  return slen(r) == strlen(lit) && memcmp(sval(r), lit, slen(r)) == 0;
}

static bool is_null(const struct rs *r) {
  return r->ev.type == YAML_SCALAR_EVENT && plain(r) &&
         (slen(r) == 0 || seq(r, "~") || seq(r, "null") || seq(r, "Null") || seq(r, "NULL"));
}

/* The scalar, printable and cut, for a message. */
static void echo(const struct rs *r, char *out, size_t outsz) {
  size_t o = 0;
  for (size_t i = 0; i < slen(r) && i < ECHO_MAX && o + 4 < outsz; i++) {
    unsigned char c = (unsigned char)sval(r)[i];
    out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  if (slen(r) > ECHO_MAX && o + 4 < outsz) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = '\0';
}

/* A string value: a scalar that is not null. */
static int want_string(struct rs *r, const char *key) {
  if (r->ev.type != YAML_SCALAR_EVENT)
    return FAIL(r, "%s: expected a string, got %s", key, what(&r->ev));
  if (is_null(r))
    return FAIL(r, "%s: expected a string, got nothing (null)", key);
  if (memchr(sval(r), '\0', slen(r)))
    return FAIL(r, "%s: a NUL byte is not allowed", key);
  return 0;
}

static int want_bool(struct rs *r, const char *key, bool *out) {
  if (r->ev.type == YAML_SCALAR_EVENT && plain(r)) {
    if (seq(r, "true") || seq(r, "True") || seq(r, "TRUE")) {
      *out = true;
      return 0;
    }
    if (seq(r, "false") || seq(r, "False") || seq(r, "FALSE")) {
      *out = false;
      return 0;
    }
  }
  if (r->ev.type != YAML_SCALAR_EVENT)
    return FAIL(r, "%s: expected true or false, got %s", key, what(&r->ev));
  char q[ECHO_MAX + 8];
  echo(r, q, sizeof(q));
  return FAIL(r, "%s: expected true or false, got '%s'%s", key, q,
              plain(r) ? "" : " (quoted: a string)");
}

/* ---- the rules ---------------------------------------------------------- */

static int add_domain(struct rs *r, enum awf_acl_list which, bool exact, yaml_mark_t at,
                      const char *s, size_t n) {
  char why[AWF_HOSTNAME_MAX + 128];
  int rc = awf_acl_add_entry(r->into->acl, which, s, n, exact, why, sizeof(why));
  if (rc == -ENOMEM)
    return rc;
  if (rc < 0) {
    char q[ECHO_MAX + 8];
    size_t o = 0;
    for (size_t i = 0; i < n && i < ECHO_MAX && o + 4 < sizeof(q); i++)
      q[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    q[o] = '\0';
    return fail_at(r, at.line, at.column, "domain '%s'%s: %s", q, n > ECHO_MAX ? "..." : "",
                   why);
  }
  return 0;
}

static int add_url(struct rs *r, enum awf_url_list which, yaml_mark_t at, const char *s,
                   size_t n) {
  char why[512];
  if (!*r->into->url_rules && !(*r->into->url_rules = awf_url_rules_new()))
    return -ENOMEM;
  int rc = awf_url_rules_add(*r->into->url_rules, which, s, n, why, sizeof(why));
  if (rc == -ENOMEM)
    return rc;
  if (rc < 0)
    return fail_at(r, at.line, at.column, "URL rule %s", why);
  return 0;
}

/* methods: [GET, HEAD] into buf as "GET,HEAD ". */
static int read_methods(struct rs *r, char *buf, size_t bufsz, size_t *used) {
  int rc;
  if (r->ev.type != YAML_SEQUENCE_START_EVENT)
    return FAIL(r, "methods: expected a list of method names ([GET, HEAD]), got %s",
                what(&r->ev));
  yaml_mark_t start = r->ev.start_mark;
  *used = 0;
  while ((rc = next(r)) == 0 && r->ev.type != YAML_SEQUENCE_END_EVENT) {
    if ((rc = want_string(r, "methods")) < 0)
      return rc;
    for (size_t i = 0; i < slen(r); i++) {
      char c = sval(r)[i];
      if (c < 'A' || c > 'Z') {
        char q[ECHO_MAX + 8];
        echo(r, q, sizeof(q));
        return FAIL(r, "methods: '%s' is not a method name (upper case: GET, POST...)", q);
      }
    }
    if (*used + slen(r) + 2 > bufsz)
      return FAIL(r, "methods: too many");
    memcpy(buf + *used, sval(r), slen(r));
    *used += slen(r);
    buf[(*used)++] = ',';
  }
  if (rc < 0)
    return rc;
  if (*used == 0)
    return fail_at(r, start.line, start.column,
                   "methods: the list is empty (leave methods out for every method)");
  buf[*used - 1] = ' ';
  return 0;
}

/* A copy of the current scalar with its position. */
struct held {
  char *s;
  size_t n;
  yaml_mark_t at;
};

static int hold(struct rs *r, struct held *h) {
  free(h->s);
  h->s = malloc(slen(r) + 1);
  if (!h->s)
    return -ENOMEM;
  memcpy(h->s, sval(r), slen(r) + 1);
  h->n = slen(r);
  h->at = r->ev.start_mark;
  return 0;
}

/* One entry of rules: or block: as a mapping (the current event is its
 * start). */
static int rule_mapping(struct rs *r, const char *list, enum awf_acl_list which) {
  yaml_mark_t start = r->ev.start_mark;
  struct held domain = {0}, url = {0};
  bool subdomains = true, seen_sub = false;
  char methods[256];
  size_t mlen = 0;
  yaml_mark_t methods_at = start;
  unsigned seen = 0;
  int rc;
  while ((rc = next(r)) == 0 && r->ev.type != YAML_MAPPING_END_EVENT) {
    static const char *const keys[] = {"domain", "subdomains", "url", "methods"};
    if (r->ev.type != YAML_SCALAR_EVENT) {
      rc = FAIL(r, "%s: a key must be a string, got %s", list, what(&r->ev));
      break;
    }
    int k = -1;
    for (int i = 0; i < 4; i++)
      if (seq(r, keys[i]))
        k = i;
    if (k < 0) {
      char q[ECHO_MAX + 8];
      echo(r, q, sizeof(q));
      rc = FAIL(r, "unknown key '%s' in a rule (expected domain, subdomains, url, methods)", q);
      break;
    }
    if (seen & (1u << k)) {
      rc = FAIL(r, "'%s' is given twice in this rule", keys[k]);
      break;
    }
    seen |= 1u << k;
    if ((rc = next(r)) < 0)
      break;
    if (k == 0 || k == 2) {
      if ((rc = want_string(r, keys[k])) < 0 || (rc = hold(r, k == 0 ? &domain : &url)) < 0)
        break;
    } else if (k == 1) {
      seen_sub = true;
      if ((rc = want_bool(r, "subdomains", &subdomains)) < 0)
        break;
    } else {
      methods_at = r->ev.start_mark;
      if ((rc = read_methods(r, methods, sizeof(methods), &mlen)) < 0)
        break;
    }
  }
  if (rc == 0 && domain.s && url.s)
    rc = fail_at(r, url.at.line, url.at.column,
                 "a rule has a domain or a url, not both: write two rules");
  else if (rc == 0 && !domain.s && !url.s)
    rc = fail_at(r, start.line, start.column, "a rule needs a domain (or a url)");
  else if (rc == 0 && url.s && seen_sub)
    rc = fail_at(r, url.at.line, url.at.column,
                 "subdomains applies to a domain; a URL rule's host says it (*.example.com)");
  else if (rc == 0 && domain.s && mlen)
    rc = fail_at(r, methods_at.line, methods_at.column,
                 "methods applies to a url, not a domain");
  if (rc == 0 && domain.s)
    rc = add_domain(r, which, !subdomains, domain.at, domain.s, domain.n);
  if (rc == 0 && url.s) {
    char *entry = malloc(mlen + url.n + 1);
    if (!entry) {
      rc = -ENOMEM;
    } else {
      memcpy(entry, methods, mlen);
      memcpy(entry + mlen, url.s, url.n + 1);
      rc = add_url(r, which == AWF_ACL_ALLOW ? AWF_URL_ALLOW : AWF_URL_BLOCK, url.at, entry,
                   mlen + url.n);
      free(entry);
    }
  }
  free(domain.s);
  free(url.s);
  return rc;
}

/* A port, or a range LOW-HIGH. */
static int add_ports(struct rs *r) {
  const char *s = sval(r);
  size_t n = slen(r);
  unsigned v[2] = {0, 0};
  int k = 0;
  size_t digits = 0;
  bool ok = n > 0;
  for (size_t i = 0; i < n && ok; i++) {
    if (s[i] >= '0' && s[i] <= '9' && digits < 5) {
      v[k] = v[k] * 10 + (unsigned)(s[i] - '0');
      digits++;
    } else if (s[i] == '-' && k == 0 && digits > 0) {
      k = 1;
      digits = 0;
    } else {
      ok = false;
    }
  }
  if (k == 0)
    v[1] = v[0];
  if (!ok || digits == 0 || v[0] == 0 || v[1] > 65535 || v[0] > v[1]) {
    char q[ECHO_MAX + 8];
    echo(r, q, sizeof(q));
    return FAIL(r, "ports: '%s' is not a port (1-65535) or a range LOW-HIGH", q);
  }
  for (unsigned p = v[0]; p <= v[1]; p++)
    awf_port_set_add(r->into->ports, (uint16_t)p);
  return 0;
}

void awf_ruleset_secrets_free(struct awf_ruleset_secrets *s) {
  for (size_t i = 0; s && i < s->n; i++)
    free(s->v[i]);
  if (s)
    free(s->v);
}

/* A secrets: entry, checked as --secret checks it (into a store of its own:
 * the values are not this parser's), then kept. */
static int add_secret(struct rs *r, const char *s, size_t n) {
  char spec[1024], why[256];
  if (n >= sizeof(spec))
    return FAIL(r, "secrets: an entry longer than %zu bytes", sizeof(spec) - 1);
  memcpy(spec, s, n);
  spec[n] = '\0';
  awf_secrets *check = awf_secrets_new();
  if (!check)
    return -ENOMEM;
  int rc = awf_secrets_add(check, spec, why, sizeof(why));
  awf_secrets_free(check);
  if (rc == -ENOMEM)
    return rc;
  if (rc < 0)
    return FAIL(r, "secrets: %s", why);
  struct awf_ruleset_secrets *out = r->into->secrets;
  if (!out)
    return 0;
  char **v = realloc(out->v, (out->n + 1) * sizeof(*v));
  if (!v)
    return -ENOMEM;
  out->v = v;
  if (!(v[out->n] = strdup(spec)))
    return -ENOMEM;
  out->n++;
  return 0;
}

enum section { S_VERSION, S_RULES, S_BLOCK, S_URLS, S_BLOCK_URLS, S_PORTS, S_SECRETS, S_COUNT };
static const char *const section_names[S_COUNT] = {"version",    "rules", "block",  "urls",
                                                   "block_urls", "ports", "secrets"};

/* The list under a section key (the current event is its value). */
static int section_list(struct rs *r, enum section sec) {
  const char *name = section_names[sec];
  int rc;
  if (r->ev.type != YAML_SEQUENCE_START_EVENT)
    return FAIL(r, "%s: expected a list, got %s", name,
                is_null(r) ? "nothing (null; write [] for none)" : what(&r->ev));
  while ((rc = next(r)) == 0 && r->ev.type != YAML_SEQUENCE_END_EVENT) {
    yaml_mark_t at = r->ev.start_mark;
    switch (sec) {
    case S_RULES:
    case S_BLOCK: {
      enum awf_acl_list which = sec == S_RULES ? AWF_ACL_ALLOW : AWF_ACL_BLOCK;
      if (r->ev.type == YAML_MAPPING_START_EVENT)
        rc = rule_mapping(r, name, which);
      else if ((rc = want_string(r, name)) == 0)
        rc = add_domain(r, which, false, at, sval(r), slen(r));
      break;
    }
    case S_URLS:
    case S_BLOCK_URLS:
      if ((rc = want_string(r, name)) == 0)
        rc = add_url(r, sec == S_URLS ? AWF_URL_ALLOW : AWF_URL_BLOCK, at, sval(r), slen(r));
      break;
    case S_SECRETS:
      if ((rc = want_string(r, name)) == 0)
        rc = add_secret(r, sval(r), slen(r));
      break;
    case S_PORTS:
      if (r->ev.type != YAML_SCALAR_EVENT)
        rc = FAIL(r, "ports: expected a port or a range, got %s", what(&r->ev));
      else
        rc = add_ports(r);
      break;
    default: rc = FAIL(r, "internal error"); break;
    }
    if (rc < 0)
      return rc;
  }
  return rc;
}

static int version_value(struct rs *r) {
  if (r->ev.type == YAML_SCALAR_EVENT && plain(r) && seq(r, "1"))
    return 0;
  if (r->ev.type != YAML_SCALAR_EVENT)
    return FAIL(r, "version: expected 1, got %s", what(&r->ev));
  char q[ECHO_MAX + 8];
  echo(r, q, sizeof(q));
  return FAIL(r, "version: '%s' is not supported (this awf reads version: 1)", q);
}

/* The top-level mapping (the current event is its start). */
static int document(struct rs *r) {
  yaml_mark_t start = r->ev.start_mark;
  unsigned seen = 0;
  int rc;
  while ((rc = next(r)) == 0 && r->ev.type != YAML_MAPPING_END_EVENT) {
    if (r->ev.type != YAML_SCALAR_EVENT)
      return FAIL(r, "a key must be a string, got %s", what(&r->ev));
    int k = -1;
    for (int i = 0; i < S_COUNT; i++)
      if (seq(r, section_names[i]))
        k = i;
    if (k < 0) {
      char q[ECHO_MAX + 8];
      echo(r, q, sizeof(q));
      return FAIL(r,
                  "unknown key '%s' (expected version, rules, block, urls, block_urls, ports, "
                  "secrets)",
                  q);
    }
    if (seen & (1u << k))
      return FAIL(r, "'%s' is given twice", section_names[k]);
    seen |= 1u << k;
    if ((rc = next(r)) < 0)
      return rc;
    rc = k == S_VERSION ? version_value(r) : section_list(r, (enum section)k);
    if (rc < 0)
      return rc;
  }
  if (rc < 0)
    return rc;
  if (!(seen & (1u << S_VERSION)))
    return fail_at(r, start.line, start.column, "version: 1 is missing");
  return 0;
}

static int parse(struct rs *r) {
  int rc;
  if ((rc = next(r)) < 0) /* STREAM-START */
    return rc;
  if ((rc = next(r)) < 0)
    return rc;
  if (r->ev.type == YAML_STREAM_END_EVENT)
    return FAIL(r, "empty: a ruleset starts with version: 1");
  if ((rc = next(r)) < 0) /* after DOCUMENT-START */
    return rc;
  if (r->ev.type != YAML_MAPPING_START_EVENT)
    return FAIL(r, "expected a mapping (version: 1, rules: ...), got %s",
                is_null(r) ? "nothing" : what(&r->ev));
  if ((rc = document(r)) < 0)
    return rc;
  if ((rc = next(r)) < 0) /* DOCUMENT-END */
    return rc;
  if ((rc = next(r)) < 0)
    return rc;
  if (r->ev.type != YAML_STREAM_END_EVENT)
    return FAIL(r, "a second document: a ruleset file holds one (use another --ruleset-file)");
  return 0;
}

int awf_ruleset_parse(const char *text, size_t len, const char *origin,
                      const struct awf_ruleset_into *into, unsigned *line, char *err,
                      size_t errlen) {
  char dummy[1];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof(dummy);
  }
  struct rs r = {.text = text,
                 .len = len,
                 .origin = origin ? origin : "ruleset",
                 .into = into,
                 .line = line,
                 .err = err,
                 .errlen = errlen};
  if (line)
    *line = 0;
  err[0] = '\0';
  if (!text || !into || !into->acl || !into->url_rules || !into->ports) {
    snprintf(err, errlen, "invalid arguments");
    return -EINVAL;
  }
  if (!yaml_parser_initialize(&r.parser)) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
  int rc = parse(&r);
  if (r.have_ev)
    yaml_event_delete(&r.ev);
  yaml_parser_delete(&r.parser);
  if (rc == -ENOMEM && !err[0])
    snprintf(err, errlen, "%s: out of memory", r.origin);
  return rc;
}
