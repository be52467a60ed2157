/* envpolicy.c: see envpolicy.h. */
#include "envpolicy.h"
#include "errbuf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum layer { L_OWN, L_TOOLCHAIN, L_ALL, L_TRUST, L_FILE, L_CLI, L_APPEND, L_FORCED };

struct entry {
  char *kv;      /* "NAME=VALUE" */
  size_t nlen;   /* bytes of NAME */
  uint64_t rank; /* layer, then position: the highest rank of a name wins */
};

struct awf_env {
  struct entry *ents;
  size_t n, cap;
  char **envp; /* n + 1 pointers into ents[].kv */
};

static const char *const toolchain_names[] = {
    "GOROOT", "JAVA_HOME", "DOTNET_ROOT", "CARGO_HOME", "BUN_INSTALL",
};

static const char *const reserved_names[] = {
    "PATH", "HOME", "USER", "LOGNAME", "PWD", "OLDPWD", "SHLVL", "_",
};

int awf_env_name_valid(const char *s, size_t len) {
  size_t i;

  if (len == 0 || len > AWF_ENV_NAME_MAX)
    return 0;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';

    if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
      return 0;
  }
  return 1;
}

static int name_is(const char *s, size_t len, const char *lit) {
  return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

int awf_env_name_reserved(const char *s, size_t len) {
  static const char proxy[] = "_proxy";
  size_t i;

  for (i = 0; i < sizeof reserved_names / sizeof reserved_names[0]; i++)
    if (name_is(s, len, reserved_names[i]))
      return 1;
  if (len >= 5 && memcmp(s, "SUDO_", 5) == 0)
    return 1;
  return len >= sizeof proxy - 1 &&
         strncasecmp(s + len - (sizeof proxy - 1), proxy, sizeof proxy - 1) == 0;
}

static int excluded(const struct awf_env_spec *spec, const char *s, size_t len) {
  const char *const *x;

  for (x = spec->exclude; x != NULL && *x != NULL; x++)
    if (name_is(s, len, *x))
      return 1;
  return 0;
}

static uint64_t rank_of(enum layer l, size_t pos) {
  return ((uint64_t)l << 40) | (uint64_t)pos;
}

static int add(awf_env *e, const char *name, size_t nlen, const char *val, size_t vlen,
               uint64_t rank) {
  struct entry *ent;
  char *kv;

  if (e->n == e->cap) {
    size_t ncap = e->cap ? e->cap * 2 : 64;
    struct entry *ne = realloc(e->ents, ncap * sizeof *ne);

    if (ne == NULL)
      return -ENOMEM;
    e->ents = ne;
    e->cap = ncap;
  }
  kv = malloc(nlen + vlen + 2);
  if (kv == NULL)
    return -ENOMEM;
  memcpy(kv, name, nlen);
  kv[nlen] = '=';
  memcpy(kv + nlen + 1, val, vlen);
  kv[nlen + 1 + vlen] = '\0';
  ent = &e->ents[e->n++];
  ent->kv = kv;
  ent->nlen = nlen;
  ent->rank = rank;
  return 0;
}

/* Shorthand for messages about untrusted bytes. */
#define Q(buf, s, len) awf_errbuf_quote((s), (len), (buf), sizeof(buf))

/* An explicitly given NAME=VALUE (own, env file, -e): checked, never skipped. */
static int add_explicit(awf_env *e, const char *name, size_t nlen, const char *val, size_t vlen,
                        uint64_t rank, const char *where, char *err, size_t errsz) {
  char q[80];

  if (!awf_env_name_valid(name, nlen))
    return awf_errbuf_fail(err, errsz, -EINVAL, "%s: invalid variable name \"%s\"", where,
                           Q(q, name, nlen));
  if (nlen + 1 + vlen > AWF_ENV_ENTRY_MAX)
    return awf_errbuf_fail(err, errsz, -E2BIG, "%s: %s is longer than %u bytes", where,
                           Q(q, name, nlen), AWF_ENV_ENTRY_MAX);
  if (add(e, name, nlen, val, vlen, rank) < 0)
    return awf_errbuf_fail(err, errsz, -ENOMEM, "out of memory");
  return 0;
}

/* A host entry for layers 2 and 3: anything doubtful is skipped. */
static int add_inherited(awf_env *e, const struct awf_env_spec *spec, const char *kv,
                         uint64_t rank) {
  const char *eq = strchr(kv, '=');
  size_t nlen, vlen;

  if (eq == NULL)
    return 0;
  nlen = (size_t)(eq - kv);
  vlen = strlen(eq + 1);
  if (!awf_env_name_valid(kv, nlen) || awf_env_name_reserved(kv, nlen) ||
      excluded(spec, kv, nlen) || vlen > AWF_ENV_INHERIT_VALUE_MAX)
    return 0;
  return add(e, kv, nlen, eq + 1, vlen, rank);
}

/* The host's value of name (first occurrence, as getenv), or NULL. */
static const char *host_get(const struct awf_env_spec *spec, const char *name, size_t nlen) {
  const char *const *h;

  for (h = spec->host; h != NULL && *h != NULL; h++)
    if (strncmp(*h, name, nlen) == 0 && (*h)[nlen] == '=')
      return *h;
  return NULL;
}

/* awf's own entries (own, trust), at layer l. */
static int add_awf(awf_env *e, const char *const *list, enum layer l, char *err, size_t errsz) {
  size_t i;

  for (i = 0; list != NULL && list[i] != NULL; i++) {
    const char *kv = list[i], *eq = strchr(kv, '=');
    char q[80];
    int rc;

    if (eq == NULL)
      return awf_errbuf_fail(err, errsz, -EINVAL, "awf variable \"%s\": no '='",
                             Q(q, kv, strlen(kv)));
    rc = add_explicit(e, kv, (size_t)(eq - kv), eq + 1, strlen(eq + 1), rank_of(l, i),
                      "awf variable", err, errsz);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int add_host_layers(awf_env *e, const struct awf_env_spec *spec, char *err,
                           size_t errsz) {
  size_t i;

  for (i = 0; i < sizeof toolchain_names / sizeof toolchain_names[0]; i++) {
    const char *kv = host_get(spec, toolchain_names[i], strlen(toolchain_names[i]));

    if (kv != NULL && add_inherited(e, spec, kv, rank_of(L_TOOLCHAIN, 0)) < 0)
      return awf_errbuf_fail(err, errsz, -ENOMEM, "out of memory");
  }
  if (!spec->env_all)
    return 0;
  for (i = 0; spec->host != NULL && spec->host[i] != NULL; i++) {
    /* Duplicate host names: the first one wins, as with getenv, so
         * earlier positions rank higher within the layer. */
    uint64_t pos = (UINT64_C(1) << 40) - 1 - (uint64_t)i;

    if (add_inherited(e, spec, spec->host[i], rank_of(L_ALL, (size_t)pos)) < 0)
      return awf_errbuf_fail(err, errsz, -ENOMEM, "out of memory");
  }
  return 0;
}

/* Strip the quotes of a quoted env-file value; -EINVAL when badly quoted. */
static int unquote(const char **v, size_t *vlen) {
  char qc;

  if (*vlen == 0 || (**v != '"' && **v != '\''))
    return 0;
  qc = **v;
  if (*vlen < 2 || (*v)[*vlen - 1] != qc || memchr(*v + 1, qc, *vlen - 2) != NULL)
    return -EINVAL;
  (*v)++;
  *vlen -= 2;
  return 0;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static int file_line(awf_env *e, const struct awf_env_file *f, const char *line, size_t len,
                     unsigned long lineno, size_t pos, char *err, size_t errsz) {
  const char *path = f->path ? f->path : "env file", *eq, *val;
  char where[AWF_ERRBUF_SIZE / 2], q[80], qp[160];
  size_t vlen;

  if (len > 0 && line[len - 1] == '\r')
    len--;
  snprintf(where, sizeof where, "%s:%lu", Q(qp, path, strlen(path)), lineno);
  if (memchr(line, '\0', len) != NULL)
    return awf_errbuf_fail(err, errsz, -EINVAL, "%s: NUL byte in line", where);
  while (len > 0 && is_blank(*line))
    line++, len--;
  if (len == 0 || *line == '#')
    return 0;
  if (len > 7 && memcmp(line, "export", 6) == 0 && is_blank(line[6])) {
    line += 7, len -= 7;
    while (len > 0 && is_blank(*line))
      line++, len--;
  }
  eq = memchr(line, '=', len);
  if (eq == NULL)
    return awf_errbuf_fail(err, errsz, -EINVAL, "%s: expected NAME=VALUE, got \"%s\"", where,
                           Q(q, line, len));
  val = eq + 1;
  vlen = len - (size_t)(val - line);
  if (unquote(&val, &vlen) < 0)
    return awf_errbuf_fail(err, errsz, -EINVAL,
                           "%s: a quoted value must end with its quote and hold no "
                           "other (no escapes, no multi-line values)",
                           where);
  return add_explicit(e, line, (size_t)(eq - line), val, vlen, rank_of(L_FILE, pos), where, err,
                      errsz);
}

static int add_files(awf_env *e, const struct awf_env_spec *spec, char *err, size_t errsz) {
  size_t i, pos = 0;

  for (i = 0; i < spec->nfiles; i++) {
    const struct awf_env_file *f = &spec->files[i];
    const char *p = f->data, *end = f->data + f->len;
    unsigned long lineno = 0;

    while (f->data != NULL && p < end) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
      int rc = file_line(e, f, p, len, ++lineno, pos++, err, errsz);

      if (rc < 0)
        return rc;
      p += len + (nl != NULL);
    }
  }
  return 0;
}

static int add_cli(awf_env *e, const struct awf_env_spec *spec, char *err, size_t errsz) {
  size_t i;

  for (i = 0; spec->cli != NULL && spec->cli[i] != NULL; i++) {
    const char *arg = spec->cli[i], *eq = strchr(arg, '='), *kv;
    char where[120], q[80];
    int rc;

    snprintf(where, sizeof where, "-e \"%s\"", Q(q, arg, strlen(arg)));
    if (eq != NULL) {
      rc = add_explicit(e, arg, (size_t)(eq - arg), eq + 1, strlen(eq + 1), rank_of(L_CLI, i),
                        where, err, errsz);
    } else if (!awf_env_name_valid(arg, strlen(arg))) {
      rc = awf_errbuf_fail(err, errsz, -EINVAL, "%s: invalid variable name", where);
    } else {
      kv = host_get(spec, arg, strlen(arg));
      rc = kv == NULL ? 0
                      : add_explicit(e, arg, strlen(arg), kv + strlen(arg) + 1,
                                     strlen(kv + strlen(arg) + 1), rank_of(L_CLI, i), where,
                                     err, errsz);
    }
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* Each "NAME=VALUE" of spec->append: VALUE after the value NAME has so far
 * (the highest rank of it), a space between them. */
static int add_appended(awf_env *e, const struct awf_env_spec *spec, char *err, size_t errsz) {
  for (size_t i = 0; spec->append != NULL && spec->append[i] != NULL; i++) {
    const char *kv = spec->append[i], *eq = strchr(kv, '=');
    const struct entry *best = NULL;
    char q[80];

    if (eq == NULL)
      return awf_errbuf_fail(err, errsz, -EINVAL, "awf variable \"%s\": no '='",
                             Q(q, kv, strlen(kv)));
    size_t nlen = (size_t)(eq - kv), alen = strlen(eq + 1);
    for (size_t j = 0; j < e->n; j++)
      if (e->ents[j].nlen == nlen && memcmp(e->ents[j].kv, kv, nlen) == 0 &&
          (best == NULL || e->ents[j].rank > best->rank))
        best = &e->ents[j];
    const char *old = best ? best->kv + nlen + 1 : "";
    size_t olen = strlen(old), vlen = olen + (olen > 0) + alen;
    char *v = malloc(vlen + 1);
    if (v == NULL)
      return awf_errbuf_fail(err, errsz, -ENOMEM, "out of memory");
    snprintf(v, vlen + 1, "%s%s%s", old, olen > 0 ? " " : "", eq + 1);
    int rc = add_explicit(e, kv, nlen, v, vlen, rank_of(L_APPEND, i), "awf variable", err,
                          errsz);
    free(v);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* Every replacement's `from` in every value becomes its `to`, in place. */
static void apply_replacements(awf_env *e, const struct awf_env_spec *spec) {
  for (size_t i = 0; i < e->n; i++) {
    char *v = e->ents[i].kv + e->ents[i].nlen + 1;
    size_t vlen = strlen(v);
    for (size_t r = 0; r < spec->nreplace; r++) {
      const struct awf_env_replace *x = &spec->replace[r];
      char *p = v;
      while (x->len && (size_t)(v + vlen - p) >= x->len &&
             (p = memmem(p, (size_t)(v + vlen - p), x->from, x->len)) != NULL) {
        memcpy(p, x->to, x->len);
        p += x->len;
      }
    }
  }
}

static int check_excludes(const struct awf_env_spec *spec, char *err, size_t errsz) {
  const char *const *x;

  for (x = spec->exclude; x != NULL && *x != NULL; x++) {
    char q[80];

    if (!awf_env_name_valid(*x, strlen(*x)))
      return awf_errbuf_fail(err, errsz, -EINVAL, "--exclude-env \"%s\": invalid variable name",
                             Q(q, *x, strlen(*x)));
  }
  return 0;
}

static int cmp_entry(const void *a, const void *b) {
  const struct entry *x = a, *y = b;
  size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
  int c = memcmp(x->kv, y->kv, n);

  if (c != 0)
    return c;
  if (x->nlen != y->nlen)
    return x->nlen < y->nlen ? -1 : 1;
  return (x->rank > y->rank) - (x->rank < y->rank);
}

/* Sort by name, keep the highest rank of each name, check the totals. */
static int finish(awf_env *e, char *err, size_t errsz) {
  size_t i, n = 0, bytes = 0;

  if (e->n > 0)
    qsort(e->ents, e->n, sizeof *e->ents, cmp_entry);
  for (i = 0; i < e->n; i++) {
    const struct entry *cur = &e->ents[i], *next = i + 1 < e->n ? cur + 1 : NULL;

    if (next != NULL && next->nlen == cur->nlen && memcmp(next->kv, cur->kv, cur->nlen) == 0) {
      free(cur->kv);
      continue;
    }
    bytes += strlen(cur->kv) + 1;
    e->ents[n++] = *cur;
  }
  e->n = n;
  if (n > AWF_ENV_MAX_VARS || bytes > AWF_ENV_MAX_BYTES)
    return awf_errbuf_fail(err, errsz, -E2BIG,
                           "environment too large: %zu variables, %zu bytes "
                           "(at most %u and %u)",
                           n, bytes, AWF_ENV_MAX_VARS, AWF_ENV_MAX_BYTES);
  e->envp = malloc((n + 1) * sizeof *e->envp);
  if (e->envp == NULL)
    return awf_errbuf_fail(err, errsz, -ENOMEM, "out of memory");
  for (i = 0; i < n; i++)
    e->envp[i] = e->ents[i].kv;
  e->envp[n] = NULL;
  return 0;
}

int awf_env_build(const struct awf_env_spec *spec, awf_env **out, char *err, size_t errsz) {
  awf_env *e;
  int rc;

  *out = NULL;
  e = calloc(1, sizeof *e);
  if (e == NULL)
    return awf_errbuf_fail(err, errsz, -ENOMEM, "out of memory");
  rc = check_excludes(spec, err, errsz);
  if (rc == 0)
    rc = add_awf(e, spec->own, L_OWN, err, errsz);
  if (rc == 0)
    rc = add_host_layers(e, spec, err, errsz);
  if (rc == 0)
    rc = add_awf(e, spec->trust, L_TRUST, err, errsz);
  if (rc == 0)
    rc = add_files(e, spec, err, errsz);
  if (rc == 0)
    rc = add_cli(e, spec, err, errsz);
  if (rc == 0)
    rc = add_appended(e, spec, err, errsz);
  if (rc == 0)
    rc = add_awf(e, spec->forced, L_FORCED, err, errsz);
  if (rc == 0)
    rc = finish(e, err, errsz);
  if (rc == 0)
    apply_replacements(e, spec);
  if (rc < 0) {
    awf_env_free(e);
    return rc;
  }
  *out = e;
  return 0;
}

char *const *awf_env_envp(const awf_env *env) { return env->envp; }

size_t awf_env_count(const awf_env *env) { return env->n; }

const char *awf_env_get(const awf_env *env, const char *name) {
  size_t lo = 0, hi = env->n, nlen = strlen(name);

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const struct entry *m = &env->ents[mid];
    size_t n = m->nlen < nlen ? m->nlen : nlen;
    int c = memcmp(m->kv, name, n);

    if (c == 0)
      c = (m->nlen > nlen) - (m->nlen < nlen);
    if (c == 0)
      return m->kv + m->nlen + 1;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

void awf_env_free(awf_env *env) {
  size_t i;

  if (env == NULL)
    return;
  for (i = 0; i < env->n; i++)
    free(env->ents[i].kv);
  free(env->ents);
  free(env->envp);
  free(env);
}
