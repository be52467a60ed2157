/* userdb.c: see userdb.h. */
#include "userdb.h"
#include "bytes.h"
#include "errbuf.h"
#include "textfile.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(uid_t) == 4 && sizeof(gid_t) == 4, "32-bit ids expected");

#define ID_MAX 4294967294u
#define PASSWD_FIELDS 7
#define GROUP_FIELDS 4
/* Group-file matches collected before de-duplication: a hostile or broken
 * file cannot make us allocate without bound. */
#define GROUP_MATCH_MAX (1u << 20)

/* The lines of a file's bytes, counted for messages. */
struct lines {
  struct awf_bytes b;
  unsigned long lineno;
};

struct field {
  const char *s;
  size_t len;
};

/* Next line (without its '\n'); 0 at the end of the data. */
static int next_line(struct lines *c, const char **line, size_t *len) {
  const uint8_t *p;

  if (!awf_bytes_token(&c->b, '\n', &p, len))
    return 0;
  *line = (const char *)p;
  c->lineno++;
  return 1;
}

/* Lines that carry no entry at all. */
static int ignorable(const char *line, size_t len) {
  return len == 0 || line[0] == '#' || line[0] == '+' || line[0] == '-';
}

/* Split on ':' into exactly `want` fields, or (allow_short) want-1.
 * Returns the number of fields, or 0 when malformed. */
static size_t split(const char *line, size_t len, struct field *f, size_t want,
                    int allow_short) {
  size_t n = 0;
  const char *p = line, *end = line + len;

  if (memchr(line, '\0', len) != NULL)
    return 0;
  for (;;) {
    const char *colon = memchr(p, ':', (size_t)(end - p));

    if (n == want)
      return 0;
    f[n].s = p;
    f[n].len = colon ? (size_t)(colon - p) : (size_t)(end - p);
    n++;
    if (colon == NULL)
      break;
    p = colon + 1;
  }
  if (n == want || (allow_short && n == want - 1))
    return n;
  return 0;
}

static int name_ok(const struct field *f) {
  size_t i;

  if (f->len == 0)
    return 0;
  for (i = 0; i < f->len; i++) {
    unsigned char c = (unsigned char)f->s[i];

    if (c < 0x20 || c == 0x7f)
      return 0;
  }
  return 1;
}

int awf_userdb_parse_id(const char *s, size_t len, unsigned int *out) {
  uint64_t v = 0;
  size_t i;

  if (s == NULL || len == 0 || len > 10)
    return -EINVAL;
  for (i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -EINVAL;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v > ID_MAX)
    return -EINVAL;
  *out = (unsigned int)v;
  return 0;
}

static int copy_field(char *dst, size_t dstsz, const struct field *f, const char *dflt) {
  if (f->len == 0) {
    size_t l = strlen(dflt);

    memcpy(dst, dflt, l + 1);
    return 0;
  }
  if (f->len >= dstsz)
    return -ENAMETOOLONG;
  memcpy(dst, f->s, f->len);
  dst[f->len] = '\0';
  return 0;
}

static int fill_user(const struct field *f, uid_t uid, gid_t gid, const char *origin,
                     unsigned long lineno, struct awf_userdb_user *out, char *err,
                     size_t errsz) {
  static const char *const what[] = {"user name", "home directory", "shell"};
  int which = -1;

  if (copy_field(out->name, sizeof out->name, &f[0], "") < 0)
    which = 0;
  else if (copy_field(out->home, sizeof out->home, &f[5], "/") < 0)
    which = 1;
  else if (copy_field(out->shell, sizeof out->shell, &f[6], "/bin/sh") < 0)
    which = 2;
  if (which >= 0)
    return awf_errbuf_fail(err, errsz, -ENAMETOOLONG, "%s:%lu: %s of uid %u is too long",
                           origin, lineno, what[which], (unsigned)uid);
  out->uid = uid;
  out->gid = gid;
  return 0;
}

int awf_userdb_user_by_uid_mem(const char *data, size_t len, const char *origin, uid_t uid,
                               struct awf_userdb_user *out, char *err, size_t errsz) {
  struct lines c = {.lineno = 0};
  const char *line;
  size_t llen;
  unsigned long malformed = 0;

  if (origin == NULL)
    origin = "passwd";
  awf_bytes_init(&c.b, data, len);
  while (next_line(&c, &line, &llen)) {
    struct field f[PASSWD_FIELDS] = {{0}};
    unsigned int u, g;

    if (ignorable(line, llen))
      continue;
    if (split(line, llen, f, PASSWD_FIELDS, 0) == 0 || !name_ok(&f[0]) ||
        awf_userdb_parse_id(f[2].s, f[2].len, &u) < 0 ||
        awf_userdb_parse_id(f[3].s, f[3].len, &g) < 0) {
      malformed++;
      continue;
    }
    if (u == uid)
      return fill_user(f, u, g, origin, c.lineno, out, err, errsz);
  }
  if (malformed > 0)
    return awf_errbuf_fail(err, errsz, -ENOENT,
                           "uid %u not found in %s (%lu malformed line%s skipped)",
                           (unsigned)uid, origin, malformed, malformed == 1 ? "" : "s");
  return awf_errbuf_fail(err, errsz, -ENOENT, "uid %u not found in %s", (unsigned)uid, origin);
}

int awf_userdb_user_by_uid(const char *path, uid_t uid, struct awf_userdb_user *out, char *err,
                           size_t errsz) {
  char *data;
  size_t len;
  int rc = awf_textfile_read(path, AWF_USERDB_FILE_MAX, &data, &len, err, errsz);

  if (rc < 0)
    return rc;
  rc = awf_userdb_user_by_uid_mem(data, len, path, uid, out, err, errsz);
  free(data);
  return rc;
}

/* Is `user` one of the ','-separated names in f? */
static int is_member(const struct field *f, const char *user, size_t ulen) {
  const char *p = f->s, *end = f->s + f->len;

  while (p <= end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    size_t l = comma ? (size_t)(comma - p) : (size_t)(end - p);

    if (l == ulen && memcmp(p, user, ulen) == 0)
      return 1;
    if (comma == NULL)
      break;
    p = comma + 1;
  }
  return 0;
}

static int cmp_gid(const void *a, const void *b) {
  gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;

  return (x > y) - (x < y);
}

/* Collect the gids of the groups listing `user`, primary excluded.
 * *found is malloc'd (possibly NULL when *nfound is 0). */
static int collect_groups(const char *data, size_t len, const char *origin, const char *user,
                          gid_t primary, gid_t **found, size_t *nfound, char *err,
                          size_t errsz) {
  struct lines c = {.lineno = 0};
  const char *line;
  size_t llen, ulen = strlen(user), n = 0, cap = 0;
  gid_t *v = NULL;

  awf_bytes_init(&c.b, data, len);

  while (next_line(&c, &line, &llen)) {
    struct field f[GROUP_FIELDS] = {{0}};
    size_t nf;
    unsigned int g;

    if (ignorable(line, llen))
      continue;
    nf = split(line, llen, f, GROUP_FIELDS, 1);
    if (nf == 0 || !name_ok(&f[0]) || awf_userdb_parse_id(f[2].s, f[2].len, &g) < 0)
      continue;
    if (nf < GROUP_FIELDS || g == primary || !is_member(&f[3], user, ulen))
      continue;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      gid_t *nv;

      if (n >= GROUP_MATCH_MAX) {
        free(v);
        return awf_errbuf_fail(err, errsz, -ERANGE, "%s: user lists more than %u group entries",
                               origin, GROUP_MATCH_MAX);
      }
      nv = realloc(v, ncap * sizeof *v);
      if (nv == NULL) {
        free(v);
        return awf_errbuf_fail(err, errsz, -ENOMEM, "%s: out of memory", origin);
      }
      v = nv;
      cap = ncap;
    }
    v[n++] = g;
  }
  *found = v;
  *nfound = n;
  return 0;
}

int awf_userdb_groups_mem(const char *data, size_t len, const char *origin, const char *user,
                          gid_t primary, gid_t *gids, size_t max, size_t *ngids, char *err,
                          size_t errsz) {
  gid_t *found = NULL;
  size_t nfound = 0, i, n;
  int rc;

  *ngids = 0;
  if (origin == NULL)
    origin = "group";
  if (user == NULL || *user == '\0' || max == 0)
    return awf_errbuf_fail(err, errsz, -EINVAL, "group lookup: no user or no room");
  rc = collect_groups(data, len, origin, user, primary, &found, &nfound, err, errsz);
  if (rc < 0)
    return rc;
  if (nfound > 0)
    qsort(found, nfound, sizeof *found, cmp_gid);
  n = 1;
  for (i = 0; i < nfound; i++)
    n += (i == 0 || found[i] != found[i - 1]);
  if (n > max) {
    char q[AWF_USERDB_NAME_MAX];

    free(found);
    *ngids = n;
    return awf_errbuf_fail(err, errsz, -ERANGE,
                           "user \"%s\" is in %zu groups in %s, more than the %zu allowed",
                           awf_errbuf_quote(user, strlen(user), q, sizeof q), n, origin, max);
  }
  gids[0] = primary;
  n = 1;
  for (i = 0; i < nfound; i++)
    if (i == 0 || found[i] != found[i - 1])
      gids[n++] = found[i];
  free(found);
  *ngids = n;
  return 0;
}

int awf_userdb_groups(const char *path, const char *user, gid_t primary, gid_t *gids,
                      size_t max, size_t *ngids, char *err, size_t errsz) {
  char *data;
  size_t len;
  int rc;

  *ngids = 0;
  rc = awf_textfile_read(path, AWF_USERDB_FILE_MAX, &data, &len, err, errsz);
  if (rc < 0)
    return rc;
  rc = awf_userdb_groups_mem(data, len, path, user, primary, gids, max, ngids, err, errsz);
  free(data);
  return rc;
}

static int env_id(const char *s, unsigned int *out) {
  return s != NULL && awf_userdb_parse_id(s, strlen(s), out) == 0;
}

void awf_userdb_invoker(const char *sudo_uid, const char *sudo_gid, uid_t real_uid,
                        gid_t real_gid, struct awf_userdb_invoker *out) {
  unsigned int u, g;

  out->uid = real_uid;
  out->gid = real_gid;
  out->gid_known = 1;
  out->via_sudo = 0;
  if (real_uid != 0 || !env_id(sudo_uid, &u))
    return;
  out->uid = u;
  out->via_sudo = 1;
  out->gid_known = env_id(sudo_gid, &g);
  out->gid = out->gid_known ? g : 0;
}
